#!/usr/bin/env python3
"""10,000 KVP records both ways: 10,000 keys with values near the 2 KiB
limit (about 20 MB) set on the host all reach the guest's .kvp_pool_0,
exactly, and again after the agent reconnects, paced by the window of
batches (the link never overflows and closes, the heartbeat stays OK);
10,000 records written into the guest's .kvp_pool_1 all reach the host
once its bounds allow them, and `vmic kvp list` streams all 20,000+."""
import json
import os
import socket
import time

from kvplib import read_pool, write_pool_file
from vmictest import Env, Tap, wait_until

N = 10000
VALUE = 1900  # bytes of each value: 10,000 records of ~2 KiB

tap = Tap()
env = Env(tap)


def value_of(i):
    return (f"{i:05d}-" * (VALUE // 6 + 1))[:VALUE]


def ctl_many(requests):
    """Send requests on one connection, one after the other; the replies."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(120)
    s.connect(env.sock)
    f = s.makefile("rwb")
    out = []
    for req in requests:
        f.write(json.dumps(req).encode() + b"\n")
        f.flush()
        out.append(json.loads(f.readline()))
    s.close()
    return out


try:
    pools = os.path.join(env.dir, "pools")
    env.start_hostd()
    guest = env.start_guest("g1", "--kvp-dir", pools, "--log-level", "info")
    env.add("g1")
    env.wait_heartbeat("g1", "OK", 10)

    # 30 records of ~2 KiB per command stay within the 64 KiB line.
    reqs = []
    for start in range(0, N, 30):
        items = {f"key-{i:05d}": value_of(i) for i in range(start, min(start + 30, N))}
        reqs.append({"cmd": "kvp-set", "vm": "g1", "items": items})
    t0 = time.monotonic()
    replies = ctl_many(reqs)
    t_set = time.monotonic() - t0
    tap.check(f"{N} keys set on the host in {len(reqs)} commands ({t_set:.1f} s)",
              all(r.get("ok") for r in replies), [r for r in replies if not r.get("ok")][:2])

    want = {f"key-{i:05d}": value_of(i) for i in range(N)}
    t = wait_until(lambda: len(read_pool(pools, 0)) == N, 60, 0.1)
    tap.check(f"all {N} are in the guest's .kvp_pool_0", t and read_pool(pools, 0) == want,
              len(read_pool(pools, 0)))
    tap.check("the heartbeat stayed OK", env.heartbeat("g1") == "OK")

    # A reconnect: the whole pool is copied again, paced.
    guest.stop()
    t0 = time.monotonic()
    guest = env.start_guest("g1", "--kvp-dir", pools, "--log-level", "info")
    tap.check("reconnected", env.wait_heartbeat("g1", "OK", 10) is not None)
    t = wait_until(lambda: env.service("g1", "kvp").get("external_copy_ms") is not None
                   and env.service("g1", "kvp").get("external_synced"), 60, 0.05)
    took = time.monotonic() - t0
    kvp = env.service("g1", "kvp")
    tap.note(f"copy of {N} records after a reconnect: {kvp.get('external_copy_ms')} ms "
             f"(host), {took:.2f} s from the agent's start")
    tap.check("after the reconnect the guest's file holds the same records",
              t and wait_until(lambda: read_pool(pools, 0) == want, 30), len(read_pool(pools, 0)))
    st = env.status("g1")["connection_detail"]
    tap.check("the link was never closed for an overflowing queue",
              "stopped reading" not in (st.get("last_error") or ""), st)
    tap.check("heartbeat still OK", env.heartbeat("g1") == "OK")

    # Guest -> host: 10,000 records in pool 1, over the default bound first.
    guest.stop()
    gwant = {f"g-{i:05d}": f"value {i}" for i in range(N)}
    write_pool_file(pools, 1, sorted(gwant.items()))
    guest = env.start_guest("g1", "--kvp-dir", pools, "--log-level", "info")
    env.wait_heartbeat("g1", "OK", 10)
    tap.check("with the default bound the host keeps 1024 of them",
              wait_until(lambda: env.service("g1", "kvp")["guest_keys"] == 1024, 20),
              env.service("g1", "kvp"))
    t0 = time.monotonic()
    # Raised bounds make the guest send its pools again at once.
    env.vmic("set", "g1", "kvp", "guest-max-keys=20000", "guest-max-bytes=32M", check=True)
    t = wait_until(lambda: env.service("g1", "kvp")["guest_keys"] == N, 60, 0.1)
    tap.check(f"with the bound raised all {N} reach the host ({time.monotonic() - t0:.1f} s)",
              t, env.service("g1", "kvp"))
    lst = env.vmic_json("kvp", "list", "g1")
    got = {r["key"]: r["value"] for r in lst["records"] if r["pool"] == "guest"}
    tap.check(f"kvp list streams them all ({len(lst['records'])} records)",
              got == gwant and len(lst["records"]) >= 2 * N, len(got))
    tap.check("vmic-hostd still running", env.hostd_proc.alive())
finally:
    env.close()
tap.done()
