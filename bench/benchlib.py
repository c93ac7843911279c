"""What the benchmarks under bench/ share: a pipelining control-socket
client, the guest simulators, process CPU and memory from /proc, the build
type, and min/median/max formatting. Each benchmark's run.py puts bench/ on
sys.path and imports from here."""
import json
import os
import signal
import statistics
import subprocess
import time

PER_SIM = 4000  # guests per simulator process: 2 fds each, under ulimits


class Control:
    """A control-socket client that pipelines requests (docs/control.md)."""

    def __init__(self, path):
        import socket
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""

    def send(self, req):
        self.sock.sendall(json.dumps(req).encode() + b"\n")

    def recv_raw(self):
        """The next reply line as bytes, unparsed."""
        chunks = [self.buf]
        while b"\n" not in chunks[-1]:
            chunk = self.sock.recv(1 << 22)
            if not chunk:
                raise RuntimeError("vmic-hostd closed the control socket")
            chunks.append(chunk)
        line, self.buf = b"".join(chunks).split(b"\n", 1)
        return line

    def recv(self):
        reply = json.loads(self.recv_raw())
        if not reply.get("ok"):
            raise RuntimeError(f"control error: {reply.get('error')}")
        return reply["result"]

    def call(self, req):
        self.send(req)
        return self.recv()

    def call_raw(self, req):
        self.send(req)
        return self.recv_raw()

    def close(self):
        self.sock.close()


def proc_cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def proc_wakeups(pid):
    """Voluntary context switches of every thread of pid so far: how often
    it went to sleep waiting for something, so about its wake-ups."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


def wait_for(what, predicate, timeout):
    """Poll predicate until true; raise naming `what` after timeout s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def build_type(build):
    """meson's buildtype of the build directory, or "unknown"."""
    try:
        out = subprocess.run(["meson", "introspect", "--buildoptions", build],
                             capture_output=True, text=True, check=True).stdout
        for opt in json.loads(out):
            if opt["name"] == "buildtype":
                return opt["value"]
    except (OSError, subprocess.CalledProcessError, ValueError):
        pass
    return "unknown"


def start_sims(build, rundir, count, extra=()):
    """guest-sim processes for guests 0..count-1, PER_SIM each, ready."""
    sims = []
    for first in range(0, count, PER_SIM):
        n = min(PER_SIM, count - first)
        argv = [os.path.join(build, "bench", "guest-sim"), rundir, str(first),
                str(n), *extra]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError("guest-sim did not start")
        sims.append(p)
    return sims


def stop_all(procs):
    """SIGTERM, last started first; kill what has not exited in 20 s."""
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def fmt_us(us):
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} us"


def mmm(values, fmt):
    """"min / median / max" of values, each through fmt."""
    values = sorted(values)
    return f"{fmt(values[0])} / {fmt(statistics.median(values))} / {fmt(values[-1])}"
