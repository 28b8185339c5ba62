"""ports: loopback ports for the servers the tests start, and the retry that
picking them needs.

Owns: picking a port that is free right now (free_port), recognising a
server's complaint that its port was taken (port_taken_in), and the one
loop that starts a server again on newly picked ports when that happens
(start_on_free_ports).
Not here: how any server is started or reads its log (mikatest.Mika,
throwaway.ThrowawayServer and its subclasses).

Why the retry: a port is probed free (bind port 0, read it, close) and only
then bound by the server, so anything else on the machine can take it in
between: a test running in parallel (CTest -j), its probe, or an outgoing
connection's ephemeral port. The server then fails with EADDRINUSE, which
says nothing about the code under test; picking again is the fix. A port a
test chose itself is never re-picked (it may be busy on purpose).
"""
import socket

# strerror(EADDRINUSE) as glibc words it: mika, postgres, mariadbd,
# redis-server and haproxy all log it when bind() fails so.
EADDRINUSE_TEXT = 'Address already in use'

# Five picks: each clash needs another process to land on the same port in
# a window of milliseconds, so a second clash in a row is already rare.
PORT_TRIES = 5


class PortTaken(Exception):
    """Raised by a launch function (see start_on_free_ports) when its server
    could not bind a port the harness picked for it."""


def free_port(hosts=('127.0.0.1', '::1'), udp=False):
    """A port free right now on every address in hosts, for TCP (and for UDP
    too when udp is true: mika's tracker port carries both)."""
    kinds = (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,)
    for _ in range(100):
        held = []
        try:
            port = 0  # the first bind lets the kernel choose; the rest must get the same
            for host in hosts:
                family = socket.AF_INET6 if ':' in host else socket.AF_INET
                for kind in kinds:
                    s = socket.socket(family, kind)
                    held.append(s)
                    s.bind((host, port))
                    port = s.getsockname()[1]
            return port
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise OSError('no port free on all of %s' % ', '.join(hosts))


def port_taken_in(log_text):
    """True if a server's log (the part written by one launch) says that a
    bind failed because the address was in use."""
    return EADDRINUSE_TEXT in log_text


def start_on_free_ports(launch, tries=PORT_TRIES):
    """Calls launch() until it returns without raising PortTaken, and returns
    what it returned. launch() must pick its ports afresh on each call (or
    have them re-picked before raising) and leave no process behind when it
    raises. After `tries` clashes the last PortTaken propagates."""
    for attempt in range(tries):
        try:
            return launch()
        except PortTaken:
            if attempt == tries - 1:
                raise
    raise AssertionError('tries must be at least 1')
