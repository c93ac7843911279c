#!/usr/bin/env python3
"""vmic check: monitoring-plugin exit codes 0/1/2/3 and one status line."""
import signal

from vmictest import Env, Tap

tap = Tap()
env = Env(tap)
try:
    env.start_hostd()
    guest = env.start_guest("vm1")
    env.add("vm1")
    env.wait_heartbeat("vm1", "OK", 10)
    r = env.vmic("check", "vm1")
    tap.check("OK: exit 0", r.returncode == 0, (r.returncode, r.stdout))
    tap.check("OK: one plugin line with perfdata",
              r.stdout.startswith("VMIC OK") and "|" in r.stdout and
              len(r.stdout.strip().splitlines()) == 1, r.stdout)
    guest.signal(signal.SIGSTOP)
    env.wait_heartbeat("vm1", "Lost Communication", 10)
    r = env.vmic("check", "vm1")
    tap.check("Lost Communication: exit 2 CRITICAL",
              r.returncode == 2 and r.stdout.startswith("VMIC CRITICAL"), (r.returncode, r.stdout))
    guest.signal(signal.SIGCONT)
    env.wait_heartbeat("vm1", "OK", 10)
    env.vmic("disable", "vm1", "heartbeat", check=True)
    r = env.vmic("check", "vm1")
    tap.check("heartbeat disabled: exit 3 UNKNOWN", r.returncode == 3, (r.returncode, r.stdout))
    r = env.vmic("check", "nosuch")
    tap.check("unknown VM: exit 3 UNKNOWN", r.returncode == 3, (r.returncode, r.stdout))
    r = env.vmic("check", "vm1", "--json")
    tap.check("--json works for check", r.stdout.strip().startswith("{"), r.stdout)
finally:
    env.close()
tap.done()
