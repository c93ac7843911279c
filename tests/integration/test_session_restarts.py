#!/usr/bin/env python3
"""A hostile guest cannot make the host resend its KVP copy: the attack of
issue 13 (a new-nonce hello after every 8 batches received, each restart
starting the External pool's copy over) and a plain flood of new-nonce
hellos, scaled to a few seconds. The sessions a guest starts stay within
[connection] session-burst + time / session-interval, beyond which its
hellos are held (the status and one event say so); a copy cut short by a
restart waits (1 s, doubling) before it starts again, so the host sends a
few windows of batches, not one per hello. The neighbouring VM's heartbeat
stays OK, and a real agent restarted a few times gets its session and its
External pool back at once each time."""
import os
import random
import socket
import struct
import threading
import time

from kvplib import OFFERS_KVP, SVC_KVP, read_pool
from vmictest import (CTL_HELLO, HDR, ROLE_GUEST, SVC_CONTROL, Env, Tap, frame, hello_payload,
                      parse_hello, wait_until)

KVP_SET, KVP_DELETE, KVP_IDENTITY = 1, 2, 3
F_REPLY = 1
# The defaults (dist/vmic-hostd.conf).
SESSION_BURST = 10
SESSION_INTERVAL_S = 6.0
ATTACK_S = 5.0
RECORDS = 2000            # of 2000 bytes: a copy of 62 batches, about 4 MB
WINDOW_BYTES = 8 * 65560  # 8 batches of at most 64 KiB (protocol.md)

tap = Tap()
env = Env(tap)
attackers = []


class Attacker:
    """Listens like an agent, answers the host's hellos as an agent would
    (a session at once), reads everything, and restarts its session (a
    hello with a new nonce) every `every` KVP batches it received, or
    every `period` seconds. It never answers a batch."""

    def __init__(self, path, every=None, period=None):
        if os.path.exists(path):
            os.unlink(path)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.every, self.period = every, period
        self.conn = None
        self.lock = threading.Lock()
        self.nonce = random.getrandbits(63) | 1
        self.host_nonce = 0
        self.bytes = 0         # everything the host sent
        self.batches = 0       # KVP requests (IDENTITY, SET, DELETE)
        self.identities = 0    # one per session of the kvp service
        self.restarts = 0
        self.attacking = False
        self.ready = threading.Event()
        self.stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _send_hello(self):
        self.conn.sendall(frame(SVC_CONTROL, CTL_HELLO,
                                hello_payload(ROLE_GUEST, self.nonce, self.host_nonce, True,
                                              b"attacker 0", OFFERS_KVP)))

    def restart(self):
        with self.lock:
            self.nonce = random.getrandbits(63) | 1
            self.restarts += 1
            self._send_hello()

    def _on_frame(self, svc, typ, flags, payload):
        if (svc, typ) == (SVC_CONTROL, CTL_HELLO):
            h = parse_hello(payload)
            with self.lock:
                self.host_nonce = h["nonce"]
                if h["echo"] != self.nonce or not h["flags"] & 1:
                    self._send_hello()
            self.ready.set()
        elif svc == SVC_KVP and not flags & F_REPLY:
            # A window of requests: IDENTITY and the batches.
            if typ == KVP_IDENTITY:
                self.identities += 1
            if typ in (KVP_IDENTITY, KVP_SET, KVP_DELETE):
                self.batches += 1
                if self.attacking and self.every and self.batches % self.every == 0:
                    self.restart()

    def _serve(self):
        try:
            self.conn, _ = self.srv.accept()
        except OSError:
            return
        if self.period:
            threading.Thread(target=self._tick, daemon=True).start()
        buf = b""
        while True:
            try:
                data = self.conn.recv(1 << 20)
            except OSError:
                return
            if not data:
                return
            self.bytes += len(data)
            buf += data
            at = 0
            while len(buf) - at >= HDR:
                length, svc, typ, flags = struct.unpack_from("<IBBH", buf, at + 4)
                if len(buf) - at < HDR + length:
                    break
                self._on_frame(svc, typ, flags, buf[at + HDR:at + HDR + length])
                at += HDR + length
            buf = buf[at:]

    def _tick(self):
        while not self.stopped:
            time.sleep(self.period)
            if self.attacking:
                try:
                    self.restart()
                except OSError:
                    return

    def close(self):
        self.stopped = True
        for s in (self.conn, self.srv):
            if s:
                try:
                    s.close()
                except OSError:
                    pass


def fill_external(vm, records):
    value = "v" * 2000
    for at in range(0, records, 25):
        items = {f"key-{i:05d}": value for i in range(at, min(at + 25, records))}
        reply = env.ctl({"cmd": "kvp-set", "vm": vm, "items": items})
        if "error" in reply:
            return reply
    return None


try:
    env.start_hostd()
    good_pools = os.path.join(env.dir, "good-pools")
    good = env.start_guest("good", "--kvp-dir", good_pools)
    env.add("good")
    tap.check("good: heartbeat OK", env.wait_heartbeat("good", "OK", 10) is not None)

    # The attacker, with a pool whose copy takes 62 batches.
    bad = Attacker(env.guest_socket("bad"), every=8)
    attackers.append(bad)
    env.add("bad")
    tap.check("bad: the host dialled the attacker", bad.ready.wait(10))
    err = fill_external("bad", RECORDS)
    tap.check(f"bad: {RECORDS} External records of 2000 bytes", err is None
              and env.service("bad", "kvp")["external_keys"] == RECORDS, err)
    tap.check("bad: the first session is up and its copy under way",
              wait_until(lambda: bad.batches >= 8, 10), (bad.batches, env.status("bad")))
    # A plain flood of new-nonce hellos, every 10 ms.
    flood = Attacker(env.guest_socket("flood"), period=0.01)
    attackers.append(flood)
    env.add("flood")
    tap.check("flood: the first session is up",
              wait_until(lambda: flood.identities >= 1, 10), flood.identities)

    b0, s0, f0 = bad.bytes, bad.identities, flood.identities
    bad.attacking = flood.attacking = True
    bad.restart()  # the 8 batches of the first session are in
    t0 = time.monotonic()
    hb = []
    while time.monotonic() - t0 < ATTACK_S:
        hb.append(env.heartbeat("good"))
        time.sleep(0.25)
    bad.attacking = flood.attacking = False
    took = time.monotonic() - t0
    sent = bad.bytes - b0
    bad_sessions, flood_sessions = bad.identities - s0, flood.identities - f0
    tap.note(f"in {took:.1f} s: bad restarted {bad.restarts} times, got {bad_sessions} "
             f"sessions and {sent} bytes ({sent / took / 1024:.0f} KiB/s); flood sent "
             f"{flood.restarts} hellos for {flood_sessions} sessions")

    # Sessions: at most the burst and one per interval (plus the first
    # ones of the VMs, counted before t0).
    bound = SESSION_BURST + took / SESSION_INTERVAL_S + 1
    tap.check(f"flood: at most {bound:.0f} sessions in {took:.1f} s "
              f"(session-burst + time / session-interval)",
              flood_sessions <= bound, flood_sessions)
    tap.check("flood: the flood was far over that (the test tests something)",
              flood.restarts > 4 * bound, flood.restarts)
    tap.check(f"bad: at most {bound:.0f} sessions", bad_sessions <= bound, bad_sessions)
    # Copies: at 0 s, then after waits of 1 s and 2 s; each a window of
    # batches, plus small frames per session (IDENTITY, pool 3, hellos).
    limit = 4 * WINDOW_BYTES + 16384 * (bad_sessions + 1)
    tap.check(f"bad: the host sent at most {limit // 1024} KiB in {took:.1f} s "
              f"(a window per copy, the copy waiting 1 s, 2 s ... after each cut)",
              sent <= limit, sent)
    tap.check("bad: the attack did cut copies short (the test tests something)",
              bad.restarts >= 2, bad.restarts)
    tap.check("good: heartbeat OK throughout", set(hb) == {"OK"}, hb)

    st = env.status("flood")["connection_detail"]
    tap.check("flood: the status shows the hold and why",
              st["hold_ms"] is not None and "session" in (st["last_error"] or ""), st)
    r = env.vmic("status", "flood")
    tap.check("vmic status flood: a 'Held:' line", "Held:" in r.stdout, r.stdout)
    notes = [e for e in env.events("flood") if "session-burst" in (e["message"] or "")]
    tap.check("flood: one event says it is held", len(notes) == 1, notes)
    tap.check("good: no connection or heartbeat trouble",
              not [e for e in env.events("good") if e["time_us"] > 0
                   and e["kind"] in ("connection", "heartbeat") and e["to"] != "OK"
                   and e["to"] != "connected"])

    # A real agent restarted a few times: its session and pool come back
    # at once each time.
    env.vmic("kvp", "set", "good", "marker", "0", check=True)
    wait_until(lambda: read_pool(good_pools, 0).get("marker") == "0", 5)
    for i in range(1, 4):
        good.stop()
        env.vmic("kvp", "set", "good", "marker", str(i), check=True)
        t1 = time.monotonic()
        good = env.start_guest("good", "--kvp-dir", good_pools)
        ok = wait_until(lambda: env.heartbeat("good") == "OK"
                        and read_pool(good_pools, 0).get("marker") == str(i), 10, 0.05)
        tap.check(f"good: restart {i}: session and External pool back in "
                  f"{time.monotonic() - t1:.1f} s", ok and time.monotonic() - t1 < 5,
                  (env.status("good")["connection_detail"], read_pool(good_pools, 0).get("marker")))
    tap.check("vmic-hostd still running", env.hostd_proc.alive())
finally:
    for a in attackers:
        a.close()
    env.close()
tap.done()
