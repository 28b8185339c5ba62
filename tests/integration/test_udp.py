"""The UDP tracker (issue 9, BEP 15 + BEP 41) against the real daemon, byte
for byte: connect, announce with and without URL data (split over several
options, with or without end-of-options), the private-tracker refusals as
error packets, expired and forged connection ids (no answer at all), scrape
of several hashes in the asked order, IPv6 on ::1 with 18-byte peers, and
one swarm and one set of books shared with HTTP."""
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
from mikatest import (FREE_PORT, LOCAL4, TIMEOUT_SCALE, Mika, MikaTestCase, Udp,  # noqa: E402
                      UDP_PROTOCOL_ID, announce_answer, bdecode, compact4, compact6,
                      peer_id, random_hash, random_passkey, run_tests, udp_announce_req,
                      udp_connect_req, udp_scrape_req, udp_url_data, wait_until)

I, MI = 600, 300


def err(tid, msg):
    """The exact error packet for tid and msg."""
    return struct.pack('>II', 3, tid) + msg.encode()


def ann_answer(tid, leechers, seeders, peers=b''):
    """The exact announce answer."""
    return struct.pack('>IIIII', 1, tid, I, leechers, seeders) + peers


class UdpTest(MikaTestCase):
    config = {'tracker': {'interval': I, 'min_interval': MI}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.uid, cls.pk = cls.mika.add_user()
        cls.mika.reload()

    def udp(self, family=4):
        u = Udp(self.mika.port, family)
        self.addCleanup(u.close)
        return u

    def url(self, pk=None):
        return udp_url_data(b'/%s/announce' % (pk or self.pk).encode())

    def test_connect_echoes_the_transaction_and_gives_an_id(self):
        u = self.udp()
        ans = u.ask(udp_connect_req(0xdeadbeef))
        self.assertEqual(len(ans), 16)
        self.assertEqual(ans[:8], struct.pack('>II', 0, 0xdeadbeef))
        # Stateless: the same source gets the same id in the same window.
        self.assertEqual(u.connect_id(), u.connect_id())

    def test_connect_without_the_protocol_id_is_ignored(self):
        u = self.udp()
        self.assertIsNone(u.ask(udp_connect_req(7, protocol_id=UDP_PROTOCOL_ID + 1), 0.5))
        self.assertIsNone(u.ask(b'\x00' * 15, 0.5))

    def test_announce_with_url_data_joins_the_swarm(self):
        _, ih = self.new_torrent()
        a, b = self.udp(), self.udp()
        ca, cb = a.connect_id(), b.connect_id()
        pa, pb = peer_id(), peer_id()
        ans = a.ask(udp_announce_req(ca, 11, ih, pa, 6881, left=100, event='started',
                                     options=self.url() + b'\x00'))
        self.assertEqual(ans, ann_answer(11, 1, 0))
        # No end-of-options (python3-libtorrent 2.0.8 sends none); numwant 5.
        ans = b.ask(udp_announce_req(cb, 12, ih, pb, 6882, left=0, numwant=5,
                                     options=self.url()))
        self.assertEqual(ans, ann_answer(12, 1, 1, compact4('127.0.0.1', 6881)))

    def test_url_data_split_over_options_with_nops(self):
        _, ih = self.new_torrent()
        u = self.udp()
        cid = u.connect_id()
        url = b'/%s/announce?x=1' % self.pk.encode()
        opts = b'\x01' + udp_url_data(url, piece=7) + b'\x01\x00' + b'\x02\x05junk!'
        ans = u.ask(udp_announce_req(cid, 5, ih, peer_id(), 7000, left=1, options=opts))
        self.assertEqual(ans, ann_answer(5, 1, 0))

    def test_announce_without_passkey_is_refused(self):
        _, ih = self.new_torrent()
        u = self.udp()
        cid = u.connect_id()
        ans = u.ask(udp_announce_req(cid, 9, ih, peer_id(), 7000, left=1))
        self.assertEqual(ans, err(9, 'passkey: missing (announce URL /<passkey>/announce)'))
        # Options after end-of-options are not read.
        ans = u.ask(udp_announce_req(cid, 10, ih, peer_id(), 7000, left=1,
                                     options=b'\x00' + self.url()))
        self.assertEqual(ans, err(10, 'passkey: missing (announce URL /<passkey>/announce)'))

    def settled(self, u, req, tid):
        """The answer once the resolver has looked the key up: a key not in
        memory is first answered "try again later" (net/udp.h)."""
        later = err(tid, 'tracker cannot look this up now, try again later')
        ans = u.ask(req)
        if ans == later:
            wait_until(lambda: u.ask(req) != later, what='the lookup')
            ans = u.ask(req)
        return ans

    def test_private_tracker_refusals_are_error_packets(self):
        _, ih = self.new_torrent()
        u = self.udp()
        cid = u.connect_id()
        req = udp_announce_req(cid, 1, ih, peer_id(), 7000, options=self.url('nobody'))
        self.assertEqual(self.settled(u, req, 1), err(1, 'unknown passkey'))
        req = udp_announce_req(cid, 2, random_hash(), peer_id(), 7000, options=self.url())
        self.assertEqual(self.settled(u, req, 2), err(2, 'unregistered torrent'))
        url = udp_url_data(b'/%s/scrape' % self.pk.encode())
        ans = u.ask(udp_announce_req(cid, 3, ih, peer_id(), 7000, options=url))
        self.assertEqual(ans, err(3, 'not found'))
        _, pk2 = self.new_user(can_download=False)
        ans = u.ask(udp_announce_req(cid, 4, ih, peer_id(), 7000, left=5,
                                     options=self.url(pk2)))
        self.assertEqual(ans, err(4, 'downloading not allowed for this account'))

    def test_malformed_announces_are_error_packets(self):
        _, ih = self.new_torrent()
        u = self.udp()
        cid = u.connect_id()
        ans = u.ask(udp_announce_req(cid, 1, ih, peer_id(), 0, options=self.url()))
        self.assertEqual(ans, err(1, 'port: must be 1..65535'))
        ans = u.ask(udp_announce_req(cid, 2, ih, peer_id(), 1, options=b'\x02\x30abc'))
        self.assertEqual(ans, err(2, 'option 2: length 48 past the packet'))
        ans = u.ask(udp_announce_req(cid, 3, ih, peer_id(), 1)[:97])
        self.assertEqual(ans, err(3, 'announce: 97 bytes, need 98'))
        ans = u.ask(struct.pack('>QII', cid, 9, 4))
        self.assertEqual(ans, err(4, 'action: unknown'))

    def test_forged_connection_id_gets_no_answer(self):
        _, ih = self.new_torrent()
        u4, u6 = self.udp(4), self.udp(6)
        cid4 = u4.connect_id()
        # The id of another address (::1 is not 127.0.0.1) is worthless here.
        req = udp_announce_req(u6.connect_id(), 1, ih, peer_id(), 7000, options=self.url())
        self.assertIsNone(u4.ask(req, 0.5))
        self.assertIsNone(u4.ask(udp_scrape_req(cid4 ^ 1, 2, ih), 0.5))
        self.assertIsNone(u4.ask(udp_scrape_req(0, 2, ih), 0.5))
        # The peer was not added.
        self.assertEqual(self.mika.scrape_counts(self.pk, ih)[3], 0)

    def test_connection_id_is_bound_to_the_address_not_the_port(self):
        # libtorrent keeps one id per tracker for all its sockets.
        a, b = self.udp(), self.udp()
        self.assertEqual(a.connect_id(), b.connect_id())

    def test_scrape_of_several_hashes_in_order(self):
        _, ih1 = self.new_torrent()
        _, ih2 = self.new_torrent()
        u = self.udp()
        cid = u.connect_id()
        u.ask(udp_announce_req(cid, 1, ih1, peer_id(), 7001, left=0, options=self.url()))
        u.ask(udp_announce_req(cid, 2, ih2, peer_id(), 7002, left=9, options=self.url()))
        u.ask(udp_announce_req(cid, 3, ih2, peer_id(), 7003, left=0, options=self.url()))
        ans = u.ask(udp_scrape_req(cid, 77, ih2, random_hash(), ih1))
        self.assertEqual(ans, struct.pack('>II', 2, 77) + struct.pack('>III', 1, 0, 1) +
                         struct.pack('>III', 0, 0, 0) + struct.pack('>III', 1, 0, 0))
        # Past tracker.scrape_max_hashes (24): refused, not truncated.
        ans = u.ask(udp_scrape_req(cid, 78, *[random_hash() for _ in range(25)]))
        self.assertEqual(ans, err(78, 'info_hash: more than 24'))

    def test_ipv6_gets_18_byte_peers(self):
        _, ih = self.new_torrent()
        a, b = self.udp(6), self.udp(6)
        ca, cb = a.connect_id(), b.connect_id()
        a.ask(udp_announce_req(ca, 1, ih, peer_id(), 6001, left=10, options=self.url()))
        ans = b.ask(udp_announce_req(cb, 2, ih, peer_id(), 6002, left=0, options=self.url()))
        self.assertEqual(ans, ann_answer(2, 1, 1, compact6('::1', 6001)))
        # The IPv4 swarm of the same torrent stays apart.
        c = self.udp(4)
        ans = c.ask(udp_announce_req(c.connect_id(), 3, ih, peer_id(), 6003, left=0,
                                     options=self.url()))
        self.assertEqual(ans, ann_answer(3, 1, 2))

    def test_http_and_udp_share_the_swarm(self):
        _, ih = self.new_torrent()
        pid = peer_id()
        body = self.mika.announce(self.pk, ih, pid, 5001, left=10)
        self.assertEqual(bdecode(body)[b'incomplete'], 1)
        u = self.udp()
        cid = u.connect_id()
        # The same peer (same peer_id and user) over UDP: still one leecher.
        ans = u.ask(udp_announce_req(cid, 1, ih, pid, 5001, left=10, options=self.url()))
        self.assertEqual(ans, ann_answer(1, 1, 0))
        ans = u.ask(udp_announce_req(cid, 2, ih, peer_id(), 5002, left=0, options=self.url()))
        self.assertEqual(ans, ann_answer(2, 1, 1, compact4('127.0.0.1', 5001)))
        body = self.mika.announce(self.pk, ih, peer_id(), 5003, left=0)
        self.assertEqual(body, announce_answer(2, 0, 1, I, MI, compact4('127.0.0.1', 5001),
                                               LOCAL4))


class UdpScrapeRightsTest(MikaTestCase):
    """A fresh daemon: no address has announced to it yet."""
    config = {'tracker': {'interval': I, 'min_interval': MI}}

    def test_scrape_needs_an_announce_with_a_known_passkey(self):
        _, pk = self.new_user()
        _, ih = self.new_torrent()
        u = Udp(self.mika.port)
        self.addCleanup(u.close)
        cid = u.connect_id()
        self.assertEqual(u.ask(udp_scrape_req(cid, 5, ih)), err(5, 'unknown passkey'))
        u.ask(udp_announce_req(cid, 6, ih, peer_id(), 7000, options=url('nobody')))
        self.assertEqual(u.ask(udp_scrape_req(cid, 7, ih)), err(7, 'unknown passkey'))
        ans = u.ask(udp_announce_req(cid, 8, ih, peer_id(), 7000, left=3, options=url(pk)))
        self.assertEqual(ans, ann_answer(8, 1, 0))
        self.assertEqual(u.ask(udp_scrape_req(cid, 9, ih)),
                         struct.pack('>IIIII', 2, 9, 0, 0, 1))


def url(pk):
    return udp_url_data(b'/%s/announce' % pk.encode())


class UdpGuessTest(MikaTestCase):
    config = {'tracker': {'passkey_guess_limit': 2}}

    def test_passkey_guessing_is_limited_as_over_http(self):
        _, pk = self.new_user()
        _, ih = self.new_torrent()
        refusal = 'too many unknown passkeys from this address, try again later'
        later = 'tracker cannot look this up now, try again later'
        u = Udp(self.mika.port)
        self.addCleanup(u.close)
        cid = u.connect_id()
        answers = []
        for tid in range(1, 20):
            opts = udp_url_data(b'/%s/announce' % random_passkey().encode())
            req = udp_announce_req(cid, tid, ih, peer_id(), 7000, options=opts)
            ans = u.ask(req)
            while ans == err(tid, later):
                time.sleep(0.05)
                ans = u.ask(req)
            answers.append(ans[8:].decode())
            if ans == err(tid, refusal):
                break
        self.assertEqual(answers[-1], refusal, answers)
        self.assertIn('unknown passkey', answers)
        # A good passkey from the same address is refused too, for now.
        opts = udp_url_data(b'/%s/announce' % pk.encode())
        ans = u.ask(udp_announce_req(cid, 99, ih, peer_id(), 7000, options=opts))
        self.assertEqual(ans, err(99, refusal))


class UdpSwitchTest(MikaTestCase):
    """udp.port moves UDP off server.port; udp.ipv4 = false leaves IPv4 to HTTP."""
    config = {'udp': {'port': FREE_PORT, 'ipv4': False}}

    def test_port_and_family_switches(self):
        udp_port = self.mika.config['udp']['port']
        with Udp(udp_port, 6) as u:
            self.assertEqual(len(u.ask(udp_connect_req(1))), 16)
        with Udp(udp_port, 4) as u:
            self.assertIsNone(u.ask(udp_connect_req(2), 0.5))
        with Udp(self.mika.port, 6) as u:
            self.assertIsNone(u.ask(udp_connect_req(3), 0.5))
        # HTTP is untouched.
        status, _, _ = self.mika.get('/x/announce')
        self.assertEqual(status, 200)


class UdpExpiryTest(MikaTestCase):
    config = {'udp': {'connection_window': 1}}

    def test_expired_connection_id_gets_no_answer(self):
        _, pk = self.new_user()
        _, ih = self.new_torrent()
        u = Udp(self.mika.port)
        self.addCleanup(u.close)
        cid = u.connect_id()
        opts = udp_url_data(b'/%s/announce' % pk.encode())
        # Two windows later the id has expired, whatever the scale.
        time.sleep(2.2 + 0.2 * TIMEOUT_SCALE)
        self.assertIsNone(u.ask(udp_announce_req(cid, 1, ih, peer_id(), 7000, options=opts),
                                0.5))
        cid = u.connect_id()
        ans = u.ask(udp_announce_req(cid, 2, ih, peer_id(), 7000, options=opts))
        self.assertEqual(ans[:8], struct.pack('>II', 1, 2))


    def test_id_of_the_previous_window_is_still_good(self):
        """Each port keeps the current and previous window's keys and moves
        them along when the window moves: right after a move, an id given in
        the window before must still be answered."""
        _, pk = self.new_user()
        _, ih = self.new_torrent()
        u = Udp(self.mika.port)
        self.addCleanup(u.close)
        opts = udp_url_data(b'/%s/announce' % pk.encode())
        old = u.connect_id()
        # The same source gets the same id until the window moves: ask until
        # it changes, which is the first moment of the next window.
        deadline = time.monotonic() + 3 + TIMEOUT_SCALE
        new = old
        while new == old:
            self.assertLess(time.monotonic(), deadline, 'the window never moved')
            time.sleep(0.02)
            new = u.connect_id()
        ans = u.ask(udp_announce_req(old, 3, ih, peer_id(), 7000, options=opts))
        self.assertIsNotNone(ans)
        self.assertEqual(ans[:8], struct.pack('>II', 1, 3))
        ans = u.ask(udp_announce_req(new, 4, ih, peer_id(), 7001, options=opts))
        self.assertEqual(ans[:8], struct.pack('>II', 1, 4))


class UdpBooksTest(MikaTestCase):
    """A peer moving between HTTP and UDP is one peer in the books: it is
    credited the deltas between its reports, whatever carried them."""

    def test_books_across_transports(self):
        m = Mika({'tracker': {'interval': I, 'min_interval': MI}})
        self.addCleanup(m.cleanup)
        m.start()
        uid, pk = m.add_user()
        _, ih = m.add_torrent()
        m.reload()
        pid = peer_id()
        opts = udp_url_data(b'/%s/announce' % pk.encode())
        with Udp(m.port) as u:
            cid = u.connect_id()
            m.announce(pk, ih, pid, 5001, uploaded=1000, downloaded=100, left=10,
                       event='started')
            ans = u.ask(udp_announce_req(cid, 1, ih, pid, 5001, uploaded=5000,
                                         downloaded=300, left=10, options=opts))
            self.assertEqual(ans[:4], b'\x00\x00\x00\x01')
            m.announce(pk, ih, pid, 5001, uploaded=9000, downloaded=700, left=0,
                       event='completed')
            ans = u.ask(udp_announce_req(cid, 2, ih, pid, 5001, uploaded=9500,
                                         downloaded=700, left=0, event='stopped',
                                         options=opts))
            self.assertEqual(ans, ann_answer(2, 0, 0))
        m.stop()
        # First report credits 0; then +4000/+200, +4000/+400, +500/+0.
        self.assertEqual(m.user_stats(uid), (8500, 600))
        snatched = m.query('SELECT COUNT(*) FROM snatches WHERE user_id = ?', (uid,))
        self.assertEqual(snatched[0][0], 1)


if __name__ == '__main__':
    run_tests(globals())
