"""Harness for vmic integration tests: real vmic-hostd, vmic-guestd and
vmic processes over unix sockets in a private temporary directory.

Each test file builds an Env, runs checks through TAP (`Tap.check`), and
always tears down by PID. Binaries come from $VMIC_BUILD (meson sets it).
"""
import collections
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

BUILD = os.environ.get("VMIC_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
HOSTD = os.path.join(BUILD, "src", "host", "vmic-hostd")
GUESTD = os.path.join(BUILD, "src", "guest", "vmic-guestd")
# Every agent the tests start on this machine runs its time service on a
# simulated clock: a real one would slew (adjtimex) and could step the
# clock of the machine the tests run on. Tests that want another offset
# pass their own --simulated-clock after these; the last one wins.
GUEST_CLOCK_ARGS = ["--simulated-clock", "0"]
VMIC = os.path.join(BUILD, "src", "cli", "vmic")

# Environment of the processes under test (sanitizer options pass through).
CHILD_ENV = dict(os.environ)
CHILD_ENV.pop("NOTIFY_SOCKET", None)


class Tap:
    """Minimal TAP producer; a failed check never stops the file."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def check(self, name, cond, detail=""):
        self.n += 1
        if cond:
            print(f"ok {self.n} - {name}", flush=True)
        else:
            self.failed += 1
            print(f"not ok {self.n} - {name}", flush=True)
            for line in str(detail).splitlines() or [""]:
                print(f"#   {line}", flush=True)
        return cond

    def note(self, text):
        for line in str(text).splitlines():
            print(f"# {line}", flush=True)

    def done(self):
        print(f"1..{self.n}", flush=True)
        sys.exit(1 if self.failed else 0)


def ready_lines(log_path):
    """How many times an agent logging to log_path said it was ready."""
    try:
        with open(log_path, "rb") as f:
            return f.read().count(b" ready on ")
    except FileNotFoundError:
        return 0


def wait_until(predicate, timeout, interval=0.05):
    """Poll predicate until it returns a truthy value; return it, or None."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


# --- XXH32, for hand-made frame headers (docs/protocol.md) -------------------
P1, P2, P3, P4, P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
M32 = 0xFFFFFFFF


def _rotl(x, r):
    return ((x << r) | (x >> (32 - r))) & M32


def xxh32(data, seed):
    n = len(data)
    i = 0
    if n >= 16:
        v = [(seed + P1 + P2) & M32, (seed + P2) & M32, seed & M32, (seed - P1) & M32]
        while i + 16 <= n:
            for k in range(4):
                lane = struct.unpack_from("<I", data, i + 4 * k)[0]
                v[k] = (_rotl((v[k] + lane * P2) & M32, 13) * P1) & M32
            i += 16
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & M32
    else:
        h = (seed + P5) & M32
    h = (h + n) & M32
    while i + 4 <= n:
        h = (_rotl((h + struct.unpack_from("<I", data, i)[0] * P3) & M32, 17) * P4) & M32
        i += 4
    while i < n:
        h = (_rotl((h + data[i] * P5) & M32, 11) * P1) & M32
        i += 1
    h ^= h >> 15
    h = (h * P2) & M32
    h ^= h >> 13
    h = (h * P3) & M32
    h ^= h >> 16
    return h


def frame_header(length, service, type_, flags=0, request_id=0, stream_id=0):
    """A header whose check is right, for any (even absurd) length."""
    head = struct.pack("<IIBBHII", 0x43494D56, length, service, type_, flags, request_id, stream_id)
    return head + struct.pack("<I", xxh32(head, 0x766D6963))


# --- processes ---------------------------------------------------------------
class Proc:
    def __init__(self, name, argv, log_path, env=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  env=env or CHILD_ENV)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout=10):
        """SIGTERM, wait, SIGKILL if needed; returns the exit status."""
        if self.alive():
            os.kill(self.pid, signal.SIGCONT)
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode

    def kill9(self):
        if self.alive():
            self.p.kill()
        self.p.wait()
        self.log.close()

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


class Env:
    """A private directory with one hostd, any number of guests, the CLI."""

    def __init__(self, tap):
        self.tap = tap
        self.dir = tempfile.mkdtemp(prefix="vmic-it-")
        self.state = os.path.join(self.dir, "state")
        self.sock = os.path.join(self.dir, "ctl.sock")
        self.hostd_conf = os.path.join(self.dir, "hostd.conf")
        with open(self.hostd_conf, "w") as f:
            f.write("[connection]\nretry-min = 100ms\nretry-max = 1s\n")
        self.procs = []
        self.hostd_proc = None

    # hostd
    def start_hostd(self, *extra, conf=None):
        if conf is not None:
            with open(self.hostd_conf, "w") as f:
                f.write(conf)
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        p = Proc("hostd", [HOSTD, "--config", self.hostd_conf, "--state-dir", self.state,
                           "--socket", self.sock, "--log-level", "debug", *extra],
                 os.path.join(self.dir, "hostd.log"))
        self.procs.append(p)
        self.hostd_proc = p
        if not wait_until(lambda: self._connectable(self.sock) or not p.alive(), 15) or not p.alive():
            raise RuntimeError("vmic-hostd did not start:\n" + p.output())
        return p

    def start_hostd_expect_failure(self, *extra, timeout=15):
        """Start hostd where it must refuse to run; returns the exited Proc."""
        p = Proc("hostd", [HOSTD, "--config", self.hostd_conf, "--state-dir", self.state,
                           "--socket", self.sock, "--log-level", "debug", *extra],
                 os.path.join(self.dir, "hostd-fail.log"))
        self.procs.append(p)
        try:
            p.p.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        return p

    @staticmethod
    def _connectable(path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return True
        except OSError:
            return False
        finally:
            s.close()

    # guests
    def guest_socket(self, name):
        return os.path.join(self.dir, f"{name}.sock")

    def start_guest(self, name, *extra, conf="", channel=None):
        conf_path = os.path.join(self.dir, f"{name}.conf")
        with open(conf_path, "w") as f:
            f.write(conf)
        path = channel or self.guest_socket(name)
        if os.path.exists(path):
            os.unlink(path)
        log_path = os.path.join(self.dir, f"guest-{name}.log")
        readies = ready_lines(log_path)
        # The KVP pool files stay in the test's directory, never the
        # machine's /var/lib/hyperv, and the clock is simulated (a
        # --kvp-dir or --simulated-clock in extra comes later and wins).
        p = Proc(f"guest-{name}", [GUESTD, "--config", conf_path, "--channel",
                                   f"unix-listen:{path}", "--log-level", "debug",
                                   "--kvp-dir", os.path.join(self.dir, f"{name}-kvp"),
                                   *GUEST_CLOCK_ARGS, *extra],
                 log_path)
        self.procs.append(p)
        # The socket file appears at bind(), a moment before listen(): a
        # connect then is refused. The agent's "ready on" line comes after.
        if not wait_until(lambda: ready_lines(log_path) > readies or not p.alive(), 10) \
                or not p.alive():
            raise RuntimeError(f"vmic-guestd {name} did not start:\n" + p.output())
        return p

    # CLI
    def vmic(self, *args, check=False, timeout=60, env=None, user=None):
        argv = [VMIC, "--socket", self.sock, *args]
        if user:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           env=env or CHILD_ENV)
        if check and r.returncode != 0:
            raise RuntimeError(f"vmic {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def vmic_json(self, *args):
        r = self.vmic(*args, "--json", check=True)
        return json.loads(r.stdout)

    def add(self, name, channel=None, *extra):
        return self.vmic("add", name, "--channel", channel or f"unix:{self.guest_socket(name)}",
                         *extra, check=True)

    def status(self, name):
        return self.vmic_json("status", name)

    def service(self, name, service):
        for s in self.status(name)["services"]:
            if s["name"] == service:
                return s
        return None

    def heartbeat(self, name):
        return self.status(name)["heartbeat"]

    def wait_heartbeat(self, name, state, timeout):
        """Seconds until heartbeat reads `state`, or None on timeout."""
        t0 = time.monotonic()
        if wait_until(lambda: self.heartbeat(name) == state, timeout, 0.1):
            return time.monotonic() - t0
        return None

    def events(self, vm=None):
        args = ["events", "--limit", "10000"]
        if vm:
            args += ["--vm", vm]
        return self.vmic_json(*args)["events"]

    def ctl(self, request):
        """One raw request on the control socket; returns the reply object."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(self.sock)
        s.sendall(json.dumps(request).encode() + b"\n")
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        s.close()
        return json.loads(buf.split(b"\n", 1)[0])

    def logs(self):
        out = []
        for p in self.procs:
            out.append(f"--- {p.name} ({p.log_path}) ---\n{p.output()[-4000:]}")
        return "\n".join(out)

    def close(self):
        for p in reversed(self.procs):
            p.stop()
        # Also when an exception is on its way out (called from finally).
        if self.tap.failed or sys.exc_info()[0] is not None:
            self.tap.note(self.logs())
        shutil.rmtree(self.dir, ignore_errors=True)


# --- a byte relay between hostd and a guest, for injecting bytes -----------
def pump(src, dst):
    """Copy bytes from src to dst until either side ends, then shut both."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Relay:
    """Listens on `listen_path`; for each connection from hostd it dials
    `upstream()` (a function giving a connected socket) and copies bytes both
    ways. inject_to_host / inject_to_guest write extra bytes into the
    current pair."""

    def __init__(self, listen_path, upstream):
        self.listen_path = listen_path
        self.upstream = upstream
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(listen_path)
        self.srv.listen(8)
        self.host_side = None
        self.guest_side = None
        self.connections = 0
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self):
        while not self.stopped:
            try:
                h, _ = self.srv.accept()
            except OSError:
                return
            try:
                g = self.upstream()
            except OSError:
                h.close()
                continue
            with self.lock:
                self.host_side, self.guest_side = h, g
                self.connections += 1
            threading.Thread(target=pump, args=(h, g), daemon=True).start()
            threading.Thread(target=pump, args=(g, h), daemon=True).start()

    def inject_to_host(self, data):
        with self.lock:
            self.host_side.sendall(data)

    def inject_to_guest(self, data):
        with self.lock:
            self.guest_side.sendall(data)

    def close(self):
        self.stopped = True
        self.srv.close()


def unix_dialer(path):
    def dial():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        return s
    return dial


# --- the real protocol in Python, for fake peers (docs/protocol.md) -------
MAGIC = 0x43494D56
HDR = 24
F_REPLY = 1
SVC_CONTROL, CTL_HELLO, CTL_INFO = 0, 1, 2
T_ERROR = 0xFF
ROLE_HOST, ROLE_GUEST = 1, 2
HELLO_ESTABLISHED = 1
E_BUSY = 9
# (service, min, max, flags): heartbeat and shutdown 1..1, enabled.
DEFAULT_OFFERS = ((1, 1, 1, 1), (2, 1, 1, 1))


def vstr(b):
    return struct.pack("<H", len(b)) + b


def hello_payload(role, nonce, echo, established, software, offers=DEFAULT_OFFERS):
    """A hello of `role` (docs/protocol.md "Session")."""
    p = struct.pack("<HBBQQ", 1, role, HELLO_ESTABLISHED if established else 0,
                    nonce, echo)
    p += vstr(software) + bytes([len(offers)])
    for o in offers:
        p += bytes(o)
    return p


def parse_hello(payload):
    _fw, role, flags, nonce, echo = struct.unpack_from("<HBBQQ", payload)
    return {"role": role, "flags": flags, "nonce": nonce, "echo": echo}


def frame(service, type_, payload=b"", flags=0, request_id=0, stream_id=0):
    return frame_header(len(payload), service, type_, flags, request_id,
                        stream_id) + payload


class Frame(tuple):
    """A received frame: (service, type, flags, request_id, payload), with
    its stream_id as an attribute."""
    stream_id = 0


def received(svc, typ, flags, rid, sid, payload):
    f = Frame((svc, typ, flags, rid, payload))
    f.stream_id = sid
    return f


class FakeHost:
    """Speaks the host's side of the protocol over one socket: the hello
    handshake, then raw requests. Everything it reads is kept in order."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(10)
        self.buf = b""
        self.nonce = int.from_bytes(os.urandom(8), "little") | 1
        self.peer_nonce = 0
        self.frames = []  # (service, type, flags, request_id, payload)

    @classmethod
    def connect(cls, path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        return cls(s)

    def send(self, service, type_, payload=b"", flags=0, request_id=0):
        self.sock.sendall(frame(service, type_, payload, flags, request_id))

    def send_hello(self, established):
        self.send(SVC_CONTROL, CTL_HELLO,
                  hello_payload(ROLE_HOST, self.nonce, self.peer_nonce, established,
                                b"vmictest fake host"))

    def recv_frame(self, timeout=10):
        """The next frame as (service, type, flags, request_id, payload);
        None when the agent closed the stream."""
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= HDR:
                magic, length, svc, typ, flags, rid, sid, _chk = struct.unpack_from(
                    "<IIBBHIII", self.buf)
                if magic != MAGIC or length > 262144:
                    raise RuntimeError(f"bad frame header from the agent: {self.buf[:HDR]!r}")
                if len(self.buf) >= HDR + length:
                    payload = self.buf[HDR:HDR + length]
                    self.buf = self.buf[HDR + length:]
                    f = received(svc, typ, flags, rid, sid, payload)
                    self.frames.append(f)
                    return f
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data

    def handshake(self, timeout=10):
        """Hello exchange until the agent echoes our nonce; True when the
        session is established on both sides."""
        self.send_hello(False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            f = self.recv_frame(max(0.1, deadline - time.monotonic()))
            if f is None:
                return False
            svc, typ, _flags, _rid, payload = f
            if (svc, typ) != (SVC_CONTROL, CTL_HELLO):
                continue
            h = parse_hello(payload)
            self.peer_nonce = h["nonce"]
            if h["echo"] == self.nonce:
                self.send_hello(True)
                return True
            self.send_hello(False)
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def descendants(pid):
    """Every process below pid, each parent before its children."""
    out = []
    for c in child_pids(pid):
        out.append(c)
        out.extend(descendants(c))
    return out


def end_children(pid, timeout=5):
    """SIGKILL every process below pid, by PID, leaves first, waiting for
    each parent to reap them (nothing is left to init, which in a container
    may never reap); True when pid has no children left."""
    while True:
        below = descendants(pid)
        if not below:
            return True
        leaves = [p for p in below if not child_pids(p)]
        for p in leaves:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        if not wait_until(lambda: not set(leaves) & set(descendants(pid)), timeout):
            return False


def child_pids(pid):
    """PIDs whose parent is pid (read from /proc, no tools needed)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # comm may hold spaces and parentheses: fields follow the last ')'
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(d))
    return out



class CtlClient:
    """A raw control-socket connection that pipelines requests: send()
    writes one request line, recv() waits for the next reply line and
    incomplete() says, without waiting, whether no whole line is there."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = b""

    def send(self, req):
        self.s.sendall(json.dumps(req).encode() + b"\n")

    def recv(self, timeout=60):
        self.s.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise RuntimeError("vmic-hostd closed the control connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def incomplete(self):
        self.s.setblocking(False)
        try:
            self.buf += self.s.recv(1 << 20)
        except BlockingIOError:
            pass
        finally:
            self.s.setblocking(True)
        return b"\n" not in self.buf

    def close(self):
        self.s.close()

class FakeGuest:
    """Listens on `path` like vmic-guestd's unix-listen:, answers the host's
    hello, and can then send whatever a hostile guest would. A thread reads
    (and parses) everything the host sends, so the host never sees a guest
    that stopped reading."""

    def __init__(self, path, record=False):
        self.path = path
        # Keep the host's frames (received()) only when asked: a flood
        # test needs the reader as fast as it can be.
        self.record = record
        if os.path.exists(path):
            os.unlink(path)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.conn = None
        self.host_nonce = 0
        self.host_hellos = 0
        # The other frames the host sent, newest last (bounded), when
        # recording: Frame (service, type, flags, request_id, payload),
        # with .stream_id.
        self.frames = collections.deque(maxlen=10000)
        self.lock = threading.Lock()
        self.ready = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            conn, _ = self.srv.accept()
        except OSError:
            return
        self.conn = conn
        buf = b""
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            at = 0  # one slice per read, not per frame: a flood stays linear
            while len(buf) - at >= HDR:
                length, service, type_, flags, rid, sid = struct.unpack_from(
                    "<IBBHII", buf, at + 4)
                if len(buf) - at < HDR + length:
                    break
                payload = buf[at + HDR:at + HDR + length]
                at += HDR + length
                if (service, type_) == (SVC_CONTROL, CTL_HELLO) and len(payload) >= 20:
                    with self.lock:
                        self.host_nonce = parse_hello(payload)["nonce"]
                        self.host_hellos += 1
                    self.ready.set()
                elif self.record and service != SVC_CONTROL:
                    with self.lock:
                        self.frames.append(received(service, type_, flags, rid, sid,
                                                    payload))
            buf = buf[at:]

    def send(self, data):
        self.conn.sendall(data)

    def hello(self, nonce, offers=DEFAULT_OFFERS):
        """A hello with `nonce` that echoes the host's: a session at once."""
        with self.lock:
            echo = self.host_nonce
        self.send(frame(SVC_CONTROL, CTL_HELLO,
                        hello_payload(ROLE_GUEST, nonce, echo, True, b"fake-guest 0",
                                      offers)))

    def received(self, service=None, type_=None):
        """The frames of (service, type) the host sent so far."""
        with self.lock:
            return [f for f in self.frames
                    if (service is None or f[0] == service) and (type_ is None or f[1] == type_)]

    def close(self):
        for s in (self.conn, self.srv):
            if s:
                try:
                    s.close()
                except OSError:
                    pass
