#!/usr/bin/env python3
"""Replies larger than any one line a client should hold come in pages
(docs/control.md, "Paged replies").

A guest's pool that the limits root set allow, but whose `kvp-list` reply
is past 64 MiB of JSON (values of control characters, each six bytes of
JSON), lists completely with `vmic kvp list` and `vmic kvp list --json`,
and the CLI's peak memory (ru_maxrss, from wait4) stays far below the
reply: it prints page by page. The raw protocol: a paged request gets a
head line, page lines and an end line whose count matches; an unpaged one
still gets one line. `vmic events --json` and `vmic list --json` print
one JSON document built from the pages.
"""
import json
import os
import socket
import subprocess
import sys

from kvplib import write_pool_file
from vmictest import CHILD_ENV, VMIC, Env, Tap, wait_until

N = 6500
VALUE = 2047          # bytes, the longest value a record may have
REPLY_FLOOR = 64 << 20  # the old CLI's longest line
# What the CLI may use at its peak (kB), sanitizer runtimes included: the
# reply is 80 MB, and the old CLI held it whole (and its parse tree).
CLI_RSS_KB = 48 * 1024

tap = Tap()
env = Env(tap)
# A sanitized CLI keeps freed memory in quarantine (256 MB by default),
# which would hide what the program itself holds.
child_env = dict(CHILD_ENV)
if "ASAN_OPTIONS" in child_env:
    child_env["ASAN_OPTIONS"] += ":quarantine_size_mb=4:malloc_context_size=5"


def value_of(i):
    # Control characters are valid in a value; JSON spells each \u00XX.
    head = f"{i:05d}:"
    return head + "".join(chr(1 + (j % 7)) for j in range(VALUE - len(head)))


# The CLI's peak memory: a process's ru_maxrss also counts the memory of
# the process it was exec'd from (this test's, which holds the records),
# so a small process of its own forks the CLI and reports the peak.
PEAK = r"""
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_cli(*args):
    """vmic ARGS with stdout to a file; (exit status, stdout, stderr, peak kB)."""
    out_path = os.path.join(env.dir, "cli.out")
    peak_path = os.path.join(env.dir, "cli.peak")
    with open(out_path, "wb") as out:
        p = subprocess.run([sys.executable, "-c", PEAK, peak_path, VMIC, "--socket", env.sock,
                            *args], stdout=out, stderr=subprocess.PIPE, env=child_env,
                           timeout=120)
    with open(out_path, "rb") as f:
        data = f.read()
    with open(peak_path) as f:
        peak = int(f.read())
    os.unlink(out_path)
    return p.returncode, data, p.stderr.decode(errors="replace"), peak


def raw_lines(request, limit=None):
    """Send one request on a fresh connection; every line until the reply
    ends (the end line, an error or a single-line reply)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(env.sock)
    s.sendall(json.dumps(request).encode() + b"\n")
    f = s.makefile("rb")
    lines = []
    while True:
        raw = f.readline()
        if not raw:
            break
        line = json.loads(raw)
        lines.append(line)
        if "pages" not in lines[0] or "end" in line or line.get("ok") is False:
            break
        if limit and len(lines) >= limit:
            break
    s.close()
    return lines


try:
    pools = os.path.join(env.dir, "pools")
    want = {f"k{i:05d}": value_of(i) for i in range(N)}
    write_pool_file(pools, 1, sorted(want.items()))
    env.start_hostd(conf="[connection]\nretry-min = 100ms\nretry-max = 1s\n"
                         "[kvp]\nguest-max-keys = 10000\nguest-max-bytes = 32M\n")
    env.start_guest("g1", "--kvp-dir", pools, "--log-level", "info")
    env.add("g1")
    tap.check("the guest's pool reaches the host",
              wait_until(lambda: env.service("g1", "kvp")["guest_keys"] == N, 60, 0.2),
              env.service("g1", "kvp"))

    # The raw protocol first.
    lines = raw_lines({"id": 5, "cmd": "kvp-list", "vm": "g1", "pool": "guest",
                       "paged": True})
    head, pages, end = lines[0], lines[1:-1], lines[-1]
    got = [r for p in pages for r in p.get("page", [])]
    tap.check("a paged reply starts with the result without its array, naming it",
              head.get("ok") is True and head.get("pages") == "records"
              and head.get("id") == 5 and "records" not in head.get("result", {})
              and head["result"].get("vm") == "g1", head)
    tap.check("then pages of items, each with the request's id",
              len(pages) > 1 and all(p.get("id") == 5 and isinstance(p.get("page"), list)
                                     for p in pages), len(pages))
    tap.check("and an end line whose count is the number of items",
              end == {"id": 5, "end": True, "count": N}, end)
    tap.check("the items are the pool's records, in key order",
              [r["key"] for r in got] == sorted(want)
              and all(r["value"] == want[r["key"]] for r in got), len(got))
    size = sum(len(json.dumps(r, separators=(",", ":"))) for r in got)
    tap.check(f"the reply is larger than 64 MiB ({size >> 20} MiB)", size > REPLY_FLOOR, size)
    single = raw_lines({"cmd": "kvp-list", "vm": "g1", "pool": "auto-external"})
    tap.check("without \"paged\" the reply is still one line",
              len(single) == 1 and single[0].get("ok") is True
              and "pages" not in single[0]
              and isinstance(single[0]["result"].get("records"), list), single)
    tap.check("\"paged\" must be a boolean",
              raw_lines({"cmd": "list", "paged": 1})[0].get("error", {}).get("code")
              == "bad-request")
    small = raw_lines({"id": "v", "cmd": "version", "paged": True})
    tap.check("a command without a large array answers in one line, paged or not",
              len(small) == 1 and small[0].get("ok") is True and "pages" not in small[0],
              small)

    # The CLI, as a table.
    rc, out, err, peak = run_cli("kvp", "list", "g1")
    rows = out.decode(errors="replace").splitlines()
    keys = [r.split()[1] for r in rows[1:] if r.startswith("guest ")]
    tap.check("vmic kvp list prints every record", rc == 0 and keys == sorted(want),
              (rc, err[-300:], len(keys)))
    tap.check("its header comes once, first", rows and rows[0].split()[:3] == ["POOL", "KEY", "VALUE"]
              and sum(1 for r in rows if r.startswith("POOL")) == 1, rows[:2])
    tap.check(f"vmic kvp list peaked at {peak // 1024} MiB, far below the reply",
              peak < CLI_RSS_KB, peak)

    # The CLI, as one JSON document.
    rc, out, err, peak = run_cli("kvp", "list", "g1", "--json")
    try:
        doc = json.loads(out)
    except ValueError as e:
        doc = {"error": str(e)}
    recs = {r["key"]: r["value"] for r in doc.get("records", []) if r["pool"] == "guest"}
    tap.check("vmic kvp list --json prints one document with every record",
              rc == 0 and recs == want and doc.get("vm") == "g1"
              and doc.get("stale") is False, (rc, err[-300:], len(recs)))
    tap.check(f"vmic kvp list --json peaked at {peak // 1024} MiB", peak < CLI_RSS_KB, peak)
    tap.check("--json is the daemon's result, indented as before",
              out.startswith(b'{\n  "vm": "g1",\n') and out.endswith(b"\n  ]\n}\n"),
              (out[:80], out[-40:]))

    # A reply that fits one page prints as it always did.
    rc, out, err, _ = run_cli("kvp", "list", "g1", "--pool", "auto-external", "--json")
    small = env.ctl({"cmd": "kvp-list", "vm": "g1", "pool": "auto-external"})
    tap.check("a one-page reply with --json is the result as one line would give it",
              rc == 0 and json.loads(out) == small["result"], (out[:200], small))
    env.vmic("remove", "g1", check=True)
    rc, out, err, _ = run_cli("list", "--json")
    tap.check("an empty array prints as []", rc == 0 and json.loads(out) == {"vms": []}
              and b'"vms": []' in out, out)
    rc, out, err, _ = run_cli("events", "--json", "--limit", "100000")
    try:
        evs = json.loads(out)["events"]
    except (ValueError, KeyError):
        evs = []
    tap.check("vmic events --json prints the events as one document",
              rc == 0 and evs and evs[-1]["kind"] == "vm-removed"
              and [e["id"] for e in evs] == sorted(e["id"] for e in evs), (rc, err, out[:200]))
    # --follow: the past events come in pages, then the stream.
    fol = subprocess.Popen([VMIC, "--socket", env.sock, "events", "--follow", "--json",
                            "--limit", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=child_env)
    try:
        past = [json.loads(fol.stdout.readline()) for _ in range(3)]
        env.add("g2", f"unix:{env.dir}/absent-g2.sock")
        new = json.loads(fol.stdout.readline())
    finally:
        fol.kill()
        fol.wait()
    tap.check("vmic events --follow prints the last events of the paged reply, then new ones",
              [e["id"] for e in past] == [e["id"] for e in evs[-3:]]
              and new.get("kind") == "vm-added" and new.get("vm") == "g2", (past, new))
    tap.check("vmic-hostd still running", env.hostd_proc.alive())
finally:
    env.close()
tap.done()
