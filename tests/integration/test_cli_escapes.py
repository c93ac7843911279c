#!/usr/bin/env python3
"""What a guest writes cannot act on the admin's terminal: a KVP value set
in the guest's pool (and one given with `vmic kvp set`) holding OSC 0
(window title), OSC 52 (clipboard), CSI, a C1 CSI (U+009B), bidi
overrides and isolates and newlines prints as escapes through `vmic kvp
get`, `kvp list` and `kvp watch`; `kvp get --raw` prints the exact bytes
and `--json` the exact value. An agent whose name carries a bidi override
and ESC shows them escaped in `list`, `status` and `events` (docs/control.md,
"Text output")."""
import json
import os
import random
import subprocess
import threading
import time

from vmictest import (CTL_HELLO, GUESTD, ROLE_GUEST, SVC_CONTROL, VMIC, Env, FakeGuest, Tap,
                      frame, hello_payload, wait_until)

# Every kind of sequence the issue names, in one value.
HOSTILE = ("\x1b]0;pwned\x07|\x1b]52;c;cm0gLXJmIH4K\x07|\u009b31mred|"
           "file\u202etxt.exe|\u2066iso\u2069|\x1b[2J|a\nb\tc\\d")
# How vmic shows it (vmic(1), "Text output"): the same text, escaped.
SHOWN = (r"\x1b]0;pwned\x07|\x1b]52;c;cm0gLXJmIH4K\x07|\u009b31mred|"
         r"file\u202etxt.exe|\u2066iso\u2069|\x1b[2J|a\nb\tc\\d")
# Bytes that must never reach a terminal from a guest.
FORBIDDEN = (b"\x1b", b"\x07", b"\xc2\x9b", b"\xe2\x80\xae", b"\xe2\x81\xa6", b"\xe2\x81\xa9")

tap = Tap()
env = Env(tap)
fake = None
watch = None


def vmic_bytes(*args):
    """vmic's stdout as bytes (the harness decodes text)."""
    return subprocess.run([VMIC, "--socket", env.sock, *args], capture_output=True,
                          timeout=60)


def clean(out):
    """The forbidden sequences found in out (empty when none)."""
    return [f for f in FORBIDDEN if f in out]


def guest_value(key):
    try:
        return env.vmic_json("kvp", "get", "g1", key, "--pool", "guest")["value"]
    except RuntimeError:
        return None


try:
    pools = os.path.join(env.dir, "g1-pools")
    env.start_hostd()
    env.start_guest("g1", "--kvp-dir", pools)
    env.add("g1")
    tap.check("g1: heartbeat OK", env.wait_heartbeat("g1", "OK", 10) is not None)

    # 1. A value written in the guest's pool 1 by software in the guest.
    r = subprocess.run([GUESTD, "--kvp-dir", pools, "kvp", "set", "motd", HOSTILE],
                       capture_output=True, text=True, timeout=30)
    tap.check("the guest writes the value", r.returncode == 0, r.stderr)
    tap.check("... and the host has it exactly",
              wait_until(lambda: guest_value("motd") == HOSTILE, 10), guest_value("motd"))

    r = vmic_bytes("kvp", "get", "g1", "motd")
    tap.check("kvp get: no escape sequence, C1 or bidi control reaches the terminal",
              r.returncode == 0 and not clean(r.stdout), (clean(r.stdout), r.stdout))
    tap.check("kvp get: shows each of them as an escape, on one line",
              r.stdout == SHOWN.encode() + b"\n", r.stdout)
    r = vmic_bytes("kvp", "get", "g1", "motd", "--raw")
    tap.check("kvp get --raw: the exact bytes", r.stdout == HOSTILE.encode() + b"\n", r.stdout)
    r = vmic_bytes("kvp", "get", "g1", "motd", "--json")
    tap.check("kvp get --json: the exact value, every control and bidi character "
              "as a JSON escape",
              r.returncode == 0 and not clean(r.stdout)
              and json.loads(r.stdout)["value"] == HOSTILE, r.stdout)

    r = vmic_bytes("kvp", "list", "g1")
    line = [ln for ln in r.stdout.split(b"\n") if b"motd" in ln]
    tap.check("kvp list: nothing raw reaches the terminal",
              r.returncode == 0 and not clean(r.stdout), (clean(r.stdout), r.stdout[-500:]))
    tap.check("kvp list: the record is one row, shown escaped",
              len(line) == 1 and line[0].startswith(b"guest") and line[0].rstrip().endswith(
                  SHOWN.encode()), line)
    r = vmic_bytes("kvp", "list", "g1", "--json")
    recs = json.loads(r.stdout)["records"] if r.returncode == 0 else []
    tap.check("kvp list --json: exact, and safe on a terminal too",
              not clean(r.stdout) and {"pool": "guest", "key": "motd", "value": HOSTILE} in recs,
              r.stdout[-500:])
    r = vmic_bytes("kvp", "list", "g1", "--raw")
    tap.check("kvp list --raw is a usage error that points at --json",
              r.returncode == 2 and b"--json" in r.stderr, r.stderr)

    # 2. The same through `vmic kvp set` (External pool), and `kvp watch`.
    watch = subprocess.Popen([VMIC, "--socket", env.sock, "kvp", "watch", "g1"],
                             stdout=subprocess.PIPE)
    first = watch.stdout.readline()
    tap.check("kvp watch started", b"watching g1" in first, first)
    env.vmic("kvp", "set", "g1", "banner\u202e", HOSTILE, check=True)
    got = []

    def read_watch():
        for ln in watch.stdout:
            got.append(ln)
            if b"banner" in ln:
                return

    reader = threading.Thread(target=read_watch, daemon=True)
    reader.start()
    reader.join(10)
    seen = b"".join(got)
    tap.check("kvp watch: the change is one clean line, shown escaped",
              any(ln.rstrip().endswith(b"banner\\u202e = " + SHOWN.encode()) for ln in got)
              and not clean(seen), seen)
    r = vmic_bytes("kvp", "get", "g1", "banner\u202e", "--pool", "external")
    tap.check("kvp get of the External value: clean too",
              r.stdout == SHOWN.encode() + b"\n", r.stdout)
    r = vmic_bytes("kvp", "get", "g1", "banner\u202e", "--raw")
    tap.check("kvp get --raw of it: exact", r.stdout == HOSTILE.encode() + b"\n", r.stdout)

    # 3. An agent whose name carries a bidi override and ESC (the daemon
    # replaces control characters with '?', not bidi controls).
    fake = FakeGuest(env.guest_socket("bad"))
    env.add("bad")
    tap.check("the fake guest got the host's hello", fake.ready.wait(10))
    software = "agent \u202e1.0 \x1b]0;t\x07".encode()
    fake.send(frame(SVC_CONTROL, CTL_HELLO,
                    hello_payload(ROLE_GUEST, random.getrandbits(63) | 1, fake.host_nonce,
                                  True, software)))
    tap.check("bad: session up",
              wait_until(lambda: env.status("bad")["connection"] == "connected", 10),
              env.status("bad"))
    tap.check("the daemon keeps the bidi override in the agent's name (the CLI must clean it)",
              "\u202e" in env.status("bad")["agent"], env.status("bad")["agent"])
    for args in (("list",), ("status", "bad"), ("events", "--vm", "bad")):
        r = vmic_bytes(*args)
        tap.check(f"vmic {' '.join(args)}: the agent's name is shown escaped",
                  r.returncode == 0 and not clean(r.stdout)
                  and b"agent \\u202e1.0 ?]0;t?" in r.stdout, r.stdout[-600:])
    tap.check("vmic-hostd still running", env.hostd_proc.alive())
finally:
    if watch:
        watch.kill()
        watch.wait()
    if fake:
        fake.close()
    env.close()
tap.done()
