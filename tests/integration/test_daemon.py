"""The daemon as a program: command line, config errors, environment
overrides, signals (SIGHUP reload, SIGTERM/SIGINT clean exit) and the poll()
event-loop backend."""
import os
import signal
import socket
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
from mikatest import (LOCAL4, Mika, MikaApi, MikaTestCase, announce_answer,  # noqa: E402
                      announce_url, bdecode, compact4, failure, free_port, peer_id, run_mika,
                      run_tests)
import unittest  # noqa: E402


class CommandLineTest(unittest.TestCase):
    def test_version(self):
        rc, out, err = run_mika(['version'])
        self.assertEqual(rc, 0, err)
        self.assertRegex(out + err, r'mika \d+\.\d+\.\d+')

    def test_help(self):
        rc, out, err = run_mika(['--help'])
        self.assertEqual(rc, 0, out + err)
        self.assertIn('serve', out + err)

    def test_serve_help(self):
        rc, out, err = run_mika(['serve', '--help'])
        self.assertEqual(rc, 0, out + err)
        self.assertIn('serve', out + err)
        self.assertIn('--config', out + err)

    def test_unknown_command_fails(self):
        rc, out, err = run_mika(['frobnicate'])
        self.assertNotIn(rc, (0, None), out + err)


class BadConfigTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='mika-conf-')
        self.path = os.path.join(self.dir, 'mika.ini')

    def tearDown(self):
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)

    def serve(self, text, env=None):
        with open(self.path, 'w') as f:
            f.write(text.replace('@PORT@', str(free_port())).replace('@DB@', os.path.join(
                self.dir, 'mika.db')))
        rc, out, err = run_mika(['serve', '--config', self.path], env=env, timeout=10)
        self.assertIsNotNone(rc, 'daemon started with a bad config:\n' + out + err)
        self.assertNotEqual(rc, 0, out + err)
        return out + err

    BASE = ('[server]\nport = @PORT@\nbind4 = 127.0.0.1\nbind6 = ::1\n'
            '[store]\npath = @DB@\n')

    def test_unknown_key_named_with_line(self):
        msg = self.serve(self.BASE + '[tracker]\ninterval = 60\nintervall = 5\n')
        self.assertIn('intervall', msg)
        self.assertIn(':9:', msg)

    def test_unknown_section(self):
        msg = self.serve(self.BASE + '[trackr]\ninterval = 60\n')
        self.assertIn('trackr', msg)
        self.assertRegex(msg, ':[78]:')

    def test_bad_number(self):
        msg = self.serve(self.BASE + '[tracker]\ninterval = soon\n')
        self.assertIn('interval', msg)
        self.assertIn(':8:', msg)

    def test_bad_bool(self):
        msg = self.serve(self.BASE + '[server]\nipv6 = maybe\n')
        self.assertIn('ipv6', msg)
        self.assertIn(':8:', msg)

    def test_missing_config_file(self):
        rc, out, err = run_mika(['serve', '--config', os.path.join(self.dir, 'nope.ini')])
        self.assertNotIn(rc, (0, None), out + err)
        self.assertIn('nope.ini', out + err)

    def test_unknown_env_variable_named(self):
        msg = self.serve(self.BASE, env={'MIKA_TRACKER_FOO': '1'})
        self.assertIn('MIKA_TRACKER_FOO', msg)

    def test_bad_env_value_named(self):
        msg = self.serve(self.BASE, env={'MIKA_TRACKER_INTERVAL': 'x'})
        self.assertIn('MIKA_TRACKER_INTERVAL', msg)


class EnvOverrideTest(MikaTestCase):
    config = {'tracker': {'interval': 600, 'min_interval': 30}}
    env = {'MIKA_TRACKER_INTERVAL': '77'}

    def test_env_beats_file(self):
        _, pk = self.mika.add_user()
        _, ih = self.new_torrent()
        self.assertEqual(self.mika.announce(pk, ih, peer_id(), 6881, left=1),
                         announce_answer(0, 0, 1, 77, 30, b'', LOCAL4))


class ReloadTest(MikaTestCase):
    config = {'tracker': {'interval': 600, 'min_interval': 300}}

    def test_reload_line_counts(self):
        m = self.mika
        m.add_user()
        m.add_torrent()
        line = m.reload()
        users = m.query('SELECT count(*) FROM users')[0][0]
        torrents = m.query('SELECT count(*) FROM torrents')[0][0]
        wl = m.query('SELECT count(*) FROM whitelist')[0][0]
        self.assertIn('reloaded: %d users, %d torrents, %d whitelist prefixes'
                      % (users, torrents, wl), line)

    def test_reload_keeps_peers_and_snatches(self):
        m = self.mika
        _, pk = m.add_user()
        _, ih = self.new_torrent()
        a = peer_id()
        m.announce(pk, ih, a, 6881, left=10, event='started')
        m.announce(pk, ih, a, 6881, left=0, event='completed')
        m.add_user()
        m.reload()
        self.assertEqual(m.announce(pk, ih, peer_id(), 6882, left=10),
                         announce_answer(1, 1, 1, 600, 300, compact4('127.0.0.1', 6881), LOCAL4))
        # The same user completing again after reload is still one snatch.
        self.assertEqual(m.announce(pk, ih, a, 6881, left=0, event='completed', numwant=0),
                         announce_answer(1, 1, 1, 600, 300, b'', LOCAL4))

    def test_reload_drops_deleted_and_disabled_users(self):
        m = self.mika
        uid, pk = m.add_user()
        uid2, pk2 = m.add_user()
        _, ih = self.new_torrent()
        self.assertNotIn(b'failure', m.announce(pk, ih, peer_id(), 6881, left=10))
        self.assertNotIn(b'failure', m.announce(pk2, ih, peer_id(), 6882, left=10))
        m.delete_user(uid)
        m.update_user(uid2, enabled=False)
        m.reload()
        url = announce_url(pk, ih, peer_id(), 6883, left=10)
        self.assertEqual(m.get(url)[2], failure('unknown passkey'))
        url = announce_url(pk2, ih, peer_id(), 6884, left=10)
        self.assertEqual(m.get(url)[2], failure('account disabled'))

    def test_reload_applies_torrent_changes(self):
        m = self.mika
        _, pk = m.add_user()
        tid, ih = self.new_torrent()
        self.assertNotIn(b'failure', m.announce(pk, ih, peer_id(), 6881, left=10))
        m.update_torrent(tid, deleted=True, deleted_reason='gone')
        m.reload()
        self.assertEqual(m.get(announce_url(pk, ih, peer_id(), 6882, left=10))[2],
                         failure('unregistered torrent: gone'))

    def test_reload_survives_many_hups(self):
        for _ in range(5):
            self.mika.reload()
        self.assertTrue(self.mika.running())


class SignalTest(unittest.TestCase):
    def run_and_stop(self, sig):
        with Mika() as m:
            _, pk = m.add_user()
            _, ih = m.add_torrent()
            m.reload()
            m.announce(pk, ih, peer_id(), 6881, left=10)
            self.assertEqual(m.stop(sig), 0)

    def test_sigterm_exits_zero(self):
        self.run_and_stop(signal.SIGTERM)

    def test_sigint_exits_zero(self):
        self.run_and_stop(signal.SIGINT)

    def test_restart_keeps_users_and_torrents(self):
        with Mika() as m:
            _, pk = m.add_user()
            _, ih = m.add_torrent()
            m.reload()
            m.restart()
            d = bdecode(m.announce(pk, ih, peer_id(), 6881, left=10))
            self.assertEqual(d[b'incomplete'], 1)


class PortClashTest(unittest.TestCase):
    """The harness's answer to a port taken between its probe and the daemon's
    bind (tests/lib/ports.py): start() picks again and starts again."""

    def start_on_a_taken_port(self, m, section):
        """Starts m after making the port it picked for [section] port one
        that a socket here holds; returns that port."""
        self.addCleanup(m.cleanup)
        held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(held.close)
        held.bind(('127.0.0.1', 0))
        held.listen(1)
        taken = held.getsockname()[1]
        m.config[section]['port'] = taken
        m.write_config()
        m.start()
        return taken

    def test_a_taken_tracker_port_is_picked_again(self):
        m = Mika()
        taken = self.start_on_a_taken_port(m, 'server')
        self.assertNotEqual(m.port, taken)
        self.assertIn('Address already in use', m.log_text())
        _, pk = m.add_user()
        _, ih = m.add_torrent()
        m.reload()
        self.assertEqual(bdecode(m.announce(pk, ih, peer_id(), 6881, left=1))[b'incomplete'], 1)
        m.stop()

    def test_a_taken_api_port_is_picked_again(self):
        m = MikaApi()
        taken = self.start_on_a_taken_port(m, 'api')
        self.assertNotIn(taken, (m.port, m.api_port))
        self.assertIn('api: cannot listen on', m.log_text())
        self.assertEqual(m.api('GET', '/api/v1/stats')[0], 200)
        m.stop()


class PortReservationTest(unittest.TestCase):
    """Two servers binding one port with SO_REUSEPORT would share it without
    an error: a port another live test process reserved is not handed out,
    and is free again once that process is gone (tests/lib/ports.py)."""

    def test_a_port_reserved_elsewhere_is_refused_until_its_holder_exits(self):
        import subprocess
        import ports
        port = ports.free_port(('127.0.0.1',))
        self.assertTrue(ports.reserve(port))  # held here already: still ours
        holder = subprocess.Popen(
            [sys.executable, '-c',
             'import sys; sys.path.insert(0, %r); import ports; '
             'print(ports.free_port(("127.0.0.1",)), flush=True); sys.stdin.read()'
             % os.path.dirname(ports.__file__)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            theirs = int(holder.stdout.readline())
            self.assertNotEqual(theirs, port)
            self.assertFalse(ports.reserve(theirs))
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)
        self.assertTrue(ports.reserve(theirs))


class PollBackendTest(MikaTestCase):
    config = {'server': {'event_loop': 'poll'},
              'tracker': {'interval': 600, 'min_interval': 300}}

    def test_listening_line_names_backend(self):
        line = self.mika.wait_log('listening on port %d' % self.mika.port)
        self.assertRegex(line, r'\bpoll\b')

    def test_announce_and_scrape(self):
        m = self.mika
        _, pk = m.add_user()
        _, ih = self.new_torrent()
        self.assertEqual(m.announce(pk, ih, peer_id(), 6881, left=0),
                         announce_answer(1, 0, 0, 600, 300, b'', LOCAL4))
        self.assertEqual(m.announce(pk, ih, peer_id(), 6882, left=5),
                         announce_answer(1, 0, 1, 600, 300, compact4('127.0.0.1', 6881), LOCAL4))
        self.assertEqual(m.scrape(pk, ih), b'd5:filesd20:' + ih + b'd8:completei1e'
                         b'10:downloadedi0e11:downloadersi1e10:incompletei1eeee')
        with m.conn() as c:
            for _ in range(3):
                self.assertEqual(c.request('/%s/scrape?info_hash=%s' % (
                    pk, ''.join('%%%02x' % b for b in ih)))[0], 200)


if __name__ == '__main__':
    run_tests(globals())
