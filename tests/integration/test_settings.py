#!/usr/bin/env python3
"""enable/disable at run time, the guest's own refusal, events --follow."""
import json
import subprocess
import time

from vmictest import VMIC, CHILD_ENV, Env, Tap, wait_until

tap = Tap()
env = Env(tap)
follow = None
try:
    env.start_hostd()
    env.start_guest("vm1")
    env.add("vm1")
    tap.check("OK", env.wait_heartbeat("vm1", "OK", 10) is not None)
    follow = subprocess.Popen([VMIC, "--socket", env.sock, "events", "--follow", "--json",
                               "--vm", "vm1"], stdout=subprocess.PIPE, text=True, env=CHILD_ENV)
    tap.check("the follower is registered",
              wait_until(lambda: env.ctl({"cmd": "stats"})["result"]["control"]["followers"] == 1,
                         10))

    env.vmic("disable", "vm1", "heartbeat", check=True)
    hb = env.service("vm1", "heartbeat")
    tap.check("disabled: Enabled false, no status", hb["enabled"] is False and
              hb["primary_status"] == "", hb)
    tap.check("disabled: heartbeat state Disabled", env.heartbeat("vm1") == "Disabled",
              env.heartbeat("vm1"))
    # A second VM keeps its heartbeat: its replies say how much time
    # passed, counted in intervals rather than guessed as a sleep.
    env.start_guest("ticker")
    env.add("ticker")
    tap.check("the second VM's heartbeat is OK", env.wait_heartbeat("ticker", "OK", 10) is not None)
    before = env.service("vm1", "heartbeat")["last_reply_us"]
    ticks = []

    def ticker_replied_thrice():
        t = env.service("ticker", "heartbeat")["last_reply_us"]
        if not ticks or ticks[-1] != t:
            ticks.append(t)
        return len(ticks) >= 4

    tap.check("the second VM got three more replies meanwhile",
              wait_until(ticker_replied_thrice, 15), ticks)
    after = env.service("vm1", "heartbeat")["last_reply_us"]
    tap.check("disabled: no heartbeats exchanged over three intervals",
              isinstance(before, int) and after == before,
              (before, after))
    env.vmic("enable", "vm1", "heartbeat", check=True)
    tap.check("enabled again: OK", env.wait_heartbeat("vm1", "OK", 10) is not None,
              env.status("vm1"))

    # Live events: the follower saw the setting changes.
    lines = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(lines) < 100:
        line = follow.stdout.readline()
        if not line:
            break
        lines.append(json.loads(line))
        if sum(1 for e in lines if e.get("kind") == "service-setting") >= 2:
            break
    settings = [e.get("to") for e in lines if e.get("kind") == "service-setting"]
    tap.check("events --follow streamed disable and enable",
              settings[:2] == ["disabled", "enabled"], lines)

    # The guest's configuration refuses a service the host enables.
    env.start_guest("vm2", "--disable", "shutdown")
    env.add("vm2")
    sd = wait_until(lambda: (s := env.service("vm2", "shutdown")) and s["guest_enabled"] is False and s, 10)
    tap.check("guest-disabled service: host shows it", bool(sd), env.service("vm2", "shutdown"))
    if sd:
        tap.check("guest-disabled service: No Contact, says why",
                  sd["primary_status"] == "No Contact" and "guest" in sd["secondary_status"], sd)
    r = env.vmic("stop", "vm2", "--timeout", "3s")
    out = r.stdout + r.stderr
    tap.check("stop refused with a clear message", r.returncode != 0 and "disabled" in out, out)
finally:
    if follow:
        follow.terminate()
        follow.wait()
    env.close()
tap.done()
