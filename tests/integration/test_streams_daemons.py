#!/usr/bin/env python3
"""Both daemons carry streams on their links (protocol.md "Streams and flow
control"): a data frame for a stream that is not open is answered with a
STREAM_RESET of code 14 ("no such stream") on the same stream id, credit
and resets for unknown streams are not answered (so two peers cannot
bounce resets), and the session goes on."""
import struct
import time

from vmictest import (T_ERROR, Env, FakeGuest, FakeHost, Tap, frame, wait_until)

HEARTBEAT = 1
T_UNKNOWN = 0x7E  # no service has this type: answered with an error frame
BARRIER_ID = 4242
T_STREAM_RESET, T_STREAM_CREDIT, T_STREAM_DATA = 0xFC, 0xFD, 0xFE
E_NO_STREAM = 14


def resets(frames):
    return [f for f in frames if f[1] == T_STREAM_RESET]


def code_of(f):
    return struct.unpack_from("<H", f[4])[0] if len(f[4]) >= 2 else None


tap = Tap()
env = Env(tap)
fake = None
try:
    # The host's side, against a fake guest.
    env.start_hostd()
    fake = FakeGuest(env.guest_socket("g"), record=True)
    env.add("g")
    tap.check("the fake guest got the host's hello", fake.ready.wait(10))
    fake.hello(12345)
    tap.check("session up", wait_until(lambda: env.status("g")["connection"] == "connected",
                                       10), env.status("g"))
    fake.send(frame(HEARTBEAT, T_STREAM_CREDIT, struct.pack("<I", 4096), stream_id=5))
    fake.send(frame(HEARTBEAT, T_STREAM_RESET, struct.pack("<H", 3) + b"\0\0", stream_id=6))
    fake.send(frame(HEARTBEAT, T_STREAM_DATA, b"x" * 100, stream_id=7))
    got = wait_until(lambda: resets(fake.received()), 10)
    # A barrier: the host handles its frames in order and answers a
    # request of an unknown type with an error frame, so once that answer
    # is here, any answer to the three frames above is here too.
    fake.send(frame(HEARTBEAT, T_UNKNOWN, request_id=BARRIER_ID))
    tap.check("host: the barrier request is answered",
              wait_until(lambda: any(f[3] == BARRIER_ID for f in
                                     fake.received(HEARTBEAT, T_ERROR)), 10))
    r = resets(fake.received())
    tap.check("host: data on an unknown stream is reset with code 14 on its id",
              got and r[0].stream_id == 7 and code_of(r[0]) == E_NO_STREAM,
              [(f.stream_id, code_of(f)) for f in r])
    tap.check("host: credit and a reset for unknown streams get no answer",
              len(r) == 1, [(f.stream_id, code_of(f)) for f in r])
    tap.check("host: the session goes on",
              env.status("g")["connection"] == "connected", env.status("g"))

    # The agent's side, against a fake host.
    env.start_guest("a")
    h = FakeHost.connect(env.guest_socket("a"))
    tap.check("agent: handshake", h.handshake())
    h.sock.sendall(frame(HEARTBEAT, T_STREAM_CREDIT, struct.pack("<I", 4096), stream_id=5)
                   + frame(HEARTBEAT, T_STREAM_RESET, struct.pack("<H", 3) + b"\0\0",
                           stream_id=6)
                   + frame(HEARTBEAT, T_STREAM_DATA, b"y" * 100, stream_id=9)
                   + frame(HEARTBEAT, T_STREAM_DATA, b"z" * 10, stream_id=11))
    seen = []
    deadline = time.monotonic() + 10
    while len(seen) < 2 and time.monotonic() < deadline:
        f = h.recv_frame(max(0.1, deadline - time.monotonic()))
        if f is None:
            break
        if f[1] == T_STREAM_RESET:
            seen.append((f.stream_id, code_of(f)))
    tap.check("agent: data on unknown streams is reset with code 14, each on its id, "
              "nothing for the credit and the reset", seen == [(9, E_NO_STREAM), (11, E_NO_STREAM)],
              seen)
    h.send(HEARTBEAT, 1, struct.pack("<Q", 41), request_id=7)
    reply = None
    deadline = time.monotonic() + 5
    while reply is None and time.monotonic() < deadline:
        f = h.recv_frame(max(0.1, deadline - time.monotonic()))
        if f is None:
            break
        if f[0] == HEARTBEAT and f[3] == 7:
            reply = f
    tap.check("agent: the session goes on (a heartbeat request is answered)",
              reply is not None)
    h.close()
finally:
    if fake:
        fake.close()
    env.close()
tap.done()
