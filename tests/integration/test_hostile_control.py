#!/usr/bin/env python3
"""What a control client may do, and what it may cost the daemon.

- Members of the socket group (here `nobody` in group `nogroup`) may not
  make root run a command or open a path: exec:/qmp: power backends and
  unix: channels only as [access] allows; root may set anything.
- Two VMs on one channel are refused at add and set.
- Clients that ask for `list` of 3,000 VMs and never read hold a bounded
  amount of memory each (the reply is streamed), and others are served.
- A follower of `events` that does not read is told why it is dropped.
"""
import json
import os
import pwd
import socket
import subprocess
import time

from vmictest import VMIC, CHILD_ENV, Env, Tap, wait_until

MAX_UNREAD = 262144
LOW_WATER = MAX_UNREAD // 2  # ctl-reply.c: a streamed reply pauses above it

tap = Tap()
env = Env(tap)
try:
    os.chmod(env.dir, 0o755)
    nobody = str(pwd.getpwnam("nobody").pw_uid)
    conf = ("[daemon]\nsocket-group = nogroup\nmax-vms = 3010\n"
            "[connection]\nretry-min = 100ms\nretry-max = 1s\n"
            "[access]\n"
            f"group-channels = unix:{env.dir}/allowed-*.sock, vsock:*\n"
            "group-power-off = exec:echo off {vm}\n"
            f"[control]\nmax-unread = {MAX_UNREAD}\n"
            # The follower test below needs every toggle to be an event.
            "[events]\nvm-rate = 1000\nvm-burst = 100000\n")
    env.start_hostd(conf=conf)

    def as_nobody(*args):
        r = env.vmic(*args, user=nobody)
        return r.returncode, r.stdout + r.stderr

    rc, out = as_nobody("list")
    tap.check("a member of the socket group is served", rc == 0, out)
    pwned = os.path.join(env.dir, "pwned")
    rc, out = as_nobody("add", "x1", "--channel", "unix:/etc/shadow")
    tap.check("group member: a channel [access] does not allow is refused",
              rc != 0 and "may only" in out and "group-channels" in out, out)
    rc, out = as_nobody("add", "g1", "--channel", f"unix:{env.dir}/allowed-g1.sock")
    tap.check("group member: an allowed channel is taken", rc == 0, out)
    rc, out = as_nobody("set", "g1", "--power-off", f"exec:id > {pwned}")
    tap.check("group member: an exec: power backend is refused",
              rc != 0 and "may only" in out and "runs as root" in out, out)
    r = env.vmic("stop", "g1", "--turn-off", user=nobody)
    tap.check("... so nothing ran as root", not os.path.exists(pwned),
              r.stdout + r.stderr)
    rc, out = as_nobody("set", "g1", "--power-off", "exec:echo off g1")
    tap.check("group member: the exec: backend [access] allows for this VM", rc == 0, out)
    rc, out = as_nobody("set", "g1", "--power-off", "exec:echo off g1; id")
    tap.check("group member: the allowed command with a shell tail is refused",
              rc != 0 and "may only" in out, out)
    rc, out = as_nobody("set", "g1", "--power-off", "qmp:/run/other.qmp")
    tap.check("group member: a qmp: path [access] does not allow is refused",
              rc != 0 and "may only" in out, out)
    rc, out = as_nobody("add", "x2", "--channel", f"unix:{env.dir}/allowed-../x.sock")
    tap.check("group member: a pattern does not reach through ..",
              rc != 0 and "may only" in out, out)
    r = env.vmic("add", "r1", "--channel", "unix:/nonexistent/r1.sock",
                 "--power-off", "exec:true")
    tap.check("root may set any channel and power backend", r.returncode == 0, r.stderr)

    # One channel, one VM.
    r = env.vmic("add", "r2", "--channel", "unix:/nonexistent/r1.sock")
    tap.check("a second VM on a VM's channel is refused, naming the VM",
              r.returncode != 0 and "'r1'" in r.stderr and "already" in r.stderr, r.stderr)
    env.vmic("add", "r2", "--channel", "unix:/nonexistent/r2.sock", check=True)
    r = env.vmic("set", "r2", "--channel", "unix:/nonexistent/r1.sock")
    tap.check("set to another VM's channel is refused", r.returncode != 0 and "'r1'" in r.stderr,
              r.stderr)
    r = env.vmic("set", "r2", "--channel", "unix:/nonexistent/r2.sock")
    tap.check("set to its own channel is fine", r.returncode == 0, r.stderr)

    # 3,000 VMs, then clients that ask for the whole list and never read.
    s = socket.socket(socket.AF_UNIX)
    s.connect(env.sock)
    n = 3000
    data = b""
    for first in range(0, n, 200):  # read as we go: replies count too
        s.sendall(b"".join(json.dumps({"cmd": "add", "vm": f"vm{i:05d}", "channel":
                                       f"unix:{env.dir}/none-{i:05d}.sock"}).encode() + b"\n"
                           for i in range(first, first + 200)))
        while data.count(b"\n") < first + 200:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    s.close()
    tap.check("3,000 VMs registered", data.count(b'"ok":true') == n, data[-300:])
    for i in range(10):
        r = env.vmic("add", f"more{i}", "--channel", f"unix:{env.dir}/more-{i}.sock")
    tap.check("[daemon] max-vms bounds the registry, with a clear error",
              r.returncode != 0 and "max-vms" in r.stderr
              and len(env.vmic_json("list")["vms"]) == 3010, r.stderr)
    stuck = []
    for _ in range(40):
        c = socket.socket(socket.AF_UNIX)
        c.connect(env.sock)
        c.sendall(b'{"cmd": "list"}\n')
        stuck.append(c)
    # Each stuck client stops the stream once its unread bytes pass the
    # low-water mark; wait until the daemon has given each its share.
    def unread():
        return env.ctl({"cmd": "stats"})["result"]["control"]
    stats = wait_until(lambda: (u := unread())["unread_bytes"] > 40 * LOW_WATER // 2 and u, 20)
    time.sleep(0.5)  # then check it stays bounded
    u = unread()
    reply = len(json.dumps(env.vmic_json("list")))
    tap.check("a full list is far larger than what a stuck client may hold",
              reply > 2 * MAX_UNREAD, reply)
    tap.check("40 clients that never read hold at most max-unread each",
              u["unread_bytes"] <= 40 * MAX_UNREAD, (u, stats))
    vms = env.vmic_json("list")["vms"]
    tap.check("meanwhile another client gets the whole list, in order",
              len(vms) == 3010 and [v["name"] for v in vms] == sorted(v["name"] for v in vms),
              len(vms))
    for c in stuck:
        c.close()
    tap.check("the stuck clients' memory is given back when they go",
              wait_until(lambda: unread()["unread_bytes"] < MAX_UNREAD, 10), unread())

    # A follower that does not read: dropped with a reason, not silently.
    f = socket.socket(socket.AF_UNIX)
    f.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    f.connect(env.sock)
    f.sendall(b'{"cmd": "events", "follow": true, "limit": 1}\n')
    time.sleep(0.2)
    cli = subprocess.Popen([VMIC, "--socket", env.sock, "events", "--follow", "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=CHILD_ENV)
    ctl = socket.socket(socket.AF_UNIX)
    ctl.connect(env.sock)
    toggles = 1500
    ctl.sendall(b"".join(json.dumps({"cmd": verb, "vm": "r1", "service": "shutdown"}).encode()
                         + b"\n" for _ in range(toggles // 2) for verb in ("disable", "enable")))
    got = b""
    while got.count(b"\n") < toggles:
        chunk = ctl.recv(1 << 20)
        if not chunk:
            break
        got += chunk
    ctl.close()
    lines, buf = [], b""
    f.settimeout(30)
    while True:
        chunk = f.recv(65536)
        if not chunk:
            break
        buf += chunk
    lines = [json.loads(x) for x in buf.split(b"\n") if x]
    last = lines[-1] if lines else {}
    tap.check("the slow follower's last line says it was dropped and why",
              last.get("dropped", {}).get("code") == "overrun"
              and "too slowly" in last["dropped"].get("message", ""), last)
    out, err = cli.communicate(timeout=60)
    tap.check("vmic events --follow reading too slowly says so and fails",
              cli.returncode != 0 and b"too slowly" in err, (cli.returncode, err[-500:]))
    tap.check("the daemon runs on", env.hostd_proc.alive() and env.vmic("list").returncode == 0)
finally:
    env.close()
tap.done()
