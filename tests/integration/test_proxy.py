"""Which address a peer gets: the connection's source, a reverse proxy's
real_ip_header only when the connection comes from a trusted address, and
the ipv4= parameter only with allow_ip_param=true."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
from mikatest import (LOCAL4, MikaTestCase, announce_answer, bdecode, compact4,  # noqa: E402
                      compact6, peer_id, run_tests)

I, MI = 600, 300
TRACKER = {'interval': I, 'min_interval': MI}


class ProxyBase(MikaTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.uid, cls.pk = cls.mika.add_user()
        cls.mika.reload()

    def seen_as(self, headers=None, **kw):
        """Announces a leecher (with extra headers / params), then a second
        leecher; returns (first answer, the compact entry the second sees)."""
        _, ih = self.new_torrent()
        first = self.mika.announce(self.pk, ih, peer_id(), 6881, headers=headers, left=10, **kw)
        second = bdecode(self.mika.announce(self.pk, ih, peer_id(), 6882, left=10))
        return first, second[b'peers']


class TrustedProxyTest(ProxyBase):
    config = {'tracker': TRACKER,
              'proxy': {'real_ip_header': 'X-Real-IP', 'trusted': '127.0.0.1'}}

    def test_header_used_from_trusted_address(self):
        first, entry = self.seen_as({'X-Real-IP': '203.0.113.7'})
        self.assertEqual(first, announce_answer(0, 0, 1, I, MI, b'', bytes([203, 0, 113, 7])))
        self.assertEqual(entry, compact4('203.0.113.7', 6881))

    def test_header_name_case_insensitive(self):
        first, entry = self.seen_as({'x-real-ip': '198.51.100.2'})
        self.assertEqual(entry, compact4('198.51.100.2', 6881))

    def test_without_header_source_used(self):
        first, entry = self.seen_as()
        self.assertEqual(first, announce_answer(0, 0, 1, I, MI, b'', LOCAL4))
        self.assertEqual(entry, compact4('127.0.0.1', 6881))

    def test_other_headers_ignored(self):
        first, entry = self.seen_as({'X-Forwarded-For': '203.0.113.9'})
        self.assertEqual(entry, compact4('127.0.0.1', 6881))


class ForwardedForTest(ProxyBase):
    config = {'tracker': TRACKER,
              'proxy': {'real_ip_header': 'X-Forwarded-For', 'trusted': '127.0.0.0/8'}}

    def test_rightmost_address_used(self):
        first, entry = self.seen_as({'X-Forwarded-For': '192.0.2.1, 198.51.100.3'})
        self.assertEqual(entry, compact4('198.51.100.3', 6881))
        self.assertEqual(bdecode(first)[b'external ip'], bytes([198, 51, 100, 3]))


class UntrustedProxyTest(ProxyBase):
    config = {'tracker': TRACKER,
              'proxy': {'real_ip_header': 'X-Real-IP', 'trusted': '10.0.0.0/8, 192.168.0.0/16'}}

    def test_header_ignored_from_untrusted_address(self):
        first, entry = self.seen_as({'X-Real-IP': '203.0.113.7'})
        self.assertEqual(first, announce_answer(0, 0, 1, I, MI, b'', LOCAL4))
        self.assertEqual(entry, compact4('127.0.0.1', 6881))


class IpParamIgnoredTest(ProxyBase):
    config = {'tracker': TRACKER}

    def test_ipv4_param_ignored_by_default(self):
        first, entry = self.seen_as(ipv4='198.51.100.20')
        self.assertEqual(first, announce_answer(0, 0, 1, I, MI, b'', LOCAL4))
        self.assertEqual(entry, compact4('127.0.0.1', 6881))


class IpParamAllowedTest(ProxyBase):
    config = {'tracker': dict(TRACKER, allow_ip_param=True)}

    def test_ipv4_param_honoured(self):
        first, entry = self.seen_as(ipv4='198.51.100.20')
        self.assertNotIn(b'failure reason', bdecode(first))
        self.assertEqual(entry, compact4('198.51.100.20', 6881))

    def test_ipv6_param_over_v4_ignored(self):
        # Honoured only for the family the request arrived on.
        first, entry = self.seen_as(ipv6='2001:db8::1')
        self.assertEqual(entry, compact4('127.0.0.1', 6881))

    def test_ipv6_param_over_v6_honoured(self):
        _, ih = self.new_torrent()
        self.mika.announce(self.pk, ih, peer_id(), 6881, family=6, left=10, ipv6='2001:db8::1')
        d = bdecode(self.mika.announce(self.pk, ih, peer_id(), 6882, family=6, left=10))
        self.assertEqual(d[b'peers6'], compact6('2001:db8::1', 6881))


if __name__ == '__main__':
    run_tests(globals())
