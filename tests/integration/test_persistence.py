#!/usr/bin/env python3
"""State survives the daemon: registry and settings after a restart, and
after kill -9 right after a command was acknowledged."""
import signal

from vmictest import Env, Tap

tap = Tap()
env = Env(tap)
try:
    env.start_hostd()
    env.start_guest("vm1")
    env.start_guest("vm2")
    env.add("vm1")
    env.add("vm2")
    env.vmic("set", "vm2", "heartbeat", "interval=500ms", "threshold=5", check=True)
    env.vmic("disable", "vm1", "shutdown", check=True)
    tap.check("vm1 OK before restart", env.wait_heartbeat("vm1", "OK", 10) is not None)

    rc = env.hostd_proc.stop()
    tap.check("vmic-hostd exits 0 on SIGTERM", rc == 0, rc)
    env.start_hostd()
    names = sorted(v["name"] for v in env.vmic_json("list")["vms"])
    tap.check("registry kept across a restart", names == ["vm1", "vm2"], names)
    tap.check("disabled service stays disabled",
              env.service("vm1", "shutdown")["enabled"] is False, env.service("vm1", "shutdown"))
    hb = env.service("vm2", "heartbeat")
    tap.check("per-VM heartbeat settings kept",
              hb["settings"] == {"interval": "500ms", "threshold": "5"}
              and hb["inherited"] == [], hb)
    tap.check("reconnects after the restart", env.wait_heartbeat("vm1", "OK", 10) is not None,
              env.status("vm1"))

    # Acknowledged means durable: kill -9 right after the replies.
    env.start_guest("vm3")
    env.add("vm3")
    env.vmic("disable", "vm2", "heartbeat", check=True)
    env.vmic("remove", "vm1", check=True)
    env.hostd_proc.kill9()
    env.start_hostd()
    names = sorted(v["name"] for v in env.vmic_json("list")["vms"])
    tap.check("kill -9: add and remove were durable", names == ["vm2", "vm3"], names)
    tap.check("kill -9: disable was durable",
              env.service("vm2", "heartbeat")["enabled"] is False,
              env.service("vm2", "heartbeat"))
    kinds = [e["kind"] for e in env.events()]
    tap.check("events survive restarts", "vm-added" in kinds and "vm-removed" in kinds, kinds)
finally:
    env.close()
tap.done()
