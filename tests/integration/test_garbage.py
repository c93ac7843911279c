#!/usr/bin/env python3
"""Garbage and an absurd length in one VM's channel cost at most that VM's
session: the host resynchronises on a new session over the same stream
(a QEMU chardev would not drop what the guest queued), the guest does the
same on its side, and another VM notices nothing."""
import os
import random
import time

from vmictest import Env, Relay, Tap, frame_header, unix_dialer, wait_until

tap = Tap()
env = Env(tap)
relay = None
try:
    env.start_hostd()
    env.start_guest("bad")
    env.start_guest("good")
    relay_path = os.path.join(env.dir, "relay.sock")
    relay = Relay(relay_path, unix_dialer(env.guest_socket("bad")))
    env.add("bad", f"unix:{relay_path}")
    env.add("good")
    tap.check("both OK", env.wait_heartbeat("bad", "OK", 10) is not None and
              env.wait_heartbeat("good", "OK", 10) is not None)
    good_since = env.status("good")["connection_detail"]["since_us"]

    def last_id():
        return max([e["id"] for e in env.events()] or [0])

    mark = first_mark = last_id()

    def session_events():
        return [e for e in env.events("bad") if e["id"] > mark and
                e["kind"] in ("protocol-error", "connection")]

    # 1. Random garbage towards the host.
    first = relay.connections
    relay.inject_to_host(random.Random(7).randbytes(3000))
    tap.check("garbage: a protocol-error event",
              wait_until(lambda: any(e["kind"] == "protocol-error" for e in session_events()), 10),
              session_events())
    tap.check("garbage: heartbeat OK again", env.wait_heartbeat("bad", "OK", 10) is not None,
              env.status("bad"))
    tap.check("garbage: a new session over the same stream (no redial)",
              relay.connections == first and any(
                  e["kind"] == "connection" and e["to"] == "connected" for e in session_events()),
              (relay.connections, first, session_events()))

    # 2. A header with a right check and an absurd length.
    mark = last_id()
    relay.inject_to_host(frame_header(0xFFFFFFF0, 1, 2, flags=1))
    tap.check("absurd length: protocol-error event",
              wait_until(lambda: any(e["kind"] == "protocol-error" for e in session_events()), 10),
              session_events())
    tap.check("absurd length: heartbeat OK again",
              env.wait_heartbeat("bad", "OK", 10) is not None)
    alive = env.hostd_proc.alive()
    tap.check("vmic-hostd still running", alive)

    # 3. Garbage towards the guest: it resynchronises on its own, with a
    # new session of its own (the host sees the agent "restart").
    mark = last_id()
    relay.inject_to_guest(b"\x00garbage" * 500 + frame_header(1 << 30, 1, 1))
    tap.check("garbage to the guest: the agent starts a new session",
              wait_until(lambda: any(e["kind"] == "connection" and e["to"] == "handshake"
                                     for e in session_events()), 10), session_events())
    tap.check("garbage to the guest: heartbeat recovers",
              env.wait_heartbeat("bad", "OK", 10) is not None, env.status("bad"))

    # The other VM noticed nothing.
    good = env.status("good")
    tap.check("other VM: same connection throughout",
              good["connection_detail"]["since_us"] == good_since, good["connection_detail"])
    hb = [e for e in env.events("good") if e["id"] > first_mark and
          e["kind"] in ("heartbeat", "connection", "protocol-error")]
    tap.check("other VM: no heartbeat or connection events", hb == [], hb)
finally:
    if relay:
        relay.close()
    env.close()
tap.done()
