"""Users in PostgreSQL, torrents in MariaDB, peers in Redis: one daemon.

Owns: the configuration issue 6 names as the proof that each kind of state
chooses its own server backend ([store.users], [store.torrents],
[store.peers]), with all three throwaway servers started here on loopback;
the books, a snatch counted once, the torrent's bytes and the swarm brought
back after a restart, all read through the tracker and its admin API.
Not here: each backend's own rows (tests/conformance/), outages
(test_server_faults.py), split SQLite files (test_stores.py).
"""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'lib'))
from mikatest import MikaApi, bdecode, peer_id, random_hash, run_tests  # noqa: E402
from servers import SERVERS  # noqa: E402

PLACES = (('users', 'postgres'), ('torrents', 'mysql'), ('peers', 'redis'))


class MixedServersTest(unittest.TestCase):

    def setUp(self):
        config = {'tracker': {'interval': 60, 'min_interval': 1}, 'log': {'level': 'info'}}
        for kind, backend in PLACES:
            srv = SERVERS[backend]()
            srv.start()
            self.addCleanup(srv.stop)
            config['store.' + kind] = {'backend': backend, 'dsn': srv.dsn()}
        self.m = MikaApi(config)
        self.addCleanup(self.m.cleanup)
        self.m.start(timeout=30)

    def announce(self, pk, ih, pid, **kw):
        d = bdecode(self.m.announce(pk, ih, pid, 6881, numwant=10, **kw))
        self.assertNotIn(b'failure reason', d)
        return d

    def test_each_kind_on_its_own_server_keeps_the_books_across_a_restart(self):
        m = self.m
        ih = random_hash()
        m.api_ok('POST', '/api/v1/torrents', {'info_hash': ih.hex()}, status=201)
        u1 = m.api_ok('POST', '/api/v1/users', {}, status=201)
        u2 = m.api_ok('POST', '/api/v1/users', {}, status=201)
        p1, p2 = peer_id(), peer_id()
        self.announce(u1['passkey'], ih, p1, uploaded=0, downloaded=0, left=100)
        self.announce(u2['passkey'], ih, p2, uploaded=5, downloaded=0, left=0)
        self.announce(u1['passkey'], ih, p1, uploaded=10, downloaded=100, left=0,
                      event='completed')
        self.announce(u1['passkey'], ih, p1, uploaded=20, downloaded=100, left=0,
                      event='completed')
        self.announce(u2['passkey'], ih, p2, uploaded=505, downloaded=0, left=0)
        m.stop(timeout=30)

        m.start(timeout=30)
        self.assertIn('restored 2 peers', m.log_text())
        # The swarm came back from Redis, named through MariaDB: two seeders,
        # one snatch, and each baseline credits only the true delta.
        d = self.announce(u2['passkey'], ih, p2, uploaded=600, downloaded=0, left=0)
        self.assertEqual((d[b'complete'], d[b'incomplete'], d[b'downloaded']), (2, 0, 1))
        self.announce(u1['passkey'], ih, p1, uploaded=25, downloaded=100, left=0)
        m.stop(timeout=30)

        m.start(timeout=30)
        got1 = m.api_ok('GET', '/api/v1/users/%d' % u1['id'])
        got2 = m.api_ok('GET', '/api/v1/users/%d' % u2['id'])
        self.assertEqual((got1['raw_uploaded'], got1['raw_downloaded']), (25, 100))
        self.assertEqual((got2['raw_uploaded'], got2['raw_downloaded']), (595, 0))
        stats = m.api_ok('GET', '/api/v1/users/%d/stats' % u1['id'])
        self.assertEqual((stats['snatches'], stats['raw_uploaded']), (1, 25))
        t = m.api_ok('GET', '/api/v1/torrents/%s' % ih.hex())
        self.assertEqual((t['snatches'], t['transferred']), (1, 100))
        hist = m.api_ok('GET', '/api/v1/users/%d/history' % u1['id'])
        rows = hist['history'] if isinstance(hist, dict) else hist
        self.assertEqual([r['info_hash'] for r in rows], [ih.hex()])


if __name__ == '__main__':
    run_tests(globals())
