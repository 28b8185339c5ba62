"""Connection floods: a burst far beyond http.max_connections is refused
cleanly (each connection past the cap is closed at once, none hangs, the
daemon stays up and logs the refusal), and the daemon recovers at once: the
moment the flood lets go, an honest announce is answered. The per-address
cap (http.max_connections_per_ip) refuses one address's excess while other
addresses are still served, and an address guessing passkeys
(tracker.passkey_guess_limit) is refused for a while, whatever it sends.
"""
import os
import resource
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
from mikatest import (MikaTestCase, TIMEOUT_SCALE, announce_url, bdecode, peer_id,  # noqa: E402
                      random_passkey, run_tests, wait_until)

CAP = 200           # http.max_connections (two workers: 100 each)
PER_IP = 16         # http.max_connections_per_ip
BURST = 3000        # connections in the flood, 15 times the cap


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def open_burst(port, n, source):
    """Starts n non-blocking connects, source(i) giving each one's address;
    returns the sockets."""
    socks = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((source(i), 0))
        s.connect_ex(('127.0.0.1', port))
        socks.append(s)
    return socks


def settle(socks, wait):
    """Waits up to `wait` seconds and sorts the sockets into (open, refused):
    refused ones saw EOF or a reset from the server."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    refused = set()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and len(refused) < len(socks):
        for key, _ in sel.select(timeout=0.1):
            try:
                data = key.fileobj.recv(1)
            except (ConnectionResetError, ConnectionRefusedError):
                data = b''
            except BlockingIOError:
                continue
            if data:
                raise AssertionError('the server sent %r to a flood connection' % data)
            refused.add(key.fileobj)
            sel.unregister(key.fileobj)
    sel.close()
    return [s for s in socks if s not in refused], list(refused)


class FloodTest(MikaTestCase):
    config = {'http': {'max_connections': CAP, 'max_connections_per_ip': PER_IP,
                       'idle_timeout': 30, 'header_timeout': 30},
              'tracker': {'interval': 600, 'min_interval': 300}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        raise_fd_limit(BURST + 1024)
        cls.uid, cls.pk = cls.mika.add_user()
        cls.tid, cls.ih = cls.mika.add_torrent()
        cls.mika.reload()

    def honest(self):
        status, _, body = self.mika.get(announce_url(self.pk, self.ih, peer_id(), 6881,
                                                     left=10, numwant=0), timeout=2)
        self.assertEqual(status, 200)
        self.assertNotIn(b'failure reason', bdecode(body))

    def test_burst_beyond_the_cap_is_refused_and_the_daemon_recovers_at_once(self):
        off = self.mika.log_offset()
        # From many addresses, so the per-address cap is not what stops them.
        socks = open_burst(self.mika.port, BURST,
                           lambda i: '127.2.%d.%d' % (i // 250, 1 + i % 250))
        try:
            held, refused = settle(socks, 3.0 * TIMEOUT_SCALE)
            print('flood: %d connections, %d held open, %d refused'
                  % (BURST, len(held), len(refused)), file=sys.stderr)
            self.assertLessEqual(len(held), CAP)
            self.assertGreaterEqual(len(refused), BURST - CAP - 16)
            self.assertTrue(self.mika.running())
            self.mika.wait_log('connection cap', off, timeout=5)
            # While the flood holds every slot, a newcomer is refused too.
            with self.assertRaises((AssertionError, ConnectionResetError, socket.timeout)):
                self.honest()
        finally:
            for s in socks:
                s.close()
        # The flood let go: the next honest client is answered at once
        # (closing takes the worker one loop turn to notice).
        t0 = time.monotonic()
        wait_until(self._honest_ok, timeout=2, interval=0.01, what='an honest announce')
        took = time.monotonic() - t0
        print('flood: honest announce answered %.1f ms after the flood closed' % (took * 1000),
              file=sys.stderr)
        self.assertLess(took, 1.0 * TIMEOUT_SCALE)

    def _honest_ok(self):
        try:
            self.honest()
            return True
        except (AssertionError, OSError):
            return False

    def test_one_address_is_capped_while_others_are_served(self):
        socks = open_burst(self.mika.port, PER_IP * 4, lambda i: '127.3.0.1')
        try:
            held, refused = settle(socks, 2.0 * TIMEOUT_SCALE)
            self.assertEqual(len(held), PER_IP)
            self.assertEqual(len(refused), PER_IP * 3)
            self.honest()  # from 127.0.0.1: another address
        finally:
            for s in socks:
                s.close()
        wait_until(self._honest_from('127.3.0.1'), timeout=2, interval=0.01,
                   what='the capped address served again after closing')

    def _honest_from(self, addr):
        def check():
            try:
                with socket.create_connection(('127.0.0.1', self.mika.port), timeout=2,
                                              source_address=(addr, 0)) as s:
                    path = announce_url(self.pk, self.ih, peer_id(), 6881, left=10, numwant=0)
                    s.sendall(('GET %s HTTP/1.1\r\nHost: t\r\n\r\n' % path).encode('latin-1'))
                    return s.recv(4096).startswith(b'HTTP/1.1 200 ')
            except OSError:
                return False
        return check


class PasskeyGuessTest(MikaTestCase):
    """tracker.passkey_guess_limit: an address that keeps sending unknown
    passkeys is refused for a while, whatever passkey it sends next, while
    other addresses are served."""
    LIMIT = 10
    with_api = True
    config = {'server': {'workers': 1},
              'tracker': {'interval': 600, 'min_interval': 300, 'passkey_guess_limit': LIMIT}}
    REFUSAL = b'too many unknown passkeys from this address, try again later'

    def get_from(self, addr, path):
        with socket.create_connection(('127.0.0.1', self.mika.port), timeout=5 * TIMEOUT_SCALE,
                                      source_address=(addr, 0)) as s:
            s.sendall(('GET %s HTTP/1.1\r\nHost: t\r\n\r\n' % path).encode('latin-1'))
            buf = b''
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return buf
                buf += chunk
                head, sep, body = buf.partition(b'\r\n\r\n')
                if sep and b'Content-Length: %d' % len(body) in head:
                    return buf

    def test_guessing_address_is_refused_and_others_are_not(self):
        _, pk = self.new_user()
        _, ih = self.new_torrent()
        guesser = '127.4.0.1'
        answers = []
        for i in range(self.LIMIT + 3):
            path = announce_url(random_passkey(), ih, peer_id(), 6881, left=1)
            answers.append(self.get_from(guesser, path))
        unknown = [a for a in answers if a.endswith(b'15:unknown passkeye')]
        refused = [a for a in answers if a.endswith(self.REFUSAL + b'e')]
        self.assertEqual(len(unknown), self.LIMIT, answers)
        self.assertEqual(len(refused), 3, answers)
        self.assertIn(b'Connection: close', refused[0])
        # The right passkey from the guesser is refused too: a hit must not show.
        good = announce_url(pk, ih, peer_id(), 6881, left=1)
        self.assertTrue(self.get_from(guesser, good).endswith(self.REFUSAL + b'e'))
        # Another address is served.
        self.assertIn(b'8:intervali600e', self.get_from('127.4.0.2', good))
        self.mika.wait_log('unknown passkeys a minute', timeout=5)
        # Counted for the operator: one address blocked, four requests refused.
        status, _, text = self.mika.api('GET', '/metrics')
        self.assertEqual(status, 200)
        self.assertIn('\nmika_passkey_guess_blocks_total 1\n', text)
        self.assertIn('\nmika_passkey_guess_refused_total 4\n', text)


if __name__ == '__main__':
    run_tests(globals())
