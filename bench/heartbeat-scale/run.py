#!/usr/bin/env python3
"""heartbeat-scale: one vmic-hostd against N simulated guests.

For each N (default 100, 1000, 10000) this starts guest-sim processes
(many guests per process, real protocol over unix sockets), a fresh
vmic-hostd, registers N VMs through the control socket, waits until every
heartbeat reads OK, and then measures over a window at the default 1 s
interval:

  - hostd CPU, % of one core (utime+stime from /proc/PID/stat),
  - hostd RSS per VM: (RSS with N VMs - RSS with none) / N,
  - heartbeat round trip p50/p99 as hostd measures it (`stats`).

It prints a table with the targets (10,000 VMs: < 10 % of a core and
< 32 KiB per VM). Usage: run.py [--build DIR] [--counts 100,1000] [--window S]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PER_SIM = 4000  # guests per simulator process: 2 fds each, under ulimits
TARGET_CPU = 10.0
TARGET_KIB_PER_VM = 32.0


class Control:
    """A control-socket client that pipelines requests (docs/control.md)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""

    def send(self, req):
        self.sock.sendall(json.dumps(req).encode() + b"\n")

    def recv(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("vmic-hostd closed the control socket")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(f"control error: {reply.get('error')}")
        return reply["result"]

    def call(self, req):
        self.send(req)
        return self.recv()


def proc_cpu_seconds(pid):
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


def wait_for(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def start_sims(build, rundir, count):
    sims = []
    for first in range(0, count, PER_SIM):
        n = min(PER_SIM, count - first)
        p = subprocess.Popen(
            [os.path.join(build, "bench", "guest-sim"), rundir, str(first), str(n)],
            stdout=subprocess.PIPE, text=True)
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError("guest-sim did not start")
        sims.append(p)
    return sims


def all_ok(ctl, count):
    vms = ctl.call({"cmd": "list"})["vms"]
    ok = sum(1 for v in vms if v["heartbeat"] == "OK")
    return len(vms) == count and ok == count


def measure(build, count, window):
    rundir = tempfile.mkdtemp(prefix="vmic-bench-",
                              dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    procs = []
    try:
        sims = start_sims(build, rundir, count)
        procs += sims
        sock = os.path.join(rundir, "ctl.sock")
        hostd = subprocess.Popen(
            [os.path.join(build, "src", "host", "vmic-hostd"),
             "--state-dir", os.path.join(rundir, "state"), "--socket", sock,
             "--config", "/dev/null", "--log-level", "warning"],
            stderr=subprocess.DEVNULL)
        procs.append(hostd)
        wait_for("the control socket", lambda: os.path.exists(sock), 20)
        ctl = Control(sock)
        time.sleep(1)
        rss0 = proc_rss_kib(hostd.pid)
        for i in range(count):
            ctl.send({"cmd": "add", "vm": f"vm{i:05d}",
                      "channel": f"unix:{rundir}/vm-{i:05d}.sock"})
        for i in range(count):
            ctl.recv()
        wait_for(f"{count} heartbeats OK", lambda: all_ok(ctl, count),
                 60 + count / 50)
        time.sleep(3)  # settle: first connections, event batches
        before = ctl.call({"cmd": "stats", "reset": True})
        cpu0, t0 = proc_cpu_seconds(hostd.pid), time.monotonic()
        time.sleep(window)
        cpu1, t1 = proc_cpu_seconds(hostd.pid), time.monotonic()
        stats = ctl.call({"cmd": "stats", "reset": True})
        rss = proc_rss_kib(hostd.pid)
        if not all_ok(ctl, count):
            raise RuntimeError("heartbeats were lost during the window")
        return {
            "n": count,
            "cpu": 100.0 * (cpu1 - cpu0) / (t1 - t0),
            "rss_mib": rss / 1024.0,
            "kib_per_vm": (rss - rss0) / count,
            "p50": stats["rtt_us"]["p50"],
            "p99": stats["rtt_us"]["p99"],
            # The counters are cumulative; the percentiles are per window.
            "replies_per_s": (stats["heartbeat_replies"] - before["heartbeat_replies"])
            / (t1 - t0),
        }
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(rundir, ignore_errors=True)


def fmt_us(us):
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us} us"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--counts", default="100,1000,10000")
    ap.add_argument("--window", type=float, default=20.0)
    args = ap.parse_args()
    rows = [measure(args.build, int(n), args.window) for n in args.counts.split(",")]
    print(f"heartbeat-scale: vmic-hostd, default 1 s interval, {args.window:.0f} s window, "
          f"{os.cpu_count()} CPUs")
    print()
    print("| VMs | hostd CPU (% of a core) | hostd RSS | RSS per VM | RTT p50 | RTT p99 | replies/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']:,} | {r['cpu']:.1f} % | {r['rss_mib']:.1f} MiB | "
              f"{r['kib_per_vm']:.1f} KiB | {fmt_us(r['p50'])} | {fmt_us(r['p99'])} | "
              f"{r['replies_per_s']:,.0f} |")
    big = max(rows, key=lambda r: r["n"])
    ok_cpu = big["cpu"] < TARGET_CPU
    ok_mem = big["kib_per_vm"] < TARGET_KIB_PER_VM
    print()
    print(f"target at {big['n']:,} VMs: CPU < {TARGET_CPU:.0f} % of a core: "
          f"{'met' if ok_cpu else 'MISSED'} ({big['cpu']:.1f} %); "
          f"RSS < {TARGET_KIB_PER_VM:.0f} KiB per VM: "
          f"{'met' if ok_mem else 'MISSED'} ({big['kib_per_vm']:.1f} KiB)")
    return 0 if ok_cpu and ok_mem else 1


if __name__ == "__main__":
    sys.exit(main())
