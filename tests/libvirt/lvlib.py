"""A private libvirtd for the libvirt tests: session mode, as nobody, its
sockets, configuration and state in a temporary directory of its own (the
machine's libvirt is never touched), ended by PID. And lvctl, a second
libvirt client (tests/libvirt/lvctl.c) that acts on its domains."""
import os
import shutil
import subprocess
import tempfile

from vmictest import Proc, wait_until

LVCTL = os.environ.get("VMIC_LVCTL", "")
LIBVIRTD = shutil.which("libvirtd") or "/usr/sbin/libvirtd"


def why_not():
    """None when a private libvirtd can run here, else the reason."""
    if not os.path.exists(LIBVIRTD):
        return "libvirtd is not installed (Debian: libvirt-daemon)"
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return "needs root and setpriv to run libvirtd as nobody"
    if not LVCTL:
        return "VMIC_LVCTL (the lvctl helper) is not set"
    return None


class Libvirtd:
    def __init__(self, procs):
        self.procs = procs  # the test's Env.procs: ended with the Env
        self.dir = tempfile.mkdtemp(prefix="vmic-lvd-")
        os.chmod(self.dir, 0o755)
        self.sock = os.path.join(self.dir, "run", "libvirt", "libvirt-sock")
        self.proc = None

    def uri(self, driver):
        """test+unix:///default or qemu+unix:///session on this daemon."""
        return f"{driver}?socket={self.sock}"

    def start(self, probe_uri):
        for d in ("run", "home", "files"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        subprocess.run(["chown", "-R", "nobody:nogroup", self.dir], check=True)
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        e = {"HOME": os.path.join(self.dir, "home"),
             "XDG_RUNTIME_DIR": os.path.join(self.dir, "run"),
             "XDG_CONFIG_HOME": os.path.join(self.dir, "home", ".config"),
             "XDG_CACHE_HOME": os.path.join(self.dir, "home", ".cache"),
             "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        self.proc = Proc("libvirtd", ["setpriv", "--reuid=nobody", "--regid=nogroup",
                                      "--clear-groups", LIBVIRTD],
                         os.path.join(self.dir, "libvirtd.log"), env=e)
        self.procs.append(self.proc)
        if not wait_until(lambda: self.answers(probe_uri), 30):
            raise RuntimeError("libvirtd did not start:\n" + self.proc.output())
        return self.proc

    def answers(self, uri):
        r = lvctl(uri, "resume", "no-such-domain")
        return "not found" in r.stderr.lower() or "no domain" in r.stderr.lower()

    def close(self):
        if self.proc:
            self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def lvctl(uri, *args):
    return subprocess.run([LVCTL, uri, *args], capture_output=True, text=True,
                          timeout=60)
