#!/usr/bin/env python3
"""vmic stop with local agents: graceful stop (the guest's command ends the
agent, the channel closes), refusal when the guest disables shutdown,
--turn-off through an exec power backend, a hung agent with --force, and
the clear error when there is no agent and no backend."""
import os
import signal
import subprocess
import time

from vmictest import Env, Tap, wait_until

tap = Tap()
env = Env(tap)
try:
    env.start_hostd()
    # $PPID of the command's shell is the agent: "powering off" ends it.
    g1 = env.start_guest("vm1", conf="[shutdown]\npoweroff-command = kill -TERM $PPID\n")
    env.add("vm1")
    env.wait_heartbeat("vm1", "OK", 10)
    r = env.vmic("stop", "vm1", "--reason", "host maintenance", "--timeout", "10s", "--json")
    tap.check("graceful stop succeeds", r.returncode == 0, r.stderr)
    if r.returncode == 0:
        import json
        res = json.loads(r.stdout)
        tap.check("outcome stopped, graceful", res.get("outcome") == "stopped" and
                  res.get("graceful") is True, res)
    tap.check("the agent ran its command and exited",
              wait_until(lambda: not g1.alive(), 5) and True, g1.output())
    tap.check("the agent logged the reason", "host maintenance" in g1.output(), g1.output())
    steps = [e for e in env.events("vm1") if e["kind"] == "shutdown"]
    tap.check("shutdown steps are events", len(steps) >= 2, steps)
    lost = [e for e in env.events("vm1") if e["to"] == "Lost Communication"]
    tap.check("an intended stop is never Lost Communication, not even for a moment",
              lost == [], lost)
    hb = env.heartbeat("vm1")
    tap.check("stopped on purpose: heartbeat No Contact, not Lost Communication",
              hb == "No Contact", hb)
    r = env.vmic("check", "vm1")
    tap.check("stopped on purpose: check is not CRITICAL", r.returncode != 2,
              (r.returncode, r.stdout))
    g1 = env.start_guest("vm1", conf="[shutdown]\npoweroff-command = kill -TERM $PPID\n")
    tap.check("started again: OK", env.wait_heartbeat("vm1", "OK", 10) is not None,
              env.status("vm1"))

    # The guest accepts, then its command fails: the stop ends at once with
    # the guest's words and the exit status, long before its timeout.
    env.start_guest("vm4", conf="[shutdown]\npoweroff-command = echo no >&2; exit 3\n")
    env.add("vm4")
    env.wait_heartbeat("vm4", "OK", 10)
    t0 = time.monotonic()
    r = env.vmic("stop", "vm4", "--timeout", "60s")
    took = time.monotonic() - t0
    tap.check("failed command: the stop fails with the exit status",
              r.returncode != 0 and "exit status 3" in r.stderr and "failed" in r.stderr,
              r.stderr)
    tap.check("failed command: reported at once, not after the 60 s timeout", took < 30,
              f"{took:.1f}s")
    tap.check("failed command: the heartbeat stays OK", env.heartbeat("vm4") == "OK",
              env.heartbeat("vm4"))
    r = env.ctl({"cmd": "stop", "vm": "vm4", "timeout_ms": 60000})
    tap.check("failed command: the control API's code is `failed`",
              not r["ok"] and r["error"]["code"] == "failed", r)

    # Power backend: exec kill of the agent process.
    g2 = env.start_guest("vm2")
    env.add("vm2", None, "--power-off", f"exec:kill -KILL {g2.pid}")
    env.wait_heartbeat("vm2", "OK", 10)
    r = env.vmic("stop", "vm2", "--turn-off", "--json")
    tap.check("--turn-off uses the power backend at once", r.returncode == 0 and
              '"turned-off"' in r.stdout, r.stdout + r.stderr)
    tap.check("the backend killed the agent", wait_until(lambda: not g2.alive(), 5) and True)

    # A power backend that hangs, with a child in the background: killed
    # with its whole process group after power-timeout, its output kept.
    env.add("vm5", f"unix:{os.path.join(env.dir, 'vm5-nothing.sock')}", "--power-off",
            "exec:echo powering vm5 off; sleep 1234.5 & sleep 1234.5")
    env.vmic("set", "vm5", "shutdown", "power-timeout=1s", check=True)
    r = env.vmic("stop", "vm5", "--turn-off")
    tap.check("hung power backend: fails after power-timeout, with its output",
              r.returncode != 0 and "timed out after 1s" in r.stderr
              and "powering vm5 off" in r.stderr, r.stderr)
    def leftovers():
        return subprocess.run(["pgrep", "-f", "sleep 1234.5"], capture_output=True,
                              text=True).stdout.split()
    tap.check("hung power backend: its process group is gone, background child too",
              wait_until(lambda: not leftovers(), 5), leftovers())

    # Hung agent: graceful times out, --force powers off.
    g3 = env.start_guest("vm3")
    env.add("vm3", None, "--power-off", f"exec:kill -KILL {g3.pid}")
    env.wait_heartbeat("vm3", "OK", 10)
    g3.signal(signal.SIGSTOP)
    r = env.vmic("stop", "vm3", "--timeout", "2s")
    tap.check("hung agent without --force: error that suggests --force",
              r.returncode != 0 and "--force" in r.stderr, r.stderr)
    r = env.vmic("stop", "vm3", "--timeout", "2s", "--force", "--json")
    tap.check("hung agent with --force: turned off", r.returncode == 0 and
              '"turned-off"' in r.stdout, r.stdout + r.stderr)

    # No agent, no backend.
    env.add("ghost", f"unix:{os.path.join(env.dir, 'nothing.sock')}")
    r = env.vmic("stop", "ghost", "--turn-off")
    tap.check("no backend: says what is missing", r.returncode != 0 and
              "power-off" in r.stderr, r.stderr)
    r = env.vmic("stop", "ghost", "--timeout", "1s")
    tap.check("no agent and no backend: clear error", r.returncode != 0 and r.stderr.strip(),
              r.stderr)
finally:
    env.close()
tap.done()
