#!/usr/bin/env python3
"""vmic copy between real daemons on the unix transport: sizes around the
stream chunk (64 KiB) and the credit window (256 KiB), a large file (size
from VMIC_FC_LARGE_MB, default 1 GiB, 64 MiB under ASan), both
directions, non-ASCII and newline names, several sources into a
directory, standard input and output, modes and mtimes, sparse files,
--force,
--create-full-path, --json, and no temporary left after any of it."""
import json
import os
import subprocess

from vmictest import Tap, VMIC, CHILD_ENV
from fclib import setup, write_file, same, temporaries

tap = Tap()
env, guest = setup(tap)
D = env.dir
IN, OUT, HOST = f"{D}/in", f"{D}/out", f"{D}/host"


def asan():
    with open(f"/proc/{guest.pid}/maps", "rb") as f:
        return b"libasan" in f.read()


try:
    K = 1024
    sizes = [0, 1, 64 * K - 1, 64 * K, 64 * K + 1, 256 * K - 1, 256 * K, 256 * K + 1,
             512 * K + 1, 1024 * K + 3]
    ok_in = ok_out = True
    for i, n in enumerate(sizes):
        src = f"{HOST}/s{n}"
        write_file(src, n, seed=i)
        r = env.vmic("copy", "vm1", src, f"{IN}/f{n}")
        good = r.returncode == 0 and same(src, f"{IN}/f{n}")
        if not good:
            tap.note(f"into the guest, {n} bytes: {r.stderr}")
        ok_in &= good
        write_file(f"{OUT}/g{n}", n, seed=100 + i)
        r = env.vmic("copy", "vm1", "--from-guest", f"{OUT}/g{n}", f"{HOST}/g{n}")
        good = r.returncode == 0 and same(f"{OUT}/g{n}", f"{HOST}/g{n}")
        if not good:
            tap.note(f"out of the guest, {n} bytes: {r.stderr}")
        ok_out &= good
    tap.check("into the guest: 0, 1 B and sizes around 64 KiB and 256 KiB arrive whole",
              ok_in)
    tap.check("out of the guest: the same sizes arrive whole", ok_out)

    mb = int(os.environ.get("VMIC_FC_LARGE_MB", "64" if asan() else "1024"))
    big = f"{HOST}/big"
    write_file(big, mb << 20, seed=7)
    r = env.vmic("copy", "vm1", big, f"{IN}/big", "--json", timeout=600)
    tap.check(f"a {mb} MiB file into the guest", r.returncode == 0 and same(big, f"{IN}/big"),
              r.stderr)
    if r.returncode == 0:
        s = json.loads(r.stdout)
        tap.check("--json: files, bytes, seconds, MB/s and a hash per file",
                  s["files"] == 1 and s["bytes"] == mb << 20 and s["seconds"] > 0 and
                  s["mb_per_s"] > 0 and len(s["items"][0]["hash"]) == 32, s)
        tap.note(f"{mb} MiB into the guest: {s['mb_per_s']:.0f} MB/s")
    os.rename(f"{IN}/big", f"{OUT}/big")
    r = env.vmic("copy", "vm1", "--from-guest", f"{OUT}/big", f"{HOST}/big2", "--json",
                 timeout=600)
    tap.check(f"a {mb} MiB file out of the guest",
              r.returncode == 0 and same(big, f"{HOST}/big2"), r.stderr)
    if r.returncode == 0:
        tap.note(f"{mb} MiB out of the guest: {json.loads(r.stdout)['mb_per_s']:.0f} MB/s")
    for p in (big, f"{HOST}/big2", f"{OUT}/big"):
        os.unlink(p)

    # Sparse files stay sparse, both ways: 32 MiB with 2 blocks of data.
    sp = f"{HOST}/sparse"
    with open(sp, "wb") as f:
        f.truncate(32 << 20)
        f.seek(5 << 20)
        f.write(b"x" * 5000)
        f.seek((32 << 20) - 3)
        f.write(b"end")
    r = env.vmic("copy", "vm1", sp, f"{IN}/sparse")
    st = os.stat(f"{IN}/sparse")
    tap.check("a sparse file stays sparse in the guest",
              r.returncode == 0 and same(sp, f"{IN}/sparse") and
              st.st_blocks * 512 < (1 << 20), (r.stderr, st.st_blocks))
    os.rename(f"{IN}/sparse", f"{OUT}/sparse")
    r = env.vmic("copy", "vm1", "--from-guest", f"{OUT}/sparse", f"{HOST}/sparse2")
    st = os.stat(f"{HOST}/sparse2")
    tap.check("and on the host",
              r.returncode == 0 and same(sp, f"{HOST}/sparse2") and
              st.st_blocks * 512 < (1 << 20), (r.stderr, st.st_blocks))

    # Names: non-ASCII and a newline, both ways.
    odd = "r\u00e9sum\u00e9 \u65e5\u672c\nline two"
    write_file(f"{HOST}/{odd}", 1000, seed=3)
    r = env.vmic("copy", "vm1", f"{HOST}/{odd}", f"{IN}/")
    tap.check("a non-ASCII name with a newline goes into a directory by its name",
              r.returncode == 0 and same(f"{HOST}/{odd}", f"{IN}/{odd}"), r.stderr)
    write_file(f"{OUT}/{odd}", 999, seed=4)
    r = env.vmic("copy", "vm1", "--from-guest", f"{OUT}/{odd}", f"{HOST}/back")
    tap.check("and comes back out of the guest",
              r.returncode == 0 and same(f"{OUT}/{odd}", f"{HOST}/back"), r.stderr)

    # Several sources into a directory, as cp does.
    os.makedirs(f"{IN}/many")
    for i in range(3):
        write_file(f"{HOST}/m{i}", 5000 + i, seed=i)
    r = env.vmic("copy", "vm1", f"{HOST}/m0", f"{HOST}/m1", f"{HOST}/m2", f"{IN}/many", "--json")
    tap.check("several sources go into the directory",
              r.returncode == 0 and all(same(f"{HOST}/m{i}", f"{IN}/many/m{i}") for i in range(3)),
              r.stderr)
    if r.returncode == 0:
        tap.check("--json counts every file", json.loads(r.stdout)["files"] == 3, r.stdout)
    for i in range(2):
        write_file(f"{OUT}/o{i}", 7000 + i, seed=i)
    os.makedirs(f"{HOST}/dir")
    r = env.vmic("copy", "vm1", "--from-guest", f"{OUT}/o0", f"{OUT}/o1", f"{HOST}/dir")
    tap.check("several guest files go into a host directory",
              r.returncode == 0 and all(same(f"{OUT}/o{i}", f"{HOST}/dir/o{i}") for i in range(2)),
              r.stderr)
    r = env.vmic("copy", "vm1", f"{HOST}/m0", f"{HOST}/m1", f"{IN}/nodir")
    tap.check("several sources into a missing directory: an error",
              r.returncode != 0 and "not a directory" in r.stderr, r.stderr)

    # Standard input and output.
    data = os.urandom(300000)
    p = subprocess.run([VMIC, "--socket", env.sock, "copy", "vm1", "-", f"{IN}/stdin"],
                       input=data, capture_output=True, env=CHILD_ENV, timeout=60)
    with open(f"{IN}/stdin", "rb") as f:
        tap.check("'-' copies standard input into the guest",
                  p.returncode == 0 and f.read() == data, p.stderr)
    with open(f"{OUT}/stdout", "wb") as f:
        f.write(data)
    p = subprocess.run([VMIC, "--socket", env.sock, "copy", "vm1", "--from-guest",
                        f"{OUT}/stdout", "-"], capture_output=True, env=CHILD_ENV, timeout=60)
    tap.check("'-' copies a guest file to standard output",
              p.returncode == 0 and p.stdout == data, p.stderr)
    tap.check("nothing on standard error of a pipe (no progress bar)", p.stderr == b"",
              p.stderr)

    # Mode and mtime travel; --force replaces; without it, no.
    write_file(f"{HOST}/mode", 10, seed=9)
    os.chmod(f"{HOST}/mode", 0o751)
    os.utime(f"{HOST}/mode", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    env.vmic("copy", "vm1", f"{HOST}/mode", f"{IN}/mode", check=True)
    st = os.stat(f"{IN}/mode")
    tap.check("the mode and the mtime (ns) arrive",
              st.st_mode & 0o7777 == 0o751 and st.st_mtime_ns == 1_600_000_000_123_456_789,
              (oct(st.st_mode), st.st_mtime_ns))
    os.rename(f"{IN}/mode", f"{OUT}/mode")
    env.vmic("copy", "vm1", "--from-guest", f"{OUT}/mode", f"{HOST}/mode2", check=True)
    st = os.stat(f"{HOST}/mode2")
    tap.check("and come back (the mode under the umask)",
              st.st_mode & 0o700 == 0o700 and st.st_mtime_ns == 1_600_000_000_123_456_789,
              (oct(st.st_mode), st.st_mtime_ns))
    write_file(f"{HOST}/new", 77, seed=11)
    r = env.vmic("copy", "vm1", f"{HOST}/new", f"{IN}/f1")
    tap.check("an existing guest file: refused, --force named",
              r.returncode != 0 and "exists" in r.stderr and "--force" in r.stderr, r.stderr)
    r = env.vmic("copy", "vm1", "--force", f"{HOST}/new", f"{IN}/f1")
    tap.check("--force replaces it", r.returncode == 0 and same(f"{HOST}/new", f"{IN}/f1"),
              r.stderr)
    r = env.vmic("copy", "vm1", "--from-guest", f"{OUT}/g1", f"{HOST}/new")
    tap.check("an existing host file: refused, --force named",
              r.returncode != 0 and "exists" in r.stderr and "--force" in r.stderr, r.stderr)
    r = env.vmic("copy", "vm1", "--from-guest", "--force", f"{OUT}/g1", f"{HOST}/new")
    tap.check("--force replaces it (no temporary left)",
              r.returncode == 0 and same(f"{OUT}/g1", f"{HOST}/new") and
              temporaries(HOST) == [], (r.stderr, temporaries(HOST)))

    # Parents.
    r = env.vmic("copy", "vm1", f"{HOST}/new", f"{IN}/a/b/c")
    tap.check("no parent directory in the guest: an error naming --create-full-path",
              r.returncode != 0 and "--create-full-path" in r.stderr, r.stderr)
    r = env.vmic("copy", "vm1", "--create-full-path", f"{HOST}/new", f"{IN}/a/b/c")
    tap.check("--create-full-path makes them",
              r.returncode == 0 and same(f"{HOST}/new", f"{IN}/a/b/c"), r.stderr)
    r = env.vmic("copy", "vm1", "--from-guest", f"{OUT}/g1", f"{HOST}/x/y/z")
    tap.check("no parent directory on the host: an error naming --create-full-path",
              r.returncode != 0 and "--create-full-path" in r.stderr, r.stderr)
    r = env.vmic("copy", "vm1", "--from-guest", "--create-full-path", f"{OUT}/g1",
                 f"{HOST}/x/y/z")
    tap.check("--create-full-path makes them on the host",
              r.returncode == 0 and same(f"{OUT}/g1", f"{HOST}/x/y/z"), r.stderr)

    tap.check("no temporary left anywhere", temporaries(IN, OUT, HOST) == [],
              temporaries(IN, OUT, HOST))
finally:
    env.close()
tap.done()
