#!/usr/bin/env python3
"""The daemons' life: SIGHUP reloads the configuration (and a bad file
leaves the running one), both daemons run as an unprivileged user, a
socket that cannot be created is explained, and VMs that failed together
do not retry together."""
import os
import signal
import subprocess
import time

from vmictest import (GUESTD, GUEST_CLOCK_ARGS, HOSTD, VMIC, CHILD_ENV, Env, Proc, Tap,
                      ready_lines, wait_until)

tap = Tap()
env = Env(tap)
try:
    base = "[connection]\nretry-min = 100ms\nretry-max = 1s\n"
    env.start_hostd(conf=base + "[heartbeat]\ninterval = 700ms\n")
    env.start_guest("vm1")
    env.add("vm1")
    tap.check("OK", env.wait_heartbeat("vm1", "OK", 10) is not None)
    nonce = env.status("vm1")["connection_detail"]["agent_nonce"]

    with open(env.hostd_conf, "w") as f:
        f.write(base + "[heartbeat]\ninterval = 400ms\nthreshold = 6\n")
    env.hostd_proc.signal(signal.SIGHUP)
    hb = wait_until(lambda: (s := env.service("vm1", "heartbeat"))
                    and s["settings"]["interval"] == "400ms" and s, 10)
    tap.check("SIGHUP: a VM that inherits the default takes the new one",
              hb and hb["settings"] == {"interval": "400ms", "threshold": "6"}, hb)
    tap.check("SIGHUP: the daemon lives on, its VM still connected",
              env.hostd_proc.alive() and env.heartbeat("vm1") == "OK"
              and env.status("vm1")["connection_detail"]["agent_nonce"] == nonce,
              env.status("vm1"))

    # [events] limits apply at a reload too: a smaller keep prunes at once.
    with open(env.hostd_conf, "w") as f:
        f.write(base + "[heartbeat]\ninterval = 400ms\nthreshold = 6\n"
                "[events]\nvm-rate = 1000\nvm-burst = 100000\n")
    env.hostd_proc.signal(signal.SIGHUP)
    wait_until(lambda: env.hostd_proc.output().count("configuration reloaded") >= 2, 5)
    for _ in range(100):
        for verb in ("disable", "enable"):
            env.ctl({"cmd": verb, "vm": "vm1", "service": "shutdown"})
    before = len(env.events())
    with open(env.hostd_conf, "w") as f:
        f.write(base + "[heartbeat]\ninterval = 400ms\nthreshold = 6\n"
                "[events]\nkeep = 100\n")
    env.hostd_proc.signal(signal.SIGHUP)
    tap.check("SIGHUP: a smaller [events] keep prunes the log at once",
              before > 200 and wait_until(lambda: len(env.events()) <= 100, 10),
              (before, len(env.events())))

    with open(env.hostd_conf, "w") as f:
        f.write("[heartbeat]\ninterval = soon\n")
    env.hostd_proc.signal(signal.SIGHUP)
    tap.check("SIGHUP with a broken file: says so and keeps the running one",
              wait_until(lambda: "reload failed; the running configuration stays"
                         in env.hostd_proc.output(), 5)
              and env.service("vm1", "heartbeat")["settings"]["interval"] == "400ms",
              env.hostd_proc.output()[-1500:])
    # The agent: SIGHUP applies its health command at once, keeps the
    # session, and names the switch it cannot change.
    g = [p for p in env.procs if p.name == "guest-vm1"][0]
    gconf = os.path.join(env.dir, "vm1.conf")
    with open(gconf, "w") as f:
        f.write("[heartbeat]\nhealth-command = echo disk full; exit 1\n"
                "health-interval = 1s\n[shutdown]\nenabled = no\n")
    g.signal(signal.SIGHUP)
    tap.check("agent SIGHUP: the new health command applies, the session stays",
              env.wait_heartbeat("vm1", "OK (application critical)", 10) is not None
              and g.alive() and env.status("vm1")["connection_detail"]["agent_nonce"] == nonce,
              g.output()[-1500:])
    tap.check("agent SIGHUP: a switch that needs a restart is named",
              "[shutdown] enabled changes when vmic-guestd restarts" in g.output(),
              g.output()[-1500:])
    with open(gconf, "w") as f:
        f.write("[heartbeat]\nhealth-interval = never\n")
    g.signal(signal.SIGHUP)
    tap.check("agent SIGHUP with a broken file: keeps running as it was",
              wait_until(lambda: "reload failed" in g.output(), 5) and g.alive()
              and env.heartbeat("vm1") == "OK (application critical)", g.output()[-1500:])
    env.hostd_proc.stop()

    # Paths given by the file alone: a changed one is named, not taken.
    conf2 = os.path.join(env.dir, "own.conf")
    sock2 = os.path.join(env.dir, "own.sock")
    with open(conf2, "w") as f:
        f.write(f"[daemon]\nstate-dir = {env.dir}/own-state\nsocket = {sock2}\n")
    h2 = Proc("hostd-own", [HOSTD, "--config", conf2], os.path.join(env.dir, "own.log"))
    env.procs.append(h2)
    wait_until(lambda: "ready" in h2.output(), 10)
    with open(conf2, "w") as f:
        f.write(f"[daemon]\nstate-dir = {env.dir}/elsewhere\nsocket = {sock2}\n")
    h2.signal(signal.SIGHUP)
    tap.check("SIGHUP: a key that cannot change at run time is named, with what to do",
              wait_until(lambda: "state-dir cannot change at run time" in h2.output()
                         and "restart vmic-hostd" in h2.output(), 5)
              and h2.alive() and os.path.exists(sock2), h2.output()[-1500:])
    tap.check("vmic-hostd exits 0 after reloads", h2.stop() == 0)

    # Forty VMs nobody answers, all failing at the daemon's start.
    with open(env.hostd_conf, "w") as f:
        f.write("[connection]\nretry-min = 10s\nretry-max = 20s\n")
    env.start_hostd()
    for i in range(40):
        env.vmic("add", f"off{i:02d}", "--channel", f"unix:{env.dir}/off{i:02d}.sock", check=True)
    env.hostd_proc.stop()
    env.start_hostd()
    t0 = time.monotonic()
    due = []
    for i in range(40):
        d = env.status(f"off{i:02d}")["connection_detail"]
        if d["next_retry_ms"] is not None:
            due.append(time.monotonic() - t0 + d["next_retry_ms"] / 1000)
    spread = max(due) - min(due) if len(due) == 40 else 0
    tap.check("VMs that failed together retry spread out (jitter)", spread > 1.0,
              f"{len(due)} retries due within {spread:.2f}s")
    env.hostd_proc.stop()

    # The control socket cannot be made: say why, exit 1.
    p = Proc("hostd-badsock", [HOSTD, "--config", "/dev/null", "--state-dir",
                               f"{env.dir}/st4", "--socket", "/etc/passwd/ctl.sock"],
             os.path.join(env.dir, "badsock.log"))
    env.procs.append(p)
    rc = p.p.wait(15)
    tap.check("a socket path that cannot be used is explained",
              rc == 1 and "/etc/passwd/ctl.sock" in p.output()
              and "Not a directory" in p.output(), p.output())

    # Both daemons as nobody, in a directory of their own; a real session.
    os.chmod(env.dir, 0o777)
    priv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    gsock, hsock = f"{env.dir}/nobody-g.sock", f"{env.dir}/nobody-h.sock"
    g = Proc("guest-nobody", priv + [GUESTD, "--config", "/dev/null", "--channel",
                                     f"unix-listen:{gsock}", "--kvp-dir",
                                     f"{env.dir}/nobody-kvp", *GUEST_CLOCK_ARGS],
             os.path.join(env.dir, "gn.log"))
    h = Proc("hostd-nobody", priv + [HOSTD, "--config", "/dev/null", "--state-dir",
                                     f"{env.dir}/st5", "--socket", hsock],
             os.path.join(env.dir, "hn.log"))
    env.procs += [g, h]
    # Ready means listening: the agent's log says so, and the control
    # socket accepts (either file exists a moment before that).
    up = wait_until(lambda: ready_lines(g.log_path) and env._connectable(hsock), 10)
    run = lambda *a: subprocess.run(priv + [VMIC, "--socket", hsock, *a], capture_output=True,
                                    text=True, env=CHILD_ENV)
    r = run("add", "vm9", "--channel", f"unix:{gsock}") if up else None
    ok = r is not None and r.returncode == 0 and wait_until(
        lambda: '"OK"' in run("status", "vm9", "--json").stdout, 10)
    tap.check("both daemons run unprivileged and reach OK", bool(ok),
              (r and r.stderr, g.output()[-500:], h.output()[-500:]))
finally:
    env.close()
tap.done()
