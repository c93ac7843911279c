#!/usr/bin/env python3
"""Key-Value Pair Exchange with real processes: a key set on the host is
in the guest's .kvp_pool_0 within a second; records appended to the
guest's .kvp_pool_1 by independent writer processes (fcntl locks as
hv_kvp_daemon, flock as other tools) and by `vmic-guestd kvp set` reach
the host; the Auto pool carries the guest's facts and pool 3 the host's;
`vmic kvp watch` shows changes as they happen; and the errors say what is
wrong: a key or value too long (with the limit), text that is not UTF-8,
a pool read-only from this side, the service off on the host or in the
guest, a key that is not there."""
import json
import os
import subprocess
import time

from kvplib import append_records, read_pool
from vmictest import GUESTD, VMIC, Env, Tap, wait_until

tap = Tap()
env = Env(tap)
watch = None


def host_records(vm, pool=None):
    args = ["kvp", "list", vm] + (["--pool", pool] if pool else [])
    return {(r["pool"], r["key"]): r["value"] for r in env.vmic_json(*args)["records"]}


def guestd_kvp(pools, *args):
    return subprocess.run([GUESTD, "--kvp-dir", pools, "kvp", *args],
                          capture_output=True, text=True, timeout=30)


try:
    pools = os.path.join(env.dir, "g1-pools")
    env.start_hostd()
    env.start_guest("g1", "--kvp-dir", pools)
    env.add("g1")
    tap.check("g1: heartbeat OK", env.wait_heartbeat("g1", "OK", 10) is not None)
    tap.check("the kvp service is OK",
              wait_until(lambda: env.service("g1", "kvp")["primary_status"] == "OK", 10),
              env.service("g1", "kvp"))

    # The pool files exist, in hv_kvp_daemon's modes.
    tap.check("the agent made the directory 0755 and pool files 0-4, 0644",
              wait_until(lambda: all(os.path.exists(os.path.join(pools, f".kvp_pool_{i}"))
                                     for i in range(5)), 5)
              and (os.stat(pools).st_mode & 0o777) == 0o755
              and all((os.stat(os.path.join(pools, f".kvp_pool_{i}")).st_mode & 0o777) == 0o644
                      for i in range(5)))

    # Host -> guest within a second.
    t0 = time.monotonic()
    r = env.vmic("kvp", "set", "g1", "Environment", "production")
    t = wait_until(lambda: read_pool(pools, 0).get("Environment") == "production", 5, 0.01)
    took = time.monotonic() - t0
    tap.check(f"a key set on the host is in .kvp_pool_0 within a second ({took * 1000:.0f} ms)",
              r.returncode == 0 and t and took < 1.0, (r.stderr, read_pool(pools, 0)))

    # The host's facts in pool 3.
    facts = read_pool(pools, 3)
    tap.check("pool 3 names the VM and carries its id",
              facts.get("VirtualMachineName") == "g1"
              and len(facts.get("VirtualMachineId", "")) == 36
              and facts.get("HostName"), facts)
    tap.check("the id is the one `vmic status g1 kvp` shows",
              facts.get("VirtualMachineId") == env.service("g1", "kvp")["vm_id"])

    # The guest's facts on the host.
    auto = wait_until(lambda: host_records("g1", "auto") or None, 5)
    uname = os.uname()
    tap.check("the Auto pool has the Hyper-V keys",
              auto and all(("auto", k) in auto for k in (
                  "FullyQualifiedDomainName", "IntegrationServicesVersion",
                  "NetworkAddressIPv4", "NetworkAddressIPv6", "OSBuildNumber", "OSName",
                  "OSMajorVersion", "OSMinorVersion", "OSVersion", "ProcessorArchitecture")),
              auto)
    tap.check("Auto: kernel and architecture are the guest's",
              auto and auto.get(("auto", "OSBuildNumber")) == uname.release
              and auto.get(("auto", "ProcessorArchitecture")) == uname.machine, auto)

    # Guest -> host: independent writers of both lock styles.
    for style in ("fcntl", "flock"):
        key = f"written-under-{style}"
        t0 = time.monotonic()
        rc = append_records(pools, [(key, f"hello from {style}")], style)
        seen = wait_until(lambda: host_records("g1", "guest").get(("guest", key)), 5, 0.02)
        tap.check(f"a record appended under {style} reaches the host "
                  f"({(time.monotonic() - t0) * 1000:.0f} ms)",
                  rc == 0 and seen == f"hello from {style}", host_records("g1", "guest"))

    # A writer that holds the lock while it writes several records: the
    # agent reads after it, and gets every one.
    rc = append_records(pools, [(f"slow-{i}", str(i)) for i in range(5)], "flock", hold=0.1)
    tap.check("a writer holding its lock for a while: every record arrives",
              rc == 0 and wait_until(lambda: all(("guest", f"slow-{i}") in host_records("g1", "guest")
                                                 for i in range(5)), 5))

    # The guest CLI.
    r = guestd_kvp(pools, "set", "from-cli", "value with\ttab")
    tap.check("vmic-guestd kvp set", r.returncode == 0, r.stderr)
    tap.check("... reaches the host",
              wait_until(lambda: host_records("g1", "guest").get(("guest", "from-cli"))
                         == "value with\ttab", 5))
    r = guestd_kvp(pools, "get", "Environment")
    tap.check("vmic-guestd kvp get reads the host's pool 0", r.stdout == "production\n", r)
    r = guestd_kvp(pools, "list", "--pool", "guest")
    tap.check("vmic-guestd kvp list: one escaped line per record",
              "guest\tfrom-cli\tvalue with\\ttab\n" in r.stdout, r.stdout)
    r = guestd_kvp(pools, "delete", "from-cli")
    tap.check("vmic-guestd kvp delete: gone on the host",
              r.returncode == 0 and wait_until(
                  lambda: ("guest", "from-cli") not in host_records("g1", "guest"), 5))

    # Watch.
    watch = subprocess.Popen([VMIC, "--socket", env.sock, "kvp", "watch", "g1", "--json"],
                             stdout=subprocess.PIPE, text=True)
    first = json.loads(watch.stdout.readline())
    tap.check("kvp watch: the reply first", first.get("vm") == "g1" and first.get("connected"),
              first)
    env.vmic("kvp", "set", "g1", "watched", "1", check=True)
    append_records(pools, [("guest-watched", "2")], "fcntl")
    env.vmic("kvp", "delete", "g1", "watched", check=True)
    lines = []
    deadline = time.monotonic() + 5
    while len(lines) < 3 and time.monotonic() < deadline:
        lines.append(json.loads(watch.stdout.readline())["kvp"])
    got = [(c["pool"], c["key"], c["value"]) for c in lines]
    tap.check("kvp watch: set, guest's record and delete as they happen",
              ("external", "watched", "1") in got and ("guest", "guest-watched", "2") in got
              and ("external", "watched", None) in got, got)

    # Get, JSON.
    g = env.vmic_json("kvp", "get", "g1", "Environment")
    tap.check("kvp get --json", g == {"pool": "external", "key": "Environment",
                                      "value": "production", "stale": False}, g)
    r = env.vmic("kvp", "get", "g1", "Environment")
    tap.check("kvp get prints the value as it is", r.stdout == "production\n", r.stdout)

    # Errors.
    r = env.vmic("kvp", "set", "g1", "k" * 600, "v")
    tap.check("a key too long: the error says the limit",
              r.returncode == 1 and "600 bytes" in r.stderr and "at most 511" in r.stderr, r.stderr)
    r = env.vmic("kvp", "set", "g1", "k", "v" * 3000)
    tap.check("a value too long: the error says the limit",
              r.returncode == 1 and "3000 bytes" in r.stderr and "at most 2047" in r.stderr, r.stderr)
    r = guestd_kvp(pools, "set", "k", "v" * 3000)
    tap.check("the guest CLI says the limit too", r.returncode == 1 and "at most 2047" in r.stderr,
              r.stderr)
    r = subprocess.run([GUESTD, "--kvp-dir", pools, "kvp", "set", b"bad\xff".decode(
        "utf-8", "surrogateescape"), "v"], capture_output=True, text=True)
    tap.check("the guest CLI refuses a key that is not UTF-8",
              r.returncode == 1 and "not valid UTF-8" in r.stderr, r.stderr)
    reply = env.ctl({"cmd": "kvp-set", "vm": "g1", "key": "", "value": "x"})
    tap.check("an empty key is refused", reply["error"]["code"] == "invalid-argument"
              and "empty" in reply["error"]["message"], reply)
    r = env.vmic("kvp", "set", "g1", "x", "y", "--pool", "guest")
    tap.check("set of the guest pool from the host: read-only",
              r.returncode == 1 and "written by the guest" in r.stderr, r.stderr)
    reply = env.ctl({"cmd": "kvp-set", "vm": "g1", "key": "x", "value": "y",
                     "pool": "auto-external"})
    tap.check("set of auto-external: read-only", reply["error"]["code"] == "read-only", reply)
    r = guestd_kvp(pools, "set", "x", "y", "--pool", "external")
    tap.check("the guest CLI: pool 0 is the host's",
              r.returncode == 1 and "written by the host" in r.stderr, r.stderr)
    r = env.vmic("kvp", "get", "g1", "nope")
    tap.check("get of a missing key: not found", r.returncode == 1 and "no key 'nope'" in r.stderr,
              r.stderr)
    r = env.vmic("kvp", "delete", "g1", "nope")
    tap.check("delete of a missing key: not found", r.returncode == 1 and "no key 'nope'" in r.stderr,
              r.stderr)
    env.vmic("disable", "g1", "kvp", check=True)
    r = env.vmic("kvp", "set", "g1", "a", "b")
    tap.check("kvp disabled on the host: set says so and how to enable",
              r.returncode == 1 and "disabled for g1 on the host" in r.stderr
              and "vmic enable g1 kvp" in r.stderr, r.stderr)
    env.vmic("enable", "g1", "kvp", check=True)

    # A guest whose configuration turns kvp off.
    env.start_guest("g2", "--disable", "kvp", "--kvp-dir", os.path.join(env.dir, "g2-pools"))
    env.add("g2")
    env.wait_heartbeat("g2", "OK", 10)
    r = env.vmic("kvp", "set", "g2", "a", "b")
    tap.check("kvp off in the guest: set says so",
              r.returncode == 1 and "disabled in the guest's configuration" in r.stderr, r.stderr)
    tap.check("... and the agent made no pool files",
              not os.path.exists(os.path.join(env.dir, "g2-pools")))

    # After all that, the pool file is still what the host holds.
    tap.check("pool 0 in the guest equals the host's External pool",
              wait_until(lambda: read_pool(pools, 0) == {
                  k: v for (p, k), v in host_records("g1", "external").items()}, 5),
              (read_pool(pools, 0), host_records("g1", "external")))
    tap.check("vmic-hostd still running", env.hostd_proc.alive())
finally:
    if watch:
        watch.kill()
        watch.wait()
    env.close()
tap.done()
