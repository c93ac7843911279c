#!/usr/bin/env python3
"""vmic exec under load and at its ends: 100 MiB through stdin and through
stdout with a hash check (no cap), Ctrl-C forwarded, a command that ignores
SIGINT ended by --timeout (124, its process group gone), 50 sessions at
once, a guest cap refused clearly, and vmic-hostd killed mid-session (the
agent ends the session's processes: no orphan)."""
import hashlib
import os
import signal
import subprocess
import time

from sessionlib import GUEST_CONF, popen, procs_with, run, start
from vmictest import Tap, wait_until

MIB = 1024 * 1024
tap = Tap()
env = None
try:
    env, guest = start(tap)
    data = os.urandom(4 * MIB) * 25  # 100 MiB
    want = hashlib.sha256(data).hexdigest()
    t0 = time.monotonic()
    r = run(env, "--", "sha256sum", input=data, timeout=300)
    took = time.monotonic() - t0
    tap.check("100 MiB through stdin: the guest's hash matches",
              r.returncode == 0 and r.stdout.split()[0].decode() == want,
              (r.returncode, r.stdout[:80], r.stderr[-300:]))
    tap.note(f"stdin 100 MiB in {took:.2f} s")
    t0 = time.monotonic()
    r = run(env, "--", "head", "-c", str(100 * MIB), "/dev/urandom", timeout=300)
    took = time.monotonic() - t0
    tap.check("100 MiB through stdout: every byte arrives",
              r.returncode == 0 and len(r.stdout) == 100 * MIB,
              (r.returncode, len(r.stdout), r.stderr[-300:]))
    r2 = run(env, "--", "sh", "-c", f"head -c {100 * MIB} /dev/zero | sha256sum", timeout=300)
    zero = hashlib.sha256(bytes(100 * MIB)).hexdigest()
    r3 = run(env, "--", "head", "-c", str(100 * MIB), "/dev/zero", timeout=300)
    tap.check("100 MiB of stdout hash the same on both sides",
              r3.returncode == 0 and hashlib.sha256(r3.stdout).hexdigest() == zero and
              r2.stdout.split()[0].decode() == zero, (len(r3.stdout), r2.stdout[:80]))
    tap.note(f"stdout 100 MiB in {took:.2f} s")

    # Ctrl-C: SIGINT to vmic reaches the command's process group.
    p = popen(env, "--", "sh", "-c", "echo ready; exec sleep 1000.25",
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = p.stdout.readline()
    tap.check("the command started", line == b"ready\n", line)
    wait_until(lambda: procs_with("sleep 1000.25"), 5)
    p.send_signal(signal.SIGINT)
    try:
        rc = p.wait(15)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    tap.check("Ctrl-C (SIGINT) is forwarded: 128+2", rc == 130, rc)
    tap.check("nothing of it is left", wait_until(lambda: not procs_with("sleep 1000.25"), 5),
              procs_with("sleep 1000.25"))

    # SIGTERM to vmic: the command gets it.
    p = popen(env, "--", "sh", "-c", "trap 'echo got-term; exit 9' TERM; echo ready; "
              "while :; do sleep 0.1; done",
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.send_signal(signal.SIGTERM)
    try:
        out, _ = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        out = b""
    tap.check("SIGTERM to vmic reaches the command (its trap runs, exit 9)",
              p.returncode == 9 and b"got-term" in out, (p.returncode, out))

    # A background child holding stdout: the session ends with the leader.
    t0 = time.monotonic()
    r = run(env, "--", "sh", "-c", "sleep 1000.125 & echo leader-done")
    tap.check("a background child does not hold the session open, and is ended",
              r.returncode == 0 and r.stdout == b"leader-done\n" and time.monotonic() - t0 < 10
              and wait_until(lambda: not procs_with("sleep 1000.125"), 5),
              (r.returncode, r.stdout, procs_with("sleep 1000.125")))

    # A command that ignores SIGINT and SIGTERM: --timeout ends its group.
    p = popen(env, "--timeout", "2s", "--", "sh", "-c",
              "trap '' INT TERM HUP; sleep 1000.5 & echo ready; wait",
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    try:
        rc = p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    took = time.monotonic() - t0
    tap.check("SIGINT ignored, --timeout 2s: exit status 124", rc == 124, rc)
    tap.check("ended by the timeout plus the grace time, not later", took < 10, f"{took:.1f}s")
    tap.check("its whole process group is gone",
              wait_until(lambda: not procs_with("sleep 1000.5"), 5), procs_with("sleep 1000.5"))

    # 50 sessions at once, each with its own output.
    ps = [popen(env, "--", "sh", "-c", f"sleep 1; echo session-{i}",
                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(50)]
    outs = [p.communicate(timeout=120) for p in ps]
    good = sum(1 for i, (p, (o, e)) in enumerate(zip(ps, outs))
               if p.returncode == 0 and o == f"session-{i}\n".encode())
    tap.check("50 concurrent sessions all finish with their own output", good == 50,
              [(p.returncode, e[-200:]) for p, (o, e) in zip(ps, outs) if p.returncode][:3])
    st = env.service("vm1", "session")
    tap.check("status shows no session left", st and st.get("sessions") == 0, st)
finally:
    if env:
        env.close()

# The guest's cap, and hostd killed under a session.
env = None
try:
    env, guest = start(tap, conf=GUEST_CONF.replace("max-sessions = 64", "max-sessions = 2"))
    ps = [popen(env, "--", "sh", "-c", "echo ready; exec sleep 1000.75",
                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for p in ps:
        p.stdout.readline()
    r = run(env, "--", "true", text=True)
    tap.check("past [session] max-sessions: refused with the key's name",
              r.returncode != 0 and "max-sessions" in r.stderr, (r.returncode, r.stderr))
    tap.check("two sessions' processes run", len(procs_with("sleep 1000.75")) == 2,
              procs_with("sleep 1000.75"))
    env.hostd_proc.kill9()
    rcs = []
    for p in ps:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
        rcs.append((p.returncode, p.stderr.read().decode()))
    tap.check("vmic says vmic-hostd went away", all(rc != 0 and "went away" in err for rc, err in rcs),
              rcs)
    tap.check("the agent ends the sessions' processes: no orphan",
              wait_until(lambda: not procs_with("sleep 1000.75"), 10), procs_with("sleep 1000.75"))
    tap.check("the agent still runs", guest.alive())
finally:
    if env:
        env.close()
tap.done()
