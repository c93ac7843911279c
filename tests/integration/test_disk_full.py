#!/usr/bin/env python3
"""A full disk: the state directory on a small tmpfs of the test's own,
filled to the last byte. The daemon keeps working: `remove`, `disable`,
`status`, `list` and `events` answer, the removal and the switch are
durable (kill -9, restart), `status` and `stats` say events are being
dropped; once space is freed, events are stored again. Skips (77) where
the test may not mount a tmpfs."""
import os
import signal
import subprocess
import sys

from vmictest import Env, Tap, wait_until

SIZE_MB = 32

tap = Tap()
env = Env(tap)
mounted = False
try:
    os.makedirs(env.state)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m,mode=0750",
                        "vmic-test", env.state], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"1..0 # SKIP cannot mount a tmpfs for the state directory: {r.stderr.strip()}")
        env.close()
        sys.exit(77)
    mounted = True
    filler = os.path.join(env.state, "filler")

    env.start_hostd()
    env.start_guest("vm1")
    env.add("vm1")
    env.add("vm2", f"unix:{env.dir}/nothing.sock")
    tap.check("vm1 OK", env.wait_heartbeat("vm1", "OK", 10) is not None)

    def fill(path):
        """Write to path until the disk takes no more (unbuffered)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        block = b"\0" * 65536
        try:
            while True:
                os.write(fd, block)  # short near the end, then ENOSPC
        except OSError:
            pass
        finally:
            os.close(fd)

    # Fill the disk, then restart: a fresh WAL must grow for any write.
    fill(filler)
    st = os.statvfs(env.state)
    tap.check("the disk is full", st.f_bavail * st.f_frsize < 65536, st.f_bavail)
    env.hostd_proc.stop()
    env.start_hostd()
    tap.check("the daemon starts on a full disk", env.hostd_proc.alive())

    r = env.vmic("disable", "vm1", "shutdown")
    tap.check("disable works", r.returncode == 0, r.stderr)
    r = env.vmic("remove", "vm2")
    tap.check("remove works", r.returncode == 0, r.stderr)
    status = env.status("vm1")
    tap.check("status works and says events are not stored",
              status["events"]["storing"] is False, status.get("events"))
    r = env.vmic("status", "vm1")
    tap.check("vmic status says so in words",
              r.returncode == 0 and "not stored" in r.stdout, r.stdout)
    names = [v["name"] for v in env.vmic_json("list")["vms"]]
    tap.check("list works", names == ["vm1"], names)
    kinds = [e["kind"] for e in env.events()]
    tap.check("events works (reads on a full disk)", "vm-removed" in kinds, kinds[-5:])
    # The switch's status change is an ordinary event: dropped, counted.
    stats = wait_until(lambda: (lambda s: s if s["events"]["dropped"] > 0 else None)(
        env.ctl({"cmd": "stats"})["result"]), 10)
    tap.check("stats: disk_full, and the dropped events counted",
              stats and stats["events"]["disk_full"] is True and stats["events"]["dropped"] > 0,
              stats and stats["events"])

    # Acknowledged means durable, on a full disk too.
    env.hostd_proc.kill9()
    fill(filler + "2")  # what the reserve gave back
    env.start_hostd()
    names = [v["name"] for v in env.vmic_json("list")["vms"]]
    tap.check("kill -9: the removal was durable", names == ["vm1"], names)
    tap.check("kill -9: the switch was durable",
              env.service("vm1", "shutdown")["enabled"] is False)

    tap.check("after the restart: still full (its first events met the full disk)",
              wait_until(lambda: env.ctl({"cmd": "stats"})["result"]["events"]["disk_full"], 15))

    # Room again: the reserve comes back and events are stored again.
    os.unlink(filler)
    os.unlink(filler + "2")
    env.vmic("enable", "vm1", "shutdown", check=True)
    ok = wait_until(lambda: not env.ctl({"cmd": "stats"})["result"]["events"]["disk_full"], 15)
    tap.check("stats: no longer full once there is room", ok)
    env.vmic("disable", "vm1", "shutdown", check=True)
    env.vmic("enable", "vm1", "shutdown", check=True)
    ok = wait_until(lambda: [e for e in env.events("vm1")
                             if e["kind"] == "service-status" and e["service"] == "shutdown"
                             and e["to"] == "OK"], 10)
    tap.check("ordinary events are stored again", ok)
    tap.check("status: storing again", env.status("vm1")["events"]["storing"] is True)
    reserve = os.path.join(env.state, "vmic.reserve")
    tap.check("the reserve is back",
              os.path.exists(reserve) and os.path.getsize(reserve) >= 8 << 20)
    tap.check("vmic-hostd still running", env.hostd_proc.alive())
finally:
    for p in reversed(env.procs):
        if p.alive():
            p.stop()
    if mounted:
        subprocess.run(["umount", env.state])
    env.close()
tap.done()
