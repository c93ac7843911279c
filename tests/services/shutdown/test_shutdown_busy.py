#!/usr/bin/env python3
"""A hostile host fires 300 shutdown requests at once: the agent runs one
shutdown command, answers the first `accepted` and the 299 others ERROR
busy (9), and keeps working. The fake host speaks the real protocol over
the agent's unix-listen socket (vmictest.FakeHost)."""
import struct

from vmictest import (E_BUSY, F_REPLY, T_ERROR, Env, FakeHost, Tap, child_pids,
                      end_children, frame_header, vstr)

N = 300
SVC_SHUTDOWN, SD_REQUEST, SD_REPLY = 2, 1, 2

tap = Tap()
env = Env(tap)
guest = None
try:
    guest = env.start_guest("vm1", conf="[shutdown]\npoweroff-command = sleep 30\n")
    host = FakeHost.connect(env.guest_socket("vm1"))
    tap.check("hello handshake with the fake host", host.handshake())
    req = struct.pack("<BB", 0, 0) + vstr(b"hostile test")
    host.sock.sendall(b"".join(
        frame_header(len(req), SVC_SHUTDOWN, SD_REQUEST, 0, i) + req
        for i in range(1, N + 1)))
    answers = {}
    while len(answers) < N:
        f = host.recv_frame(20)
        if f is None:
            break
        svc, typ, flags, rid, payload = f
        if svc == SVC_SHUTDOWN and flags & F_REPLY:
            answers[rid] = (typ, payload)
    tap.check(f"all {N} requests answered", len(answers) == N, f"{len(answers)} answers")
    accepted = [rid for rid, (typ, _) in answers.items() if typ == SD_REPLY]
    busy = [rid for rid, (typ, p) in answers.items()
            if typ == T_ERROR and struct.unpack_from("<H", p)[0] == E_BUSY]
    tap.check("exactly one accepted, the first", accepted == [1], accepted[:10])
    tap.check(f"{N - 1} answered busy", len(busy) == N - 1, f"{len(busy)} busy")
    # Every request has been answered, and the agent answers only after
    # uv_spawn() returned: every child it started exists by now.
    children = child_pids(guest.pid)
    tap.check("exactly one shutdown command runs", len(children) == 1,
              f"children of the agent: {children}")
    busy_msg = next((p for typ, p in answers.values() if typ == T_ERROR), b"")
    tap.check("busy names the running command", b"sleep 30" in busy_msg, busy_msg)
    tap.check("the agent still runs", guest.alive())
    host.close()
finally:
    # The command would outlive the agent: end it by PID.
    if guest:
        end_children(guest.pid)
    env.close()
tap.done()
