#!/usr/bin/env python3
"""PAM sessions of the agent, never touching /etc/pam.d: [session]
pam-confdir points at a directory of this test whose services use
pam_permit, pam_env (an envfile of the test) and pam_exec (a script that
records each open and close into a file of the test). Checked: the PAM
session is opened before the command and closed after it, as the user;
PAM's environment reaches the command; exit statuses and signals pass
through the helper; an account the stack refuses fails the session with
a message naming PAM; a service file that is missing is named in a
warning and sessions run without PAM."""
import os
import sys

from sessionlib import procs_with, run
from vmictest import Env, Tap, wait_until

tap = Tap()
env = Env(tap)


def guest(name, service):
    conf = ("[session]\nenabled = yes\nusers = root nobody\nkill-grace = 500ms\n"
            f"pam-service = {service}\npam-confdir = {confdir}\n")
    p = env.start_guest(name, conf=conf)
    env.add(name)
    env.vmic("enable", name, "session", check=True)
    env.wait_heartbeat(name, "OK", 10)
    wait_until(lambda: (env.service(name, "session") or {}).get("primary_status") == "OK", 10)
    return p


def records():
    try:
        with open(record) as f:
            return [line.split() for line in f.read().splitlines()]
    except FileNotFoundError:
        return []


try:
    confdir = os.path.join(env.dir, "pam.d")
    os.mkdir(confdir)
    record = os.path.join(env.dir, "pam-record")
    envfile = os.path.join(env.dir, "pam-env")
    script = os.path.join(env.dir, "pam-record.sh")
    with open(envfile, "w") as f:
        f.write("VMIC_PAM_MARK=from-pam-env-7f3a\n")
    with open(os.path.join(env.dir, "pam-env.conf"), "w") as f:
        f.write("")
    with open(script, "w") as f:
        f.write(f'#!/bin/sh\necho "$PAM_TYPE $PAM_USER $PAM_SERVICE" >> {record}\n')
    os.chmod(script, 0o755)
    env_args = f"readenv=1 envfile={envfile} conffile={env.dir}/pam-env.conf"
    with open(os.path.join(confdir, "vmic-test"), "w") as f:
        f.write(f"auth required pam_env.so {env_args}\n"
                "auth required pam_permit.so\n"
                "account required pam_permit.so\n"
                f"session required pam_exec.so {script}\n"
                "session required pam_permit.so\n")
    with open(os.path.join(confdir, "vmic-deny"), "w") as f:
        f.write("auth required pam_permit.so\naccount required pam_deny.so\n"
                "session required pam_permit.so\n")
    env.start_hostd()
    g1 = guest("vm1", "vmic-test")
    out = g1.output()
    if "built without libpam" in out:
        print("# SKIP this vmic-guestd was built without libpam (libpam0g-dev missing)")
        sys.exit(77)
    tap.check("the agent says at start which PAM service it opens",
              "opens a PAM session of service 'vmic-test'" in out, out[-2000:])
    r = env.vmic("exec", "vm1", "--", "sh", "-c", 'echo "$VMIC_PAM_MARK"; exit 3')
    tap.check("PAM's environment (pam_env) reaches the command; exit 3 passes through",
              r.returncode == 3 and r.stdout == "from-pam-env-7f3a\n", (r.returncode, r.stdout, r.stderr))
    tap.check("the PAM session was opened, then closed, as root, before vmic returned",
              records() == [["open_session", "root", "vmic-test"],
                            ["close_session", "root", "vmic-test"]], records())
    os.unlink(record)
    r = env.vmic("exec", "vm1", "--user", "nobody", "--", "id", "-un")
    tap.check("as nobody: the command runs as nobody", r.returncode == 0 and
              r.stdout.strip() == "nobody", (r.returncode, r.stdout, r.stderr))
    tap.check("the PAM session names nobody",
              records() == [["open_session", "nobody", "vmic-test"],
                            ["close_session", "nobody", "vmic-test"]], records())
    r = env.vmic("exec", "vm1", "--", "sh", "-c", "kill -TERM $$")
    tap.check("a command killed by SIGTERM: 128+15 through the PAM helper",
              r.returncode == 143, (r.returncode, r.stderr))
    r = env.vmic("exec", "vm1", "--env", "VMIC_PAM_MARK=host", "--", "sh", "-c",
                 'echo "$VMIC_PAM_MARK"')
    tap.check("the host's --env wins over PAM's", r.stdout == "host\n", (r.stdout, r.stderr))
    os.unlink(record)
    r = run(env, "--tty", "--", "sh", "-c",
            'tty; read line; echo "got-$line-$VMIC_PAM_MARK"; exit 4', input="hello\n", text=True)
    tap.check("--tty under PAM: the command reads the terminal (its foreground group)",
              r.returncode == 4 and "/dev/pts/" in r.stdout and
              "got-hello-from-pam-env-7f3a" in r.stdout, (r.returncode, r.stdout, r.stderr))
    tap.check("...with PAM_TTY set, the PAM session opened and closed",
              [x[0] for x in records()] == ["open_session", "close_session"], records())
    os.unlink(record)
    r = env.vmic("exec", "vm1", "--timeout", "1", "--", "sh", "-c",
                 "trap '' INT TERM HUP; sleep 30")
    tap.check("a timeout ends the command (124)", r.returncode == 124, (r.returncode, r.stderr))
    tap.check("...and the PAM session is still closed (the helper outlives SIGTERM)",
              wait_until(lambda: len(records()) == 2, 5) and records()[1][0] == "close_session",
              records())

    # A PAM module that hangs in close_session: the helper gets one more
    # kill-grace after its command's SIGKILL, then goes too.
    hang = os.path.join(env.dir, "pam-hang.sh")
    with open(hang, "w") as f:
        f.write('#!/bin/sh\n[ "$PAM_TYPE" = close_session ] && exec sleep 4248.5\nexit 0\n')
    os.chmod(hang, 0o755)
    with open(os.path.join(confdir, "vmic-hang"), "w") as f:
        f.write("auth required pam_permit.so\naccount required pam_permit.so\n"
                f"session required pam_exec.so {hang}\n")
    g4 = guest("vm4", "vmic-hang")
    r = env.vmic("exec", "vm4", "--timeout", "1", "--", "sleep", "30", timeout=20)
    tap.check("a PAM close that hangs: the session still ends (124), the helper killed",
              r.returncode == 124 and
              wait_until(lambda: "did not end after its command" in g4.output(), 5),
              (r.returncode, r.stderr, g4.output()[-1500:]))

    guest("vm2", "vmic-deny")
    r = env.vmic("exec", "vm2", "--", "true")
    tap.check("an account PAM refuses: the session fails, naming PAM and the step",
              r.returncode != 0 and "PAM session" in r.stderr and "pam_acct_mgmt" in r.stderr,
              (r.returncode, r.stderr))

    g3 = guest("vm3", "nosuch")
    missing = os.path.join(confdir, "nosuch")
    tap.check("a missing service file: a warning naming it at start",
              f"{missing} does not exist" in g3.output(), g3.output()[-2000:])
    r = env.vmic("exec", "vm3", "--", "echo", "ok")
    tap.check("...and sessions run without PAM", r.returncode == 0 and r.stdout == "ok\n",
              (r.returncode, r.stdout, r.stderr))
finally:
    for pid in procs_with("sleep 4248.5"):
        os.kill(pid, 9)
    env.close()
tap.done()
