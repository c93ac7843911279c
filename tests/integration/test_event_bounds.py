#!/usr/bin/env python3
"""The event log stays within its bounds while events pour in, not once an
hour: by size ([events] max-size counts the events' own bytes; the file
shrinks as pages are given back), by count (keep) and by age (max-age),
pruned by the daemon in the background. (KVP data in the same file does
not count: test_events_kvp.)"""
import os
import random
import sqlite3
import time

from vmictest import Env, FakeGuest, Tap, wait_until

MAX_SIZE = 1 << 20
# The file holds the events' pages (a little more than their counted size:
# pages are not full), the schema and the registry.
FILE_SLACK = 1.1
KEEP = 1000
DAY_US = 86400 * 10**6

tap = Tap()
env = Env(tap)
fake = None


def conf(keep, max_size):
    # The flood starts a session per hello: the session limit (its own
    # test: test_session_restarts) is lifted to fill the log.
    return ("[connection]\nretry-min = 100ms\nretry-max = 1s\nsession-burst = 1000000\n"
            f"[events]\nkeep = {keep}\nmax-size = {max_size}\n"
            "vm-rate = 1000\nvm-burst = 1000\n")


def db_path():
    return os.path.join(env.state, "vmic.db")


def query(sql):
    con = sqlite3.connect(f"file:{db_path()}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def flood(seconds, sample):
    """New-nonce hellos (four events each) for `seconds`; sample() between."""
    rng = random.Random(5)
    samples = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        for _ in range(20):
            fake.hello(rng.getrandbits(63) | 1)
        time.sleep(0.01)
        if len(samples) < (time.monotonic() - t0) * 5:
            samples.append(sample())
    return samples


def settled():
    ev = env.ctl({"cmd": "stats"})["result"]["events"]
    return ev if ev["pending"] == 0 else None


try:
    # 1. Size: a MiB.
    env.start_hostd(conf=conf(100000, "1M"))
    fake = FakeGuest(env.guest_socket("bad"))
    env.add("bad")
    tap.check("the fake guest is connected", fake.ready.wait(10))
    fake.hello(1)
    sizes = flood(10, lambda: query("PRAGMA page_count") * query("PRAGMA page_size"))
    tap.check("the flood wrote more than max-size worth of events",
              wait_until(lambda: (lambda s: s if s and s["pruned"] > 0 else None)(settled()), 20),
              (settled(), query("PRAGMA page_count"), query("PRAGMA freelist_count")))
    tap.note(f"vmic.db sizes during the flood: {min(sizes)}..{max(sizes)} bytes")
    tap.check("vmic.db never grew past twice max-size while it came",
              max(sizes) <= 2 * MAX_SIZE, max(sizes))
    ok = wait_until(lambda: (settled() or {}).get("events_bytes", MAX_SIZE + 1) <= MAX_SIZE and
                    query("PRAGMA page_count") * 4096 <= MAX_SIZE * FILE_SLACK and
                    os.path.getsize(db_path()) <= MAX_SIZE * FILE_SLACK, 20)
    tap.check("the events are within max-size once the writer caught up, the file "
              "within a tenth more", ok,
              (settled(), query("PRAGMA page_count"), os.path.getsize(db_path())))
    free_pages = query("PRAGMA freelist_count")
    tap.check("the pruned pages went back to the file system (incremental vacuum)",
              query("PRAGMA auto_vacuum") == 2 and free_pages <= 8, free_pages)
    wal = os.path.getsize(db_path() + "-wal")
    tap.check("the WAL is bounded too (journal_size_limit)", wal <= 6 << 20, wal)
    stats = env.ctl({"cmd": "stats"})["result"]["events"]
    tap.check("stats: stored rows, their bytes and the file's", stats["stored"] > 0
              and 0 < stats["events_bytes"] <= MAX_SIZE
              and stats["events_bytes"] < stats["db_bytes"] <= MAX_SIZE * FILE_SLACK, stats)

    # 2. Count: keep, while events come.
    env.hostd_proc.stop()
    fake.close()
    env.start_hostd(conf=conf(KEEP, "64M"))
    fake = FakeGuest(env.guest_socket("bad"))
    tap.check("reconnected", fake.ready.wait(15))
    fake.hello(2)
    # What the first part left is pruned at start, in the background.
    tap.check("the table is taken down to keep after the start",
              wait_until(lambda: query("SELECT COUNT(*) FROM events") <= KEEP, 20),
              query("SELECT COUNT(*) FROM events"))
    counts = flood(4, lambda: query("SELECT COUNT(*) FROM events"))
    tap.note(f"rows during the flood: {min(counts)}..{max(counts)}")
    # A batch (100 ms, at most vm-rate/10 + vm-burst events of one VM)
    # may land before the next prune step takes the table back.
    tap.check("rows stay near keep while events come",
              max(counts) <= KEEP + 1100, max(counts))
    ok = wait_until(lambda: settled() and query("SELECT COUNT(*) FROM events") <= KEEP, 20)
    tap.check("and at most keep once the writer caught up", ok,
              query("SELECT COUNT(*) FROM events"))

    # 3. Age: a log from a hundred days ago.
    env.hostd_proc.stop()
    fake.close()
    fake = None
    now = int(time.time() * 1e6)
    con = sqlite3.connect(db_path())
    top = con.execute("SELECT MAX(id) FROM events").fetchone()[0]
    con.executemany("INSERT INTO events (id, time_us, vm, kind, message) "
                    "VALUES (?, ?, 'old', 'vm-added', 'from long ago')",
                    [(top + 1 + i, now - 100 * DAY_US + i) for i in range(500)])
    con.executemany("INSERT INTO events (id, time_us, vm, kind, message) "
                    "VALUES (?, ?, 'recent', 'vm-added', 'from yesterday')",
                    [(top + 501 + i, now - DAY_US + i) for i in range(10)])
    con.commit()
    con.close()
    env.start_hostd(conf=conf(100000, "64M"))  # max-age: the default, 90d
    ok = wait_until(lambda: not env.events("old"), 20)
    tap.check("events older than max-age are pruned", ok, len(env.events("old")))
    tap.check("younger ones stay", len(env.events("recent")) == 10)
finally:
    if fake:
        fake.close()
    env.close()
tap.done()
