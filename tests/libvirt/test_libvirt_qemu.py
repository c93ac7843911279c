#!/usr/bin/env python3
"""End to end: the VM suite's guest (tests/vm: busybox initramfs, the
static agent, Debian's cloud kernel) defined and started through a real
libvirtd with its QEMU driver under TCG, and vmic-hostd following it.

libvirtd is our own (session mode, as nobody, in a temporary directory:
lvlib.py), so nothing of the machine's libvirt is used or changed; QEMU
runs as nobody too. Checked: heartbeat OK without any `vmic add`; a
libvirtd restart is survived (reconnect, the VM stays, heartbeat OK);
`destroy` through libvirt reads as powered off (No Contact, never Lost
Communication); `undefine` removes the VM.
"""
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "vm"))

import lvlib  # noqa: E402
import vmlib  # noqa: E402
from vmictest import Env, Tap, wait_until  # noqa: E402


def skip(reason):
    print(f"1..0 # SKIP {reason}", flush=True)
    sys.exit(0)


if lvlib.why_not():
    skip(lvlib.why_not())
try:
    lab = vmlib.Lab("lvq", bins=vmlib.binaries())
    lab.prepare()
except (vmlib.Skip, vmlib.VMError) as e:
    skip(str(e).splitlines()[0])

tap = Tap()
env = Env(tap)
lvd = lvlib.Libvirtd(env.procs)
uri = lvd.uri("qemu+unix:///session")
files = os.path.join(lvd.dir, "files")


def lvctl(*args):
    return lvlib.lvctl(uri, *args)


def domain_xml():
    kernel = os.path.join(files, "vmlinuz")
    initrd = os.path.join(files, "initramfs.cpio")
    shutil.copy(lab.kernel.vmlinuz, kernel)
    shutil.copy(lab.vm.initrd, initrd)
    subprocess.run(["chown", "-R", "nobody:nogroup", files], check=True)
    return f"""<domain type='qemu'>
  <name>lvq</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>console=ttyS0 panic=0 rdinit=/init loglevel=6</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>{vmlib.qemu_binary()}</emulator>
    <serial type='file'><source path='{files}/console.log'/><target port='0'/></serial>
    <channel type='unix'>
      <source mode='bind' path='{files}/lvq.sock'/>
      <target type='virtio' name='org.vmic.0'/>
    </channel>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def vms():
    return {v["name"]: v for v in env.vmic_json("list")["vms"]}


def lv_state():
    return (env.ctl({"cmd": "stats"})["result"].get("libvirt") or [{}])[0]


def console():
    try:
        with open(os.path.join(files, "console.log"), errors="replace") as f:
            return f.read()[-3000:]
    except OSError as e:
        return str(e)


try:
    lvd.start(uri)
    env.start_hostd("--libvirt", uri)
    path = os.path.join(env.dir, "lvq.xml")
    with open(path, "w") as f:
        f.write(domain_xml())
    r = lvctl("define", path)
    tap.check("the guest is defined through libvirt", r.returncode == 0, r.stderr)
    r = lvctl("start", "lvq")
    tap.check("and started (QEMU, TCG)", r.returncode == 0, r.stderr)
    tap.check("vmic-hostd registered it by itself",
              wait_until(lambda: "lvq" in vms(), 20), sorted(vms()))
    t = env.wait_heartbeat("lvq", "OK", 180)
    tap.check("heartbeat OK without any vmic add", t is not None,
              str(env.status("lvq")) + "\n" + console())
    if t is not None:
        tap.note(f"heartbeat OK {t:.1f} s after start")

    lvd.proc.stop()
    lvd.start(uri)
    tap.check("a libvirtd restart is survived: reconnected",
              wait_until(lambda: lv_state().get("state") == "connected", 75), lv_state())
    time.sleep(2)
    tap.check("the VM stays registered and OK",
              "lvq" in vms() and env.heartbeat("lvq") == "OK", env.status("lvq"))

    r = lvctl("destroy", "lvq")
    tap.check("virsh destroy (lvctl): libvirt's event is logged",
              r.returncode == 0 and wait_until(
                  lambda: any(e["kind"] == "libvirt" and "shut off" in e["message"]
                              for e in env.events("lvq")), 15), r.stderr)
    time.sleep(6)
    hb = env.heartbeat("lvq")
    tap.check("destroyed reads powered off (No Contact), not Lost Communication",
              hb == "No Contact", hb)
    r = lvctl("undefine", "lvq")
    tap.check("undefine removes it",
              r.returncode == 0 and wait_until(lambda: "lvq" not in vms(), 15),
              r.stderr + str(sorted(vms())))
    tap.check("hostd exits 0", env.hostd_proc.stop() == 0)
finally:
    lvlib.lvctl(uri, "destroy", "lvq")
    env.close()
    lvd.close()
    lab.close()
tap.done()
