"""throwaway: what the tests' throwaway database servers share.

Owns: starting a server on a free loopback port (again on another if that
one was taken first, ports.py), halting (an outage that keeps the data
and the port), resuming and stopping a server process, and the
`<server>.py run -- <command>` entry point that CTest uses. Each server
(pgserver.py, mysqlserver.py, redisserver.py) subclasses ThrowawayServer
with how to set it up (start), launch its process on self.port (launch),
and name its dsn.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

import ports


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    return ports.free_port(('127.0.0.1',))


class ThrowawayServer:
    """A server process (self.proc) on 127.0.0.1:self.port, its data and log
    in self.dir. Subclasses set STOP_SIGNAL (the server's own clean, fast
    shutdown) and define start(), launch() -> bool, fail(why) and dsn()."""

    STOP_SIGNAL = signal.SIGTERM

    def launch_on_free_port(self, what):
        """Sets self.port to a free port and launch()es the server there; if
        the server finds the port taken (its log says so), does it again on
        another port (ports.start_on_free_ports). Any other failure, or too
        many clashes, is fail(why)."""
        def attempt():
            self.port = free_port()
            offset = os.path.getsize(self.log) if os.path.exists(self.log) else 0
            if self.launch():
                return
            with open(self.log, 'rb') as f:
                f.seek(offset)
                text = f.read().decode('utf-8', 'replace')
            if ports.port_taken_in(text):
                raise ports.PortTaken('port %d was taken' % self.port)
            self.fail('%s did not start on port %d' % (what, self.port))
        try:
            ports.start_on_free_ports(attempt)
        except ports.PortTaken as e:
            self.fail('%s did not start: %s, %d times in a row' % (what, e, ports.PORT_TRIES))

    def halt(self):
        """Stops the server as an outage would, keeping its data and port."""
        if self.proc is not None:
            self.proc.send_signal(self.STOP_SIGNAL)
            self.proc.wait(timeout=30)
            self.proc = None

    def resume(self):
        """Starts the halted server again on the same data and port."""
        if not self.launch():
            self.fail('did not start again on port %d' % self.port)

    def stop(self):
        """Stops the server (killed if it does not stop in 20 s) and removes its data."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(self.STOP_SIGNAL)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


def run_main(prog, what, server_cls, env_var, argv):
    """`prog run -- <command> [args...]`: starts a server, runs the command
    with env_var set to its dsn, stops the server; the command's status."""
    if len(argv) < 3 or argv[0] != 'run' or argv[1] != '--':
        sys.exit('usage: %s run -- <command> [args...]' % prog)
    srv = server_cls()
    t0 = time.monotonic()
    try:
        srv.start()
        sys.stderr.write('%s: %s on 127.0.0.1:%d ready in %.1f s\n'
                         % (prog, what, srv.port, time.monotonic() - t0))
        env = dict(os.environ, **{env_var: srv.dsn()})
        rc = subprocess.call(argv[2:], env=env)
    finally:
        srv.stop()
    return rc
