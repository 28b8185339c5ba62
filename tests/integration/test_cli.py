"""Integration: `mika client` end to end against a running daemon.

Owns: what a user of the CLI sees: a user and a torrent created with it, an
announce with the URL it printed, the user's statistics read back with it;
every action at least once; --json is the API's object byte for byte; every
error is a non-zero exit and one line on stderr (the API's message, HTTP
status), usage errors exit 2; --help lists every action; the key is never
printed.
Not here: the API's own behaviour route by route (test_api.py), the PHP
client (test_php.py).

The client runs in the daemon's directory with `--config mika.ini`, as an
operator on the daemon's machine would: the key and certificate come from
the data_dir the daemon wrote them into, with no other set-up.

Run: MIKA_BIN=build/mika /usr/bin/python3 tests/integration/test_cli.py
"""

import hashlib
import json
import os
import ssl
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'lib'))

from mikatest import (FREE_PORT, MikaTestCase, bdecode, bencode, failure, free_port,  # noqa: E402
                      peer_id, run_mika, run_tests, wait_until)


def make_torrent(path, name=None, size=50000, private=True):
    """Writes a single-file .torrent (name None: a random one, so each call
    makes a new torrent) and returns its info_hash (hex)."""
    name = name or 'payload-%s.bin' % os.urandom(6).hex()
    pieces = b''.join(hashlib.sha1(bytes([i]) * 16384).digest()
                      for i in range((size + 16383) // 16384))
    info = {'name': name, 'length': size, 'piece length': 16384, 'pieces': pieces}
    if private:
        info['private'] = 1
    with open(path, 'wb') as f:
        f.write(bencode({'announce': 'http://tracker.invalid/announce', 'info': info}))
    return hashlib.sha1(bencode(info)).hexdigest()


def fields(text):
    """`key: value` lines of the human view as a dict (first occurrence wins)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(':')
        if sep and key and ' ' not in key and key not in out:
            out[key] = value.strip()
    return out


class CliTest(MikaTestCase):
    config = {'api': {'port': FREE_PORT}, 'tracker': {'interval': 60, 'min_interval': 1}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        m = cls.mika
        cls.api_port = m.config['api']['port']
        cls.key = None

        def up():
            return cls.cli_raw('health')[0] == 0
        wait_until(up, 10, 0.1, 'the admin API to answer `mika client health`')
        with open(os.path.join(m.dir, 'api.key')) as f:
            cls.key = f.read().strip()
        cls.cert = os.path.join(m.dir, 'api-cert.pem')
        cls.ssl = ssl.create_default_context(cafile=cls.cert)

    # -- helpers

    @classmethod
    def cli_raw(cls, *args, env=None, cwd=None, config=True):
        """Runs `mika client [--config mika.ini] args` in the daemon's dir:
        (exit code, stdout, stderr)."""
        pre = ['client'] + (['--config', 'mika.ini'] if config else [])
        rc, out, err = run_mika(pre + list(args), env=env, timeout=20,
                                cwd=cwd or cls.mika.dir)
        if cls.key:
            assert cls.key not in out and cls.key not in err, 'the API key was printed'
        return rc, out, err

    def cli(self, *args, **kw):
        """Runs the client, asserts exit 0 and an empty stderr, returns stdout."""
        rc, out, err = self.cli_raw(*args, **kw)
        self.assertEqual(rc, 0, 'mika client %s failed: %s' % (' '.join(args), err))
        self.assertEqual(err, '')
        return out

    def cli_json(self, *args, **kw):
        return json.loads(self.cli('--json', *args, **kw))

    def cli_fails(self, *args, code=1, **kw):
        """Asserts the client exits `code` with one line on stderr and nothing
        on stdout; returns that line."""
        rc, out, err = self.cli_raw(*args, **kw)
        self.assertEqual(rc, code, 'mika client %s: %r' % (' '.join(args), err))
        self.assertEqual(out, '')
        self.assertTrue(err.endswith('\n'), repr(err))
        self.assertEqual(err.count('\n'), 1, 'not one line: %r' % err)
        self.assertTrue(err.startswith('mika client: '), repr(err))
        return err.strip()

    def api_get(self, path):
        """GET straight from the API: (status, body bytes)."""
        req = urllib.request.Request('https://127.0.0.1:%d%s' % (self.api_port, path),
                                     headers={'Authorization': 'Bearer ' + self.key})
        try:
            with urllib.request.urlopen(req, context=self.ssl, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def announce_path(self, url, info_hash, pid, port, **kw):
        """The path+query of an announce to `url` (as printed by the client)."""
        u = urllib.parse.urlsplit(url)
        self.assertEqual(u.scheme, 'http')
        self.assertEqual(u.port, self.mika.port)
        q = {'info_hash': info_hash, 'peer_id': pid, 'port': port, 'uploaded': 0,
             'downloaded': 0, 'left': 0, 'compact': 1}
        q.update(kw)
        return u.path + '?' + urllib.parse.urlencode(q, quote_via=urllib.parse.quote)

    def announce(self, url, info_hash, pid, port, **kw):
        status, _, body = self.mika.get(self.announce_path(url, info_hash, pid, port, **kw))
        self.assertEqual(status, 200)
        return bdecode(body)

    def new_user(self, *args):
        out = self.cli_json('user', 'add', *args)
        return out['id'], out['passkey'], out['announce_url']

    def new_torrent(self):
        tmp = tempfile.mkdtemp(prefix='mika-cli-')
        ih = make_torrent(os.path.join(tmp, 'x.torrent'))
        self.cli('torrent', 'add', os.path.join(tmp, 'x.torrent'))
        return ih

    # -- the newcomer's walk-through

    def test_user_and_torrent_then_announce_with_the_printed_url_and_read_the_books(self):
        out = self.cli('user', 'add', 'alice')
        f = fields(out)
        pk, url, uid = f['passkey'], f['announce_url'], int(f['id'])
        self.assertRegex(pk, r'^[A-Za-z0-9]{32}$')
        self.assertTrue(url.endswith('/%s/announce' % pk), url)
        self.assertEqual(f['name'], 'alice')

        tmp = tempfile.mkdtemp(prefix='mika-cli-')
        path = os.path.join(tmp, 'file.torrent')
        ih = make_torrent(path, name='payload.bin')
        out = self.cli('torrent', 'add', path)
        self.assertTrue(out.startswith('id:'), out)
        f = fields(out)
        self.assertEqual(f['info_hash'], ih)
        self.assertEqual(f['name'], 'payload.bin')
        self.assertEqual(f['size'], '50000')

        pid = peer_id()
        ihb = bytes.fromhex(ih)
        d = self.announce(url, ihb, pid, 6881, left=50000, event='started')
        self.assertNotIn(b'failure reason', d)
        self.assertEqual(d[b'incomplete'], 1)
        d = self.announce(url, ihb, pid, 6881, uploaded=1000, downloaded=500, left=49500)
        self.assertNotIn(b'failure reason', d)

        def books():
            s = self.cli_json('user', 'stats', str(uid))
            return s if s['uploaded'] == 1000 else None
        s = wait_until(books, 10, 0.1, 'the user\'s books to show the announce')
        self.assertEqual(s['downloaded'], 500)
        self.assertEqual(s['leeching'], 1)
        self.assertEqual(s['seeding'], 0)
        human = fields(self.cli('user', 'stats', str(uid)))
        self.assertEqual(human['uploaded'], '1000')
        self.assertEqual(human['downloaded'], '500')
        self.assertEqual(human['ratio'], '2')

        peers = self.cli_json('user', 'peers', str(uid))['peers']
        self.assertEqual([p['info_hash'] for p in peers], [ih])
        peers = self.cli_json('torrent', 'peers', ih)['peers']
        self.assertEqual([p['user_id'] for p in peers], [uid])
        self.assertIn(ih, self.cli('torrent', 'peers', ih))

    # -- --json

    def test_json_prints_the_api_object_byte_for_byte(self):
        uid, pk, url = self.new_user('bob-json')
        for args, path in ((('user', 'get', str(uid)), '/api/v1/users/%d' % uid),
                           (('user', 'get', pk), '/api/v1/users/passkey/' + pk),
                           (('stats',), None), (('settings', 'get'), '/api/v1/settings'),
                           (('class', 'list'), '/api/v1/classes'),
                           (('whitelist', 'list'), '/api/v1/whitelist')):
            out = self.cli('--json', *args)
            if path is None:
                self.assertIsInstance(json.loads(out), dict)
                continue
            status, body = self.api_get(path)
            self.assertEqual(status, 200)
            text = body.decode()
            self.assertEqual(out, text if text.endswith('\n') else text + '\n')
        created = self.cli_json('user', 'add', 'carol-json')
        for k in ('id', 'passkey', 'announce_url', 'name', 'enabled', 'class_id'):
            self.assertIn(k, created)
        self.assertEqual(created['name'], 'carol-json')
        # --json may come anywhere on the line
        self.assertEqual(json.loads(self.cli('user', 'get', str(uid), '--json'))['id'], uid)

    # -- every action

    def test_user_list_update_rotate_delete(self):
        uid, pk, url = self.new_user('dave')
        ih = self.new_torrent()
        page = self.cli_json('user', 'list', '--name', 'dave', '--limit', '10')
        self.assertEqual([u['id'] for u in page['users']], [uid])
        self.assertEqual(page['total'], 1)
        table = self.cli('user', 'list', '--name', 'dave')
        self.assertTrue(table.startswith('id '), table)
        self.assertIn('dave', table)
        self.assertIn('total:', table)

        u = self.cli_json('user', 'update', str(uid), '--may-download', 'false', '--up-mult',
                          '1.5', '--name', 'dave2')
        self.assertEqual((u['may_download'], u['upload_multiplier'], u['name']),
                         (False, 1.5, 'dave2'))
        d = self.announce(url, bytes.fromhex(ih), peer_id(), 6881, left=10)
        self.assertIn(b'failure reason', d)
        self.cli('user', 'update', str(uid), '--may-download', 'true')

        new = fields(self.cli('user', 'rotate', str(uid)))
        self.assertNotEqual(new['passkey'], pk)
        self.assertTrue(new['announce_url'].endswith('/%s/announce' % new['passkey']))
        status, _, body = self.mika.get(self.announce_path(url, bytes.fromhex(ih), peer_id(),
                                                           6881))
        self.assertEqual(body, failure('unknown passkey'))
        d = self.announce(new['announce_url'], bytes.fromhex(ih), peer_id(), 6881, left=0)
        self.assertNotIn(b'failure reason', d)

        gone = self.cli_json('user', 'delete', str(uid))
        self.assertEqual((gone['id'], gone['deleted']), (uid, True))
        self.assertIn('not_found', self.cli_fails('user', 'get', str(uid)))

    def test_torrent_add_by_hex_get_list_update_delete_restore(self):
        uid, pk, url = self.new_user()
        ih = os.urandom(20).hex()
        t = self.cli_json('torrent', 'add', ih.upper(), '--freeleech', 'true')
        self.assertEqual((t['info_hash'], t['freeleech']), (ih, True))
        self.assertEqual(self.cli_json('torrent', 'get', ih)['info_hash'], ih)
        self.assertIn(ih, self.cli('torrent', 'get', ih))
        listed = self.cli_json('torrent', 'list', '--sort', 'id', '--limit', '1000')
        self.assertIn(ih, [x['info_hash'] for x in listed['torrents']])
        self.assertIn(ih, self.cli('torrent', 'list', '--sort', 'id', '--limit', '1000'))
        t = self.cli_json('torrent', 'update', ih, '--down-mult', '0.5', '--freeleech', 'no')
        self.assertEqual((t['download_multiplier'], t['freeleech']), (0.5, False))

        self.cli('torrent', 'delete', ih, '--reason', 'duplicate of 42')
        d = self.mika.get(self.announce_path(url, bytes.fromhex(ih), peer_id(), 6881))[2]
        self.assertEqual(d, failure('unregistered torrent: duplicate of 42'))
        self.assertTrue(self.cli_json('torrent', 'get', ih)['deleted'])
        deleted = self.cli_json('torrent', 'list', '--deleted', 'true', '--limit', '1000')
        self.assertIn(ih, [x['info_hash'] for x in deleted['torrents']])
        self.assertFalse(self.cli_json('torrent', 'update', ih, '--restore')['deleted'])
        d = self.announce(url, bytes.fromhex(ih), peer_id(), 6881, left=1)
        self.assertNotIn(b'failure reason', d)

    def test_torrent_without_private_flag_is_accepted_with_a_warning(self):
        tmp = tempfile.mkdtemp(prefix='mika-cli-')
        path = os.path.join(tmp, 'public.torrent')
        ih = make_torrent(path, name='pub.bin', private=False)
        t = self.cli_json('torrent', 'add', path, '--name', 'renamed')
        self.assertEqual((t['info_hash'], t['name']), (ih, 'renamed'))
        self.assertTrue(t.get('warnings'), t)

    def test_whitelist_add_list_delete(self):
        self.cli('whitelist', 'add', '-ZZ', 'Zed client')
        self.assertIn({'prefix': '-ZZ', 'name': 'Zed client'},
                      self.cli_json('whitelist', 'list')['whitelist'])
        self.assertIn('Zed client', self.cli('whitelist', 'list'))
        uid, pk, url = self.new_user()
        ih = self.new_torrent()
        d = self.announce(url, bytes.fromhex(ih), peer_id(b'-ZZ0001-'), 6881)
        self.assertNotIn(b'failure reason', d)
        self.cli('whitelist', 'delete', '-ZZ')
        self.assertNotIn('-ZZ', [w['prefix'] for w in
                                 self.cli_json('whitelist', 'list')['whitelist']])
        self.assertIn('not_found', self.cli_fails('whitelist', 'delete', '-ZZ'))

    def test_class_add_list_get_update_delete(self):
        c = self.cli_json('class', 'add', 'power-user', '--up-mult', '2', '--may-download',
                          'true')
        cid = c['id']
        self.assertEqual((c['name'], c['upload_multiplier']), ('power-user', 2))
        self.assertIn('power-user', self.cli('class', 'list'))
        self.assertEqual(self.cli_json('class', 'get', str(cid))['name'], 'power-user')
        c = self.cli_json('class', 'update', str(cid), '--may-download', 'false')
        self.assertFalse(c['may_download'])
        uid, _, _ = self.new_user('classy', '--class', str(cid))
        self.assertEqual(self.cli_json('user', 'get', str(uid))['class_id'], cid)
        self.assertIn('conflict', self.cli_fails('class', 'delete', str(cid)))
        self.cli('user', 'delete', str(uid))
        self.assertEqual(self.cli_json('class', 'delete', str(cid))['id'], cid)

    def test_settings_get_set_and_stats_health_metrics(self):
        before = self.cli_json('settings', 'get')
        s = self.cli_json('settings', 'set', '--event', 'freeleech', '--event-ends-at', 'none')
        self.assertEqual((s['event'], s['event_ends_at'], s['event_active']),
                         ('freeleech', None, True))
        self.assertIn('event', fields(self.cli('settings', 'get')))
        s = self.cli_json('settings', 'set', '--event', before['event'])
        self.assertEqual(s['event'], before['event'])

        st = self.cli_json('stats')
        for k in ('users', 'torrents', 'seeders', 'leechers', 'uptime_seconds'):
            self.assertIn(k, st)
        self.assertIn('uptime_seconds:', self.cli('stats'))
        self.assertIn('status:', self.cli('health'))
        self.assertIn('mika_announces_total', self.cli('metrics'))

    # -- errors

    def test_api_errors_are_one_line_with_the_apis_message(self):
        line = self.cli_fails('user', 'get', '4294967294')
        self.assertIn('not_found, HTTP 404', line)
        self.new_user('erin')
        self.assertIn('conflict, HTTP 409', self.cli_fails('user', 'add', 'erin'))
        uid, _, _ = self.new_user()
        line = self.cli_fails('user', 'update', str(uid), '--up-mult', '101')
        self.assertIn('HTTP 400', line)
        self.assertIn('upload_multiplier', line)
        self.assertIn('HTTP 400', self.cli_fails('torrent', 'get', 'nothex'))

    def test_wrong_key_is_refused_and_not_echoed(self):
        wrong = 'W' * 40
        line = self.cli_fails('--key', wrong, 'stats')
        self.assertIn('unauthorized, HTTP 401', line)
        self.assertNotIn(wrong, line)

    def test_transport_errors_are_one_line(self):
        line = self.cli_fails('--url', 'https://127.0.0.1:%d' % free_port(), 'stats')
        self.assertIn('127.0.0.1', line)
        line = self.cli_fails('--cacert', '/etc/ssl/certs/ca-certificates.crt', 'stats')
        self.assertIn('--cacert', line)
        line = self.cli_fails('--url', 'http://127.0.0.1:%d' % self.api_port, 'stats')
        self.assertIn('https://', line)

    def test_usage_errors_exit_2_with_one_line(self):
        self.assertIn('unknown resource', self.cli_fails('peer', 'list', code=2))
        self.assertIn('unknown action', self.cli_fails('user', 'ban', '1', code=2))
        self.assertIn('missing ID', self.cli_fails('user', 'stats', code=2))
        self.assertIn('--reason is required',
                      self.cli_fails('torrent', 'delete', '00' * 20, code=2))
        self.assertIn('not an integer', self.cli_fails('user', 'add', '--id', 'x', code=2))
        self.assertIn('neither a file', self.cli_fails('torrent', 'add', 'nope.torrent'))

    # -- where the settings come from

    def test_environment_instead_of_the_config(self):
        env = {'MIKA_API_URL': 'https://127.0.0.1:%d' % self.api_port, 'MIKA_API_KEY': self.key,
               'MIKA_API_CACERT': self.cert}
        out = self.cli('--json', 'stats', env=env, cwd='/', config=False)
        self.assertIn('uptime_seconds', json.loads(out))
        keyfile = os.path.join(self.mika.dir, 'api.key')
        out = self.cli('--url', 'https://127.0.0.1:%d' % self.api_port, '--key-file', keyfile,
                       '--cacert', self.cert, 'stats', cwd='/', config=False)
        self.assertIn('users:', out)

    # -- help

    def test_help_lists_every_action(self):
        out = self.cli('--help')
        for line in ('user add [NAME]', 'user get ID|PASSKEY', 'user list', 'user update ID',
                     'user rotate ID', 'user delete ID', 'user stats ID', 'torrent add FILE|HEX',
                     'torrent get HEX', 'torrent list', 'torrent update HEX',
                     'torrent delete HEX --reason', 'whitelist add PREFIX NAME',
                     'whitelist list', 'whitelist delete PREFIX', 'class list', 'class add NAME',
                     'class get ID', 'class update ID', 'class delete ID', 'settings get',
                     'settings set', '  stats'):
            self.assertIn(line, out)
        out = self.cli('user', '--help')
        self.assertIn('user rotate ID', out)
        self.assertIn('--may-download', out)
        self.assertNotIn('torrent add', out)
        self.assertIn('--reason TEXT', self.cli('torrent', 'delete', '--help'))
        rc, out, err = self.cli_raw()
        self.assertEqual(rc, 2)
        self.assertIn('usage: mika client', err)


if __name__ == '__main__':
    run_tests(globals())
