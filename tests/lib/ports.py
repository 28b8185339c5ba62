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

Why the reservations: mika binds its tracker port with SO_REUSEPORT, and so
may other servers; two of them started by parallel tests on the same picked
port would then both bind it, without any error to retry on, and share its
connections. So each pick also takes an exclusive lock on a file named after
the port in PORT_LOCK_DIR and holds it until this process exits: a port
locked by another test process is not handed out again while that process
lives.
"""
import fcntl
import os
import socket

# strerror(EADDRINUSE) as glibc words it: mika, postgres, mariadbd,
# redis-server and haproxy all log it when bind() fails so.
EADDRINUSE_TEXT = 'Address already in use'

# Five picks: each clash needs another process to land on the same port in
# a window of milliseconds, so a second clash in a row is already rare.
PORT_TRIES = 5


# Shared by every test process on the machine, whatever its TMPDIR.
PORT_LOCK_DIR = os.environ.get('MIKA_TEST_PORT_LOCKS', '/tmp/mika-port-locks')

# The lock files this process holds open (port -> fd), for its lifetime.
_reserved = {}


def reserve(port):
    """True if this process now holds port's reservation (or already did);
    false if another live process holds it."""
    if port in _reserved:
        return True
    os.makedirs(PORT_LOCK_DIR, exist_ok=True)
    fd = os.open(os.path.join(PORT_LOCK_DIR, str(port)), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _reserved[port] = fd
    return True


class PortTaken(Exception):
    """Raised by a launch function (see start_on_free_ports) when its server
    could not bind a port the harness picked for it."""


def free_port(hosts=('127.0.0.1', '::1'), udp=False):
    """A port free right now on every address in hosts, for TCP (and for UDP
    too when udp is true: mika's tracker port carries both), that no other
    test process has reserved; it is reserved for this one."""
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
            if not reserve(port):
                continue  # another test's server may hold it with SO_REUSEPORT
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
