#!/usr/bin/env python3
"""A cgroup per session: the test makes a cgroup of its own below its own
(cgroup v2), moves the agent into it, and checks that each session's
command runs in a vmic-session-N below it, that a process that left the
session's process group with setsid is gone once the session ended, and
that no session cgroup is left. Skipped (77, with the reason) where there
is no writable cgroup v2 hierarchy. Every cgroup made here is removed."""
import os
import sys

from sessionlib import GUEST_CONF, procs_with, run
from vmictest import Env, Tap, wait_until


def cg_mount():
    for m in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if os.path.exists(os.path.join(m, "cgroup.procs")) and \
                os.path.exists(os.path.join(m, "cgroup.controllers")):
            return m
    return None


def own_cgroup():
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    return None


mnt, own = cg_mount(), own_cgroup()
if not mnt or own is None:
    print("1..0 # SKIP no cgroup v2 hierarchy (cgroup.controllers) is mounted")
    sys.exit(77)
test_cg = os.path.join(mnt + ("" if own == "/" else own), f"vmic-test-{os.getpid()}")
try:
    os.mkdir(test_cg)
except OSError as e:
    print(f"1..0 # SKIP cannot make a cgroup below this test's own ({test_cg}): {e}")
    sys.exit(77)

tap = Tap()
env = Env(tap)
try:
    env.start_hostd()
    guest = env.start_guest("vm1", conf=GUEST_CONF)
    with open(os.path.join(test_cg, "cgroup.procs"), "w") as f:
        f.write(str(guest.p.pid))
    env.add("vm1")
    env.vmic("enable", "vm1", "session", check=True)
    env.wait_heartbeat("vm1", "OK", 10)
    r = run(env, "--", "cat", "/proc/self/cgroup", text=True)
    rel = test_cg[len(mnt):]
    tap.check("the command runs in a vmic-session-N below the agent's cgroup",
              r.returncode == 0 and f"0::{rel}/vmic-session-" in r.stdout, (r.stdout, r.stderr))
    tap.check("the agent says once that sessions get cgroups",
              "each session runs in a cgroup of its own" in guest.output(), guest.output()[-2000:])
    marker = "4247.5"
    r = run(env, "--", "sh", "-c",
            f"setsid sleep {marker} >/dev/null 2>&1 </dev/null & sleep 0.2; echo started",
            text=True)
    tap.check("a command that started setsid sleep ended normally",
              r.returncode == 0 and r.stdout == "started\n", (r.returncode, r.stdout, r.stderr))
    gone = wait_until(lambda: not procs_with(f"sleep {marker}"), 5)
    tap.check("the process that left the group with setsid is gone with the session",
              gone, procs_with(f"sleep {marker}"))
    r = run(env, "--timeout", "1", "--", "sh", "-c",
            f"setsid sleep {marker}1 & exec sleep 30", text=True)
    tap.check("a timeout (124): ...", r.returncode == 124, (r.returncode, r.stderr))
    tap.check("...takes the setsid'd process holding stdout with it",
              wait_until(lambda: not procs_with(f"sleep {marker}1"), 5),
              procs_with(f"sleep {marker}1"))
    r = run(env, "--", "/no/such/program", text=True)
    tap.check("a command that cannot start: a clear error (its cgroup removed, below)",
              r.returncode != 0 and "/no/such/program" in r.stderr, (r.returncode, r.stderr))
    left = lambda: [d for d in os.listdir(test_cg) if d.startswith("vmic-session-")]
    tap.check("no session cgroup is left", wait_until(lambda: not left(), 5), left())
finally:
    for pid in procs_with("sleep 4247.5"):
        os.kill(pid, 9)
    env.close()
    wait_until(lambda: not open(os.path.join(test_cg, "cgroup.procs")).read().strip(), 5)
    for d in os.listdir(test_cg):
        if os.path.isdir(os.path.join(test_cg, d)):
            try:
                os.rmdir(os.path.join(test_cg, d))
            except OSError:
                pass
    os.rmdir(test_cg)
tap.done()
