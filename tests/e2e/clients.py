"""Real BitTorrent clients driven by the end-to-end test: payload and .torrent
making, a Transmission 3.00 runner (transmission-cli in a child process) and a
libtorrent 2.0 runner (python3-libtorrent, in this process).

Owns: client configuration (DHT, PEX, local discovery, port mapping all off;
TCP only, bound to 127.0.0.1 on a given port), completion detection and
stops. libtorrent's stop waits for mika's answer to its event=stopped;
transmission-cli 3.00 exits without sending its queued event=stopped, so a
test must read Transmission's counters from its periodic announces instead.
Does not own: the tracker (tests/lib/mikatest.py starts mika) or assertions.
Invariants: every wait is bounded; each client writes only inside the
directories it is given; stop() is idempotent and never raises.

Needs Debian's /usr/bin/python3 (python3-libtorrent lives there).
"""

import hashlib
import json
import os
import signal
import subprocess
import time

import libtorrent as lt

import ports  # tests/lib, on the path of every test that imports this module

TRANSMISSION_CLI = "/usr/bin/transmission-cli"
PIECE_SIZE = 64 * 1024
EVENT_LOG_MAX = 300


def free_port():
    """A TCP port free on 127.0.0.1 right now, reserved against other test
    processes (tests/lib/ports.py says why)."""
    return ports.free_port(("127.0.0.1",))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_payload(directory, name, size):
    """Writes `size` random bytes to directory/name; returns (path, sha256)."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    data = os.urandom(size)
    with open(path, "wb") as f:
        f.write(data)
    return path, hashlib.sha256(data).hexdigest()


def make_torrents(payload_path, announce_urls, out_dir):
    """Builds one private v1 torrent of payload_path and writes one .torrent per
    announce URL (same info dict, so the same info_hash; only `announce` differs,
    as when each user downloads the file with their own passkey).
    Returns (info_hash as 20 bytes, [paths of the .torrent files])."""
    fs = lt.file_storage()
    lt.add_files(fs, payload_path)
    # v1 only: Transmission 3.00 knows nothing of v2, and mika keys on the SHA-1 hash.
    ct = lt.create_torrent(fs, PIECE_SIZE, lt.create_torrent.v1_only)
    ct.set_priv(True)
    ct.set_creator("mika e2e")
    lt.set_piece_hashes(ct, os.path.dirname(payload_path))
    meta = ct.generate()
    info_hash = hashlib.sha1(lt.bencode(meta[b"info"])).digest()
    paths = []
    for i, url in enumerate(announce_urls):
        meta[b"announce"] = url.encode()
        path = os.path.join(out_dir, "t%d.torrent" % i)
        with open(path, "wb") as f:
            f.write(lt.bencode(meta))
        got = lt.torrent_info(path).info_hash().to_bytes()
        if got != info_hash:
            raise AssertionError("info_hash differs between .torrent files")
        paths.append(path)
    return info_hash, paths


def wait_for(pred, timeout, step=0.1):
    """Polls pred() until it returns a true value or timeout seconds pass;
    returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "(%s)" % e
    # transmission-cli redraws its progress line with \r a few times a second;
    # keep its log messages (they start with "[date]") and the last few redraws.
    lines = [ln.strip() for ln in
             data.replace(b"\r", b"\n").decode("utf-8", "replace").splitlines()]
    # Per-piece "[LAZY] checking" lines are debug noise.
    lines = [ln for ln in lines if ln and "[LAZY]" not in ln]
    progress = [i for i, ln in enumerate(lines) if not ln.startswith("[")]
    drop = set(progress[:-3])
    kept = [ln for i, ln in enumerate(lines) if i not in drop]
    return "\n".join(kept[-n:])


class Transmission:
    """transmission-cli 3.00 on 127.0.0.1:port with its own config dir.

    Seeds when download_dir already holds the complete file (it verifies the
    data first), leeches otherwise. Completion is signalled by its --finish
    script touching a marker file; `rename-partial-files` keeps the final name
    absent until then."""

    def __init__(self, workdir, torrent_path, download_dir, port=None):
        self.workdir = workdir
        self.torrent_path = torrent_path
        self.download_dir = download_dir
        self.port = port or free_port()
        self.config_dir = os.path.join(workdir, "config")
        self.log_path = os.path.join(workdir, "transmission.log")
        self.marker = os.path.join(workdir, "finished")
        self.proc = None
        self._log = None

    def _write_config(self):
        os.makedirs(self.config_dir, exist_ok=True)
        os.makedirs(self.download_dir, exist_ok=True)
        settings = {
            "dht-enabled": False,
            "pex-enabled": False,
            "lpd-enabled": False,
            "utp-enabled": False,
            "port-forwarding-enabled": False,
            "peer-port": self.port,
            "peer-port-random-on-start": False,
            "bind-address-ipv4": "127.0.0.1",
            "bind-address-ipv6": "::1",
            "download-dir": self.download_dir,
            "incomplete-dir-enabled": False,
            "rename-partial-files": True,
            "ratio-limit-enabled": False,
            "idle-seeding-limit-enabled": False,
            "speed-limit-down-enabled": False,
            "speed-limit-up-enabled": False,
            "alt-speed-enabled": False,
            "blocklist-enabled": False,
            "start-added-torrents": True,
            "watch-dir-enabled": False,
            "rpc-enabled": False,
            "message-level": 3,
        }
        with open(os.path.join(self.config_dir, "settings.json"), "w") as f:
            json.dump(settings, f, indent=1)
        script = os.path.join(self.workdir, "on_finish.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\ntouch '%s'\n" % self.marker)
        os.chmod(script, 0o755)
        return script

    def start(self):
        script = self._write_config()
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [TRANSMISSION_CLI, "-g", self.config_dir, "-w", self.download_dir,
             "-p", str(self.port), "-M", "-f", script, self.torrent_path],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            cwd=self.workdir)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def finished(self):
        return os.path.exists(self.marker)

    def stop(self, timeout=20):
        """SIGINT makes transmission-cli stop the torrent and close its
        session (which drops the queued event=stopped announce: the cli exits
        before its announcer's next tick); kill it if that hangs. Returns the
        exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def log_tail(self, n=40):
        return tail(self.log_path, n)


class Libtorrent:
    """A libtorrent 2.0 session in this process on 127.0.0.1:port, created
    without default plugins (so no ut_pex, no ut_metadata), DHT, LSD, UPnP and
    NAT-PMP off, TCP only. Seeds when save_path already holds the complete file
    (it checks the data first), leeches otherwise."""

    def __init__(self, torrent_path, save_path, port=None):
        self.torrent_path = torrent_path
        self.save_path = save_path
        self.port = port or free_port()
        self.session = None
        self.handle = None
        self.events = []
        self._t0 = time.monotonic()

    def start(self):
        os.makedirs(self.save_path, exist_ok=True)
        settings = {
            "listen_interfaces": "127.0.0.1:%d" % self.port,
            "outgoing_interfaces": "",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_outgoing_utp": False,
            "enable_incoming_utp": False,
            # libtorrent refuses loopback trackers whose path does not start
            # with /announce (SSRF mitigation); mika's is /<passkey>/announce.
            "ssrf_mitigation": False,
            # Let a tracker's short intervals through (the default floor is 300 s).
            "min_announce_interval": 1,
            "alert_mask": (lt.alert.category_t.error_notification
                           | lt.alert.category_t.tracker_notification
                           | lt.alert.category_t.status_notification
                           | lt.alert.category_t.connect_notification
                           | lt.alert.category_t.peer_notification),
        }
        self.session = lt.session(settings, 0)  # 0: no default plugins
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(self.torrent_path)
        params.save_path = self.save_path
        params.flags = (lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
                        | lt.torrent_flags.disable_pex)
        self.handle = self.session.add_torrent(params)

    def peer_id_prefix(self):
        return self.session.get_settings()["peer_fingerprint"]

    def pump(self):
        """Moves pending alerts into the event log (kept for failure reports,
        bounded); returns the alerts. Call it while waiting, so the log's
        timestamps are close to the events'."""
        if self.session is None:
            return []
        alerts = self.session.pop_alerts()
        for a in alerts:
            self.events.append("%8.3f %s: %s" % (time.monotonic() - self._t0,
                                                 type(a).__name__, a.message()))
        del self.events[:-EVENT_LOG_MAX]
        return alerts

    def status(self):
        self.pump()
        return self.handle.status()

    def is_seeding(self):
        """True once the data is checked and complete and it serves peers."""
        s = self.status()
        return s.is_seeding and s.state == lt.torrent_status.seeding

    def finished(self):
        """True once every piece is downloaded and hash-checked."""
        return self.status().is_finished

    def stop(self, timeout=10):
        """Pauses the torrent, which announces event=stopped, waits for the
        tracker's answer to that announce, then ends the session."""
        if self.session is None:
            return
        try:
            self.handle.pause()
            deadline = time.monotonic() + timeout
            sent = False
            answered = False
            while not answered and time.monotonic() < deadline:
                self.session.wait_for_alert(100)
                for a in self.pump():
                    if isinstance(a, lt.tracker_announce_alert) and \
                            a.event == lt.event_t.stopped:
                        sent = True
                    elif sent and isinstance(a, (lt.tracker_reply_alert,
                                                 lt.tracker_error_alert)):
                        answered = True
        finally:
            self.session = None
            self.handle = None

    def log_tail(self, n=40):
        self.pump()
        return "\n".join(self.events[-n:])
