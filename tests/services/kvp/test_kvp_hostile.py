#!/usr/bin/env python3
"""A guest cannot make the host keep more KVP than its bounds, nor hurt the
host or another VM: a real guest whose pool file floods past the default
bound (1024 keys) is kept at it, counted, with one event; a fake guest
sends malformed batches, text that is not UTF-8, oversized keys, batches
for the host's pools, frames over the size bound, and batches without
waiting for answers: each is answered with an error frame, nothing of it
is kept, its events stay within the rate limit, and a well-behaved VM's
heartbeat and KVP latency are unaffected."""
import os
import random
import struct
import time

from kvplib import (F_BEGIN, F_END, KVP_DELETE, KVP_SET, OFFERS_KVP, SVC_KVP, append_records,
                    batch, parse_ack, read_pool)
from vmictest import T_ERROR, Env, FakeGuest, Tap, frame, frame_header, vstr, wait_until

E_BAD_LENGTH, E_MALFORMED, E_REFUSED, E_BUSY = 3, 4, 6, 9

tap = Tap()
env = Env(tap)
fake = None


def good_latency():
    """Seconds from `kvp set` on the good VM to its guest's pool file."""
    key = f"probe-{random.getrandbits(32)}"
    t0 = time.monotonic()
    env.vmic("kvp", "set", "good", key, "1", check=True)
    wait_until(lambda: key in read_pool(good_pools, 0), 10, 0.01)
    return time.monotonic() - t0


def errors_for(rid_from):
    """{request_id: code} of the error frames the host sent the fake."""
    out = {}
    for svc, typ, flags, rid, payload in fake.received(SVC_KVP, T_ERROR):
        if rid >= rid_from:
            out[rid] = struct.unpack_from("<H", payload)[0]
    return out


try:
    good_pools = os.path.join(env.dir, "good-pools")
    flood_pools = os.path.join(env.dir, "flood-pools")
    env.start_hostd()
    env.start_guest("good", "--kvp-dir", good_pools)
    env.start_guest("flood", "--kvp-dir", flood_pools)
    env.add("good")
    env.add("flood")
    env.wait_heartbeat("good", "OK", 10)
    env.wait_heartbeat("flood", "OK", 10)
    base = good_latency()
    tap.note(f"good VM: kvp set to pool file {base * 1000:.0f} ms before the floods")

    # 1. A real guest writes 5,000 records of ~1 KiB into its pool file.
    t0 = time.monotonic()
    append_records(flood_pools, [(f"flood-{i:05d}", "x" * 1000) for i in range(5000)], "flock")
    tap.check("the flooding guest is kept at 1024 keys",
              wait_until(lambda: env.service("flood", "kvp")["guest_keys"] == 1024, 20),
              env.service("flood", "kvp"))
    tap.check("the records kept out are counted, and the status says so",
              wait_until(lambda: env.service("flood", "kvp")["refused"] >= 5000 - 1024, 20)
              and "at their limit" in env.service("flood", "kvp")["secondary_status"],
              env.service("flood", "kvp"))
    flood = env.service("flood", "kvp")
    tap.check("its keys and bytes stay within guest-max-keys and -bytes (1M)",
              flood["guest_keys"] == 1024 and flood["guest_bytes"] <= 1 << 20, flood)
    evs = [e for e in env.events("flood") if e["kind"] == "kvp" and "limit" in e["message"]]
    tap.check("one event names the bound and how to raise it",
              len(evs) == 1 and "guest-max-keys" in evs[0]["message"], evs)
    lat = good_latency()
    tap.check(f"the good VM's kvp set still reaches its guest in {lat * 1000:.0f} ms",
              lat < 1.0)
    tap.check("the good VM's heartbeat is OK", env.heartbeat("good") == "OK")

    # 2. A fake guest that speaks kvp, badly.
    fake = FakeGuest(env.guest_socket("bad"), record=True)
    env.add("bad")
    tap.check("the fake guest got the host's hello", fake.ready.wait(10))
    fake.hello(random.getrandbits(63) | 1, OFFERS_KVP)
    tap.check("the host starts the exchange with IDENTITY",
              wait_until(lambda: fake.received(SVC_KVP, 3), 10), fake.received())

    rid = 1000
    cases = [
        ("a batch whose count says more records than it has",
         batch(1, [("a", "b")])[:2] + struct.pack("<H", 5) + batch(1, [("a", "b")])[4:],
         KVP_SET, E_MALFORMED),
        ("a key that is not UTF-8", batch(1, [(b"k\xff\xfe", "v")]), KVP_SET, E_MALFORMED),
        ("a key with a NUL", batch(1, [(b"k\0k", "v")]), KVP_SET, E_MALFORMED),
        ("a key of 600 bytes", batch(1, [("k" * 600, "v")]), KVP_SET, E_MALFORMED),
        ("a value of 3000 bytes", batch(1, [("k", "v" * 3000)]), KVP_SET, E_MALFORMED),
        ("an empty key", batch(1, [("", "v")]), KVP_SET, E_MALFORMED),
        ("unknown flags", batch(1, [("k", "v")], flags=0x80), KVP_SET, E_MALFORMED),
        ("a DELETE with flags", batch(1, ["k"], flags=F_END, delete=True), KVP_DELETE,
         E_MALFORMED),
        ("bytes after the records", batch(1, [("k", "v")]) + b"xx", KVP_SET, E_MALFORMED),
        ("pool 0, the host's", batch(0, [("mine", "now")]), KVP_SET, E_REFUSED),
        ("pool 3, the host's", batch(3, [("VirtualMachineName", "evil")]), KVP_SET, E_REFUSED),
        ("pool 9", batch(9, [("k", "v")]), KVP_SET, E_MALFORMED),
        ("a batch over 64 KiB", batch(1, [(f"k{i}", "v" * 2000) for i in range(40)]), KVP_SET,
         E_BAD_LENGTH),
    ]
    for name, payload, typ, want in cases:
        rid += 1
        fake.send(frame(SVC_KVP, typ, payload, request_id=rid))
        got = wait_until(lambda: errors_for(rid).get(rid), 5)
        tap.check(f"{name}: answered '{want}'", got == want, (got, errors_for(rid)))
    kvp = env.service("bad", "kvp")
    tap.check("none of it was kept", kvp["guest_keys"] == 0 and kvp["external_keys"] == 0, kvp)
    tap.check("the host's pool 3 for it is the host's",
              env.vmic_json("kvp", "get", "bad", "VirtualMachineName")["value"] == "bad")
    # A length field of 1 GiB: the frame decoder resynchronises, never reads it.
    fake.send(frame_header(1 << 30, SVC_KVP, KVP_SET, 0, 1))
    time.sleep(0.3)

    # 3. Batches without waiting for answers: at most 16 are held, the rest
    # are told busy; a flood of new keys is kept within the bound.
    fake.hello(random.getrandbits(63) | 1, OFFERS_KVP)
    wait_until(lambda: env.status("bad")["connection"] == "connected", 10)
    wait_until(lambda: len(fake.received(SVC_KVP, 3)) >= 2, 10)
    rid = 100000
    blob = b""
    for i in range(200):
        rid += 1
        recs = [(f"f{i:04d}-{j:03d}", "y" * 50) for j in range(100)]
        blob += frame(SVC_KVP, KVP_SET, batch(1, recs, flags=F_BEGIN if i == 0 else 0),
                      request_id=rid)
    fake.send(blob)

    def answers():
        acks = [parse_ack(p) for s, t, f, r, p in fake.received(SVC_KVP, 4)
                if 100000 < r <= 100200 and f & 1]
        return acks if len(acks) + len(errors_for(100001)) >= 200 else None

    # How many are told busy depends on how fast the writer commits while the
    # blob arrives; that some are, and why, does not.
    acks = wait_until(answers, 20)
    busy = [r for r, c in errors_for(100001).items() if c == E_BUSY]
    texts = {bytes(p[4:]).decode(errors="replace") for s, t, f, r, p in
             fake.received(SVC_KVP, T_ERROR) if r > 100000 and
             struct.unpack_from("<H", p)[0] == E_BUSY}
    tap.note(f"{len(busy)} of 200 batches told busy")
    tap.check("batches sent without waiting: every one is answered, an ACK or busy",
              acks is not None and len(acks) + len(busy) == 200,
              (len(acks or []), len(busy)))
    tap.check("past its window of 16 unanswered batches the host answers busy",
              busy and all("more than 16 batches unanswered" in t for t in texts),
              (len(busy), texts))
    kvp = env.service("bad", "kvp")
    tap.check("what it kept stays within guest-max-keys",
              kvp["guest_keys"] <= 1024 and kvp["guest_bytes"] <= 1 << 20, kvp)
    tap.check("ACKs past the bound say so",
              acks and len(acks) >= 16
              and any(a["status"] == 1 and "guest-max-keys" in a["note"] for a in acks),
              acks and (len(acks), acks[-1]))

    # 4. A sustained flood of valid batches for 3 s, each one waiting for its
    # answer only by count: the good VM does not notice.
    t_end = time.monotonic() + 3
    sent = 0
    while time.monotonic() < t_end:
        rid += 1
        fake.send(frame(SVC_KVP, KVP_SET,
                        batch(1, [(f"churn-{sent % 50}", str(sent))]), request_id=rid))
        sent += 1
        if sent % 200 == 0:
            time.sleep(0.01)
    lat = good_latency()
    tap.note(f"{sent} batches in 3 s from the fake guest")
    tap.check(f"during the flood the good VM's kvp set reaches its guest in {lat * 1000:.0f} ms",
              lat < 1.0)
    tap.check("the good VM's heartbeat is OK", env.heartbeat("good") == "OK")
    evs = [e for e in env.events("bad")]
    tap.check(f"the fake guest's events stay within the rate limit ({len(evs)})",
              len(evs) <= 50 + 5 * 60, len(evs))
    tap.check("vmic-hostd still running", env.hostd_proc.alive())
finally:
    if fake:
        fake.close()
    env.close()
tap.done()
