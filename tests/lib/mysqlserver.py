#!/usr/bin/python3
"""mysqlserver: a throwaway MariaDB server for the store tests.

Owns: mariadb-install-db in a fresh temp directory, one `mariadbd` process
listening on 127.0.0.1 only, on a free port, a database `mika_test` and a
user `mika` (with a password that needs percent-encoding, so the dsn parser
is exercised), halting and resuming it on the same port (an outage, for the
fault tests), and tearing all of it down.
Not here: any schema (mika creates its own at open) or test logic.

Usage, as CTest runs it:

    mysqlserver.py run -- <command> [args...]

starts the server, runs the command with MIKA_TEST_MYSQL_DSN set to
"mysql://mika:...@127.0.0.1:<port>/mika_test", stops the server and exits
with the command's status. A server that cannot start is a failure (exit 1,
its log on stderr), never a skip.

The server is an ordinary process: as root, the directory is handed to the
`mysql` user the Debian package creates (or `nobody`) and mariadbd runs with
--user. Durability is off (no flush at commit, no doublewrite, no binlog,
nosync): the data dies with the test. `mika` gets every privilege, since the
tests create and drop a database per test and KILL mika's sessions.
"""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

from throwaway import ThrowawayServer, run_main

START_TIMEOUT = 30.0 * float(os.environ.get('MIKA_TEST_TIMEOUT_SCALE', '1') or '1')
USER = 'mika'
PASSWORD = 'p@ss:w/rd%1'
# The same for mariadb-install-db's bootstrap and the server, so the files
# the first makes suit the second.
INNODB = ['--innodb-buffer-pool-size=32M', '--innodb-log-file-size=16M',
          '--innodb-doublewrite=0', '--innodb-flush-log-at-trx-commit=0',
          '--innodb-flush-method=nosync', '--innodb-file-per-table=0']


def find(name):
    for d in ('/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin'):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return shutil.which(name)


class Server(ThrowawayServer):
    def __init__(self):
        self.mariadbd = find('mariadbd') or find('mysqld')
        self.install = find('mariadb-install-db') or find('mysql_install_db')
        self.client = find('mariadb') or find('mysql')
        self.dir = tempfile.mkdtemp(prefix='mika-mysql-')
        self.data = os.path.join(self.dir, 'data')
        self.sock = os.path.join(self.dir, 'sock')
        # With an extension: mariadbd adds `.err` to a --log-error name that
        # has none, and its errors (a taken port among them) would miss this file.
        self.log = os.path.join(self.dir, 'log.err')
        # Temporary tables in a directory of this server's own: two servers
        # set up at once (CTest runs tests in parallel) must not meet in /tmp.
        self.tmp = os.path.join(self.dir, 'tmp')
        os.mkdir(self.tmp)
        self.proc = None
        self.port = None
        self.user = None
        if not (self.mariadbd and self.install and self.client):
            self.fail('no MariaDB server installed (scripts/deps.sh test installs mariadb-server)')
        if os.geteuid() == 0:
            for name in ('mysql', 'nobody'):
                try:
                    self.user = pwd.getpwnam(name)
                    break
                except KeyError:
                    pass
            if self.user is None:
                self.fail('running as root and there is no mysql or nobody user')
            os.chmod(self.dir, 0o700)
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
            os.chown(self.tmp, self.user.pw_uid, self.user.pw_gid)

    def own_args(self):
        """The user to run as (when root) and this server's own tmpdir."""
        user = ['--user=%s' % self.user.pw_name] if self.user is not None else []
        return user + ['--tmpdir=' + self.tmp]

    def fail(self, why):
        sys.stderr.write('mysqlserver: %s\n' % why)
        if os.path.exists(self.log):
            with open(self.log, errors='replace') as f:
                sys.stderr.write(f.read()[-4000:])
        self.stop()
        sys.exit(1)

    def run(self, args, stdin=None):
        r = subprocess.run(args, input=stdin, cwd=self.dir, env=dict(os.environ, LC_ALL='C'),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            self.fail('%s failed (%d):\n%s' % (' '.join(args), r.returncode, r.stdout))

    def start(self):
        self.run([self.install, '--no-defaults', '--datadir=' + self.data,
                  '--auth-root-authentication-method=normal', '--skip-test-db',
                  '--skip-name-resolve'] + self.own_args() + INNODB)
        self.launch_on_free_port('mariadbd')
        pw = PASSWORD.replace("'", "''")
        self.run([self.client, '--no-defaults', '-S', self.sock, '-u', 'root'],
                 stdin="CREATE DATABASE mika_test CHARACTER SET utf8mb4;"
                       "CREATE USER '%s'@'%%' IDENTIFIED BY '%s';"
                       "GRANT ALL PRIVILEGES ON *.* TO '%s'@'%%' WITH GRANT OPTION;"
                       % (USER, pw, USER))

    def launch(self):
        """Starts mariadbd on self.data and self.port; True once it answers."""
        logf = open(self.log, 'ab')
        if self.user is not None:  # mariadbd writes it too, as that user
            os.chown(self.log, self.user.pw_uid, self.user.pw_gid)
        self.proc = subprocess.Popen(
            [self.mariadbd, '--no-defaults', '--datadir=' + self.data,
             '--port=%d' % self.port, '--skip-networking=0', '--bind-address=127.0.0.1',
             '--socket=' + self.sock,
             '--pid-file=' + os.path.join(self.dir, 'pid'), '--skip-name-resolve',
             '--skip-log-bin', '--max-connections=50', '--log-error=' + self.log,
             '--character-set-server=utf8mb4', '--collation-server=utf8mb4_bin']
            + self.own_args() + INNODB,
            stdout=logf, stderr=logf, cwd=self.dir)
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
            r = subprocess.run([self.client, '--no-defaults', '-S', self.sock, '-u', 'root',
                                '-e', 'SELECT 1'],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                return True
            time.sleep(0.05)
        self.proc.kill()
        return False

    def dsn(self):
        q = urllib.parse.quote
        return 'mysql://%s:%s@127.0.0.1:%d/mika_test' % (q(USER, safe=''), q(PASSWORD, safe=''),
                                                         self.port)



def main(argv):
    return run_main('mysqlserver.py', 'mariadb', Server, 'MIKA_TEST_MYSQL_DSN', argv)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
