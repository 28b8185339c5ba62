#!/usr/bin/python3
"""redisserver: a throwaway Redis server for the store tests.

Owns: one `redis-server` process on 127.0.0.1 and a free port, in a fresh
temp directory, halting and resuming it on the same port (an outage, for the
fault tests), and tearing all of it down.
Not here: any key (mika writes its own layout at open) or test logic.

Usage, as CTest runs it:

    redisserver.py run -- <command> [args...]

starts the server, runs the command with MIKA_TEST_REDIS_DSN set to
"redis://127.0.0.1:<port>/0", stops the server and exits with the
command's status. A server that cannot start is a failure (exit 1, its log
on stderr), never a skip.

The server is private to the test run: tests may FLUSHDB, CLIENT KILL and
read INFO as they like. No snapshots; an append-only file that is never
fsynced, so that a halted server comes back with its keys.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from throwaway import ThrowawayServer, run_main

START_TIMEOUT = 20.0 * float(os.environ.get('MIKA_TEST_TIMEOUT_SCALE', '1') or '1')


class Server(ThrowawayServer):
    def __init__(self):
        self.bin = shutil.which('redis-server')
        self.dir = tempfile.mkdtemp(prefix='mika-redis-')
        self.log = os.path.join(self.dir, 'log')
        self.sock = os.path.join(self.dir, 'redis.sock')
        self.proc = None
        self.port = None
        if not self.bin:
            self.fail('no redis-server installed (scripts/deps.sh test installs redis-server)')

    def fail(self, why):
        sys.stderr.write('redisserver: %s\n' % why)
        if os.path.exists(self.log):
            with open(self.log, errors='replace') as f:
                sys.stderr.write(f.read()[-4000:])
        self.stop()
        sys.exit(1)

    def start(self):
        self.launch_on_free_port('redis-server')

    def launch(self):
        """Starts redis-server on self.port and self.dir; True once it answers.
        The append-only file (never fsynced: the data dies with the test) lets
        a halted server come back with its keys, as an operator's would."""
        self.proc = subprocess.Popen(
            [self.bin, '--bind', '127.0.0.1', '--port', str(self.port), '--dir', self.dir,
             '--save', '', '--appendonly', 'yes', '--appendfsync', 'no',
             '--protected-mode', 'yes', '--daemonize', 'no', '--logfile', self.log,
             '--unixsocket', self.sock],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir)
        if self.wait_ready():
            return True
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc = None
        return False


    def wait_ready(self):
        # Asked on its private Unix socket, which redis-server creates only
        # once its TCP port is bound: on 127.0.0.1:port a server that took
        # the port first would answer for it.
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
                    c.settimeout(0.5)
                    c.connect(self.sock)
                    c.sendall(b'PING\r\n')
                    if c.recv(64).startswith(b'+PONG'):
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def dsn(self):
        return 'redis://127.0.0.1:%d/0' % self.port



def main(argv):
    return run_main('redisserver.py', 'redis', Server, 'MIKA_TEST_REDIS_DSN', argv)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
