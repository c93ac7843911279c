#!/usr/bin/env python3
"""Every failure of vmic copy says what went wrong and where to act, and
leaves nothing behind: a missing source, a destination that exists or has
no parent, a path the guest's configuration does not allow (outside the
directories, '..', a symlink leading out, no directory configured at
all), permission denied in the guest (an agent running as nobody), no
space (a 256 KiB tmpfs in the agent's private mount namespace), a name
too long, the service off on the host or in the guest, a VM that is not
connected, and a directory without -r."""
import os
import shutil

from vmictest import Tap, wait_until
from fclib import setup, write_file, temporaries, fc_conf, start_guest_wrapped

tap = Tap()
env, guest = setup(tap)
D = env.dir
IN, OUT, HOST = f"{D}/in", f"{D}/out", f"{D}/host"


def fails(what, args, *words):
    r = env.vmic(*args)
    tap.check(what, r.returncode != 0 and all(w in r.stderr for w in words),
              (r.returncode, r.stderr))
    return r


try:
    write_file(f"{HOST}/f", 1000)
    write_file(f"{OUT}/g", 1000)
    fails("missing source: named, with the system's reason",
          ["copy", "vm1", f"{HOST}/nope", f"{IN}/x"], f"{HOST}/nope", "No such file")
    fails("missing guest source: named", ["copy", "vm1", "--from-guest", f"{OUT}/nope",
                                          f"{HOST}/x"], f"{OUT}/nope", "no such file")
    tap.check("... and the host temporary is gone", temporaries(HOST) == [], temporaries(HOST))
    fails("a guest path outside write-dirs: not allowed, the key named",
          ["copy", "vm1", f"{HOST}/f", f"{D}/elsewhere"], "write-dirs", "not allowed")
    fails("'..' out of write-dirs: not allowed",
          ["copy", "vm1", f"{HOST}/f", f"{IN}/../out/x"], "not allowed")
    os.symlink(D, f"{IN}/escape")
    fails("a symlink leading out of write-dirs: not allowed",
          ["copy", "vm1", f"{HOST}/f", f"{IN}/escape/x"], "not allowed")
    tap.check("nothing was written through it", not os.path.exists(f"{D}/x"))
    os.symlink(f"{D}/hostd.conf", f"{OUT}/link-out")
    fails("reading through a symlink out of read-dirs: not allowed",
          ["copy", "vm1", "--from-guest", f"{OUT}/link-out", f"{HOST}/y"], "not allowed")
    fails("a guest path outside read-dirs: not allowed, the key named",
          ["copy", "vm1", "--from-guest", f"{D}/hostd.conf", f"{HOST}/y"], "read-dirs")
    fails("a name too long in the guest", ["copy", "vm1", f"{HOST}/f", f"{IN}/{'n' * 300}"],
          "too long")
    os.makedirs(f"{HOST}/tree")
    fails("a directory without -r: says to copy it with -r",
          ["copy", "vm1", f"{HOST}/tree", f"{IN}/t"], "with -r")
    fails("a guest directory without -r: says it is one",
          ["copy", "vm1", "--from-guest", OUT, f"{HOST}/z"], "directory")

    # A failure part-way names the files that did arrive: the first ten
    # and a count of the rest on stderr, all of them in --json.
    import json
    os.makedirs(f"{IN}/many")
    srcs = []
    for i in range(13):
        write_file(f"{HOST}/m{i:02}", 100 + i, seed=i)
        srcs.append(f"{HOST}/m{i:02}")
    r = fails("several sources, the last missing: the arrived files are named",
              ["copy", "vm1", *srcs, f"{HOST}/missing", f"{IN}/many"],
              "13 files arrived whole before this error", f"{IN}/many/m00",
              f"{IN}/many/m09", "and 3 more")
    tap.check("... only the first ten by name", f"{IN}/many/m10" not in r.stderr, r.stderr)
    tap.check("... and they did arrive", sorted(os.listdir(f"{IN}/many")) ==
              [f"m{i:02}" for i in range(13)], os.listdir(f"{IN}/many"))
    shutil.rmtree(f"{IN}/many")
    os.makedirs(f"{IN}/many")
    r = env.vmic("copy", "vm1", "--json", *srcs[:2], f"{HOST}/missing", f"{IN}/many")
    try:
        s = json.loads(r.stdout)
    except ValueError:
        s = {}
    tap.check("--json after a failure: complete false, every arrived file with its hash",
              r.returncode != 0 and s.get("complete") is False and s.get("files") == 2 and
              [it["destination"] for it in s.get("items", [])] ==
              [f"{IN}/many/m00", f"{IN}/many/m01"] and
              all(len(it["hash"]) == 32 for it in s["items"]), (r.returncode, r.stdout))
    os.makedirs(f"{HOST}/back")
    r = fails("out of the guest too: the arrived files are named",
              ["copy", "vm1", "--from-guest", f"{OUT}/g", f"{OUT}/nope", f"{HOST}/back"],
              "1 file arrived whole before this error", f"{HOST}/back/g")
    shutil.rmtree(f"{HOST}/back")

    env.vmic("disable", "vm1", "filecopy", check=True)
    fails("disabled on the host: says how to switch it on",
          ["copy", "vm1", f"{HOST}/f", f"{IN}/x"], "vmic enable vm1 filecopy")
    env.vmic("enable", "vm1", "filecopy", check=True)

    # The agent without the service, then with it but no directories.
    guest.stop()
    env.start_guest("vm1", conf=fc_conf(D, enabled=False))
    env.wait_heartbeat("vm1", "OK", 15)
    fails("disabled in the guest: names the file and the key",
          ["copy", "vm1", f"{HOST}/f", f"{IN}/x"], "[filecopy] enabled = yes", "vmic-guestd.conf")
    env.procs[-1].stop()
    env.start_guest("vm1", conf="[filecopy]\nenabled = yes\n")
    env.wait_heartbeat("vm1", "OK", 15)
    wait_until(lambda: (env.service("vm1", "filecopy") or {}).get("primary_status") == "OK", 10)
    fails("no write-dirs: says which key to set", ["copy", "vm1", f"{HOST}/f", f"{IN}/x"],
          "[filecopy] write-dirs = DIR")
    fails("no read-dirs: says which key to set",
          ["copy", "vm1", "--from-guest", f"{OUT}/g", f"{HOST}/x"], "[filecopy] read-dirs = DIR")
    env.procs[-1].stop()
    fails("a VM that is not connected", ["copy", "vm1", f"{HOST}/f", f"{IN}/x"],
          "not connected")

    # No space: a 256 KiB tmpfs, mounted in the agent's own namespace.
    small = f"{D}/small"
    os.makedirs(small)
    conf = f"[filecopy]\nenabled = yes\nwrite-dirs = {small}\n"
    mount = f"mount -t tmpfs -o size=256k tmpfs {small} && exec \"$0\" \"$@\""
    start_guest_wrapped(env, "vm1", conf, ["unshare", "-m", "--propagation", "private",
                                           "sh", "-c", mount])
    env.wait_heartbeat("vm1", "OK", 15)
    wait_until(lambda: (env.service("vm1", "filecopy") or {}).get("primary_status") == "OK", 10)
    write_file(f"{HOST}/big", 2 << 20)
    r = fails("no space in the guest: says so", ["copy", "vm1", f"{HOST}/big", f"{small}/big"],
              "no space", f"{small}/big")
    agent = env.procs[-1]
    left = os.popen(f"nsenter -t {agent.pid} -m ls -A {small}").read().split()
    tap.check("... and leaves nothing in the full directory", left == [], left)
    agent.stop()

    # Permission denied: the agent as nobody, the directory root's.
    os.chmod(D, 0o1777)  # the agent, as nobody, makes its socket here
    locked = f"{D}/locked"
    os.makedirs(locked, mode=0o755)
    conf = f"[filecopy]\nenabled = yes\nwrite-dirs = {locked}\nread-dirs = {locked}\n"
    write_file(f"{locked}/secret", 10)
    os.chmod(f"{locked}/secret", 0o600)
    start_guest_wrapped(env, "vm1", conf, ["setpriv", "--reuid=65534", "--regid=65534",
                                           "--clear-groups"])
    env.wait_heartbeat("vm1", "OK", 15)
    wait_until(lambda: (env.service("vm1", "filecopy") or {}).get("primary_status") == "OK", 10)
    fails("permission denied in the guest (writing)",
          ["copy", "vm1", f"{HOST}/f", f"{locked}/x"], "ermission denied")
    fails("permission denied in the guest (reading)",
          ["copy", "vm1", "--from-guest", f"{locked}/secret", f"{HOST}/s"], "ermission denied")
    tap.check("no temporary left anywhere", temporaries(IN, OUT, HOST, locked) == [],
              temporaries(IN, OUT, HOST, locked))
finally:
    env.close()
tap.done()
