#!/usr/bin/env python3
"""exec: what starting a command in the guest costs, and how fast `vmic
exec VM cat` moves bytes, side by side with the same things done locally.

One vmic-hostd and one vmic-guestd (release build) on the unix transport
in a private directory, the session service on, the agent running
commands as root. Every row is timed by this harness as a whole command
it starts and waits for (subprocess, wall clock), interleaved so that
load on the machine falls on all rows alike:

  - spawn: `true` started locally, `vmic status VM` (the CLI's start and
    one control round trip, for reference), `vmic exec VM -- true`; qemu-ga's
    guest-exec with status polling and `ssh` to a loopback sshd (a new
    connection, and one through a ControlMaster) only when they are
    installed, else the row says so. Each run takes the median of
    --count (200) starts of each.
  - throughput: --mib (512) MiB of zeros through `cat` locally in a
    pipeline (head | cat > /dev/null) and through `vmic exec VM -- cat`
    (head | vmic exec VM -- cat > /dev/null), MB/s of the whole command.

--runs (>= 3) runs; every cell is min / median / max over the runs. The
targets: the median `vmic exec VM true` within 1 ms of the local `true`,
and the cat row at least 0.8 of the local pipe row (docs/benchmarks.md
compares it with bench-stream's descriptor rows too).
Usage: run.py [--build DIR] [--runs N] [--count N] [--mib N]
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import build_type, mmm, wait_for  # noqa: E402

GUEST_CONF = "[session]\nenabled = yes\nusers = root\nmax-sessions = 64\n"
HOST_CONF = "[connection]\nretry-min = 100ms\nretry-max = 1s\n"


def start(build, d):
    hostd = os.path.join(build, "src", "host", "vmic-hostd")
    guestd = os.path.join(build, "src", "guest", "vmic-guestd")
    vmic = os.path.join(build, "src", "cli", "vmic")
    sock = os.path.join(d, "ctl.sock")
    gsock = os.path.join(d, "vm1.sock")
    with open(os.path.join(d, "hostd.conf"), "w") as f:
        f.write(HOST_CONF)
    with open(os.path.join(d, "guestd.conf"), "w") as f:
        f.write(GUEST_CONF)
    log = open(os.path.join(d, "log"), "wb")
    procs = [
        subprocess.Popen([hostd, "--config", os.path.join(d, "hostd.conf"), "--state-dir",
                          os.path.join(d, "state"), "--socket", sock, "--log-level", "warning"],
                         stdout=log, stderr=log),
        subprocess.Popen([guestd, "--config", os.path.join(d, "guestd.conf"), "--channel",
                          f"unix-listen:{gsock}", "--log-level", "warning", "--kvp-dir",
                          os.path.join(d, "kvp"), "--simulated-clock", "0"],
                         stdout=log, stderr=log),
    ]
    wait_for("the control socket", lambda: os.path.exists(sock) and os.path.exists(gsock), 15)
    ctl = [vmic, "--socket", sock]
    subprocess.run(ctl + ["add", "vm1", "--channel", f"unix:{gsock}"], check=True,
                   capture_output=True)
    subprocess.run(ctl + ["enable", "vm1", "session"], check=True, capture_output=True)
    wait_for("the session service", lambda: subprocess.run(
        ctl + ["exec", "vm1", "--", "true"], capture_output=True).returncode == 0, 20)
    return procs, ctl


def find_tool(name):
    for d in ("", "/usr/sbin/", "/usr/bin/", "/sbin/"):
        path = shutil.which(name) if not d else d + name
        if path and os.access(path, os.X_OK):
            return path
    return None


class QemuGa:
    """qemu-ga on a unix socket of the run directory (its state and pid
    files there too) and one client connection kept open, as a management
    layer keeps it: guest-exec, then guest-exec-status until exited."""

    def __init__(self, d):
        self.sock_path = os.path.join(d, "qga.sock")
        self.proc = subprocess.Popen(
            [find_tool("qemu-ga"), "-m", "unix-listen", "-p", self.sock_path,
             "-t", d, "-f", os.path.join(d, "qga.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for("qemu-ga's socket", lambda: os.path.exists(self.sock_path), 10)
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(self.sock_path)
        self.f = self.s.makefile("rwb")
        self.call("guest-ping")

    def call(self, cmd, **args):
        req = {"execute": cmd}
        if args:
            req["arguments"] = args
        self.f.write(json.dumps(req).encode() + b"\n")
        self.f.flush()
        reply = json.loads(self.f.readline())
        if "return" not in reply:
            raise RuntimeError(f"qemu-ga {cmd}: {reply}")
        return reply["return"]

    def exec_true(self):
        pid = self.call("guest-exec", path="true", **{"capture-output": True})["pid"]
        while not self.call("guest-exec-status", pid=pid).get("exited"):
            pass

    def close(self):
        self.s.close()
        self.proc.terminate()
        self.proc.wait(10)


def time_fn(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def time_cmd(argv, shell=False):
    t0 = time.perf_counter()
    r = subprocess.run(argv, shell=shell, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{argv} failed ({r.returncode}): {r.stderr[-300:]!r}")
    return dt


def spawn_rows(ctl, count, qga):
    """Median seconds of each row over count interleaved starts."""
    rows = {"local true": ["true"],
            # vmic's own start and one control round trip, no guest: what
            # of the exec row is the CLI rather than the session.
            "vmic status VM (no guest work)": ctl + ["status", "vm1"],
            "vmic exec VM true": ctl + ["exec", "vm1", "--", "true"]}
    samples = {k: [] for k in rows}
    qga_row = "qemu-ga guest-exec + status polling (its client connected)"
    if qga:
        samples[qga_row] = []
    for _ in range(count):
        for name, argv in rows.items():
            samples[name].append(time_cmd(argv))
        if qga:
            samples[qga_row].append(time_fn(qga.exec_true))
    return {k: statistics.median(v) for k, v in samples.items()}


def cat_rows(ctl, mib):
    """MB/s of the local pipe and of vmic exec cat, one after the other."""
    head = f"head -c {mib}M /dev/zero"
    vmic = " ".join(ctl)
    out = {}
    for name, cmd in (("local pipe (head, cat)", f"{head} | cat > /dev/null"),
                      ("vmic exec VM cat (head, vmic)", f"{head} | {vmic} exec vm1 -- cat > /dev/null")):
        out[name] = mib * 1048576 / 1e6 / time_cmd(cmd, shell=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build-release")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--mib", type=int, default=512)
    a = ap.parse_args()
    if a.runs < 3:
        ap.error("--runs must be at least 3: cells are min / median / max")
    d = tempfile.mkdtemp(prefix="vmic-bench-exec-")
    procs = []
    spawn, cat = {}, {}
    qga = None
    try:
        procs, ctl = start(a.build, d)
        if find_tool("qemu-ga"):
            qga = QemuGa(d)
        for run in range(a.runs):
            for k, v in spawn_rows(ctl, a.count, qga).items():
                spawn.setdefault(k, []).append(v)
            for k, v in cat_rows(ctl, a.mib).items():
                cat.setdefault(k, []).append(v)
            print(f"run {run + 1}/{a.runs} done", file=sys.stderr)
    finally:
        if qga:
            qga.close()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(d, ignore_errors=True)

    ms = lambda s: f"{s * 1000:.2f} ms"  # noqa: E731
    print(f"# exec benchmark: build {a.build} ({build_type(a.build)}), {a.runs} runs, "
          f"medians of {a.count} starts per run, {a.mib} MiB per throughput row")
    print()
    print("| spawn | min / median / max of the run medians |")
    print("|---|---:|")
    for k, v in spawn.items():
        print(f"| {k} | {mmm(v, ms)} |")
    for tool in ("qemu-ga", "sshd"):
        if not find_tool(tool):
            print(f"| {tool} row | not measured: {tool} is not installed here |")
    if find_tool("sshd"):
        print("| sshd rows | not measured: this version of the bench has no loopback "
              "sshd rows yet |")
    delta = [e - t for e, t in zip(spawn["vmic exec VM true"], spawn["local true"])]
    print()
    print("| throughput | min / median / max |")
    print("|---|---:|")
    for k, v in cat.items():
        print(f"| {k} | {mmm(v, lambda x: f'{x:,.0f} MB/s')} |")
    ratio = [c / p for c, p in zip(cat["vmic exec VM cat (head, vmic)"], cat["local pipe (head, cat)"])]
    print()
    print(f"exec true - local true, per run: {', '.join(ms(x) for x in delta)}; "
          f"target <= 1 ms: {'met' if statistics.median(delta) <= 0.001 else 'NOT met'}")
    print(f"cat ratio (vmic exec cat / local pipe), per run: "
          f"{', '.join(f'{x:.2f}' for x in ratio)}; target >= 0.8: "
          f"{'met' if statistics.median(ratio) >= 0.8 else 'NOT met'}")


if __name__ == "__main__":
    main()
