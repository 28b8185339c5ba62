"""tests/pkg/chroot_announce.py: a packaged mika answers a real announce.

Usage: chroot_announce.py --root DIR --db PATH [--env-file FILE] [--health CMD]
                          -- COMMAND...

Starts COMMAND (a mika daemon inside the chroot DIR, e.g. `chroot
--userspec=... DIR /usr/bin/mika serve`), with MIKA_SERVER_PORT and
MIKA_API_PORT set to free loopback ports and the client whitelist off; waits
for it to listen; adds a user and a torrent to its SQLite store (PATH inside
DIR) and reloads it with SIGHUP; then a seeder and a leecher announce, and
the leecher must be given the seeder. With --health, CMD (a shell command
line, run with the same environment) must exit 0 while the daemon runs.
--env-file names a file of NAME=VALUE lines (an image's ENV) to start from.
Finally SIGTERM must stop the daemon with exit 0.

The daemon shares the host's network (chroot is no namespace), so the
announces come from here, through mikatest's strict HTTP and bencode.
"""

import argparse
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
import mikatest as mt  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--root', required=True)
    ap.add_argument('--db', required=True, help='the store path inside the chroot')
    ap.add_argument('--health')
    ap.add_argument('--env-file')
    ap.add_argument('--timeout', type=float, default=60.0)
    ap.add_argument('command', nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command[:1] == ['--'] else a.command
    port, api_port = mt.free_port(), mt.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith('MIKA_')}
    if a.env_file:
        with open(a.env_file) as f:
            env.update(line.rstrip('\n').split('=', 1) for line in f if '=' in line)
    env.update({'MIKA_SERVER_PORT': str(port), 'MIKA_API_PORT': str(api_port),
                'MIKA_TRACKER_WHITELIST': 'false', 'MIKA_SERVER_IPV6': 'false'})
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)

    def log_text():
        log.seek(0)
        return log.read().decode('utf-8', 'replace')

    def wait_log(text, after=0):
        deadline = time.monotonic() + a.timeout
        while text not in log_text()[after:]:
            if proc.poll() is not None:
                raise SystemExit('daemon exited %d before %r:\n%s'
                                 % (proc.returncode, text, log_text()))
            if time.monotonic() > deadline:
                raise SystemExit('no %r after %.0f s:\n%s' % (text, a.timeout, log_text()))
            time.sleep(0.05)

    try:
        wait_log('listening on port %d' % port)
        db = os.path.join(a.root, a.db.lstrip('/'))
        import sqlite3
        con = sqlite3.connect(db, timeout=10, isolation_level=None)
        passkey = mt.random_passkey()
        info_hash = mt.random_hash()
        con.execute('INSERT INTO users (passkey, enabled, can_download) VALUES (?, 1, 1)',
                    (passkey,))
        con.execute('INSERT INTO torrents (info_hash, enabled, deleted, deleted_reason) '
                    'VALUES (?, 1, 0, "")', (info_hash,))
        con.close()
        mark = len(log_text())
        proc.send_signal(signal.SIGHUP)
        wait_log('reloaded: 1 users, 1 torrents', mark)

        seeder, leecher = mt.peer_id(), mt.peer_id()
        status, _, body = mt.get(port, mt.announce_url(passkey, info_hash, seeder, 6881,
                                                       left=0, event='started'))
        assert status == 200, (status, body)
        status, _, body = mt.get(port, mt.announce_url(passkey, info_hash, leecher, 6882,
                                                       left=1000, event='started'))
        assert status == 200, (status, body)
        d = mt.bdecode(body)
        assert b'failure reason' not in d, d
        peers = mt.split_peers(d[b'peers'])
        assert peers == [mt.compact4('127.0.0.1', 6881)], peers
        assert d[b'complete'] == 1 and d[b'incomplete'] == 1, d
        print('announce through the packaged daemon: ok (seeder given to the leecher)')

        if a.health:
            r = subprocess.run(a.health, shell=True, env=env, capture_output=True, timeout=30)
            if r.returncode != 0:
                raise SystemExit('health check %r exited %d: %s%s'
                                 % (a.health, r.returncode, r.stdout.decode(),
                                    r.stderr.decode()))
            print('health check: ok (%s)' % shlex.split(a.health)[-1])

        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=a.timeout)
        if rc != 0:
            raise SystemExit('daemon exited %d on SIGTERM:\n%s' % (rc, log_text()))
        print('SIGTERM: stopped with exit 0')
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return 0


if __name__ == '__main__':
    sys.exit(main())
