#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Boot the vmic test guest under QEMU and drive it (standard library only).

The pieces, each usable alone (run-vm-tests and the demo use them all):

  ensure_kernel()    Debian's cloud kernel (vmlinuz + the virtio/vsock modules)
                     in a cache directory, fetched with apt-get download and
                     dpkg -x when missing; nothing is installed on the host.
  build_initramfs()  a busybox initramfs (newc cpio written here, so no root
                     and no mknod are needed) with vmic-guestd, the modules,
                     tests/vm/guest/* and any extra files a scenario wants.
  make_disk()        a small ext4 image file for /mnt/disk in the guest.
  VM                 one QEMU process: virtio-serial ports for the agent
                     (org.vmic.0) and for test control (org.vmic.test.0),
                     the disk, a QMP socket; start(), run() a shell script in
                     the guest, wait for reboot or exit, stop() by PID.
  HostDaemon         vmic-hostd with its state and control socket in the run
                     directory, and vmic() to call the real CLI.

Run directories come from tempfile.mkdtemp; sockets are unix sockets only;
processes are ended by PID. Command line: `vmlib.py fetch-kernel`,
`vmlib.py boot` (an interactive-less boot to check the image by hand).
"""

import base64
import fcntl
import json
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
GUEST_FILES = HERE / "guest"

KERNEL_METAPACKAGE = "linux-image-cloud-amd64"
# What the guest needs; their dependencies are read from the modules
# themselves (.modinfo "depends=") and loaded first.
KERNEL_MODULES = (
    "virtio_pci",        # the PCI transport of every virtio device below
    "virtio_console",    # virtio-serial ports
    "virtio_blk",        # the ext4 data disk
    "virtio_rng",        # entropy early in boot
    "vmw_vsock_virtio_transport",  # AF_VSOCK (no vhost-vsock on these hosts)
    "vsock_loopback",    # AF_VSOCK inside the guest (CID 1): vsock-listen
)

AGENT_PORT = "org.vmic.0"
CONTROL_PORT = "org.vmic.test.0"


class VMError(Exception):
    """A failure, with a message that says what went wrong and what to do."""


class Skip(Exception):
    """This machine cannot run the VM tests at all (the reason)."""


def report_skip(reason, skip_status):
    """The machine cannot run the VM suite: a skip only where the caller
    allowed one (VMIC_ALLOW_VM_SKIP=1), otherwise a failure, so that a CI
    run that lost QEMU, busybox or the guest kernel cannot pass unnoticed.
    Prints the TAP line and returns the exit status."""
    if os.environ.get("VMIC_ALLOW_VM_SKIP") == "1":
        print(f"1..0 # SKIP {reason}", flush=True)
        return skip_status
    print(f"Bail out! the VM suite cannot run on this machine: {reason}. "
          "Install what is missing (scripts/deps.sh), or set "
          "VMIC_ALLOW_VM_SKIP=1 to let the run pass without the VM suite",
          flush=True)
    return 1


def log(msg):
    """Progress for humans; a TAP comment, so the meson TAP parser skips it."""
    for line in str(msg).splitlines() or [""]:
        print(f"# {line}", flush=True)


def env_path(var, default):
    v = os.environ.get(var)
    return Path(v) if v else Path(default)


def cache_dir():
    return env_path("VMIC_VM_CACHE", REPO / ".cache" / "vm")


def tail(path_or_text, lines=60):
    if isinstance(path_or_text, Path):
        try:
            text = path_or_text.read_text(errors="replace")
        except OSError as e:
            return f"({path_or_text}: {e.strerror})"
    else:
        text = path_or_text
    return "\n".join(text.splitlines()[-lines:])


def _run(cmd, what, cwd=None, timeout=600):
    try:
        p = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise VMError(f"{what}: {cmd[0]} is not installed")
    except subprocess.TimeoutExpired:
        raise VMError(f"{what}: `{shlex.join(cmd)}` took over {timeout} s")
    if p.returncode != 0:
        raise VMError(f"{what}: `{shlex.join(cmd)}` exited with "
                      f"{p.returncode}:\n{tail(p.stderr + p.stdout, 20)}")
    return p.stdout


# --------------------------------------------------------------------------
# ELF: just enough to read a module's .modinfo and to tell static binaries.

def _elf_header(data, path):
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise VMError(f"{path} is not a 64-bit little-endian ELF file")
    return data


def elf_section(path, want):
    """Contents of section `want` of a 64-bit ELF file, or None."""
    data = _elf_header(Path(path).read_bytes(), path)
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    sections = []
    for i in range(shnum):
        name, _type, _flags, _addr, off, size = struct.unpack_from(
            "<IIQQQQ", data, shoff + i * shentsize)
        sections.append((name, off, size))
    stroff = sections[shstrndx][1]
    for name, off, size in sections:
        end = data.index(b"\0", stroff + name)
        if data[stroff + name:end].decode() == want:
            return data[off:off + size]
    return None


def elf_is_static(path):
    """True when the executable has no program interpreter (PT_INTERP)."""
    data = _elf_header(Path(path).read_bytes(), path)
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        ptype, = struct.unpack_from("<I", data, phoff + i * phentsize)
        if ptype == 3:  # PT_INTERP
            return False
    return True


def modinfo(path):
    """The key=value pairs of a kernel module's .modinfo section."""
    sec = elf_section(path, ".modinfo")
    if sec is None:
        raise VMError(f"{path} has no .modinfo section: not a kernel module?")
    info = {}
    for item in sec.split(b"\0"):
        if b"=" in item:
            k, v = item.decode(errors="replace").split("=", 1)
            info.setdefault(k, []).append(v)
    return info


# --------------------------------------------------------------------------
# Kernel cache

class Kernel:
    """vmlinuz and the modules (in load order) in the cache directory."""

    def __init__(self, root, meta):
        self.root = root
        self.release = meta["release"]
        self.package = meta["package"]
        self.version = meta["version"]
        self.modules = meta["modules"]
        self.vmlinuz = root / "vmlinuz"

    def module_path(self, name):
        return self.root / "modules" / f"{name}.ko"


def _is_root():
    return os.geteuid() == 0


def _apt_update(why):
    if not _is_root():
        raise VMError(f"{why}; the package lists need refreshing, which needs "
                      f"root: run `apt-get update` as root, then again")
    log(f"{why}: running apt-get update")
    _run(["apt-get", "update", "-q"], "apt-get update")


def _resolve_kernel_package():
    """Name of the versioned package the cloud kernel metapackage pulls in."""
    for attempt in (1, 2):
        p = subprocess.run(["apt-cache", "depends", KERNEL_METAPACKAGE],
                           capture_output=True, text=True)
        m = re.search(r"Depends:\s*(linux-image-\S+-cloud-amd64)\b", p.stdout)
        if m:
            return m.group(1)
        if attempt == 1:
            _apt_update(f"apt-cache does not know {KERNEL_METAPACKAGE}")
    raise VMError(f"`apt-cache depends {KERNEL_METAPACKAGE}` names no "
                  f"linux-image-*-cloud-amd64 package even after apt-get "
                  f"update:\n{tail(p.stdout + p.stderr, 10)}")


def _download(pkg, dest):
    for attempt in (1, 2):
        p = subprocess.run(["apt-get", "download", pkg], cwd=dest,
                           capture_output=True, text=True)
        debs = list(Path(dest).glob(f"{pkg}_*.deb"))
        if p.returncode == 0 and debs:
            return debs[0]
        if attempt == 1:
            _apt_update(f"`apt-get download {pkg}` failed")
    raise VMError(f"`apt-get download {pkg}` failed:\n"
                  f"{tail(p.stderr + p.stdout, 10)}")


def _module_order(modroot, wanted):
    """Module names (wanted + dependencies) so that each follows its deps."""
    files = {}
    for ko in modroot.glob("kernel/**/*.ko"):
        files[ko.name[:-3].replace("-", "_")] = ko
    builtin = set()
    bfile = modroot / "modules.builtin"
    if bfile.exists():
        for line in bfile.read_text().splitlines():
            builtin.add(Path(line).name.removesuffix(".ko").replace("-", "_"))
    if not files:
        compressed = list(modroot.glob("kernel/**/*.ko.*"))
        if compressed:
            raise VMError(f"the modules in {modroot} are compressed "
                          f"({compressed[0].name}); busybox insmod needs "
                          f".ko files")
        raise VMError(f"no kernel modules under {modroot}")
    order, state = [], {}

    def visit(name, chain):
        name = name.replace("-", "_")
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise VMError(f"module dependency loop: {' -> '.join(chain)}")
        if name not in files:
            if name in builtin:
                return
            raise VMError(f"module {name} (needed by "
                          f"{chain[-2] if len(chain) > 1 else 'the guest'}) "
                          f"is neither in {modroot} nor built in")
        state[name] = "visiting"
        for dep in modinfo(files[name]).get("depends", [""])[0].split(","):
            if dep:
                visit(dep, chain + [dep])
        state[name] = "done"
        order.append(name)

    for w in wanted:
        visit(w, [w])
    return order, files


def _install_file(src, dest):
    tmp = dest.with_name(dest.name + ".new")
    shutil.copyfile(src, tmp)
    tmp.replace(dest)


def ensure_kernel(refresh=False, extra_modules=()):
    """The cached kernel, fetched first when missing (or when refresh).

    extra_modules: modules a run needs beyond KERNEL_MODULES (the KVP test's
    virtio_net); a cache without them is fetched again with them, and keeps
    them for every later run. Idempotent and safe to run twice at once (a
    lock file). Needs apt-get's package lists; runs `apt-get update` itself
    when they lack the package and we are root.
    """
    wanted = tuple(KERNEL_MODULES) + tuple(m for m in extra_modules
                                           if m not in KERNEL_MODULES)
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    meta_file = root / "kernel.json"
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not refresh and meta_file.exists():
            try:
                k = Kernel(root, json.loads(meta_file.read_text()))
                if k.vmlinuz.exists() and all(
                        k.module_path(m).exists() for m in k.modules) and all(
                        m in k.modules for m in wanted):
                    return k
            except (ValueError, KeyError):
                pass
            log(f"kernel cache {root} is incomplete (or lacks a module "
                f"added since): fetching again")
        if not shutil.which("apt-get") or not shutil.which("dpkg"):
            raise Skip("no apt-get/dpkg here to fetch Debian's cloud kernel")
        pkg = _resolve_kernel_package()
        log(f"fetching {pkg} into {root} (apt-get download, dpkg -x)")
        work = Path(tempfile.mkdtemp(prefix="fetch-", dir=root))
        try:
            deb = _download(pkg, work)
            version = deb.name.split("_")[1]
            tree = work / "x"
            _run(["dpkg", "-x", str(deb), str(tree)], f"unpacking {deb.name}")
            vmlinuz = sorted((tree / "boot").glob("vmlinuz-*"))
            mods = sorted((tree / "lib" / "modules").glob("*"))
            if not vmlinuz or not mods:
                raise VMError(f"{deb.name} has no boot/vmlinuz-* or "
                              f"lib/modules/*: not a kernel image package?")
            release = mods[0].name
            order, files = _module_order(mods[0], wanted)
            # Replace file by file (copy, then rename): another run that
            # reads the cache without the lock never sees half a file.
            (root / "modules").mkdir(exist_ok=True)
            for m in order:
                _install_file(files[m], root / "modules" / f"{m}.ko")
            _install_file(vmlinuz[0], root / "vmlinuz")
            meta = {"package": pkg, "version": version, "release": release,
                    "modules": order}
            tmp = meta_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(meta, indent=1) + "\n")
            tmp.replace(meta_file)
            log(f"kernel {release}: modules in load order: {' '.join(order)}")
            return Kernel(root, meta)
        finally:
            shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------
# initramfs (newc cpio, written here)

class Cpio:
    """An uncompressed newc archive built in memory; parents come first."""

    def __init__(self):
        self.out = bytearray()
        self.ino = 0
        self.seen = set()

    def _entry(self, name, mode, data=b"", rdev=(0, 0)):
        name = name.strip("/")
        if name in self.seen:
            raise VMError(f"initramfs: {name} added twice")
        self.seen.add(name)
        self.ino += 1
        nameb = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0,
                  rdev[0], rdev[1], len(nameb), 0)
        self.out += b"070701" + b"".join(b"%08X" % f for f in fields)
        self.out += nameb
        self.out += b"\0" * (-len(self.out) % 4)
        self.out += data
        self.out += b"\0" * (-len(self.out) % 4)

    def _parents(self, name):
        parts = name.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.seen:
                self._entry(d, 0o040755)

    def dir(self, name, mode=0o755):
        self._parents(name)
        if name.strip("/") not in self.seen:
            self._entry(name, 0o040000 | mode)

    def file(self, name, data, mode=0o644):
        self._parents(name)
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name, target):
        self._parents(name)
        self._entry(name, 0o120777, target.encode())

    def chardev(self, name, major, minor, mode=0o600):
        self._parents(name)
        self._entry(name, 0o020000 | mode, rdev=(major, minor))

    def finish(self):
        self._entry("TRAILER!!!", 0)
        self.out += b"\0" * (-len(self.out) % 512)
        return bytes(self.out)


def find_busybox():
    cands = [os.environ.get("VMIC_BUSYBOX"), "/bin/busybox", "/usr/bin/busybox"]
    for c in cands:
        if c and Path(c).exists():
            if not elf_is_static(c):
                raise VMError(f"{c} is linked dynamically; the initramfs needs "
                              f"Debian's busybox-static (make deps)")
            return Path(c)
    raise Skip("busybox is not installed (Debian package busybox-static; "
               "make deps installs it)")


def busybox_version(busybox):
    out = subprocess.run([str(busybox)], capture_output=True, text=True).stdout
    m = re.search(r"BusyBox v(\S+)", out)
    return m.group(1) if m else "unknown"


def build_initramfs(out, kernel, guestd, extra_files=None, busybox=None):
    """Write the guest's initramfs to `out`.

    extra_files maps an absolute guest path to bytes, str or a host Path
    (mode 0755 when the path is under a bin/ directory or the host file is
    executable, else 0644): later issues add KVP pools, hook scripts...
    """
    guestd = Path(guestd)
    if not guestd.exists():
        raise VMError(f"{guestd} does not exist: build the static agent "
                      f"with `make static`")
    if not elf_is_static(guestd):
        raise VMError(f"{guestd} is linked dynamically; the initramfs has no "
                      f"shared libraries: build it with `make static`")
    busybox = busybox or find_busybox()
    bbver = busybox_version(busybox)
    c = Cpio()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys",
              "dev", "run", "mnt/disk", "root", "var/lib", "var/log"):
        c.dir(d)
    c.dir("tmp", 0o1777)
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3, 0o666)
    c.file("bin/busybox", busybox.read_bytes(), 0o755)
    applets = subprocess.run([str(busybox), "--list-full"], check=True,
                             capture_output=True, text=True).stdout.split()
    for a in applets:
        if a.strip("/") not in ("bin/busybox", "linuxrc"):
            c.symlink(a, "/bin/busybox")

    g = GUEST_FILES
    c.file("init", (g / "init").read_bytes(), 0o755)
    c.file("etc/inittab", (g / "inittab").read_bytes())
    for s in ("vmic-test-control", "vmic-test-agent", "vmic-test-shutdown"):
        c.file(f"usr/bin/{s}", (g / s).read_bytes(), 0o755)
    c.file("etc/os-release", (g / "os-release").read_text()
           .replace("@BUSYBOX_VERSION@", bbver).encode())
    c.file("etc/hostname", b"vmic-guest\n")
    c.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    c.file("etc/group", b"root:x:0:\n")
    c.file("etc/vmic/vmic-guestd.conf", (g / "vmic-guestd.conf").read_bytes())
    c.file("usr/sbin/vmic-guestd", guestd.read_bytes(), 0o755)
    for m in kernel.modules:
        c.file(f"lib/modules/{m}.ko", kernel.module_path(m).read_bytes())
    c.file("lib/modules/load-order", ("\n".join(kernel.modules) + "\n").encode())

    for path, content in sorted((extra_files or {}).items()):
        mode = 0o644
        if isinstance(content, Path):
            if os.access(content, os.X_OK):
                mode = 0o755
            content = content.read_bytes()
        elif isinstance(content, str):
            content = content.encode()
        if "/bin/" in path or "/sbin/" in path:
            mode = 0o755
        c.file(path, content, mode)
    data = c.finish()
    Path(out).write_bytes(data)
    return len(data)


def make_disk(path, size_mb=32, label="vmicdisk"):
    """An ext4 image file; lazy init off, or a power-off during it logs
    I/O errors in the guest."""
    if not shutil.which("mkfs.ext4") and not Path("/sbin/mkfs.ext4").exists():
        raise Skip("mkfs.ext4 is not installed (Debian package e2fsprogs)")
    mkfs = shutil.which("mkfs.ext4") or "/sbin/mkfs.ext4"
    with open(path, "wb") as f:
        f.truncate(size_mb << 20)
    _run([mkfs, "-q", "-F", "-L", label, "-E",
          "lazy_itable_init=0,lazy_journal_init=0", str(path)],
         "making the ext4 test disk")


# --------------------------------------------------------------------------
# The test-control channel (guest side: tests/vm/guest/vmic-test-control)

class Control:
    """Line protocol over the org.vmic.test.0 port's unix socket."""

    def __init__(self, path, transcript, deadline):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        while True:
            try:
                self.sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise VMError(f"QEMU never opened {path}")
                time.sleep(0.05)
        self.lines = queue.Queue()
        self.transcript = open(transcript, "a")
        self.thread = threading.Thread(target=self._reader, daemon=True)
        self.thread.start()

    def _reader(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.lines.put(None)
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode(errors="replace").rstrip("\r")
                self.lines.put(text)

    def note(self, text):
        self.transcript.write(text if text.endswith("\n") else text + "\n")
        self.transcript.flush()

    def send(self, line, note=None):
        self.note(f"> {note if note is not None else line}")
        self.sock.sendall(line.encode() + b"\n")

    def get(self, timeout):
        """Next line, None at EOF, TimeoutError when nothing came."""
        try:
            line = self.lines.get(timeout=max(timeout, 0))
        except queue.Empty:
            raise TimeoutError
        if line is None:
            self.lines.put(None)  # EOF stays EOF
        elif line.startswith("READY "):
            self.note(f"< {line}")
        return line

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.transcript.close()


class Result:
    def __init__(self, rc, out):
        self.rc = rc
        self.out = out

    def __repr__(self):
        return f"Result(rc={self.rc}, out={self.out!r})"


# --------------------------------------------------------------------------
# The VM

def _orphan_guard():
    """Prefix that ends a child when this process dies, even by SIGKILL
    (util-linux setpriv --pdeathsig; PR_SET_PDEATHSIG survives exec)."""
    sp = shutil.which("setpriv")
    return [sp, "--pdeathsig", "TERM", "--"] if sp else []


def qemu_binary():
    q = os.environ.get("VMIC_QEMU") or shutil.which("qemu-system-x86_64")
    if q and not os.access(q, os.X_OK):
        raise Skip(f"VMIC_QEMU={q} is not an executable")
    if not q:
        raise Skip("qemu-system-x86_64 is not installed (Debian package "
                   "qemu-system-x86; make deps installs it)")
    return q


class VM:
    """One guest: QEMU with the agent port, the control port, a disk, QMP.

    start() boots (again) with the same socket paths, so a vmic-hostd that
    knows the VM reconnects by itself; boot N logs its console to
    console-N.log in the run directory.
    """

    def __init__(self, rundir, kernel, initrd, disk=None, name="vm1",
                 memory="256M", append="", extra_args=()):
        self.rundir = Path(rundir)
        self.kernel = kernel
        self.initrd = Path(initrd)
        self.disk = disk
        self.name = name
        self.memory = memory
        self.append = append
        self.extra_args = list(extra_args)
        self.agent_sock = self.rundir / f"{name}.agent.sock"
        self.control_sock = self.rundir / f"{name}.test.sock"
        self.qmp_sock = self.rundir / f"{name}.qmp.sock"
        for s in (self.agent_sock, self.control_sock, self.qmp_sock):
            if len(str(s)) > 107:
                raise VMError(f"socket path {s} is longer than 107 bytes; "
                              f"use a shorter TMPDIR")
        self.accel = os.environ.get("VMIC_VM_ACCEL", "tcg")
        self.qemu = qemu_binary()
        self.proc = None
        self.control = None
        self.boots = 0
        self.boot_id = None
        self.seq = 0
        self.console_path = None
        self.returncode = None

    # The channel URIs vmic-hostd uses for this VM.
    @property
    def channel_uri(self):
        return f"unix:{self.agent_sock}"

    @property
    def power_off_uri(self):
        return f"qmp:{self.qmp_sock}"

    def cmdline(self, console_path="console.log"):
        kernel_args = ("console=ttyS0 panic=0 rdinit=/init loglevel=6 "
                       + self.append).strip()
        cmd = [
            self.qemu, "-name", f"vmic-test-{self.name}",
            "-machine", "pc", "-accel", self.accel, "-cpu", "max",
            "-smp", "1", "-m", self.memory,
            "-nodefaults", "-no-user-config", "-display", "none", "-nic", "none",
            "-kernel", str(self.kernel.vmlinuz), "-initrd", str(self.initrd),
            "-append", kernel_args,
            "-serial", f"file:{console_path}",
            "-qmp", f"unix:{self.qmp_sock},server=on,wait=off",
            "-device", "virtio-serial-pci,id=vser0",
            "-chardev", f"socket,id=agent0,path={self.agent_sock},"
                        f"server=on,wait=off",
            "-device", f"virtserialport,bus=vser0.0,chardev=agent0,"
                       f"name={AGENT_PORT}",
            "-chardev", f"socket,id=test0,path={self.control_sock},"
                        f"server=on,wait=off",
            "-device", f"virtserialport,bus=vser0.0,chardev=test0,"
                       f"name={CONTROL_PORT}",
            "-device", "virtio-rng-pci",
        ]
        if self.disk:
            cmd += ["-drive", f"file={self.disk},format=raw,if=none,id=disk0",
                    "-device", "virtio-blk-pci,drive=disk0"]
        return cmd + self.extra_args

    def start(self, timeout=120):
        """Boot; returns the seconds until the control loop answered."""
        if self.running():
            raise VMError("start(): the VM is already running")
        self.boots += 1
        self.console_path = self.rundir / f"console-{self.boots}.log"
        for s in (self.agent_sock, self.control_sock, self.qmp_sock):
            if s.exists():
                s.unlink()
        cmd = self.cmdline(self.console_path)
        t0 = time.monotonic()
        self.qemu_log = self.rundir / f"qemu-{self.boots}.log"
        with open(self.qemu_log, "w") as out:
            self.proc = subprocess.Popen(_orphan_guard() + cmd,
                                         stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.returncode = None
        self.boot_id = None
        try:
            self.control = Control(self.control_sock,
                                   self.rundir / f"control-{self.boots}.log",
                                   t0 + 20)
            self.wait_ready(timeout, _t0=t0)
        except Exception:
            self.stop()
            raise
        return time.monotonic() - t0

    def _check_alive(self, what):
        if not self.running():
            raise VMError(f"QEMU exited ({self.returncode}) while {what}\n"
                          f"qemu output:\n{tail(self.qemu_log, 20)}\n"
                          f"console:\n{tail(self.console_path)}")
        text = self.console()
        if "Kernel panic" in text:
            raise VMError(f"the guest kernel panicked while {what}\n"
                          f"console:\n{tail(text)}")

    def wait_ready(self, timeout=120, _t0=None):
        """Wait for the control loop of a boot other than the last seen."""
        old = self.boot_id
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.control.get(min(0.5, deadline - time.monotonic()))
            except TimeoutError:
                line = ""
            if line is None:
                self._wait_proc(5)
                self._check_alive("waiting for the guest to boot")
                raise VMError("the control socket closed while QEMU runs")
            if line.startswith("READY "):
                bid = line.split()[1]
                if bid != old:
                    self.boot_id = bid
                    return
            if time.monotonic() > deadline:
                self._check_alive("waiting for the guest to boot")
                raise VMError(f"the guest was not ready within {timeout} s "
                              f"(no READY on {CONTROL_PORT})\nconsole:\n"
                              f"{tail(self.console())}")
            if line == "":
                self._check_alive("waiting for the guest to boot")

    def run(self, script, timeout=30, check=True):
        """Run a shell script in the guest; Result(rc, out) (out: stdout and
        stderr together). check: raise VMError on a non-zero status."""
        if not self.control:
            raise VMError("run(): the VM is not running")
        self.seq += 1
        cid = str(self.seq)
        self.control.send(f"{cid} {base64.b64encode(script.encode()).decode()}",
                          f"[{cid}] {script}")
        deadline = time.monotonic() + timeout
        body, inside = [], False
        while True:
            try:
                line = self.control.get(deadline - time.monotonic())
            except TimeoutError:
                self._check_alive(f"running `{script}` in the guest")
                raise VMError(f"`{script}` did not finish in the guest "
                              f"within {timeout} s")
            if line is None:
                self._wait_proc(5)
                raise VMError(f"the guest went away while running `{script}`"
                              f"\nconsole:\n{tail(self.console(), 30)}")
            if line.startswith("READY "):
                if line.split()[1] != self.boot_id:
                    self.boot_id = line.split()[1]
                    raise VMError(f"the guest rebooted while running "
                                  f"`{script}`")
            elif line == f"BEGIN {cid}":
                inside, body = True, []
            elif inside and line.startswith(f"END {cid} "):
                rc = int(line.split()[2])
                out = base64.b64decode("".join(body)).decode(errors="replace")
                self.control.note(f"< [{cid}] exit {rc}\n{out[:2000]}")
                if check and rc != 0:
                    raise VMError(f"`{script}` failed in the guest with exit "
                                  f"status {rc}:\n{out}")
                return Result(rc, out)
            elif inside:
                body.append(line)

    def console(self):
        """This boot's console log so far."""
        try:
            return self.console_path.read_text(errors="replace")
        except (OSError, AttributeError):
            return ""

    def wait_console(self, pattern, timeout, start=0):
        """Wait until regex `pattern` appears in this boot's console after
        offset `start`; returns the match."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.console(), start)
            if m:
                return m
            if time.monotonic() > deadline:
                raise VMError(f"/{pattern}/ did not appear on the console "
                              f"within {timeout} s\nconsole:\n"
                              f"{tail(self.console(), 30)}")
            time.sleep(0.2)

    def qmp(self, command, timeout=10):
        """Run one QMP command (stop, cont, ...) on the VM's QMP socket;
        its "return" value. The socket takes one client at a time, so this
        must not overlap a power-off through the same socket."""
        deadline = time.monotonic() + timeout
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sk:
            sk.settimeout(timeout)
            sk.connect(str(self.qmp_sock))
            f = sk.makefile("rwb")

            def reply():
                while time.monotonic() < deadline:
                    line = f.readline()
                    if not line:
                        raise VMError("QMP closed the connection")
                    msg = json.loads(line)
                    if "return" in msg:
                        return msg["return"]
                    if "error" in msg:
                        raise VMError(f"QMP {command}: {msg['error']}")
                raise VMError(f"QMP {command}: no answer in {timeout} s")

            f.readline()  # the greeting
            for cmd in ("qmp_capabilities", command):
                f.write(json.dumps({"execute": cmd}).encode() + b"\n")
                f.flush()
                out = reply()
            return out

    def running(self):
        if self.proc is None:
            return False
        rc = self.proc.poll()
        if rc is not None:
            self.returncode = rc
            return False
        return True

    def _wait_proc(self, timeout):
        if self.proc is None:
            return None
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def wait_exit(self, timeout):
        """Wait for QEMU to exit (guest poweroff or QMP quit); its status, or
        None if it still runs after timeout."""
        rc = self._wait_proc(timeout)
        if rc is not None and self.control:
            self.control.close()
            self.control = None
        return rc

    def poweroff(self, timeout=60):
        """Orderly poweroff from inside the guest; QEMU's exit status."""
        self.control.send(f"0 {base64.b64encode(b'poweroff').decode()}",
                          "[0] poweroff")
        rc = self.wait_exit(timeout)
        if rc is None:
            raise VMError(f"QEMU still runs {timeout} s after poweroff in the "
                          f"guest\nconsole:\n{tail(self.console(), 30)}")
        return rc

    def stop(self):
        """End QEMU by its PID (SIGTERM, then SIGKILL); idempotent."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self._wait_proc(10) is None:
                self.proc.kill()
                self._wait_proc(10)
        if self.proc is not None:
            self.returncode = self.proc.poll()
        if self.control:
            self.control.close()
            self.control = None


# --------------------------------------------------------------------------
# vmic-hostd and the CLI

class CliResult:
    def __init__(self, args, rc, out, err):
        self.args, self.rc, self.out, self.err = args, rc, out, err
        self.json = None
        if out.strip():
            try:
                self.json = json.loads(out)
            except ValueError:
                pass

    def describe(self):
        return (f"`vmic {shlex.join(self.args)}` exited with {self.rc}\n"
                f"stdout: {self.out.strip()}\nstderr: {self.err.strip()}")


class HostDaemon:
    """vmic-hostd with its state directory and control socket in rundir."""

    def __init__(self, rundir, hostd, cli, config_extra=""):
        self.config_extra = config_extra
        self.rundir = Path(rundir)
        self.hostd = Path(hostd)
        self.cli = Path(cli)
        self.state_dir = self.rundir / "state"
        self.socket = self.rundir / "ctl.sock"
        self.config = self.rundir / "vmic-hostd.conf"
        self.log_path = self.rundir / "vmic-hostd.log"
        self.proc = None

    def start(self, timeout=20):
        for what, p in (("vmic-hostd", self.hostd), ("vmic", self.cli)):
            if not p.exists():
                raise VMError(f"{what} not found at {p}: build it with "
                              f"`ninja -C build` (or set VMIC_HOSTD/VMIC_CLI)")
        self.state_dir.mkdir(exist_ok=True)
        self.config.write_text(
            "# written by tests/vm/vmlib.py for one test run\n"
            "[daemon]\n"
            f"state-dir = {self.state_dir}\n"
            f"socket = {self.socket}\n"
            "log-level = info\n"
            "[connection]\n"
            "# a rebooted test guest is back in seconds: retry quickly\n"
            "retry-min = 100ms\n"
            "retry-max = 1s\n" + self.config_extra)
        cmd = [str(self.hostd), "--config", str(self.config)]
        cmd += shlex.split(os.environ.get("VMIC_HOSTD_ARGS", ""))
        self.logf = open(self.log_path, "a")
        self.proc = subprocess.Popen(_orphan_guard() + cmd,
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise VMError(f"vmic-hostd exited with {self.proc.returncode} "
                              f"at start:\n{tail(self.log_path, 30)}")
            if self.socket.exists():
                r = self.vmic("version", check=False)
                if r.rc == 0:
                    return
            if time.monotonic() > deadline:
                raise VMError(f"vmic-hostd did not answer on {self.socket} "
                              f"within {timeout} s:\n{tail(self.log_path, 30)}")
            time.sleep(0.1)

    def vmic(self, *args, check=True, timeout=120, json_out=True):
        """Run the real CLI against this daemon; a CliResult."""
        args = [str(a) for a in args] + (["--json"] if json_out else [])
        env = dict(os.environ, VMIC_SOCKET=str(self.socket))
        env.pop("NO_COLOR", None)
        try:
            p = subprocess.run([str(self.cli), "--socket", str(self.socket)]
                               + args, stdin=subprocess.DEVNULL, env=env,
                               capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise VMError(f"`vmic {shlex.join(args)}` did not return within "
                          f"{timeout} s")
        r = CliResult(args, p.returncode, p.stdout, p.stderr)
        if check and r.rc != 0:
            raise VMError(r.describe())
        return r

    def log_tail(self, lines=40):
        return tail(self.log_path, lines)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None:
            self.logf.close()
            self.proc = None


# --------------------------------------------------------------------------
# Paths of the binaries under test (environment overrides for the demo)

def binaries():
    build = env_path("VMIC_BUILD_DIR", REPO / "build")
    static = env_path("VMIC_STATIC_BUILD_DIR", REPO / "build-static")
    return {
        "hostd": env_path("VMIC_HOSTD", build / "src/host/vmic-hostd"),
        "cli": env_path("VMIC_CLI", build / "src/cli/vmic"),
        "guestd": env_path("VMIC_GUESTD", static / "src/guest/vmic-guestd"),
        # a static test tool for the guest (tests/vm/probe)
        "vsock_probe": env_path("VMIC_VSOCK_PROBE",
                                static / "tests/vm/probe/vmic-vsock-probe"),
    }


def make_rundir(prefix="vmic-vm-"):
    base = os.environ.get("TMPDIR", "/tmp")
    if len(base) > 60:  # keep socket paths under 108 bytes
        base = "/tmp"
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


class Lab:
    """One run, start to end: run directory, guest image, VM, vmic-hostd.

        with Lab() as lab:          # kernel cache, initramfs, disk
            lab.vm.start()          # boot (again: lab.vm.start() after exit)
            lab.host.start()
            lab.register()          # vmic add NAME --channel --power-off
            lab.host.vmic("status", lab.name)
            lab.vm.run("uname -r")
        # QEMU and vmic-hostd ended by PID, directory removed (keep=True or
        # VMIC_VM_KEEP=1 keeps it)

    extra_files go into the initramfs (see build_initramfs); bins overrides
    binaries(); extra_modules are kernel modules beyond KERNEL_MODULES
    (loaded at boot, like those), extra_args more QEMU arguments (a NIC);
    setup errors raise VMError or Skip after cleaning up.
    """

    def __init__(self, name="vm1", extra_files=None, keep=None, bins=None,
                 memory="256M", disk_mb=32, extra_modules=(), extra_args=()):
        self.name = name
        self.extra_files = extra_files
        self.keep = (bool(os.environ.get("VMIC_VM_KEEP")) if keep is None
                     else keep)
        self.bins = bins or binaries()
        self.memory = memory
        self.disk_mb = disk_mb
        self.extra_modules = tuple(extra_modules)
        self.extra_args = tuple(extra_args)
        self.rundir = make_rundir()
        self.kernel = self.vm = self.host = None
        self.initramfs_size = 0

    def prepare(self):
        qemu_binary()
        guestd = self.bins["guestd"]
        if not guestd.exists():
            raise VMError(f"{guestd} is missing: the VM needs the statically "
                          f"linked agent; run `make static` (or set "
                          f"VMIC_GUESTD)")
        self.kernel = ensure_kernel(extra_modules=self.extra_modules)
        initrd = self.rundir / "initramfs.cpio"
        self.initramfs_size = build_initramfs(initrd, self.kernel, guestd,
                                              self.extra_files)
        disk = self.rundir / "disk.img"
        make_disk(disk, self.disk_mb)
        self.vm = VM(self.rundir, self.kernel, initrd, disk, self.name,
                     extra_args=self.extra_args,
                     memory=self.memory)
        self.host = HostDaemon(self.rundir, self.bins["hostd"],
                               self.bins["cli"])
        return self

    def register(self, *extra):
        """`vmic add` this VM with its channel and QMP power-off."""
        return self.host.vmic("add", self.name, "--channel",
                              self.vm.channel_uri, "--power-off",
                              self.vm.power_off_uri, *extra)

    def close(self):
        try:
            if self.host:
                self.host.stop()
        finally:
            if self.vm:
                self.vm.stop()
            if self.keep:
                log(f"run directory kept: {self.rundir}")
            else:
                shutil.rmtree(self.rundir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.prepare()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()
        return False


def _main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch-kernel", help="fill the kernel cache")
    f.add_argument("--refresh", action="store_true",
                   help="fetch again even when the cache is complete")
    b = sub.add_parser("boot", help="boot the test guest, run a command in "
                       "it, power it off (checks the image)")
    b.add_argument("--keep", action="store_true", help="keep the run dir")
    b.add_argument("command", nargs="?", default="uname -a; cat /etc/os-release;"
                   " ls -l /dev/virtio-ports; grep /mnt/disk /proc/mounts")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "fetch-kernel":
            k = ensure_kernel(refresh=a.refresh)
            print(f"{k.package} {k.version}: {k.vmlinuz}, modules "
                  f"{' '.join(k.modules)}")
            return 0
        with Lab(keep=a.keep or None) as lab:
            print(shlex.join(lab.vm.cmdline(lab.rundir / "console-1.log")))
            print(f"ready in {lab.vm.start():.1f} s")
            print(lab.vm.run(a.command, check=False).out, end="")
            print(f"QEMU exited with {lab.vm.poweroff()}")
    except (VMError, Skip) as e:
        print(f"vmlib: {e}", file=sys.stderr)
        return 77 if isinstance(e, Skip) else 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
