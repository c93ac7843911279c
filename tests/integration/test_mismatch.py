#!/usr/bin/env python3
"""A guest with no common version of one service: that service reads
Protocol Mismatch, the others keep working."""
from vmictest import Env, Tap, wait_until

tap = Tap()
env = Env(tap)
try:
    env.start_hostd()
    env.start_guest("vm1", "--advertise", "shutdown=7-9")
    env.add("vm1")
    tap.check("heartbeat still OK", env.wait_heartbeat("vm1", "OK", 10) is not None,
              env.status("vm1"))
    sd = wait_until(lambda: (s := env.service("vm1", "shutdown")) and
                    s["primary_status"] == "Protocol Mismatch" and s, 5)
    tap.check("shutdown reads Protocol Mismatch", bool(sd), env.service("vm1", "shutdown"))
    if sd:
        tap.check("secondary status names both ranges",
                  "7" in sd["secondary_status"] and "1" in sd["secondary_status"], sd)
        tap.check("no negotiated version", sd["version"] in (None, 0), sd)
    hb = env.service("vm1", "heartbeat")
    tap.check("heartbeat negotiated version 1", hb["version"] == 1, hb)
    r = env.vmic("stop", "vm1", "--timeout", "2s")
    tap.check("stop on a mismatched shutdown service fails clearly",
              r.returncode != 0 and "version" in (r.stderr + r.stdout).lower(), r.stderr)

    # Heartbeat mismatch: the VM is still connected, heartbeat reads so.
    env.start_guest("vm2", "--advertise", "heartbeat=2-3")
    env.add("vm2")
    st = wait_until(lambda: (s := env.status("vm2"))["heartbeat"] == "Protocol Mismatch" and s, 10)
    tap.check("heartbeat with no common version reads Protocol Mismatch", bool(st),
              env.status("vm2"))
    tap.check("the mismatched VM is connected", env.status("vm2")["connection"] == "connected")
    sd = env.service("vm2", "shutdown")
    tap.check("shutdown of that VM is OK", sd["primary_status"] == "OK", sd)
finally:
    env.close()
tap.done()
