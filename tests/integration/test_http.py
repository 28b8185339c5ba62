"""The tracker's HTTP layer over raw sockets: keep-alive, pipelining, closing
rules, error statuses and the idle/header timeouts."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
from mikatest import (MikaTestCase, announce_url, bdecode, build_request, failure,  # noqa: E402
                      peer_id, run_tests, scrape_url, TIMEOUT_SCALE)


def ok_head(body, close=False):
    """The exact head (without the final CRLF CRLF) of a 200 answer."""
    return ('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d%s'
            % (len(body), '\r\nConnection: close' if close else ''))


class HttpTest(MikaTestCase):
    config = {'tracker': {'interval': 600, 'min_interval': 300}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.uid, cls.pk = cls.mika.add_user()
        cls.tid, cls.ih = cls.mika.add_torrent()
        cls.mika.reload()

    def ann_path(self, ih=None, **kw):
        return announce_url(self.pk, ih or self.ih, peer_id(), 6881, left=10, numwant=0, **kw)

    def assertErrorAndClose(self, data, status):
        resps, closed = self.mika.exchange(data)
        self.assertEqual(len(resps), 1, 'sent %r' % data[:100])
        st, hdrs, body = resps[0]
        self.assertEqual(st, status, 'sent %r: %r %r' % (data[:100], hdrs[''], body))
        self.assertTrue(hdrs[''].startswith('HTTP/1.1 %d ' % status), hdrs[''])
        self.assertEqual(hdrs.get('connection', '').lower(), 'close', hdrs[''])
        self.assertIn(b'failure reason', bdecode(body), body)
        self.assertTrue(closed, 'connection left open after %d' % status)

    def test_keep_alive_serves_several_requests(self):
        with self.mika.conn() as c:
            for i in range(4):
                st, hdrs, body = c.request(self.ann_path())
                self.assertEqual(st, 200)
                self.assertEqual(hdrs[''], ok_head(body))
                self.assertNotIn(b'failure', body)
            st, hdrs, body = c.request(scrape_url(self.pk, self.ih))
            self.assertEqual((st, hdrs['']), (200, ok_head(body)))

    def test_pipelined_announces_answered_in_order(self):
        _, ih = self.new_torrent()
        data = b''.join(build_request(announce_url(self.pk, ih, peer_id(), 7000 + i, left=10,
                                                   numwant=0)) for i in range(5))
        data += build_request(scrape_url(self.pk, ih))
        resps, closed = self.mika.exchange(data, count=6)
        self.assertFalse(closed)
        self.assertEqual([r[0] for r in resps], [200] * 6)
        self.assertEqual([bdecode(r[2])[b'incomplete'] for r in resps[:5]], [1, 2, 3, 4, 5])
        self.assertEqual(bdecode(resps[5][2])[b'files'][ih][b'incomplete'], 5)

    def test_pipelined_requests_split_across_sends(self):
        data = build_request(self.ann_path()) + build_request(self.ann_path())
        with self.mika.conn() as c:
            c.send(data[:7])
            time.sleep(0.05)
            c.send(data[7:len(data) - 3])
            time.sleep(0.05)
            c.send(data[len(data) - 3:])
            self.assertEqual(c.read_response()[0], 200)
            self.assertEqual(c.read_response()[0], 200)

    def test_http10_closes(self):
        with self.mika.conn() as c:
            st, hdrs, body = c.request(self.ann_path(), version='1.0')
            self.assertEqual(st, 200)
            self.assertEqual(hdrs[''], ok_head(body, close=True))
            self.assertTrue(c.wait_closed(3))

    def test_http10_keep_alive_stays_open(self):
        with self.mika.conn() as c:
            for _ in range(2):
                st, hdrs, body = c.request(self.ann_path(), {'Connection': 'keep-alive'},
                                           version='1.0')
                self.assertEqual(st, 200)
                self.assertNotEqual(hdrs.get('connection', '').lower(), 'close')

    def test_connection_close_honoured(self):
        with self.mika.conn() as c:
            st, hdrs, body = c.request(self.ann_path(), {'Connection': 'close'})
            self.assertEqual(st, 200)
            self.assertEqual(hdrs[''], ok_head(body, close=True))
            self.assertTrue(c.wait_closed(3))

    def test_connection_close_case_insensitive(self):
        with self.mika.conn() as c:
            st, hdrs, _ = c.request(self.ann_path(), {'connection': 'Close'})
            self.assertEqual((st, hdrs.get('connection')), (200, 'close'))
            self.assertTrue(c.wait_closed(3))

    def test_unknown_path_is_404(self):
        for path in ('/', '/%s/foo' % self.pk, '/%s/announcex?x=1' % self.pk, '/favicon.ico',
                     '/%s/announce/x?info_hash=a' % self.pk):
            self.assertErrorAndClose(build_request(path), 404)

    def test_post_put_delete_are_405(self):
        for method in ('POST', 'PUT', 'DELETE', 'OPTIONS'):
            self.assertErrorAndClose(build_request(self.ann_path(), method=method), 405)

    def test_head_is_405(self):
        # HTTP forbids a body in a HEAD answer, so only the head is checked.
        with self.mika.conn() as c:
            c.send(build_request(self.ann_path(), method='HEAD'))
            raw = b''
            deadline = time.monotonic() + 5 * TIMEOUT_SCALE
            while time.monotonic() < deadline:
                chunk = c.sock.recv(65536)
                if not chunk:
                    break
                raw += chunk
            else:
                self.fail('connection left open after HEAD: %r' % raw)
        self.assertTrue(raw.startswith(b'HTTP/1.1 405 '), raw)
        self.assertIn(b'\r\nConnection: close\r\n', raw.partition(b'\r\n\r\n')[0] + b'\r\n')

    def test_long_request_line_is_414(self):
        path = self.ann_path() + '&key=' + 'k' * 2100
        self.assertErrorAndClose(build_request(path), 414)

    def test_large_head_is_431(self):
        headers = {'X-Pad-%d' % i: 'p' * 100 for i in range(45)}
        self.assertErrorAndClose(build_request(self.ann_path(), headers), 431)

    def test_garbage_is_400(self):
        for data in (b'\x00\x01\x02garbage\r\n\r\n', b'GET\r\n\r\n', b'GET /x\r\n\r\n',
                     b'GET / HTTP/1.1\r\nNo colon here\r\n\r\n',
                     b'GET  /a HTTP/1.1\r\n\r\n'):
            self.assertErrorAndClose(data, 400)

    def test_other_http_version_is_505(self):
        self.assertErrorAndClose(b'GET / HTTP/9.9\r\nHost: x\r\n\r\n', 505)
        self.assertErrorAndClose(build_request(self.ann_path(), version='2.0'), 505)

    def test_request_with_body_is_400(self):
        self.assertErrorAndClose(build_request(self.ann_path(), {'Content-Length': '5'})
                                 + b'hello', 400)
        self.assertErrorAndClose(build_request(self.ann_path(),
                                               {'Transfer-Encoding': 'chunked'}) + b'0\r\n\r\n',
                                 400)

    def test_error_after_good_request_on_same_connection(self):
        with self.mika.conn() as c:
            self.assertEqual(c.request(self.ann_path())[0], 200)
            c.send(build_request('/nope'))
            st, hdrs, _ = c.read_response()
            self.assertEqual((st, hdrs.get('connection')), (404, 'close'))
            self.assertTrue(c.wait_closed(3))


class CoalesceTest(MikaTestCase):
    """server.coalesce_ms: a worker that dozes after light turns still
    answers every request, in order, and each within a few dozes."""
    config = {'server': {'coalesce_ms': 50}}

    def test_dozing_worker_answers_each_request(self):
        _, pk = self.new_user()
        _, ih = self.new_torrent()
        with self.mika.conn() as c:
            waits = []
            for i in range(6):
                t0 = time.monotonic()
                st, _, body = c.request(announce_url(pk, ih, peer_id(), 7100 + i, left=10,
                                                     numwant=0))
                waits.append(time.monotonic() - t0)
                self.assertEqual(st, 200)
                self.assertEqual(bdecode(body)[b'incomplete'], i + 1)
                self.assertLess(waits[-1], 2.0 * TIMEOUT_SCALE)
            # Each request after the first comes while the worker dozes
            # after answering the one before: the key reached the loop.
            self.assertGreaterEqual(sum(waits[1:]), 5 * 0.045, waits)
        data = b''.join(build_request(announce_url(pk, ih, peer_id(), 7200 + i, left=10,
                                                   numwant=0)) for i in range(5))
        resps, closed = self.mika.exchange(data, count=5)
        self.assertFalse(closed)
        self.assertEqual([bdecode(r[2])[b'incomplete'] for r in resps], [7, 8, 9, 10, 11])


class KeepaliveLimitTest(MikaTestCase):
    config = {'http': {'max_keepalive_requests': 3}}

    def test_connection_closed_after_max_requests(self):
        _, pk = self.mika.add_user()
        _, ih = self.new_torrent()
        with self.mika.conn() as c:
            for i in range(3):
                st, hdrs, body = c.request(scrape_url(pk, ih))
                self.assertEqual(st, 200)
                self.assertEqual(hdrs[''], ok_head(body, close=(i == 2)), 'request %d' % i)
            self.assertTrue(c.wait_closed(3))


class HeaderAndParameterLimitTest(MikaTestCase):
    """http.max_headers and http.max_query_params are the operator's: one
    more header line than allowed is 431 and a close, one more announce
    parameter is the bencoded refusal naming the limit."""
    config = {'http': {'max_headers': 8, 'max_query_params': 10}}

    def test_one_header_line_too_many_is_431(self):
        _, pk = self.mika.add_user()
        _, ih = self.new_torrent()
        path = announce_url(pk, ih, peer_id(), 6881, left=10, numwant=0)
        eight = {'X-Pad-%d' % i: 'p' for i in range(7)}  # and Host
        st, _, body = self.mika.get(path, headers=eight)
        self.assertEqual(st, 200, body)
        self.assertNotIn(b'failure', body)
        nine = dict(eight, **{'X-Pad-7': 'p'})
        resps, closed = self.mika.exchange(build_request(path, nine))
        self.assertEqual(resps[0][0], 431)
        self.assertTrue(closed)

    def test_one_parameter_too_many_is_refused_by_name(self):
        _, pk = self.mika.add_user()
        _, ih = self.new_torrent()
        path = announce_url(pk, ih, peer_id(), 6881, left=10, numwant=0)
        have = len(path.partition('?')[2].split('&'))
        self.assertLess(have, 10)
        path += ''.join('&x%d=1' % i for i in range(10 - have))
        st, _, body = self.mika.get(path)
        self.assertNotIn(b'failure', body)
        st, _, body = self.mika.get(path + '&y=1')
        self.assertEqual((st, body), (200, failure('too many parameters')))


class TimeoutTest(MikaTestCase):
    config = {'http': {'idle_timeout': 1, 'header_timeout': 1}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.uid, cls.pk = cls.mika.add_user()
        cls.tid, cls.ih = cls.mika.add_torrent()
        cls.mika.reload()

    def path(self):
        return announce_url(self.pk, self.ih, peer_id(), 6881, left=10, numwant=0)

    def test_idle_keep_alive_connection_closes(self):
        with self.mika.conn(timeout=10) as c:
            self.assertEqual(c.request(self.path())[0], 200)
            t0 = time.monotonic()
            self.assertTrue(c.wait_closed(4), 'idle connection not closed')
            elapsed = time.monotonic() - t0
            self.assertGreaterEqual(elapsed, 0.5, 'closed after only %.2fs' % elapsed)

    def test_connection_that_never_sends_closes(self):
        with self.mika.conn(timeout=10) as c:
            self.assertTrue(c.wait_closed(4), 'silent connection not closed')

    def test_half_request_dropped_while_others_are_served(self):
        with self.mika.conn(timeout=10) as slow:
            slow.send(b'GET /' + self.pk.encode() + b'/announce?info_ha')
            t0 = time.monotonic()
            # Trickling bytes must not extend the header deadline.
            for chunk in (b's', b'h=', b'%00'):
                time.sleep(0.3)
                try:
                    slow.send(chunk)
                except OSError:
                    break
                # Others are answered meanwhile.
                self.assertEqual(self.mika.get(self.path())[0], 200)
            self.assertTrue(slow.wait_closed(3), 'half request not dropped')
            elapsed = time.monotonic() - t0
            self.assertLessEqual(elapsed, 3 * TIMEOUT_SCALE, 'dropped after %.2fs' % elapsed)
        self.assertEqual(self.mika.get(self.path())[0], 200)

    def test_active_keep_alive_is_not_cut(self):
        # Requests 0.4 s apart: each resets the idle timer, none is a header timeout.
        with self.mika.conn(timeout=10) as c:
            for _ in range(5):
                self.assertEqual(c.request(self.path())[0], 200)
                time.sleep(0.4)


if __name__ == '__main__':
    run_tests(globals())
