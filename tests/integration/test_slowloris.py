"""Slowloris: two thousand connections, each trickling one byte of a request
head every few seconds, must not stop honest clients from being answered
promptly. The trickling connections come from many loopback addresses
(127.1.x.y), as a botnet's would; the daemon drops each one
http.header_timeout seconds after its first byte, and the attacker opens a
new one in its place, so the pressure never lets up.
"""
import os
import resource
import selectors
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
from mikatest import (MikaTestCase, TIMEOUT_SCALE, announce_url, bdecode, peer_id,  # noqa: E402
                      run_tests)

SLOW_CONNECTIONS = int(os.environ.get('MIKA_SLOWLORIS_CONNECTIONS', '2000'))
DURATION = 10.0        # seconds of attack while honest clients announce
TRICKLE_EVERY = 2.0    # each slow connection sends one byte this often
PER_ADDRESS = 32       # slow connections per source address


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Attacker:
    """Keeps n connections open, each sending the next byte of an endless
    request head every TRICKLE_EVERY seconds; a connection the server closes
    is replaced at once. Counts opens and server-side closes."""

    HEAD = b'GET /' + b'a' * 1000

    def __init__(self, port, n):
        self.port = port
        self.n = n
        self.sel = selectors.DefaultSelector()
        self.opened = 0
        self.dropped = 0
        self.failed = 0
        self.stop = threading.Event()

    def source(self, i):
        k = i // PER_ADDRESS
        return '127.1.%d.%d' % (k // 250, 1 + k % 250)

    def open_one(self, i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((self.source(i), 0))
            s.connect_ex(('127.0.0.1', self.port))
        except OSError:
            s.close()
            self.failed += 1
            return
        self.opened += 1
        # Stagger the first byte so the trickle is spread evenly.
        due = time.monotonic() + (i % 100) * TRICKLE_EVERY / 100
        self.sel.register(s, selectors.EVENT_READ, [i, 0, due])

    def run(self):
        for i in range(self.n):
            self.open_one(i)
        while not self.stop.is_set():
            now = time.monotonic()
            for key, _ in self.sel.select(timeout=0.05):
                try:
                    data = key.fileobj.recv(4096)
                except (ConnectionResetError, BlockingIOError):
                    data = b''
                if not data:
                    self.replace(key)
            for key in list(self.sel.get_map().values()):
                i, sent, due = key.data
                if now < due:
                    continue
                try:
                    key.fileobj.send(self.HEAD[sent % len(self.HEAD):][:1])
                    key.data[1] = sent + 1
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    self.replace(key)
                    continue
                key.data[2] = now + TRICKLE_EVERY
        for key in list(self.sel.get_map().values()):
            self.sel.unregister(key.fileobj)
            key.fileobj.close()

    def replace(self, key):
        self.dropped += 1
        self.sel.unregister(key.fileobj)
        key.fileobj.close()
        self.open_one(key.data[0])


class SlowlorisTest(MikaTestCase):
    config = {'http': {'header_timeout': 3, 'idle_timeout': 10, 'max_connections': 10000,
                       'max_connections_per_ip': 64},
              'tracker': {'interval': 600, 'min_interval': 300}}

    def test_trickling_connections_do_not_delay_honest_announces(self):
        have = raise_fd_limit(SLOW_CONNECTIONS + 512)
        n = min(SLOW_CONNECTIONS, have - 256)
        self.assertGreaterEqual(n, 1000, 'RLIMIT_NOFILE %d is too low for the test' % have)
        _, pk = self.new_user()
        _, ih = self.new_torrent()
        attacker = Attacker(self.mika.port, n)
        t = threading.Thread(target=attacker.run, daemon=True)
        t.start()
        # Let every slow connection open and start trickling.
        time.sleep(2.0)
        latencies = []
        pid = peer_id()
        deadline = time.monotonic() + DURATION
        try:
            while time.monotonic() < deadline:
                t0 = time.monotonic()
                status, _, body = self.mika.get(announce_url(pk, ih, pid, 6881, left=10,
                                                             numwant=5))
                latencies.append(time.monotonic() - t0)
                self.assertEqual(status, 200)
                self.assertNotIn(b'failure reason', bdecode(body))
                time.sleep(0.02)
        finally:
            attacker.stop.set()
            t.join(30)
        self.assertTrue(self.mika.running())
        worst = max(latencies)
        median = statistics.median(latencies)
        print('slowloris: %d slow connections (%d opened, %d dropped by the server, %d failed);'
              ' %d honest announces, median %.1f ms, worst %.1f ms'
              % (n, attacker.opened, attacker.dropped, attacker.failed, len(latencies),
                 median * 1000, worst * 1000), file=sys.stderr)
        self.assertGreaterEqual(attacker.opened, n)
        # The header timeout did its work: slow connections were dropped.
        self.assertGreater(attacker.dropped, n // 2)
        self.assertGreater(len(latencies), 50)
        self.assertLess(median, 0.05 * TIMEOUT_SCALE)
        self.assertLess(worst, 1.0 * TIMEOUT_SCALE)


if __name__ == '__main__':
    run_tests(globals())
