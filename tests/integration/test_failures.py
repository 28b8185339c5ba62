"""Every failure reason of the tracker, byte-exact, and that a failed request
changes nothing: the swarm a valid observer sees, the snatch count and the
user's transfer totals stay as they were.

A failure is HTTP 200 with d14:failure reason<len>:<msg>e. Checks run in the
order passkey, query parameters, whitelist, torrent, user rights; the
ordering tests combine two faults and expect the earlier one's message.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
from mikatest import (MikaTestCase, announce_url, bdecode, failure, peer_id,  # noqa: E402
                      random_hash, random_passkey, run_tests, scrape_url, wait_until, pct)

BAD_CLIENT = b'-Q9'     # not in the seeded whitelist (checked in setUpClass)
BAD_CLIENT2 = b'-Q8'


class FailureTest(MikaTestCase):
    config = {'tracker': {'interval': 600, 'min_interval': 300, 'scrape_max_hashes': 4}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        m = cls.mika
        prefixes = {r[0] for r in m.query('SELECT prefix FROM whitelist')}
        assert '-qB' in prefixes and '-TR' in prefixes, prefixes
        for p in (BAD_CLIENT, BAD_CLIENT2):
            assert p.decode() not in prefixes, p
        cls.uid, cls.pk = m.add_user()
        cls.uid_off, cls.pk_off = m.add_user(enabled=False)
        cls.uid_ro, cls.pk_ro = m.add_user(can_download=False)
        cls.uid_obs, cls.pk_obs = m.add_user()
        cls.tid, cls.ih = m.add_torrent()
        cls.tid_gone, cls.ih_gone = m.add_torrent(deleted=True)
        cls.tid_why, cls.ih_why = m.add_torrent(deleted=True, reason='dupe of #12')
        cls.tid_off, cls.ih_off = m.add_torrent(enabled=False)
        m.reload()
        # The swarm every failed request aims at: one seeder with a snatch, one leecher.
        cls.obs = peer_id()
        cls.seed = peer_id()
        m.announce(cls.pk_obs, cls.ih, cls.seed, 5000, left=10, event='started')
        m.announce(cls.pk_obs, cls.ih, cls.seed, 5000, left=0, event='completed')
        cls.baseline = cls.swarm_view()

    @classmethod
    def swarm_view(cls):
        """What a valid observer sees of the target swarm: its announce answer
        (with numwant=0 so it is deterministic) and the scrape entry."""
        body = cls.mika.announce(cls.pk_obs, cls.ih, cls.obs, 5001, left=10, numwant=0)
        return body, cls.mika.scrape(cls.pk_obs, cls.ih)

    def url(self, pk=None, info_hash=None, pid=None, port=6881, **kw):
        """An announce that would change the swarm (a new leecher completing)
        if it were accepted; keywords override or (None) drop parameters."""
        params = dict(uploaded=12345, downloaded=678, left=0, event='completed')
        params.update(kw)
        return announce_url(self.pk if pk is None else pk,
                            self.ih if info_hash is None else info_hash,
                            peer_id() if pid is None else pid, port, **params)

    def assertFails(self, path, reason):
        status, hdrs, body = self.mika.get(path)
        self.assertEqual((status, body), (200, failure(reason)), 'request: %s' % path)
        self.assertEqual(hdrs.get('content-type'), 'text/plain')
        self.assertEqual(self.swarm_view(), self.baseline, 'a failed request changed the swarm')

    # -- passkey

    def test_unknown_passkey(self):
        self.assertFails(self.url(pk=random_passkey()), 'unknown passkey')

    def test_unknown_passkey_of_64_chars(self):
        self.assertFails(self.url(pk=random_passkey(64)), 'unknown passkey')

    def test_passkey_too_long(self):
        self.assertFails(self.url(pk=random_passkey(65)), 'unknown passkey')
        self.assertFails(self.url(pk=self.pk + 'a' * 40), 'unknown passkey')

    def test_passkey_with_non_alnum(self):
        for pk in (self.pk[:-1] + '-', self.pk[:10] + '_' + self.pk[11:], self.pk + '.',
                   self.pk[:-1] + '%41', self.pk[:-1] + '~'):
            self.assertFails(self.url(pk=pk), 'unknown passkey')

    def test_passkey_is_case_sensitive(self):
        pk = self.pk.swapcase()
        if pk != self.pk:
            self.assertFails(self.url(pk=pk), 'unknown passkey')

    def test_empty_passkey(self):
        self.assertFails(self.url(pk=''), 'unknown passkey')

    def test_disabled_user(self):
        self.assertFails(self.url(pk=self.pk_off), 'account disabled')

    def test_leech_without_download_rights(self):
        self.assertFails(self.url(pk=self.pk_ro, left=100, event='started'),
                         'downloading not allowed for this account')

    def test_seed_without_download_rights_is_allowed(self):
        _, ih = self.new_torrent()
        body = self.mika.announce(self.pk_ro, ih, peer_id(), 6881, left=0)
        d = bdecode(body)
        self.assertEqual((d[b'complete'], d[b'incomplete']), (1, 0))

    # -- torrent

    def test_unregistered_torrent(self):
        self.assertFails(self.url(info_hash=random_hash()), 'unregistered torrent')

    def test_deleted_torrent_without_reason(self):
        self.assertFails(self.url(info_hash=self.ih_gone), 'unregistered torrent')

    def test_deleted_torrent_with_reason(self):
        self.assertFails(self.url(info_hash=self.ih_why), 'unregistered torrent: dupe of #12')

    def test_disabled_torrent(self):
        self.assertFails(self.url(info_hash=self.ih_off), 'torrent disabled')

    # -- whitelist

    def test_client_not_whitelisted(self):
        self.assertFails(self.url(pid=peer_id(BAD_CLIENT + b'1234-')), 'client not whitelisted')
        self.assertFails(self.url(pid=b'\x00' * 20), 'client not whitelisted')

    def test_client_accepted_after_whitelisting_and_reload(self):
        pid = peer_id(BAD_CLIENT2 + b'0100-')
        _, ih = self.new_torrent()
        path = announce_url(self.pk, ih, pid, 6881, left=10)
        status, _, body = self.mika.get(path)
        self.assertEqual((status, body), (200, failure('client not whitelisted')))
        self.mika.add_whitelist(BAD_CLIENT2.decode(), 'Q8 test client')
        try:
            self.mika.reload()
            status, _, body = self.mika.get(path)
            self.assertEqual(status, 200)
            self.assertEqual(bdecode(body)[b'incomplete'], 1, body)
        finally:
            self.mika.remove_whitelist(BAD_CLIENT2.decode())
            self.mika.reload()
        status, _, body = self.mika.get(announce_url(self.pk, ih, peer_id(BAD_CLIENT2 + b'01-'),
                                                     6882, left=10))
        self.assertEqual((status, body), (200, failure('client not whitelisted')))

    # -- parameters

    def test_missing_parameters(self):
        for key in ('info_hash', 'peer_id', 'port', 'uploaded', 'downloaded', 'left'):
            self.assertFails(self.url(**{key: None}) if key not in ('info_hash', 'peer_id')
                             else self._without(key), '%s: missing' % key)

    def _without(self, key):
        path = self.url()
        pre, _, query = path.partition('?')
        return pre + '?' + '&'.join(p for p in query.split('&')
                                    if not p.startswith(key + '='))

    def test_info_hash_of_19_and_21_bytes(self):
        self.assertFails(self.url(info_hash=self.ih[:19]), 'info_hash: must be 20 bytes')
        self.assertFails(self.url(info_hash=self.ih + b'\x00'), 'info_hash: must be 20 bytes')
        self.assertFails(self.url().replace('info_hash=' + pct(self.ih), 'info_hash='),
                         'info_hash: must be 20 bytes')

    def test_peer_id_of_19_and_21_bytes(self):
        pid = peer_id()
        self.assertFails(self.url(pid=pid[:19]), 'peer_id: must be 20 bytes')
        self.assertFails(self.url(pid=pid + b'x'), 'peer_id: must be 20 bytes')

    def test_port_out_of_range(self):
        for port in (0, 65536, 99999999999):
            self.assertFails(self.url(port=port), 'port: must be between 1 and 65535')

    def test_port_not_a_number(self):
        # The spec names "port: must be between 1 and 65535" only for numbers;
        # text may be either documented form, but nothing else.
        for port in ('abc', '-1', '80x'):
            status, _, body = self.mika.get(self.url(port=port))
            self.assertIn(body, (failure('port: not a number'),
                                 failure('port: must be between 1 and 65535')),
                          'port=%r' % port)
        self.assertEqual(self.swarm_view(), self.baseline)

    def test_numbers_not_numeric(self):
        for key in ('uploaded', 'downloaded', 'left'):
            for value in ('abc', '12x', '0x10', '1.5', '1e3', '%31x'):
                self.assertFails(self.url(**{key: value}), '%s: not a number' % key)

    def test_negative_numbers(self):
        # Either documented message is a sensible reading of "-5".
        for key in ('uploaded', 'downloaded', 'left'):
            status, _, body = self.mika.get(self.url(**{key: '-5'}))
            self.assertIn(body, (failure('%s: not a number' % key),
                                 failure('%s: out of range' % key)), '%s=-5' % key)
        self.assertEqual(self.swarm_view(), self.baseline)

    def test_huge_numbers(self):
        for key in ('uploaded', 'downloaded', 'left'):
            for value in ('18446744073709551616', '99999999999999999999999999'):
                self.assertFails(self.url(**{key: value}), '%s: out of range' % key)

    def test_numwant_not_numeric(self):
        self.assertFails(self.url(numwant='lots'), 'numwant: not a number')

    def test_unknown_event(self):
        for ev in ('finished', 'Started', 'started%20', 'x', 'stopped%00'):
            self.assertFails(self.url(event=ev), 'event: unknown value')

    def test_duplicate_keys(self):
        self.assertFails(self.url() + '&info_hash=' + pct(self.ih), 'info_hash: given twice')
        self.assertFails(self.url() + '&port=6881', 'port: given twice')
        self.assertFails(self.url() + '&event=started', 'event: given twice')

    # -- order of checks

    def test_passkey_checked_before_parameters(self):
        self.assertFails(self.url(pk=random_passkey(), port=0), 'unknown passkey')

    def test_parameters_checked_before_whitelist(self):
        self.assertFails(self.url(pid=peer_id(BAD_CLIENT + b'1-'), port=0),
                         'port: must be between 1 and 65535')

    def test_whitelist_checked_before_torrent(self):
        self.assertFails(self.url(pid=peer_id(BAD_CLIENT + b'1-'), info_hash=random_hash()),
                         'client not whitelisted')

    def test_torrent_checked_before_user_rights(self):
        self.assertFails(self.url(pk=self.pk_ro, left=100, info_hash=random_hash()),
                         'unregistered torrent')
        self.assertFails(self.url(pk=self.pk_ro, left=100, info_hash=self.ih_off),
                         'torrent disabled')

    # -- scrape

    def test_scrape_without_info_hash(self):
        status, _, body = self.mika.get(scrape_url(self.pk))
        self.assertEqual((status, body), (200, failure('info_hash: missing')))

    def test_scrape_over_the_limit(self):
        hashes = [self.ih] + [random_hash() for _ in range(4)]
        status, _, body = self.mika.get(scrape_url(self.pk, *hashes))
        self.assertEqual((status, body), (200, failure('info_hash: more than 4 given')))
        status, _, body = self.mika.get(scrape_url(self.pk, *hashes[:4]))
        self.assertEqual(status, 200)
        self.assertEqual(list(bdecode(body)[b'files']), [self.ih])

    def test_scrape_with_unknown_passkey(self):
        status, _, body = self.mika.get(scrape_url(random_passkey(), self.ih))
        self.assertEqual((status, body), (200, failure('unknown passkey')))
        status, _, body = self.mika.get(scrape_url(random_passkey(70), self.ih))
        self.assertEqual((status, body), (200, failure('unknown passkey')))

    # -- accounting

    def test_zz_failed_announces_credit_nothing(self):
        # Runs last (name order): every failure above sent uploaded=12345 for
        # self.uid and friends. A valid announce by a fresh user afterwards
        # shows the flusher has caught up; then nobody else was credited.
        uid, pk = self.new_user()
        pid = peer_id()
        self.mika.announce(pk, self.ih, pid, 5999, left=10, numwant=0)
        self.mika.announce(pk, self.ih, pid, 5999, uploaded=7, downloaded=3, left=10, numwant=0)
        wait_until(lambda: self.mika.user_stats(uid) == (7, 3), 5, what='write-behind')
        for u in (self.uid, self.uid_off, self.uid_ro):
            self.assertEqual(self.mika.user_stats(u), (0, 0), 'user %d credited' % u)
        self.mika.announce(pk, self.ih, pid, 5999, uploaded=7, downloaded=3, left=10,
                           event='stopped')


class WhitelistOffTest(MikaTestCase):
    config = {'tracker': {'whitelist': False}}

    def test_any_client_accepted(self):
        _, pk = self.mika.add_user()
        _, ih = self.new_torrent()
        for n, pid in enumerate((peer_id(BAD_CLIENT + b'1-'), b'\x00' * 20, b'\xff' * 20,
                                 peer_id(b'M7-2-3--'))):
            d = bdecode(self.mika.announce(pk, ih, pid, 6000 + n, left=10, numwant=0))
            self.assertEqual(d[b'incomplete'], n + 1)


if __name__ == '__main__':
    run_tests(globals())
