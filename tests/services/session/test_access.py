#!/usr/bin/env python3
"""Who may open a session: a member of the control socket's group who is
not in hostd's [session] group is refused with a clear message; once
[session] group names a group of theirs (a reload), the same user runs a
command; the service disabled on the host or in the guest is refused with
the switch to turn."""
import os
import pwd
import signal

from sessionlib import GUEST_CONF
from vmictest import Env, Tap, wait_until

tap = Tap()
env = Env(tap)
try:
    os.chmod(env.dir, 0o755)
    nobody = str(pwd.getpwnam("nobody").pw_uid)
    base = "[daemon]\nsocket-group = nogroup\n[connection]\nretry-min = 100ms\nretry-max = 1s\n"
    env.start_hostd(conf=base)
    env.start_guest("vm1", conf=GUEST_CONF)
    env.add("vm1")
    env.wait_heartbeat("vm1", "OK", 10)
    r = env.vmic("exec", "vm1", "--", "true")
    tap.check("disabled on the host: refused, naming vmic enable",
              r.returncode == 1 and "vmic enable vm1 session" in r.stderr, r.stderr)
    env.vmic("enable", "vm1", "session", check=True)
    wait_until(lambda: (env.service("vm1", "session") or {}).get("primary_status") == "OK", 10)
    r = env.vmic("exec", "vm1", "--", "true", user=nobody)
    tap.check("a socket-group member outside [session] group: forbidden, naming the key",
              r.returncode != 0 and "may open sessions" in r.stderr and
              "[session]" in r.stderr, r.stderr)
    with open(env.hostd_conf, "w") as f:
        f.write(base + "[session]\ngroup = nogroup\n")
    env.hostd_proc.signal(signal.SIGHUP)
    ok = wait_until(lambda: env.vmic("exec", "vm1", "--", "true", user=nobody).returncode == 0, 10)
    tap.check("after a reload with [session] group = nogroup: the member runs a command", ok,
              env.vmic("exec", "vm1", "--", "true", user=nobody).stderr)
    r = env.vmic("exec", "vm1", "--", "id", "-un", user=nobody)
    tap.check("as the guest's first user (root), not as the host user",
              r.stdout.strip() == "root", (r.stdout, r.stderr))
    ev = [e for e in env.events("vm1") if e["kind"] == "session-start"]
    tap.check("the event names the host user nobody", any("nobody" in e["message"] for e in ev), ev)
    env.start_guest("vm2", conf="[session]\nenabled = no\n")
    env.add("vm2")
    env.vmic("enable", "vm2", "session", check=True)
    env.wait_heartbeat("vm2", "OK", 10)
    r = env.vmic("exec", "vm2", "--", "true")
    tap.check("disabled in the guest: refused, naming [session] enabled",
              r.returncode == 1 and "[session] enabled" in r.stderr, r.stderr)
    env.start_guest("vm3", conf="[session]\nenabled = yes\n")
    env.add("vm3")
    env.vmic("enable", "vm3", "session", check=True)
    env.wait_heartbeat("vm3", "OK", 10)
    wait_until(lambda: (env.service("vm3", "session") or {}).get("primary_status") == "OK", 10)
    r = env.vmic("exec", "vm3", "--", "true")
    tap.check("no users listed in the guest: refused, saying none may",
              r.returncode == 1 and "may not run sessions" in r.stderr and
              "add names" in r.stderr, r.stderr)
finally:
    env.close()
tap.done()
