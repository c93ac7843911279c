#!/usr/bin/env python3
"""backup: how long a backup keeps the guest frozen, against the bare ioctls.

One vmic-hostd and one real vmic-guestd (heartbeat every 100 ms) on the unix
transport; the agent freezes only a loop-mounted scratch ext4 made for the
run (--freeze-only), never a filesystem of this machine. Each run measures
on that same filesystem:

  - bare: FIFREEZE then FITHAW from this script, nothing else (the floor);
  - vmic: `vmic backup VM -- true` (an empty snapshot command): the time the
    agent reports frozen, from its first FIFREEZE to its last FITHAW (the
    host's spawn of the command included);
  - vmic freeze then thaw on the control socket, no command between (the
    same measure as qemu-ga's row);
  - qemu-ga: guest-fsfreeze-freeze-list then guest-fsfreeze-thaw on a
    qemu-ga listening on a unix socket, when qemu-ga is installed;
  - the heartbeat round trip (p99, max) while backups with a 1 s snapshot
    command run back to back: the agent's loop keeps its timing while the
    blocking work runs on its thread pool.

Target (issue 17): vmic's frozen time within 10 ms of the bare calls.
--runs (>= 3) runs of --backups each; every cell is min / median / max over
the runs of each run's median. Needs root (mount). Usage:
run.py [--build DIR] [--runs N] [--backups N]
"""
import argparse
import fcntl
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
from benchlib import Control, build_type, fmt_us, mmm, stop_all, wait_for  # noqa: E402

FIFREEZE = 0xC0045877
FITHAW = 0xC0045878
TARGET_MS = 10
CONF = "[connection]\nretry-min = 100ms\nretry-max = 1s\n[heartbeat]\ninterval = 100ms\n"


def bare_us(mnt):
    """FIFREEZE + FITHAW of mnt, microseconds."""
    fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
    try:
        t0 = time.perf_counter()
        fcntl.ioctl(fd, FIFREEZE, 0)
        fcntl.ioctl(fd, FITHAW, 0)
        return (time.perf_counter() - t0) * 1e6
    finally:
        os.close(fd)


def dirty(mnt):
    """The same small amount of dirty data before each measurement."""
    with open(os.path.join(mnt, "dirty"), "wb") as f:
        f.write(os.urandom(64 * 1024))


class QemuGa:
    """qemu-ga on a unix socket, its fsfreeze commands timed."""

    def __init__(self, rundir):
        self.path = os.path.join(rundir, "qga.sock")
        self.proc = subprocess.Popen(["qemu-ga", "-m", "unix-listen", "-p", self.path,
                                      "-t", rundir], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for("qemu-ga's socket", lambda: os.path.exists(self.path), 10)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)
        self.f = self.sock.makefile("rwb")

    def call(self, cmd, args=None):
        req = {"execute": cmd}
        if args:
            req["arguments"] = args
        self.f.write(json.dumps(req).encode() + b"\n")
        self.f.flush()
        reply = json.loads(self.f.readline())
        if "error" in reply:
            raise RuntimeError(f"qemu-ga {cmd}: {reply['error']}")
        return reply["return"]

    def freeze_thaw_us(self, mnt):
        t0 = time.perf_counter()
        self.call("guest-fsfreeze-freeze-list", {"mountpoints": [mnt]})
        self.call("guest-fsfreeze-thaw")
        return (time.perf_counter() - t0) * 1e6

    def close(self):
        self.sock.close()
        stop_all([self.proc])


def backup(cli, sock, args):
    r = subprocess.run([cli, "--socket", sock, "--json", "backup", "vm1", "--", *args],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"vmic backup failed: {r.stderr}")
    ends = [json.loads(x)["result"] for x in r.stdout.splitlines() if '"result"' in x]
    return ends[-1]


def one_run(args, rundir, mnt, qga):
    build = args.build
    hostd = subprocess.Popen([os.path.join(build, "src/host/vmic-hostd"), "--config",
                              os.path.join(rundir, "hostd.conf"), "--state-dir",
                              os.path.join(rundir, "state"), "--socket",
                              os.path.join(rundir, "ctl.sock"), "--log-level", "warning"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gsock = os.path.join(rundir, "vm1.sock")
    guest = subprocess.Popen([os.path.join(build, "src/guest/vmic-guestd"), "--config",
                              os.path.join(rundir, "guest.conf"), "--channel",
                              f"unix-listen:{gsock}", "--simulated-clock", "0",
                              "--kvp-dir", os.path.join(rundir, "kvp"),
                              "--freeze-only", mnt, "--log-level", "warning"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [hostd, guest]
    sock = os.path.join(rundir, "ctl.sock")
    cli = os.path.join(build, "src/cli/vmic")
    try:
        wait_for("vmic-hostd", lambda: os.path.exists(sock), 15)
        wait_for("the agent", lambda: os.path.exists(gsock), 15)
        subprocess.run([cli, "--socket", sock, "add", "vm1", "--channel", f"unix:{gsock}"],
                       check=True, capture_output=True)
        ctl = Control(sock)
        wait_for("heartbeat OK", lambda: ctl.call({"cmd": "status", "vm": "vm1"})
                 .get("heartbeat") == "OK", 20)
        bare, vmic, ft, qg = [], [], [], []
        for _ in range(args.backups):
            dirty(mnt)
            bare.append(bare_us(mnt))
            dirty(mnt)
            vmic.append(backup(cli, sock, ["true"])["frozen_ms"] * 1000)
            dirty(mnt)
            ctl.call({"cmd": "freeze", "vm": "vm1"})
            ft.append(ctl.call({"cmd": "thaw", "vm": "vm1"})["frozen_ms"] * 1000)
            if qga:
                dirty(mnt)
                qg.append(qga.freeze_thaw_us(mnt))
        ctl.call({"cmd": "stats", "reset": True})
        for _ in range(3):
            backup(cli, sock, ["sleep", "1"])
        rtt = ctl.call({"cmd": "stats", "reset": True})["rtt_us"]
        ctl.close()
        return {"bare": statistics.median(bare), "vmic": statistics.median(vmic),
                "freeze_thaw": statistics.median(ft),
                "qga": statistics.median(qg) if qg else None,
                "p99": rtt["p99"], "max": rtt["max"], "samples": rtt["samples"]}
    finally:
        stop_all(procs)
        shutil.rmtree(os.path.join(rundir, "state"), ignore_errors=True)
        for p in ("ctl.sock", "vm1.sock"):
            if os.path.exists(os.path.join(rundir, p)):
                os.unlink(os.path.join(rundir, p))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--backups", type=int, default=20)
    args = ap.parse_args()
    if args.runs < 3:
        ap.error("--runs must be at least 3")
    if os.geteuid() != 0:
        sys.exit("bench-backup needs root: it loop-mounts a scratch ext4")
    rundir = tempfile.mkdtemp(prefix="vmic-bench-backup-")
    mnt = os.path.join(rundir, "mnt")
    image = os.path.join(rundir, "scratch.img")
    os.mkdir(mnt)
    with open(os.path.join(rundir, "hostd.conf"), "w") as f:
        f.write(CONF)
    with open(os.path.join(rundir, "guest.conf"), "w") as f:
        f.write(f"[backup]\nhooks-dir = {os.path.join(rundir, 'no-hooks')}\n")
    with open(image, "wb") as f:
        f.truncate(64 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                    image], check=True)
    subprocess.run(["mount", "-o", "loop", image, mnt], check=True)
    qga = QemuGa(rundir) if shutil.which("qemu-ga") else None
    runs = []
    try:
        for i in range(args.runs):
            runs.append(one_run(args, rundir, mnt, qga))
            print(f"run {i + 1}/{args.runs} done", file=sys.stderr)
    finally:
        if qga:
            qga.close()
        subprocess.run(["fsfreeze", "-u", mnt], capture_output=True)
        subprocess.run(["umount", mnt], check=False)
        shutil.rmtree(rundir, ignore_errors=True)

    def col(key):
        return [r[key] for r in runs]

    print(f"backup: frozen time on one scratch ext4 (loop), build {build_type(args.build)}, "
          f"{args.runs} runs x {args.backups} backups; min / median / max of each run's median")
    print(f"{'what':44} {'frozen (first FIFREEZE..last FITHAW)':>40}")
    print(f"{'bare FIFREEZE + FITHAW (this script)':44} {mmm(col('bare'), fmt_us):>40}")
    print(f"{'vmic backup VM -- true (agent reports)':44} {mmm(col('vmic'), fmt_us):>40}")
    print(f"{'vmic freeze + thaw, control socket':44} {mmm(col('freeze_thaw'), fmt_us):>40}")
    if qga:
        print(f"{'qemu-ga fsfreeze-freeze-list + thaw':44} {mmm(col('qga'), fmt_us):>40}")
    else:
        print(f"{'qemu-ga':44} {'not installed (row omitted)':>40}")
    over = [r["vmic"] - r["bare"] for r in runs]
    print(f"{'vmic over bare':44} {mmm(over, fmt_us):>40}")
    print(f"{'heartbeat p99 during 1 s backups':44} {mmm(col('p99'), fmt_us):>40}")
    print(f"{'heartbeat max during 1 s backups':44} {mmm(col('max'), fmt_us):>40}")
    verdict = "met" if statistics.median(over) <= TARGET_MS * 1000 else "MISSED"
    print(f"target: vmic within {TARGET_MS} ms of bare: {verdict}")


if __name__ == "__main__":
    main()
