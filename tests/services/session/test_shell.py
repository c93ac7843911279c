#!/usr/bin/env python3
"""vmic shell driven through tmux (send-keys, capture-pane): the login
shell's prompt, a full-screen program, a resize seen by `stty size`, `~.`
ending the session (exit 255), and the terminal restored after the agent
is killed under the shell."""
import os
import shutil
import signal
import subprocess
import sys
import time

from sessionlib import procs_with, start
from vmictest import VMIC, Tap, wait_until

if not shutil.which("tmux"):
    print("1..0 # SKIP tmux is not installed")
    sys.exit(77)

tap = Tap()
env = None
sock = None


def tmux(*args, check=True):
    return subprocess.run(["tmux", "-S", sock, *args], capture_output=True, text=True,
                          check=check)


def screen():
    return tmux("capture-pane", "-p", "-t", "s", check=False).stdout


def shows(text, timeout=10):
    return wait_until(lambda: text in screen(), timeout, 0.1)


def new_pane(n, script):
    """A tmux server of its own per phase (a killed server may still hold
    its socket for a moment)."""
    global sock
    sock = os.path.join(env.dir, f"tmux-{n}.sock")
    tmux("-f", "/dev/null", "new-session", "-d", "-s", "s", "-x", "80", "-y", "24",
         "env", "TERM=xterm", "sh", "-c", script)


def keys(*k):
    tmux("send-keys", "-t", "s", *k)


def prompt_line(text):
    """A screen line that starts with text: the shell printed it (typed
    keys echo after the prompt, never at a line's start)."""
    return wait_until(lambda: any(l.startswith(text) for l in screen().splitlines()), 10, 0.1)


def shell_ready():
    """The guest's shell evaluates what is typed (keys typed before it ran
    would only be echoed by the local terminal)."""
    # vmic's switch to raw mode flushes what was typed before it (TCSAFLUSH):
    # type again until the shell answers.
    for _ in range(10):
        keys("echo READY-$((20+22))", "Enter")
        if shows("READY-42", 2):
            return prompt_ps1()
    return False


def prompt_ps1():
    keys("PS1='guest# '", "Enter")
    return prompt_line("guest#")


try:
    env, guest = start(tap)
    status = os.path.join(env.dir, "status")
    before = os.path.join(env.dir, "stty-before")
    after = os.path.join(env.dir, "stty-after")
    # The pane runs a shell script: the terminal's modes before and after
    # vmic shell, and vmic's exit status.
    script = (f"stty -g > {before}; PS1='host$ '; export PS1; "
              f"{VMIC} --socket {env.sock} shell vm1; echo $? > {status}; "
              f"stty -g > {after}; echo VMIC-DONE; exec sleep 600")
    new_pane(1, script)
    tap.check("the login shell's prompt", shell_ready(), screen())
    keys("echo hi-$((6*7))", "Enter")
    tap.check("a command's output", shows("hi-42"), screen())
    keys("stty size", "Enter")
    tap.check("the first size is the terminal's: 24 80", shows("24 80"), screen())
    tmux("resize-window", "-t", "s", "-x", "100", "-y", "30")
    time.sleep(0.5)
    keys("clear; stty size", "Enter")
    tap.check("a resize is seen by stty size: 30 100", shows("30 100"), screen())
    keys("clear; top -d 0.5", "Enter")
    tap.check("a full-screen program (top) draws", shows("load average"), screen())
    keys("q")
    keys("clear; echo back-$((1+1))", "Enter")
    tap.check("and gives the shell back", shows("back-2"), screen())
    keys("Enter", "~.")
    tap.check("~. on a new line ends the session",
              wait_until(lambda: os.path.exists(status) and open(status).read().strip(), 10),
              screen())
    tap.check("vmic exits 255 after ~.", open(status).read().strip() == "255",
              open(status).read() if os.path.exists(status) else "")
    tap.check("the terminal is restored after ~.", shows("VMIC-DONE") and
              open(before).read() == open(after).read(),
              (open(before).read(), open(after).read() if os.path.exists(after) else None))
    tmux("kill-server", check=False)

    # SIGTERM to vmic shell: the session ends, the terminal comes back.
    for f in (status, before, after):
        if os.path.exists(f):
            os.unlink(f)
    new_pane(2, script)
    tap.check("a shell to be ended by SIGTERM", shell_ready(), screen())
    shells = [p for p in procs_with(f"{env.sock}") if open(f"/proc/{p}/cmdline", "rb")
              .read().split(b"\0")[-2:-1] == [b"vm1"]]
    if shells:
        os.kill(shells[0], signal.SIGTERM)
    tap.check("SIGTERM to vmic shell: it ends with 128+15",
              wait_until(lambda: os.path.exists(status) and open(status).read().strip(), 15) and
              open(status).read().strip() == "143",
              (shells, open(status).read() if os.path.exists(status) else None, screen()))
    tap.check("the terminal is restored after SIGTERM", shows("VMIC-DONE") and
              open(before).read() == open(after).read(), screen())
    tmux("kill-server", check=False)

    # The agent killed under a shell: vmic ends, the terminal comes back.
    for f in (status, before, after):
        if os.path.exists(f):
            os.unlink(f)
    new_pane(3, script)
    tap.check("a second shell", shell_ready(), screen())
    guest.kill9()
    tap.check("vmic ends when the agent dies",
              wait_until(lambda: os.path.exists(status) and open(status).read().strip(), 15),
              screen())
    tap.check("its status says it failed", os.path.exists(status) and
              open(status).read().strip() not in ("", "0"), screen())
    tap.check("the terminal is restored after the agent died",
              shows("VMIC-DONE") and open(before).read() == open(after).read(), screen())
    tap.check("vmic says why", "vmic:" in screen(), screen())
finally:
    for n in (1, 2, 3):
        if env and os.path.exists(os.path.join(env.dir, f"tmux-{n}.sock")):
            subprocess.run(["tmux", "-S", os.path.join(env.dir, f"tmux-{n}.sock"),
                            "kill-server"], capture_output=True)
    if env:
        env.close()
tap.done()
