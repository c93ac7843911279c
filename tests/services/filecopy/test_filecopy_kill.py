#!/usr/bin/env python3
"""Interrupted copies leave nothing: kill -9 of the agent in the middle of
a copy into the guest (20 times: the next agent removes the temporary it
finds, and no destination appears), kill -9 of vmic-hostd in the middle
(20 times: the agent drops the copy at once, no temporary, no
destination), and the CLI told what happened each time."""
import os
import signal
import subprocess
import time

from vmictest import Tap, VMIC, CHILD_ENV, wait_until
from fclib import setup, temporaries, fc_conf, ready, write_file

REPS = int(os.environ.get("VMIC_FC_KILL_REPS", "20"))
tap = Tap()
env, guest = setup(tap)
D = env.dir
IN, OUT, HOST = f"{D}/in", f"{D}/out", f"{D}/host"


def start_copy(dst):
    """A copy fed by a pipe that stays open: it is mid-way until killed."""
    p = subprocess.Popen([VMIC, "--socket", env.sock, "copy", "vm1", "-", dst],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=CHILD_ENV)
    try:
        p.stdin.write(os.urandom(300 * 1024))
        p.stdin.flush()
    except BrokenPipeError:
        pass  # it failed already: finish() tells
    return p


def mid_copy():
    return wait_until(lambda: temporaries(IN) and os.path.getsize(temporaries(IN)[0]) > 0, 10)


def started_copy(dst):
    """A copy under way; a session that is still being set up after a
    restart (the channel reconnecting) is waited for and tried again."""
    for _ in range(5):
        p = start_copy(dst)
        if mid_copy():
            return p, None
        rc, err = finish(p)
        if "not connected" not in err:
            return None, (rc, err)
        ready(env)
    return None, (rc, err)


def writing_into(pid, d, timeout=10):
    """True once process pid has a file open beneath d (its unnamed
    temporary or a named one) that holds data."""
    def busy():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            return False
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith(d + "/") and os.stat(f"/proc/{pid}/fd/{fd}").st_size > 0:
                    return True
            except OSError:
                pass
        return False
    return wait_until(busy, timeout, 0.002)


def finish(p):
    try:
        p.stdin.close()
    except BrokenPipeError:
        pass
    p.wait(timeout=30)
    err = p.stderr.read()
    p.stdout.close()
    p.stderr.close()
    return p.returncode, err.decode(errors="replace")


try:
    agent = guest
    bad = []
    for i in range(REPS):
        p, why = started_copy(f"{IN}/a{i}")
        if not p:
            bad.append((i, "the copy never started", why))
            continue
        agent.kill9()
        rc, err = finish(p)
        if rc == 0 or "guest" not in err:
            bad.append((i, rc, err))
        if os.path.exists(f"{IN}/a{i}"):
            bad.append((i, "a destination appeared"))
        agent = env.start_guest("vm1", conf=fc_conf(D))
        if not wait_until(lambda: temporaries(IN) == [], 10):
            bad.append((i, "the temporary stayed", temporaries(IN)))
        ready(env)
    tap.check(f"kill -9 of the agent mid-copy, {REPS} times: the CLI hears it, no "
              "destination, the next agent removes the temporary", bad == [], bad)
    tap.check("the agent says it removed them", "temporary file" in agent.output(),
              agent.output()[-2000:])

    bad = []
    for i in range(REPS):
        p, why = started_copy(f"{IN}/h{i}")
        if not p:
            bad.append((i, "the copy never started", why))
            continue
        env.hostd_proc.kill9()
        rc, err = finish(p)
        if rc == 0:
            bad.append((i, rc, err))
        if not wait_until(lambda: temporaries(IN) == [], 10):
            bad.append((i, "the agent kept the temporary", temporaries(IN)))
        if os.path.exists(f"{IN}/h{i}"):
            bad.append((i, "a destination appeared"))
        env.start_hostd()
        ready(env)
    tap.check(f"kill -9 of vmic-hostd mid-copy, {REPS} times: the CLI fails, the agent "
              "drops the temporary at once, no destination", bad == [], bad)

    # vmic itself killed by SIGKILL while a file comes out of the guest:
    # its temporary had no name (O_TMPFILE), so nothing is left on the
    # host, whatever the moment.
    with open(f"{OUT}/huge", "wb") as f:
        f.truncate(1 << 30)
    bad, mid = [], 0
    for i in range(REPS):
        dst = f"{HOST}/k{i}"
        p = subprocess.Popen([VMIC, "--socket", env.sock, "copy", "vm1", "--from-guest",
                              f"{OUT}/huge", dst], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=CHILD_ENV)
        if writing_into(p.pid, HOST):
            mid += 1
        p.kill()
        p.wait(timeout=30)
        p.stderr.close()
        if not wait_until(lambda: os.listdir(HOST) == [], 10):
            bad.append((i, "left on the host", os.listdir(HOST)))
            for name in os.listdir(HOST):
                os.unlink(os.path.join(HOST, name))
    tap.check(f"kill -9 of vmic mid-copy out of the guest, {REPS} times: no "
              "temporary, no destination on the host", bad == [], bad)
    tap.check("and each kill came while data was being written", mid == REPS,
              f"{mid} of {REPS}")
    os.unlink(f"{OUT}/huge")
    ready(env)
    write_file(f"{OUT}/small", 4096)
    r = env.vmic("copy", "vm1", "--from-guest", f"{OUT}/small", f"{HOST}/after")
    tap.check("the next copy out of the guest works", r.returncode == 0 and
              os.path.getsize(f"{HOST}/after") == 4096, r.stderr)
    os.unlink(f"{HOST}/after")

    # The CLI killed while a file comes out of the guest: the daemon's
    # operation ends (its client left), the guest stops sending.
    with open(f"{OUT}/big", "wb") as f:
        f.truncate(256 << 20)
    p = subprocess.Popen([VMIC, "--socket", env.sock, "copy", "vm1", "--from-guest",
                          f"{OUT}/big", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=CHILD_ENV)
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    tap.check("SIGINT cancels a copy out of the guest and says so",
              p.returncode != 0 and b"cancel" in err, err)
    tap.check("the heartbeat stayed OK through all of it", env.heartbeat("vm1") == "OK",
              env.heartbeat("vm1"))
finally:
    env.close()
tap.done()
