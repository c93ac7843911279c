#!/usr/bin/env python3
"""The backup service with real daemons on the unix transport, freezing a
loop-mounted scratch ext4 only (vmic-guestd --freeze-only): never a
filesystem of the machine the tests run on.

Every guarantee is a real process and a measured time: a write blocks while
frozen and completes after the thaw; hooks run in order and their failure
or hang leaves nothing frozen; the auto-thaw fires on time; a backup whose
CLI is killed, whose hostd is killed, whose channel drops, and an agent
stopped while frozen each end thawed within their bound."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from vmictest import GUESTD, VMIC, Env, Relay, Tap, child_pids, descendants, unix_dialer, wait_until

tap = Tap()

if os.geteuid() != 0:
    print("1..0 # SKIP mounting a scratch ext4 needs root")
    sys.exit(77)
for tool in ("mkfs.ext4", "mount", "umount", "fsfreeze"):
    if not shutil.which(tool):
        print(f"1..0 # SKIP {tool} is not installed")
        sys.exit(77)

env = Env(tap)
mnt = os.path.join(env.dir, "mnt")
image = os.path.join(env.dir, "scratch.img")
hooks = os.path.join(env.dir, "hooks")
hook_log = os.path.join(env.dir, "hooks.log")
mounted = False
writers = []
cli = None


def setup_scratch():
    """A 32 MiB ext4 loop mount; skip (77) when loop devices are missing."""
    global mounted
    os.mkdir(mnt)
    with open(image, "wb") as f:
        f.truncate(32 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-E",
                    "lazy_itable_init=0,lazy_journal_init=0", image], check=True)
    r = subprocess.run(["mount", "-o", "loop", image, mnt], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"1..0 # SKIP cannot loop-mount a scratch ext4: {r.stderr.strip()}")
        shutil.rmtree(env.dir, ignore_errors=True)
        sys.exit(77)
    mounted = True


def hook(name, body):
    path = os.path.join(hooks, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\necho \"$(basename \"$0\") $1\" >> " + hook_log + "\n" + body + "\n")
    os.chmod(path, 0o755)


def hook_calls():
    try:
        with open(hook_log) as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return []
    open(hook_log, "w").close()
    return [x for x in lines if x]


def start_writer(name):
    """A process that writes and fsyncs a file on the scratch filesystem."""
    code = ("import os,sys\n"
            f"fd=os.open({os.path.join(mnt, name)!r}, os.O_WRONLY|os.O_CREAT, 0o644)\n"
            "os.write(fd, b'x'*4096); os.fsync(fd)\n")
    p = subprocess.Popen([sys.executable, "-c", code])
    writers.append(p)
    return p


def writer_done_within(p, seconds):
    try:
        p.wait(seconds)
        return p.returncode == 0
    except subprocess.TimeoutExpired:
        return False


def backup_state():
    return env.service("vm1", "backup") or {}


def is_frozen():
    return backup_state().get("frozen", False)


def thawed_within(seconds):
    """Seconds until a fresh writer gets through, or None."""
    t0 = time.monotonic()
    p = start_writer("probe")
    if writer_done_within(p, seconds):
        return time.monotonic() - t0
    return None


def vmic_json(*args, timeout=60):
    """Exit status, the result, stderr. An operation's --json output is
    one line per message ({"frozen": ...}, then {"result": ...})."""
    r = env.vmic("--json", *args, timeout=timeout)
    try:
        if args[0] != "backup":
            return r.returncode, json.loads(r.stdout or "null"), r.stderr
        lines = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    except ValueError:
        return r.returncode, None, r.stderr + r.stdout
    ends = [x["result"] for x in lines if "result" in x]
    return r.returncode, ends[-1] if ends else None, r.stderr


try:
    r = subprocess.run([GUESTD, "--config", "/dev/null", "--freeze-only", "/srv/a",
                        "--freeze-only", "/", "--check-config"],
                       capture_output=True, text=True)
    tap.check("--freeze-only is repeatable", "include = /srv/a,/\n" in r.stdout, r.stdout)
    setup_scratch()
    os.mkdir(hooks)
    hook("10-first", "echo flushed by first")
    hook("20-second", "true")
    env.start_hostd()
    guest_conf = f"[backup]\nhooks-dir = {hooks}\nhook-timeout = 2s\nmax-timeout = 5m\n"
    # The KVP pool files on the scratch filesystem: their writes must wait
    # for the thaw in memory.
    kvp_dir = os.path.join(mnt, "kvp")
    guest = env.start_guest("vm1", "--freeze-only", mnt, "--kvp-dir", kvp_dir,
                            conf=guest_conf)
    env.add("vm1")
    tap.check("the agent connects", env.wait_heartbeat("vm1", "OK", 20) is not None, env.logs())
    tap.check("backup is on by default and OK",
              (env.service("vm1", "backup") or {}).get("primary_status") == "OK",
              env.service("vm1", "backup"))

    # freeze: a write blocks until thaw, hooks in order, status shows it
    rc, out, err = vmic_json("freeze", "vm1", "--timeout", "30s")
    tap.check("vmic freeze succeeds", rc == 0, err)
    tap.check("the reply lists the scratch filesystem only",
              out and out.get("mounts") == [mnt], out)
    tap.check("hooks ran with freeze in name order",
              hook_calls() == ["10-first freeze", "20-second freeze"])
    tap.check("the hooks' output reaches the host",
              out and "flushed by first" in out.get("output", ""), out)
    w = start_writer("blocked")
    env.vmic("kvp", "set", "vm1", "SetWhileFrozen", "yes", check=True)
    guest.signal(signal.SIGHUP)  # the agent logs that it reloads
    tap.check("a write blocks while frozen", not writer_done_within(w, 1.0))
    pool0 = os.path.join(kvp_dir, ".kvp_pool_0")

    def in_pool0():
        with open(pool0, "rb") as f:
            return b"SetWhileFrozen" in f.read()

    tap.check("the agent holds its log lines while frozen",
              "SIGHUP: reloading" not in guest.output())
    tap.check("a KVP pool write waits while frozen", not in_pool0())
    st = backup_state()
    tap.check("status shows frozen, what and since when",
              st.get("frozen") and st.get("mounts") == [mnt] and st.get("frozen_since_us", 0) > 0
              and st.get("auto_thaw_ms") == 30000, st)
    rc, out, err = vmic_json("freeze", "vm1")
    tap.check("a second freeze is refused (busy)", rc != 0 and "thaw first" in err, err)
    t0 = time.monotonic()
    rc, out, err = vmic_json("thaw", "vm1")
    tap.check("vmic thaw succeeds", rc == 0 and out.get("reason") == "host", (rc, out, err))
    tap.check("the write completes after the thaw", writer_done_within(w, 5),
              f"{time.monotonic() - t0:.2f}s")
    tap.check("frozen_ms is measured", out and 900 <= out.get("frozen_ms", 0) < 30000, out)
    tap.check("the held log lines are written after the thaw",
              wait_until(lambda: "SIGHUP: reloading" in guest.output(), 3))
    tap.check("the KVP pool write happens after the thaw", wait_until(in_pool0, 3))
    tap.check("hooks ran with thaw in reverse order",
              hook_calls() == ["20-second thaw", "10-first thaw"])
    tap.check("status shows thawed", not is_frozen())
    rc, out, err = vmic_json("thaw", "vm1")
    tap.check("thaw while thawed says nothing was frozen", rc == 0 and out.get("mounts") == [], out)

    # the auto-thaw: 2 s asked, measured from the reply
    rc, out, err = vmic_json("freeze", "vm1", "--timeout", "2s")
    t0 = time.monotonic()
    tap.check("freeze with a 2 s auto-thaw", rc == 0 and out.get("timeout_ms") == 2000, (out, err))
    w = start_writer("auto")
    took = None
    if writer_done_within(w, 6):
        took = time.monotonic() - t0
    tap.check("the auto-thaw fires within 2 s + 1 s", took is not None and took < 3.0,
              f"took {took}")
    tap.note(f"auto-thaw: write completed {took}s after a 2 s freeze")
    tap.check("the host is told the guest thawed on timeout",
              wait_until(lambda: backup_state().get("last_thaw", {}).get("reason") == "timeout", 5),
              backup_state())
    hook_calls()

    # a failing hook: nothing stays frozen, freeze-fail in reverse
    hook("30-fail", 'if [ "$1" = freeze ]; then echo db refused; exit 3; fi')
    rc, out, err = vmic_json("freeze", "vm1")
    tap.check("a failing freeze hook fails the freeze", rc != 0 and "db refused" in err, err)
    tap.check("freeze-fail in reverse for the hooks that ran",
              hook_calls() == ["10-first freeze", "20-second freeze", "30-fail freeze",
                               "30-fail freeze-fail", "20-second freeze-fail",
                               "10-first freeze-fail"])
    took = thawed_within(3)
    tap.check("nothing is frozen after the failed hook", took is not None and not is_frozen())
    os.unlink(os.path.join(hooks, "30-fail"))

    # a hanging hook: killed at hook-timeout (2 s), nothing frozen
    hook("30-hang", 'if [ "$1" = freeze ]; then exec sleep 60; fi')
    t0 = time.monotonic()
    hanging = subprocess.Popen([VMIC, "--socket", env.sock, "freeze", "vm1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The hook blocks a worker thread, not the agent's loop.
    time.sleep(0.3)
    hb0 = env.service("vm1", "heartbeat")
    time.sleep(1.5)
    hb1 = env.service("vm1", "heartbeat")
    tap.check("heartbeats keep coming while a hook hangs",
              hb1.get("primary_status") == "OK" and
              hb1.get("last_reply_us") != hb0.get("last_reply_us"), (hb0, hb1))
    _, err = hanging.communicate(timeout=10)
    rc = hanging.returncode
    took = time.monotonic() - t0
    tap.check("a hanging hook fails the freeze at its timeout",
              rc != 0 and "timed out" in err and took < 4.0, f"{took:.2f}s: {err}")
    tap.check("nothing is frozen after the hanging hook", thawed_within(3) is not None)
    os.unlink(os.path.join(hooks, "30-hang"))
    hook_calls()

    # a freeze that fails part-way (tmpfs refuses FIFREEZE) thaws what it
    # froze: a second agent that freezes the scratch ext4, then a tmpfs
    tmpfs = os.path.join(env.dir, "tmpfs")
    os.mkdir(tmpfs)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", tmpfs]).returncode == 0:
        try:
            g2 = env.start_guest("vm2", "--freeze-only", mnt, "--freeze-only", tmpfs,
                                 conf=guest_conf)
            env.add("vm2")
            env.wait_heartbeat("vm2", "OK", 20)
            rc, out, err = vmic_json("freeze", "vm2")
            tap.check("a freeze failing on its second filesystem fails",
                      rc != 0 and f"FIFREEZE {tmpfs}" in err, err)
            tap.check("the first filesystem was thawed again", thawed_within(3) is not None)
            tap.check("the hooks heard freeze-fail in reverse",
                      hook_calls() == ["10-first freeze", "20-second freeze",
                                       "20-second freeze-fail", "10-first freeze-fail"])
            env.vmic("remove", "vm2", check=True)
            g2.stop()
        finally:
            subprocess.run(["umount", tmpfs])
    else:
        tap.note("SKIP the part-way failure: cannot mount a tmpfs")

    # a backup: the command sees the VM and the frozen mounts
    envfile = os.path.join(env.dir, "snapshot.env")
    rc, out, err = vmic_json("backup", "vm1", "--", "sh", "-c",
                             f'echo "$VMIC_VM|$VMIC_FROZEN_MOUNTS" > {envfile}')
    tap.check("vmic backup succeeds", rc == 0 and out, err)
    with open(envfile) as f:
        tap.check("the snapshot command's environment names the VM and mounts",
                  f.read().strip() == f"vm1|{mnt}")
    tap.check("the result has each step with its duration",
              out and [s["step"] for s in out.get("steps", [])] == ["freeze", "snapshot", "thaw"],
              out)
    st = backup_state()
    tap.check("status shows the last backup", st.get("last_backup", {}).get("ok") is True, st)
    tap.check("thawed after the backup", thawed_within(3) is not None and not is_frozen())

    # a failing snapshot command: thawed, the failure in status
    rc, out, err = vmic_json("backup", "vm1", "--", "sh", "-c", "echo no space; exit 4")
    tap.check("a failing snapshot command fails the backup", rc != 0 and "exit status 4" in err, err)
    tap.check("thawed after the failed command", thawed_within(3) is not None and not is_frozen())
    tap.check("status shows the last failure",
              "exit status 4" in backup_state().get("last_failure", {}).get("message", ""))
    text = env.vmic("status", "vm1", "backup").stdout
    tap.check("vmic status VM backup shows the last backup and failure",
              "last_backup_ok" in text and "last_frozen_ms" in text and
              "exit status 4" in text, text)

    # --qmp-snapshot: blockdev-snapshot-sync on the VM's QMP socket (a
    # fake QEMU here; the VM suite has the real one) while frozen
    qmp_path = os.path.join(env.dir, "qmp.sock")
    qmp_seen, qmp_frozen = [], []
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(qmp_path)
    srv.listen(1)

    def fake_qemu():
        c, _ = srv.accept()
        c.sendall(b'{"QMP": {"version": {}, "capabilities": []}}\n')
        for line in c.makefile("rb"):
            cmd = json.loads(line)
            qmp_seen.append(cmd)
            if cmd.get("execute") == "blockdev-snapshot-sync":
                qmp_frozen.append(not writer_done_within(start_writer("qmp"), 0.5))
            c.sendall(b'{"return": {}}\n')
        c.close()

    threading.Thread(target=fake_qemu, daemon=True).start()
    env.vmic("set", "vm1", "--power-off", f"qmp:{qmp_path}", check=True)
    overlay = os.path.join(env.dir, "overlay.qcow2")
    rc, out, err = vmic_json("backup", "vm1", "--qmp-snapshot", overlay,
                             "--qmp-device", "disk0")
    tap.check("vmic backup --qmp-snapshot succeeds", rc == 0, err)
    snap = [c for c in qmp_seen if c.get("execute") == "blockdev-snapshot-sync"]
    tap.check("QEMU was asked for blockdev-snapshot-sync of the drive",
              snap and snap[0].get("arguments") == {"device": "disk0",
                                                     "snapshot-file": overlay,
                                                     "format": "qcow2"}, qmp_seen)
    tap.check("the guest was frozen while QEMU took the snapshot", qmp_frozen == [True],
              qmp_frozen)
    tap.check("thawed after the QMP snapshot", thawed_within(3) is not None)
    srv.close()

    # the CLI killed mid-backup: hostd thaws
    cli = subprocess.Popen([VMIC, "--socket", env.sock, "backup", "vm1", "--timeout", "60s",
                            "--", "sleep", "60"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tap.check("backup frozen while its command runs", wait_until(is_frozen, 10))
    hostd_pid = env.hostd_proc.pid
    snapshot = [p for p in descendants(hostd_pid)]
    w = start_writer("cli-killed")
    t0 = time.monotonic()
    cli.kill()
    cli.wait()
    ok = writer_done_within(w, 5)
    took = time.monotonic() - t0
    tap.check("CLI killed: thawed within 2 s", ok and took < 2.0, f"{took:.2f}s")
    tap.note(f"CLI killed: write completed {took:.3f}s later")
    tap.check("the snapshot command was killed too",
              snapshot and wait_until(lambda: not descendants(hostd_pid), 5),
              f"before: {snapshot}, now: {descendants(hostd_pid)}")

    # the agent stopped while frozen: it thaws before it exits
    rc, out, err = vmic_json("freeze", "vm1", "--timeout", "60s")
    w = start_writer("agent-stop")
    t0 = time.monotonic()
    guest.signal(signal.SIGTERM)
    ok = writer_done_within(w, 5)
    took = time.monotonic() - t0
    tap.check("agent stopped while frozen: thawed within 2 s", rc == 0 and ok and took < 2.0,
              f"{took:.2f}s {err}")
    guest.p.wait(10)

    # the channel dropped while frozen (through a relay): the guest thaws
    relay_path = os.path.join(env.dir, "relay.sock")
    guest = env.start_guest("vm1", "--freeze-only", mnt, "--kvp-dir", kvp_dir,
                            conf=guest_conf)
    relay = Relay(relay_path, unix_dialer(env.guest_socket("vm1")))
    env.vmic("remove", "vm1", check=True)
    env.add("vm1", f"unix:{relay_path}")
    tap.check("the agent connects through the relay",
              env.wait_heartbeat("vm1", "OK", 20) is not None)
    rc, out, err = vmic_json("freeze", "vm1", "--timeout", "60s")
    w = start_writer("channel")
    t0 = time.monotonic()
    with relay.lock:
        for s in (relay.host_side, relay.guest_side):
            s.shutdown(socket.SHUT_RDWR)
    ok = writer_done_within(w, 5)
    took = time.monotonic() - t0
    tap.check("channel dropped while frozen: thawed within 2 s", rc == 0 and ok and took < 2.0,
              f"{took:.2f}s {err}")
    # hostd dials again through the relay: the next session hears why
    tap.check("the agent connects again", wait_until(lambda: relay.connections >= 2, 10) and
              env.wait_heartbeat("vm1", "OK", 20) is not None)
    wait_until(lambda: backup_state().get("last_thaw", {}).get("reason") == "session-end", 5)
    tap.check("the host hears the thaw's reason at the next session",
              backup_state().get("last_thaw", {}).get("reason") == "session-end", backup_state())
    env.vmic("remove", "vm1", check=True)
    relay.close()
    env.add("vm1")
    tap.check("the agent connects directly", env.wait_heartbeat("vm1", "OK", 20) is not None)

    # hostd killed mid-backup: the agent sees the session end and thaws
    cli = subprocess.Popen([VMIC, "--socket", env.sock, "backup", "vm1", "--timeout", "60s",
                            "--", "sleep", "60"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tap.check("backup frozen again", wait_until(is_frozen, 10))
    orphans = descendants(env.hostd_proc.pid)
    w = start_writer("hostd-killed")
    t0 = time.monotonic()
    env.hostd_proc.kill9()
    ok = writer_done_within(w, 5)
    took = time.monotonic() - t0
    tap.check("hostd killed: thawed within 2 s", ok and took < 2.0, f"{took:.2f}s")
    cli.wait(10)
    for pid in orphans:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
finally:
    for p in writers:
        if p.poll() is None:
            p.kill()
    if cli and cli.poll() is None:
        cli.kill()
    if mounted:
        # Never leave the scratch filesystem frozen or mounted, and
        # thaw it before anything (env.close's rmtree) touches it.
        subprocess.run(["fsfreeze", "-u", mnt], capture_output=True)
        subprocess.run(["umount", mnt], capture_output=True)
    env.close()
tap.done()
