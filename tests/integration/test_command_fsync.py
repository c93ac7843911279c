#!/usr/bin/env python3
"""A command that changes the registry costs one fsync, not two: its change
and its event are one transaction (docs/architecture.md). Counted with
strace on the daemon while 20 `set` commands run one after the other;
skips (77) without strace."""
import os
import shutil
import signal
import subprocess
import sys

from vmictest import Env, Tap, wait_until

SETS = 20

if not shutil.which("strace"):
    print("1..0 # SKIP strace is not installed (scripts/deps.sh installs it)")
    sys.exit(77)

tap = Tap()
env = Env(tap)
tracer = None
try:
    env.start_hostd()
    env.start_guest("vm1")
    env.add("vm1")
    tap.check("vm1 OK", env.wait_heartbeat("vm1", "OK", 10) is not None)
    tap.check("nothing waits to be written",
              wait_until(lambda: env.ctl({"cmd": "stats"})["result"].get("events", {}).get("pending", 0) == 0, 10))
    pid = env.hostd_proc.pid
    trace = os.path.join(env.dir, "fsync.trace")
    tracer = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync,sync_file_range",
                               "-o", trace, "-p", str(pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def traced():
        tasks = os.listdir(f"/proc/{pid}/task")
        for t in tasks:
            with open(f"/proc/{pid}/task/{t}/status") as f:
                if not any(ln.startswith("TracerPid:") and ln.split()[1] != "0" for ln in f):
                    return False
        return True

    tap.check("strace follows every thread of the daemon", wait_until(traced, 10))
    for i in range(SETS):
        env.vmic("set", "vm1", "--power-off", f"exec:true {i}", check=True)
    tracer.send_signal(signal.SIGINT)
    tracer.wait(10)
    tracer = None
    with open(trace) as f:
        syncs = [ln for ln in f if "sync" in ln and "resumed" not in ln]
    tap.note(f"{len(syncs)} fsync-family calls for {SETS} commands")
    tap.check(f"at most one fsync per command (and a checkpoint's): <= {SETS + 3}",
              len(syncs) <= SETS + 3, "".join(syncs[:10]))
    tap.check("each command was stored (its event too)",
              len([e for e in env.events("vm1") if e["kind"] == "vm-changed"]) == SETS)
finally:
    if tracer:
        tracer.kill()
        tracer.wait()
    env.close()
tap.done()
