#!/usr/bin/env python3
"""Heartbeat end to end: OK soon after `vmic add`, Lost Communication when
the agent is stopped (after exactly `threshold` missed intervals), OK again
when it continues, each transition an event; kill and restart of the agent."""
import signal
import time

from vmictest import Env, Tap, wait_until

THRESHOLD = 3

tap = Tap()
env = Env(tap)
try:
    env.start_hostd()
    guest = env.start_guest("vm1")
    t0 = time.monotonic()
    env.add("vm1")
    took = env.wait_heartbeat("vm1", "OK", 10)
    tap.check("heartbeat OK within 10 s of vmic add", took is not None,
              f"heartbeat is {env.heartbeat('vm1')!r}")
    tap.note(f"OK {time.monotonic() - t0:.2f} s after add")

    st = env.status("vm1")
    tap.check("status names the agent and its version",
              (st.get("agent") or "").startswith("vmic-guestd "), st.get("agent"))
    tap.check("status has the guest's kernel", bool(st.get("kernel")), st)
    hb = env.service("vm1", "heartbeat")
    tap.check("round trip measured", (hb.get("rtt_us") or 0) > 0, hb)

    guest.signal(signal.SIGSTOP)
    lost = env.wait_heartbeat("vm1", "Lost Communication", 15)
    tap.check("SIGSTOP: Lost Communication", lost is not None, env.heartbeat("vm1"))
    msg = [e["message"] for e in env.events("vm1")
           if e["kind"] == "heartbeat" and e["to"] == "Lost Communication"]
    tap.check(f"Lost Communication after exactly {THRESHOLD} missed intervals",
              msg[-1:] == [f"no reply to {THRESHOLD} heartbeats (interval 1s)"], msg)
    guest.signal(signal.SIGCONT)
    back = env.wait_heartbeat("vm1", "OK", 10)
    tap.check("SIGCONT: OK again", back is not None, env.heartbeat("vm1"))

    hb = [(e["from"], e["to"]) for e in env.events("vm1") if e["kind"] == "heartbeat"]
    tap.check("events: No Contact -> OK", ("No Contact", "OK") in hb, hb)
    tap.check("events: OK -> Lost Communication", ("OK", "Lost Communication") in hb, hb)
    tap.check("events: Lost Communication -> OK", ("Lost Communication", "OK") in hb, hb)

    # The agent dies and comes back under the same socket path.
    guest.kill9()
    lost = env.wait_heartbeat("vm1", "Lost Communication", 10)
    tap.check("agent killed: Lost Communication", lost is not None, env.heartbeat("vm1"))
    conn = env.status("vm1")["connection"]
    tap.check("agent killed: the connection is not up", conn in ("retrying", "connecting"), conn)
    guest = env.start_guest("vm1")
    back = env.wait_heartbeat("vm1", "OK", 10)
    tap.check("agent restarted: reconnects and OK", back is not None,
              env.status("vm1"))
    conn_events = [e["to"] for e in env.events("vm1") if e["kind"] == "connection"]
    tap.check("connection events recorded", "connected" in conn_events and
              ("retrying" in conn_events or "connecting" in conn_events), conn_events)

    rc = guest.stop()
    tap.check("vmic-guestd exits 0 on SIGTERM", rc == 0, rc)
finally:
    env.close()
tap.done()
