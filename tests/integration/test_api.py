"""The admin REST API against a running daemon: every route and every error
class, TLS versions, authentication, the OpenAPI document (docs/api.yaml)
walked route by route, and changes made through the API seen by the very next
announce without a reload."""
import base64
import hashlib
import json
import os
import re
import socket
import ssl
import stat
import subprocess
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
from mikatest import (Mika, MikaApi, api_request, bdecode, bencode,  # noqa: E402
                      peer_id, random_hash, run_tests, wait_until)

try:
    import yaml  # Debian's python3-yaml, for /usr/bin/python3
except ImportError:  # pragma: no cover
    sys.exit('test_api.py needs python3-yaml to read docs/api.yaml: apt-get install python3-yaml')

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
SPEC_PATH = os.path.join(ROOT, 'docs', 'api.yaml')
ERROR_CODES = {400: {'malformed_json', 'unknown_field', 'wrong_type', 'out_of_range',
                     'missing_field', 'invalid_value'},
               401: {'unauthorized'}, 404: {'not_found'}, 405: {'method_not_allowed'},
               409: {'conflict'}, 413: {'payload_too_large'}, 415: {'unsupported_media_type'},
               503: {'store_unavailable'}, 500: {'internal'}}


def metainfo(name=b'file.iso', length=12345, private=1, files=None):
    """(the .torrent bytes, the info_hash) of a small torrent."""
    info = {'name': name, 'piece length': 16384, 'pieces': b'\x01' * 20}
    if files is not None:
        info['files'] = files
    else:
        info['length'] = length
    if private is not None:
        info['private'] = private
    data = bencode({'announce': b'http://tracker.test/announce', 'info': info})
    return data, hashlib.sha1(bencode(info)).hexdigest()


class ApiCase(unittest.TestCase):
    """One daemon with the API for the whole class; tests make their own
    users and torrents."""

    config = {'tracker': {'interval': 120, 'min_interval': 60},
              'api': {'max_body_bytes': 65536}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.m = MikaApi(cls.config)
        cls.m.__enter__()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.m.__exit__(None, None, None)
        finally:
            super().tearDownClass()

    # -- helpers

    def assertError(self, answer, status, code=None, mentions=None):
        """answer = (status, headers, body) is the error shape with this status."""
        st, hdrs, body = answer
        self.assertEqual(st, status, body)
        self.assertTrue(hdrs.get('content-type', '').startswith('application/json'), hdrs)
        self.assertIsInstance(body, dict, body)
        self.assertEqual(set(body), {'error'}, body)
        self.assertEqual(set(body['error']), {'code', 'message'}, body)
        self.assertIn(body['error']['code'], ERROR_CODES[status], body)
        if code:
            self.assertEqual(body['error']['code'], code, body)
        if mentions:
            self.assertIn(mentions, body['error']['message'], body)
        return body

    def new_user(self, **fields):
        return self.m.api_ok('POST', '/api/v1/users', fields, status=201)

    def new_torrent(self, **fields):
        if 'info_hash' not in fields and 'torrent_base64' not in fields:
            fields['info_hash'] = random_hash().hex()
        return self.m.api_ok('POST', '/api/v1/torrents', fields, status=201)

    def announce(self, passkey, info_hash_hex, pid=None, **kw):
        """The decoded announce answer (no reload in between, ever)."""
        return bdecode(self.m.announce(passkey, bytes.fromhex(info_hash_hex),
                                       pid or peer_id(), kw.pop('port', 6881), **kw))

    def announce_failure(self, passkey, info_hash_hex, pid=None, **kw):
        d = self.announce(passkey, info_hash_hex, pid, **kw)
        return d.get(b'failure reason', b'').decode()


# ---------------------------------------------------------------- TLS and keys


class TransportTest(ApiCase):
    def s_client(self, version):
        """(exit code, output) of openssl s_client offering only `version`."""
        args = ['openssl', 's_client', '-connect', '127.0.0.1:%d' % self.m.api_port,
                '-' + version, '-CAfile', self.m.cert_path]
        if version in ('tls1', 'tls1_1'):
            # OpenSSL 3 refuses these itself at its default security level:
            # lower it so the refusal we see is the server's.
            args += ['-cipher', 'DEFAULT@SECLEVEL=0']
        p = subprocess.run(args, input=b'', stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=20)
        return p.returncode, p.stdout.decode('utf-8', 'replace')

    def test_tls_1_1_and_1_0_are_refused(self):
        for v in ('tls1_1', 'tls1'):
            rc, out = self.s_client(v)
            self.assertIn('Cipher is (NONE)', out, v)
            self.assertIn('no peer certificate available', out, v)
            self.assertNotRegex(out, r'New, TLSv1', v)

    def test_tls_1_2_and_1_3_are_accepted_and_verify_against_the_cert_file(self):
        for v, name in (('tls1_2', 'TLSv1.2'), ('tls1_3', 'TLSv1.3')):
            rc, out = self.s_client(v)
            self.assertEqual(rc, 0, out)
            self.assertRegex(out, r'New, %s, Cipher is [A-Z0-9_-]+' % re.escape(name))
            self.assertIn('Verify return code: 0 (ok)', out)

    def test_python_ssl_refuses_tls_1_1_only_client(self):
        import warnings
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.m.cert_path)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        try:
            ctx.set_ciphers('DEFAULT@SECLEVEL=0')
        except ssl.SSLError:
            pass
        import socket
        with socket.create_connection(('127.0.0.1', self.m.api_port), timeout=10) as s:
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                with ctx.wrap_socket(s, server_hostname='127.0.0.1') as tls:
                    tls.do_handshake()

    def test_generated_files_are_private_and_the_fingerprint_is_logged(self):
        for name in ('api-cert.pem', 'api-key.pem', 'api.key'):
            mode = stat.S_IMODE(os.stat(os.path.join(self.m.data_dir, name)).st_mode)
            self.assertEqual(mode, 0o600, name)
        with open(self.m.key_file) as f:
            key = f.read()
        self.assertRegex(key, r'^[A-Za-z0-9]{40}\n$')
        with open(self.m.cert_path) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        fp = ':'.join('%02X' % b for b in hashlib.sha256(der).digest())
        self.assertIn('certificate SHA-256 ' + fp, self.m.log_text())
        self.assertNotIn(key.strip(), self.m.log_text())

    def test_certificate_names_localhost_and_loopback(self):
        out = subprocess.run(['openssl', 'x509', '-in', self.m.cert_path, '-noout', '-text'],
                             stdout=subprocess.PIPE, check=True).stdout.decode()
        self.assertIn('CN = mika', out)
        self.assertIn('DNS:localhost', out)
        self.assertIn('IP Address:127.0.0.1', out)
        self.assertIn('IP Address:0:0:0:0:0:0:0:1', out)
        m = re.search(r'Not Before: (.*)\n\s*Not After : (.*)\n', out)
        years = int(m.group(2).split()[3]) - int(m.group(1).split()[3])
        self.assertEqual(years, 10)

    def test_missing_and_wrong_keys_get_401(self):
        self.assertError(self.m.api('GET', '/api/v1/stats', key=None), 401, 'unauthorized',
                         'missing')
        self.assertError(self.m.api('GET', '/api/v1/stats', key='x' * 40), 401,
                         'unauthorized', 'wrong key')
        self.assertError(self.m.api('GET', '/api/v1/stats', key=self.m.api_key[:-1]), 401)
        self.assertError(self.m.api('GET', '/api/v1/stats', key=self.m.api_key + 'x'), 401)
        st, hdrs, _ = self.m.api('GET', '/api/v1/stats',
                                 headers={'Authorization': 'Basic dXNlcjpwdw=='}, key=None)
        self.assertEqual(st, 401)
        self.assertEqual(hdrs.get('www-authenticate'), 'Bearer realm="mika"')
        # The scheme is case-insensitive (RFC 9110).
        st, _, _ = self.m.api('GET', '/api/v1/stats', key=None,
                              headers={'Authorization': 'bearer ' + self.m.api_key})
        self.assertEqual(st, 200)

    def test_a_strangers_body_is_not_read_into_memory_but_refused_401(self):
        big = {'pad': 'y' * 200000}
        self.assertError(self.m.api('POST', '/api/v1/users', big, key=None), 401)
        self.assertError(self.m.api('POST', '/api/v1/users', big, key='z' * 30), 401)

    def test_unknown_routes_need_a_key_too(self):
        self.assertError(self.m.api('GET', '/api/v1/nope', key=None), 401)
        self.assertError(self.m.api('GET', '/api/v1/nope'), 404, 'not_found')

    def test_health_needs_no_key(self):
        st, _, body = self.m.api('GET', '/health', key=None)
        self.assertEqual(st, 200)
        self.assertEqual(body['status'], 'ok')
        self.assertEqual(body['store'], 'ok')
        self.assertGreaterEqual(body['uptime_seconds'], 0)
        # Only GET is public.
        self.assertError(self.m.api('POST', '/health', key=None), 401)
        self.assertError(self.m.api('POST', '/health'), 405)


# ---------------------------------------------------------------- the document


class DocumentTest(ApiCase):
    """docs/api.yaml against the server: every documented path and method
    answers with a documented status; methods the document lacks get 405 with
    an Allow header listing exactly the documented ones; paths it lacks get 404."""

    METHODS = ('get', 'post', 'put', 'patch', 'delete')

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(SPEC_PATH) as f:
            cls.spec = yaml.safe_load(f)

    def fill(self, path):
        """The path with its parameters bound to existing resources."""
        u = self.new_user()
        t = self.new_torrent()
        c = self.m.api_ok('POST', '/api/v1/classes', {'name': 'doc-%s' % random_hash().hex()[:8]},
                          status=201)
        self.m.api_ok('POST', '/api/v1/whitelist',
                      {'prefix': '-D%s' % random_hash().hex()[:12], 'name': 'doc'}, status=201)
        prefix = self.m.api_ok('GET', '/api/v1/whitelist')['whitelist'][-1]['prefix']
        values = {'id': u['id'], 'passkey': u['passkey'], 'info_hash': t['info_hash'],
                  'prefix': urllib.parse.quote(prefix, safe='')}
        if path.startswith('/api/v1/classes/'):
            values['id'] = c['id']
        if '/tokens/{info_hash}' in path:
            self.m.api_ok('POST', '/api/v1/users/%d/tokens' % u['id'],
                          {'info_hash': t['info_hash']}, status=201)
        return re.sub(r'\{(\w+)\}', lambda mm: str(values[mm.group(1)]), path)

    SAMPLE_BODIES = {
        ('/api/v1/users', 'post'): {},
        ('/api/v1/users/{id}', 'patch'): {'enabled': True},
        ('/api/v1/users/{id}/rotate', 'post'): {},
        ('/api/v1/torrents', 'post'): None,  # filled per call
        ('/api/v1/torrents/{info_hash}', 'patch'): {'freeleech': False},
        ('/api/v1/torrents/{info_hash}', 'delete'): {'reason': 'doc test'},
        ('/api/v1/whitelist', 'post'): None,
        ('/api/v1/classes', 'post'): None,
        ('/api/v1/classes/{id}', 'patch'): {'may_download': True},
        ('/api/v1/settings', 'put'): {'numwant_max': 50},
    }

    def body_for(self, path, method):
        if (path, method) == ('/api/v1/torrents', 'post'):
            return {'info_hash': random_hash().hex()}
        if (path, method) == ('/api/v1/whitelist', 'post'):
            return {'prefix': '-W%s' % random_hash().hex()[:12], 'name': 'doc'}
        if (path, method) == ('/api/v1/classes', 'post'):
            return {'name': 'doc-%s' % random_hash().hex()[:8]}
        if (path, method) == ('/api/v1/users/{id}/tokens', 'post'):
            return {'info_hash': self.new_torrent()['info_hash']}
        return self.SAMPLE_BODIES.get((path, method))

    def test_every_documented_route_answers_as_documented(self):
        checked = 0
        for path, item in self.spec['paths'].items():
            for method in self.METHODS:
                if method not in item:
                    continue
                op = item[method]
                documented = {int(s) for s in op['responses']}
                concrete = self.fill(path)
                st, hdrs, body = self.m.api(method.upper(), concrete, self.body_for(path, method))
                self.assertIn(st, documented, '%s %s -> %d %r' % (method, concrete, st, body))
                self.assertTrue(200 <= st < 300, '%s %s -> %d %r' % (method, concrete, st, body))
                ok = {s for s in documented if 200 <= s < 300}
                content = op['responses'][str(st)].get('content', {})
                if 'application/json' in content:
                    self.assertIsInstance(body, dict)
                    self.check_required(content['application/json']['schema'], body,
                                        '%s %s' % (method, path))
                if 'text/plain' in content:
                    self.assertIsInstance(body, str)
                self.assertTrue(ok)
                # Every operation but /health documents 401, and means it.
                if op.get('security', None) != []:
                    self.assertIn(401, documented, path)
                    self.assertEqual(self.m.api(method.upper(), concrete, key=None)[0], 401)
                checked += 1
        self.assertEqual(checked, 34)

    def resolve(self, schema):
        while '$ref' in schema:
            name = schema['$ref'].split('/')[-1]
            schema = self.spec['components']['schemas'][name]
        return schema

    def check_required(self, schema, body, where):
        schema = self.resolve(schema)
        for name in schema.get('required', []):
            self.assertIn(name, body, '%s: %s missing in %r' % (where, name, body))
        for name, sub in schema.get('properties', {}).items():
            sub = self.resolve(sub)
            if name in body and sub.get('type') == 'array' and 'items' in sub:
                items = self.resolve(sub['items'])
                for item in body[name]:
                    if isinstance(item, dict):
                        self.check_required(items, item, '%s.%s[]' % (where, name))

    def test_undocumented_methods_get_405_with_the_documented_allow(self):
        for path, item in self.spec['paths'].items():
            documented = {m for m in self.METHODS if m in item}
            concrete = self.fill(path)
            for method in set(self.METHODS) - documented:
                st, hdrs, body = self.m.api(method.upper(), concrete)
                self.assertEqual(st, 405, '%s %s' % (method, path))
                self.assertError((st, hdrs, body), 405, 'method_not_allowed')
                allow = {a.strip().lower() for a in hdrs['allow'].split(',')}
                self.assertEqual(allow, documented, path)

    def test_paths_the_document_lacks_are_404(self):
        for path in ('/', '/api', '/api/v1', '/api/v1/', '/api/v2/users', '/api/v1/users/',
                     '/api/v1/user', '/api/v1/users/1/snatches', '/api/v1/peers',
                     '/api/v1/torrents/%s/stats' % ('ab' * 20), '/api/v1/users/passkey/',
                     '/api/v1/whitelist/a/b', '/api/v1/classes/1/users', '/metrics/x',
                     '/health/', '/api/v1/settings/interval', '/api/v1/stats/users'):
            for method in ('GET', 'POST'):
                self.assertError(self.m.api(method, path), 404, 'not_found')

    def test_every_error_status_the_document_names_is_described(self):
        for path, item in self.spec['paths'].items():
            for method in self.METHODS:
                if method in item:
                    for s in item[method]['responses']:
                        self.assertIn(int(s), {200, 201, 400, 401, 404, 409, 413, 503}, path)


# ---------------------------------------------------------------- errors


class ErrorTest(ApiCase):
    def test_malformed_json_is_400(self):
        self.assertError(self.m.api('POST', '/api/v1/users', raw=b'{"name": '), 400,
                         'malformed_json', 'body')
        self.assertError(self.m.api('POST', '/api/v1/users', raw=b'[1, 2]'), 400, 'wrong_type',
                         'body')
        self.assertError(self.m.api('POST', '/api/v1/users', raw=b'{"a":1,"a":2}'), 400,
                         'malformed_json')

    def test_unknown_field_is_400_naming_it(self):
        self.assertError(self.m.api('POST', '/api/v1/users', {'nmae': 'x'}), 400,
                         'unknown_field', 'nmae')
        u = self.new_user()
        self.assertError(self.m.api('PATCH', '/api/v1/users/%d' % u['id'], {'uploaded': 5}),
                         400, 'unknown_field', 'uploaded')
        self.assertError(self.m.api('GET', '/api/v1/users?limt=5'), 400, 'unknown_field', 'limt')

    def test_wrong_type_is_400_naming_the_field(self):
        self.assertError(self.m.api('POST', '/api/v1/users', {'enabled': 'yes'}), 400,
                         'wrong_type', 'enabled')
        self.assertError(self.m.api('POST', '/api/v1/users', {'class_id': '1'}), 400,
                         'wrong_type', 'class_id')
        self.assertError(self.m.api('POST', '/api/v1/users', {'upload_multiplier': '2'}), 400,
                         'wrong_type', 'upload_multiplier')
        self.assertError(self.m.api('GET', '/api/v1/users?limit=ten'), 400, 'wrong_type',
                         'limit')

    def test_out_of_range_is_400_naming_the_field(self):
        self.assertError(self.m.api('POST', '/api/v1/users', {'upload_multiplier': 100.5}), 400,
                         'out_of_range', 'upload_multiplier')
        self.assertError(self.m.api('POST', '/api/v1/users', {'download_multiplier': -1}), 400,
                         'out_of_range', 'download_multiplier')
        self.assertError(self.m.api('POST', '/api/v1/users', {'upload_multiplier': 1.2345}),
                         400, 'out_of_range', '3 decimals')
        self.assertError(self.m.api('POST', '/api/v1/users', {'id': 4294967295}), 400,
                         'out_of_range', 'id')
        self.assertError(self.m.api('GET', '/api/v1/users?limit=1001'), 400, 'out_of_range',
                         'limit')
        self.assertError(self.m.api('PUT', '/api/v1/settings', {'interval': 0}), 400,
                         'out_of_range', 'interval')
        self.assertError(self.m.api('POST', '/api/v1/users', {'name': 'x' * 65}), 400,
                         'out_of_range', 'name')

    def test_invalid_values_are_400(self):
        self.assertError(self.m.api('POST', '/api/v1/users', {'passkey': 'has-dash'}), 400,
                         'invalid_value', 'passkey')
        self.assertError(self.m.api('POST', '/api/v1/torrents', {'info_hash': 'zz' * 20}), 400,
                         'invalid_value', 'info_hash')
        self.assertError(self.m.api('POST', '/api/v1/torrents', {}), 400, 'missing_field',
                         'info_hash')
        self.assertError(self.m.api('GET', '/api/v1/users/abc'), 400, 'invalid_value', 'id')
        self.assertError(self.m.api('GET', '/api/v1/torrents/1234'), 400, 'invalid_value',
                         'info_hash')
        self.assertError(self.m.api('POST', '/api/v1/users', {'name': 'a\nb'}), 400,
                         'invalid_value', 'name')

    def test_missing_resources_are_404(self):
        self.assertError(self.m.api('GET', '/api/v1/users/4000000000'), 404, 'not_found', 'user')
        self.assertError(self.m.api('GET', '/api/v1/users/passkey/NoSuchPasskey'), 404)
        self.assertError(self.m.api('PATCH', '/api/v1/users/4000000000', {'enabled': False}),
                         404)
        self.assertError(self.m.api('DELETE', '/api/v1/users/4000000000'), 404)
        self.assertError(self.m.api('GET', '/api/v1/torrents/' + 'ee' * 20), 404, 'not_found',
                         'torrent')
        self.assertError(self.m.api('DELETE', '/api/v1/torrents/' + 'ee' * 20), 404)
        self.assertError(self.m.api('DELETE', '/api/v1/whitelist/-NOPE'), 404)
        self.assertError(self.m.api('GET', '/api/v1/classes/999999'), 404)
        self.assertError(self.m.api('POST', '/api/v1/users', {'class_id': 999999}), 404,
                         'not_found', 'class_id')

    def test_duplicates_are_409_naming_the_field(self):
        u = self.new_user(name='dup-%s' % random_hash().hex()[:6])
        self.assertError(self.m.api('POST', '/api/v1/users', {'passkey': u['passkey']}), 409,
                         'conflict', 'passkey')
        self.assertError(self.m.api('POST', '/api/v1/users', {'name': u['name']}), 409,
                         'conflict', 'name')
        self.assertError(self.m.api('POST', '/api/v1/users', {'id': u['id']}), 409, 'conflict',
                         'id')
        t = self.new_torrent()
        self.assertError(self.m.api('POST', '/api/v1/torrents', {'info_hash': t['info_hash']}),
                         409, 'conflict', 'info_hash')
        self.assertError(self.m.api('POST', '/api/v1/whitelist', {'prefix': '-qB', 'name': 'x'}),
                         409, 'conflict', 'prefix')
        self.assertError(self.m.api('POST', '/api/v1/classes', {'name': 'user'}), 409,
                         'conflict', 'name')

    def test_body_over_the_limit_is_413(self):
        big = {'name': 'x', 'pad': 'y' * 70000}
        self.assertError(self.m.api('POST', '/api/v1/users', big), 413, 'payload_too_large')
        # The connection and the daemon are fine afterwards.
        self.assertEqual(self.m.api('GET', '/api/v1/stats')[0], 200)
        # Just under the limit is read (and then judged on its content).
        st, _, body = self.m.api('POST', '/api/v1/users', raw=b' ' * 65000 + b'{"bogus":1}')
        self.assertEqual(st, 400, body)

    def test_wrong_method_is_405_with_allow(self):
        st, hdrs, body = self.m.api('DELETE', '/api/v1/stats')
        self.assertError((st, hdrs, body), 405, 'method_not_allowed')
        self.assertEqual(hdrs['allow'], 'GET')
        st, hdrs, _ = self.m.api('PUT', '/api/v1/users')
        self.assertEqual((st, hdrs['allow']), (405, 'GET, POST'))


# ---------------------------------------------------------------- users


class HistoryTest(ApiCase):
    """A user's books per torrent, and the hit-and-run rule (window 0 days,
    so a snatch is judged at once)."""

    config = {'tracker': {'interval': 120, 'min_interval': 60},
              'hnr': {'window_days': 0, 'seed_hours': 72, 'ratio': 1000}}

    def test_history_rows_and_hit_and_runs(self):
        u = self.new_user()
        t1, t2 = self.new_torrent(), self.new_torrent()
        p1, p2 = peer_id(), peer_id()
        # t1: leeched 5000 bytes, completed, uploaded nothing: a hit-and-run.
        self.announce(u['passkey'], t1['info_hash'], p1, left=5000)
        self.announce(u['passkey'], t1['info_hash'], p1, left=0, downloaded=5000,
                      event='completed')
        # t2: completed, and uploaded its size back: ratio 1.0 clears it.
        self.announce(u['passkey'], t2['info_hash'], p2, left=100)
        self.announce(u['passkey'], t2['info_hash'], p2, left=0, downloaded=100,
                      event='completed')
        self.announce(u['passkey'], t2['info_hash'], p2, left=0, downloaded=100, uploaded=100)
        path = '/api/v1/users/%d/history' % u['id']
        wait_until(lambda: self.m.api_ok('GET', path)['total'] == 2
                   and all(r['completed_at'] for r in self.m.api_ok('GET', path)['history'])
                   and sum(r['announces'] for r in self.m.api_ok('GET', path)['history']) == 5,
                   timeout=10, what='history flushed')
        rows = {r['info_hash']: r for r in self.m.api_ok('GET', path)['history']}
        a, b = rows[t1['info_hash']], rows[t2['info_hash']]
        self.assertEqual((a['downloaded'], a['raw_downloaded'], a['uploaded'], a['announces']),
                         (5000, 5000, 0, 2))
        self.assertTrue(a['hit_and_run'])
        self.assertTrue(a['active'] and b['active'])
        self.assertEqual((b['downloaded'], b['uploaded'], b['announces']), (100, 100, 3))
        self.assertEqual(self.m.api_ok('GET', '/api/v1/users/%d' % u['id'])['announces'], 5)
        self.assertEqual(self.m.api_ok('GET', '/api/v1/torrents/' + t1['info_hash'])
                         ['transferred'], 5000)
        self.assertFalse(b['hit_and_run'])
        self.assertLessEqual(a['first_announce'], a['last_announce'])
        self.assertGreaterEqual(a['completed_at'], a['first_announce'])
        hnr = self.m.api_ok('GET', '/api/v1/users/%d/hnr' % u['id'])
        self.assertEqual([r['info_hash'] for r in hnr['hit_and_runs']], [t1['info_hash']])
        self.assertEqual(hnr['total'], 1)
        page = self.m.api_ok('GET', path + '?limit=1')
        self.assertEqual((len(page['history']), page['total'], page['limit']), (1, 2, 1))
        self.assertError(self.m.api('GET', '/api/v1/users/4000000000/history'), 404)

    def test_a_freeleech_token_zeroes_downloads_on_its_torrent_until_taken_back(self):
        u = self.new_user()
        t, other = self.new_torrent(), self.new_torrent()
        tok = self.m.api_ok('POST', '/api/v1/users/%d/tokens' % u['id'],
                            {'info_hash': t['info_hash']}, status=201)
        self.assertEqual((tok['download_multiplier'], tok['upload_multiplier'],
                          tok['expires_at']), (0, 1, None))
        listed = self.m.api_ok('GET', '/api/v1/users/%d/tokens' % u['id'])['tokens']
        self.assertEqual([x['info_hash'] for x in listed], [t['info_hash']])
        p1, p2 = peer_id(), peer_id()
        self.announce(u['passkey'], t['info_hash'], p1, left=100)
        self.announce(u['passkey'], t['info_hash'], p1, left=100, downloaded=1000)
        self.announce(u['passkey'], other['info_hash'], p2, left=100)
        self.announce(u['passkey'], other['info_hash'], p2, left=100, downloaded=1000)
        stats = lambda: self.m.api_ok('GET', '/api/v1/users/%d/stats' % u['id'])
        wait_until(lambda: stats()['raw_downloaded'] == 2000, timeout=10, what='books flushed')
        self.assertEqual(stats()['downloaded'], 1000)  # only the other torrent counts
        self.m.api_ok('DELETE', '/api/v1/users/%d/tokens/%s' % (u['id'], t['info_hash']))
        self.announce(u['passkey'], t['info_hash'], p1, left=100, downloaded=1500)
        wait_until(lambda: stats()['raw_downloaded'] == 2500, timeout=10, what='books flushed')
        self.assertEqual(stats()['downloaded'], 1500)
        self.assertError(self.m.api('DELETE', '/api/v1/users/%d/tokens/%s'
                                    % (u['id'], t['info_hash'])), 404)
        self.assertError(self.m.api('POST', '/api/v1/users/%d/tokens' % u['id'],
                                    {'info_hash': 'zz'}), 400)
        self.assertError(self.m.api('POST', '/api/v1/users/%d/tokens' % u['id'],
                                    {'info_hash': random_hash().hex()}), 404)

    def test_an_upload_nobody_could_receive_is_suspicious_and_not_credited(self):
        u = self.new_user()
        t = self.new_torrent()
        pid = peer_id()
        self.announce(u['passkey'], t['info_hash'], pid, left=0)
        self.announce(u['passkey'], t['info_hash'], pid, left=0, uploaded=7777)
        path = '/api/v1/users/%d/suspicious' % u['id']
        wait_until(lambda: self.m.api_ok('GET', path)['total'] == 1, timeout=10,
                   what='the suspicious upload recorded')
        row = self.m.api_ok('GET', path)['suspicious'][0]
        self.assertEqual((row['info_hash'], row['uploaded'], row['reason']),
                         (t['info_hash'], 7777, 'no_leechers'))
        s = self.m.api_ok('GET', '/api/v1/users/%d/stats' % u['id'])
        self.assertEqual((s['uploaded'], s['raw_uploaded']), (0, 7777))
        self.assertError(self.m.api('GET', path + '?bogus=1'), 400)


class UsersTest(ApiCase):
    def test_create_generates_a_passkey_and_the_announce_url(self):
        u = self.new_user(name='alice-%s' % random_hash().hex()[:6])
        self.assertRegex(u['passkey'], r'^[A-Za-z0-9]{32}$')
        self.assertEqual(u['announce_url'], 'http://%s:%d/%s/announce'
                         % (os.uname().nodename, self.m.port, u['passkey']))
        self.assertTrue(u['enabled'])
        self.assertTrue(u['may_download'])
        self.assertEqual(u['class_id'], 1)
        self.assertEqual(u['upload_multiplier'], 1.0)
        self.assertEqual((u['uploaded'], u['downloaded']), (0, 0))
        self.assertLessEqual(abs(u['created_at'] - time.time()), 60)
        # Usable at once: no reload.
        t = self.new_torrent()
        d = self.announce(u['passkey'], t['info_hash'], left=10)
        self.assertEqual(d[b'incomplete'], 1, d)

    def test_create_with_given_id_passkey_and_fields(self):
        pk = 'Given%s' % random_hash().hex()[:20]
        uid = 700000 + int(random_hash().hex()[:4], 16)
        u = self.new_user(id=uid, passkey=pk, enabled=False, may_download=False,
                          upload_multiplier=1.5, download_multiplier=0.25)
        self.assertEqual((u['id'], u['passkey']), (uid, pk))
        self.assertFalse(u['enabled'])
        self.assertEqual(u['upload_multiplier'], 1.5)
        self.assertEqual(u['download_multiplier'], 0.25)
        self.assertEqual(self.m.api_ok('GET', '/api/v1/users/%d' % uid), u)
        self.assertEqual(self.m.api_ok('GET', '/api/v1/users/passkey/' + pk), u)
        self.assertNotIn(pk, self.m.log_text())  # logs name users by id, never by passkey
        # The store has it too (write-through).
        row = self.m.query('SELECT passkey, enabled, can_download, upload_multiplier,'
                           ' download_multiplier FROM users WHERE id = ?', (uid,))
        self.assertEqual(row, [(pk, 0, 0, 1500, 250)])

    def test_list_pages_and_filters(self):
        tag = 'lst%s-' % random_hash().hex()[:6]
        made = [self.new_user(name=tag + str(i), enabled=i % 2 == 0) for i in range(5)]
        page = self.m.api_ok('GET', '/api/v1/users?name=%s&limit=2' % tag)
        self.assertEqual(page['total'], 5)
        self.assertEqual([u['id'] for u in page['users']], [made[0]['id'], made[1]['id']])
        self.assertEqual((page['offset'], page['limit']), (0, 2))
        page = self.m.api_ok('GET', '/api/v1/users?name=%s&offset=4' % tag)
        self.assertEqual([u['id'] for u in page['users']], [made[4]['id']])
        page = self.m.api_ok('GET', '/api/v1/users?name=%s&enabled=false' % tag)
        self.assertEqual([u['id'] for u in page['users']], [made[1]['id'], made[3]['id']])
        everyone = self.m.api_ok('GET', '/api/v1/users?limit=1000')
        self.assertGreaterEqual(everyone['total'], 5)

    def test_disable_refuses_the_very_next_announce(self):
        u = self.new_user()
        t = self.new_torrent()
        self.announce(u['passkey'], t['info_hash'], left=0)
        got = self.m.api_ok('PATCH', '/api/v1/users/%d' % u['id'], {'enabled': False})
        self.assertFalse(got['enabled'])
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash']), 'account disabled')
        self.m.api_ok('PATCH', '/api/v1/users/%d' % u['id'], {'enabled': True})
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash']), '')

    def test_may_download_false_refuses_leeching_only(self):
        u = self.new_user()
        t = self.new_torrent()
        self.m.api_ok('PATCH', '/api/v1/users/%d' % u['id'], {'may_download': False})
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash'], left=5),
                         'downloading not allowed for this account')
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash'], left=0), '')

    def test_rotate_stops_the_old_passkey_at_once(self):
        u = self.new_user()
        t = self.new_torrent()
        pid = peer_id()
        self.announce(u['passkey'], t['info_hash'], pid, left=0)
        r = self.m.api_ok('POST', '/api/v1/users/%d/rotate' % u['id'])
        self.assertNotEqual(r['passkey'], u['passkey'])
        self.assertRegex(r['passkey'], r'^[A-Za-z0-9]{32}$')
        self.assertTrue(r['announce_url'].endswith('/%s/announce' % r['passkey']))
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash']), 'unknown passkey')
        d = self.announce(r['passkey'], t['info_hash'], pid, left=0)
        # Same user and peer_id: still one peer in the swarm.
        self.assertEqual(d[b'complete'], 1, d)
        self.assertError(self.m.api('GET', '/api/v1/users/passkey/' + u['passkey']), 404)
        # A chosen passkey.
        r2 = self.m.api_ok('POST', '/api/v1/users/%d/rotate' % u['id'], {'passkey': 'Chosen123'
                           + random_hash().hex()[:8]})
        self.assertTrue(r2['passkey'].startswith('Chosen123'))

    def test_delete_removes_the_users_peers_from_every_swarm(self):
        u = self.new_user()
        other = self.new_user()
        t1, t2 = self.new_torrent(), self.new_torrent()
        self.announce(u['passkey'], t1['info_hash'], left=0)
        self.announce(u['passkey'], t2['info_hash'], left=7)
        self.announce(other['passkey'], t1['info_hash'], left=3)
        self.assertEqual(self.m.api_ok('GET', '/api/v1/torrents/' + t1['info_hash'])['seeders'],
                         1)
        got = self.m.api_ok('DELETE', '/api/v1/users/%d' % u['id'])
        self.assertEqual(got, {'id': u['id'], 'deleted': True, 'peers_removed': 2})
        a = self.m.api_ok('GET', '/api/v1/torrents/' + t1['info_hash'])
        b = self.m.api_ok('GET', '/api/v1/torrents/' + t2['info_hash'])
        self.assertEqual((a['seeders'], a['leechers'], b['seeders'], b['leechers']), (0, 1, 0, 0))
        self.assertEqual(self.announce_failure(u['passkey'], t1['info_hash']), 'unknown passkey')
        self.assertError(self.m.api('GET', '/api/v1/users/%d' % u['id']), 404)
        self.assertEqual(self.m.query('SELECT count(*) FROM users WHERE id = ?', (u['id'],)),
                         [(0,)])

    def test_multipliers_set_through_the_api_credit_the_next_announce(self):
        """Freeleech torrent, double-upload class, personal factor and a
        site-wide event, each set through the API, are booked by the very
        next announce: credited apart from raw (docs/ACCOUNTING.md)."""
        cls = self.m.api_ok('POST', '/api/v1/classes',
                            {'name': 'vip-%s' % random_hash().hex()[:8],
                             'upload_multiplier': 2, 'download_multiplier': 0.5}, status=201)
        u = self.m.api_ok('POST', '/api/v1/users', {'class_id': cls['id'],
                                                     'upload_multiplier': 1.5}, status=201)
        t = self.new_torrent()
        pid = peer_id()
        self.announce(u['passkey'], t['info_hash'], pid, left=100)
        self.announce(u['passkey'], t['info_hash'], pid, left=100, uploaded=1000, downloaded=1000)
        stats = lambda: self.m.api_ok('GET', '/api/v1/users/%d/stats' % u['id'])
        wait_until(lambda: stats()['raw_uploaded'] == 1000, timeout=10, what='books flushed')
        s = stats()
        # 1000 x 2 (class) x 1.5 (personal); 1000 x 0.5 (class).
        self.assertEqual((s['uploaded'], s['downloaded'], s['raw_uploaded'],
                          s['raw_downloaded']), (3000, 500, 1000, 1000))
        # Freeleech on the torrent: the next announce's download counts 0.
        self.m.api_ok('PATCH', '/api/v1/torrents/' + t['info_hash'], {'freeleech': True})
        self.announce(u['passkey'], t['info_hash'], pid, left=100, uploaded=1000, downloaded=3000)
        wait_until(lambda: stats()['raw_downloaded'] == 3000, timeout=10, what='books flushed')
        s = stats()
        self.assertEqual((s['uploaded'], s['downloaded']), (3000, 500))
        # A double-upload event, and the freeleech lifted.
        self.m.api_ok('PATCH', '/api/v1/torrents/' + t['info_hash'], {'freeleech': False})
        self.m.api_ok('PUT', '/api/v1/settings', {'event': 'double_upload'})
        try:
            self.announce(u['passkey'], t['info_hash'], pid, left=100, uploaded=2000,
                          downloaded=4000)
            wait_until(lambda: stats()['raw_uploaded'] == 2000, timeout=10, what='books flushed')
            s = stats()
            # +1000 x 2 x 1.5 x 2 (event); +1000 x 0.5.
            self.assertEqual((s['uploaded'], s['downloaded']), (9000, 1000))
        finally:
            self.m.api_ok('PUT', '/api/v1/settings', {'event': 'none'})

    def test_stats_and_peers_of_a_user(self):
        u = self.new_user()
        t1, t2 = self.new_torrent(), self.new_torrent()
        pid = peer_id()
        self.announce(u['passkey'], t1['info_hash'], pid, left=100, port=7001)
        self.announce(u['passkey'], t1['info_hash'], pid, left=100, uploaded=1000,
                      downloaded=500, port=7001)
        self.announce(u['passkey'], t2['info_hash'], left=0, port=7002)
        wait_until(lambda: self.m.api_ok('GET', '/api/v1/users/%d/stats' % u['id'])['uploaded']
                   == 1000, timeout=10, what='books flushed')
        s = self.m.api_ok('GET', '/api/v1/users/%d/stats' % u['id'])
        self.assertEqual(s, {'id': u['id'], 'uploaded': 1000, 'downloaded': 500, 'ratio': 2.0,
                             'raw_uploaded': 1000, 'raw_downloaded': 500,
                             'seed_time': s['seed_time'], 'leech_time': s['leech_time'],
                             'bonus_points': s['bonus_points'],
                             'snatches': 0, 'seeding': 1, 'leeching': 1})
        # Announces seconds apart at most: time and points stay tiny and exact.
        self.assertLessEqual(s['leech_time'], 5)
        self.assertEqual(s['seed_time'], 0)
        self.assertEqual(s['bonus_points'], 0)
        peers = self.m.api_ok('GET', '/api/v1/users/%d/peers' % u['id'])['peers']
        self.assertEqual(sorted((p['info_hash'], p['port'], p['seeder']) for p in peers),
                         sorted([(t1['info_hash'], 7001, False), (t2['info_hash'], 7002, True)]))
        for p in peers:
            self.assertEqual((p['user_id'], p['ip']), (u['id'], '127.0.0.1'))
            self.assertLessEqual(p['last_seen_seconds_ago'], 5)
        one = self.m.api_ok('GET', '/api/v1/users/%d/peers?limit=1' % u['id'])['peers']
        self.assertEqual(len(one), 1)
        fresh = self.new_user()
        s = self.m.api_ok('GET', '/api/v1/users/%d/stats' % fresh['id'])
        self.assertIsNone(s['ratio'])

    def test_class_change_applies_its_download_right(self):
        c = self.m.api_ok('POST', '/api/v1/classes', {'name': 'cls-%s' % random_hash().hex()[:6],
                                                       'may_download': False}, status=201)
        u = self.new_user(class_id=c['id'])
        t = self.new_torrent()
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash'], left=5),
                         'downloading not allowed for this account')
        self.m.api_ok('PATCH', '/api/v1/classes/%d' % c['id'], {'may_download': True})
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash'], left=5), '')
        self.m.api_ok('PATCH', '/api/v1/classes/%d' % c['id'], {'may_download': False})
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash'], left=5),
                         'downloading not allowed for this account')
        self.m.api_ok('PATCH', '/api/v1/users/%d' % u['id'], {'class_id': 1})
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash'], left=5), '')
        # The user's own flag is kept apart from the class's.
        got = self.m.api_ok('GET', '/api/v1/users/%d' % u['id'])
        self.assertTrue(got['may_download'])


# ---------------------------------------------------------------- torrents


class TorrentsTest(ApiCase):
    def test_register_by_hex_announces_at_once(self):
        ih = random_hash().hex().upper()
        t = self.new_torrent(info_hash=ih)
        self.assertEqual(t['info_hash'], ih.lower())
        self.assertEqual(t['warnings'], [])
        self.assertNotIn('private', t)
        for k, v in (('enabled', True), ('deleted', False), ('reason', ''), ('freeleech', False),
                     ('upload_multiplier', 1.0), ('download_multiplier', 1.0), ('seeders', 0),
                     ('leechers', 0), ('snatches', 0), ('name', None), ('size', None)):
            self.assertEqual(t[k], v, k)
        u = self.new_user()
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash'], left=1), '')

    def test_upload_base64_computes_the_info_hash_and_reads_name_and_size(self):
        data, ih = metainfo(name=b'Some Linux.iso', length=123456789, private=1)
        t = self.m.api_ok('POST', '/api/v1/torrents',
                          {'torrent_base64': base64.b64encode(data).decode()}, status=201)
        self.assertEqual(t['info_hash'], ih)
        self.assertEqual((t['name'], t['size'], t['private'], t['warnings']),
                         ('Some Linux.iso', 123456789, True, []))
        got = self.m.api_ok('GET', '/api/v1/torrents/' + ih)
        self.assertEqual((got['name'], got['size']), ('Some Linux.iso', 123456789))

    def test_raw_upload_of_a_public_multi_file_torrent_warns(self):
        data, ih = metainfo(name=b'dir', private=None,
                            files=[{'length': 10, 'path': [b'a']}, {'length': 5, 'path': [b'b']}])
        st, _, t = self.m.api('POST', '/api/v1/torrents', raw=data,
                              headers={'Content-Type': 'application/x-bittorrent'})
        self.assertEqual(st, 201, t)
        self.assertEqual((t['info_hash'], t['size'], t['private']), (ih, 15, False))
        self.assertEqual(len(t['warnings']), 1)
        self.assertIn('not private', t['warnings'][0])

    def test_bad_torrent_files_are_400(self):
        st, _, body = self.m.api('POST', '/api/v1/torrents', raw=b'd4:infod4:name1:xee',
                                 headers={'Content-Type': 'application/x-bittorrent'})
        self.assertError((st, _, body), 400, 'invalid_value', 'torrent: info.')
        self.assertError(self.m.api('POST', '/api/v1/torrents', {'torrent_base64': '!!!'}), 400,
                         'invalid_value', 'torrent_base64')
        data, _ = metainfo()
        self.assertError(self.m.api('POST', '/api/v1/torrents',
                                    {'torrent_base64': base64.b64encode(data).decode(),
                                     'info_hash': 'ab' * 20}),
                         400, 'invalid_value', 'exactly one')

    def test_freeleech_and_multipliers_are_stored_and_shown(self):
        t = self.new_torrent()
        got = self.m.api_ok('PATCH', '/api/v1/torrents/' + t['info_hash'],
                            {'freeleech': True, 'upload_multiplier': 2, 'download_multiplier': 0.5,
                             'name': 'Renamed'})
        self.assertEqual((got['freeleech'], got['upload_multiplier'], got['download_multiplier'],
                          got['name']), (True, 2.0, 0.5, 'Renamed'))
        again = self.m.api_ok('GET', '/api/v1/torrents/' + t['info_hash'])
        self.assertTrue(again['freeleech'])
        self.assertEqual(self.m.query('SELECT freeleech, upload_multiplier, download_multiplier'
                                      ' FROM torrents WHERE id = ?', (t['id'],)),
                         [(1, 2000, 500)])

    def test_disable_then_enable(self):
        t = self.new_torrent()
        u = self.new_user()
        self.m.api_ok('PATCH', '/api/v1/torrents/' + t['info_hash'], {'enabled': False})
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash']), 'torrent disabled')
        self.m.api_ok('PATCH', '/api/v1/torrents/' + t['info_hash'], {'enabled': True})
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash']), '')

    def test_delete_with_reason_reaches_the_next_announce(self):
        t = self.new_torrent()
        u = self.new_user()
        self.announce(u['passkey'], t['info_hash'], left=0)
        got = self.m.api_ok('DELETE', '/api/v1/torrents/%s?reason=%s'
                            % (t['info_hash'], urllib.parse.quote('dupe of #12')))
        self.assertEqual((got['deleted'], got['reason'], got['seeders']), (True, 'dupe of #12', 0))
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash']),
                         'unregistered torrent: dupe of #12')
        # The reason may also come in a body; deleting again changes it.
        self.m.api_ok('DELETE', '/api/v1/torrents/' + t['info_hash'], {'reason': 'nuked'})
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash']),
                         'unregistered torrent: nuked')
        listed = self.m.api_ok('GET', '/api/v1/torrents?deleted=true&limit=1000')['torrents']
        self.assertIn(t['info_hash'], [x['info_hash'] for x in listed])
        self.assertNotIn(t['info_hash'], [x['info_hash'] for x in
                                          self.m.api_ok('GET', '/api/v1/torrents?limit=1000')
                                          ['torrents']])
        # Restored.
        self.m.api_ok('PATCH', '/api/v1/torrents/' + t['info_hash'], {'deleted': False})
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash']), '')
        self.assertError(self.m.api('PATCH', '/api/v1/torrents/' + t['info_hash'],
                                    {'deleted': True}), 400, 'invalid_value', 'deleted')

    def test_delete_without_reason(self):
        t = self.new_torrent()
        u = self.new_user()
        self.m.api_ok('DELETE', '/api/v1/torrents/' + t['info_hash'])
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash']),
                         'unregistered torrent')

    def test_get_has_live_counts_and_the_list_is_most_active_first(self):
        busy, quiet, idle = self.new_torrent(), self.new_torrent(), self.new_torrent()
        users = [self.new_user() for _ in range(3)]
        for i, u in enumerate(users):
            self.announce(u['passkey'], busy['info_hash'], left=0 if i == 0 else 9)
        self.announce(users[0]['passkey'], quiet['info_hash'], left=0)
        got = self.m.api_ok('GET', '/api/v1/torrents/' + busy['info_hash'])
        self.assertEqual((got['seeders'], got['leechers']), (1, 2))
        listed = self.m.api_ok('GET', '/api/v1/torrents?limit=1000')['torrents']
        order = [x['info_hash'] for x in listed]
        self.assertLess(order.index(busy['info_hash']), order.index(quiet['info_hash']))
        self.assertLess(order.index(quiet['info_hash']), order.index(idle['info_hash']))
        actives = [x['seeders'] + x['leechers'] for x in listed]
        self.assertEqual(actives, sorted(actives, reverse=True))
        by_id = self.m.api_ok('GET', '/api/v1/torrents?sort=id&limit=1000')['torrents']
        self.assertEqual([x['id'] for x in by_id], sorted(x['id'] for x in by_id))
        page = self.m.api_ok('GET', '/api/v1/torrents?limit=1&offset=1')
        self.assertEqual(len(page['torrents']), 1)
        self.assertEqual(page['torrents'][0]['info_hash'], order[1])
        self.assertEqual(page['total'], len(listed))
        self.assertError(self.m.api('GET', '/api/v1/torrents?sort=size'), 400, 'invalid_value',
                         'sort')
        peers = self.m.api_ok('GET', '/api/v1/torrents/%s/peers' % busy['info_hash'])['peers']
        self.assertEqual(sorted(p['user_id'] for p in peers), sorted(u['id'] for u in users))
        self.assertEqual(sum(p['seeder'] for p in peers), 1)


# ---------------------------------------------------------------- whitelist


class WhitelistTest(ApiCase):
    def test_seeded_list(self):
        wl = self.m.api_ok('GET', '/api/v1/whitelist')['whitelist']
        self.assertIn({'prefix': '-qB', 'name': 'qBittorrent'}, wl)
        self.assertIn({'prefix': '-UT', 'name': '\u00b5Torrent'}, wl)

    def test_add_admits_the_client_at_once_and_delete_refuses_it_again(self):
        u = self.new_user()
        t = self.new_torrent()
        pid = peer_id(b'-ZZ1000-')
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash'], pid),
                         'client not whitelisted')
        got = self.m.api_ok('POST', '/api/v1/whitelist', {'prefix': '-ZZ', 'name': 'Zed'},
                            status=201)
        self.assertEqual(got, {'prefix': '-ZZ', 'name': 'Zed'})
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash'], pid), '')
        gone = self.m.api_ok('DELETE', '/api/v1/whitelist/-ZZ')
        self.assertEqual(gone, {'prefix': '-ZZ', 'name': 'Zed'})
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash'], peer_id(b'-ZZ1-')),
                         'client not whitelisted')
        self.assertError(self.m.api('DELETE', '/api/v1/whitelist/-ZZ'), 404)

    def test_binary_prefixes_use_percent_escapes(self):
        u = self.new_user()
        t = self.new_torrent()
        got = self.m.api_ok('POST', '/api/v1/whitelist', {'prefix': '%01%FFx%25', 'name': 'Bin'},
                            status=201)
        self.assertEqual(got['prefix'], '%01%FFx%25')
        pid = b'\x01\xffx%' + os.urandom(16)
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash'], pid), '')
        self.assertEqual(self.m.query("SELECT hex(prefix) FROM whitelist WHERE name = 'Bin'"),
                         [('01FF7825',)])
        self.assertError(self.m.api('POST', '/api/v1/whitelist', {'prefix': '%0', 'name': 'x'}),
                         400, 'invalid_value', 'prefix')
        self.assertError(self.m.api('POST', '/api/v1/whitelist', {'prefix': 'a' * 21,
                                                                 'name': 'x'}),
                         400, 'invalid_value', 'prefix')
        self.assertError(self.m.api('POST', '/api/v1/whitelist', {'prefix': '-AB'}), 400,
                         'missing_field', 'name')
        # In a path the text form is URL-encoded once more.
        self.m.api_ok('DELETE', '/api/v1/whitelist/' + urllib.parse.quote('%01%FFx%25', safe=''))
        self.assertEqual(self.announce_failure(u['passkey'], t['info_hash'], pid),
                         'client not whitelisted')


# ---------------------------------------------------------------- classes


class ClassesTest(ApiCase):
    def test_default_class_exists(self):
        c = self.m.api_ok('GET', '/api/v1/classes/1')
        self.assertEqual((c['id'], c['name'], c['upload_multiplier'], c['download_multiplier'],
                          c['may_download']), (1, 'user', 1.0, 1.0, True))
        self.assertIn(c['id'], [x['id'] for x in self.m.api_ok('GET', '/api/v1/classes')
                                ['classes']])

    def test_crud(self):
        name = 'vip-%s' % random_hash().hex()[:6]
        c = self.m.api_ok('POST', '/api/v1/classes', {'name': name, 'upload_multiplier': 1.25,
                                                       'download_multiplier': 0},
                          status=201)
        self.assertEqual((c['name'], c['upload_multiplier'], c['download_multiplier'],
                          c['may_download'], c['users']), (name, 1.25, 0.0, True, 0))
        self.assertEqual(self.m.api_ok('GET', '/api/v1/classes/%d' % c['id']), c)
        c2 = self.m.api_ok('PATCH', '/api/v1/classes/%d' % c['id'], {'name': name + 'x'})
        self.assertEqual(c2['name'], name + 'x')
        u = self.new_user(class_id=c['id'])
        self.assertEqual(self.m.api_ok('GET', '/api/v1/classes/%d' % c['id'])['users'], 1)
        self.assertError(self.m.api('DELETE', '/api/v1/classes/%d' % c['id']), 409, 'conflict',
                         'users')
        self.m.api_ok('DELETE', '/api/v1/users/%d' % u['id'])
        gone = self.m.api_ok('DELETE', '/api/v1/classes/%d' % c['id'])
        self.assertEqual(gone['id'], c['id'])
        self.assertError(self.m.api('GET', '/api/v1/classes/%d' % c['id']), 404)

    def test_default_class_cannot_be_deleted(self):
        self.assertError(self.m.api('DELETE', '/api/v1/classes/1'), 409, 'conflict', 'default')
        self.assertError(self.m.api('POST', '/api/v1/classes', {}), 400, 'missing_field', 'name')


class IdRangeTest(ApiCase):
    """A row given the top id (4294967294) leaves no id to pick above it: a
    create without an id is then a 409 the client can act on, not a 500,
    and leaves nothing behind. Its own daemon: the top ids stay here."""

    TOP = 4294967294

    def test_a_user_at_the_top_id_leaves_none_to_pick(self):
        self.new_user(id=self.TOP)
        self.assertError(self.m.api('POST', '/api/v1/users', {'passkey': 'NoIdLeft'}), 409,
                         'conflict', 'give an id')
        self.assertEqual(self.m.query("SELECT count(*) FROM users WHERE passkey = 'NoIdLeft'"),
                         [(0,)])
        self.assertEqual(self.new_user(id=5, passkey='NoIdLeft')['id'], 5)

    def test_a_class_at_the_top_id_leaves_none_to_pick(self):
        self.m.api_ok('POST', '/api/v1/classes', {'id': self.TOP, 'name': 'top'}, status=201)
        self.assertError(self.m.api('POST', '/api/v1/classes', {'name': 'over'}), 409,
                         'conflict', 'give an id')
        self.assertEqual(self.m.query("SELECT count(*) FROM classes WHERE name = 'over'"),
                         [(0,)])


# ---------------------------------------------------------------- settings and stats


class SettingsTest(ApiCase):
    def test_live_interval_reaches_the_next_announce_and_survives_a_restart(self):
        before = self.m.api_ok('GET', '/api/v1/settings')
        self.assertEqual((before['interval'], before['min_interval']), (120, 60))
        got = self.m.api_ok('PUT', '/api/v1/settings', {'interval': 90, 'min_interval': 45,
                                                         'numwant_max': 20})
        self.assertEqual((got['interval'], got['min_interval'], got['numwant_max']),
                         (90, 45, 20))
        u = self.new_user()
        t = self.new_torrent()
        d = self.announce(u['passkey'], t['info_hash'])
        self.assertEqual((d[b'interval'], d[b'min interval']), (90, 45))
        self.assertError(self.m.api('PUT', '/api/v1/settings', {'min_interval': 100}), 400,
                         'out_of_range', 'min_interval')
        self.assertError(self.m.api('PUT', '/api/v1/settings', {'numwant_max': 101}), 400,
                         'out_of_range', 'numwant_max')
        self.assertError(self.m.api('PUT', '/api/v1/settings', {}), 400, 'missing_field')
        self.m.restart()
        after = self.m.api_ok('GET', '/api/v1/settings')
        self.assertEqual((after['interval'], after['min_interval'], after['numwant_max']),
                         (90, 45, 20))
        self.m.api_ok('PUT', '/api/v1/settings', {'interval': 120, 'min_interval': 60,
                                                   'numwant_max': 100})

    def test_peer_selection_override_per_torrent_outlives_a_restart(self):
        t = self.new_torrent()
        path = '/api/v1/torrents/' + t['info_hash']
        self.assertEqual(self.m.api_ok('GET', path)['peer_selection'], 'default')
        got = self.m.api_ok('PATCH', path, {'peer_selection': 'seeders-first'})
        self.assertEqual(got['peer_selection'], 'seeders-first')
        # Six seeders and ten leechers: a leecher asking for three gets seeders.
        u = self.new_user()
        for i in range(16):
            self.announce(u['passkey'], t['info_hash'], left=0 if i < 6 else 100,
                          port=7100 + i)
        d = self.announce(u['passkey'], t['info_hash'], left=100, numwant=3, port=7200)
        ports = [int.from_bytes(d[b'peers'][i + 4:i + 6], 'big') for i in range(0, 18, 6)]
        self.assertTrue(all(7100 <= p < 7106 for p in ports), ports)
        # No location database here: nearest cannot run, and says why.
        self.assertError(self.m.api('PATCH', path, {'peer_selection': 'nearest'}), 400,
                         'invalid_value', 'geoip_city_db')
        self.assertError(self.m.api('PATCH', path, {'peer_selection': 'closest'}), 400,
                         'invalid_value', 'peer_selection')
        self.m.restart()
        self.assertEqual(self.m.api_ok('GET', path)['peer_selection'], 'seeders-first')
        got = self.m.api_ok('PATCH', path, {'peer_selection': 'default'})
        self.assertEqual(got['peer_selection'], 'default')

    def test_site_wide_event_with_and_without_an_end(self):
        ends = int(time.time()) + 3 * 86400
        got = self.m.api_ok('PUT', '/api/v1/settings', {'event': 'freeleech',
                                                         'event_ends_at': ends})
        self.assertEqual((got['event'], got['event_ends_at'], got['event_active']),
                         ('freeleech', ends, True))
        got = self.m.api_ok('PUT', '/api/v1/settings', {'event': 'double_upload',
                                                         'event_ends_at': 1000})
        self.assertEqual((got['event'], got['event_active']), ('double_upload', False))
        got = self.m.api_ok('PUT', '/api/v1/settings', {'event_ends_at': None})
        self.assertEqual((got['event_ends_at'], got['event_active']), (None, True))
        self.assertEqual(self.m.query("SELECT value FROM settings WHERE key = 'event'"),
                         [('double_upload',)])
        got = self.m.api_ok('PUT', '/api/v1/settings', {'event': 'none'})
        self.assertFalse(got['event_active'])
        self.assertError(self.m.api('PUT', '/api/v1/settings', {'event': 'party'}), 400,
                         'invalid_value', 'event')


class StatsTest(ApiCase):
    def test_stats_count_and_rates_follow_announces(self):
        s0 = self.m.api_ok('GET', '/api/v1/stats')
        u = self.new_user()
        t = self.new_torrent()
        for i in range(20):
            self.announce(u['passkey'], t['info_hash'], left=0)
        self.m.scrape(u['passkey'], bytes.fromhex(t['info_hash']))
        s1 = self.m.api_ok('GET', '/api/v1/stats')
        self.assertEqual(s1['announces_total'] - s0['announces_total'], 20)
        self.assertEqual(s1['scrapes_total'] - s0['scrapes_total'], 1)
        self.assertGreaterEqual(s1['users'], 1)
        self.assertGreaterEqual(s1['torrents'], 1)
        self.assertGreaterEqual(s1['seeders'], 1)
        self.assertEqual(s1['peers'], s1['seeders'] + s1['leechers'])
        self.assertGreaterEqual(s1['swarms'], 1)
        wait_until(lambda: self.m.api_ok('GET', '/api/v1/stats')['announces_per_second'] > 0,
                   timeout=15, what='a per-second rate')

    def test_metrics_count_open_tracker_connections(self):
        def metric(name):
            st, _, text = self.m.api('GET', '/metrics')
            self.assertEqual(st, 200)
            for line in text.splitlines():
                if line.startswith(name + ' '):
                    return float(line.rsplit(' ', 1)[1])
            self.fail('no %s in /metrics' % name)
        before = metric('mika_connections')
        held = [socket.create_connection(('127.0.0.1', self.m.port)) for _ in range(3)]
        try:
            wait_until(lambda: metric('mika_connections') >= before + 3, timeout=5,
                       what='three held connections counted')
        finally:
            for c in held:
                c.close()
        wait_until(lambda: metric('mika_connections') <= before, timeout=5,
                   what='closed connections uncounted')
        self.assertEqual(metric('mika_connections_refused_total'), 0)

    def test_metrics_are_prometheus_text_and_never_reset(self):
        u = self.new_user()
        t = self.new_torrent()
        self.announce(u['passkey'], t['info_hash'], left=0)
        self.announce('NoSuchPasskey', t['info_hash'])
        st, hdrs, text = self.m.api('GET', '/metrics')
        self.assertEqual(st, 200)
        self.assertTrue(hdrs['content-type'].startswith('text/plain; version=0.0.4'))
        values = {}
        for line in text.splitlines():
            if line.startswith('#') or not line:
                continue
            name, value = line.rsplit(' ', 1)
            self.assertNotIn(name, values, 'duplicate series ' + name)
            values[name] = float(value)
        for name in ('mika_announces_total', 'mika_scrapes_total', 'mika_swarms',
                     'mika_torrents', 'mika_users', 'mika_uptime_seconds',
                     'mika_announce_duration_seconds_count', 'mika_api_requests_total',
                     'mika_announce_duration_seconds_sum',
                     'mika_announce_failures_total{reason="unknown_passkey"}',
                     'mika_peers{family="ipv4",state="seeder"}',
                     'mika_peers{family="ipv6",state="leecher"}',
                     'mika_announce_duration_seconds_bucket{le="+Inf"}'):
            self.assertIn(name, values)
        self.assertGreaterEqual(values['mika_announce_failures_total{reason="unknown_passkey"}'],
                                1)
        self.assertEqual(values['mika_announce_duration_seconds_count'],
                         values['mika_announces_total'])
        buckets = [(k, v) for k, v in values.items()
                   if k.startswith('mika_announce_duration_seconds_bucket')]
        counts = [v for _, v in buckets]
        self.assertEqual(counts, sorted(counts))
        self.assertIn('# TYPE mika_announce_duration_seconds histogram', text)
        self.assertIn('# TYPE mika_announces_total counter', text)
        # The flusher's store transactions: a segment closes within 200 ms of
        # the announces above, and its transaction is counted.
        def batches():
            _, _, txt = self.m.api('GET', '/metrics')
            m = re.search(r'^mika_store_batch_duration_seconds_count (\S+)$', txt, re.M)
            return float(m.group(1)) if m else -1
        wait_until(lambda: batches() >= 1, 10, 0.1, 'a store batch in /metrics')
        self.assertIn('# TYPE mika_store_batch_duration_seconds histogram', text)
        _, _, again = self.m.api('GET', '/metrics')
        n1 = values['mika_announces_total']
        n2 = float(re.search(r'^mika_announces_total (\S+)$', again, re.M).group(1))
        self.assertGreaterEqual(n2, n1)


# ---------------------------------------------------------------- configuration


class ConfiguredKeysTest(unittest.TestCase):
    KEYS = ['k' * 20, 'Another-key_with.chars~+/=']

    def test_configured_keys_all_work_and_no_key_file_is_written(self):
        with MikaApi({'api': {'keys': ' , '.join(self.KEYS)}}) as m:
            for k in self.KEYS:
                self.assertEqual(m.api('GET', '/api/v1/stats', key=k)[0], 200, k)
            self.assertEqual(m.api('GET', '/api/v1/stats', key='k' * 19)[0], 401)
            self.assertFalse(os.path.exists(m.key_file))

    def test_a_short_configured_key_is_a_config_error(self):
        m = MikaApi({'api': {'keys': 'short'}})
        try:
            with self.assertRaises(AssertionError):
                m.start(timeout=5)
            self.assertIn('api.keys', m.log_text())
        finally:
            m.cleanup()

    def test_keys_and_certificate_are_reused_across_restarts(self):
        with MikaApi() as m:
            key = m.api_key
            with open(m.cert_path) as f:
                cert = f.read()
            m.restart()
            self.assertEqual(m.api_key, key)
            with open(m.cert_path) as f:
                self.assertEqual(f.read(), cert)
            self.assertEqual(m.api('GET', '/api/v1/stats')[0], 200)

    def test_configured_certificate_and_key_files(self):
        with MikaApi() as first:
            cert, key = first.cert_path, os.path.join(first.data_dir, 'api-key.pem')
            with MikaApi({'api': {'tls_cert': cert, 'tls_key': key}}) as m:
                self.assertFalse(os.path.exists(m.cert_path))
                st, _, body = api_request(m.api_port, 'GET', '/api/v1/stats', key=m.api_key,
                                          cafile=cert)
                self.assertEqual(st, 200, body)

    def test_a_busy_api_port_leaves_the_tracker_serving(self):
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(('127.0.0.1', 0))
        s.listen(1)
        try:
            # Plain Mika: it waits for the tracker only.
            with Mika({'api': {'port': s.getsockname()[1]}}) as m:
                m.wait_log('serving the tracker without the admin API')
                self.assertNotIn('admin API on https://', m.log_text())
                uid, pk = m.add_user()
                m.add_torrent(b'\x11' * 20)
                m.reload()
                d = bdecode(m.announce(pk, b'\x11' * 20, peer_id(), 6881))
                self.assertEqual(d[b'complete'], 1, d)
        finally:
            s.close()

    def test_api_can_be_switched_off(self):
        with MikaApi({'api': {'enabled': False}}) as m:
            self.assertNotIn('admin API on', m.log_text())
            self.assertFalse(os.path.exists(m.cert_path))


class MigrationTest(unittest.TestCase):
    def test_a_v1_database_is_migrated_and_served_through_the_api(self):
        import sqlite3
        m = MikaApi()
        try:
            con = sqlite3.connect(m.db_path)
            con.executescript(
                "CREATE TABLE users (id INTEGER PRIMARY KEY, passkey TEXT NOT NULL UNIQUE,"
                " enabled INTEGER NOT NULL DEFAULT 1, can_download INTEGER NOT NULL DEFAULT 1,"
                " uploaded INTEGER NOT NULL DEFAULT 0, downloaded INTEGER NOT NULL DEFAULT 0,"
                " created_at INTEGER NOT NULL DEFAULT (strftime('%s','now')));"
                "CREATE TABLE torrents (id INTEGER PRIMARY KEY,"
                " info_hash BLOB NOT NULL UNIQUE CHECK (length(info_hash) = 20),"
                " enabled INTEGER NOT NULL DEFAULT 1, deleted INTEGER NOT NULL DEFAULT 0,"
                " deleted_reason TEXT NOT NULL DEFAULT '', snatches INTEGER NOT NULL DEFAULT 0,"
                " created_at INTEGER NOT NULL DEFAULT (strftime('%s','now')));"
                "CREATE TABLE whitelist (prefix TEXT PRIMARY KEY, name TEXT NOT NULL);"
                "CREATE TABLE snatches (user_id INTEGER NOT NULL, torrent_id INTEGER NOT NULL,"
                " at INTEGER NOT NULL, PRIMARY KEY (user_id, torrent_id)) WITHOUT ROWID;"
                "INSERT INTO users (id, passkey, uploaded) VALUES (5, 'OldUser5', 77);"
                "INSERT INTO whitelist VALUES ('-qB', 'qBittorrent');"
                "PRAGMA user_version = 1;")
            con.close()
            with m:
                u = m.api_ok('GET', '/api/v1/users/5')
                self.assertEqual((u['passkey'], u['uploaded'], u['class_id'], u['name']),
                                 ('OldUser5', 77, 1, None))
                self.assertEqual(m.query('PRAGMA user_version'), [(6,)])
                ih = random_hash()
                m.api_ok('POST', '/api/v1/torrents', {'info_hash': ih.hex()}, status=201)
                d = bdecode(m.announce('OldUser5', ih, peer_id(), 6881))
                self.assertEqual(d[b'complete'], 1, d)
        finally:
            m.cleanup()


if __name__ == '__main__':
    run_tests(globals())
