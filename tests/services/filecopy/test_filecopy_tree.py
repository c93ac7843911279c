#!/usr/bin/env python3
"""vmic copy -r into the guest with real daemons: directories, files,
symbolic links kept as links (relative, absolute, dangling), modes and
mtimes of files and directories, an empty directory, a FIFO skipped with a
warning, a sparse file, odd names; into an existing directory as cp -r
does; owners with --preserve; the same out of the guest with -r
--from-guest; a tree of 10,000 small files; and --preserve out of the
guest (owners given as root, a warning otherwise)."""
import os
import pwd
import stat
import time

from vmictest import Tap
from fclib import setup, write_file, same, temporaries

tap = Tap()
# nogroup may use the control socket: a user other than root copies too.
env, guest = setup(tap, hostd_conf="[daemon]\nsocket-group = nogroup\n")
D = env.dir
IN, OUT, HOST = f"{D}/in", f"{D}/out", f"{D}/host"
NOBODY = pwd.getpwnam("nobody").pw_uid  # with gid NOBODY: nogroup here


def snapshot(root):
    """Every entry below root: kind, mode, mtime (not of links) and what
    it holds (content, link target)."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", oct(st.st_mode & 0o7777), st.st_mtime_ns)
            elif stat.S_ISFIFO(st.st_mode):
                out[rel] = ("fifo",)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", oct(st.st_mode & 0o7777), st.st_mtime_ns, f.read())
    return out


try:
    t = f"{HOST}/tree"
    os.makedirs(f"{t}/a/b/c")
    os.makedirs(f"{t}/empty")
    write_file(f"{t}/a/one", 70000, seed=1)
    write_file(f"{t}/a/b/two", 1, seed=2)
    write_file(f"{t}/a/b/c/three", 0)
    write_file(f"{t}/na\u00efve\nname", 300, seed=3)
    os.chmod(f"{t}/a/one", 0o600)
    os.symlink("a/one", f"{t}/rel-link")
    os.symlink("/etc/hostname", f"{t}/abs-link")
    os.symlink("nowhere", f"{t}/dangling")
    os.mkfifo(f"{t}/fifo")
    with open(f"{t}/sparse", "wb") as f:
        f.truncate(8 << 20)
        f.write(b"head")
    os.chmod(f"{t}/a/b", 0o750)
    for p in (f"{t}/a/b/c", f"{t}/a/b", f"{t}/a", f"{t}/empty"):
        os.utime(p, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    r = env.vmic("copy", "vm1", "-r", t, f"{IN}/t1")
    want = snapshot(t)
    del want["fifo"]
    got = snapshot(f"{IN}/t1")
    tap.check("-r makes the tree: files, modes, mtimes, links as links, empty directory",
              r.returncode == 0 and got == want,
              (r.stderr, sorted(set(want) ^ set(got)),
               [k for k in want if k in got and want[k] != got[k]][:5]))
    tap.check("the FIFO is skipped with a warning", "warning" in r.stderr and
              "fifo" in r.stderr and not os.path.lexists(f"{IN}/t1/fifo"), r.stderr)
    tap.check("the sparse file stays sparse",
              os.stat(f"{IN}/t1/sparse").st_blocks * 512 < (1 << 20))
    r = env.vmic("copy", "vm1", "-r", t, f"{IN}/t1")
    tap.check("into an existing directory: the tree goes inside it, as cp -r",
              r.returncode == 0 and snapshot(f"{IN}/t1/tree") == want, r.stderr)
    r = env.vmic("copy", "vm1", "-r", t, f"{IN}/t1")
    tap.check("a second time: the tree there exists, --force named",
              r.returncode != 0 and "--force" in r.stderr, r.stderr)
    r = env.vmic("copy", "vm1", "-r", "--force", t, f"{IN}/t1")
    tap.check("--force merges into it", r.returncode == 0, r.stderr)
    # Out of the guest: the same tree, placed in read-dirs.
    os.rename(f"{IN}/t1/tree", f"{OUT}/gt")
    os.mkfifo(f"{OUT}/gt/fifo2")
    want = snapshot(f"{OUT}/gt")
    del want["fifo2"]
    r = env.vmic("copy", "vm1", "-r", "--from-guest", f"{OUT}/gt", f"{HOST}/back")
    got = snapshot(f"{HOST}/back")
    tap.check("-r out of the guest: files, modes, mtimes, links as links",
              r.returncode == 0 and got == want,
              (r.stderr, sorted(set(want) ^ set(got)),
               [k for k in want if k in got and want[k] != got[k]][:5]))
    tap.check("... the FIFO skipped with a warning",
              "warning" in r.stderr and not os.path.lexists(f"{HOST}/back/fifo2"), r.stderr)
    tap.check("... the sparse file stays sparse",
              os.stat(f"{HOST}/back/sparse").st_blocks * 512 < (1 << 20))
    r = env.vmic("copy", "vm1", "-r", "--from-guest", f"{OUT}/gt", f"{HOST}/back")
    tap.check("-r out into an existing directory: inside it, as cp -r",
              r.returncode == 0 and snapshot(f"{HOST}/back/gt") == want, r.stderr)
    os.symlink("/etc", f"{OUT}/gt/etc-link")
    r = env.vmic("copy", "vm1", "-r", "--from-guest", f"{OUT}/gt", f"{HOST}/back2")
    tap.check("a link to outside comes as a link; nothing is written through it",
              r.returncode == 0 and os.readlink(f"{HOST}/back2/etc-link") == "/etc", r.stderr)

    # --preserve: owners travel (the agent here runs as root, as in a VM).
    if os.geteuid() == 0:
        for dirpath, dirs, files in os.walk(t):
            for name in dirs + files:
                os.lchown(os.path.join(dirpath, name), 1234, 5678)
        os.lchown(t, 4321, 8765)
        r = env.vmic("copy", "vm1", "-r", "--preserve", t, f"{IN}/owned")
        owners = {os.path.relpath(os.path.join(dp, n), f"{IN}/owned"):
                  (os.lstat(os.path.join(dp, n)).st_uid, os.lstat(os.path.join(dp, n)).st_gid)
                  for dp, ds, fs in os.walk(f"{IN}/owned") for n in ds + fs}
        st = os.stat(f"{IN}/owned")
        tap.check("--preserve gives files, directories and links their owners",
                  r.returncode == 0 and set(owners.values()) == {(1234, 5678)} and
                  (st.st_uid, st.st_gid) == (4321, 8765), (r.stderr, owners))
        r = env.vmic("copy", "vm1", "-r", f"{t}/a", f"{IN}/unowned")
        tap.check("without --preserve, the agent's own user owns them",
                  r.returncode == 0 and os.stat(f"{IN}/unowned/one").st_uid == os.geteuid(),
                  r.stderr)
    else:
        tap.check("--preserve needs a root agent: skipped (not root)", True)
        tap.check("(skipped)", True)
    # --preserve out of the guest: as root, vmic gives the copies the
    # guest's owners (files, directories, links); as another user it
    # warns and keeps them its own, as cp -p does.
    if os.geteuid() == 0:
        for dirpath, dirs, files in os.walk(f"{OUT}/gt"):
            for name in dirs + files:
                os.lchown(os.path.join(dirpath, name), 1234, 5678)
        os.lchown(f"{OUT}/gt", 4321, 8765)
        r = env.vmic("copy", "vm1", "-r", "--preserve", "--from-guest", f"{OUT}/gt",
                     f"{HOST}/powned")
        owners = {os.path.relpath(os.path.join(dp, n), f"{HOST}/powned"):
                  (os.lstat(os.path.join(dp, n)).st_uid, os.lstat(os.path.join(dp, n)).st_gid)
                  for dp, ds, fs in os.walk(f"{HOST}/powned") for n in ds + fs}
        st = os.stat(f"{HOST}/powned")
        tap.check("--preserve out of the guest gives files, directories and links their owners",
                  r.returncode == 0 and len(owners) > 5 and
                  set(owners.values()) == {(1234, 5678)} and
                  (st.st_uid, st.st_gid) == (4321, 8765), (r.stderr, owners))
        r = env.vmic("copy", "vm1", "--preserve", "--from-guest", f"{OUT}/gt/a/one",
                     f"{HOST}/pone")
        st = os.stat(f"{HOST}/pone")
        tap.check("--preserve out of the guest, one file: its owner",
                  r.returncode == 0 and (st.st_uid, st.st_gid) == (1234, 5678), r.stderr)
        r = env.vmic("copy", "vm1", "--from-guest", f"{OUT}/gt/a/one", f"{HOST}/upone")
        tap.check("... without --preserve: mine",
                  r.returncode == 0 and os.stat(f"{HOST}/upone").st_uid == 0, r.stderr)
        os.chmod(D, 0o755)
        os.makedirs(f"{HOST}/nobody")
        os.chmod(f"{HOST}/nobody", 0o777)
        r = env.vmic("copy", "vm1", "--preserve", "--from-guest", f"{OUT}/gt/a/one",
                     f"{HOST}/nobody/one", user=str(NOBODY))
        ok = r.returncode == 0 and os.path.exists(f"{HOST}/nobody/one")
        tap.check("--preserve out of the guest as another user: a warning, the copy its own",
                  ok and "only when run as root" in r.stderr and
                  os.stat(f"{HOST}/nobody/one").st_uid != 1234, (r.returncode, r.stderr))
    else:
        for _ in range(4):
            tap.check("--preserve out of the guest needs root here: skipped (not root)", True)

    big = f"{HOST}/big"
    for i in range(100):
        os.makedirs(f"{big}/d{i:02d}")
        for j in range(100):
            with open(f"{big}/d{i:02d}/f{j:02d}", "wb") as f:
                f.write(b"%d-%d" % (i, j))
    t0 = time.monotonic()
    r = env.vmic("copy", "vm1", "-r", "--json", big, f"{IN}/big", timeout=600)
    took = time.monotonic() - t0
    n = sum(len(files) for _, _, files in os.walk(f"{IN}/big"))
    tap.check("a tree of 10,000 small files arrives whole",
              r.returncode == 0 and n == 10000 and
              open(f"{IN}/big/d42/f17", "rb").read() == b"42-17", (r.stderr[-500:], n))
    tap.note(f"10,000 files in {took:.1f} s")
    tap.check("no temporary left", temporaries(IN, HOST) == [], temporaries(IN, HOST))
finally:
    env.close()
tap.done()
