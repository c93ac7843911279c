#!/usr/bin/env python3
"""make bench-copy: vmic copy both ways against a protocol-free copy.

One vmic-hostd and one real vmic-guestd on the unix transport (release
build), every file on tmpfs (/dev/shm unless --dir) and in the page cache.
Each run, interleaved, copies one file of --size-mb (1 GiB):

- protocol-free: bench/unixcopy, two processes and one AF_UNIX socket,
  read() into the socket, write() out of it, fsync;
- vmic copy VM SRC DST (host to guest) and vmic copy --from-guest (guest
  to host), timed from the CLI's start to its exit (the process, the
  connection, the hash on both sides, the fsync and rename included);
- qemu-ga's guest-file-write and guest-file-read (a plain process with
  -m unix-listen; a --qga-mb file, 256 MiB, in 4 MiB base64 commands)
  when qemu-ga is installed, "not installed" otherwise;
- scp to a loopback sshd: "not installed" without sshd (with one: "not
  run", that run is not written yet);

then --files (10,000) files of 4 KiB both ways, against `tar c | tar x`
through a pipe, each run starting with another case. Meanwhile the
agent's VmRSS is sampled every 20 ms, and the heartbeat (every 100 ms)
round trips recorded.
Prints min / median / max of --runs (3) and the ratios of the medians;
exit status 0 when vmic reaches 0.8 of the protocol-free copy both ways.
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import Control, build_type, mmm, proc_rss_kib, wait_for  # noqa: E402

TARGET = 0.8


class Rig:
    def __init__(self, args, rundir):
        self.args = args
        self.dir = rundir
        b = args.build
        self.hostd = os.path.join(b, "src", "host", "vmic-hostd")
        self.guestd = os.path.join(b, "src", "guest", "vmic-guestd")
        self.vmic = os.path.join(b, "src", "cli", "vmic")
        self.unixcopy = os.path.join(b, "bench", "unixcopy")
        self.sock = os.path.join(rundir, "ctl.sock")
        self.gin = os.path.join(rundir, "guest-in")
        self.gout = os.path.join(rundir, "guest-out")
        os.makedirs(self.gin)
        os.makedirs(self.gout)
        self.procs = []

    def start(self):
        conf = os.path.join(self.dir, "hostd.conf")
        open(conf, "w").close()
        self.procs.append(subprocess.Popen(
            [self.hostd, "--state-dir", os.path.join(self.dir, "state"), "--socket",
             self.sock, "--config", conf, "--log-level", "warning"],
            stderr=subprocess.DEVNULL))
        wait_for("the control socket", lambda: os.path.exists(self.sock), 30)
        gconf = os.path.join(self.dir, "guestd.conf")
        with open(gconf, "w") as f:
            f.write(f"[filecopy]\nenabled = yes\nwrite-dirs = {self.gin}\n"
                    f"read-dirs = {self.gout}\n")
        path = os.path.join(self.dir, "vm1.sock")
        self.agent = subprocess.Popen(
            [self.guestd, "--config", gconf, "--channel", f"unix-listen:{path}",
             "--kvp-dir", os.path.join(self.dir, "kvp"), "--log-level", "warning",
             "--simulated-clock", "0"], stderr=subprocess.DEVNULL)
        self.procs.append(self.agent)
        wait_for("the agent's socket", lambda: os.path.exists(path), 10)
        time.sleep(0.2)
        self.ctl = Control(self.sock)
        self.ctl.call({"cmd": "add", "vm": "vm1", "channel": f"unix:{path}"})
        self.ctl.call({"cmd": "enable", "vm": "vm1", "service": "filecopy"})
        self.ctl.call({"cmd": "set", "vm": "vm1", "service": "heartbeat",
                       "settings": {"interval": "100ms"}})
        wait_for("File Copy OK", self.ready, 30)

    def ready(self):
        st = self.ctl.call({"cmd": "status", "vm": "vm1"})
        return any(s["name"] == "filecopy" and s["primary_status"] == "OK"
                   for s in st["services"])

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class RssWatch:
    """The agent's peak VmRSS while copies run."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            try:
                self.peak = max(self.peak, proc_rss_kib(self.pid))
            except (OSError, RuntimeError):
                return
            time.sleep(0.02)

    def end(self):
        self.stop = True
        self.t.join()
        return self.peak


class HbWatch:
    """The heartbeat's round trips while copies run: each new reply's
    rtt_us, read from `status` every 20 ms on a connection of its own."""

    def __init__(self, sock):
        self.ctl = Control(sock)
        self.rtts = []
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        last = None
        while not self.stop:
            hb = self.ctl.call({"cmd": "status", "vm": "vm1", "service": "heartbeat"})
            if hb.get("last_reply_us") != last and hb.get("rtt_us") is not None:
                last = hb.get("last_reply_us")
                self.rtts.append(hb["rtt_us"])
            time.sleep(0.02)

    def end(self):
        self.stop = True
        self.t.join()
        self.ctl.close()
        return self.rtts


class Qga:
    """qemu-ga as a plain process on a unix socket (-m unix-listen), its
    files written and read the way its clients do: JSON commands with the
    data in base64, 4 MiB a command."""

    CHUNK = 4 << 20

    def __init__(self, rundir):
        import socket
        self.path = os.path.join(rundir, "qga.sock")
        self.p = subprocess.Popen(["qemu-ga", "-m", "unix-listen", "-p", self.path,
                                   "-t", rundir], stderr=subprocess.DEVNULL)
        wait_for("qemu-ga's socket", lambda: os.path.exists(self.path), 10)
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(self.path)
        self.f = self.s.makefile("rwb")

    def call(self, cmd, **args):
        import json
        self.f.write(json.dumps({"execute": cmd, "arguments": args}).encode() + b"\n")
        self.f.flush()
        while True:
            o = json.loads(self.f.readline())
            if "return" in o:
                return o["return"]
            if "error" in o:
                raise RuntimeError(f"qemu-ga {cmd}: {o['error']}")

    def write(self, src, dst):
        import base64
        t = time.monotonic()
        h = self.call("guest-file-open", path=dst, mode="w")
        with open(src, "rb") as f:
            for chunk in iter(lambda: f.read(self.CHUNK), b""):
                self.call("guest-file-write", handle=h,
                          **{"buf-b64": base64.b64encode(chunk).decode()})
        self.call("guest-file-close", handle=h)
        return time.monotonic() - t

    def read(self, src, dst):
        import base64
        t = time.monotonic()
        h = self.call("guest-file-open", path=src, mode="r")
        with open(dst, "wb") as f:
            while True:
                r = self.call("guest-file-read", handle=h, count=self.CHUNK)
                f.write(base64.b64decode(r["buf-b64"]))
                if r.get("eof"):
                    break
        self.call("guest-file-close", handle=h)
        return time.monotonic() - t

    def close(self):
        self.s.close()
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(10)


def timed(argv):
    t = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t


def make_file(path, size):
    block = os.urandom(16 << 20)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n


def sshd_running():
    return shutil.which("sshd") is not None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build-release")
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default="/dev/shm")
    ap.add_argument("--qga-mb", type=int, default=256,
                    help="size of qemu-ga's file (it moves ~30 MB/s)")
    args = ap.parse_args()
    size = args.size_mb << 20
    rundir = tempfile.mkdtemp(prefix="vmic-bench-copy-", dir=args.dir)
    rig = Rig(args, rundir)
    res = {k: [] for k in ("free", "h2g", "g2h", "tar", "small_h2g", "small_g2h",
                           "qga_w", "qga_r")}
    qga = None
    rss, rtts = [], []
    try:
        rig.start()
        src = os.path.join(rundir, "src")
        make_file(src, size)
        shutil.copy(src, os.path.join(rig.gout, "src"))
        small = os.path.join(rundir, "small")
        os.makedirs(small)
        block = os.urandom(4096)
        for i in range(args.files):
            with open(os.path.join(small, f"f{i:05d}"), "wb") as f:
                f.write(block)
        shutil.copytree(small, os.path.join(rig.gout, "small"))
        names = sorted(os.listdir(small))
        dst = os.path.join(rundir, "dst")

        def free():
            out = subprocess.run([rig.unixcopy, src, dst], check=True,
                                 capture_output=True, text=True).stdout
            res["free"].append(size / float(out))
            os.unlink(dst)

        def h2g():
            w = RssWatch(rig.agent.pid)
            hb = HbWatch(rig.sock)
            res["h2g"].append(size / timed([rig.vmic, "--socket", rig.sock, "copy", "vm1",
                                            src, os.path.join(rig.gin, "dst")]))
            rss.append(w.end())
            rtts.extend(hb.end())
            os.unlink(os.path.join(rig.gin, "dst"))

        def g2h():
            w = RssWatch(rig.agent.pid)
            hb = HbWatch(rig.sock)
            res["g2h"].append(size / timed([rig.vmic, "--socket", rig.sock, "copy", "vm1",
                                            "--from-guest", os.path.join(rig.gout, "src"),
                                            dst]))
            rss.append(w.end())
            rtts.extend(hb.end())
            os.unlink(dst)

        def tar():
            tdst = os.path.join(rundir, "tar-dst")
            os.makedirs(tdst)
            res["tar"].append(args.files / timed(
                ["sh", "-c", f"tar -C '{small}' -cf - . | tar -C '{tdst}' -xf -"]))
            shutil.rmtree(tdst)

        def small_h2g():
            sdst = os.path.join(rig.gin, "small")
            os.makedirs(sdst)
            res["small_h2g"].append(args.files / timed(
                [rig.vmic, "--socket", rig.sock, "copy", "vm1",
                 *[os.path.join(small, n) for n in names], sdst]))
            shutil.rmtree(sdst)

        def small_g2h():
            hdst = os.path.join(rundir, "host-small")
            os.makedirs(hdst)
            res["small_g2h"].append(args.files / timed(
                [rig.vmic, "--socket", rig.sock, "copy", "vm1", "--from-guest",
                 *[os.path.join(rig.gout, "small", n) for n in names], hdst]))
            shutil.rmtree(hdst)

        qsrc = os.path.join(rundir, "qga-src")
        if shutil.which("qemu-ga"):
            qga = Qga(rundir)
            make_file(qsrc, args.qga_mb << 20)

        def qga_w():
            if qga:
                res["qga_w"].append((args.qga_mb << 20) / qga.write(qsrc, dst))
                os.unlink(dst)

        def qga_r():
            if qga:
                res["qga_r"].append((args.qga_mb << 20) / qga.read(qsrc, dst))
                os.unlink(dst)

        # Interleaved, and each run starts with another case: on a shared
        # machine a slow moment (or tmpfs allocating fresh pages) then
        # hits each case once, not always the same one.
        big = [free, h2g, g2h, qga_w, qga_r]
        many = [tar, small_h2g, small_g2h]
        for run in range(args.runs):
            for case in big[run % 5:] + big[:run % 5]:
                case()
            for case in many[run % 3:] + many[:run % 3]:
                case()
    finally:
        if qga:
            qga.close()
        rig.stop()
        shutil.rmtree(rundir, ignore_errors=True)

    def mbs(v):
        return f"{v / 1e6:,.0f} MB/s"

    def fps(v):
        return f"{v:,.0f} files/s"

    med = {k: statistics.median(v) for k, v in res.items() if v}
    ssh = "not run (sshd present)" if sshd_running() else "not installed"

    print(f"bench-copy: {args.size_mb} MiB file, {args.files} files of 4 KiB, "
          f"{args.runs} interleaved runs, build {build_type(args.build)}, tmpfs {args.dir}")
    print()
    print("| copy | min / median / max | median / protocol-free |")
    print("|---|---:|---:|")
    print(f"| protocol-free: 2 processes, 1 AF_UNIX socket | {mmm(res['free'], mbs)} | 1.00 |")
    print(f"| vmic copy, host to guest | {mmm(res['h2g'], mbs)} | "
          f"{med['h2g'] / med['free']:.2f} |")
    print(f"| vmic copy --from-guest, guest to host | {mmm(res['g2h'], mbs)} | "
          f"{med['g2h'] / med['free']:.2f} |")
    print(f"| scp to a loopback sshd | {ssh} | - |")
    if res["qga_w"]:
        print(f"| qemu-ga guest-file-write ({args.qga_mb} MiB) | {mmm(res['qga_w'], mbs)} | "
              f"{med['qga_w'] / med['free']:.2f} |")
        print(f"| qemu-ga guest-file-read ({args.qga_mb} MiB) | {mmm(res['qga_r'], mbs)} | "
              f"{med['qga_r'] / med['free']:.2f} |")
    else:
        print("| qemu-ga guest-file-write / guest-file-read | not installed | - |")
    print()
    print(f"| {args.files} files of 4 KiB | min / median / max | median / tar pipe |")
    print("|---|---:|---:|")
    print(f"| tar c \\| tar x through a pipe | {mmm(res['tar'], fps)} | 1.00 |")
    print(f"| vmic copy, host to guest | {mmm(res['small_h2g'], fps)} | "
          f"{med['small_h2g'] / med['tar']:.2f} |")
    print(f"| vmic copy --from-guest | {mmm(res['small_g2h'], fps)} | "
          f"{med['small_g2h'] / med['tar']:.2f} |")
    print(f"| tar \\| ssh tar | {ssh} | - |")
    print()
    print(f"agent VmRSS peak during the {args.size_mb} MiB copies: "
          f"{mmm(rss, lambda k: f'{k / 1024:.1f} MiB')} (target < 4 MiB: "
          f"{'PASS' if max(rss) < 4096 else 'FAIL'})")
    if rtts:
        rtts.sort()
        p99 = rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))]
        print(f"heartbeat round trip during the {args.size_mb} MiB copies "
              f"(every 100 ms, {len(rtts)} replies): p50 {rtts[len(rtts) // 2] / 1000:.2f} ms, "
              f"p99 {p99 / 1000:.2f} ms, max {rtts[-1] / 1000:.2f} ms (target p99 < 10 ms: "
              f"{'PASS' if p99 < 10000 else 'FAIL'})")
    ok = all(med[k] >= TARGET * med["free"] for k in ("h2g", "g2h"))
    print(f"target: vmic >= {TARGET} of the protocol-free copy both ways: "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
