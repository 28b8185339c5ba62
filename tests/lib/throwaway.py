"""throwaway: what the tests' throwaway database servers share.

Owns: picking a free loopback port, halting (an outage that keeps the data
and the port), resuming and stopping a server process, and the
`<server>.py run -- <command>` entry point that CTest uses. Each server
(pgserver.py, mysqlserver.py, redisserver.py) subclasses ThrowawayServer
with how to set it up (start), launch its process on self.port (launch),
and name its dsn.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class ThrowawayServer:
    """A server process (self.proc) on 127.0.0.1:self.port, its data and log
    in self.dir. Subclasses set STOP_SIGNAL (the server's own clean, fast
    shutdown) and define start(), launch() -> bool, fail(why) and dsn()."""

    STOP_SIGNAL = signal.SIGTERM

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
