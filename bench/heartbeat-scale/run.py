#!/usr/bin/env python3
"""heartbeat-scale: one vmic-hostd against N simulated guests, in steady state.

For each N (default 10,000) and each of --runs runs (default 3), this starts
guest-sim processes (many guests per process, real protocol over unix
sockets), a fresh vmic-hostd with its state directory on a real disk (under
--state-root, default /var/tmp; never /dev/shm), registers N VMs through the
control socket, waits until every heartbeat reads OK, and then runs for
--duration seconds (default 300) at the default 1 s interval while a client
runs `vmic list` every second, as monitoring would. It measures:

  - hostd CPU in % of one core over the whole run (utime + stime),
  - hostd RSS per VM: (RSS with N VMs - RSS with none) / N,
  - heartbeat round trip p50/p99 as hostd measures it (`stats`), for the
    first and for the last minute of the run,
  - heartbeat replies per second, checked equal to N (within 0.5 %).

  - hostd's wake-ups per second (its voluntary context switches: with the
    timing wheel at most 250 a second come from timers, the rest from
    replies and control traffic; against N replies a second this says
    how many replies one wake-up reads),
  - the simulated guests' own CPU per simulated agent (guest-sim), so that
    the guest side of the traffic is seen too.

After each run, `fanout` (bench/heartbeat-scale/fanout.c) does the same
traffic with nothing else for --floor-seconds (default 60), twice: N
connections, one 32-byte write and one read per connection per second,
first with one libuv timer per connection ticking at its own phase
("spread": one wake-up per connection), then with one timer for all of
them waking once per 4 ms slot ("slotted", as hostd's timing wheel). Their
CPU is what this machine charges for the bare traffic under each schedule;
the ratios hostd / fanout are comparable across machines, the absolute
figures are not.

With 2 CPUs or more to use, vmic-hostd runs on the first and everything
else (simulators, `vmic list` at nice 19, this script, the echo side of
fanout) on the second, apart as a host's daemon and its guests' vCPUs are:
busy processes sharing two CPUs preempt each other thousands of times a
second, and the run then measures the scheduler (p99 grew from 1 ms to
20 ms within three minutes when they shared). --no-pin turns that off.

The table gives min/median/max over the runs, the build type and the
targets (medians): hostd CPU at most 1.2x the slotted fanout of the same
run and below the spread fanout; p99 of the last minute at most 1.5x the
slotted fanout's p99 and under 5 ms; p50 steady (last minute within 1.2x
of the first); replies/s equal to N; RSS per VM at most 8 KiB.

--floor instead compares one VM (the real vmic-guestd over a unix socket)
with a bare AF_UNIX ping-pong at the same pace (bench/pingpong), in
interleaved windows, and prints the ratio of the p50 round trips
(target: at most 1.5).

Usage: run.py [--build DIR] [--counts 10000] [--duration 300] [--runs 3]
              [--state-root DIR] [--floor-seconds 60] [--no-pin]
       run.py --floor [--windows 3] [--window 60]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import (Control, build_type, fmt_us, mmm, proc_cpu_seconds,  # noqa: E402
                      proc_rss_kib, proc_wakeups, start_sims, stop_all, wait_for)

TARGET_P99_US = 5000
TARGET_KIB_PER_VM = 8.0
TARGET_FLOOR_RATIO = 1.5
TARGET_SLOTTED_RATIO = 1.2
TARGET_P99_RATIO = 1.5
TARGET_STEADY = 1.2
HOSTD_CPU, OTHERS_CPU = 0, 1  # the first two CPUs this script may use


def all_ok(ctl, count):
    vms = ctl.call({"cmd": "list"})["vms"]
    ok = sum(1 for v in vms if v["heartbeat"] == "OK")
    return len(vms) == count and ok == count


def pin(pid, cpu):
    """Every thread of pid onto cpu (threads made later inherit it)."""
    subprocess.run(["taskset", "-a", "-cp", str(cpu), str(pid)], check=True,
                   stdout=subprocess.DEVNULL)


def fanout_floor(build, count, seconds, rundir, pinned, slotted=False):
    """CPU % and RTT of the bare traffic for count connections."""
    cpus = [str(HOSTD_CPU), str(OTHERS_CPU)] if pinned else []
    mode = ["--slotted"] if slotted else []
    out = subprocess.run([os.path.join(build, "bench", "fanout"), *mode, rundir,
                          str(count), str(int(seconds)), *cpus],
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[1]), int(out[3]), int(out[5])


class Lister(threading.Thread):
    """`vmic list` once a second, as a monitoring system would.

    At nice 19: it shares CPU 1 with the simulated guests, whose replies
    must not wait behind it (real guests run on their own vCPUs)."""

    def __init__(self, vmic, sock):
        super().__init__(daemon=True)
        self.argv = ["nice", "-n", "19", vmic, "--socket", sock, "list", "--json"]
        self.stop = threading.Event()
        self.runs = 0
        self.failures = 0

    def run(self):
        while not self.stop.wait(1.0):
            r = subprocess.run(self.argv, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            self.runs += 1
            self.failures += r.returncode != 0


def measure(build, count, duration, state_root, pinned, floor_seconds):
    rundir = tempfile.mkdtemp(prefix="vmic-bench-", dir=state_root)
    procs = []
    try:
        sims = start_sims(build, rundir, count)
        procs += sims
        if pinned:
            for p in sims:
                pin(p.pid, OTHERS_CPU)
        sock = os.path.join(rundir, "ctl.sock")
        hostd = subprocess.Popen(
            [os.path.join(build, "src", "host", "vmic-hostd"),
             "--state-dir", os.path.join(rundir, "state"), "--socket", sock,
             "--config", "/dev/null", "--log-level", "warning"],
            stderr=subprocess.DEVNULL)
        procs.append(hostd)
        if pinned:
            pin(hostd.pid, HOSTD_CPU)
        wait_for("the control socket", lambda: os.path.exists(sock), 20)
        ctl = Control(sock)
        time.sleep(1)
        rss0 = proc_rss_kib(hostd.pid)
        for first in range(0, count, 500):  # read replies as they come
            last = min(first + 500, count)
            for i in range(first, last):
                ctl.send({"cmd": "add", "vm": f"vm{i:05d}",
                          "channel": f"unix:{rundir}/vm-{i:05d}.sock"})
            for i in range(first, last):
                ctl.recv()
        wait_for(f"{count} heartbeats OK", lambda: all_ok(ctl, count),
                 60 + count / 50)
        time.sleep(5)  # settle: first connections, event batches
        lister = Lister(os.path.join(build, "src", "cli", "vmic"), sock)
        lister.start()
        minute = min(60.0, duration / 3)
        start = ctl.call({"cmd": "stats", "reset": True})
        cpu0, t0 = proc_cpu_seconds(hostd.pid), time.monotonic()
        sim0 = sum(proc_cpu_seconds(p.pid) for p in sims)
        wake0 = proc_wakeups(hostd.pid)
        time.sleep(minute)
        first_min = ctl.call({"cmd": "stats", "reset": True})
        time.sleep(duration - 2 * minute)
        ctl.call({"cmd": "stats", "reset": True})
        time.sleep(minute)
        last_min = ctl.call({"cmd": "stats", "reset": True})
        cpu1, t1 = proc_cpu_seconds(hostd.pid), time.monotonic()
        sim1 = sum(proc_cpu_seconds(p.pid) for p in sims)
        wake1 = proc_wakeups(hostd.pid)
        lister.stop.set()
        lister.join()
        rss = proc_rss_kib(hostd.pid)
        replies = (last_min["heartbeat_replies"] - start["heartbeat_replies"]) / (t1 - t0)
        if not all_ok(ctl, count):
            raise RuntimeError("heartbeats were lost during the run")
        stop_all(procs)
        procs = []
        floor_cpu, floor_p50, floor_p99 = fanout_floor(
            build, count, floor_seconds, rundir, pinned)
        slot_cpu, slot_p50, slot_p99 = fanout_floor(
            build, count, floor_seconds, rundir, pinned, slotted=True)
        return {
            "cpu": 100.0 * (cpu1 - cpu0) / (t1 - t0),
            "wakeups_per_s": (wake1 - wake0) / (t1 - t0),
            "sim_us_per_agent_s": 1e6 * (sim1 - sim0) / (t1 - t0) / count,
            "kib_per_vm": (rss - rss0) / count,
            "rss_mib": rss / 1024.0,
            "p50_first": first_min["rtt_us"]["p50"],
            "p99_first": first_min["rtt_us"]["p99"],
            "p50_last": last_min["rtt_us"]["p50"],
            "p99_last": last_min["rtt_us"]["p99"],
            "replies_per_s": replies,
            "lists": lister.runs,
            "list_failures": lister.failures,
            "fanout_cpu": floor_cpu,
            "fanout_p50": floor_p50,
            "fanout_p99": floor_p99,
            "slotted_cpu": slot_cpu,
            "slotted_p50": slot_p50,
            "slotted_p99": slot_p99,
        }
    finally:
        stop_all(procs)
        shutil.rmtree(rundir, ignore_errors=True)


def mmm_rows(rows, key, fmt):
    return mmm([r[key] for r in rows], fmt)


def scale(args):
    global HOSTD_CPU, OTHERS_CPU
    btype = build_type(args.build)
    cpus = sorted(os.sched_getaffinity(0))
    pinned = not args.no_pin and len(cpus) >= 2
    if pinned:
        HOSTD_CPU, OTHERS_CPU = cpus[0], cpus[1]
        os.sched_setaffinity(0, {OTHERS_CPU})  # children inherit it
    where = (f"hostd pinned to CPU {HOSTD_CPU}, the rest to CPU {OTHERS_CPU}"
             if pinned else "not pinned")
    print(f"heartbeat-scale: vmic-hostd ({btype} build), 1 s interval, "
          f"{args.duration:.0f} s runs with `vmic list` every second, "
          f"state in {args.state_root}, {os.cpu_count()} CPUs ({where}), "
          f"{args.runs} runs: min / median / max", flush=True)
    ok = True
    for n in [int(x) for x in args.counts.split(",")]:
        rows = []
        for i in range(args.runs):
            r = measure(args.build, n, args.duration, args.state_root, pinned,
                        args.floor_seconds)
            r["ratio"] = r["cpu"] / max(0.01, r["fanout_cpu"])
            r["slotted_ratio"] = r["cpu"] / max(0.01, r["slotted_cpu"])
            r["p99_ratio"] = r["p99_last"] / max(1, r["slotted_p99"])
            print(f"# N={n} run {i + 1}: {json.dumps(r)}", flush=True)
            rows.append(r)
        pct = lambda v: f"{v:.1f} %"  # noqa: E731
        print()
        print(f"| {n:,} VMs | min / median / max |")
        print("|---|---:|")
        print(f"| hostd CPU (% of a core) | {mmm_rows(rows, 'cpu', pct)} |")
        print(f"| RSS per VM | {mmm_rows(rows, 'kib_per_vm', lambda v: f'{v:.1f} KiB')} |")
        print(f"| RTT p50, first minute | {mmm_rows(rows, 'p50_first', fmt_us)} |")
        print(f"| RTT p99, first minute | {mmm_rows(rows, 'p99_first', fmt_us)} |")
        print(f"| RTT p50, last minute | {mmm_rows(rows, 'p50_last', fmt_us)} |")
        print(f"| RTT p99, last minute | {mmm_rows(rows, 'p99_last', fmt_us)} |")
        print(f"| heartbeat replies/s | {mmm_rows(rows, 'replies_per_s', lambda v: f'{v:,.0f}')} |")
        print(f"| fanout, spread (one wake-up per connection): CPU | {mmm_rows(rows, 'fanout_cpu', pct)} |")
        print(f"| fanout, spread: RTT p50 ; p99 | {mmm_rows(rows, 'fanout_p50', fmt_us)} ; "
              f"{mmm_rows(rows, 'fanout_p99', fmt_us)} |")
        print(f"| fanout, slotted (one wake-up per 4 ms slot): CPU | {mmm_rows(rows, 'slotted_cpu', pct)} |")
        print(f"| fanout, slotted: RTT p50 ; p99 | {mmm_rows(rows, 'slotted_p50', fmt_us)} ; "
              f"{mmm_rows(rows, 'slotted_p99', fmt_us)} |")
        print(f"| hostd CPU / spread fanout CPU | {mmm_rows(rows, 'ratio', lambda v: f'{v:.2f}')} |")
        print(f"| hostd CPU / slotted fanout CPU | {mmm_rows(rows, 'slotted_ratio', lambda v: f'{v:.2f}')} |")
        print(f"| hostd p99 (last minute) / slotted fanout p99 | {mmm_rows(rows, 'p99_ratio', lambda v: f'{v:.2f}')} |")
        print(f"| hostd wake-ups/s (voluntary context switches) | {mmm_rows(rows, 'wakeups_per_s', lambda v: f'{v:,.0f}')} |")
        print(f"| guest-sim CPU per simulated agent | {mmm_rows(rows, 'sim_us_per_agent_s', lambda v: f'{v:.1f} us/s')} |")
        print(f"| `vmic list` calls (failed) | {mmm_rows(rows, 'lists', lambda v: f'{v}')} "
              f"({sum(r['list_failures'] for r in rows)}) |")
        med = {k: statistics.median(r[k] for r in rows)
               for k in ("cpu", "kib_per_vm", "p99_first", "p99_last", "p50_first",
                         "p50_last", "fanout_cpu", "slotted_cpu", "slotted_p99",
                         "ratio", "slotted_ratio", "p99_ratio")}
        replies_ok = all(abs(r["replies_per_s"] - n) <= 0.005 * n for r in rows)
        checks = [
            (f"replies/s equal to N={n:,} (within 0.5 %) in every run", replies_ok),
            (f"CPU at most {TARGET_SLOTTED_RATIO}x the slotted fanout of the same run "
             f"(median ratio {med['slotted_ratio']:.2f})",
             med["slotted_ratio"] <= TARGET_SLOTTED_RATIO),
            (f"CPU below the spread fanout's (median {med['cpu']:.1f} % against "
             f"{med['fanout_cpu']:.1f} %)", med["cpu"] < med["fanout_cpu"]),
            (f"p99 of the last minute at most {TARGET_P99_RATIO}x the slotted fanout's "
             f"(median ratio {med['p99_ratio']:.2f})", med["p99_ratio"] <= TARGET_P99_RATIO),
            (f"p99 < {fmt_us(TARGET_P99_US)} in the last minute "
             f"(median {fmt_us(med['p99_last'])}; first minute {fmt_us(med['p99_first'])})",
             med["p99_last"] < TARGET_P99_US),
            (f"steady: p50 of the last minute within {TARGET_STEADY}x of the first's "
             f"(medians {fmt_us(med['p50_last'])} and {fmt_us(med['p50_first'])})",
             med["p50_last"] <= TARGET_STEADY * med["p50_first"]),
            (f"RSS at most {TARGET_KIB_PER_VM:.0f} KiB per VM (median {med['kib_per_vm']:.1f} KiB)",
             med["kib_per_vm"] <= TARGET_KIB_PER_VM),
        ]
        print()
        for text, good in checks:
            print(f"{'PASS' if good else 'FAIL'} {text}")
            ok = ok and good
    return 0 if ok else 1


def hostd_p50_one_vm(build, seconds):
    """p50 of the heartbeat RTT of one VM with the real agent, over seconds."""
    rundir = tempfile.mkdtemp(prefix="vmic-floor-")
    procs = []
    try:
        gsock = os.path.join(rundir, "g.sock")
        sock = os.path.join(rundir, "ctl.sock")
        procs.append(subprocess.Popen(
            [os.path.join(build, "src", "guest", "vmic-guestd"), "--config", "/dev/null",
             "--channel", f"unix-listen:{gsock}", "--log-level", "warning",
             # Never this machine's clock or its /var/lib/hyperv.
             "--simulated-clock", "0", "--kvp-dir", os.path.join(rundir, "kvp")],
            stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(
            [os.path.join(build, "src", "host", "vmic-hostd"), "--config", "/dev/null",
             "--state-dir", os.path.join(rundir, "state"), "--socket", sock,
             "--log-level", "warning"], stderr=subprocess.DEVNULL))
        wait_for("both daemons", lambda: os.path.exists(gsock) and os.path.exists(sock), 20)
        ctl = Control(sock)
        ctl.call({"cmd": "add", "vm": "vm1", "channel": f"unix:{gsock}"})
        wait_for("heartbeat OK", lambda: all_ok(ctl, 1), 20)
        time.sleep(2)
        ctl.call({"cmd": "stats", "reset": True})
        time.sleep(seconds)
        st = ctl.call({"cmd": "stats", "reset": True})
        return st["rtt_us"]["p50"], st["rtt_us"]["samples"]
    finally:
        stop_all(procs)
        shutil.rmtree(rundir, ignore_errors=True)


def floor(args):
    btype = build_type(args.build)
    vmic, bare = [], []
    for _ in range(args.windows):
        p50, n = hostd_p50_one_vm(args.build, args.window)
        vmic.append(p50)
        out = subprocess.run([os.path.join(args.build, "bench", "pingpong"),
                              str(int(args.window)), "1000"],
                             capture_output=True, text=True, check=True).stdout.split()
        bare.append(int(out[1]))
        print(f"# window: vmic p50 {p50} us ({n} samples), ping-pong p50 {out[1]} us",
              flush=True)
    ratio = statistics.median(vmic) / max(1, statistics.median(bare))
    print(f"heartbeat floor: one VM over unix ({btype} build), 1 s pace, "
          f"{args.windows} interleaved windows of {args.window:.0f} s: min / median / max")
    print()
    print("| round trip p50 | min / median / max |")
    print("|---|---:|")
    print(f"| vmic heartbeat (hostd <-> vmic-guestd) | {min(vmic)} / "
          f"{statistics.median(vmic):.0f} / {max(vmic)} us |")
    print(f"| bare AF_UNIX ping-pong (two libuv loops) | {min(bare)} / "
          f"{statistics.median(bare):.0f} / {max(bare)} us |")
    print()
    good = ratio <= TARGET_FLOOR_RATIO
    print(f"{'PASS' if good else 'FAIL'} heartbeat / ping-pong at most "
          f"{TARGET_FLOOR_RATIO}x")
    print(f"ratio {ratio:.2f}")
    return 0 if good else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build-release")
    ap.add_argument("--counts", default="10000")
    ap.add_argument("--duration", type=float, default=300.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--state-root", default="/var/tmp")
    ap.add_argument("--floor-seconds", type=float, default=60.0)
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--floor", action="store_true")
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--window", type=float, default=60.0)
    args = ap.parse_args()
    return floor(args) if args.floor else scale(args)


if __name__ == "__main__":
    sys.exit(main())
