"""End-to-end over UDP (issue 9): a python3-libtorrent seeder and leecher
complete a private torrent whose announce URL is
udp://127.0.0.1:<port>/<passkey>/announce (BEP 15 with BEP 41's URL data),
and mika's books show what the HTTP path records for the same transfer
(tests/e2e/test_real_clients.py's bounds): the seeder uploaded the payload
and downloaded nothing, the leecher the reverse, one snatch; and the swarm
the clients built over UDP is the one HTTP scrape reports.

Owns: the scenario and its assertions. Not here: starting mika
(tests/lib/mikatest.py), driving libtorrent (tests/e2e/clients.py).
Run: MIKA_BIN=build/mika /usr/bin/python3 tests/e2e/test_udp_clients.py
"""

import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)

from mikatest import MikaTestCase, run_tests, wait_until  # noqa: E402

import clients  # noqa: E402
import libtorrent as lt  # noqa: E402

PAYLOAD_SIZE = 2 * 1024 * 1024 + 4321
PAYLOAD_NAME = "payload.bin"
ANNOUNCE_WAIT = 30
TRANSFER_WAIT = 60
BOOKS_WAIT = 20


class UdpClientsTest(MikaTestCase):
    # libtorrent re-announces to a UDP tracker at most once a minute (BEP 15
    # answers carry no min interval; it assumes 60 s), so the interval must
    # keep its peers alive that long; events are sent at once regardless.
    config = {"tracker": {"interval": 60, "min_interval": 1}}

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mika-e2e-udp-")
        self.running = []

    def tearDown(self):
        for c in self.running:
            c.stop()
        if not os.environ.get("MIKA_TEST_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def scrape(self, passkey, info_hash):
        counts = self.mika.scrape_counts(passkey, info_hash)
        self.assertIsNotNone(counts, "scrape left out the registered torrent")
        return counts

    def wait_scrape(self, passkey, info_hash, what, pred, pumps=()):
        def check():
            for p in pumps:
                p()
            return pred(self.scrape(passkey, info_hash))
        wait_until(check, ANNOUNCE_WAIT, 0.2, what)

    def udp_replies(self, client):
        """How many tracker replies the client logged (its events)."""
        return sum(1 for e in client.events if "tracker_reply_alert" in e)

    def test_libtorrent_seeds_and_leeches_over_udp(self):
        m = self.mika
        seed_id, seed_pk = m.add_user()
        leech_id, leech_pk = m.add_user()
        src = os.path.join(self.tmp, "src")
        path, sha = clients.make_payload(src, PAYLOAD_NAME, PAYLOAD_SIZE)
        urls = ["udp://127.0.0.1:%d/%s/announce" % (m.port, pk) for pk in (seed_pk, leech_pk)]
        ih, (seed_torrent, leech_torrent) = clients.make_torrents(path, urls, self.tmp)
        m.add_torrent(info_hash=ih)
        m.reload()
        seeder = leecher = None
        try:
            seeder = clients.Libtorrent(seed_torrent, src)
            self.running.append(seeder)
            seeder.start()
            self.wait_scrape(seed_pk, ih, "the seeder announcing over UDP",
                             lambda c: c[0] == 1 and c[3] == 0, [seeder.pump])
            leech_dir = os.path.join(self.tmp, "leech")
            leecher = clients.Libtorrent(leech_torrent, leech_dir)
            self.running.append(leecher)
            leecher.start()
            wait_until(lambda: seeder.pump() is not None and leecher.finished(), TRANSFER_WAIT,
                       0.2, "the leecher to download the torrent from the seeder")
            got = os.path.join(leech_dir, PAYLOAD_NAME)
            self.assertEqual(os.path.getsize(got), PAYLOAD_SIZE)
            self.assertEqual(clients.sha256_file(got), sha)
            # The completed announce: one snatch, two seeders (HTTP scrape sees
            # the swarm the UDP announces built).
            self.wait_scrape(seed_pk, ih, "the snatch and the leecher as a seeder",
                             lambda c: c[0] == 2 and c[1] == 1 and c[3] == 0,
                             [seeder.pump, leecher.pump])
            self.assertGreater(self.udp_replies(seeder), 0)
            self.assertGreater(self.udp_replies(leecher), 0)

            def books():
                seeder.pump()
                leecher.pump()
                return m.user_stats(seed_id), m.user_stats(leech_id)

            # The leecher's completed announce carries its download; the
            # seeder reports its upload at its next announce, which the
            # minute-long UDP interval puts after its stopped.
            wait_until(lambda: books()[1][1] >= PAYLOAD_SIZE, BOOKS_WAIT, 0.2,
                       "the leecher's downloaded in the store")
            leecher.stop()
            self.wait_scrape(seed_pk, ih, "the leecher's stopped over UDP to remove it",
                             lambda c: c[0] == 1 and c[1] == 1 and c[3] == 0, [seeder.pump])
            seeder.stop()
            self.wait_scrape(seed_pk, ih, "the seeder's stopped over UDP to remove it",
                             lambda c: c[0] == 0 and c[3] == 0)
            wait_until(lambda: books()[0][0] >= PAYLOAD_SIZE, BOOKS_WAIT, 0.2,
                       "the seeder's uploaded in the store")
            (s_up, s_down), (l_up, l_down) = books()
            print("books: seeder (up, down)=%r leecher (up, down)=%r"
                  % ((s_up, s_down), (l_up, l_down)), file=sys.stderr)
            # What the HTTP path records for the same transfer (deltas, not
            # running totals; nothing the other way round).
            self.assertLess(s_up, 2 * PAYLOAD_SIZE)
            self.assertLess(l_down, 2 * PAYLOAD_SIZE)
            self.assertEqual(s_down, 0)
            self.assertEqual(l_up, 0)
            snatches = m.query("SELECT user_id FROM snatches")
            self.assertEqual([tuple(r) for r in snatches], [(leech_id,)])
        except BaseException:
            out = ["", "=== diagnostics ===", m.log_tail(60)]
            for name, c in (("seeder", seeder), ("leecher", leecher)):
                if c is not None:
                    out.append("--- %s (port %d) ---\n%s" % (name, c.port, c.log_tail(60)))
            print("\n".join(out), file=sys.stderr)
            raise


if __name__ == "__main__":
    run_tests(globals())
