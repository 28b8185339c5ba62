"""Hostile input against the running daemon: well over a hundred malformed or
abusive requests (bad percent escapes, NUL bytes, 19- and 21-byte hashes,
duplicate and missing parameters, negative, huge and non-numeric numbers,
port 0 and 65536, oversized lines and headers, heads that never end,
garbage pipelined after a valid request, binary junk, HTTP/0.9, absolute-URI
targets, unknown methods, odd paths and headers). Each must get the answer
docs/PROTOCOL.md documents, or a clean close; the daemon stays up; and its
resident memory does not grow when the whole set is sent again and again.
"""
import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
from mikatest import (MikaTestCase, TIMEOUT_SCALE, bdecode, failure, parse_response,  # noqa: E402
                      pct, peer_id, random_hash, random_passkey, run_tests)

# The error bodies conn.c writes for each status (PROTOCOL.md, "HTTP").
ERROR_TEXT = {400: 'bad request', 404: 'not found', 405: 'method not allowed',
              414: 'request line too long', 431: 'request header too large',
              505: 'HTTP version not supported'}

ROUNDS = int(os.environ.get('MIKA_HOSTILE_ROUNDS', '20'))
RSS_TOLERANCE_KB = 2048


# ------------------------------------------------------------ expectations
#
# An expectation is a tuple: ('ok',) a successful announce or scrape that
# keeps the connection open; ('fail', text) a 200 bencoded refusal with
# exactly that text, connection open; ('err', status) that status with its
# bencoded error body and the connection closed; ('closed',) no answer at
# all and a clean close. A case lists one expectation per answer it waits
# for, in order.

def ok():
    return ('ok',)


def fail(text):
    return ('fail', text)


def err(status):
    return ('err', status)


def closed():
    return ('closed',)


class Case:
    """One hostile exchange: raw bytes, whether to half-close after them, and
    what must come back."""

    def __init__(self, name, data, expect, shut=False, may_reset=False):
        self.name = name
        self.data = data if isinstance(data, bytes) else data.encode('latin-1')
        self.expect = expect if isinstance(expect, list) else [expect]
        self.shut = shut
        self.may_reset = may_reset  # a flood the server stops reading may end in RST


def junk(n, seed=[7]):
    """n bytes of binary junk, the same every run (a fixed-seed stream)."""
    seed[0] += 1
    return random.Random(seed[0]).randbytes(n)


def req(target, version='HTTP/1.1', method='GET', headers=None, end=b'\r\n\r\n'):
    """Bytes of one request head with Host first, then headers (list of lines)."""
    if isinstance(target, str):
        target = target.encode('latin-1')
    lines = [method.encode() + b' ' + target + (b' ' + version.encode() if version else b'')]
    if version:
        lines.append(b'Host: tracker.test')
    for h in headers or []:
        lines.append(h if isinstance(h, bytes) else h.encode('latin-1'))
    return b'\r\n'.join(lines) + end


class Hostile:
    """Builds the case list for one user and one registered torrent."""

    def __init__(self, pk, ih):
        self.pk = pk
        self.ih = ih
        # One peer for every valid announce, so repeats update it rather than
        # grow the swarm (the memory test would measure the swarm otherwise).
        self.pid = peer_id()

    def query(self, drop=(), **over):
        """A valid announce query with parameters replaced (value str: sent as
        is; bytes: percent-encoded), dropped, or appended (over keys not in
        the base list, in order)."""
        base = [('info_hash', self.ih), ('peer_id', self.pid), ('port', 6881),
                ('uploaded', 0), ('downloaded', 0), ('left', 100), ('numwant', 0)]
        out = []
        for k, v in base:
            if k in drop:
                continue
            if k in over:
                v = over.pop(k)
            out.append((k, v))
        out.extend(over.items())
        return '&'.join('%s=%s' % (k, pct(v) if isinstance(v, bytes) else v) for k, v in out)

    def ann(self, query=None, pk=None):
        return '/%s/announce?%s' % (self.pk if pk is None else pk,
                                    self.query() if query is None else query)

    def cases(self):
        c = []
        add = c.append
        ann = self.ann
        q = self.query
        ih = self.ih
        ihp = pct(ih)

        # -- percent escapes
        for name, raw in [('lone_percent', '%'), ('one_hex_digit', '%4'),
                          ('non_hex', '%zz' + ihp[3:]), ('g_digit', '%G1' + ihp[3:]),
                          ('truncated_at_end', ihp[:-2]), ('double_percent', '%%41' + ihp[3:]),
                          ('escaped_nul_half', '%0')]:
            add(Case('info_hash_' + name, req(ann(q(info_hash=raw))),
                     fail('info_hash: bad percent-encoding')))
        add(Case('raw_space_in_target', req(ann(q(info_hash='% 1' + ihp[3:]))), err(400)))
        add(Case('peer_id_bad_escape', req(ann(q(peer_id='%x' + pct(peer_id())[2:]))),
                 fail('peer_id: bad percent-encoding')))
        add(Case('peer_id_truncated_escape', req(ann(q(peer_id=pct(peer_id())[:-1]))),
                 fail('peer_id: bad percent-encoding')))
        add(Case('ipv4_bad_escape', req(ann(q(ipv4='%zz'))),
                 fail('ipv4: bad percent-encoding')))
        add(Case('ipv6_not_an_address', req(ann(q(ipv6='nonsense'))),
                 fail('ipv6: not an address')))
        add(Case('escaped_passkey', req(ann(pk='%41' + self.pk[1:])), fail('unknown passkey')))

        # -- NUL bytes
        add(Case('info_hash_all_nul', req(ann(q(info_hash=bytes(20)))),
                 fail('unregistered torrent')))
        add(Case('peer_id_all_nul', req(ann(q(peer_id=bytes(20)))),
                 fail('client not whitelisted')))
        add(Case('passkey_escaped_nul', req(ann(pk=self.pk[:-3] + '%00')),
                 fail('unknown passkey')))
        add(Case('raw_nul_in_target', req(ann().encode() + b'\x00'), err(400)))
        add(Case('raw_nul_in_method', req(ann(), method='G\x00T'), err(400)))
        add(Case('raw_nul_in_header', req(ann(), headers=[b'X-A: a\x00b']), err(400)))
        add(Case('raw_nul_in_version', req(ann(), version='HTTP/1\x00.1'), err(400)))

        # -- 19- and 21-byte hashes, wrong forms
        for key, size in [('info_hash', 19), ('info_hash', 21), ('peer_id', 19),
                          ('peer_id', 21), ('info_hash', 0), ('info_hash', 40)]:
            add(Case('%s_%d_bytes' % (key, size), req(ann(q(**{key: os.urandom(size)}))),
                     fail('%s: must be 20 bytes' % key)))
        add(Case('info_hash_hex_text', req(ann(q(info_hash=ih.hex()))),
                 fail('info_hash: must be 20 bytes')))
        scrape = '/%s/scrape?' % self.pk
        add(Case('scrape_19_bytes', req(scrape + 'info_hash=' + pct(os.urandom(19))),
                 fail('info_hash: must be 20 bytes')))
        add(Case('scrape_21_bytes', req(scrape + 'info_hash=' + pct(os.urandom(21))),
                 fail('info_hash: must be 20 bytes')))
        add(Case('scrape_second_hash_short', req(scrape + 'info_hash=%s&info_hash=%s'
                                                 % (ihp, pct(os.urandom(19)))),
                 fail('info_hash: must be 20 bytes')))
        add(Case('scrape_without_hash', req(scrape[:-1]), fail('info_hash: missing')))
        add(Case('scrape_empty_query', req(scrape), fail('info_hash: missing')))
        add(Case('scrape_5_hashes_over_max_4', req(scrape + '&'.join(
            'info_hash=' + pct(os.urandom(20)) for _ in range(5))),
            fail('info_hash: more than 4 given')))
        add(Case('scrape_65_hashes_over_line', req(scrape + '&'.join(
            'info_hash=' + pct(os.urandom(20)) for _ in range(65))), err(414)))
        add(Case('scrape_bad_escape', req(scrape + 'info_hash=%2'),
                 fail('info_hash: bad percent-encoding')))

        # -- missing and duplicate parameters
        for key in ('info_hash', 'peer_id', 'port', 'uploaded', 'downloaded', 'left'):
            add(Case('missing_' + key, req(ann(q(drop=(key,)))), fail(key + ': missing')))
        for key, val in [('info_hash', ih), ('peer_id', peer_id()), ('port', '6882'),
                         ('uploaded', '1'), ('downloaded', '1'), ('left', '1'),
                         ('event', 'started'), ('numwant', '5')]:
            text = q() + '&%s=%s' % (key, pct(val) if isinstance(val, bytes) else val)
            if key == 'event':
                text += '&event=started'
            add(Case('duplicate_' + key, req(ann(text)), fail(key + ': given twice')))
        add(Case('empty_query', req(ann('')), fail('info_hash: missing')))
        add(Case('no_query', req('/%s/announce' % self.pk), fail('info_hash: missing')))
        add(Case('only_ampersands', req(ann('&&&&&&')), fail('info_hash: missing')))
        add(Case('key_without_value', req(ann(q(drop=('port',)) + '&port')),
                 fail('port: not a number')))
        add(Case('too_many_parameters', req(ann(q() + ''.join('&x%d=1' % i for i in range(60)))),
                 fail('too many parameters')))
        add(Case('unknown_parameters_ignored', req(ann(q(foo='bar', supportcrypto='1'))), ok()))

        # -- numbers
        for key in ('uploaded', 'downloaded', 'left'):
            add(Case(key + '_negative', req(ann(q(**{key: '-1'}))), fail(key + ': not a number')))
            add(Case(key + '_2_pow_63', req(ann(q(**{key: '9223372036854775808'}))),
                     fail(key + ': out of range')))
            add(Case(key + '_huge', req(ann(q(**{key: '9' * 40}))), fail(key + ': out of range')))
            add(Case(key + '_word', req(ann(q(**{key: 'lots'}))), fail(key + ': not a number')))
        for name, val in [('exponent', '1e5'), ('hex', '0x10'), ('empty', ''), ('plus', '+5'),
                          ('space', '1%202'), ('decimal', '1.5'), ('escaped_digit', '%31')]:
            add(Case('uploaded_' + name, req(ann(q(uploaded=val))),
                     fail('uploaded: not a number')))
        add(Case('uploaded_int64_max', req(ann(q(uploaded='9223372036854775807'))), ok()))
        add(Case('corrupt_negative', req(ann(q(corrupt='-3'))), fail('corrupt: not a number')))
        add(Case('numwant_negative', req(ann(q(numwant='-1'))), fail('numwant: not a number')))
        add(Case('numwant_word', req(ann(q(numwant='all'))), fail('numwant: not a number')))
        add(Case('numwant_huge_is_clamped', req(ann(q(numwant='9' * 30))), ok()))
        for name, val in [('0', '0'), ('65536', '65536'), ('negative', '-1'),
                          ('huge', '99999999999999999999999')]:
            text = 'port: not a number' if val.startswith('-') else \
                'port: must be between 1 and 65535'
            add(Case('port_' + name, req(ann(q(port=val))), fail(text)))
        add(Case('port_word', req(ann(q(port='http'))), fail('port: not a number')))
        add(Case('port_empty', req(ann(q(port=''))), fail('port: not a number')))
        add(Case('port_65535', req(ann(q(port='65535'))), ok()))
        add(Case('event_unknown', req(ann(q(event='begun'))), fail('event: unknown value')))
        add(Case('event_upper_case', req(ann(q(event='STARTED'))), fail('event: unknown value')))
        add(Case('compact_2', req(ann(q(compact='2'))), fail('compact: must be 0 or 1')))

        # -- oversized request lines and heads (limits: line 2048, head 4096, 64 headers)
        # "GET " + target + " HTTP/1.1" is 13 bytes more than the target.
        add(Case('line_2100', req(ann(q(pad='a' * (2100 - 13 - len(ann(q(pad=''))))))),
                 err(414)))
        add(Case('line_4000_no_end', b'GET /' + b'a' * 3995, err(414)))
        add(Case('line_flood_100k', b'GET /' + b'a' * 100000 + b' HTTP/1.1\r\n\r\n', err(414),
                 may_reset=True))
        add(Case('header_4500', req(ann(), headers=['X-Big: ' + 'b' * 4500]), err(431),
                 may_reset=True))
        add(Case('head_exactly_over', (req(ann(), end=b'\r\n') + b'X-Pad: ' +
                                       b'p' * 4096)[:4097], err(431)))
        add(Case('headers_65', req(ann(), headers=['X-H%d: v' % i for i in range(65)]),
                 err(431)))
        add(Case('headers_200', req(ann(), headers=['X-H%d: v' % i for i in range(200)]),
                 err(431), may_reset=True))
        add(Case('head_flood_1m', req(ann(), end=b'\r\n') + b'X: ' + b'z' * 1000000, err(431),
                 may_reset=True))

        # -- heads that never end (the client gives up: half-close)
        add(Case('head_without_blank_line', req(ann(), end=b'\r\n'), closed(), shut=True))
        add(Case('line_without_crlf', req(ann(), end=b''), closed(), shut=True))
        add(Case('just_get', b'GET ', closed(), shut=True))
        add(Case('nothing', b'', closed(), shut=True))
        add(Case('half_header', req(ann(), end=b'\r\nX-Half: va'), closed(), shut=True))

        # -- garbage pipelined after a valid request
        add(Case('valid_then_garbage', req(ann()) + b'garbage garbage\r\n\r\n',
                 [ok(), err(400)]))
        add(Case('valid_then_binary', req(ann()) + junk(40).replace(b'\r', b'.') +
                 b'\r\n\r\n', [ok(), err(400)]))
        add(Case('valid_valid_post', req(ann()) + req(ann()) + req(ann(), method='POST'),
                 [ok(), ok(), err(405)]))
        add(Case('valid_then_partial', req(ann()) + b'GET /x', [ok(), closed()], shut=True))
        add(Case('valid_then_http09', req(ann()) + b'GET /\r\n\r\n', [ok(), err(400)]))
        add(Case('valid_then_body', req(ann(), headers=['Content-Length: 4']) + b'abcd',
                 err(400)))

        # -- binary junk
        add(Case('random_bytes_crlf', junk(64).replace(b'\n', b'.') + b'\r\n\r\n',
                 err(400)))
        add(Case('all_ff', b'\xff' * 100 + b'\r\n\r\n', err(400)))
        add(Case('all_nul', b'\x00' * 100 + b'\r\n\r\n', err(400)))
        add(Case('tls_client_hello', bytes.fromhex('16030100a5010000a10303') + junk(60) +
                 b'\r\n\r\n', err(400)))
        add(Case('ssh_banner', b'SSH-2.0-OpenSSH_9.2\r\n\r\n', err(400)))
        # Both 405 (PRI) and 505 (HTTP/2.0) apply; the version is checked first.
        add(Case('http2_preface', b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', err(505)))
        add(Case('tls_record_without_line_end', bytes.fromhex('160301020001'), err(400),
                 shut=True))
        add(Case('token_then_eof', b'GETANNOUNCE', closed(), shut=True))

        # -- HTTP versions
        add(Case('http09', b'GET ' + ann().encode() + b'\r\n\r\n', err(400)))
        add(Case('http09_bare_then_eof', b'GET /\r\n', closed(), shut=True))
        add(Case('http12', req(ann(), version='HTTP/1.2'), err(505)))
        add(Case('http20', req(ann(), version='HTTP/2.0'), err(505)))
        add(Case('http30', req(ann(), version='HTTP/3.0'), err(505)))
        add(Case('version_lower_case', req(ann(), version='http/1.1'), err(400)))
        add(Case('version_garbage', req(ann(), version='HTTP/x.y'), err(400)))
        add(Case('version_trailing_space', req(ann(), version='HTTP/1.1 '), err(400)))
        add(Case('http10_ok', req(ann(), version='HTTP/1.0'), [ok(), closed()]))

        # -- absolute-URI targets (reduced to origin-form) and odd targets
        add(Case('absolute_uri_announce', req('http://tracker.test' + ann()), ok()))
        add(Case('absolute_uri_scrape', req('http://tracker.test:34000/%s/scrape?info_hash=%s'
                                            % (self.pk, ihp)), ok()))
        add(Case('absolute_uri_unknown_passkey', req('http://x' + ann(pk=random_passkey())),
                 fail('unknown passkey')))
        add(Case('asterisk_target', req('*'), err(400)))
        add(Case('relative_target', req(ann()[1:]), err(400)))
        add(Case('authority_target', req('tracker.test:34000', method='GET'), err(400)))

        # -- methods other than GET
        for m in ('POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'PATCH', 'CONNECT',
                  'get', 'GETT', 'BREW'):
            add(Case('method_' + m, req(ann(), method=m), err(405)))

        # -- paths
        for name, path in [('root', '/'), ('passkey_only', '/' + self.pk),
                           ('trailing_slash', '/%s/announce/' % self.pk),
                           ('upper_action', '/%s/ANNOUNCE' % self.pk),
                           ('traversal', '/../../etc/passwd'),
                           ('favicon', '/favicon.ico'),
                           ('deep', '/%s/announce/x/y' % self.pk)]:
            add(Case('path_' + name, req(path), err(404)))
        add(Case('path_empty_passkey', req(ann(pk='')), fail('unknown passkey')))
        add(Case('path_passkey_65', req(ann(pk=random_passkey(65))), fail('unknown passkey')))
        add(Case('path_passkey_dash', req(ann(pk=self.pk[:-1] + '-')), fail('unknown passkey')))
        add(Case('path_unknown_passkey', req(ann(pk=random_passkey())), fail('unknown passkey')))

        # -- headers
        add(Case('content_length_body', req(ann(), headers=['Content-Length: 5']) + b'hello',
                 err(400)))
        add(Case('transfer_encoding', req(ann(), headers=['Transfer-Encoding: chunked']),
                 err(400)))
        add(Case('content_length_zero', req(ann(), headers=['Content-Length: 0']), ok()))
        add(Case('header_without_colon', req(ann(), headers=['NoColonHere']), err(400)))
        add(Case('obs_fold', req(ann(), headers=['X-A: a', ' folded']), err(400)))
        add(Case('bare_cr', req(ann(), headers=[b'X-A: a\rb']), err(400)))
        add(Case('connection_close', req(ann(), headers=['Connection: close']),
                 [ok(), closed()]))
        add(Case('binary_header_value', req(ann(), headers=[b'X-Bin: \x80\xff\xfe']), ok()))
        return c


class HostileTest(MikaTestCase):
    # The suite sends unknown passkeys on purpose, hundreds of times, from one
    # address: the guessing guard (test_flood.py) would rightly stop it.
    config = {'tracker': {'interval': 600, 'min_interval': 300, 'scrape_max_hashes': 4,
                          'passkey_guess_limit': 0},
              'http': {'idle_timeout': 5, 'header_timeout': 3}}
    # The memory check compares RSS across rounds: ASan's quarantine of freed
    # blocks would otherwise grow RSS by itself until it reaches 256 MB.
    env = {'ASAN_OPTIONS': (os.environ.get('ASAN_OPTIONS', '') +
                            ':quarantine_size_mb=1:thread_local_quarantine_size_kb=64')}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.uid, cls.pk = cls.mika.add_user()
        cls.tid, cls.ih = cls.mika.add_torrent()
        cls.mika.reload()
        cls.hostile = Hostile(cls.pk, cls.ih)

    def rss_kb(self):
        with open('/proc/%d/status' % self.mika.proc.pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
        raise AssertionError('no VmRSS for the daemon')

    def honest(self, conn=None):
        """An honest announce on conn (or a fresh connection) must succeed."""
        path = self.hostile.ann()
        sock = conn or socket.create_connection(('127.0.0.1', self.mika.port),
                                                timeout=5 * TIMEOUT_SCALE)
        try:
            sock.sendall(req(path))
            buf = b''
            while True:
                parsed = parse_response(buf)
                if parsed:
                    (status, _, body), _ = parsed
                    return status, body
                chunk = sock.recv(65536)
                if not chunk:
                    raise AssertionError('closed before answering an honest announce')
                buf += chunk
        finally:
            if conn is None:
                sock.close()

    def run_case(self, case):
        """Sends the case and checks every expected answer; returns nothing,
        raises AssertionError naming the case."""
        s = socket.create_connection(('127.0.0.1', self.mika.port), timeout=5 * TIMEOUT_SCALE)
        try:
            self._exchange(s, case)
        finally:
            s.close()

    def _exchange(self, s, case):
        reset = False
        try:
            s.sendall(case.data)
            if case.shut:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            reset = True
        buf = b''
        eof = False
        for i, exp in enumerate(case.expect):
            where = '%s: answer %d (%r)' % (case.name, i + 1, exp)
            parsed = None
            while not reset:
                parsed = parse_response(buf)
                if parsed or eof:
                    break
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    reset = True
                    break
                except socket.timeout:
                    raise AssertionError('%s: no answer and no close' % where)
                eof = not chunk
                buf += chunk
            if reset:
                self.assertTrue(case.may_reset and exp[0] != 'ok',
                                '%s: connection reset' % where)
                return
            if exp[0] == 'closed':
                self.assertIsNone(parsed, '%s: expected a close, got %r' % (where, buf[:200]))
                self.assertEqual(buf, b'', '%s: bytes before the close' % where)
                return
            self.assertIsNotNone(parsed, '%s: closed without an answer' % where)
            (status, hdrs, body), buf = parsed
            if exp[0] in ('ok', 'fail'):
                self.assertEqual(status, 200, '%s: %r %r' % (where, hdrs[''], body[:200]))
                if exp[0] == 'fail':
                    self.assertEqual(body, failure(exp[1]), where)
                else:
                    d = bdecode(body)
                    self.assertNotIn(b'failure reason', d, '%s: %r' % (where, d))
                    self.assertTrue(b'files' in d or b'interval' in d, where)
            else:
                self.assertEqual(status, exp[1], '%s: %r %r' % (where, hdrs[''], body[:200]))
                self.assertEqual(hdrs.get('connection', '').lower(), 'close', where)
                self.assertEqual(body, failure(ERROR_TEXT[exp[1]]), where)
                # Nothing more is answered after an error, and the server closes.
                while not eof:
                    try:
                        chunk = s.recv(65536)
                    except ConnectionResetError:
                        break
                    eof = not chunk
                    self.assertEqual(chunk, b'', '%s: bytes after the error' % where)
                return
        last = case.expect[-1][0]
        if last in ('ok', 'fail') and not case.shut:
            # The connection must still serve an honest client.
            status, body = self.honest(s)
            self.assertEqual(status, 200, '%s: keep-alive after the answer' % case.name)
            self.assertNotIn(b'failure reason', bdecode(body), case.name)

    def run_all(self):
        for case in self.hostile.cases():
            with self.subTest(case=case.name):
                self.run_case(case)
                self.assertTrue(self.mika.running(), 'daemon died after %s' % case.name)

    def test_at_least_a_hundred_cases(self):
        names = [c.name for c in self.hostile.cases()]
        self.assertGreaterEqual(len(names), 100)
        self.assertEqual(len(names), len(set(names)), 'case names must be unique')

    def test_each_case_gets_its_documented_answer(self):
        self.run_all()
        status, body = self.honest()
        self.assertEqual(status, 200)

    def test_repeats_do_not_grow_memory(self):
        rss = []
        for _ in range(ROUNDS):
            for case in self.hostile.cases():
                try:
                    self.run_case(case)
                except AssertionError:
                    pass  # answers are the other test's business; this one watches memory
            # Closed connections are freed by the worker right away, but give
            # a just-closed socket its turn of the loop.
            time.sleep(0.05)
            rss.append(self.rss_kb())
            self.assertTrue(self.mika.running())
        self.assertEqual(self.honest()[0], 200)
        print("cases per round: %d, VmRSS kB by round: %r" % (len(self.hostile.cases()), rss), file=sys.stderr)
        if 'ASAN_OPTIONS' in os.environ:
            # Under AddressSanitizer freed blocks wait in a quarantine (256 MB
            # by default) instead of being reused, so RSS grows with every
            # allocation made and freed, leak or not. Leaks are
            # LeakSanitizer's business there (at the daemon's exit); the
            # plain build's run of this test watches RSS.
            print("AddressSanitizer: RSS growth not judged here", file=sys.stderr)
        elif ROUNDS >= 3:
            growth = rss[-1] - rss[1]
            self.assertLessEqual(growth, RSS_TOLERANCE_KB,
                                 'VmRSS grew by %d kB from round 2 to round %d: %r'
                                 % (growth, ROUNDS, rss))


if __name__ == '__main__':
    run_tests(globals())
