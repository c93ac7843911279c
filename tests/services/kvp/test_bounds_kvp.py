#!/usr/bin/env python3
"""What a member of the socket group (not root) can make vmic-hostd keep
through KVP, and what the daemon keeps in memory (issue 13, item 1).

- [access] group-max-vms: a group member adds VMs only while fewer are
  registered; root adds up to [daemon] max-vms.
- Settings that bound a VM's cost (kvp external-max-keys, guest-max-keys,
  guest-max-bytes; heartbeat interval, a floor) go no further than
  hostd.conf's value for a group member: `forbidden`, saying the range;
  root may raise them, and a member may keep what root gave.
- [kvp] client-write-rate / client-write-bytes: a token bucket per client
  user on kvp set/delete (records and bytes, 10 s of each at once); a
  user past it is told `limit` and when to try again, other users and
  root are not affected, and a write larger than the bucket is told to
  split.
- [kvp] max-total-bytes: the KVP data of all VMs (External and the
  guests' pools) stays within it: a set past it is refused with `limit`
  naming the key, a guest's records past it are kept out and counted.
- Pools on disk: after a restart, VMs that are not connected cost no
  memory for their pools (RSS stays near that of a daemon without them),
  kvp get/list read them from the store, an acknowledged set on such a
  VM survives kill -9, and a connecting agent gets its whole External
  pool; pools nobody uses leave memory again.
"""
import json
import os
import pwd
import subprocess
import sys
import time

from kvplib import append_records, read_pool
from vmictest import CHILD_ENV, VMIC, CtlClient, Env, Tap, wait_until

tap = Tap()

# Run as another user: send each request, print its reply.
CTL_AS = r'''
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
for req in json.load(sys.stdin):
    f.write(json.dumps(req).encode() + b"\n")
    f.flush()
    print(f.readline().decode().strip(), flush=True)
'''


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def group_limits(env):
    """Parts 1-4: one daemon, clients `nobody` and `daemon` in its group."""
    os.chmod(env.dir, 0o755)
    nobody = str(pwd.getpwnam("nobody").pw_uid)
    other = str(pwd.getpwnam("daemon").pw_uid)
    env.start_hostd(conf=(
        "[daemon]\nsocket-group = nogroup\n"
        "[connection]\nretry-min = 100ms\nretry-max = 1s\n"
        "[access]\n"
        f"group-channels = unix:{env.dir}/allowed-*.sock, vsock:*\n"
        "group-max-vms = 4\n"
        "[kvp]\nmax-total-bytes = 1M\nclient-write-rate = 20\n"
        "client-write-bytes = 4K\n"))

    def as_user(uid, *args):
        # Any user whose group is the socket group is a member.
        r = subprocess.run(["setpriv", f"--reuid={uid}", "--regid=nogroup",
                            "--clear-groups", VMIC, "--socket", env.sock, *args],
                           capture_output=True, text=True, timeout=60, env=CHILD_ENV)
        return r.returncode, r.stdout + r.stderr

    def ctl_as(uid, requests):
        # Requests one after the other on one connection of user uid.
        r = subprocess.run(["setpriv", f"--reuid={uid}", "--regid=nogroup",
                            "--clear-groups", sys.executable, "-c", CTL_AS, env.sock],
                           input=json.dumps(requests), capture_output=True, text=True,
                           timeout=60, env=CHILD_ENV)
        return [json.loads(line) for line in r.stdout.splitlines()] or [{"stderr": r.stderr}]

    # 1. How many VMs a group member may add.
    pools = os.path.join(env.dir, "r1-pools")
    env.start_guest("r1", "--kvp-dir", pools)
    env.add("r1")
    for i in range(1, 4):
        rc, out = as_user(nobody, "add", f"g{i}", "--channel",
                          f"unix:{env.dir}/allowed-g{i}.sock")
        tap.check(f"group member adds g{i} ({i + 1} of group-max-vms 4)", rc == 0, out)
    rc, out = as_user(nobody, "add", "g4", "--channel", f"unix:{env.dir}/allowed-g4.sock")
    tap.check("group member: the fifth VM is refused with a limit naming group-max-vms",
              rc != 0 and "group-max-vms" in out and "(4)" in out, out)
    tap.check("... and is not registered",
              "g4" not in [v["name"] for v in env.vmic_json("list")["vms"]])
    r = env.vmic("add", "r2", "--channel", f"unix:{env.dir}/r2.sock")
    tap.check("root adds beyond group-max-vms (up to max-vms)", r.returncode == 0, r.stderr)

    # 2. Settings with a cost: no further than hostd.conf for a member.
    rc, out = as_user(nobody, "set", "g1", "kvp", "external-max-keys=100000")
    tap.check("group member: external-max-keys above the daemon's value is forbidden, "
              "with the range", rc != 0 and "1..16384" in out and "external-max-keys" in out
              and "root" in out, out)
    tap.check("... and the VM keeps its value",
              env.service("g1", "kvp")["settings"]["external-max-keys"] == "16384")
    rc, out = as_user(nobody, "set", "g1", "kvp", "guest-max-bytes=256M")
    tap.check("group member: guest-max-bytes above 1M is forbidden",
              rc != 0 and "4K..1M" in out, out)
    rc, out = as_user(nobody, "set", "g1", "kvp", "guest-max-keys=5000")
    tap.check("group member: guest-max-keys above 1024 is forbidden",
              rc != 0 and "1..1024" in out, out)
    rc, out = as_user(nobody, "set", "g1", "heartbeat", "interval=100ms")
    tap.check("group member: a heartbeat interval below the daemon's 1s is forbidden",
              rc != 0 and "1s..1h" in out, out)
    rc, out = as_user(nobody, "set", "g1", "kvp", "external-max-keys=100", "guest-max-keys=10")
    tap.check("group member may lower the bounds", rc == 0, out)
    rc, out = as_user(nobody, "set", "g1", "heartbeat", "interval=5s")
    tap.check("group member may lengthen the interval", rc == 0, out)
    r = env.vmic("set", "g1", "kvp", "external-max-keys=100000")
    tap.check("root raises external-max-keys past the daemon's value", r.returncode == 0,
              r.stderr)
    rc, out = as_user(nobody, "set", "g1", "kvp", "external-max-keys=100000")
    tap.check("group member may keep what root gave (the VM's current value)", rc == 0, out)
    rc, out = as_user(nobody, "set", "g2", "kvp", "external-max-keys=100000")
    tap.check("... but not give it to another VM", rc != 0 and "may set" in out, out)

    # 3. The rate of writes per client user: 20 records/s, 4K/s, 10 s at once.
    # Ten writes of 50 records, one after the other on one connection:
    # what refills meanwhile (20 a second) is far below one write.
    reqs = [{"cmd": "kvp-set", "vm": "g2", "items": {f"n{i:03d}": "x" for i in range(50)}}
            for _ in range(10)]
    replies = ctl_as(nobody, reqs)
    first = next((i for i, r in enumerate(replies) if not r.get("ok")), None)
    tap.check("writes of 50 records in a row: the fifth finds the bucket (200) spent",
              first == 4 and all(r.get("ok") for r in replies[:4]), replies[:6])
    refused = replies[first]["error"] if first is not None else {}
    tap.check("... with `limit`, naming the keys, and when to try again",
              refused.get("code") == "limit" and "client-write-rate" in refused["message"]
              and "try again in" in refused["message"], refused)
    rc, out = as_user(other, "kvp", "set", "g2", "other-user", "y")
    tap.check("another user in the group is not held by nobody's bucket", rc == 0, out)
    r = env.vmic("kvp", "set", "g2", *[x for i in range(250) for x in (f"r{i:03d}", "x")])
    tap.check("root is not limited", r.returncode == 0, r.stderr)
    tap.check("a member writes again once the bucket has refilled",
              wait_until(lambda: as_user(nobody, "kvp", "set", "g2", "later", "z")[0] == 0, 15,
                         0.5))
    big = [x for i in range(300) for x in (f"b{i:03d}", "")]
    rc, out = as_user(nobody, "kvp", "set", "g3", *big)
    tap.check("one write larger than the bucket is told to split",
              rc != 0 and "split it" in out, out)
    # 14 records of 1.5K are 21K: the first write passes, the second
    # finds the 40K spent (4K/s refills far less meanwhile).
    value = "v" * 1500
    replies = ctl_as(other, [{"cmd": "kvp-set", "vm": "g3",
                              "items": {f"w{n}-{i:02d}": value for i in range(14)}}
                             for n in range(2)])
    tap.check("the bytes have a bucket too (client-write-bytes 4K: 40K at once)",
              replies[0].get("ok") and not replies[1].get("ok")
              and "client-write-bytes" in replies[1]["error"]["message"], replies)
    rc, out = as_user(nobody, "kvp", "delete", "g2", "n000")
    stats = env.ctl({"cmd": "stats"})["result"]["kvp"]
    tap.check("refusals are counted (stats rate_refused)", stats.get("rate_refused", 0) >= 3, stats)

    # 4. The total over all VMs (1M): root fills r2, which has no agent.
    env.wait_heartbeat("r1", "OK", 10)
    tap.check("r1's agent sent its facts",
              wait_until(lambda: env.service("r1", "kvp")["auto_keys"] > 0, 10))
    filler = "f" * 2000
    ctl = CtlClient(env.sock)
    results = []
    for i in range(0, 600, 20):
        ctl.send({"cmd": "kvp-set", "vm": "r2",
                  "items": {f"fill-{j:04d}": filler for j in range(i, i + 20)}})
        results.append(ctl.recv())
    ctl.close()
    stored = env.ctl({"cmd": "stats"})["result"]["kvp"].get("stored_bytes", 1 << 40)
    limited = [r for r in results if not r.get("ok")]
    tap.check("root's sets stop at [kvp] max-total-bytes with `limit`",
              limited and limited[0]["error"]["code"] == "limit"
              and "max-total-bytes" in limited[0]["error"]["message"],
              limited[:1] or results[-1])
    tap.check(f"the stored KVP data stays within 1M ({stored} bytes)",
              800000 < stored <= 1 << 20, stored)
    keys_before = env.service("r1", "kvp")["guest_keys"]
    append_records(pools, [(f"guest-{i:03d}", "g" * 1000) for i in range(100)], "fcntl")
    tap.check("a guest's records past the total are kept out and counted",
              wait_until(lambda: env.service("r1", "kvp")["refused"] > 0, 10),
              env.service("r1", "kvp"))
    tap.check("... the host keeps fewer than the guest sent",
              env.service("r1", "kvp")["guest_keys"] - keys_before < 100,
              env.service("r1", "kvp"))
    tap.check("... an event names max-total-bytes",
              wait_until(lambda: any("max-total-bytes" in e["message"]
                                     for e in env.events("r1")), 5))
    stats = env.ctl({"cmd": "stats"})["result"]["kvp"]
    tap.check("the total still holds with the guest's pool", stats.get("stored_bytes", 1 << 40) <= 1 << 20,
              stats)
    r = env.vmic("kvp", "delete", "r2", *[f"fill-{j:04d}" for j in range(100)])
    rc, out = as_user(nobody, "kvp", "set", "g1", "after-delete", "ok")
    tap.check("deleting records makes room again", r.returncode == 0 and rc == 0,
              (r.stderr, out))


def pools_on_disk(env):
    """Part 5: large External pools of VMs that are not connected."""
    nvms, nrec, per_req = 4, 1900, 24
    env.start_hostd()
    pools = os.path.join(env.dir, "v0-pools")
    for v in range(nvms):
        env.add(f"v{v}")
    time.sleep(1)  # let start-up settle before the baseline
    base = rss_kib(env.hostd_proc.p.pid)
    value = "".join(chr(ord("a") + i % 26) for i in range(2000))
    want = {}
    ctl = CtlClient(env.sock)
    sent = 0
    for v in range(nvms):
        for i in range(0, nrec, per_req):
            items = {f"k{v}-{j:05d}": f"{j}:{value}" for j in range(i, min(i + per_req, nrec))}
            if v == 0:
                want.update(items)
            ctl.send({"cmd": "kvp-set", "vm": f"v{v}", "items": items})
            sent += 1
    replies = [ctl.recv() for _ in range(sent)]
    ctl.close()
    data = nvms * nrec * 2010
    tap.check(f"{nvms} VMs x {nrec} External records stored ({data >> 20} MB)",
              all(r.get("ok") for r in replies),
              [r for r in replies if not r.get("ok")][:1])
    tap.check("pools nobody uses leave memory (KVP_UNLOAD_MS after the last write)",
              wait_until(lambda: not any(env.service(f"v{v}", "kvp").get("pools_in_memory", True)
                                         for v in range(nvms)), 20),
              env.service("v0", "kvp"))

    env.hostd_proc.stop()
    env.start_hostd()
    time.sleep(1)
    after = rss_kib(env.hostd_proc.p.pid)
    tap.check(f"after a restart RSS stays near the baseline: {after - base} KiB more "
              f"than a daemon without the {data >> 20} MB of pools",
              after - base < 8 * 1024, (base, after))
    st = env.service("v0", "kvp")
    tap.check("not connected: pools are not in memory, their sizes are known",
              st.get("pools_in_memory") is False and st["external_keys"] == nrec, st)
    tap.check("stats: no pools in memory",
              env.ctl({"cmd": "stats"})["result"]["kvp"].get("pools_in_memory") == 0,
              env.ctl({"cmd": "stats"})["result"]["kvp"])
    got = env.vmic_json("kvp", "get", "v0", "k0-01234")
    tap.check("kvp get reads the store", got["value"] == want["k0-01234"]
              and got["pool"] == "external", got)
    r = env.vmic("kvp", "get", "v0", "nope")
    tap.check("... and says not-found for a missing key", r.returncode != 0
              and "no key 'nope'" in r.stderr, r.stderr)
    got = env.vmic_json("kvp", "get", "v0", "VirtualMachineName")
    tap.check("... pool 3 without a pool named", got["value"] == "v0", got)
    lst = env.vmic_json("kvp", "list", "v0")["records"]
    ext = {r["key"]: r["value"] for r in lst if r["pool"] == "external"}
    tap.check(f"kvp list reads the store in pages: all {nrec} records, right values",
              ext == want, (len(ext), len(want)))
    tap.check("... in key order, then pool 3",
              [r["key"] for r in lst if r["pool"] == "external"] == sorted(want)
              and lst[-1]["pool"] == "auto-external", lst[-1])
    tap.check("reads do not bring the pools into memory",
              env.service("v0", "kvp").get("pools_in_memory") is False)

    # A set on pools in the store: read, committed, durable.
    r = env.vmic("kvp", "set", "v1", "late", "durable")
    env.hostd_proc.kill9()
    env.start_hostd()
    got = env.vmic_json("kvp", "get", "v1", "late")
    tap.check("a set on a VM whose pools were in the store survives kill -9",
              r.returncode == 0 and got["value"] == "durable", (r.stderr, got))
    tap.check("... and the rest of its pool is intact",
              env.service("v1", "kvp")["external_keys"] == nrec + 1, env.service("v1", "kvp"))

    # The agent connects: its pools are read, the whole copy goes out.
    guest = env.start_guest("v0", "--kvp-dir", pools)
    tap.check("a connecting agent gets its whole External pool from the store",
              wait_until(lambda: read_pool(pools, 0) == want, 60),
              len(read_pool(pools, 0)))
    tap.check("... while connected its pools are in memory",
              env.service("v0", "kvp").get("pools_in_memory") is True)
    guest.stop()
    tap.check("the agent gone: its pools leave memory again",
              wait_until(lambda: env.service("v0", "kvp").get("pools_in_memory") is False, 20),
              env.service("v0", "kvp"))
    tap.check("... and still read right",
              env.vmic_json("kvp", "get", "v0", "k0-00007")["value"] == want["k0-00007"])


for part in (group_limits, pools_on_disk):
    env = Env(tap)
    try:
        part(env)
    finally:
        env.close()
tap.done()
