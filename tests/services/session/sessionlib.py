"""Helpers of the session tests: an Env with hostd and one agent whose
session service is on, and process checks inside "the guest" (here the
agent runs on this machine as root, so the guest's processes are ours)."""
import os
import subprocess

from vmictest import CHILD_ENV, VMIC, Env

GUEST_CONF = "[session]\nenabled = yes\nusers = root nobody\nmax-sessions = 64\nkill-grace = 500ms\n"


def start(tap, conf=GUEST_CONF, hostd_conf=None):
    env = Env(tap)
    env.start_hostd(conf=hostd_conf)
    guest = env.start_guest("vm1", conf=conf)
    env.add("vm1")
    env.vmic("enable", "vm1", "session", check=True)
    env.wait_heartbeat("vm1", "OK", 10)
    return env, guest


def exec_argv(env, *args):
    return [VMIC, "--socket", env.sock, "exec", "vm1", *args]


def run(env, *args, input=None, timeout=60, text=False):
    """vmic exec vm1 ARGS: the CompletedProcess (bytes unless text)."""
    return subprocess.run(exec_argv(env, *args), input=input, capture_output=True,
                          timeout=timeout, env=CHILD_ENV, text=text)


def popen(env, *args, **kw):
    return subprocess.Popen(exec_argv(env, *args), env=CHILD_ENV, **kw)


def procs_with(marker):
    """PIDs of live (not zombie) processes whose command line holds marker."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        state = stat[stat.rindex(")") + 2:].split()[0]
        if marker.encode() in cmd and state != "Z":
            out.append(int(d))
    return out
