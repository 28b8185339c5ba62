"""A server store that goes away under load and comes back.

Owns: for each server backend, one daemon whose users, torrents and peers all
live on a throwaway server that this test starts on loopback; announces with
known deltas before, during and after the server is stopped; and the check
that every announce was answered and every answered byte reached the store
exactly once (read back through the admin API after a restart, so the test
knows nothing of the backend's tables).
Not here: what the backends store row by row (tests/conformance/), or the
SQLite outage (test_books.py locks the file instead).

Each backend in tests/lib/servers.py's SERVERS gets its TestCase here.
"""
import os
import random
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'lib'))
from mikatest import MikaApi, bdecode, peer_id, random_hash, run_tests  # noqa: E402
from servers import SERVERS, store_config  # noqa: E402

USERS = 12
ROUNDS_BEFORE, ROUNDS_DURING, ROUNDS_AFTER = 3, 4, 3


class Peer:
    """One user's client on one torrent, and what its answered announces add."""

    def __init__(self, uid, passkey, info_hash, rng):
        self.uid, self.passkey, self.info_hash = uid, passkey, info_hash
        self.pid = peer_id()
        self.port = rng.randrange(10000, 60000)
        self.up = self.down = 0
        self.booked_up = self.booked_down = 0
        self.started = False


class ServerFaultMixin:
    """The server stopped during load and started again: announces kept being
    answered; the books exact."""

    BACKEND = None

    def setUp(self):
        self.srv = SERVERS[self.BACKEND]()
        self.srv.start()
        self.addCleanup(self.srv.stop)
        self.m = MikaApi({'store': store_config(self.BACKEND, self.srv),
                          'tracker': {'interval': 60, 'min_interval': 1},
                          'log': {'level': 'info'}})
        self.addCleanup(self.m.cleanup)
        self.m.start(timeout=30)

    def announce(self, p, rng):
        """One announce of p with fresh counters; the delta is booked only
        when it was answered (it must be: the store is never on the path)."""
        if p.started:
            up, down = p.up + rng.randrange(1, 1 << 20), p.down + rng.randrange(0, 1 << 18)
        else:
            up, down = 0, 0
        body = self.m.announce(p.passkey, p.info_hash, p.pid, p.port, uploaded=up,
                               downloaded=down, left=1000, numwant=5,
                               event='' if p.started else 'started')
        d = bdecode(body)
        self.assertNotIn(b'failure reason', d, 'user %d: %r' % (p.uid, d))
        if p.started:
            p.booked_up += up - p.up
            p.booked_down += down - p.down
        p.up, p.down, p.started = up, down, True

    def test_server_stopped_under_load_then_back_loses_nothing(self):
        m, rng = self.m, random.Random(1234)
        torrents = []
        for _ in range(2):
            ih = random_hash()
            m.api_ok('POST', '/api/v1/torrents', {'info_hash': ih.hex()}, status=201)
            torrents.append(ih)
        peers = []
        for i in range(USERS):
            u = m.api_ok('POST', '/api/v1/users', {}, status=201)
            peers.append(Peer(u['id'], u['passkey'], torrents[i % 2], rng))

        for _ in range(ROUNDS_BEFORE):
            for p in peers:
                self.announce(p, rng)
        off = m.log_offset()
        self.srv.halt()
        t0 = time.monotonic()
        slowest = 0.0
        for _ in range(ROUNDS_DURING):
            for p in peers:
                a = time.monotonic()
                self.announce(p, rng)
                slowest = max(slowest, time.monotonic() - a)
            time.sleep(0.3)  # let segments close and the flusher meet the outage
        m.wait_log('store unavailable', off, timeout=15)
        outage = time.monotonic() - t0
        self.srv.resume()
        for _ in range(ROUNDS_AFTER):
            for p in peers:
                self.announce(p, rng)
        print('%s: %d announces answered in a %.1f s outage, slowest %.0f ms'
              % (self.BACKEND, USERS * ROUNDS_DURING, outage, slowest * 1000), file=sys.stderr)
        self.assertLess(slowest, 1.0)

        # SIGTERM flushes what waits (the server is back); a restart then
        # reads the books back from the server through the API.
        m.stop(timeout=30)
        m.start(timeout=30)
        for p in peers:
            u = m.api_ok('GET', '/api/v1/users/%d' % p.uid)
            self.assertEqual((u['raw_uploaded'], u['raw_downloaded']),
                             (p.booked_up, p.booked_down), 'user %d' % p.uid)
        for ih in torrents:
            t = m.api_ok('GET', '/api/v1/torrents/%s' % ih.hex())
            want = sum(p.booked_down for p in peers if p.info_hash == ih)
            self.assertEqual(t['transferred'], want, ih.hex())


for _name in SERVERS:
    _cls = type('%sFaultTest' % _name.capitalize(), (ServerFaultMixin, unittest.TestCase),
                {'BACKEND': _name})
    globals()[_cls.__name__] = _cls
del _name, _cls


if __name__ == '__main__':
    run_tests(globals())
