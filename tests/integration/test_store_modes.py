#!/usr/bin/env python3
"""The database holds the registry and every event: it is 0640 like its -wal
and -shm, whatever the umask, and a file an older vmic-hostd left 0644 is
made 0640 at the next start."""
import os
import stat

from vmictest import Env, Tap, wait_until

tap = Tap()
env = Env(tap)
old_umask = os.umask(0o022)  # the usual one: files would be 0644
try:
    env.start_hostd()
    env.start_guest("vm1")
    env.add("vm1")
    tap.check("vm1 OK", env.wait_heartbeat("vm1", "OK", 10) is not None)
    db = os.path.join(env.state, "vmic.db")

    def modes():
        return {name: stat.S_IMODE(os.stat(os.path.join(env.state, name)).st_mode)
                for name in ("vmic.db", "vmic.db-wal", "vmic.db-shm")
                if os.path.exists(os.path.join(env.state, name))}

    m = modes()
    tap.check("vmic.db, -wal and -shm exist while the daemon runs", len(m) == 3, m)
    tap.check("all three are 0640", all(v == 0o640 for v in m.values()),
              {k: oct(v) for k, v in m.items()})
    reserve = os.path.join(env.state, "vmic.reserve")
    tap.check("the disk reserve is 0600",
              stat.S_IMODE(os.stat(reserve).st_mode) == 0o600, oct(os.stat(reserve).st_mode))

    # A file an older build created world-readable.
    env.hostd_proc.stop()
    for name in ("vmic.db", "vmic.db-wal", "vmic.db-shm"):
        p = os.path.join(env.state, name)
        if os.path.exists(p):
            os.chmod(p, 0o644)
    env.start_hostd()
    tap.check("the daemon runs with the old file",
              wait_until(lambda: env.vmic_json("list")["vms"], 10))
    m = modes()
    tap.check("made 0640 at start", m.get("vmic.db") == 0o640 and
              all(v == 0o640 for v in m.values()), {k: oct(v) for k, v in m.items()})
finally:
    os.umask(old_umask)
    env.close()
tap.done()
