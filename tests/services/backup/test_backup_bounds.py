#!/usr/bin/env python3
"""A hostile guest and the backup service's host half: floods of unasked
THAWED reports of the largest size, reports that do not decode (an unknown
reason, 65 mount points, an empty mount point) and a report past the
message's size. The host keeps one last thaw of bounded size, its events
stay within the per-VM rate limit (the excess counted into a suppression
record), bad reports are counted as bad frames, and the host and another
VM's service go on. The fake guest speaks the real protocol
(vmictest.FakeGuest); no filesystem is frozen here."""
import random
import struct
import time

from vmictest import Env, FakeGuest, Tap, frame, vstr, wait_until

SVC_BACKUP, BK_THAWED = 5, 4
OFFERS = ((1, 1, 1, 1), (2, 1, 1, 1), (5, 1, 1, 1))
RATE, BURST = 5, 50  # [events] vm-rate, vm-burst defaults
FLOOD = 300


def thawed(reason=1, mounts=64, path_len=1024, detail_len=4096, empty=False):
    p = struct.pack("<BIII", reason, 60000, 1, 2) + struct.pack("<H", mounts)
    for i in range(mounts):
        p += vstr(b"" if empty else (b"/m%03d" % i).ljust(path_len, b"x"))
    return p + vstr(b"d" * detail_len)


tap = Tap()
env = Env(tap)
fake = None
try:
    env.start_hostd("--log-level", "info")
    env.start_guest("good")
    env.add("good")
    fake = FakeGuest(env.guest_socket("bad"))
    env.add("bad")
    tap.check("the fake guest got the host's hello", fake.ready.wait(10))
    fake.hello(random.getrandbits(63) | 1, offers=OFFERS)
    tap.check("bad: session up with backup",
              wait_until(lambda: (env.service("bad", "backup") or {}).get("version") == 1,
                         10), env.service("bad", "backup"))

    t0_us = time.time() * 1e6
    t0 = time.monotonic()
    big = thawed()
    tap.note(f"{FLOOD} THAWED reports of {len(big)} bytes each")
    for i in range(FLOOD):
        fake.send(frame(SVC_BACKUP, BK_THAWED, big, request_id=i + 1))
    st = None

    def flood_seen():
        global st
        st = env.service("bad", "backup") or {}
        return len(st.get("last_thaw", {}).get("mounts", [])) == 64

    tap.check("the host takes the largest reports", wait_until(flood_seen, 20), st)
    lt = st.get("last_thaw", {})
    tap.check("what it keeps of them is bounded (64 mounts, 4096 bytes of detail)",
              len(lt.get("detail", "")) == 4096 and
              all(len(m) == 1024 for m in lt.get("mounts", [])), len(lt.get("detail", "")))

    def bad_events():
        return [e for e in env.events("bad")
                if e["time_us"] >= t0_us and e.get("service") in ("backup", None)]

    tap.check("a suppression record appears",
              wait_until(lambda: any(e["kind"] == "suppressed" for e in bad_events()), 20))
    window = time.monotonic() - t0
    evs = bad_events()
    bound = BURST + RATE * window + 1
    tap.check(f"its events stay within the rate limit ({bound:.0f})", len(evs) <= bound,
              f"{len(evs)} events in {window:.1f} s")

    def bad_frames():
        return env.status("bad")["connection_detail"]["bad_frames"]

    before = bad_frames()
    for p in (thawed(reason=9, mounts=1), thawed(mounts=65, path_len=8, detail_len=0),
              thawed(mounts=2, empty=True, detail_len=0)):
        fake.send(frame(SVC_BACKUP, BK_THAWED, p, request_id=99))
    tap.check("reports that do not decode are counted as bad frames",
              wait_until(lambda: bad_frames() >= before + 3, 10), bad_frames())
    fake.send(frame(SVC_BACKUP, BK_THAWED, thawed(mounts=64) + b"x" * 8192, request_id=100))
    time.sleep(0.5)
    tap.check("the host goes on", env.hostd_proc.alive())

    # a control client's bounds on the snapshot command
    r = env.vmic("backup", "good", "--", *(["x"] * 257))
    tap.check("more than 256 arguments are refused", r.returncode != 0 and
              "1 to 256" in r.stderr, r.stderr)
    r = env.vmic("backup", "good", "--", "echo", "y" * 9000)
    tap.check("more than 8 KiB of arguments are refused", r.returncode != 0 and
              "8192 bytes" in r.stderr, r.stderr)
    reply = env.ctl({"cmd": "freeze", "vm": "good", "timeout_ms": 500})
    tap.check("a freeze timeout under 1 s is refused",
              reply.get("error", {}).get("code") == "invalid-argument", reply)
    r = env.vmic("backup", "good", "--qmp-snapshot", "/tmp/x.qcow2")
    tap.check("a QMP snapshot of a VM without a QMP socket is refused",
              r.returncode != 0 and "no QMP socket" in r.stderr, r.stderr)
    tap.check("the other VM's backup service is OK",
              (env.service("good", "backup") or {}).get("primary_status") == "OK",
              env.service("good", "backup"))
finally:
    if fake:
        fake.close()
    env.close()
tap.done()
