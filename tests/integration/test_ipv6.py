"""IPv6: announces over [::1] are answered with peers6 (18-byte entries) and a
16-byte external ip; v4 and v6 peers are never mixed; ipv4=false / ipv6=false
leave the other family unserved (connection refused)."""
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
from mikatest import (LOCAL4, LOCAL6, MikaTestCase, announce_answer, bdecode,  # noqa: E402
                      compact4, compact6, peer_id, run_tests, split_peers)

I, MI = 600, 300


def refused(family, port):
    """True if connecting to the loopback address of family is refused."""
    fam, host = (socket.AF_INET6, '::1') if family == 6 else (socket.AF_INET, '127.0.0.1')
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((host, port))
    except ConnectionRefusedError:
        return True
    finally:
        s.close()
    return False


class Ipv6Test(MikaTestCase):
    config = {'tracker': {'interval': I, 'min_interval': MI}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.uid, cls.pk = cls.mika.add_user()
        cls.mika.reload()

    def ann(self, ih, pid, port, family, **kw):
        return self.mika.announce(self.pk, ih, pid, port, family=family, **kw)

    def test_first_v6_leecher(self):
        _, ih = self.new_torrent()
        body = self.ann(ih, peer_id(), 6881, 6, left=10)
        self.assertEqual(body, announce_answer(0, 0, 1, I, MI, b'', LOCAL6, v6=True))
        self.assertIn(b'6:peers60:', body)
        self.assertNotIn(b'5:peers', body)

    def test_v6_seeder_and_leecher_see_each_other(self):
        _, ih = self.new_torrent()
        s, l_ = peer_id(), peer_id()
        self.assertEqual(self.ann(ih, s, 7001, 6, left=0),
                         announce_answer(1, 0, 0, I, MI, b'', LOCAL6))
        self.assertEqual(self.ann(ih, l_, 7002, 6, left=10),
                         announce_answer(1, 0, 1, I, MI, compact6('::1', 7001), LOCAL6))
        self.assertEqual(self.ann(ih, s, 7001, 6, left=0),
                         announce_answer(1, 0, 1, I, MI, compact6('::1', 7002), LOCAL6))

    def test_families_never_mixed(self):
        _, ih = self.new_torrent()
        for i in range(3):
            self.ann(ih, peer_id(), 7100 + i, 4, left=10)
        for i in range(2):
            self.ann(ih, peer_id(), 7200 + i, 6, left=10)
        d4 = bdecode(self.ann(ih, peer_id(), 7300, 4, left=10, numwant=50))
        d6 = bdecode(self.ann(ih, peer_id(), 7301, 6, left=10, numwant=50))
        self.assertNotIn(b'peers6', d4)
        self.assertNotIn(b'peers', d6)
        self.assertEqual(d4[b'external ip'], LOCAL4)
        self.assertEqual(d6[b'external ip'], LOCAL6)
        self.assertEqual(set(split_peers(d4[b'peers'])),
                         {compact4('127.0.0.1', p) for p in (7100, 7101, 7102)})
        self.assertEqual(set(split_peers(d6[b'peers6'], v6=True)),
                         {compact6('::1', p) for p in (7200, 7201)})
        # Counts cover the whole torrent, both families (assumption: the spec
        # counts "the peers present").
        self.assertEqual((d4[b'complete'], d4[b'incomplete']), (0, 6))
        self.assertEqual((d6[b'complete'], d6[b'incomplete']), (0, 7))

    def test_scrape_over_v6(self):
        _, ih = self.new_torrent()
        self.ann(ih, peer_id(), 7400, 6, left=0)
        body = self.mika.scrape(self.pk, ih, family=6)
        self.assertEqual(bdecode(body)[b'files'][ih][b'complete'], 1)


class Ipv6OffTest(MikaTestCase):
    config = {'server': {'ipv6': False}}

    def test_v6_refused_v4_served(self):
        self.assertTrue(refused(6, self.mika.port), 'something listens on [::1]')
        _, pk = self.mika.add_user()
        _, ih = self.new_torrent()
        d = bdecode(self.mika.announce(pk, ih, peer_id(), 6881, left=10))
        self.assertEqual(d[b'incomplete'], 1)


class Ipv4OffTest(MikaTestCase):
    config = {'server': {'ipv4': False}}

    def test_v4_refused_v6_served(self):
        self.assertTrue(refused(4, self.mika.port), 'something listens on 127.0.0.1')
        _, pk = self.mika.add_user()
        _, ih = self.new_torrent()
        d = bdecode(self.mika.announce(pk, ih, peer_id(), 6881, left=10, family=6))
        self.assertEqual((d[b'incomplete'], d[b'external ip']), (1, LOCAL6))


if __name__ == '__main__':
    run_tests(globals())
