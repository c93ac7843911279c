#!/usr/bin/env python3
"""Daemon plumbing: sd_notify READY=1 from both daemons, clean exit on
SIGTERM, --version."""
import os
import socket
import subprocess

from vmictest import GUESTD, GUEST_CLOCK_ARGS, HOSTD, CHILD_ENV, Env, Proc, Tap

tap = Tap()
env = Env(tap)
try:
    def notify_socket(name):
        path = os.path.join(env.dir, name)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(10)
        return s, dict(CHILD_ENV, NOTIFY_SOCKET=path)

    ns, child_env = notify_socket("notify-guest.sock")

    g = Proc("guest-notify", [GUESTD, "--config", "/dev/null", "--channel",
                              f"unix-listen:{env.dir}/n.sock", "--kvp-dir",
                              f"{env.dir}/n-kvp", *GUEST_CLOCK_ARGS],
             os.path.join(env.dir, "gn.log"), env=child_env)
    env.procs.append(g)
    try:
        msg = ns.recv(4096).decode()
    except socket.timeout:
        msg = ""
    tap.check("vmic-guestd sends READY=1", "READY=1" in msg, msg)
    tap.check("vmic-guestd exits 0 on SIGTERM", g.stop() == 0)
    try:
        msg = ns.recv(4096).decode()
    except socket.timeout:
        msg = ""
    tap.check("vmic-guestd sends STOPPING=1", "STOPPING=1" in msg, msg)

    ns, child_env = notify_socket("notify-host.sock")

    h = Proc("hostd-notify", [HOSTD, "--config", "/dev/null", "--state-dir",
                              f"{env.dir}/st2", "--socket", f"{env.dir}/c2.sock"],
             os.path.join(env.dir, "hn.log"), env=child_env)
    env.procs.append(h)
    try:
        msg = ns.recv(4096).decode()
    except socket.timeout:
        msg = ""
    tap.check("vmic-hostd sends READY=1", "READY=1" in msg, msg)
    rc = h.stop()
    tap.check("vmic-hostd exits 0 on SIGTERM", rc == 0, f"exit {rc}\n{h.output()}")

    for binary in (GUESTD, HOSTD):
        r = subprocess.run([binary, "--version"], capture_output=True, text=True)
        tap.check(f"{os.path.basename(binary)} --version", r.returncode == 0 and
                  r.stdout.split()[-1][0].isdigit(), r.stdout)
    # Both daemons unprivileged, with a real session: test_reload.py.
finally:
    env.close()
tap.done()
