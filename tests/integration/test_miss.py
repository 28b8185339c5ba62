"""The miss path: a passkey or info_hash not in memory is looked up in the
store once, off the event loop, and the answer is cached (a negative one
for tracker.miss_cache_seconds), so that rows a site inserts straight into
the database are served on their first announce without SIGHUP, a flood of
unknown passkeys costs a bounded number of store reads, and a store that is
locked or failing never holds up announces of known users.

Store reads are counted from /metrics (mika_lookup_store_seconds_count, and
mika_lookups_total by kind and result).
"""
import os
import re
import socket
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
from mikatest import (MikaTestCase, TIMEOUT_SCALE, announce_url, bdecode,  # noqa: E402
                      build_request, failure, peer_id, random_hash, random_passkey, run_tests)

LIMIT = 20           # tracker.passkey_guess_limit
ADDRESSES = 4        # guessing addresses in the flood
TRY_LATER = b'tracker cannot look this up now, try again later'


def get_from(port, addr, path):
    """One request on a fresh connection from source address addr: the body."""
    with socket.create_connection(('127.0.0.1', port), timeout=5 * TIMEOUT_SCALE,
                                  source_address=(addr, 0)) as s:
        s.sendall(('GET %s HTTP/1.1\r\nHost: t\r\n\r\n' % path).encode('latin-1'))
        buf = b''
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            head, sep, body = buf.partition(b'\r\n\r\n')
            if sep and b'Content-Length: %d' % len(body) in head:
                break
        return buf.partition(b'\r\n\r\n')[2]


class MissTest(MikaTestCase):
    with_api = True
    config = {'tracker': {'interval': 600, 'min_interval': 300, 'passkey_guess_limit': LIMIT,
                          'miss_cache_seconds': 60}}

    def metrics(self):
        status, _, text = self.mika.api('GET', '/metrics')
        self.assertEqual(status, 200)
        out = {}
        for line in text.splitlines():
            m = re.match(r'^(mika_lookup\S+) (\S+)$', line)
            if m:
                out[m.group(1)] = float(m.group(2))
        return out

    def reads(self):
        return self.metrics()['mika_lookup_store_seconds_count']

    def lookups(self, kind, result):
        return self.metrics()['mika_lookups_total{kind="%s",result="%s"}' % (kind, result)]

    def test_rows_inserted_straight_into_the_database_are_served_at_once(self):
        m = self.mika
        before = self.metrics()
        uid, pk = m.add_user()
        _, ih = m.add_torrent()
        d = bdecode(m.announce(pk, ih, peer_id(), 6881, left=0))
        self.assertNotIn(b'failure reason', d)
        self.assertEqual(d[b'complete'], 1)
        after = self.metrics()
        self.assertEqual(after['mika_lookups_total{kind="passkey",result="found"}'] -
                         before['mika_lookups_total{kind="passkey",result="found"}'], 1)
        self.assertEqual(after['mika_lookups_total{kind="info_hash",result="found"}'] -
                         before['mika_lookups_total{kind="info_hash",result="found"}'], 1)
        # In memory now: the next announce reads nothing.
        reads = self.reads()
        d = bdecode(m.announce(pk, ih, peer_id(), 6882, left=5))
        self.assertEqual((d[b'complete'], d[b'incomplete']), (1, 1))
        self.assertEqual(self.reads(), reads)
        # The rows' flags count: no download right, a deleted torrent's reason.
        _, pk_ro = m.add_user(can_download=False)
        self.assertEqual(m.get(announce_url(pk_ro, ih, peer_id(), 6883, left=5))[2],
                         failure('downloading not allowed for this account'))
        _, ih_gone = m.add_torrent(deleted=True, reason='dupe of #7')
        self.assertEqual(m.get(announce_url(pk, ih_gone, peer_id(), 6884, left=5))[2],
                         failure('unregistered torrent: dupe of #7'))
        # A scrape's passkey is looked up too.
        _, pk_s = m.add_user()
        self.assertIn(b'5:files', m.scrape(pk_s, ih))
        # And SIGHUP still works and keeps them.
        m.reload()
        self.assertNotIn(b'failure', m.announce(pk, ih, peer_id(), 6885, left=0))

    def test_unknown_passkeys_cost_a_bounded_number_of_reads(self):
        m = self.mika
        _, ih = m.add_torrent()
        reads = self.reads()
        answers = []
        for i in range(1000):
            addr = '127.6.0.%d' % (1 + i % ADDRESSES)
            path = announce_url(random_passkey(), ih, peer_id(), 6881, left=1)
            answers.append(get_from(m.port, addr, path))
        unknown = sum(a == failure('unknown passkey') for a in answers)
        refused = sum(b'too many unknown passkeys' in a for a in answers)
        self.assertEqual(unknown + refused, 1000, set(answers))
        spent = self.reads() - reads
        # Each address is refused past its share of the guessing limit (per
        # worker, rounded up), before any lookup: a read per guess at most.
        self.assertLessEqual(spent, ADDRESSES * (LIMIT + 2))
        self.assertEqual(spent, unknown)

        # One unknown passkey asked again and again: one read in the cache time.
        pk = random_passkey()
        reads = self.reads()
        cached = self.lookups('passkey', 'cached_negative')
        for _ in range(8):
            self.assertEqual(get_from(m.port, '127.6.1.1',
                                      announce_url(pk, ih, peer_id(), 6881, left=1)),
                             failure('unknown passkey'))
        self.assertEqual(self.reads() - reads, 1)
        self.assertEqual(self.lookups('passkey', 'cached_negative') - cached, 7)
        # The same for an unknown info_hash.
        _, known = self.new_user()
        unknown_ih = random_hash()
        reads = self.reads()
        for port in range(6890, 6895):
            self.assertEqual(m.get(announce_url(known, unknown_ih, peer_id(), port, left=1))[2],
                             failure('unregistered torrent'))
        self.assertEqual(self.reads() - reads, 1)

    def test_concurrent_misses_on_one_key_share_one_read(self):
        m = self.mika
        _, ih = m.add_torrent()
        uid, pk = m.add_user()
        reads = self.reads()
        bodies = []

        def one(port):
            bodies.append(m.get(announce_url(pk, ih, peer_id(), port, left=0))[2])

        threads = [threading.Thread(target=one, args=(7000 + i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(bodies), 8)
        for b in bodies:
            self.assertNotIn(b'failure', b)
        # One for the user, one for the torrent, however the 8 interleaved.
        self.assertLessEqual(self.reads() - reads, 2)

    def test_pipelined_requests_are_answered_in_order_around_a_lookup(self):
        m = self.mika
        _, known = self.new_user()
        _, ih = self.new_torrent()
        _, fresh = m.add_user()
        _, fresh_ih = m.add_torrent()
        urls = [announce_url(known, ih, peer_id(), 7101, left=0),
                announce_url(fresh, ih, peer_id(), 7102, left=0),       # a user lookup
                announce_url(random_passkey(), ih, peer_id(), 7103, left=0),
                announce_url(known, fresh_ih, peer_id(), 7104, left=0),  # a torrent lookup
                announce_url(fresh, fresh_ih, peer_id(), 7105, left=0, numwant=0)]
        answers, closed = m.exchange(b''.join(build_request(u) for u in urls), count=len(urls))
        self.assertFalse(closed)
        bodies = [a[2] for a in answers]
        self.assertEqual(bdecode(bodies[0])[b'complete'], 1)
        self.assertEqual(bdecode(bodies[1])[b'complete'], 2)
        self.assertEqual(bodies[2], failure('unknown passkey'))
        self.assertEqual(bdecode(bodies[3])[b'complete'], 1)
        self.assertEqual(bdecode(bodies[4])[b'complete'], 2)

    def test_a_locked_database_holds_up_no_known_user(self):
        m = self.mika
        _, known = self.new_user()
        _, ih = self.new_torrent()
        late_id_pk = random_passkey()
        con = sqlite3.connect(m.db_path, timeout=10, isolation_level=None)
        try:
            con.execute('BEGIN EXCLUSIVE')
            con.execute('INSERT INTO users (passkey) VALUES (?)', (late_id_pk,))
            locked_at = time.monotonic()
            t0 = time.monotonic()
            self.assertNotIn(b'failure', m.announce(known, ih, peer_id(), 6881, left=0))
            self.assertLess(time.monotonic() - t0, 0.5 * TIMEOUT_SCALE)
            # An unknown passkey waits for the store or is told to try again
            # later (SQLite in WAL mode lets the read see the last commit).
            t0 = time.monotonic()
            body = m.get(announce_url(random_passkey(), ih, peer_id(), 6882, left=0))[2]
            self.assertIn(body, (failure('unknown passkey'), failure(TRY_LATER.decode())))
            self.assertLess(time.monotonic() - t0, 5 * TIMEOUT_SCALE)
            # Known users meanwhile: still at once.
            t0 = time.monotonic()
            self.assertNotIn(b'failure', m.announce(known, ih, peer_id(), 6883, left=0))
            self.assertLess(time.monotonic() - t0, 0.5 * TIMEOUT_SCALE)
            time.sleep(max(0.0, 2.0 - (time.monotonic() - locked_at)))
            con.execute('COMMIT')
        finally:
            con.close()
        # The row the lock held back is found on its first announce.
        self.assertNotIn(b'failure', m.announce(late_id_pk, ih, peer_id(), 6884, left=0))

    def test_a_failing_store_says_try_again_later_and_caches_nothing(self):
        m = self.mika
        _, known = self.new_user()
        _, ih = self.new_torrent()
        pk = random_passkey()
        errors = self.lookups('passkey', 'store_error')
        con = sqlite3.connect(m.db_path, timeout=10, isolation_level=None)
        try:
            # The users table gone for a moment: every read of it fails.
            con.execute('ALTER TABLE users RENAME TO users_away')
            self.assertEqual(m.get(announce_url(pk, ih, peer_id(), 6881, left=0))[2],
                             failure(TRY_LATER.decode()))
            self.assertGreaterEqual(self.lookups('passkey', 'store_error') - errors, 1)
            t0 = time.monotonic()
            self.assertNotIn(b'failure', m.announce(known, ih, peer_id(), 6882, left=0))
            self.assertLess(time.monotonic() - t0, 0.5 * TIMEOUT_SCALE)
            con.execute('INSERT INTO users_away (passkey) VALUES (?)', (pk,))
        finally:
            con.execute('ALTER TABLE users_away RENAME TO users')
            con.close()
        # Not cached as unknown: the next try reads again and finds it.
        self.assertNotIn(b'failure', m.announce(pk, ih, peer_id(), 6883, left=0))


class QueueTest(MikaTestCase):
    """A full lookup queue answers "try again later" instead of waiting."""
    with_api = True
    config = {'server': {'workers': 1},
              'tracker': {'passkey_guess_limit': 0, 'miss_queue': 1, 'miss_cache_seconds': 0}}

    def test_full_queue_says_try_again_later(self):
        m = self.mika
        _, ih = self.new_torrent()
        # Many distinct unknown passkeys at once on one worker: the queue of
        # one key cannot take them all; each is either a read or refused.
        socks = []
        for _ in range(50):
            s = socket.create_connection(('127.0.0.1', m.port), timeout=5 * TIMEOUT_SCALE)
            path = announce_url(random_passkey(), ih, peer_id(), 6881, left=1)
            socks.append(s)
            s.sendall(('GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'
                       % path).encode())
        bodies = []
        for s in socks:
            buf = b''
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            s.close()
            bodies.append(buf.partition(b'\r\n\r\n')[2])
        kinds = set(bodies)
        self.assertLessEqual(kinds, {failure('unknown passkey'), failure(TRY_LATER.decode())})
        status, _, text = m.api('GET', '/metrics')
        full = int(re.search(r'mika_lookups_total\{kind="passkey",result="queue_full"\} (\d+)',
                             text).group(1))
        self.assertEqual(full, bodies.count(failure(TRY_LATER.decode())))
        # Fifty requests read in one loop turn, one store read at a time.
        self.assertGreater(full, 0)
        self.assertIn('mika_announce_failures_total{reason="lookup_unavailable"} %d' % full, text)


if __name__ == '__main__':
    run_tests(globals())
