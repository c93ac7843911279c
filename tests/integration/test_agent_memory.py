#!/usr/bin/env python3
"""The agent stays small: vmic-guestd with every service on (heartbeat,
shutdown, time sync, KVP with its pool files and workers) and a host
session, read from /proc/PID/status and /proc/PID/smaps.

This is the agent of the normal build, linked dynamically: its file
pages (libc, libuv) are the machine's and shared, so what is asserted
here is its anonymous memory, the part that is its own. The real-VM
suite (tests/vm/run-vm-kvp) checks all the static agent holds in a real
guest against the 1.5 MiB bound (docs/architecture.md, "Threads and
memory").

- idle, its anonymous memory is under ANON_MAX_KB (it was 1.5 MB while the
  link's 320 KiB read buffer was thread-local data, copied into every
  worker of libuv's pool);
- libuv's pool has the agent's own size, whatever UV_THREADPOOL_SIZE
  its environment carries;
- after large reads (16 MiB of stream data from a fake host) and a quiet
  second, no mapping of its own but the heap and the stacks keeps more
  than BLOCK_MAX_KB resident: the link's read buffer was given back.
"""
import re
import struct
import sys

import vmictest
from vmictest import Env, FakeHost, Tap, frame, wait_until

# The anonymous part of the agent's budget (the whole agent under
# 1.5 MiB in a guest); idle it needs about 200 KiB.
ANON_MAX_KB = 512
# libuv's workers (src/guest/guestd-main.c, memory_setup) and the loop.
THREADS = 1 + 4
# A block of its own (malloc's mappings from 128 KiB up) left resident.
BLOCK_MAX_KB = 64
SERVICES = ("heartbeat", "shutdown", "timesync", "kvp")
HEARTBEAT, HB_REQUEST = 1, 1
T_STREAM_DATA = 0xFE

with open(vmictest.GUESTD, "rb") as f:
    if b"libasan.so" in f.read():
        # meson's TAP protocol takes this plan as a skip (77 would be
        # an error there).
        print("1..0 # SKIP the agent is built with AddressSanitizer, whose "
              "allocator and shadow memory are not the agent's")
        sys.exit(0)

# meson sets MALLOC_PERTURB_, which makes glibc's malloc write every
# block it hands out: pages the agent would touch only when it uses them
# would all be resident. Its processes here run without it.
vmictest.CHILD_ENV.pop("MALLOC_PERTURB_", None)

tap = Tap()
env = Env(tap)


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def kb(st, key):
    return int(st[key].split()[0])


def mappings(pid):
    """(header, fields) per mapping of /proc/PID/smaps."""
    out = []
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                out.append((line.strip(), {}))
            elif ":" in line:
                key, _, value = line.partition(":")
                out[-1][1][key] = value.strip()
    return out


def anon_blocks(pid):
    """Anonymous mappings other than the heap and the threads' stacks
    (libuv's are 8 MiB), with what they hold resident, in KiB."""
    out = []
    for hdr, f in mappings(pid):
        start, end = (int(x, 16) for x in hdr.split()[0].split("-"))
        size_kb = (end - start) >> 10
        fields = hdr.split()
        named = len(fields) > 5
        if named or size_kb >= 8 << 10:
            continue
        out.append((int(f["Rss"].split()[0]), size_kb, hdr))
    return out


def big_blocks(pid):
    return [b for b in anon_blocks(pid) if b[0] > BLOCK_MAX_KB]


def breakdown(pid):
    rows = [(int(f["Rss"].split()[0]), hdr) for hdr, f in mappings(pid)]
    return "\n".join(f"{rss:6d} kB  {hdr}" for rss, hdr in
                     sorted(rows, reverse=True)[:12])


def services_ok():
    svcs = {s["name"]: s for s in env.status("g1")["services"]}
    return all(svcs.get(n, {}).get("primary_status") == "OK" and
               svcs[n].get("guest_enabled") for n in SERVICES)


try:
    env.start_hostd()
    # The agent's own pool size wins over its environment's.
    vmictest.CHILD_ENV["UV_THREADPOOL_SIZE"] = "64"
    try:
        g = env.start_guest("g1")
    finally:
        del vmictest.CHILD_ENV["UV_THREADPOOL_SIZE"]
    pid = g.pid
    env.add("g1")
    tap.check("heartbeat OK", env.wait_heartbeat("g1", "OK", 30) is not None)
    tap.check("every service OK and enabled in the guest",
              wait_until(services_ok, 30), env.status("g1"))
    # Idle: KVP's start-up jobs are done (the guest's facts reached the
    # host, so the workers ran) and the first time sync burst is over.
    tap.check("KVP's start-up jobs ran (the Auto pool reached the host)",
              wait_until(lambda: env.service("g1", "kvp").get("auto_keys", 0)
                         >= 10, 30), env.service("g1", "kvp"))
    tap.check("a time sync cycle finished",
              wait_until(lambda: "true error" in g.output(), 30))

    st = status(pid)
    tap.note(f"idle: VmRSS {st['VmRSS']}, RssAnon {st['RssAnon']}, "
             f"RssFile {st['RssFile']}, threads {st['Threads']}")
    tap.check(f"idle, the agent's anonymous memory is under {ANON_MAX_KB} "
              f"KiB ({st['RssAnon']})", kb(st, "RssAnon") < ANON_MAX_KB,
              breakdown(pid))
    tap.check(f"libuv's pool has 4 workers though UV_THREADPOOL_SIZE=64 "
              f"({st['Threads']} threads)", int(st["Threads"]) == THREADS)

    # Large reads: a host that sends 16 MiB of stream data at once (on a
    # stream the agent has not opened: each frame is read whole, then
    # answered with a reset) fills the link's read buffer.
    g2 = env.start_guest("g2")
    h = FakeHost.connect(env.guest_socket("g2"))
    tap.check("a fake host's session with a second agent", h.handshake())
    chunk = frame(HEARTBEAT, T_STREAM_DATA, b"d" * 65536, stream_id=9)
    h.sock.settimeout(30)
    h.sock.sendall(chunk * 256)
    big = wait_until(lambda: big_blocks(g2.pid), 10, 0.05)
    tap.check(f"large reads: the read buffer is resident ("
              f"{big[0][0] if big else 0} kB)", big)

    # A quiet second, then a heartbeat's read frees it: small requests
    # every 0.2 s until nothing of that size is left.
    seq = [0]

    def released():
        seq[0] += 1
        h.send(HEARTBEAT, HB_REQUEST, struct.pack("<Q", seq[0]),
               request_id=seq[0])
        return not big_blocks(g2.pid)

    tap.check(f"quiet again, no block of the agent's own keeps more than "
              f"{BLOCK_MAX_KB} KiB resident (the heap and stacks aside)",
              wait_until(released, 20, 0.2),
              "\n".join(f"{rss} of {size} kB: {hdr}"
                        for rss, size, hdr in big_blocks(g2.pid)))
    answered = False
    while not answered:
        f = h.recv_frame(10)
        if f is None:
            break
        answered = f[0] == HEARTBEAT and f[3] == seq[0]
    tap.check("the agent still answers heartbeats", answered)
    h.close()
finally:
    env.close()
tap.done()
