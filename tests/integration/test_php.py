"""Integration: the PHP client example (examples/php) against a running daemon.

Owns: that example.php, run with Debian's php-cli, creates a user, registers
a torrent and reads the statistics, and that what it did is real: the user
exists (read back with `mika client`), the printed announce URL announces on
the registered torrent; that it works from the data_dir alone and from
MIKA_API_* variables; that MikaClient reports API errors (401, 404) and a
certificate it must not trust as exceptions.
Not here: the API route by route (test_api.py), the CLI (test_cli.py).

Run: MIKA_BIN=build/mika /usr/bin/python3 tests/integration/test_php.py
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'lib'))

from mikatest import (FREE_PORT, MikaTestCase, TIMEOUT_SCALE, bdecode, bencode,  # noqa: E402
                      peer_id, run_mika, run_tests, wait_until)

EXAMPLES = os.path.join(HERE, '..', '..', 'examples', 'php')
PHP = shutil.which('php')


def php_env(extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith('MIKA_')}
    env.update(extra)
    return env


@unittest.skipIf(PHP is None, 'php-cli is not installed (apt-get install php-cli php-curl)')
class PhpExampleTest(MikaTestCase):
    config = {'api': {'port': FREE_PORT}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        m = cls.mika
        wait_until(lambda: run_mika(['client', '--config', 'mika.ini', 'health'],
                                    cwd=m.dir)[0] == 0,
                   10, 0.1, 'the admin API to answer')
        with open(os.path.join(m.dir, 'api.key')) as f:
            cls.key = f.read().strip()
        cls.url = 'https://127.0.0.1:%d' % m.config['api']['port']

    def php(self, args, env):
        p = subprocess.run([PHP] + args, capture_output=True, text=True, env=php_env(env),
                           cwd=self.mika.dir, timeout=30 * TIMEOUT_SCALE)
        self.assertNotIn(self.key, p.stdout + p.stderr, 'the API key was printed')
        return p.returncode, p.stdout, p.stderr

    def example(self, *args, env=None):
        env = env if env is not None else {'MIKA_API_URL': self.url,
                                           'MIKA_DATA_DIR': self.mika.dir}
        rc, out, err = self.php([os.path.join(EXAMPLES, 'example.php')] + list(args), env)
        self.assertEqual(rc, 0, 'example.php failed: %s' % err)
        self.assertEqual(err, '')
        got = {}
        for line in out.splitlines():
            k, _, v = line.partition(': ')
            got.setdefault(k, v)
        return got

    def cli_json(self, *args):
        rc, out, err = run_mika(['client', '--config', 'mika.ini', '--json'] + list(args),
                                cwd=self.mika.dir)
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def check_effect(self, got):
        """The user is stored and its announce URL works on the new torrent."""
        uid = int(got['user_id'])
        u = self.cli_json('user', 'get', str(uid))
        self.assertEqual((u['name'], u['passkey'], u['announce_url']),
                         (got['user_name'], got['passkey'], got['announce_url']))
        t = self.cli_json('torrent', 'get', got['info_hash'])
        self.assertFalse(t['deleted'])
        url = urllib.parse.urlsplit(got['announce_url'])
        self.assertEqual(url.port, self.mika.port)
        q = urllib.parse.urlencode({'info_hash': bytes.fromhex(got['info_hash']),
                                    'peer_id': peer_id(), 'port': 6881, 'uploaded': 0,
                                    'downloaded': 0, 'left': 7, 'compact': 1},
                                   quote_via=urllib.parse.quote)
        status, _, body = self.mika.get(url.path + '?' + q)
        self.assertEqual(status, 200)
        d = bdecode(body)
        self.assertNotIn(b'failure reason', d)
        self.assertEqual(d[b'incomplete'], 1)

    def test_example_from_the_data_dir_makes_a_working_user_and_torrent(self):
        got = self.example()
        self.assertRegex(got['passkey'], r'^[A-Za-z0-9]{32}$')
        self.assertTrue(got['announce_url'].endswith('/%s/announce' % got['passkey']))
        self.assertRegex(got['info_hash'], r'^[0-9a-f]{40}$')
        self.assertEqual(got['torrent_name'], 'example.bin')
        self.assertNotIn('warning', got)  # the generated .torrent is private
        self.assertEqual((got['user_uploaded'], got['user_downloaded']), ('0', '0'))
        self.assertGreaterEqual(int(got['tracker_users']), 1)
        self.assertGreaterEqual(int(got['tracker_torrents']), 1)
        self.assertEqual(got['missing_user'], '404 not_found')
        self.check_effect(got)

    def test_example_with_a_torrent_file_and_api_variables(self):
        tmp = tempfile.mkdtemp(prefix='mika-php-')
        info = {'name': 'given.bin', 'length': 5, 'piece length': 16384,
                'pieces': hashlib.sha1(b'12345').digest(), 'private': 1}
        path = os.path.join(tmp, 'given.torrent')
        with open(path, 'wb') as f:
            f.write(bencode({'announce': 'http://x/announce', 'info': info}))
        got = self.example(path, env={'MIKA_API_URL': self.url, 'MIKA_API_KEY': self.key,
                                      'MIKA_API_CACERT': os.path.join(self.mika.dir,
                                                                      'api-cert.pem')})
        self.assertEqual(got['info_hash'], hashlib.sha1(bencode(info)).hexdigest())
        self.assertEqual(got['torrent_name'], 'given.bin')
        self.check_effect(got)

    def test_client_errors_are_exceptions_with_the_api_code(self):
        script = r'''
            require getenv('EXAMPLES') . '/MikaClient.php';
            $url = getenv('URL');
            $cert = getenv('DIR') . '/api-cert.pem';
            foreach ([
                fn() => (new MikaClient($url, str_repeat('w', 32), $cert))->stats(),
                fn() => MikaClient::fromDataDir(getenv('DIR'), $url)->getTorrent(str_repeat('0', 40)),
                fn() => (new MikaClient($url, 'k', '/etc/ssl/certs/ca-certificates.crt'))->stats(),
            ] as $call) {
                try { $call(); echo "no exception\n"; }
                catch (MikaApiException $e) { echo $e->status, ' ', $e->errorCode, "\n"; }
            }
            echo MikaClient::fromDataDir(getenv('DIR'), $url)->health()['status'], "\n";
        '''
        rc, out, err = self.php(['-r', script], {'EXAMPLES': EXAMPLES, 'URL': self.url,
                                                 'DIR': self.mika.dir})
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), ['401 unauthorized', '404 not_found', '0 transport',
                                            'ok'])


if __name__ == '__main__':
    run_tests(globals())
