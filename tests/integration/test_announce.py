"""Announce sequences against a running mika, with byte-exact answers.

Each test uses fresh torrents (and users where it matters) so that one daemon
serves the whole class. Peer selection is random, so where an answer holds
several peers the test compares the set of compact entries, and checks the
rest of the answer byte for byte.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
from mikatest import (LOCAL4, MikaTestCase, announce_answer, announce_url, bdecode,  # noqa: E402
                      compact4, failure, peer_id, run_tests, split_peers, wait_until,
                      TIMEOUT_SCALE)

INTERVAL = 600
MIN_INTERVAL = 300


def answer(complete, downloaded, incomplete, peers=b''):
    """The exact answer of this class's daemon to a v4 announce from 127.0.0.1."""
    return announce_answer(complete, downloaded, incomplete, INTERVAL, MIN_INTERVAL,
                           peers, LOCAL4)


def without_peers(body):
    """(decoded dict minus peers, set of compact peers): for answers whose peer
    order is random. Also checks that no entry is sent twice."""
    d = bdecode(body)
    peers = split_peers(d.pop(b'peers'))
    if len(set(peers)) != len(peers):
        raise AssertionError('a peer sent twice: %r' % body)
    return d, set(peers)


def counts(complete, downloaded, incomplete):
    """The decoded non-peer part of an answer of this class's daemon."""
    return {b'complete': complete, b'downloaded': downloaded, b'external ip': LOCAL4,
            b'incomplete': incomplete, b'interval': INTERVAL, b'min interval': MIN_INTERVAL}


class AnnounceTest(MikaTestCase):
    config = {'tracker': {'interval': INTERVAL, 'min_interval': MIN_INTERVAL,
                          'numwant_default': 5, 'numwant_max': 8}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.uid, cls.pk = cls.mika.add_user()
        cls.uid2, cls.pk2 = cls.mika.add_user()
        cls.mika.reload()

    def ann(self, info_hash, pid, port, pk=None, **kw):
        return self.mika.announce(pk or self.pk, info_hash, pid, port, **kw)

    def test_first_leecher_gets_no_peers_and_its_own_address(self):
        _, ih = self.new_torrent()
        body = self.ann(ih, peer_id(), 6881, left=1000, event='started')
        self.assertEqual(body, answer(0, 0, 1))

    def test_seeder_then_leecher_see_each_other(self):
        _, ih = self.new_torrent()
        seed, leech = peer_id(), peer_id(b'-TR3000-')
        self.assertEqual(self.ann(ih, seed, 7001, left=0, event='started'), answer(1, 0, 0))
        self.assertEqual(self.ann(ih, leech, 7002, left=500, event='started'),
                         answer(1, 0, 1, compact4('127.0.0.1', 7001)))
        self.assertEqual(self.ann(ih, seed, 7001, left=0), answer(1, 0, 1, compact4('127.0.0.1', 7002)))

    def test_seeder_gets_only_leechers(self):
        _, ih = self.new_torrent()
        for i in range(3):
            self.ann(ih, peer_id(), 7100 + i, left=0)
        for i in range(2):
            self.ann(ih, peer_id(), 7200 + i, left=10)
        d, peers = without_peers(self.ann(ih, peer_id(), 7300, left=0))
        self.assertEqual(d, counts(4, 0, 2))
        self.assertEqual(peers, {compact4('127.0.0.1', 7200), compact4('127.0.0.1', 7201)})
        # A leecher gets seeders and leechers alike.
        d, peers = without_peers(self.ann(ih, peer_id(), 7301, left=10))
        self.assertEqual(d, counts(4, 0, 3))
        self.assertEqual(len(peers), 5)  # numwant_default
        self.assertTrue(peers <= {compact4('127.0.0.1', p)
                                  for p in (7100, 7101, 7102, 7200, 7201, 7300)})

    def test_never_yourself(self):
        _, ih = self.new_torrent()
        a, b = peer_id(), peer_id()
        self.assertEqual(self.ann(ih, a, 7400, left=10), answer(0, 0, 1))
        self.assertEqual(self.ann(ih, a, 7400, left=10), answer(0, 0, 1))
        # Same user, another peer_id: a different peer.
        self.assertEqual(self.ann(ih, b, 7401, left=10), answer(0, 0, 2, compact4('127.0.0.1', 7400)))
        self.assertEqual(self.ann(ih, a, 7400, left=10), answer(0, 0, 2, compact4('127.0.0.1', 7401)))

    def test_numwant_default_cap_and_zero(self):
        _, ih = self.new_torrent()
        ports = list(range(7500, 7512))
        for p in ports:
            self.ann(ih, peer_id(), p, left=10)
        me = peer_id()
        everyone = {compact4('127.0.0.1', p) for p in ports}
        for numwant, expect in ((3, 3), (None, 5), (100, 8), (8, 8), (1, 1)):
            d, peers = without_peers(self.ann(ih, me, 7600, left=10, numwant=numwant))
            self.assertEqual(d, counts(0, 0, 13), 'numwant=%r' % numwant)
            self.assertEqual(len(peers), expect, 'numwant=%r' % numwant)
            self.assertTrue(peers <= everyone, 'numwant=%r gave a stranger or self' % numwant)
        self.assertEqual(self.ann(ih, me, 7600, left=10, numwant=0), answer(0, 0, 13))

    def test_numwant_larger_than_swarm_returns_all_others(self):
        _, ih = self.new_torrent()
        self.ann(ih, peer_id(), 7700, left=10)
        self.ann(ih, peer_id(), 7701, left=0)
        d, peers = without_peers(self.ann(ih, peer_id(), 7702, left=10, numwant=50))
        self.assertEqual(d, counts(1, 0, 2))
        self.assertEqual(peers, {compact4('127.0.0.1', 7700), compact4('127.0.0.1', 7701)})

    def test_completed_moves_leecher_to_complete(self):
        _, ih = self.new_torrent()
        me = peer_id()
        self.assertEqual(self.ann(ih, me, 7800, left=100, event='started'), answer(0, 0, 1))
        self.assertEqual(self.ann(ih, me, 7800, downloaded=100, left=0, event='completed'),
                         answer(1, 1, 0))
        self.assertEqual(self.ann(ih, me, 7800, downloaded=100, left=0), answer(1, 1, 0))

    def test_left_zero_without_event_makes_a_seeder_but_no_snatch(self):
        _, ih = self.new_torrent()
        me = peer_id()
        self.ann(ih, me, 7810, left=100, event='started')
        self.assertEqual(self.ann(ih, me, 7810, downloaded=100, left=0), answer(1, 0, 0))

    def test_snatch_counts_once_per_user(self):
        _, ih = self.new_torrent()
        a, b = peer_id(), peer_id()
        self.ann(ih, a, 7900, left=10, event='started')
        self.assertEqual(self.ann(ih, a, 7900, left=0, event='completed'), answer(1, 1, 0))
        self.assertEqual(self.ann(ih, a, 7900, left=0, event='completed'), answer(1, 1, 0))
        # Another peer of the same user completing: still one snatch.
        self.ann(ih, b, 7901, left=10, event='started')
        self.assertEqual(self.ann(ih, b, 7901, left=0, event='completed', numwant=0),
                         answer(2, 1, 0))
        # A second user's completion is a second snatch.
        c = peer_id()
        self.ann(ih, c, 7902, pk=self.pk2, left=10, event='started', numwant=0)
        self.assertEqual(self.ann(ih, c, 7902, pk=self.pk2, left=0, event='completed', numwant=0),
                         answer(3, 2, 0))
        self.assertEqual(self.mika.scrape_counts(self.pk, ih), (3, 2, 0, 0))

    def test_stopped_removes_the_peer(self):
        _, ih = self.new_torrent()
        a, b = peer_id(), peer_id()
        self.ann(ih, a, 8000, left=10)
        self.ann(ih, b, 8001, left=0)
        self.assertEqual(self.ann(ih, b, 8001, left=0, event='stopped'), answer(0, 0, 1))
        self.assertEqual(self.ann(ih, a, 8000, left=10), answer(0, 0, 1))
        self.assertEqual(self.mika.scrape_counts(self.pk, ih), (0, 0, 1, 1))
        self.assertEqual(self.ann(ih, a, 8000, left=10, event='stopped'), answer(0, 0, 0))
        self.assertEqual(self.mika.scrape_counts(self.pk, ih), (0, 0, 0, 0))

    def test_stopped_of_unknown_peer_changes_nothing(self):
        _, ih = self.new_torrent()
        self.ann(ih, peer_id(), 8010, left=10)
        self.assertEqual(self.ann(ih, peer_id(), 8011, left=10, event='stopped'), answer(0, 0, 1))
        self.assertEqual(self.mika.scrape_counts(self.pk, ih), (0, 0, 1, 1))

    def test_same_peer_id_of_two_users_is_two_peers(self):
        _, ih = self.new_torrent()
        pid = peer_id()
        self.assertEqual(self.ann(ih, pid, 8100, left=10), answer(0, 0, 1))
        self.assertEqual(self.ann(ih, pid, 8101, pk=self.pk2, left=10),
                         answer(0, 0, 2, compact4('127.0.0.1', 8100)))
        self.assertEqual(self.ann(ih, pid, 8100, left=10),
                         answer(0, 0, 2, compact4('127.0.0.1', 8101)))

    def test_port_change_updates_the_peer(self):
        _, ih = self.new_torrent()
        a = peer_id()
        self.ann(ih, a, 8150, left=10)
        self.ann(ih, a, 8151, left=10)
        self.assertEqual(self.ann(ih, peer_id(), 8152, left=10),
                         answer(0, 0, 2, compact4('127.0.0.1', 8151)))

    def test_paused_partial_seed_is_incomplete_but_not_a_downloader(self):
        _, ih = self.new_torrent()
        self.ann(ih, peer_id(), 8200, left=10)
        self.assertEqual(self.ann(ih, peer_id(), 8201, left=5, event='paused', numwant=0),
                         answer(0, 0, 2))
        self.assertEqual(self.mika.scrape_counts(self.pk, ih), (0, 0, 1, 2))

    def test_transfer_written_behind_to_users(self):
        uid, pk = self.new_user()
        _, ih = self.new_torrent()
        _, ih2 = self.new_torrent()
        a, b = peer_id(), peer_id()
        reports = [(a, ih, 0, 0), (a, ih, 1000, 500), (b, ih2, 0, 0), (a, ih, 3000, 700),
                   (b, ih2, 40, 4), (a, ih, 3000, 900)]
        last = {}
        up = down = 0
        for pid, h, u, d in reports:
            pu, pd = last.get(pid, (0, 0))
            up, down = up + u - pu, down + d - pd
            last[pid] = (u, d)
            self.mika.announce(pk, h, pid, 8300, uploaded=u, downloaded=d, left=10_000)

        def stored():
            s = self.mika.user_stats(uid)
            self.assertLessEqual(s[0], up, 'uploaded over-credited')
            self.assertLessEqual(s[1], down, 'downloaded over-credited')
            return s == (up, down)
        wait_until(stored, 5, what='users row of %d to reach (%d, %d), now %r'
                   % (uid, up, down, self.mika.user_stats(uid)))
        self.assertEqual((up, down), (3040, 904))


class ParameterFormTest(MikaTestCase):
    """Accepted forms of the announce parameters (docs/PROTOCOL.md)."""
    config = AnnounceTest.config

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.uid, cls.pk = cls.mika.add_user()
        cls.mika.reload()

    def body(self, path):
        status, _, body = self.mika.get(path)
        self.assertEqual(status, 200)
        return body

    def test_optional_and_unknown_parameters_accepted(self):
        _, ih = self.new_torrent()
        path = announce_url(self.pk, ih, peer_id(), 6881, left=10, event='', compact=0,
                            key='abcd1234', no_peer_id=1, corrupt=0, supportcrypto=1,
                            foo='bar')
        self.assertEqual(self.body(path), answer(0, 0, 1))

    def test_lower_case_and_unencoded_bytes(self):
        # Bytes that need no escaping may come raw; '+' is a literal '+'.
        ih = b'+abc~-._' + os.urandom(12)
        self.mika.add_torrent(info_hash=ih)
        self.mika.reload()
        raw = '+abc~-._' + ''.join('%%%02x' % b for b in ih[8:])
        path = announce_url(self.pk, ih, peer_id(), 6881, left=10).replace(
            'info_hash=' + ''.join('%%%02X' % b for b in ih), 'info_hash=' + raw)
        self.assertIn('info_hash=+abc', path)
        self.assertEqual(self.body(path), answer(0, 0, 1))
        self.assertEqual(self.mika.scrape_counts(self.pk, ih), (0, 0, 1, 1))

    def test_largest_numbers_accepted(self):
        _, ih = self.new_torrent()
        big = 2 ** 63 - 1
        path = announce_url(self.pk, ih, peer_id(), 65535, uploaded=big, downloaded=big,
                            left=big)
        self.assertEqual(self.body(path), answer(0, 0, 1))
        path = announce_url(self.pk, ih, peer_id(), 1, left=2 ** 63)
        self.assertEqual(self.body(path), failure('left: out of range'))


class ExpiryTest(MikaTestCase):
    config = {'tracker': {'interval': 1, 'min_interval': 1, 'expiry_factor': 2}}

    def test_silent_peer_expires(self):
        _, pk = self.mika.add_user()
        _, ih = self.new_torrent()
        quiet, alive = peer_id(), peer_id()
        q_entry = compact4('127.0.0.1', 9001)
        self.mika.announce(pk, ih, quiet, 9001, left=10)
        t_quiet = time.monotonic()
        body = self.mika.announce(pk, ih, alive, 9002, left=10)
        self.assertEqual(body, announce_answer(0, 0, 2, 1, 1, q_entry, LOCAL4))

        def gone():
            b = self.mika.announce(pk, ih, alive, 9002, left=10)
            if b == announce_answer(0, 0, 1, 1, 1, b'', LOCAL4):
                return True
            self.assertEqual(b, announce_answer(0, 0, 2, 1, 1, q_entry, LOCAL4))
            return False
        wait_until(gone, 6, interval=0.1, what='the silent peer to expire')
        elapsed = time.monotonic() - t_quiet
        # interval * expiry_factor = 2 s; the reaper sweeps about every second.
        self.assertGreaterEqual(elapsed, 1.5, 'peer expired after only %.2fs' % elapsed)
        self.assertLessEqual(elapsed, 3.5 * TIMEOUT_SCALE, 'peer expired after %.2fs' % elapsed)
        self.assertEqual(self.mika.scrape_counts(pk, ih), (0, 0, 1, 1))


if __name__ == '__main__':
    run_tests(globals())
