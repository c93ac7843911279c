#!/usr/bin/env python3
"""hostd's libvirt source against a real libvirtd of our own.

libvirtd runs in session mode as nobody, with its sockets and state in a
temporary directory (nothing of the machine's libvirt is touched), and
serves its built-in test driver (test+unix:///default): unlike test:///
in-process, its domains are shared by every client, so a second client
(lvctl) defines, starts, pauses, stops and undefines domains and hostd
sees libvirt's real lifecycle events. Then libvirtd is stopped with
SIGSTOP (hostd's heartbeats go on, stats shows the connection's trouble)
and restarted (hostd reconnects and lists again). No QEMU runs here:
test_libvirt_qemu.py (suite vm) is the end-to-end test with QEMU.
"""
import os
import signal
import subprocess
import sys
import time

import lvlib
from vmictest import Env, Tap, wait_until



def skip(reason):
    print(f"1..0 # SKIP {reason}", flush=True)
    sys.exit(0)


if lvlib.why_not():
    skip(lvlib.why_not())

tap = Tap()
env = Env(tap)
lvd = lvlib.Libvirtd(env.procs)
uri = lvd.uri("test+unix:///default")
libvirtd = None


def start_libvirtd():
    return lvd.start(uri)


def lvctl(*args):
    return lvlib.lvctl(uri, *args)


def define(name, channel_path):
    path = os.path.join(env.dir, f"{name}.xml")
    with open(path, "w") as f:
        f.write(f"""<domain type='test'><name>{name}</name><memory>65536</memory>
<os><type>hvm</type></os><devices><channel type='unix'>
<source mode='bind' path='{channel_path}'/>
<target type='virtio' name='org.vmic.0'/></channel></devices></domain>""")
    return lvctl("define", path)


def vms():
    return {v["name"]: v for v in env.vmic_json("list")["vms"]}


def lv_state():
    st = env.ctl({"cmd": "stats"})["result"].get("libvirt") or [{}]
    return st[0]


def has_event(vm, kind, text):
    return any(e["kind"] == kind and text in e["message"] for e in env.events(vm))


try:
    libvirtd = start_libvirtd()
    env.start_guest("g1")
    env.start_guest("m1")
    env.start_hostd("--libvirt", uri)
    env.add("m1")
    tap.check("connected to libvirtd",
              wait_until(lambda: lv_state().get("state") == "connected", 15), lv_state())

    r = define("g1", env.guest_socket("g1"))
    tap.check("lvctl defines g1", r.returncode == 0, r.stderr)
    tap.check("defined with a channel: it appears",
              wait_until(lambda: "g1" in vms(), 10), sorted(vms()))
    r = lvctl("start", "g1")
    tap.check("heartbeat OK without vmic add",
              r.returncode == 0 and env.wait_heartbeat("g1", "OK", 15) is not None,
              r.stderr + str(env.status("g1")))

    lvctl("suspend", "g1")
    time.sleep(3)
    lvctl("resume", "g1")
    tap.check("resume after a 3 s pause: the time service resyncs",
              wait_until(lambda: has_event("g1", "timesync", "step its clock"), 10),
              [e["message"] for e in env.events("g1")][-5:])

    # The VM stops (its agent with it), through libvirt, not vmic.
    for p in env.procs:
        if p.name == "guest-g1":
            p.stop()
    r = lvctl("destroy", "g1")
    tap.check("shut off: libvirt's event is logged",
              r.returncode == 0 and wait_until(lambda: has_event("g1", "libvirt", "shut off"), 10),
              r.stderr)
    time.sleep(5)  # past threshold x interval of heartbeats
    hb = env.heartbeat("g1")
    tap.check("a domain shut off in libvirt reads No Contact, not Lost Communication",
              hb == "No Contact", hb)

    r = lvctl("undefine", "g1")
    tap.check("undefined: removed",
              r.returncode == 0 and wait_until(lambda: "g1" not in vms(), 10), sorted(vms()))
    tap.check("its events are kept",
              has_event("g1", "vm-removed", "undefined") and has_event("g1", "vm-added", "found"),
              [e["kind"] for e in env.events("g1")])

    # Undefined while running and connected (libvirt keeps it as a
    # transient domain): it leaves the registry all the same.
    env.start_guest("g3")
    define("g3", env.guest_socket("g3"))
    lvctl("start", "g3")
    tap.check("g3 connected", env.wait_heartbeat("g3", "OK", 15) is not None)
    r = lvctl("undefine", "g3")
    tap.check("undefined while connected: removed, hostd still answers",
              r.returncode == 0 and wait_until(lambda: "g3" not in vms(), 10)
              and env.heartbeat("m1") == "OK", r.stderr + str(sorted(vms())))

    # A hung libvirtd: heartbeats go on, stats says so.
    define("g2", os.path.join(env.dir, "g2.sock"))
    wait_until(lambda: "g2" in vms(), 10)
    libvirtd.signal(signal.SIGSTOP)
    t0 = time.monotonic()
    worst = 0.0
    bad_hb = []
    while time.monotonic() - t0 < 25:
        s = time.monotonic()
        hb = env.heartbeat("m1")
        worst = max(worst, time.monotonic() - s)
        if hb != "OK":
            bad_hb.append(hb)
        if lv_state().get("state") in ("disconnected", "not-responding") and \
                time.monotonic() - t0 > 8:
            break
        time.sleep(0.5)
    st = lv_state()
    tap.check("libvirtd stopped: stats shows it", st.get("state") in
              ("disconnected", "not-responding"), st)
    tap.check("heartbeats stay OK while libvirtd hangs", not bad_hb, bad_hb)
    tap.check("the control socket answers at once meanwhile", worst < 1.0, worst)
    libvirtd.signal(signal.SIGCONT)
    tap.check("libvirtd continued: connected again",
              wait_until(lambda: lv_state().get("state") == "connected", 75), lv_state())

    # A restart: a fresh test driver has no g2; hostd lists again.
    libvirtd.stop()
    libvirtd = start_libvirtd()
    tap.check("libvirtd restarted: reconnected and listed again, g2 gone",
              wait_until(lambda: lv_state().get("state") == "connected"
                         and "g2" not in vms(), 75), (lv_state(), sorted(vms())))
    tap.check("the VM added by hand is still there", "m1" in vms(), sorted(vms()))
    tap.check("hostd exits 0", env.hostd_proc.stop() == 0)
finally:
    env.close()
    lvd.close()
tap.done()
