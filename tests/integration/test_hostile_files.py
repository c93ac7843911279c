#!/usr/bin/env python3
"""Files the agent does not own, planted by someone hostile or careless
(issue 13, items 6 and 8), with a real vmic-hostd and real agents whose
pool directories are in the test's own directory:

- a FIFO at the chrony pid file's path: the agent's loop never waits on
  it (its time cycles go on, the heartbeat stays OK), and it says so;
- FIFOs at .vmic_vm_id and .vmic_vm_id.new: the KVP worker never waits on
  them, the host's keys arrive, the id is recorded in a regular file;
- symbolic links at .vmic_vm_id, .vmic_vm_id.new and .kvp_pool_0: never
  followed, their targets untouched;
- a 16 GB sparse .kvp_pool_1 (no disk used): refused at once, with a
  line that names pool 1 (the old line said pool 0);
- a worker stuck on a lock another process holds for ever: the heartbeat
  stays OK, and SIGTERM still ends the agent, within its stop deadline;
- a start-up slowed by such a lock: the host's copy that arrives before
  the agent has read its directory waits for it, and is not lost;
- `vmic-guestd kvp list` as an unprivileged user on 0644 files, and on a
  directory with missing pools: read-only, nothing created.

Every agent must end on SIGTERM within STOP_S. Waits are on conditions
with deadlines."""
import fcntl
import os
import shutil
import signal
import subprocess
import time

from kvplib import pool_path, read_pool, record, write_pool_file
from vmictest import GUESTD, Env, Tap, wait_until

# The agent's stop deadline is 3 s; under ASan on a loaded machine it may
# take a little more to get there.
STOP_S = 8


def cycles(p):
    return p.output().count("timesync: offset")


def stop_within(p, limit=STOP_S):
    """SIGTERM; (seconds it took, exit status or None if it did not)."""
    t0 = time.monotonic()
    p.signal(signal.SIGTERM)
    try:
        p.p.wait(limit)
    except subprocess.TimeoutExpired:
        return time.monotonic() - t0, None
    return time.monotonic() - t0, p.p.returncode


def check_stop(tap, name, p):
    took, rc = stop_within(p)
    tap.check(f"{name}: SIGTERM ends the agent ({took:.1f} s, status {rc})",
              rc == 0, p.output()[-1500:])


def kvp_dir(env, name):
    return os.path.join(env.dir, f"{name}-kvp")


def host_key_arrives(env, vm, pools, key):
    env.vmic("kvp", "set", vm, key, "v1", check=True)
    return wait_until(lambda: read_pool(pools, 0).get(key) == "v1", 15)


def check_chrony_fifo(tap, env):
    fifo = os.path.join(env.dir, "chronyd.pid")
    os.mkfifo(fifo)
    p = env.start_guest("chr", conf=f"[timesync]\nchrony-pid-file = {fifo}\n"
                                    "min-interval = 1s\n")
    env.add("chr")
    tap.check("FIFO at chrony-pid-file: heartbeat OK",
              env.wait_heartbeat("chr", "OK", 15) is not None)
    n = wait_until(lambda: cycles(p) >= 3 and cycles(p), 30)
    tap.check("... the time cycles, each of which looks at the pid file, go on",
              n, p.output()[-1500:])
    tap.check("... and the heartbeat is still OK after them",
              env.heartbeat("chr") == "OK", env.status("chr"))
    tap.check("... the agent says why chronyd is taken as not running",
              "chrony-pid-file" in p.output() and "not a regular file" in p.output(),
              p.output()[-1500:])
    check_stop(tap, "FIFO at chrony-pid-file", p)


def check_id_fifos(tap, env):
    pools = kvp_dir(env, "ids")
    os.makedirs(pools)
    os.mkfifo(os.path.join(pools, ".vmic_vm_id"))
    os.mkfifo(os.path.join(pools, ".vmic_vm_id.new"))
    p = env.start_guest("ids")
    env.add("ids")
    tap.check("FIFOs at .vmic_vm_id and .vmic_vm_id.new: heartbeat OK",
              env.wait_heartbeat("ids", "OK", 15) is not None)
    tap.check("... a key set on the host still reaches .kvp_pool_0",
              host_key_arrives(env, "ids", pools, "through-fifos"),
              p.output()[-1500:])
    idf = os.path.join(pools, ".vmic_vm_id")
    ok = wait_until(lambda: os.path.isfile(idf) and not os.path.islink(idf) and
                    open(idf).read().strip(), 10)
    tap.check("... the VM id is recorded in a regular file that replaced the FIFO",
              ok and not os.path.exists(idf + ".new"), os.listdir(pools))
    tap.check("... the agent logged the FIFO it did not read",
              ".vmic_vm_id: it is not a regular file" in p.output(), p.output()[-1500:])
    check_stop(tap, "FIFOs at the id files", p)


def check_symlinks(tap, env):
    pools = kvp_dir(env, "links")
    os.makedirs(pools)
    targets = {}
    for name in (".vmic_vm_id", ".vmic_vm_id.new", ".kvp_pool_0"):
        t = os.path.join(env.dir, f"victim{name}")
        with open(t, "w") as f:
            f.write("victim\n")
        os.symlink(t, os.path.join(pools, name))
        targets[name] = t
    p = env.start_guest("links")
    env.add("links")
    tap.check("symbolic links at the id files and .kvp_pool_0: heartbeat OK",
              env.wait_heartbeat("links", "OK", 15) is not None)
    env.vmic("kvp", "set", "links", "through-link", "v1", check=True)
    idf = os.path.join(pools, ".vmic_vm_id")
    wait_until(lambda: not os.path.islink(idf), 10)
    # The host's key would be written by now if the link were followed:
    # the id was recorded after the same identity that sent the key.
    wait_until(lambda: "kvp_pool_0" in p.output(), 10)
    tap.check("... no link was followed: every target still says 'victim'",
              all(open(t).read() == "victim\n" for t in targets.values()),
              {n: open(t).read() for n, t in targets.items()})
    tap.check("... the id link was replaced by a regular file, .kvp_pool_0's left "
              "alone", os.path.isfile(idf) and not os.path.islink(idf) and
              os.path.islink(os.path.join(pools, ".kvp_pool_0")), os.listdir(pools))
    tap.check("... the agent names the link it refused",
              ".kvp_pool_0: it is a symbolic link" in p.output(), p.output()[-1500:])
    check_stop(tap, "symbolic links", p)


def check_huge_pool(tap, env):
    pools = kvp_dir(env, "huge")
    os.makedirs(pools)
    huge = pool_path(pools, 1)
    with open(huge, "wb") as f:
        f.write(record("before", "the hole"))
        f.truncate(16 << 30)
    st = os.stat(huge)
    tap.check("a 16 GB .kvp_pool_1 that takes no disk (sparse)",
              st.st_size == 16 << 30 and st.st_blocks * 512 < 1 << 20,
              (st.st_size, st.st_blocks))
    t0 = time.monotonic()
    p = env.start_guest("huge")
    env.add("huge")
    line = wait_until(lambda: "kvp_pool_1: it is larger than a pool file may be"
                      in p.output(), 10)
    took = time.monotonic() - t0
    tap.check(f"... refused at once, with a line that names pool 1 ({took:.1f} s)",
              line and "(pool 0)" not in p.output(), p.output()[-1500:])
    tap.check("... heartbeat OK", env.wait_heartbeat("huge", "OK", 15) is not None)
    tap.check("... and the host's keys still arrive",
              host_key_arrives(env, "huge", pools, "beside-a-huge-pool"))
    check_stop(tap, "16 GB pool", p)


def blocked_lock_of(pid):
    """A line of /proc/locks where pid waits for a lock ("->")."""
    with open("/proc/locks") as f:
        for line in f:
            if "->" in line and f" {pid} " in line:
                return line
    return None


def check_stuck_worker(tap, env):
    pools = kvp_dir(env, "stuck")
    p = env.start_guest("stuck")
    env.add("stuck")
    tap.check("stuck worker: heartbeat OK", env.wait_heartbeat("stuck", "OK", 15) is not None)
    wait_until(lambda: os.path.exists(pool_path(pools, 1)), 10)
    # Hold pool 1's lock for ever (until this test lets go), then change
    # the file: the agent's read job waits for the lock.
    holder = open(pool_path(pools, 1), "r+b")
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        with open(pool_path(pools, 1), "ab") as f:
            f.write(record("appended", "under a lock held for ever"))
        waiting = wait_until(lambda: blocked_lock_of(p.pid), 15)
        tap.check("... the agent's read job waits for the lock", waiting,
                  open("/proc/locks").read())
        tap.check("... and the heartbeat is OK meanwhile",
                  env.heartbeat("stuck") == "OK", env.status("stuck"))
        took, rc = stop_within(p)
        tap.check(f"... SIGTERM ends the agent all the same ({took:.1f} s, status {rc})",
                  rc == 0, p.output()[-1500:])
        tap.check("... saying what it did not wait for",
                  "exiting without it" in p.output() and
                  "pool file job (read" in p.output(), p.output()[-1500:])
    finally:
        holder.close()


def records_sent(env):
    return env.ctl({"cmd": "stats"})["result"]["kvp"]["records_sent"]


def check_slow_start(tap, env):
    """The agent's start-up job reads pool 1 under its lock; held by
    another program, the host's IDENTITY and its copy come first."""
    pools = kvp_dir(env, "slow")
    write_pool_file(pools, 1, [("guest-key", "g")])
    env.add("slow")
    env.vmic("kvp", "set", "slow", "waited-for", "v1", check=True)
    holder = open(pool_path(pools, 1), "r+b")
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        sent = records_sent(env)
        p = env.start_guest("slow")
        tap.check("slow start-up: the host sends its copy while the agent's "
                  "start-up waits for a lock",
                  wait_until(lambda: records_sent(env) >= sent + 4 and
                             blocked_lock_of(p.pid), 20),
                  (records_sent(env), sent))
    finally:
        holder.close()
    tap.check("... once the lock is free, the copy is in .kvp_pool_0",
              wait_until(lambda: read_pool(pools, 0).get("waited-for") == "v1", 15),
              p.output()[-1500:])
    tap.check("... and the guest's pool reached the host",
              wait_until(lambda: any(r["key"] == "guest-key" for r in
                                     env.vmic_json("kvp", "list", "slow")["records"]), 10))
    check_stop(tap, "slow start-up", p)


def check_cli_read_only(tap, env):
    if not shutil.which("setpriv"):
        tap.note("SKIP unprivileged kvp list: no setpriv")
        return
    # The unprivileged user must reach the files: the test directory is
    # root's 0700.
    os.chmod(env.dir, 0o711)
    conf = os.path.join(env.dir, "cli.conf")
    open(conf, "w").close()
    os.chmod(conf, 0o644)
    pools = os.path.join(env.dir, "cli-kvp")
    write_pool_file(pools, 1, [("from-root", "readable")])
    write_pool_file(pools, 0, [("external", "too")])
    os.chmod(pools, 0o755)
    for f in os.listdir(pools):
        os.chmod(os.path.join(pools, f), 0o644)
    before = sorted(os.listdir(pools))
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        GUESTD, "--config", conf,
                        "--kvp-dir", pools, "kvp", "list"],
                       capture_output=True, text=True, timeout=30)
    tap.check("vmic-guestd kvp list as nobody: reads root's 0644 pool files",
              r.returncode == 0 and "guest\tfrom-root\treadable" in r.stdout and
              "external\texternal\ttoo" in r.stdout, r.stdout + r.stderr)
    tap.check("... and creates none of the missing pools",
              sorted(os.listdir(pools)) == before, os.listdir(pools))
    empty = os.path.join(env.dir, "cli-empty")
    os.makedirs(empty)
    os.chmod(pool_path(pools, 1), 0o444)
    r = subprocess.run([GUESTD, "--config", conf,
                        "--kvp-dir", empty, "kvp", "list"],
                       capture_output=True, text=True, timeout=30)
    tap.check("kvp list on a directory without pool files: nothing, exit 0, "
              "nothing created", r.returncode == 0 and r.stdout == "" and
              os.listdir(empty) == [], (r.returncode, r.stdout, r.stderr, os.listdir(empty)))
    r = subprocess.run([GUESTD, "--config", conf,
                        "--kvp-dir", pools, "kvp", "get", "from-root"],
                       capture_output=True, text=True, timeout=30)
    tap.check("kvp get reads a 0444 pool file", r.returncode == 0 and
              r.stdout == "readable\n", r.stdout + r.stderr)


def main():
    tap = Tap()
    env = Env(tap)
    try:
        env.start_hostd()
        check_chrony_fifo(tap, env)
        check_id_fifos(tap, env)
        check_symlinks(tap, env)
        check_huge_pool(tap, env)
        check_stuck_worker(tap, env)
        check_slow_start(tap, env)
        check_cli_read_only(tap, env)
    finally:
        env.close()
    tap.done()


if __name__ == "__main__":
    main()
