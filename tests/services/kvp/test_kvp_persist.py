#!/usr/bin/env python3
"""KVP state survives both daemons: the External pool across a restart and
a kill -9 of vmic-hostd right after a reply (acknowledged is durable), and
it is copied again at every connect, so a key deleted while the agent was
away disappears from the guest's file too; the guest's pools stay on the
host, marked stale, while the agent is away or the host restarts, and what
changed in the guest's file meanwhile arrives when the agent is back; a
pool directory written for another VM (a cloned image, with the previous
host's facts in pool 3) has the host's pools cleared, with a log line."""
import os
import signal
import subprocess
import time

from kvplib import append_records, read_pool, write_pool_file
from vmictest import GUESTD, Env, Tap, wait_until

tap = Tap()
env = Env(tap)


def host_list(vm):
    return env.vmic_json("kvp", "list", vm)


def records(vm, pool):
    return {r["key"]: r["value"] for r in host_list(vm)["records"] if r["pool"] == pool}


def external_in_guest_is(pools, want):
    return wait_until(lambda: read_pool(pools, 0) == want, 10)


try:
    pools = os.path.join(env.dir, "pools")
    env.start_hostd()
    guest = env.start_guest("g1", "--kvp-dir", pools)
    env.add("g1")
    env.wait_heartbeat("g1", "OK", 10)
    env.vmic("kvp", "set", "g1", "a", "1", "b", "2", check=True)
    subprocess.run([GUESTD, "--kvp-dir", pools, "kvp", "set", "g-one", "x"], check=True)
    tap.check("set up: both ways",
              external_in_guest_is(pools, {"a": "1", "b": "2"})
              and wait_until(lambda: records("g1", "guest") == {"g-one": "x"}, 5))

    # A restart of vmic-hostd.
    env.hostd_proc.stop()
    env.start_hostd()
    tap.check("after a restart the External pool is there",
              records("g1", "external") == {"a": "1", "b": "2"}, records("g1", "external"))
    tap.check("... and the guest's pool too, before the agent is back",
              records("g1", "guest") == {"g-one": "x"}, records("g1", "guest"))
    tap.check("the session comes back, not stale",
              wait_until(lambda: env.service("g1", "kvp").get("stale") is False, 10),
              env.service("g1", "kvp"))

    # kill -9 right after the reply.
    env.vmic("kvp", "set", "g1", "c", "3", check=True)
    env.hostd_proc.kill9()
    env.start_hostd()
    tap.check("kill -9 after the reply: the key is durable",
              records("g1", "external").get("c") == "3", records("g1", "external"))
    tap.check("... and copied to the guest again",
              external_in_guest_is(pools, {"a": "1", "b": "2", "c": "3"}), read_pool(pools, 0))

    # The agent goes away; the host changes things meanwhile.
    guest.stop()
    tap.check("agent gone: the guest's pools read stale",
              wait_until(lambda: env.service("g1", "kvp").get("stale") is True, 10)
              and host_list("g1")["stale"] is True, env.service("g1", "kvp"))
    tap.check("... and are still there (last known)",
              records("g1", "guest") == {"g-one": "x"}, records("g1", "guest"))
    r = env.vmic("kvp", "set", "g1", "d", "4")
    tap.check("a set while the agent is away is stored for later",
              r.returncode == 0 and "when it connects" in r.stdout, r.stdout)
    env.vmic("kvp", "delete", "g1", "a", check=True)
    # ... and the guest's file changes while the agent is away.
    append_records(pools, [("g-two", "y")], "fcntl")
    tap.check("the host's stale copy stays as it was",
              records("g1", "guest") == {"g-one": "x"}, records("g1", "guest"))

    # A restart of vmic-hostd while the agent is away.
    env.hostd_proc.stop()
    env.start_hostd()
    tap.check("host restarted while the agent is away: the guest's pool, stale",
              host_list("g1")["stale"] is True and records("g1", "guest") == {"g-one": "x"},
              host_list("g1"))

    guest = env.start_guest("g1", "--kvp-dir", pools)
    tap.check("agent back: the deleted key is gone from its file, the new one there",
              external_in_guest_is(pools, {"b": "2", "c": "3", "d": "4"}), read_pool(pools, 0))
    tap.check("agent back: what was written meanwhile reaches the host",
              wait_until(lambda: records("g1", "guest") == {"g-one": "x", "g-two": "y"}, 10),
              records("g1", "guest"))

    # A key deleted from the guest's file while the agent was away.
    guest.stop()
    subprocess.run([GUESTD, "--kvp-dir", pools, "kvp", "delete", "g-one"], check=True)
    guest = env.start_guest("g1", "--kvp-dir", pools)
    tap.check("a key deleted in the guest while the agent was away: gone on the host",
              wait_until(lambda: records("g1", "guest") == {"g-two": "y"}, 10),
              records("g1", "guest"))
    tap.check("no line about clearing pools: same VM", "clearing" not in guest.output())

    # A clone: the directory was written for another VM id.
    guest.stop()
    with open(os.path.join(pools, ".vmic_vm_id"), "w") as f:
        f.write("00000000-1111-8222-a333-444444444444\n")
    write_pool_file(pools, 3, [("VirtualMachineName", "old-vm"), ("HostName", "old-host")])
    write_pool_file(pools, 0, [("stale-from-old-host", "z")])
    guest = env.start_guest("g1", "--kvp-dir", pools)
    tap.check("a cloned directory: the agent logs that it clears the host's pools",
              wait_until(lambda: "clearing the host's pools 0 (External) and 3" in guest.output()
                         and "00000000-1111-8222-a333-444444444444" in guest.output(), 10),
              guest.output()[-1500:])
    tap.check("... pool 3 names this VM and this host's id again",
              wait_until(lambda: read_pool(pools, 3).get("VirtualMachineName") == "g1", 10),
              read_pool(pools, 3))
    tap.check("... pool 0 holds only this host's records",
              external_in_guest_is(pools, {"b": "2", "c": "3", "d": "4"}), read_pool(pools, 0))
    with open(os.path.join(pools, ".vmic_vm_id")) as f:
        recorded = f.read().strip()
    tap.check("... and the new id is recorded beside the pools",
              recorded == env.service("g1", "kvp")["vm_id"], recorded)

    # A deprovisioned Hyper-V image: no id recorded, the old host in pool 3.
    guest.stop()
    os.unlink(os.path.join(pools, ".vmic_vm_id"))
    write_pool_file(pools, 3, [("HostName", "hyperv-host-17")])
    guest = env.start_guest("g1", "--kvp-dir", pools)
    tap.check("an image with pool 3 from an earlier host and no id: cleared, logged",
              wait_until(lambda: "not recorded" in guest.output()
                         and read_pool(pools, 3).get("VirtualMachineName") == "g1", 10),
              (guest.output()[-1500:], read_pool(pools, 3)))
    tap.check("vmic-hostd still running", env.hostd_proc.alive())
finally:
    env.close()
tap.done()
