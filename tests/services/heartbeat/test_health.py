#!/usr/bin/env python3
"""Application health: a failing health command turns heartbeat into
"OK (application critical)" with the command's reason; fixing it brings OK
back; a hanging command times out; both transitions are events."""
import os

from vmictest import Env, Tap, wait_until

tap = Tap()
env = Env(tap)
try:
    flag = os.path.join(env.dir, "nginx-down")
    open(flag, "w").close()
    env.start_hostd()
    env.start_guest("vm1", conf=f"""[heartbeat]
health-command = if [ -e {flag} ]; then echo "nginx.service failed"; exit 3; fi
health-interval = 1s
health-timeout = 2s
""")
    env.add("vm1")
    crit = env.wait_heartbeat("vm1", "OK (application critical)", 10)
    tap.check("failing health command: OK (application critical)", crit is not None,
              env.status("vm1"))
    hb = env.service("vm1", "heartbeat")
    tap.check("secondary status carries the reason",
              "nginx.service failed" in hb["secondary_status"], hb)
    detail = env.service("vm1", "heartbeat")
    tap.check("application reason in the service's details",
              detail.get("application_reason") == "nginx.service failed", detail)
    r = env.vmic("check", "vm1")
    tap.check("vmic check: WARNING (exit 1) for application critical", r.returncode == 1,
              f"{r.returncode}: {r.stdout}{r.stderr}")

    os.unlink(flag)
    tap.check("health restored: OK", env.wait_heartbeat("vm1", "OK", 10) is not None,
              env.status("vm1"))
    ev = [(e["from"], e["to"], e["message"]) for e in env.events("vm1") if e["kind"] == "heartbeat"]
    tap.check("events for both transitions",
              any(t == "OK (application critical)" and "nginx.service failed" in m for _, t, m in ev)
              and any(f == "OK (application critical)" and t == "OK" for f, t, _ in ev), ev)

    # A command that hangs is killed and reported.
    env.start_guest("vm2", conf="""[heartbeat]
health-command = sleep 60
health-interval = 1s
health-timeout = 500ms
""")
    env.add("vm2")
    crit = env.wait_heartbeat("vm2", "OK (application critical)", 10)
    reason = env.service("vm2", "heartbeat")["secondary_status"]
    tap.check("hanging health command: critical, timed out", crit is not None and
              "timed out" in reason, reason)
finally:
    env.close()
tap.done()
