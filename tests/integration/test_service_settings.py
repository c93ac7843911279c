#!/usr/bin/env python3
"""Per-service settings: `vmic set VM SERVICE KEY=VALUE` validated by the
service's key table, `vmic status VM SERVICE`, hostd.conf [SERVICE] as the
default of VMs without their own value, durability across a restart."""
import time

from vmictest import Env, Tap, wait_until

CONF = "[connection]\nretry-min = 100ms\nretry-max = 1s\n[heartbeat]\ninterval = 700ms\n"

tap = Tap()
env = Env(tap)
try:
    env.start_hostd(conf=CONF)
    env.start_guest("vm1")
    env.add("vm1")
    tap.check("OK", env.wait_heartbeat("vm1", "OK", 10) is not None)
    hb = env.service("vm1", "heartbeat")
    tap.check("a new VM follows hostd.conf's [heartbeat] defaults",
              hb["settings"] == {"interval": "700ms", "threshold": "3"}
              and sorted(hb["inherited"]) == ["interval", "threshold"], hb)

    r = env.vmic("set", "vm1", "heartbeat", "interval=300ms")
    tap.check("set heartbeat interval", r.returncode == 0 and "interval=300ms" in r.stdout,
              r.stdout + r.stderr)
    hb = env.service("vm1", "heartbeat")
    tap.check("status shows the VM's own value, the other inherited",
              hb["settings"]["interval"] == "300ms" and hb["inherited"] == ["threshold"], hb)
    ev = [e for e in env.events("vm1") if e["kind"] == "service-setting"]
    tap.check("the change is an event saying old and new",
              any("interval 700ms -> 300ms" in e["message"] for e in ev), ev)
    # 8 heartbeats at 700ms take at least 4.9 s; at 300ms about 2.4 s.
    sent0 = env.ctl({"cmd": "stats"})["result"]["heartbeats_sent"]
    t0 = time.monotonic()
    wait_until(lambda: env.ctl({"cmd": "stats"})["result"]["heartbeats_sent"] - sent0 >= 9, 10)
    took = time.monotonic() - t0
    tap.check("the new interval applies at once", took < 4.9, f"{took:.2f}s for 8 intervals")

    r = env.vmic("status", "vm1", "heartbeat")
    tap.check("vmic status VM SERVICE prints the settings and details",
              r.returncode == 0 and "interval" in r.stdout and "300ms" in r.stdout
              and "(default)" in r.stdout and "rtt_us" in r.stdout, r.stdout + r.stderr)
    one = env.vmic_json("status", "vm1", "heartbeat")
    tap.check("vmic status VM SERVICE --json is the service entry",
              one["name"] == "heartbeat" and one["state"] == "OK" and "settings" in one, one)

    def fails(args, words):
        r = env.vmic(*args)
        out = r.stdout + r.stderr
        return r.returncode != 0 and all(w in out for w in words), out
    ok, out = fails(["set", "vm1", "heartbeat", "colour=red"],
                    ["heartbeat has no setting 'colour'", "interval, threshold"])
    tap.check("unknown key: names the valid ones", ok, out)
    ok, out = fails(["set", "vm1", "heartbeat", "interval=5x"], ["interval", "not a duration"])
    tap.check("bad value: says what is expected", ok, out)
    ok, out = fails(["set", "vm1", "heartbeat", "threshold=0"], ["threshold", "out of range (1..100)"])
    tap.check("out of range: gives the range", ok, out)
    ok, out = fails(["set", "vm1", "heartbeat", "interval=200ms", "threshold=1000"], ["threshold"])
    tap.check("one bad key of two: error", ok, out)
    tap.check("... and nothing was applied",
              env.service("vm1", "heartbeat")["settings"]["interval"] == "300ms",
              env.service("vm1", "heartbeat"))
    ok, out = fails(["set", "vm1", "shutdown", "x=1"],
                    ["shutdown has no setting 'x'", "timeout, power-timeout"])
    tap.check("each service checks its own keys", ok, out)
    r = env.vmic("set", "vm1", "shutdown", "power-timeout=5s")
    tap.check("shutdown's power-timeout is a setting too", r.returncode == 0, r.stderr)
    r = env.ctl({"cmd": "set", "vm": "vm1", "service": "heartbeat", "settings": {"threshold": 5}})
    tap.check("the control API takes numbers too",
              r["ok"] and r["result"]["settings"]["threshold"] == "5", r)
    r = env.ctl({"cmd": "set", "vm": "vm1", "service": "heartbeat"})
    tap.check("service without settings: bad-request",
              not r["ok"] and r["error"]["code"] == "bad-request", r)

    # Durable, and the inherited key follows a new daemon default.
    env.hostd_proc.stop()
    env.start_hostd(conf=CONF.replace("interval = 700ms", "interval = 900ms\nthreshold = 4"))
    hb = env.service("vm1", "heartbeat")
    tap.check("after a restart: own values kept",
              hb["settings"] == {"interval": "300ms", "threshold": "5"} and hb["inherited"] == [], hb)
    env.start_guest("vm2")
    env.add("vm2")
    hb = env.service("vm2", "heartbeat")
    tap.check("a VM without own values follows the changed hostd.conf",
              hb["settings"] == {"interval": "900ms", "threshold": "4"}, hb)
finally:
    env.close()
tap.done()
