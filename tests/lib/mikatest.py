"""mikatest: the shared harness for mika's integration and end-to-end tests.

Owns: starting one mika daemon in a private temp dir (config, port, SQLite
file, log), editing its users/torrents/whitelist through SQLite + SIGHUP,
byte-exact HTTP over raw sockets, a strict bdecode and a bencode.
Not here: any knowledge of a particular test; real BitTorrent clients.

Stdlib only: it runs under Debian's /usr/bin/python3 (which also has
python3-libtorrent for the e2e tests). The daemon binary comes from the
MIKA_BIN environment variable (CTest sets it).

Timeouts are multiplied by MIKA_TEST_TIMEOUT_SCALE (default 1; use e.g. 3 for
an ASan build). Waits poll for their condition and return as soon as it holds.

Typical use:

    with Mika({'tracker': {'interval': 1}}) as m:
        uid, pk = m.add_user()
        tid, ih = m.add_torrent()
        m.reload()
        body = m.announce(pk, ih, peer_id(), 6881, left=100)
        d = bdecode(body)
"""

import os
import random
import shutil
import signal
import socket
import sqlite3
import string
import struct
import subprocess
import sys
import tempfile
import time
import unittest

from ports import PortTaken, free_port as _free_port, port_taken_in, start_on_free_ports

__all__ = [
    'MIKA_BIN', 'TIMEOUT_SCALE', 'Mika', 'MikaError', 'Conn', 'BdecodeError',
    'bdecode', 'bencode', 'failure', 'announce_answer', 'compact4', 'compact6',
    'split_peers', 'peer_id', 'random_passkey', 'random_hash', 'pct', 'announce_url',
    'scrape_url', 'free_port', 'FREE_PORT', 'get', 'exchange', 'parse_response', 'run_mika',
    'wait_until', 'run_tests', 'MikaTestCase', 'build_request', 'LOCAL4', 'LOCAL6',
    'UDP_PROTOCOL_ID', 'udp_connect_req', 'udp_announce_req', 'udp_scrape_req', 'udp_url_data',
    'Udp',
]

MIKA_BIN = os.environ.get('MIKA_BIN', '/work/main/build/mika')
TIMEOUT_SCALE = float(os.environ.get('MIKA_TEST_TIMEOUT_SCALE', '1') or '1')

LOCAL4 = bytes([127, 0, 0, 1])
LOCAL6 = bytes(15) + b'\x01'


def _t(seconds):
    """Scales a timeout by MIKA_TEST_TIMEOUT_SCALE."""
    return seconds * TIMEOUT_SCALE


class MikaError(AssertionError):
    """The daemon did not do what the harness waited for (start, log line, exit)."""


# ---------------------------------------------------------------- bencode


class BdecodeError(ValueError):
    """Raised by bdecode on any input that is not canonical bencoding."""


def bdecode(data):
    """Decodes one bencoded value from bytes, strictly.

    Rejects trailing bytes, leading zeros in integers and string lengths,
    `i-0e`, empty integers, and dictionaries whose keys are not strings in
    strictly ascending raw-byte order (BEP 3), so decoding an answer checks
    its canonical form. Strings decode to bytes, dicts to dict with bytes keys
    (insertion order = wire order), lists to list, integers to int.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError('bdecode wants bytes')
    data = bytes(data)
    value, pos = _bdecode_at(data, 0, 0)
    if pos != len(data):
        raise BdecodeError('trailing bytes at %d: %r' % (pos, data[pos:pos + 20]))
    return value


def _bdecode_int(data, pos, end_byte):
    end = data.find(end_byte, pos)
    if end < 0:
        raise BdecodeError('unterminated number at %d' % pos)
    text = data[pos:end]
    neg = text.startswith(b'-')
    digits = text[1:] if neg else text
    if not digits or not digits.isdigit():
        raise BdecodeError('bad number %r at %d' % (text, pos))
    if len(digits) > 1 and digits[0:1] == b'0':
        raise BdecodeError('leading zero in %r at %d' % (text, pos))
    if neg and digits == b'0':
        raise BdecodeError('negative zero at %d' % pos)
    return int(text), end + 1


def _bdecode_at(data, pos, depth):
    if depth > 64:
        raise BdecodeError('nested too deep')
    if pos >= len(data):
        raise BdecodeError('truncated at %d' % pos)
    c = data[pos:pos + 1]
    if c == b'i':
        return _bdecode_int(data, pos + 1, b'e')
    if c.isdigit():
        n, start = _bdecode_int(data, pos, b':')
        if n < 0:
            raise BdecodeError('negative string length at %d' % pos)
        if start + n > len(data):
            raise BdecodeError('string past the end at %d' % pos)
        return data[start:start + n], start + n
    if c == b'l':
        out = []
        pos += 1
        while data[pos:pos + 1] != b'e':
            v, pos = _bdecode_at(data, pos, depth + 1)
            out.append(v)
        return out, pos + 1
    if c == b'd':
        out = {}
        pos += 1
        last = None
        while data[pos:pos + 1] != b'e':
            if not data[pos:pos + 1].isdigit():
                raise BdecodeError('dict key is not a string at %d' % pos)
            k, pos = _bdecode_at(data, pos, depth + 1)
            if last is not None and k <= last:
                raise BdecodeError('dict keys not sorted/unique: %r after %r' % (k, last))
            last = k
            v, pos = _bdecode_at(data, pos, depth + 1)
            out[k] = v
        return out, pos + 1
    raise BdecodeError('unexpected byte %r at %d' % (c, pos))


def bencode(value):
    """Encodes int, bytes, str (UTF-8), list/tuple and dict (keys bytes or str,
    emitted sorted by raw bytes) to canonical bencoding; for building the exact
    bytes a test expects."""
    if isinstance(value, bool):
        raise TypeError('bencode: bool is ambiguous, pass an int')
    if isinstance(value, int):
        return b'i%de' % value
    if isinstance(value, str):
        value = value.encode('utf-8')
    if isinstance(value, (bytes, bytearray)):
        return b'%d:%s' % (len(value), bytes(value))
    if isinstance(value, (list, tuple)):
        return b'l' + b''.join(bencode(v) for v in value) + b'e'
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            items.append((k.encode('utf-8') if isinstance(k, str) else bytes(k), v))
        items.sort(key=lambda kv: kv[0])
        return b'd' + b''.join(bencode(k) + bencode(v) for k, v in items) + b'e'
    raise TypeError('bencode: cannot encode %r' % type(value))


def failure(reason):
    """The exact body of a tracker failure: d14:failure reason<len>:<reason>e."""
    return bencode({'failure reason': reason})


def announce_answer(complete, downloaded, incomplete, interval, min_interval,
                    peers=b'', external_ip=LOCAL4, v6=None):
    """The exact body of a successful announce per the spec: keys complete,
    downloaded, external ip, incomplete, interval, min interval, and peers (v4)
    or peers6 (v6; chosen by the length of external_ip unless v6 is given).
    peers is the concatenated compact bytes, in the order the server sent them."""
    if v6 is None:
        v6 = len(external_ip) == 16
    return bencode({
        'complete': complete, 'downloaded': downloaded, 'external ip': external_ip,
        'incomplete': incomplete, 'interval': interval, 'min interval': min_interval,
        ('peers6' if v6 else 'peers'): peers,
    })


def compact4(ip, port):
    """Compact BEP 23 peer: 4 address bytes + 2 port bytes, big-endian."""
    return socket.inet_pton(socket.AF_INET, ip) + port.to_bytes(2, 'big')


def compact6(ip, port):
    """Compact BEP 7 peer: 16 address bytes + 2 port bytes, big-endian."""
    return socket.inet_pton(socket.AF_INET6, ip) + port.to_bytes(2, 'big')


def split_peers(blob, v6=False):
    """Splits a compact peers string into a list of entries (6 or 18 bytes each);
    fails if the length is not a multiple of the entry size."""
    size = 18 if v6 else 6
    if len(blob) % size:
        raise AssertionError('compact peers length %d is not a multiple of %d'
                             % (len(blob), size))
    return [blob[i:i + size] for i in range(0, len(blob), size)]


# ---------------------------------------------------------------- identities

_ALNUM = string.ascii_letters + string.digits


def peer_id(prefix=b'-qB4650-'):
    """A 20-byte peer_id: prefix (a whitelisted client by default) + random bytes."""
    if isinstance(prefix, str):
        prefix = prefix.encode()
    return prefix + os.urandom(20 - len(prefix)) if len(prefix) < 20 else prefix[:20]


def random_passkey(n=32):
    """A random passkey of n characters from [A-Za-z0-9]."""
    return ''.join(random.choice(_ALNUM) for _ in range(n))


def random_hash():
    """20 random bytes, for an info_hash."""
    return os.urandom(20)


# ---------------------------------------------------------------- URLs


def pct(value):
    """Percent-encodes EVERY byte of value (bytes or str): b'ab' -> '%61%62'."""
    if isinstance(value, str):
        value = value.encode('utf-8')
    return ''.join('%%%02X' % b for b in value)


def _qval(value):
    if isinstance(value, (bytes, bytearray)):
        return pct(value)
    return str(value)


def announce_url(passkey, info_hash, peer_id, port, uploaded=0, downloaded=0, left=0,
                 event=None, numwant=None, **extra):
    """Path and query of an announce: /<passkey>/announce?info_hash=..&peer_id=..
    &port=..&uploaded=..&downloaded=..&left=..[&event=..][&numwant=..][&extra..].

    Bytes values are percent-encoded byte by byte; str and int values go in as
    is (so tests can send malformed text). A keyword whose value is None is
    left out, so `announce_url(pk, ih, pid, None)` omits port. extra keys are
    appended in the given order."""
    params = [('info_hash', info_hash), ('peer_id', peer_id), ('port', port),
              ('uploaded', uploaded), ('downloaded', downloaded), ('left', left),
              ('event', event), ('numwant', numwant)]
    params.extend(extra.items())
    query = '&'.join('%s=%s' % (k, _qval(v)) for k, v in params if v is not None)
    return '/%s/announce?%s' % (passkey, query)


def scrape_url(passkey, *info_hashes):
    """Path and query of a scrape: /<passkey>/scrape?info_hash=..&info_hash=.. ."""
    query = '&'.join('info_hash=' + pct(h) for h in info_hashes)
    return '/%s/scrape%s' % (passkey, ('?' + query) if query else '')


# ---------------------------------------------------------------- raw HTTP


def free_port():
    """A port that is free on both 127.0.0.1 and ::1, TCP and UDP, right now.
    Nothing holds it: for a daemon's config use FREE_PORT instead, which
    Mika picks again if the port is taken before the daemon binds it."""
    return _free_port(('127.0.0.1', '::1'), udp=True)


class _FreePort:
    def __repr__(self):
        return 'FREE_PORT'


# A config value for Mika(overrides): "a port the harness picks" (free_port()),
# picked again if the daemon finds it taken. Read the choice back from
# m.config[section][key] after start().
FREE_PORT = _FreePort()


def parse_response(buf):
    """Parses one HTTP response from the start of buf (bytes).

    Returns ((status, headers, body), rest) or None if buf does not hold a
    complete response yet. headers maps lower-cased names to values (str);
    the raw head is in headers['']. A response needs Content-Length."""
    end = buf.find(b'\r\n\r\n')
    if end < 0:
        return None
    head = buf[:end].decode('latin-1')
    lines = head.split('\r\n')
    parts = lines[0].split(' ', 2)
    if len(parts) < 2 or not parts[0].startswith('HTTP/'):
        raise AssertionError('bad status line %r' % lines[0])
    status = int(parts[1])
    headers = {'': head}
    for line in lines[1:]:
        name, _, value = line.partition(':')
        key = name.strip().lower()
        if key in headers:
            raise AssertionError('header %r given twice in %r' % (name, head))
        headers[key] = value.strip()
    if 'content-length' not in headers:
        raise AssertionError('response without Content-Length: %r' % head)
    n = int(headers['content-length'])
    if len(buf) < end + 4 + n:
        return None
    body = buf[end + 4:end + 4 + n]
    return (status, headers, body), buf[end + 4 + n:]


class Conn:
    """One raw TCP connection to the daemon, for keep-alive, pipelining and
    timeout tests. Responses are parsed by Content-Length; bytes after one
    response stay buffered for the next."""

    def __init__(self, port, family=4, timeout=5.0):
        """Connects to 127.0.0.1:port (family=4) or [::1]:port (family=6)."""
        fam = socket.AF_INET6 if family == 6 else socket.AF_INET
        host = '::1' if family == 6 else '127.0.0.1'
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(_t(timeout))
        self.sock.connect((host, port))
        self.buf = b''
        self.eof = False

    def send(self, data):
        """Sends all of data (bytes or str, latin-1)."""
        if isinstance(data, str):
            data = data.encode('latin-1')
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout('timed out')
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b''
        if not chunk:
            self.eof = True
        self.buf += chunk

    def read_response(self, timeout=5.0):
        """Reads the next response: (status, headers, body), or None if the
        server closed the connection before a complete one. Raises
        socket.timeout if nothing complete arrives within timeout."""
        deadline = time.monotonic() + _t(timeout)
        while True:
            parsed = parse_response(self.buf)
            if parsed:
                resp, self.buf = parsed
                return resp
            if self.eof:
                return None
            self._fill(deadline)

    def wait_closed(self, timeout=5.0):
        """True if the server closes the connection (EOF or reset) within
        timeout with no further bytes; raises AssertionError if bytes arrive."""
        deadline = time.monotonic() + _t(timeout)
        while not self.eof:
            try:
                self._fill(deadline)
            except socket.timeout:
                return False
        if self.buf:
            raise AssertionError('unexpected bytes before close: %r' % self.buf[:200])
        return True

    def request(self, path, headers=None, version='1.1', method='GET'):
        """Sends one request (Host header added unless given) and reads its answer."""
        self.send(build_request(path, headers, version, method))
        return self.read_response()

    def close(self):
        """Closes the socket."""
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def build_request(path, headers=None, version='1.1', method='GET'):
    """Bytes of one request: `<method> <path> HTTP/<version>`, Host, extra headers."""
    hdrs = {'Host': 'tracker.test'}
    if headers:
        hdrs.update(headers)
    lines = ['%s %s HTTP/%s' % (method, path, version)]
    lines += ['%s: %s' % (k, v) for k, v in hdrs.items() if v is not None]
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1')


def get(port, path_and_query, family=4, headers=None, timeout=5.0):
    """One GET on a fresh connection: returns (status, headers, body).
    headers are extra request headers (a value None drops Host)."""
    with Conn(port, family, timeout) as c:
        resp = c.request(path_and_query, headers)
    if resp is None:
        raise AssertionError('connection closed without an answer to GET %s'
                             % path_and_query[:200])
    return resp


def exchange(port, data, family=4, count=None, timeout=5.0):
    """Sends raw bytes on a fresh connection and reads answers until count of
    them arrived (count=None: until the server closes). Returns
    (responses, closed) where closed says whether the server closed."""
    with Conn(port, family, timeout) as c:
        c.send(data)
        out = []
        while count is None or len(out) < count:
            r = c.read_response(timeout)
            if r is None:
                return out, True
            out.append(r)
        return out, False


# ---------------------------------------------------------------- the daemon


def _child_env(env):
    """The environment for a daemon: ours minus every MIKA_* variable (the
    daemon treats MIKA_<SECTION>_<KEY> as config), plus env."""
    out = {k: v for k, v in os.environ.items() if not k.startswith('MIKA_')}
    out.update(env or {})
    return out


# ---------------------------------------------------------------- UDP (BEP 15)

UDP_PROTOCOL_ID = 0x41727101980
UDP_EVENTS = {'': 0, 'completed': 1, 'started': 2, 'stopped': 3}


def udp_connect_req(tid, protocol_id=UDP_PROTOCOL_ID):
    """A BEP 15 connect request."""
    return struct.pack('>QII', protocol_id, 0, tid)


def udp_url_data(url, piece=255):
    """BEP 41 URL data options for url (bytes), split into pieces of at most
    `piece` bytes; no end-of-options byte (add b'\\x00' if wanted)."""
    out = b''
    for i in range(0, len(url), piece):
        chunk = url[i:i + piece]
        out += bytes([2, len(chunk)]) + chunk
    return out


def udp_announce_req(cid, tid, info_hash, pid, port, downloaded=0, left=0, uploaded=0,
                     event='', ip=0, key=0, numwant=-1, options=b''):
    """A BEP 15 announce (98 bytes) followed by the raw BEP 41 options."""
    return (struct.pack('>QII20s20sQQQIIIiH', cid, 1, tid, info_hash, pid, downloaded, left,
                        uploaded, UDP_EVENTS[event], ip, key, numwant, port) + options)


def udp_scrape_req(cid, tid, *info_hashes):
    """A BEP 15 scrape of the given hashes."""
    return struct.pack('>QII', cid, 2, tid) + b''.join(info_hashes)


class Udp:
    """One UDP socket talking to a daemon's UDP port (family 4: 127.0.0.1,
    6: ::1)."""

    def __init__(self, port, family=4, timeout=5.0):
        fam, host = (socket.AF_INET6, '::1') if family == 6 else (socket.AF_INET, '127.0.0.1')
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.connect((host, port))
        self.timeout = timeout

    def ask(self, data, timeout=None):
        """Sends data; returns the answer datagram, or None after timeout."""
        self.sock.send(data)
        self.sock.settimeout(_t(timeout if timeout is not None else self.timeout))
        try:
            return self.sock.recv(65536)
        except (socket.timeout, ConnectionRefusedError):
            return None  # ConnectionRefusedError: nothing listens (ICMP port unreachable)

    def connect_id(self, tid=0x1234):
        """Runs a connect and returns the connection id."""
        ans = self.ask(udp_connect_req(tid))
        if ans is None or len(ans) != 16:
            raise AssertionError('connect answered %r' % (ans,))
        action, rtid, cid = struct.unpack('>IIQ', ans)
        if action != 0 or rtid != tid:
            raise AssertionError('connect answered %r' % (ans,))
        return cid

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_mika(args, env=None, timeout=10.0, cwd=None):
    """Runs `$MIKA_BIN args...` to completion: returns (exit code, stdout, stderr)
    as text. A process still running after timeout is killed and its code is
    None (so a daemon that wrongly starts does not hang the test)."""
    p = subprocess.Popen([MIKA_BIN] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=_child_env(env), cwd=cwd)
    try:
        out, err = p.communicate(timeout=_t(timeout))
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        rc = None
    return rc, out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')


def wait_until(predicate, timeout=5.0, interval=0.05, what='condition'):
    """Polls predicate() until it returns a true value, which is returned;
    raises AssertionError naming `what` after timeout (scaled)."""
    deadline = time.monotonic() + _t(timeout)
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for %s' % what)
        time.sleep(interval)


def _ini_value(v):
    if isinstance(v, bool):
        return 'true' if v else 'false'
    return str(v)


class Mika:
    """One mika daemon in a private temp dir; a context manager.

    Mika(overrides, env, start=True): overrides is {section: {key: value}}
    merged over the test defaults ([server] port=FREE_PORT, bind4=127.0.0.1,
    bind6=::1, workers=2; [store] path=<tmp>/mika.db; [journal]
    apply_delay_ms=200; [log] level=debug);
    a value None removes a default key, FREE_PORT asks for a port the harness
    picks (see start()). Bools are written true/false.
    env adds environment variables (e.g. MIKA_TRACKER_INTERVAL).
    __enter__ starts the daemon (unless already started) and __exit__ stops
    it (stop() if running, so a non-zero exit fails the test) and removes the
    temp dir unless MIKA_TEST_KEEP is set.
    """

    def __init__(self, overrides=None, env=None):
        self.dir = tempfile.mkdtemp(prefix='mika-test-')
        self.db_path = os.path.join(self.dir, 'mika.db')
        self.config_path = os.path.join(self.dir, 'mika.ini')
        self.log_path = os.path.join(self.dir, 'mika.log')
        self.env = dict(env or {})
        self.proc = None
        self.returncode = None
        cfg = {
            'server': {'port': FREE_PORT, 'bind4': '127.0.0.1', 'bind6': '::1',
                       'workers': 2},
            'store': {'path': self.db_path},
            # Books within a fraction of a second, as tests wait for them
            # (the daemon's default lets them trail by up to 5 s).
            'journal': {'apply_delay_ms': 200},
            'log': {'level': 'debug'},
        }
        for section, keys in (overrides or {}).items():
            sec = cfg.setdefault(section, {})
            for k, v in keys.items():
                if v is None:
                    sec.pop(k, None)
                else:
                    sec[k] = v
        self.config = cfg
        # The keys whose port the harness picks, and picks again on a clash.
        self._picked = [(section, k) for section, keys in cfg.items()
                        for k, v in keys.items() if v is FREE_PORT]
        self._pick_ports()
        self.write_config()

    @property
    def port(self):
        """The tracker's port (HTTP, and UDP unless udp.port says otherwise)."""
        return self.config['server']['port']

    def _pick_ports(self):
        for section, key in self._picked:
            self.config[section][key] = free_port()

    # -- lifecycle

    def write_config(self):
        """(Re)writes self.config to self.config_path as INI."""
        with open(self.config_path, 'w') as f:
            for section, keys in self.config.items():
                f.write('[%s]\n' % section)
                for k, v in keys.items():
                    f.write('%s = %s\n' % (k, _ini_value(v)))
                f.write('\n')

    def start(self, timeout=10.0):
        """Starts `$MIKA_BIN serve --config <ini>` (stderr and stdout to the log
        file) and waits for `listening on port <port>`; on timeout or early exit
        raises MikaError with the log tail.

        If a port the harness picked (FREE_PORT) turns out taken when the
        daemon binds it (ports.py says why that happens), the ports are
        picked again and the daemon started again, a few times: self.port
        and self.config then name the new ports."""
        if not os.path.exists(MIKA_BIN):
            raise MikaError('MIKA_BIN %r does not exist' % MIKA_BIN)
        return start_on_free_ports(lambda: self._start_once(timeout))

    def _start_once(self, timeout):
        """One start(); raises PortTaken, with the daemon gone and the ports
        picked again, when a picked port was taken."""
        self._log_file = open(self.log_path, 'ab')
        self._start_offset = self.log_offset()
        self.proc = subprocess.Popen([MIKA_BIN, 'serve', '--config', self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=self._log_file,
                                     stderr=self._log_file, env=_child_env(self.env),
                                     cwd=self.dir)
        self.returncode = None
        try:
            self.wait_log('listening on port %d' % self.port, self._start_offset, timeout)
        except MikaError:
            if not self._picked or self.running():
                raise
            # The tracker's sockets: a failed bind is fatal, the daemon exited.
            self.returncode = self.proc.returncode
            self._log_file.close()
            if not port_taken_in(self.log_text()[self._start_offset:]):
                raise
            self._repick('the daemon exited: a port was taken')
        # The admin API's: the daemon goes on without it, and says so before
        # `listening on port` (a test that wants a busy API port names it).
        if (('api', 'port') in self._picked
                and 'api: cannot listen on' in self.log_text()[self._start_offset:]):
            self.stop()
            self._repick('api.port was taken')
        return self

    def _repick(self, why):
        ports = ', '.join('%s.%s=%s' % (s, k, self.config[s][k]) for s, k in self._picked)
        self._pick_ports()
        self.write_config()
        raise PortTaken('%s (%s)\n%s' % (why, ports, self.log_tail()))

    def running(self):
        """True while the daemon process has not exited."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Sends sig (SIGTERM) and asserts that the daemon exits 0 within timeout,
        logs a line containing `stopped` and logged no sanitizer report.
        Returns the exit code."""
        if not self.running():
            raise MikaError('daemon not running (exit %r)\n%s'
                            % (self.proc and self.proc.returncode, self.log_tail()))
        off = self.log_offset()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=_t(timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise MikaError('daemon did not exit within %ss of signal %d\n%s'
                            % (timeout, sig, self.log_tail()))
        self.returncode = rc
        self._log_file.close()
        if rc != 0:
            raise MikaError('daemon exited %d after signal %d\n%s'
                            % (rc, sig, self.log_tail()))
        for marker in ('ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:'):
            if marker in self.log_text():
                raise MikaError('sanitizer report in the log\n%s' % self.log_tail(80))
        if 'stopped' not in self.log_text()[off:]:
            raise MikaError('no `stopped` line logged after signal %d\n%s'
                            % (sig, self.log_tail()))
        return rc

    def kill(self):
        """SIGKILLs the daemon (no checks) and reaps it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.returncode = self.proc.wait()
            self._log_file.close()

    def restart(self, timeout=10.0):
        """stop() then start() with the same config, port and database."""
        self.stop()
        return self.start(timeout)

    def cleanup(self):
        """Kills the daemon if still running and removes the temp dir (kept when
        MIKA_TEST_KEEP is set)."""
        self.kill()
        if not os.environ.get('MIKA_TEST_KEEP'):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        if self.proc is None:
            try:
                self.start()
            except BaseException:
                self.cleanup()
                raise
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None and self.running():
                self.stop()
        finally:
            self.cleanup()

    # -- log

    def log_text(self):
        """The whole log (daemon stderr+stdout) so far, as text."""
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def log_offset(self):
        """The current length of log_text(), to pass as after_offset later."""
        return len(self.log_text())

    def log_tail(self, n=40):
        """The last n lines of the log, prefixed for error messages."""
        lines = self.log_text().splitlines()[-n:]
        return '--- log tail (%s) ---\n%s' % (self.log_path, '\n'.join(lines))

    def wait_log(self, substring, after_offset=0, timeout=10.0):
        """Waits until a log line after after_offset contains substring and
        returns that line; raises MikaError with the log tail on timeout or if
        the daemon exits first."""
        deadline = time.monotonic() + _t(timeout)
        while True:
            text = self.log_text()
            i = text.find(substring, after_offset)
            if i >= 0:
                start = text.rfind('\n', 0, i) + 1
                end = text.find('\n', i)
                if end >= 0:  # only whole lines
                    return text[start:end]
            if self.proc is not None and self.proc.poll() is not None:
                raise MikaError('daemon exited %d while waiting for %r\n%s'
                                % (self.proc.returncode, substring, self.log_tail()))
            if time.monotonic() > deadline:
                raise MikaError('timed out after %ss waiting for %r in the log\n%s'
                                % (timeout, substring, self.log_tail()))
            time.sleep(0.02)

    # -- database

    def db(self):
        """A new sqlite3 connection to the daemon's database (autocommit, 10 s
        busy timeout). Callers close it."""
        con = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)
        return con

    def _exec(self, sql, args=()):
        con = self.db()
        try:
            cur = con.execute(sql, args)
            return cur.lastrowid, cur.rowcount
        finally:
            con.close()

    def query(self, sql, args=()):
        """Runs a SELECT and returns all rows."""
        con = self.db()
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def add_user(self, passkey=None, enabled=True, can_download=True):
        """Inserts a user (passkey None: 32 random alnum) and returns
        (id, passkey). Takes effect after reload()."""
        passkey = passkey or random_passkey()
        uid, _ = self._exec('INSERT INTO users (passkey, enabled, can_download) '
                            'VALUES (?, ?, ?)', (passkey, int(enabled), int(can_download)))
        return uid, passkey

    def update_user(self, user_id, **cols):
        """Sets columns of a user (e.g. enabled=False, can_download=0).
        Takes effect after reload()."""
        self._update('users', user_id, cols)

    def delete_user(self, user_id):
        """Deletes a user row. Takes effect after reload()."""
        self._exec('DELETE FROM users WHERE id = ?', (user_id,))

    def add_torrent(self, info_hash=None, enabled=True, deleted=False, reason=''):
        """Inserts a torrent (info_hash None: 20 random bytes) and returns
        (id, info_hash). Takes effect after reload()."""
        info_hash = info_hash or random_hash()
        tid, _ = self._exec('INSERT INTO torrents (info_hash, enabled, deleted, '
                            'deleted_reason) VALUES (?, ?, ?, ?)',
                            (info_hash, int(enabled), int(deleted), reason))
        return tid, info_hash

    def update_torrent(self, torrent_id, **cols):
        """Sets columns of a torrent (enabled, deleted, deleted_reason, ...).
        Takes effect after reload()."""
        self._update('torrents', torrent_id, cols)

    def _update(self, table, row_id, cols):
        if not cols:
            return
        names = sorted(cols)
        vals = [int(cols[n]) if isinstance(cols[n], bool) else cols[n] for n in names]
        sql = 'UPDATE %s SET %s WHERE id = ?' % (table, ', '.join('%s = ?' % n for n in names))
        _, n = self._exec(sql, vals + [row_id])
        if n != 1:
            raise AssertionError('no %s row with id %r' % (table, row_id))

    def add_whitelist(self, prefix, name='test client'):
        """Adds a client prefix (str, e.g. '-XX') to the whitelist; after reload()."""
        self._exec('INSERT OR REPLACE INTO whitelist (prefix, name) VALUES (?, ?)',
                   (prefix, name))

    def remove_whitelist(self, prefix):
        """Removes a client prefix from the whitelist; after reload()."""
        self._exec('DELETE FROM whitelist WHERE prefix = ?', (prefix,))

    def user_stats(self, user_id):
        """(uploaded, downloaded) of a user as stored in the database."""
        rows = self.query('SELECT uploaded, downloaded FROM users WHERE id = ?', (user_id,))
        return tuple(rows[0]) if rows else None

    def reload(self, timeout=10.0):
        """Sends SIGHUP and waits for the next `reloaded:` log line, which is returned."""
        off = self.log_offset()
        self.proc.send_signal(signal.SIGHUP)
        return self.wait_log('reloaded:', off, timeout)

    def setup_swarm(self, users=1, torrents=1):
        """Adds `users` users and `torrents` torrents, reloads once, and returns
        (list of (id, passkey), list of (id, info_hash))."""
        us = [self.add_user() for _ in range(users)]
        ts = [self.add_torrent() for _ in range(torrents)]
        self.reload()
        return us, ts

    # -- HTTP

    def get(self, path_and_query, family=4, headers=None, timeout=5.0):
        """GET on a fresh connection to this daemon: (status, headers, body)."""
        return get(self.port, path_and_query, family, headers, timeout)

    def conn(self, family=4, timeout=5.0):
        """A new raw Conn to this daemon."""
        return Conn(self.port, family, timeout)

    def exchange(self, data, family=4, count=None, timeout=5.0):
        """exchange() against this daemon: (responses, closed)."""
        return exchange(self.port, data, family, count, timeout)

    def announce(self, passkey, info_hash, pid, port, family=4, headers=None, **kw):
        """Announces (see announce_url for keywords) and returns the body;
        asserts HTTP 200 and Content-Type text/plain."""
        status, hdrs, body = self.get(announce_url(passkey, info_hash, pid, port, **kw),
                                      family, headers)
        if status != 200:
            raise AssertionError('announce answered %d: %r' % (status, body))
        return body

    def scrape(self, passkey, *info_hashes, family=4):
        """Scrapes and returns the body; asserts HTTP 200."""
        status, _, body = self.get(scrape_url(passkey, *info_hashes), family)
        if status != 200:
            raise AssertionError('scrape answered %d: %r' % (status, body))
        return body

    def scrape_counts(self, passkey, info_hash):
        """(complete, downloaded, downloaders, incomplete) of one torrent via
        scrape, or None if the scrape leaves it out."""
        d = bdecode(self.scrape(passkey, info_hash))
        f = d[b'files'].get(info_hash)
        if f is None:
            return None
        return (f[b'complete'], f[b'downloaded'], f[b'downloaders'], f[b'incomplete'])


# ---------------------------------------------------------------- running


class MikaTestCase(unittest.TestCase):
    """A TestCase with one daemon for the whole class: set the class attributes
    `config` ({section: {key: value}} overrides) and `env`; the daemon is
    self.mika (started in setUpClass, stopped with exit-code checks in
    tearDownClass). Tests isolate themselves with fresh torrents/users."""

    config = {}
    env = {}
    with_api = False  # True: the daemon is a MikaApi (self.mika.api(...) works)

    @classmethod
    def setUpClass(cls):
        """Starts the class's daemon."""
        super().setUpClass()
        cls.mika = (MikaApi if cls.with_api else Mika)(cls.config, cls.env)
        cls.mika.__enter__()

    @classmethod
    def tearDownClass(cls):
        """Stops the daemon (SIGTERM, exit 0, `stopped` logged) and cleans up."""
        try:
            cls.mika.__exit__(None, None, None)
        finally:
            super().tearDownClass()

    def new_user(self, **kw):
        """Adds a user (see Mika.add_user) and reloads; returns (id, passkey)."""
        u = self.mika.add_user(**kw)
        self.mika.reload()
        return u

    def new_torrent(self, **kw):
        """Adds a torrent (see Mika.add_torrent) and reloads; returns (id, info_hash)."""
        t = self.mika.add_torrent(**kw)
        self.mika.reload()
        return t



def run_tests(module_globals):
    """Runs the unittest TestCases of the calling module (pass globals()) with
    unittest's CLI (so `-k pattern` and test names work), printing unittest's
    summary, and exits non-zero on failure."""
    name = module_globals.get('__name__', '__main__')
    unittest.main(module=name, verbosity=2 if os.environ.get('MIKA_TEST_VERBOSE') else 1)


# ---------------------------------------------------------------- admin API


class ApiError(AssertionError):
    """An admin API answer that was not what the test expected."""


def api_context(cafile):
    """An ssl.SSLContext that trusts exactly the API certificate in cafile
    (the self-signed api-cert.pem) and checks the host name."""
    import ssl
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def api_request(port, method, path, body=None, key=None, cafile=None, headers=None,
                host='127.0.0.1', timeout=10.0, raw=None):
    """One HTTPS request to the admin API: (status, headers, parsed body).

    body: a dict/list sent as JSON, or bytes sent as is (raw= also sends bytes).
    key: the bearer key (None: no Authorization header). The parsed body is
    the JSON value, or the text for a non-JSON answer (metrics). headers maps
    lower-cased names to values."""
    import http.client
    import json
    conn = http.client.HTTPSConnection(host, port, timeout=_t(timeout),
                                       context=api_context(cafile))
    hdrs = dict(headers or {})
    if key is not None:
        hdrs.setdefault('Authorization', 'Bearer ' + key)
    data = raw
    if data is None and body is not None:
        if isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        else:
            data = json.dumps(body).encode()
            hdrs.setdefault('Content-Type', 'application/json')
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        out_headers = {k.lower(): v for k, v in resp.getheaders()}
        status = resp.status
    finally:
        conn.close()
    ctype = out_headers.get('content-type', '')
    if ctype.startswith('application/json'):
        try:
            parsed = json.loads(payload)
        except ValueError as e:
            raise ApiError('%s %s: answer is not JSON (%s): %r' % (method, path, e, payload[:200]))
    else:
        parsed = payload.decode('utf-8', 'replace')
    return status, out_headers, parsed


class MikaApi(Mika):
    """A Mika daemon with its admin API on a free port and its data_dir in the
    daemon's temp dir. api(...) talks to it with the generated key and
    certificate; api_key and cert_path say where they are."""

    def __init__(self, overrides=None, env=None):
        merged = {'api': {}}
        for section, keys in (overrides or {}).items():
            merged.setdefault(section, {}).update(keys)
        merged['api'].setdefault('port', FREE_PORT)
        super().__init__(merged, env)
        api = self.config['api']
        if 'data_dir' not in api:
            api['data_dir'] = self.dir
            self.write_config()
        self.data_dir = api['data_dir']
        self.cert_path = os.path.join(self.data_dir, 'api-cert.pem')
        self.key_file = os.path.join(self.data_dir, 'api.key')
        self.api_key_override = None

    @property
    def api_port(self):
        """The admin API's port."""
        return self.config['api']['port']

    @property
    def api_key(self):
        """The bearer key: api.keys' first entry if configured, else api.key's line."""
        if self.api_key_override:
            return self.api_key_override
        keys = self.config.get('api', {}).get('keys')
        if keys:
            return keys.split(',')[0].strip()
        with open(self.key_file) as f:
            return f.readline().strip()

    def start(self, timeout=10.0):
        """Starts the daemon and waits for the API's listening line too."""
        super().start(timeout)
        if self.config.get('api', {}).get('enabled', True) not in (False, 'false'):
            self.wait_log('admin API on https://', self._start_offset, timeout)
        return self

    def api(self, method, path, body=None, key=True, headers=None, raw=None, timeout=10.0):
        """(status, headers, body) of one API request; key=True uses api_key,
        a string uses that key, None sends no Authorization header."""
        k = self.api_key if key is True else key
        return api_request(self.api_port, method, path, body=body, key=k,
                           cafile=self.cert_path, headers=headers, raw=raw, timeout=timeout)

    def api_ok(self, method, path, body=None, status=None, **kw):
        """The parsed body of an API request; raises ApiError unless the status
        is 2xx (or equals status when given)."""
        st, _, parsed = self.api(method, path, body, **kw)
        if (status is not None and st != status) or (status is None and not 200 <= st < 300):
            raise ApiError('%s %s answered %d: %r' % (method, path, st, parsed))
        return parsed


if __name__ == '__main__':
    # Self-check of the codec (the daemon is not needed).
    assert bdecode(b'd1:ai1e1:bl1:xee') == {b'a': 1, b'b': [b'x']}
    for bad in (b'i01e', b'i-0e', b'ie', b'd1:bi1e1:ai1ee', b'd1:ai1e1:ai1ee', b'i1ex',
                b'01:a', b'5:ab', b'l', b'di1ei1ee'):
        try:
            bdecode(bad)
        except BdecodeError:
            continue
        raise AssertionError('accepted %r' % bad)
    assert bencode({'b': 1, 'a': b'x'}) == b'd1:a1:x1:bi1ee'
    assert failure('unknown passkey') == b'd14:failure reason15:unknown passkeye'
    assert announce_url('pk', b'\x00a', b'b', 1) == \
        '/pk/announce?info_hash=%00%61&peer_id=%62&port=1&uploaded=0&downloaded=0&left=0'
    print('mikatest self-check ok')
    sys.exit(0)
