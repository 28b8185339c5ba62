#!/usr/bin/python3
"""Stores chosen per kind: users, torrents and peers in separate backends.

What the daemon must show when [store.users], [store.torrents] and
[store.peers] name different places: every announce answered, each
backend holding only its own kind, the books exact, a snatch counted once,
peers' baselines restored across a restart with their torrents named from
the torrents' backend, and a config that names a server backend without an
address refused with the key named. Server backends (PostgreSQL, MariaDB,
Redis) run the same daemon through their own tests; this one needs none.
"""
import os
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))

from mikatest import Mika, MikaApi, bdecode, peer_id, random_hash, run_mika  # noqa: E402


def rows(path, sql, args=()):
    con = sqlite3.connect(path, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


class SplitSqliteTest(unittest.TestCase):
    """Users in mika.db, torrents in torrents.db, peers in peers.db."""

    def setUp(self):
        self.m = MikaApi({'log': {'level': 'info'},
                       'tracker': {'interval': 120, 'min_interval': 60}})
        self.addCleanup(self.m.cleanup)
        self.torrents_db = os.path.join(self.m.dir, 'torrents.db')
        self.peers_db = os.path.join(self.m.dir, 'peers.db')
        self.m.config['store.torrents'] = {'path': self.torrents_db}
        self.m.config['store.peers'] = {'path': self.peers_db}
        self.m.write_config()
        self.m.start()

    def add_torrent(self):
        ih = random_hash()
        con = sqlite3.connect(self.torrents_db, timeout=10, isolation_level=None)
        try:
            tid = con.execute('INSERT INTO torrents (info_hash) VALUES (?)', (ih,)).lastrowid
        finally:
            con.close()
        return tid, ih

    def announce(self, pk, ih, pid, **kw):
        d = bdecode(self.m.announce(pk, ih, pid, 6881, numwant=5, **kw))
        self.assertNotIn(b'failure reason', d)
        return d

    def raw(self, uid):
        return rows(self.m.db_path, 'SELECT raw_uploaded, raw_downloaded FROM users WHERE id = ?',
                    (uid,))[0]

    def test_each_kind_lands_in_its_own_backend_and_survives_a_restart(self):
        m = self.m
        (u1, pk1), (u2, pk2) = m.add_user(), m.add_user()
        t1, ih1 = self.add_torrent()
        m.reload()
        p1, p2 = peer_id(), peer_id()
        self.announce(pk1, ih1, p1, uploaded=0, downloaded=0, left=100)
        self.announce(pk1, ih1, p1, uploaded=10, downloaded=100, left=0, event='completed')
        self.announce(pk1, ih1, p1, uploaded=20, downloaded=100, left=0, event='completed')
        self.announce(pk2, ih1, p2, uploaded=5, downloaded=0, left=0)
        self.announce(pk2, ih1, p2, uploaded=505, downloaded=0, left=0)
        m.stop()

        self.assertEqual(self.raw(u1), (20, 100))
        self.assertEqual(self.raw(u2), (500, 0))
        # The torrents' backend counts the snatch once and the bytes moved;
        # the users' backend has the user's snatch and history.
        self.assertEqual(rows(self.torrents_db,
                              'SELECT snatches, transferred FROM torrents WHERE id = ?', (t1,)),
                         [(1, 100)])
        self.assertEqual(rows(m.db_path, 'SELECT user_id, torrent_id FROM snatches'), [(u1, t1)])
        self.assertEqual(rows(m.db_path, 'SELECT count(*) FROM torrents'), [(0,)])
        self.assertEqual(rows(m.db_path, 'SELECT count(*) FROM peer_reports'), [(0,)])
        self.assertEqual(rows(self.torrents_db, 'SELECT count(*) FROM users'), [(0,)])
        self.assertEqual(
            sorted(rows(self.peers_db, 'SELECT user_id, torrent_id, uploaded FROM peer_reports')),
            sorted([(u1, t1, 20), (u2, t1, 505)]))
        # Each backend recorded the segments it applied, for exactly-once.
        for path in (m.db_path, self.torrents_db, self.peers_db):
            self.assertGreater(rows(path, 'SELECT count(*) FROM journal_applied')[0][0], 0, path)

        m.start()
        # Peers came back from peers.db, named through torrents.db: the
        # swarm is there, and each baseline credits the true delta.
        d = self.announce(pk2, ih1, p2, uploaded=600, downloaded=0, left=0)
        self.assertEqual((d[b'complete'], d[b'downloaded']), (2, 1))
        self.announce(pk1, ih1, p1, uploaded=25, downloaded=100, left=0, event='completed')
        m.stop()
        self.assertEqual(self.raw(u1), (25, 100))
        self.assertEqual(self.raw(u2), (595, 0))
        self.assertEqual(rows(self.torrents_db, 'SELECT snatches FROM torrents'), [(1,)])

    def test_the_api_names_history_rows_from_the_torrents_backend(self):
        m = self.m
        uid, pk = m.add_user()
        _, ih = self.add_torrent()
        m.reload()
        pid = peer_id()
        self.announce(pk, ih, pid, uploaded=0, downloaded=0, left=10)
        self.announce(pk, ih, pid, uploaded=0, downloaded=10, left=0, event='completed')
        m.stop()
        m.start()
        status, _, body = m.api('GET', '/api/v1/users/%d/history' % uid)
        self.assertEqual(status, 200, body)
        self.assertEqual([r['info_hash'] for r in body['history']], [ih.hex()])


class MemoryPeersTest(unittest.TestCase):
    """[store.peers] backend = memory: nothing of the swarms outlives the
    process, and the books stay exact."""

    def test_memory_peers_keep_the_books_and_forget_the_swarm(self):
        with Mika({'log': {'level': 'info'}, 'store.peers': {'backend': 'memory'}}) as m:
            uid, pk = m.add_user()
            _, ih = m.add_torrent()
            m.reload()
            pid = peer_id()
            for up in (0, 40, 90):
                bdecode(m.announce(pk, ih, pid, 6881, uploaded=up, downloaded=0, left=0))
            m.stop()
            self.assertEqual(rows(m.db_path, 'SELECT count(*) FROM peer_reports'), [(0,)])
            self.assertEqual(rows(m.db_path, 'SELECT raw_uploaded FROM users WHERE id = ?',
                                  (uid,)), [(90,)])
            m.start()
            self.assertEqual(m.scrape_counts(pk, ih)[0], 0)


class StoreConfigTest(unittest.TestCase):

    def test_a_server_backend_without_a_dsn_is_refused_naming_the_key(self):
        m = Mika({'store.torrents': {'backend': 'postgres'}})
        self.addCleanup(m.cleanup)
        rc, _, err = run_mika(['serve', '--config', m.config_path])
        self.assertNotIn(rc, (0, None))
        self.assertIn('store.torrents: backend "postgres" needs a dsn', err)

    def test_an_unknown_backend_is_refused_with_the_choices(self):
        m = Mika({'store.users': {'backend': 'oracle'}})
        self.addCleanup(m.cleanup)
        rc, _, err = run_mika(['serve', '--config', m.config_path])
        self.assertNotIn(rc, (0, None))
        self.assertIn('store.users.backend', err)
        self.assertIn('sqlite, memory, postgres, mysql, redis', err)


if __name__ == '__main__':
    unittest.main()
