"""Two mika nodes sharing one store: the admin API's changes reach both.

Owns: the C side of scale-out as the tracker ports and admin APIs show it
([cluster] node_id, cluster/changes.c, store/pg_notify.c,
store/redis_notify.c): a ban made through node 1 is obeyed by node 2's next
announce within a second (median and max printed), a torrent registered
through node 2 is served by node 1, a whitelist change reaches the other
node, a node whose listener connection is killed catches up after it
reconnects, a scrape answered by one node counts the other node's swarm,
and GET /health on the tracker port. Once on PostgreSQL, once on Redis.
Not here: HAProxy in front of the nodes (tests/cluster/).
"""
import os
import socket
import statistics
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'lib'))
from mikatest import MikaApi, bdecode, get, peer_id, random_hash, run_tests  # noqa: E402
from servers import SERVERS  # noqa: E402

CHANGES = 20
COUNTS_SECONDS = 1


def psql(srv, sql):
    r = subprocess.run([os.path.join(srv.bin, 'psql'), '-X', '-q', '-A', '-t', '-h', '127.0.0.1',
                        '-p', str(srv.port), '-U', 'postgres', '-d', 'mika_test', '-c', sql],
                       preexec_fn=srv.demote, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, cwd=srv.dir, env=dict(os.environ, HOME=srv.dir))
    if r.returncode != 0:
        raise AssertionError('psql failed: %s' % r.stdout)
    return r.stdout


def redis_cmd(srv, *args):
    msg = b'*%d\r\n' % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        msg += b'$%d\r\n%s\r\n' % (len(a), a)
    with socket.create_connection(('127.0.0.1', srv.port), timeout=5) as c:
        c.sendall(msg)
        return c.recv(4096)


class ClusterBase:
    BACKEND = None

    def setUp(self):
        self.srv = SERVERS[self.BACKEND]()
        self.srv.start()
        self.addCleanup(self.srv.stop)
        self.nodes = []
        for node_id in (1, 2):
            m = MikaApi({'store': {'backend': self.BACKEND, 'dsn': self.srv.dsn()},
                         'cluster': {'node_id': node_id, 'counts_seconds': COUNTS_SECONDS},
                         'tracker': {'interval': 60, 'min_interval': 1},
                         'log': {'level': 'info'}})
            self.addCleanup(m.cleanup)
            m.start(timeout=30)
            self.nodes.append(m)
        self.n1, self.n2 = self.nodes
        for m in self.nodes:
            # Subscribed before the first load: no reload at start.
            self.assertIn('cluster node %d: sharing changes' % m.config['cluster']['node_id'],
                          m.log_text())
            self.assertNotIn('reloading:', m.log_text())

    def answer(self, m, pk, ih, pid, **kw):
        kw.setdefault('left', 100)
        return bdecode(m.announce(pk, ih, pid, 6881, numwant=10, **kw))

    def wait_answer(self, m, pk, ih, pid, want_failure, timeout=5.0, **kw):
        """Seconds until m's announce fails with want_failure (or, None, succeeds)."""
        t0 = time.monotonic()
        while True:
            d = self.answer(m, pk, ih, pid, **kw)
            reason = d.get(b'failure reason')
            got = reason.decode() if reason is not None else None
            if got == want_failure:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise AssertionError('after %.1f s still %r, want %r' % (timeout, got,
                                                                         want_failure))
            time.sleep(0.005)

    def metric(self, m, name):
        text = m.api('GET', '/metrics')[2]
        text = text if isinstance(text, str) else text.decode()
        for line in text.splitlines():
            if line.startswith(name + ' '):
                return int(float(line.split()[1]))
        raise AssertionError('no metric %s' % name)

    def test_a_ban_through_node_1_is_obeyed_by_node_2_within_a_second(self):
        ih = random_hash()
        self.n1.api_ok('POST', '/api/v1/torrents', {'info_hash': ih.hex()}, status=201)
        u = self.n1.api_ok('POST', '/api/v1/users', {}, status=201)
        pid = peer_id()
        self.wait_answer(self.n2, u['passkey'], ih, pid, None)
        took = []
        for i in range(CHANGES):
            enabled = i % 2 == 1
            self.n1.api_ok('PATCH', '/api/v1/users/%d' % u['id'], {'enabled': enabled})
            took.append(self.wait_answer(self.n2, u['passkey'], ih, pid,
                                         None if enabled else 'account disabled'))
        # The download right too: may_download revoked leaves seeding only.
        self.n1.api_ok('PATCH', '/api/v1/users/%d' % u['id'], {'may_download': False})
        took.append(self.wait_answer(self.n2, u['passkey'], ih, pid,
                                     'downloading not allowed for this account'))
        print('%s: %d changes node 1 -> node 2: median %.1f ms, max %.1f ms'
              % (self.BACKEND, len(took), statistics.median(took) * 1000, max(took) * 1000))
        self.assertLess(max(took), 1.0)
        self.assertGreaterEqual(self.metric(self.n1, 'mika_cluster_changes_published_total'),
                                CHANGES + 1)
        self.assertGreaterEqual(self.metric(self.n2, 'mika_cluster_changes_applied_total'),
                                CHANGES + 1)
        # A rotated passkey stops working on node 2 too; a deleted user goes.
        old = u['passkey']
        new = self.n1.api_ok('POST', '/api/v1/users/%d/rotate' % u['id'], {})['passkey']
        self.wait_answer(self.n2, old, ih, pid, 'unknown passkey', left=0)
        self.wait_answer(self.n2, new, ih, pid, None, left=0)
        self.n1.api_ok('DELETE', '/api/v1/users/%d' % u['id'])
        self.wait_answer(self.n2, new, ih, pid, 'unknown passkey', left=0)
        # Node 2 booked those announces under journal segment ids that
        # carry its node id in the top 16 bits of boot.
        t0 = time.monotonic()
        while 2 not in self.journal_nodes():
            self.assertLess(time.monotonic() - t0, 5, 'no segment of node 2 applied')
            time.sleep(0.1)
        self.assertLessEqual(self.journal_nodes(), {1, 2})

    def test_a_torrent_added_through_node_2_is_served_by_node_1(self):
        u = self.n2.api_ok('POST', '/api/v1/users', {}, status=201)
        ih = random_hash()
        self.n2.api_ok('POST', '/api/v1/torrents', {'info_hash': ih.hex()}, status=201)
        took = self.wait_answer(self.n1, u['passkey'], ih, peer_id(), None)
        self.assertLess(took, 1.0)
        self.n2.api_ok('PATCH', '/api/v1/torrents/%s' % ih.hex(), {'enabled': False})
        took = self.wait_answer(self.n1, u['passkey'], ih, peer_id(), 'torrent disabled')
        print('%s: torrent disabled on node 2, refused by node 1 after %.1f ms'
              % (self.BACKEND, took * 1000))
        self.assertLess(took, 1.0)

    def test_a_whitelist_change_reaches_the_other_node(self):
        ih = random_hash()
        self.n1.api_ok('POST', '/api/v1/torrents', {'info_hash': ih.hex()}, status=201)
        u = self.n1.api_ok('POST', '/api/v1/users', {}, status=201)
        pid = peer_id(b'-ZZ1000-')
        self.wait_answer(self.n2, u['passkey'], ih, pid, 'client not whitelisted')
        self.n1.api_ok('POST', '/api/v1/whitelist', {'prefix': '-ZZ', 'name': 'Zz'}, status=201)
        took = self.wait_answer(self.n2, u['passkey'], ih, pid, None)
        self.n2.api_ok('DELETE', '/api/v1/whitelist/-ZZ')
        took2 = self.wait_answer(self.n1, u['passkey'], ih, pid, 'client not whitelisted')
        print('%s: whitelist add %.1f ms, remove %.1f ms' % (self.BACKEND, took * 1000,
                                                             took2 * 1000))
        self.assertLess(max(took, took2), 1.0)

    def test_settings_classes_and_tokens_reach_the_other_node(self):
        ih = random_hash()
        self.n1.api_ok('POST', '/api/v1/torrents', {'info_hash': ih.hex()}, status=201)
        u = self.n1.api_ok('POST', '/api/v1/users', {}, status=201)
        pid = peer_id()
        self.wait_answer(self.n2, u['passkey'], ih, pid, None)
        self.n1.api_ok('PUT', '/api/v1/settings', {'interval': 1234})
        t0 = time.monotonic()
        while self.answer(self.n2, u['passkey'], ih, pid).get(b'interval') != 1234:
            self.assertLess(time.monotonic() - t0, 1.0, 'interval not changed on node 2')
            time.sleep(0.005)
        # A class that may not download: its users leech nowhere.
        c = self.n1.api_ok('POST', '/api/v1/classes', {'name': 'seedonly'}, status=201)
        self.n1.api_ok('PATCH', '/api/v1/users/%d' % u['id'], {'class_id': c['id']})
        self.wait_answer(self.n2, u['passkey'], ih, pid, None)
        self.n2.api_ok('PATCH', '/api/v1/classes/%d' % c['id'], {'may_download': False})
        took = self.wait_answer(self.n1, u['passkey'], ih, pid,
                                'downloading not allowed for this account')
        self.assertLess(took, 1.0)
        # Freeleech tokens (a store that keeps them: not postgres yet) are
        # applied on the other node too.
        applied = self.metric(self.n2, 'mika_cluster_changes_applied_total')
        if self.BACKEND == 'redis':
            self.n1.api_ok('POST', '/api/v1/users/%d/tokens' % u['id'],
                           {'info_hash': ih.hex()}, status=201)
            self.n1.api_ok('DELETE', '/api/v1/users/%d/tokens/%s' % (u['id'], ih.hex()))
            t0 = time.monotonic()
            while self.metric(self.n2, 'mika_cluster_changes_applied_total') < applied + 2:
                self.assertLess(time.monotonic() - t0, 1.0, 'tokens not applied on node 2')
                time.sleep(0.01)
        self.assertNotIn('reloading:', self.n2.log_text())

    def test_a_node_whose_listener_was_cut_catches_up(self):
        ih = random_hash()
        self.n1.api_ok('POST', '/api/v1/torrents', {'info_hash': ih.hex()}, status=201)
        u = self.n1.api_ok('POST', '/api/v1/users', {}, status=201)
        pid = peer_id()
        self.wait_answer(self.n2, u['passkey'], ih, pid, None)
        before = self.metric(self.n2, 'mika_cluster_listener_reconnects_total')
        offset = self.n2.log_offset()
        self.kill_listeners()
        # Changed while node 2's listener is down or reconnecting.
        self.n1.api_ok('PATCH', '/api/v1/users/%d' % u['id'], {'enabled': False})
        took = self.wait_answer(self.n2, u['passkey'], ih, pid, 'account disabled', timeout=10)
        print('%s: caught up %.2f s after the listeners were killed' % (self.BACKEND, took))
        self.n2.wait_log('listening for changes again', offset, 10)
        self.n2.wait_log('reloading: the cluster listener may have missed changes', offset, 10)
        self.assertGreater(self.metric(self.n2, 'mika_cluster_listener_reconnects_total'),
                           before)
        # And it keeps listening afterwards.
        self.n1.api_ok('PATCH', '/api/v1/users/%d' % u['id'], {'enabled': True})
        self.assertLess(self.wait_answer(self.n2, u['passkey'], ih, pid, None), 1.0)

    def test_both_nodes_catch_up_after_the_store_was_down(self):
        ih = random_hash()
        self.n1.api_ok('POST', '/api/v1/torrents', {'info_hash': ih.hex()}, status=201)
        u = self.n1.api_ok('POST', '/api/v1/users', {}, status=201)
        pid = peer_id()
        self.wait_answer(self.n2, u['passkey'], ih, pid, None)
        offset = self.n2.log_offset()
        self.srv.halt()
        time.sleep(1.5)  # the listeners back off while the store is away
        self.srv.resume()
        # The first write after the outage may meet a connection the API
        # has not noticed is dead yet: the API answers 503, the caller retries.
        t0 = time.monotonic()
        while self.n1.api('PATCH', '/api/v1/users/%d' % u['id'], {'enabled': False})[0] != 200:
            self.assertLess(time.monotonic() - t0, 10, 'node 1 API never came back')
            time.sleep(0.1)
        took = self.wait_answer(self.n2, u['passkey'], ih, pid, 'account disabled', timeout=10)
        print('%s: node 2 obeyed a change %.2f s after the store came back'
              % (self.BACKEND, took))
        self.n2.wait_log('listening for changes again', offset, 10)
        self.assertLess(took, 6.0)  # at most the listener's back-off, plus one reload

    def test_a_scrape_counts_the_swarms_of_both_nodes(self):
        u = self.n1.api_ok('POST', '/api/v1/users', {}, status=201)
        ih1, ih2 = sorted([random_hash(), random_hash()])
        for ih in (ih1, ih2):
            self.n1.api_ok('POST', '/api/v1/torrents', {'info_hash': ih.hex()}, status=201)
        self.wait_answer(self.n2, u['passkey'], ih2, peer_id(), None, left=0)
        # ih1's swarm lives on node 1 (a seeder), ih2's on node 2 (a seeder
        # above, a leecher here).
        self.wait_answer(self.n1, u['passkey'], ih1, peer_id(), None, left=0)
        self.wait_answer(self.n2, u['passkey'], ih2, peer_id(), None, left=10)
        want = {ih1: (1, 0), ih2: (1, 1)}
        t0 = time.monotonic()
        for m in self.nodes:
            while True:
                files = bdecode(m.scrape(u['passkey'], ih1, ih2))[b'files']
                got = {ih: (files[ih][b'complete'], files[ih][b'incomplete'])
                       for ih in (ih1, ih2) if ih in files}
                if got == want:
                    break
                if time.monotonic() - t0 > 4 * COUNTS_SECONDS + 2:
                    raise AssertionError('scrape: %r, want %r' % (got, want))
                time.sleep(0.05)
        print('%s: both nodes scrape both swarms after %.2f s (counts_seconds = %d)'
              % (self.BACKEND, time.monotonic() - t0, COUNTS_SECONDS))
        # A node that dies stops counting once 3 x counts_seconds have passed.
        self.n2.kill()
        t0 = time.monotonic()
        while True:
            files = bdecode(self.n1.scrape(u['passkey'], ih1, ih2))[b'files']
            if (files[ih2][b'complete'], files[ih2][b'incomplete']) == (0, 0):
                break
            if time.monotonic() - t0 > 4 * COUNTS_SECONDS + 2:
                raise AssertionError('a dead node still counted: %r' % files[ih2])
            time.sleep(0.05)
        print('%s: a dead node\'s swarm left the scrape after %.2f s'
              % (self.BACKEND, time.monotonic() - t0))

    def test_a_swarm_in_two_memories_is_counted_from_its_freshest_node(self):
        """After a swarm moved, its former node still holds its peers until
        they expire: a scrape answers the counts of the node that saw the
        latest announce, never the sum; snatches the larger count."""
        u = self.n1.api_ok('POST', '/api/v1/users', {}, status=201)
        ih = random_hash()
        self.n1.api_ok('POST', '/api/v1/torrents', {'info_hash': ih.hex()}, status=201)
        # The swarm on node 2 first: two seeders, one of them a snatch.
        self.wait_answer(self.n2, u['passkey'], ih, peer_id(), None, left=0)
        self.wait_answer(self.n2, u['passkey'], ih, peer_id(), None, left=0,
                         event='completed')
        time.sleep(1.1)  # announced_at has a one-second grain
        # Then it moves to node 1: one leecher announces there.
        self.wait_answer(self.n1, u['passkey'], ih, peer_id(), None, left=10)
        want = (0, 1, 1)  # node 1's peers, node 2's snatch
        t0 = time.monotonic()
        for m in self.nodes:
            while True:
                f = bdecode(m.scrape(u['passkey'], ih))[b'files'].get(ih, {})
                got = (f.get(b'complete'), f.get(b'downloaded'), f.get(b'incomplete'))
                if got == want:
                    break
                if time.monotonic() - t0 > 4 * COUNTS_SECONDS + 2:
                    raise AssertionError('scrape (complete, downloaded, incomplete): %r, want %r'
                                         % (got, want))
                time.sleep(0.05)
        print('%s: both nodes answer the freshest node\'s counts after %.2f s'
              % (self.BACKEND, time.monotonic() - t0))

    def test_health_on_the_tracker_port(self):
        status, headers, body = get(self.n1.port, '/health')
        self.assertEqual((status, body), (200, b'ok'))


class PostgresClusterTest(ClusterBase, unittest.TestCase):
    BACKEND = 'postgres'

    def journal_nodes(self):
        out = psql(self.srv, 'SELECT DISTINCT (boot >> 48) & 65535 FROM journal_applied')
        return {int(x) for x in out.split()}

    def kill_listeners(self):
        out = psql(self.srv, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                             " WHERE query = 'LISTEN mika_changes'")
        self.assertEqual(out.strip(), '2')


class RedisClusterTest(ClusterBase, unittest.TestCase):
    BACKEND = 'redis'

    def journal_nodes(self):
        reply = redis_cmd(self.srv, 'HKEYS', 'mika:journal_applied')
        # *<n>\r\n$<len>\r\n<boot>:<writer>:<seq>\r\n...
        fields = [x for x in reply.split(b'\r\n') if x and x[:1] not in (b'*', b'$')]
        return {int(f.split(b':')[0]) >> 48 for f in fields}

    def kill_listeners(self):
        self.assertEqual(redis_cmd(self.srv, 'CLIENT', 'KILL', 'TYPE', 'pubsub'), b':2\r\n')


if __name__ == '__main__':
    run_tests(globals())
