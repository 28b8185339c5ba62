"""End-to-end: two real BitTorrent implementations complete a private torrent
through mika on 127.0.0.1, each with its own user's passkey URL.

Owns: the two scenarios (Transmission seeds / libtorrent leeches, then the
roles swap) and what mika must show for them (peer counts and the snatch in
scrape, the users' uploaded/downloaded in the store, read back with `mika
client user get`). Users and the torrent are set up as an operator would,
with `mika client user add` and `mika client torrent add <file.torrent>`
against the admin API. With MIKA_TEST_STORE=<backend> (postgres, ...) every
kind of state lives on a throwaway server of that backend
(tests/lib/servers.py); without it, in the default SQLite file. With
MIKA_TEST_SELECTION=<strategy> (seeders-first, nearest, ...) mika picks
peers with that strategy (docs/PEER_SELECTION.md); the location databases
it needs are written by tests/lib/mkmmdb.py, which places loopback in Paris.
Does not own: starting mika (tests/lib/mikatest.py) or driving the clients
(tests/e2e/clients.py).

Transmission 3.00 accepts connections from loopback peers but never dials
them, so its side always starts first and announces; libtorrent then gets
Transmission's address from mika and dials it. DHT, PEX and local discovery
are off in both clients, so mika is the only way they can find each other.

Run: MIKA_BIN=build/mika /usr/bin/python3 tests/e2e/test_real_clients.py
(needs python3-libtorrent and transmission-cli).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)

from mikatest import FREE_PORT, MikaTestCase, run_mika, run_tests, wait_until  # noqa: E402
from servers import SERVERS, store_config  # noqa: E402

import clients  # noqa: E402

# Not a multiple of the piece size, so the short last piece is exercised too.
PAYLOAD_SIZE = 3 * 1024 * 1024 + 12345
PAYLOAD_NAME = "payload.bin"
# Bounds, not expected durations: a scenario takes about 15 s (Transmission
# unchokes a new peer at its next 10 s rechoke round).
ANNOUNCE_WAIT = 30
TRANSFER_WAIT = 60
BOOKS_WAIT = 20
STORE = os.environ.get("MIKA_TEST_STORE", "")
SELECTION = os.environ.get("MIKA_TEST_SELECTION", "")


class RealClientsTest(MikaTestCase):
    # Short intervals so the clients re-announce (and report their counters)
    # every few seconds; libtorrent is told to accept them.
    config = {"tracker": {"interval": 5, "min_interval": 1}, "api": {"port": FREE_PORT}}

    @classmethod
    def setUpClass(cls):
        cls.srv = None
        cls.mmdb_dir = None
        if SELECTION:
            cls.mmdb_dir = tempfile.mkdtemp(prefix="mika-mmdb-")
            tracker = dict(cls.config["tracker"], peer_selection=SELECTION)
            for kind in ("city", "asn"):
                path = os.path.join(cls.mmdb_dir, kind + ".mmdb")
                subprocess.run([sys.executable, os.path.join(HERE, "..", "lib", "mkmmdb.py"),
                                kind, path], check=True)
                tracker["geoip_%s_db" % kind] = path
            cls.config = dict(cls.config, tracker=tracker)
        if STORE:
            cls.srv = SERVERS[STORE]()
            cls.srv.start()
            cls.config = dict(cls.config, store=store_config(STORE, cls.srv))
        try:
            super().setUpClass()
        except BaseException:
            cls.srv and cls.srv.stop()
            raise
        wait_until(lambda: run_mika(["client", "--config", "mika.ini", "health"],
                                    cwd=cls.mika.dir)[0] == 0,
                   10, 0.1, "the admin API to answer `mika client health`")

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            if cls.srv is not None:
                cls.srv.stop()
            if cls.mmdb_dir:
                shutil.rmtree(cls.mmdb_dir, ignore_errors=True)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mika-e2e-")
        self.running = []

    def tearDown(self):
        for c in self.running:
            c.stop()
        if not os.environ.get("MIKA_TEST_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers

    def cli(self, *args):
        """`mika client --json args` in the daemon's directory (where the key
        and certificate it generated are): the API's answer, decoded."""
        rc, out, err = run_mika(["client", "--config", "mika.ini", "--json"] + list(args),
                                cwd=self.mika.dir, timeout=20)
        self.assertEqual(rc, 0, "mika client %s: %s" % (" ".join(args), err))
        return json.loads(out)

    def add_user(self):
        """A user made with the CLI: (id, passkey)."""
        u = self.cli("user", "add")
        self.assertTrue(u["announce_url"].endswith("/%s/announce" % u["passkey"]))
        return u["id"], u["passkey"]

    def swarm(self):
        """Two users (one per client), a payload and its private torrent
        registered in mika with the CLI; returns (tr_user, lt_user,
        info_hash, payload path, payload sha256, tr .torrent, lt .torrent)."""
        m = self.mika
        tr_user = self.add_user()
        lt_user = self.add_user()
        src = os.path.join(self.tmp, "src")
        path, sha = clients.make_payload(src, PAYLOAD_NAME, PAYLOAD_SIZE)
        urls = ["http://127.0.0.1:%d/%s/announce" % (m.port, pk)
                for _, pk in (tr_user, lt_user)]
        info_hash, (tr_torrent, lt_torrent) = clients.make_torrents(path, urls, self.tmp)
        t = self.cli("torrent", "add", tr_torrent)
        self.assertEqual(t["info_hash"], info_hash.hex())
        self.assertEqual(t.get("warnings", []), [])
        return tr_user, lt_user, info_hash, path, sha, tr_torrent, lt_torrent

    def scrape(self, passkey, info_hash):
        """(complete, downloaded, downloaders, incomplete) as mika reports them."""
        counts = self.mika.scrape_counts(passkey, info_hash)
        self.assertIsNotNone(counts, "scrape left out the registered torrent")
        return counts

    def wait_scrape(self, passkey, info_hash, what, pred, timeout, pump=None):
        def check():
            if pump is not None:
                pump()
            return pred(self.scrape(passkey, info_hash))
        wait_until(check, timeout, 0.2, what)

    def assert_same_file(self, path, sha):
        self.assertTrue(os.path.isfile(path), "leecher has no %s" % path)
        self.assertEqual(os.path.getsize(path), PAYLOAD_SIZE)
        self.assertEqual(clients.sha256_file(path), sha,
                         "leecher's data differs from the payload")

    def wait_books(self, seeder_id, leecher_id, pump=None):
        """Waits until the users' rows show the transfer: the seeder uploaded
        and the leecher downloaded at least the payload (and less than twice
        it: deltas, not each report's running total), and nothing the other
        way round (a seeder downloads nothing, its only peer uploads nothing)."""
        def stats(uid):
            u = self.cli("user", "get", str(uid))
            return u["uploaded"], u["downloaded"]

        def books():
            if pump is not None:
                pump()
            return stats(seeder_id), stats(leecher_id)

        def done():
            (s_up, _), (_, l_down) = books()
            return s_up >= PAYLOAD_SIZE and l_down >= PAYLOAD_SIZE
        try:
            wait_until(done, BOOKS_WAIT, 0.2, "users' uploaded/downloaded in the store")
        finally:
            seeder, leecher = books()
            print("books: seeder (up, down)=%r leecher (up, down)=%r" % (seeder, leecher),
                  file=sys.stderr)
        (s_up, s_down), (l_up, l_down) = seeder, leecher
        self.assertLess(s_up, 2 * PAYLOAD_SIZE)
        self.assertLess(l_down, 2 * PAYLOAD_SIZE)
        self.assertEqual(s_down, 0)
        self.assertEqual(l_up, 0)

    def diagnose(self, tr, lt_client):
        """Prints what each party said, for a failed run."""
        out = ["", "=== diagnostics (%s) ===" % self.id()]
        out.append(self.mika.log_tail(60))
        if tr is not None:
            out.append("--- transmission-cli (port %d) ---\n%s" % (tr.port, tr.log_tail(40)))
        if lt_client is not None:
            out.append("--- libtorrent (port %d) ---\n%s"
                       % (lt_client.port, lt_client.log_tail(60)))
        print("\n".join(out), file=sys.stderr)

    # -- scenarios

    def test_a_transmission_seeds_libtorrent_leeches_through_mika(self):
        (tr_id, tr_pk), (lt_id, _), ih, _, sha, tr_torrent, lt_torrent = self.swarm()
        tr = lt_client = None
        try:
            t0 = time.monotonic()
            # Transmission is given the complete file: it verifies it and seeds.
            tr = clients.Transmission(os.path.join(self.tmp, "tr"), tr_torrent,
                                      os.path.join(self.tmp, "src"))
            os.makedirs(tr.workdir)
            self.running.append(tr)
            tr.start()
            self.wait_scrape(tr_pk, ih, "Transmission announcing as the seeder",
                             lambda c: c[0] == 1 and c[3] == 0, ANNOUNCE_WAIT)

            leech_dir = os.path.join(self.tmp, "lt")
            lt_client = clients.Libtorrent(lt_torrent, leech_dir)
            self.running.append(lt_client)
            lt_client.start()
            self.assertTrue(lt_client.peer_id_prefix().startswith("-LT"))
            wait_until(lambda: lt_client.finished() or not tr.running(), TRANSFER_WAIT,
                       0.2, "libtorrent to download the torrent from Transmission")
            self.assertTrue(lt_client.finished(), "transmission-cli exited early")
            print("A: transfer done after %.1f s" % (time.monotonic() - t0), file=sys.stderr)
            self.assert_same_file(os.path.join(leech_dir, PAYLOAD_NAME), sha)

            # libtorrent announces event=completed at once: one snatch, two seeders.
            self.wait_scrape(tr_pk, ih, "the snatch and libtorrent as a seeder",
                             lambda c: c[0] == 2 and c[1] == 1 and c[3] == 0,
                             ANNOUNCE_WAIT, lt_client.pump)
            self.wait_books(tr_id, lt_id, lt_client.pump)

            lt_client.stop()
            self.wait_scrape(tr_pk, ih, "libtorrent's event=stopped to remove it",
                             lambda c: c[0] == 1 and c[1] == 1 and c[3] == 0, ANNOUNCE_WAIT)
            tr.stop()
        except BaseException:
            self.diagnose(tr, lt_client)
            raise

    def test_b_roles_swap_libtorrent_seeds_transmission_leeches(self):
        (tr_id, tr_pk), (lt_id, _), ih, _, sha, tr_torrent, lt_torrent = self.swarm()
        tr = lt_client = None
        try:
            t0 = time.monotonic()
            leech_dir = os.path.join(self.tmp, "tr", "download")
            tr = clients.Transmission(os.path.join(self.tmp, "tr"), tr_torrent, leech_dir)
            os.makedirs(tr.workdir)
            self.running.append(tr)
            tr.start()
            self.wait_scrape(tr_pk, ih, "Transmission announcing as a leecher",
                             lambda c: c[0] == 0 and c[3] == 1, ANNOUNCE_WAIT)

            # libtorrent is given the complete file: it checks it and seeds.
            lt_client = clients.Libtorrent(lt_torrent, os.path.join(self.tmp, "src"))
            self.running.append(lt_client)
            lt_client.start()
            wait_until(lt_client.is_seeding, ANNOUNCE_WAIT, 0.1, "libtorrent to seed")
            self.wait_scrape(tr_pk, ih, "libtorrent announcing as the seeder",
                             lambda c: c[0] == 1, ANNOUNCE_WAIT, lt_client.pump)

            def done():
                lt_client.pump()
                return tr.finished() or not tr.running()
            wait_until(done, TRANSFER_WAIT, 0.2,
                       "Transmission to download the torrent from libtorrent")
            self.assertTrue(tr.finished(), "transmission-cli exited early")
            print("B: transfer done after %.1f s" % (time.monotonic() - t0), file=sys.stderr)
            self.assert_same_file(os.path.join(leech_dir, PAYLOAD_NAME), sha)

            # Transmission sends event=completed from its next announcer tick.
            self.wait_scrape(tr_pk, ih, "the snatch and Transmission as a seeder",
                             lambda c: c[0] == 2 and c[1] == 1 and c[3] == 0,
                             ANNOUNCE_WAIT, lt_client.pump)
            self.wait_books(lt_id, tr_id, lt_client.pump)

            lt_client.stop()
            self.wait_scrape(tr_pk, ih, "libtorrent's event=stopped to remove it",
                             lambda c: c[0] == 1 and c[1] == 1 and c[3] == 0, ANNOUNCE_WAIT)
            # transmission-cli drops its own event=stopped when it exits
            # (its announcer is torn down before the queued announce goes
            # out), so mika is not asked to see that one.
            tr.stop()
        except BaseException:
            self.diagnose(tr, lt_client)
            raise


if __name__ == "__main__":
    run_tests(globals())
