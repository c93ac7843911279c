#!/usr/bin/env python3
"""The agent wakes once per heartbeat: over 60 heartbeats at a 100 ms
interval, its main thread's voluntary context switches (each one a sleep in
epoll_wait, so a wake-up) stay close to one per heartbeat, the other
services' own timers included."""
import time

from vmictest import Env, Tap

INTERVAL_MS = 100
BEATS = 60
MAX_PER_BEAT = 1.5  # one, plus the other services' timers; two would fail


def switches(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise RuntimeError("no voluntary_ctxt_switches")


tap = Tap()
env = Env(tap)
try:
    env.start_hostd(conf="[connection]\nretry-min = 100ms\nretry-max = 1s\n"
                         f"[heartbeat]\ninterval = {INTERVAL_MS}ms\n")
    guest = env.start_guest("vm1")
    env.add("vm1")
    ok = env.wait_heartbeat("vm1", "OK", 10)
    tap.check("heartbeat OK", ok is not None, env.heartbeat("vm1"))
    time.sleep(1.0)  # past the first exchanges of every service
    before = env.ctl({"cmd": "stats"})["result"]
    s0 = switches(guest.pid)
    time.sleep(BEATS * INTERVAL_MS / 1000.0)
    s1 = switches(guest.pid)
    after = env.ctl({"cmd": "stats"})["result"]
    beats = after["heartbeat_replies"] - before["heartbeat_replies"]
    tap.check(f"about {BEATS} heartbeats answered", beats >= BEATS * 0.8,
              f"{beats} replies")
    per = (s1 - s0) / max(1, beats)
    tap.note(f"agent: {s1 - s0} wake-ups for {beats} heartbeats ({per:.2f} each)")
    tap.check(f"at most {MAX_PER_BEAT} wake-ups per heartbeat", per <= MAX_PER_BEAT,
              f"{per:.2f}")
finally:
    env.close()
tap.done()
