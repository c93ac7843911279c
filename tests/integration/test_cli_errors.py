#!/usr/bin/env python3
"""Clear errors: daemon not running, unknown VM, unknown service, bad input,
refused by permissions (file mode and SO_PEERCRED)."""
import os
import pwd

from vmictest import Env, Tap

tap = Tap()
env = Env(tap)
try:
    r = env.vmic("list")
    tap.check("no daemon: exit 1", r.returncode == 1, r.returncode)
    tap.check("no daemon: says it is not running and how to start it",
              "not running" in r.stderr and "vmic-hostd" in r.stderr, r.stderr)
    r = env.vmic("check", "vm1")
    tap.check("no daemon: check exits 3 (UNKNOWN)", r.returncode == 3, (r.returncode, r.stdout))

    env.start_hostd()
    r = env.vmic("list")
    tap.check("empty registry: says how to add a VM", r.returncode == 0 and "vmic add" in r.stdout,
              r.stdout)
    env.start_guest("vm1")
    env.add("vm1")

    r = env.vmic("status", "nosuch")
    tap.check("unknown VM: exit 1 and names it", r.returncode == 1 and "nosuch" in r.stderr, r.stderr)
    r = env.vmic("enable", "vm1", "teleport")
    tap.check("unknown service: lists the valid ones",
              r.returncode != 0 and "heartbeat" in r.stderr and "shutdown" in r.stderr, r.stderr)
    rep = env.ctl({"cmd": "enable", "vm": "vm1", "service": "teleport"})
    tap.check("daemon rejects an unknown service too",
              rep["ok"] is False and rep["error"]["code"] == "unknown-service" and
              "heartbeat" in rep["error"]["message"], rep)
    r = env.vmic("add", "vm1", "--channel", "unix:/tmp/x.sock")
    tap.check("duplicate name: refused", r.returncode == 1 and "vm1" in r.stderr, r.stderr)
    r = env.vmic("add", "vm2", "--channel", "tcp:1.2.3.4:5")
    tap.check("bad channel: says what a channel looks like",
              r.returncode == 1 and "unix:" in r.stderr, r.stderr)
    r = env.vmic("add", "bad/name", "--channel", "unix:/tmp/x.sock")
    tap.check("bad VM name: refused", r.returncode != 0 and r.stderr.strip(), r.stderr)
    r = env.vmic("add", "vm3", "--channel", "unix:/tmp/x.sock", "--heartbeat-interval", "10ms")
    tap.check("interval out of range: refused", r.returncode != 0, r.stderr)
    r = env.vmic("frobnicate")
    tap.check("unknown command: usage exit 2 and the valid commands",
              r.returncode == 2 and "status" in r.stderr, (r.returncode, r.stderr))
    r = env.vmic("status")
    tap.check("missing argument: exit 2", r.returncode == 2, (r.returncode, r.stderr))

    rep = env.ctl({"cmd": "list", "bogus": 1})
    tap.check("unknown request member: bad-request",
              rep["ok"] is False and rep["error"]["code"] == "bad-request", rep)
    rep = env.ctl({"cmd": "nope"})
    tap.check("unknown command on the socket: unknown-command",
              rep["ok"] is False and rep["error"]["code"] == "unknown-command", rep)

    # Permissions: the socket is 0660; nobody is neither owner nor in the group.
    nobody = pwd.getpwnam("nobody").pw_uid
    mode = os.stat(env.sock).st_mode & 0o777
    tap.check("control socket mode 0660", mode == 0o660, oct(mode))
    os.chmod(env.dir, 0o755)
    r = env.vmic("list", user=str(nobody))
    tap.check("file permissions: refused with a hint about group vmic",
              r.returncode == 1 and "vmic" in r.stderr and "permission" in r.stderr.lower(),
              r.stderr)
    # Open the file mode: SO_PEERCRED still refuses.
    os.chmod(env.sock, 0o666)
    r = env.vmic("list", user=str(nobody))
    tap.check("SO_PEERCRED: refused by the daemon",
              r.returncode == 1 and "permission" in r.stderr.lower(), r.stderr)
    tap.check("daemon still serves root", env.vmic("list").returncode == 0)
finally:
    env.close()
tap.done()
