#!/usr/bin/env python3
"""vmic exec with real daemons on the unix transport: exit statuses and
signals, stdin and stdout separate from stderr and interleaved, stdin EOF,
a command that closes stdout early, the users the guest allows, the
environment and directory, events of start and end."""
import os
import subprocess

from sessionlib import exec_argv, run, start
from vmictest import CHILD_ENV, Tap

tap = Tap()
env = None
try:
    env, guest = start(tap)
    r = run(env, "--", "sh", "-c", "echo out; echo err >&2; exit 7")
    tap.check("exit status 7 becomes vmic's", r.returncode == 7, (r.returncode, r.stderr))
    tap.check("stdout and stderr stay separate",
              r.stdout == b"out\n" and r.stderr == b"err\n", (r.stdout, r.stderr))
    r = run(env, "--", "true")
    tap.check("true: 0", r.returncode == 0, r.stderr)
    r = run(env, "--", "sh", "-c", "kill -TERM $$")
    tap.check("killed by SIGTERM: 128+15", r.returncode == 143, (r.returncode, r.stderr))
    r = run(env, "--", "sh", "-c", "kill -KILL $$")
    tap.check("killed by SIGKILL: 128+9", r.returncode == 137, (r.returncode, r.stderr))
    r = run(env, "--", "cat", input=b"hello\nworld\n")
    tap.check("stdin reaches the command, EOF ends cat",
              r.returncode == 0 and r.stdout == b"hello\nworld\n", (r.returncode, r.stdout, r.stderr))
    r = run(env, "--", "sh", "-c",
            "for i in 1 2 3 4 5; do echo o$i; echo e$i >&2; done", text=True)
    tap.check("interleaved output: every line on its own stream, in order",
              r.stdout == "".join(f"o{i}\n" for i in range(1, 6)) and
              r.stderr == "".join(f"e{i}\n" for i in range(1, 6)), (r.stdout, r.stderr))
    # Both into one file or pipe (> log 2>&1): interleaved as written.
    want = "".join(f"o{i}\ne{i}\n" for i in range(1, 6))
    log = os.path.join(env.dir, "both.log")
    with open(log, "w") as f:
        p = subprocess.run(exec_argv(env, "--", "sh", "-c",
                                     "for i in 1 2 3 4 5; do echo o$i; echo e$i >&2; done"),
                           stdout=f, stderr=subprocess.STDOUT, env=CHILD_ENV, timeout=60)
    tap.check("> file 2>&1: one file, lines interleaved as the command wrote them",
              p.returncode == 0 and open(log).read() == want, open(log).read())
    p = subprocess.run(exec_argv(env, "--", "sh", "-c",
                                 "for i in 1 2 3 4 5; do echo o$i; echo e$i >&2; done"),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=CHILD_ENV, timeout=60)
    tap.check("2>&1 into one pipe: interleaved as written",
              p.returncode == 0 and p.stdout.decode() == want, p.stdout)
    r = run(env, "--", "sh", "-c", "exec >&-; echo still here >&2; sleep 0.2; exit 3")
    tap.check("a command that closes stdout early: its stderr and status still come",
              r.returncode == 3 and r.stderr == b"still here\n" and r.stdout == b"",
              (r.returncode, r.stdout, r.stderr))
    r = run(env, "--user", "nobody", "--", "id", "-un", text=True)
    tap.check("--user nobody runs as nobody", r.returncode == 0 and r.stdout.strip() == "nobody",
              (r.returncode, r.stdout, r.stderr))
    r = run(env, "--", "id", "-u", text=True)
    tap.check("without --user: the first listed (root)", r.stdout.strip() == "0", (r.stdout, r.stderr))
    r = run(env, "--user", "daemon", "--", "true", text=True)
    tap.check("a user the guest does not list: refused with a clear message",
              r.returncode != 0 and "daemon" in r.stderr and "may not run sessions" in r.stderr,
              (r.returncode, r.stderr))
    r = run(env, "--env", "FOO=bar baz", "--cwd", "/tmp", "--", "sh", "-c",
            "echo \"$FOO|$PWD|$HOME|$USER|$LOGNAME\"; env | wc -l", text=True)
    lines = r.stdout.splitlines()
    tap.check("--env and --cwd, HOME/USER/LOGNAME set",
              lines and lines[0] == "bar baz|/tmp|/root|root|root", (r.stdout, r.stderr))
    tap.check("a clean environment (a handful of variables)",
              len(lines) == 2 and int(lines[1]) < 12, r.stdout)
    r = run(env, "--", "no-such-command-xyz", text=True)
    tap.check("a command not found: a clear error", r.returncode != 0 and
              "not found" in r.stderr, (r.returncode, r.stderr))
    r = run(env, "--cwd", "/no/such/dir", "--", "true", text=True)
    tap.check("a directory that does not exist: a clear error",
              r.returncode != 0 and "/no/such/dir" in r.stderr, (r.returncode, r.stderr))
    r = run(env, "--tty", "--", "sh", "-c", "tty; read line; echo got-$line; exit 4",
            input=b"hello\n")
    tap.check("--tty: a pseudo-terminal, stdin through it, the exit status",
              r.returncode == 4 and b"/dev/pts/" in r.stdout and b"got-hello" in r.stdout,
              (r.returncode, r.stdout, r.stderr))
    r = run(env, "--tty", "--", "cat", input=b"abc\n")
    tap.check("--tty: stdin's end is ^D, which ends cat", r.returncode == 0 and
              r.stdout.count(b"abc") >= 1, (r.returncode, r.stdout, r.stderr))
    ev = [e for e in env.events("vm1") if e["kind"] in ("session-start", "session-end")]
    starts = [e for e in ev if e["kind"] == "session-start"]
    ends = [e for e in ev if e["kind"] == "session-end"]
    tap.check("every session start and end is an event", len(starts) >= 8 and len(ends) == len(starts),
              (len(starts), len(ends)))
    tap.check("the events name host user, guest user, command and exit status",
              any("root" in e["message"] and "nobody" in e["message"] and "id -un" in e["message"]
                  for e in starts) and
              any("exit status 7" in e["message"] for e in ends), ev[:4])
    tap.check("the agent still runs", guest.alive())
finally:
    if env:
        env.close()
tap.done()
