#!/usr/bin/python3
"""pgserver: a throwaway PostgreSQL server for the store tests.

Owns: initdb in a fresh temp directory, one `postgres` process on 127.0.0.1
and a free port, a database `mika_test`, halting and resuming it on the same
port (an outage, for the fault tests), and tearing all of it down.
Not here: any schema (mika creates its own at open) or test logic.

Usage, as CTest runs it:

    pgserver.py run -- <command> [args...]

starts the server, runs the command with MIKA_TEST_PG_DSN set to a libpq
keyword/value DSN ("host=127.0.0.1 port=... user=postgres dbname=mika_test"),
stops the server and exits with the command's status. A server that cannot
start is a failure (exit 1, its log on stderr), never a skip.

The server is an ordinary process: initdb refuses to run as root, so as root
the data directory is handed to the `postgres` user the Debian package
creates (or `nobody`) and both initdb and postgres run as that user.
Durability is off (fsync, synchronous_commit): the data dies with the test.
"""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from throwaway import ThrowawayServer, run_main

START_TIMEOUT = 30.0 * float(os.environ.get('MIKA_TEST_TIMEOUT_SCALE', '1') or '1')


def bindir():
    """The newest installed server's binaries (Debian keeps them off PATH)."""
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/postgres'),
                   key=lambda p: int(p.split('/')[4]) if p.split('/')[4].isdigit() else 0)
    if found:
        return os.path.dirname(found[-1])
    path = shutil.which('postgres')
    if path:
        return os.path.dirname(path)
    sys.exit('pgserver: no PostgreSQL server installed (scripts/deps.sh test installs postgresql)')


class Server(ThrowawayServer):
    STOP_SIGNAL = signal.SIGINT  # fast shutdown: sessions are cut

    def __init__(self):
        self.bin = bindir()
        self.dir = tempfile.mkdtemp(prefix='mika-pg-')
        self.data = os.path.join(self.dir, 'data')
        self.log = os.path.join(self.dir, 'log')
        self.proc = None
        self.port = None
        self.user = None
        if os.geteuid() == 0:
            for name in ('postgres', 'nobody'):
                try:
                    self.user = pwd.getpwnam(name)
                    break
                except KeyError:
                    pass
            if self.user is None:
                self.fail('running as root and there is no postgres or nobody user')
            os.chmod(self.dir, 0o700)
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)

    def demote(self):
        if self.user is not None:
            os.setgroups([])
            os.setgid(self.user.pw_gid)
            os.setuid(self.user.pw_uid)

    def fail(self, why):
        sys.stderr.write('pgserver: %s\n' % why)
        if os.path.exists(self.log):
            with open(self.log, errors='replace') as f:
                sys.stderr.write(f.read()[-4000:])
        self.stop()
        sys.exit(1)

    def run(self, args):
        env = dict(os.environ, LC_ALL='C', HOME=self.dir)
        r = subprocess.run(args, preexec_fn=self.demote, env=env, cwd=self.dir,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            self.fail('%s failed (%d):\n%s' % (' '.join(args), r.returncode, r.stdout))

    def start(self):
        self.run([os.path.join(self.bin, 'initdb'), '-D', self.data, '-U', 'postgres',
                  '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'])
        self.launch_on_free_port('postgres')
        self.run([os.path.join(self.bin, 'psql'), '-X', '-q', '-h', '127.0.0.1',
                  '-p', str(self.port), '-U', 'postgres', '-d', 'postgres',
                  '-c', 'CREATE DATABASE mika_test'])

    def launch(self):
        """Starts postgres on self.data and self.port; True once it answers."""
        logf = open(self.log, 'ab')
        self.proc = subprocess.Popen(
            [os.path.join(self.bin, 'postgres'), '-D', self.data, '-p', str(self.port),
             '-k', self.dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off',
             '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
             '-c', 'max_connections=50'],
            preexec_fn=self.demote, stdout=logf, stderr=logf, cwd=self.dir)
        logf.close()
        if self.wait_ready():
            return True
        self.proc.wait()
        self.proc = None
        return False


    def wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            # Asked on its Unix socket in self.dir, which postgres creates only
            # once its TCP port is bound: on 127.0.0.1:port a server that took
            # the port first would answer for it.
            r = subprocess.run([os.path.join(self.bin, 'pg_isready'), '-q', '-h', self.dir,
                                '-p', str(self.port)])
            if r.returncode == 0:
                return True
            time.sleep(0.05)
        self.proc.kill()
        return False

    def dsn(self):
        return 'host=127.0.0.1 port=%d user=postgres dbname=mika_test' % self.port



def main(argv):
    return run_main('pgserver.py', 'postgres', Server, 'MIKA_TEST_PG_DSN', argv)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
