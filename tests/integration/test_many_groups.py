#!/usr/bin/env python3
"""A member of the socket group is served whatever the number of groups
the user is in (the lookup used to stop at 256 and refuse). The daemon
runs in a mount namespace of its own whose /etc/group lists 300 groups
for `nobody`; the machine's /etc/group is not touched."""
import os
import shutil
import subprocess
import sys

from vmictest import CHILD_ENV, HOSTD, VMIC, Env, Proc, Tap, wait_until

tap = Tap()
if not shutil.which("unshare") or subprocess.run(
        ["unshare", "--mount", "true"], capture_output=True).returncode != 0:
    print("1..0 # SKIP no mount namespaces here (unshare --mount failed)")
    sys.exit(77)
env = Env(tap)
try:
    os.chmod(env.dir, 0o755)
    fake = os.path.join(env.dir, "group")
    with open("/etc/group") as src, open(fake, "w") as out:
        out.write(src.read())
        for i in range(300):
            out.write(f"vmicg{i:03d}:x:{42000 + i}:nobody\n")
        out.write("vmicnone:x:42999:\n")

    def hostd(group):
        if os.path.exists(env.sock):
            os.unlink(env.sock)
        conf = os.path.join(env.dir, f"{group}.conf")
        with open(conf, "w") as f:
            f.write(f"[daemon]\nsocket-group = {group}\n")
        cmd = (f"mount --bind {fake} /etc/group && exec {HOSTD} --config {conf} "
               f"--state-dir {env.state} --socket {env.sock}")
        p = Proc("hostd-ns", ["unshare", "--mount", "--propagation", "private",
                              "sh", "-c", cmd], os.path.join(env.dir, f"{group}.log"))
        env.procs.append(p)
        wait_until(lambda: "ready" in p.output() or not p.alive(), 15)
        return p

    def as_nobody(group_gid):
        # The client holds the group as its own (file access to the 0660
        # socket); the daemon checks membership by name, in its namespace.
        return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                               f"--groups={group_gid}", VMIC, "--socket", env.sock,
                               "list"], capture_output=True, text=True, env=CHILD_ENV)

    p = hostd("vmicg299")
    r = as_nobody(42299)
    tap.check("a user in 301 groups is served when the socket group is the 300th",
              r.returncode == 0, r.stdout + r.stderr + p.output()[-500:])
    p.stop()
    p = hostd("vmicnone")
    r = as_nobody(42999)
    tap.check("... and refused when not in it", r.returncode != 0 and "permission" in r.stderr,
              r.stdout + r.stderr)
    p.stop()
    with open("/etc/group") as f:
        tap.check("the machine's /etc/group was not touched", "vmicg299" not in f.read())
finally:
    env.close()
tap.done()
