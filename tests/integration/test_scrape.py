"""Scrapes, byte-exact: one entry per registered torrent asked, sorted by
info_hash, unregistered and deleted hashes left out, duplicates once; the
BEP 21 `downloaders` count leaves out paused partial seeds."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
from mikatest import (MikaTestCase, bencode, peer_id, random_hash, run_tests,  # noqa: E402
                      scrape_url)


def entry(complete, downloaded, downloaders, incomplete):
    """A scrape file entry as a dict for bencode."""
    return {'complete': complete, 'downloaded': downloaded, 'downloaders': downloaders,
            'incomplete': incomplete}


def files(mapping):
    """The exact scrape body for {info_hash: entry}."""
    return bencode({'files': mapping})


class ScrapeTest(MikaTestCase):
    config = {'tracker': {'interval': 600, 'min_interval': 300, 'scrape_max_hashes': 8}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.uid, cls.pk = cls.mika.add_user()
        cls.uid2, cls.pk2 = cls.mika.add_user()
        cls.mika.reload()

    def populate(self, ih, seeders=0, leechers=0, partial=0, snatchers=0):
        """Adds peers to the swarm of ih. Snatchers start and complete, the
        first as self.pk and the second as self.pk2 (so at most 2 snatches)."""
        port = 10000
        for i in range(snatchers):
            pk = self.pk if i == 0 else self.pk2
            pid = peer_id()
            self.mika.announce(pk, ih, pid, port, left=10, event='started', numwant=0)
            self.mika.announce(pk, ih, pid, port, left=0, event='completed', numwant=0)
            port += 1
        for _ in range(seeders):
            self.mika.announce(self.pk, ih, peer_id(), port, left=0, numwant=0)
            port += 1
        for _ in range(leechers):
            self.mika.announce(self.pk, ih, peer_id(), port, left=10, numwant=0)
            port += 1
        for _ in range(partial):
            self.mika.announce(self.pk, ih, peer_id(), port, left=10, event='paused', numwant=0)
            port += 1

    def test_single_torrent_exact(self):
        _, ih = self.new_torrent()
        self.populate(ih, seeders=0, leechers=2, partial=1, snatchers=1)
        self.assertEqual(self.mika.scrape(self.pk, ih), files({ih: entry(1, 1, 2, 3)}))

    def test_empty_registered_torrent_is_listed_with_zeros(self):
        _, ih = self.new_torrent()
        self.assertEqual(self.mika.scrape(self.pk, ih), files({ih: entry(0, 0, 0, 0)}))
        self.assertEqual(self.mika.scrape(self.pk, ih),
                         b'd5:filesd20:' + ih + b'd8:completei0e10:downloadedi0e'
                         b'11:downloadersi0e10:incompletei0eeee')

    def test_multi_hash_sorted_and_unregistered_left_out(self):
        t = sorted(self.mika.add_torrent()[1] for _ in range(3))
        _, gone = self.mika.add_torrent(deleted=True)
        _, gone_why = self.mika.add_torrent(deleted=True, reason='nuked')
        self.mika.reload()
        self.populate(t[0], seeders=2)
        self.populate(t[2], leechers=1, snatchers=2)
        ask = [t[2], random_hash(), gone, t[0], gone_why, t[1]]
        expect = files({t[0]: entry(2, 0, 0, 0), t[1]: entry(0, 0, 0, 0),
                        t[2]: entry(2, 2, 1, 1)})
        self.assertEqual(self.mika.scrape(self.pk, *ask), expect)
        # The bytes are in sorted order, not in the order asked.
        body = self.mika.scrape(self.pk, *ask)
        self.assertLess(body.index(t[0]), body.index(t[1]))
        self.assertLess(body.index(t[1]), body.index(t[2]))

    def test_only_unregistered_gives_empty_files(self):
        self.assertEqual(self.mika.scrape(self.pk, random_hash(), random_hash()), b'd5:filesdee')

    def test_duplicate_hashes_once(self):
        _, ih = self.new_torrent()
        _, ih2 = self.new_torrent()
        self.populate(ih, leechers=1)
        body = self.mika.scrape(self.pk, ih, ih2, ih, ih)
        self.assertEqual(body, files({ih: entry(0, 0, 1, 1), ih2: entry(0, 0, 0, 0)}))

    def test_scrape_same_for_every_user_and_after_stop(self):
        _, ih = self.new_torrent()
        pid = peer_id()
        self.mika.announce(self.pk, ih, pid, 11000, left=0, numwant=0)
        self.assertEqual(self.mika.scrape(self.pk2, ih), files({ih: entry(1, 0, 0, 0)}))
        self.mika.announce(self.pk, ih, pid, 11000, left=0, event='stopped')
        self.assertEqual(self.mika.scrape(self.pk2, ih), files({ih: entry(0, 0, 0, 0)}))

    def test_max_hashes_accepted(self):
        hashes = [self.mika.add_torrent()[1] for _ in range(8)]
        self.mika.reload()
        body = self.mika.scrape(self.pk, *hashes)
        self.assertEqual(body, files({h: entry(0, 0, 0, 0) for h in hashes}))

    def test_scrape_answer_headers(self):
        _, ih = self.new_torrent()
        status, hdrs, body = self.mika.get(scrape_url(self.pk, ih))
        self.assertEqual(status, 200)
        self.assertEqual(hdrs[''], 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n'
                         'Content-Length: %d' % len(body))


if __name__ == '__main__':
    run_tests(globals())
