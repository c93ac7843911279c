#!/usr/bin/env python3
"""Hostile peers of the session service, speaking the real protocol.

A fake host against the real agent: OPEN payloads that do not decode, an
OPEN for a user the guest does not list, signals, sizes and closes for
sessions that do not exist, and a message of the wrong direction: each is
answered or ignored, and the agent keeps serving (a real exec afterwards).

A fake guest against the real vmic-hostd: EXIT frames for sessions that do
not exist and ones that do not decode, unasked STARTED answers, and a
STARTED that does not decode for a real `vmic exec`: the client gets a
clear error, and the daemon keeps working."""
import os
import struct
import subprocess
import time

from sessionlib import GUEST_CONF, exec_argv
import vmictest
from vmictest import (CHILD_ENV, F_REPLY, SVC_CONTROL, T_ERROR, Env, FakeGuest, FakeHost, Tap,
                      frame, wait_until)

SVC = 7
OPEN, STARTED, SIGNAL, WINSIZE, CLOSE, EXIT = 1, 2, 3, 4, 5, 6
CTL_SERVICES = 3
E_MALFORMED, E_REFUSED = 4, 6
OFFERS = ((1, 1, 1, 1), (2, 1, 1, 1), (7, 1, 1, 1))


def vstr(b):
    return struct.pack("<H", len(b)) + b


def open_payload(session, user=b"", argv=(b"true",), streams=(1, 2, 3)):
    p = struct.pack("<IBIIIIHH", session, 0, *streams, 0, 0, 0)
    p += vstr(user) + vstr(b"") + vstr(b"")
    p += struct.pack("<H", len(argv)) + b"".join(vstr(a) for a in argv)
    return p + struct.pack("<H", 0)


def error_code(f):
    return struct.unpack_from("<H", f[4])[0] if f and f[1] == T_ERROR else None


tap = Tap()
env = Env(tap)
try:
    # --- a hostile host against the real agent ---------------------------
    guest = env.start_guest("vm1", conf=GUEST_CONF)
    host = FakeHost.connect(env.guest_socket("vm1"))
    host.send(SVC_CONTROL, 1, b"")  # a hello that does not decode: ignored or refused
    host.close()
    host = FakeHost.connect(env.guest_socket("vm1"))
    # The fake host offers the session service too, and enables it.
    host.send_hello = lambda established: host.send(
        SVC_CONTROL, 1, vmictest.hello_payload(vmictest.ROLE_HOST, host.nonce, host.peer_nonce,
                                               established, b"hostile", OFFERS))
    tap.check("handshake with the fake host", host.handshake())
    host.send(SVC_CONTROL, CTL_SERVICES, struct.pack("<I", (1 << 1) | (1 << 2) | (1 << SVC)))
    time.sleep(0.2)

    def answer(rid, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            f = host.recv_frame(max(0.1, deadline - time.monotonic()))
            if f is None:
                return None
            if f[0] == SVC and f[2] & F_REPLY and f[3] == rid:
                return f
        return None

    host.send(SVC, OPEN, os.urandom(37), request_id=11)
    f = answer(11)
    tap.check("an OPEN of random bytes: ERROR, the agent goes on",
              f is not None and f[1] == T_ERROR, f)
    bad = open_payload(5)[:-2] + struct.pack("<H", 200)  # envc past the payload
    host.send(SVC, OPEN, bad, request_id=12)
    tap.check("an OPEN whose count runs past its end: ERROR malformed",
              error_code(answer(12)) == E_MALFORMED, host.frames[-1:])
    host.send(SVC, OPEN, open_payload(6, user=b"daemon"), request_id=13)
    f = answer(13)
    tap.check("an OPEN as a user the guest does not list: ERROR refused, saying why",
              error_code(f) == E_REFUSED and b"daemon" in (f[4] if f else b""), f)
    host.send(SVC, OPEN, open_payload(7, argv=(b"sh", b"-c\x00x")), request_id=14)
    tap.check("an argument with a NUL: ERROR malformed", error_code(answer(14)) == E_MALFORMED)
    for typ, payload in ((SIGNAL, struct.pack("<IB", 999, 15)),
                         (SIGNAL, struct.pack("<IB", 999, 77)),
                         (WINSIZE, struct.pack("<IHH", 999, 1, 1)),
                         (CLOSE, struct.pack("<I", 999) + vstr(b"bye")),
                         (EXIT, struct.pack("<IBB", 1, 0, 0))):
        host.send(SVC, typ, payload, request_id=20 + typ)
    time.sleep(0.5)
    tap.check("signals, sizes and closes of unknown sessions, an EXIT from the host: "
              "the agent still runs", guest.alive(), guest.output()[-2000:])
    host.close()
    # The real host: a session works after all that.
    env.start_hostd()
    env.add("vm1")
    env.vmic("enable", "vm1", "session", check=True)
    env.wait_heartbeat("vm1", "OK", 10)
    ok = wait_until(lambda: subprocess.run(exec_argv(env, "--", "echo", "still"), env=CHILD_ENV,
                                           capture_output=True).stdout == b"still\n", 10)
    tap.check("the agent serves the real host afterwards", ok)

    # --- a hostile guest against the real vmic-hostd ---------------------
    fake = FakeGuest(env.guest_socket("evil"), record=True)
    env.add("evil")
    env.vmic("enable", "evil", "session", check=True)
    tap.check("the fake guest is asked for a session", fake.ready.wait(10))
    fake.hello(0x1234, offers=OFFERS)
    time.sleep(0.5)
    junk = [frame(SVC, EXIT, struct.pack("<IBB", 12345, 0, 0)),
            frame(SVC, EXIT, struct.pack("<IBB", 1, 9, 0)),      # unknown how
            frame(SVC, EXIT, struct.pack("<IBB", 1, 1, 0)),      # signal 0
            frame(SVC, EXIT, b"\x01"),                           # too short
            frame(SVC, STARTED, struct.pack("<I", 1) + vstr(b"x"), flags=F_REPLY, request_id=777),
            frame(SVC, 99, b"")]
    for j in junk:
        fake.send(j)
    time.sleep(0.5)
    tap.check("EXIT for unknown sessions, EXITs that do not decode, unasked answers: "
              "the daemon still answers", env.vmic("status", "evil").returncode == 0)
    argv = exec_argv(env, "--", "true")
    argv[argv.index("vm1")] = "evil"
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=CHILD_ENV)
    opened = wait_until(lambda: fake.received(SVC, OPEN), 10)
    if opened:
        rid = fake.received(SVC, OPEN)[-1][3]
        # Long enough for the table, not valid UTF-8 for the decoder.
        fake.send(frame(SVC, STARTED, struct.pack("<I", 1) + vstr(b"\xff\xfe"),
                        flags=F_REPLY, request_id=rid))
    try:
        out, err = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    tap.check("a STARTED that does not decode: vmic exec fails with a clear error",
              opened and p.returncode == 1 and b"does not decode" in err, (p.returncode, err))
    r = env.vmic("exec", "vm1", "--", "echo", "fine")
    tap.check("the daemon keeps serving other VMs", r.returncode == 0 and r.stdout == "fine\n",
              (r.returncode, r.stderr))
    conn = env.status("evil").get("connection_detail") or {}
    tap.check("the session frames that did not decode are counted (bad_frames)",
              conn.get("bad_frames", 0) >= 3 and env.hostd_proc.alive(), conn)
    fake.close()
finally:
    env.close()
tap.done()
