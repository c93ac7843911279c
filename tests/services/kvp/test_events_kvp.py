#!/usr/bin/env python3
"""KVP data does not wipe out the event log: `[events] max-size` counts the
events' own bytes, not the whole vmic.db. With an External pool three times
max-size (the limits raised by root), the events stored before it survive,
new ones are kept, across a restart too (the size is measured again at
start-up); and a flood of events is still pruned to max-size while the KVP
rows stay untouched."""
import os
import random
import sqlite3
import time

from vmictest import Env, FakeGuest, Tap, wait_until

MAX_SIZE = 1 << 20
RECORDS = 1500          # of 2000-byte values: about 3 MiB of KVP rows
PER_REQUEST = 25        # a control request line stays under 64 KiB

tap = Tap()
env = Env(tap)
fake = None

CONF = ("[connection]\nretry-min = 100ms\nretry-max = 1s\n"
        # The flood below starts many sessions on purpose.
        "session-burst = 1000000\n"
        f"[events]\nmax-size = {MAX_SIZE}\nvm-rate = 1000\nvm-burst = 1000\n")


def query(sql):
    con = sqlite3.connect(f"file:{os.path.join(env.state, 'vmic.db')}?mode=ro", uri=True,
                          timeout=10)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def db_used():
    return (query("PRAGMA page_count") - query("PRAGMA freelist_count")) * \
        query("PRAGMA page_size")


def stats():
    return env.ctl({"cmd": "stats"})["result"]["events"]


def settled():
    s = stats()
    return s if s["pending"] == 0 else None


def kinds(vm):
    return [(e["kind"], e["to"]) for e in env.events(vm)]


try:
    env.start_hostd(conf=CONF)
    # A VM whose guest is not there: kvp set keeps the records for it.
    env.add("big", f"unix:{env.guest_socket('big')}")
    r = env.vmic("set", "big", "kvp", "external-max-keys=100000")
    tap.check("root raises the VM's External bound", r.returncode == 0, r.stderr)
    before = env.events("big")
    tap.check("the VM's first events are stored", len(before) >= 2, before)

    value = "v" * 2000
    for at in range(0, RECORDS, PER_REQUEST):
        items = {f"key-{i:05d}": value for i in range(at, min(at + PER_REQUEST, RECORDS))}
        reply = env.ctl({"cmd": "kvp-set", "vm": "big", "items": items})
        if "error" in reply:
            break
    kvp = env.service("big", "kvp")
    tap.check(f"{RECORDS} External records are stored", kvp["external_keys"] == RECORDS,
              (kvp, reply))
    used = db_used()
    tap.note(f"vmic.db: {used} bytes in use, max-size {MAX_SIZE}")
    tap.check("vmic.db holds more than twice max-size (the test tests something)",
              used > 2 * MAX_SIZE, used)

    env.vmic("disable", "big", "shutdown", check=True)
    env.vmic("enable", "big", "shutdown", check=True)
    # Each command is a transaction; the writer checks the bounds when its
    # queue is empty, so a settled writer has judged the table.
    tap.check("the writer settles", wait_until(settled, 20), stats())
    time.sleep(0.5)
    got = kinds("big")
    tap.check("the events from before the KVP data survive",
              all((e["kind"], e["to"]) in got for e in before), (before, got))
    tap.check("new events are kept",
              ("service-setting", "disabled") in got and ("service-setting", "enabled") in got,
              got)
    s = stats()
    tap.check("nothing was pruned; the events' size is far below max-size",
              s["pruned"] == 0 and 0 < s["events_bytes"] < MAX_SIZE // 10
              and s["db_bytes"] > 2 * MAX_SIZE, s)

    # 2. A restart measures the events again, KVP rows apart.
    env.hostd_proc.stop()
    env.start_hostd(conf=CONF)
    env.vmic("disable", "big", "shutdown", check=True)
    wait_until(settled, 20)
    time.sleep(0.5)
    got = kinds("big")
    tap.check("after a restart: the old events are still there, the new one too",
              all((e["kind"], e["to"]) in got for e in before)
              and got.count(("service-setting", "disabled")) == 2, got)
    s = stats()
    tap.check("after a restart: nothing pruned, the size measured without KVP",
              s["pruned"] == 0 and 0 < s["events_bytes"] < MAX_SIZE // 10, s)

    # 3. Events beyond max-size are still pruned to it; the KVP rows stay.
    fake = FakeGuest(env.guest_socket("flood"))
    env.add("flood")
    tap.check("the fake guest is connected", fake.ready.wait(10))
    rng = random.Random(3)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30 and stats()["pruned"] == 0:
        for _ in range(50):
            fake.hello(rng.getrandbits(63) | 1)
        time.sleep(0.02)
    last = rng.getrandbits(63) | 1
    fake.hello(last)
    ok = wait_until(lambda: (lambda s: s and s["pruned"] > 0
                             and s["events_bytes"] <= MAX_SIZE)(settled()), 30)
    s = stats()
    tap.note(f"after the flood: {s}")
    tap.check("a flood of events is pruned to max-size", ok, s)
    tap.check("the newest events are kept",
              ("connection", "connected") in [(e["kind"], e["to"]) for e in env.events("flood")])
    tap.check("the KVP records are untouched",
              env.service("big", "kvp")["external_keys"] == RECORDS
              and query("SELECT COUNT(*) FROM service_data WHERE vm = 'big'") == RECORDS)
    tap.check("vmic-hostd still running", env.hostd_proc.alive())
finally:
    if fake:
        fake.close()
    env.close()
tap.done()
