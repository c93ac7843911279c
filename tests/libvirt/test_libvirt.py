#!/usr/bin/env python3
"""hostd's libvirt source against libvirt's built-in test driver
(test:///node.xml, a private in-process hypervisor: no libvirtd runs).

What this covers, honestly: discovery from the live XML (unix channel,
vsock CID, a domain without a vmic channel left out), registration under
the domain's name beside a VM added by hand, `list`'s source members,
heartbeat OK without `vmic add`, the libvirt power backend
(virDomainDestroy) and the STOPPED lifecycle event it raises in the same
connection (the VM reads No Contact, not Lost Communication), a
re-listing at start that removes a domain gone meanwhile (its events
kept), a connection that cannot open (state in `stats`, hostd keeps
working). Define/undefine/pause events from outside cannot be driven:
the test driver's state lives in one connection, hostd's own.

VMIC_LIBVIRT=0 (a build without libvirt): hostd must refuse --libvirt
with a sentence saying so.
"""
import os
import signal
import time

from vmictest import Env, Tap, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))

tap = Tap()
env = Env(tap)


def write_node(path, drop=()):
    with open(os.path.join(HERE, "node.xml")) as f:
        text = f.read().replace("@DIR@", env.dir)
    for name in drop:
        start = text.index(f"<domain type='test'>\n    <name>{name}</name>")
        end = text.index("</domain>", start) + len("</domain>")
        text = text[:start] + text[end:]
    with open(path, "w") as f:
        f.write(text)


def stats_libvirt():
    return env.ctl({"cmd": "stats"})["result"].get("libvirt")


def vms():
    return {v["name"]: v for v in env.vmic_json("list")["vms"]}


def run_libvirt_tests():
    node = os.path.join(env.dir, "node.xml")
    write_node(node)
    uri = "test://" + node
    env.start_guest("lv-unix")
    env.start_guest("manual1")
    env.start_hostd("--libvirt", uri)
    env.add("manual1")

    tap.check("domains with a channel registered",
              wait_until(lambda: {"lv-unix", "lv-vsock"} <= set(vms()), 10), vms())
    listed = vms()
    tap.check("a domain without a vmic channel is not", "lv-plain" not in listed,
              sorted(listed))
    lu = listed.get("lv-unix", {})
    tap.check("unix channel from the live XML",
              lu.get("channel") == f"unix:{env.guest_socket('lv-unix')}", lu)
    tap.check("vsock channel from the CID",
              listed.get("lv-vsock", {}).get("channel", "").startswith("vsock:4242"),
              listed.get("lv-vsock"))
    tap.check("source libvirt with its URI",
              lu.get("source") == "libvirt" and lu.get("libvirt_uri") == uri, lu)
    tap.check("power backend is libvirt with the UUID",
              lu.get("power_off") == "libvirt:11111111-2222-3333-4444-555555555501:" + uri,
              lu.get("power_off"))
    m1 = listed.get("manual1", {})
    tap.check("a VM added by hand lives beside them, source manual",
              m1.get("source") == "manual" and m1.get("libvirt_uri") is None, m1)
    tap.check("heartbeat OK without vmic add",
              env.wait_heartbeat("lv-unix", "OK", 15) is not None, env.status("lv-unix"))
    st = stats_libvirt()
    tap.check("stats: the connection is up",
              st and st[0]["uri"] == uri and st[0]["state"] == "connected", st)
    kinds = [e["message"] for e in env.events("lv-unix") if e["kind"] == "vm-added"]
    tap.check("vm-added says where it was found",
              kinds and "found in libvirt" in kinds[0], kinds)

    # setup-libvirt: the XML, then applied to lv-plain (shut off, without
    # a vmic channel): defined again through libvirt, whose DEFINED event
    # registers it.
    r = env.vmic("setup-libvirt", "lv-plain")
    tap.check("setup-libvirt prints the channel XML",
              r.returncode == 0 and "name='org.vmic.0'" in r.stdout
              and "path='/run/vmic/vms/lv-plain.sock'" in r.stdout, r.stdout + r.stderr)
    plain_sock = os.path.join(env.dir, "plain.sock")
    r = env.vmic("setup-libvirt", "lv-plain", "--apply", "--path", plain_sock)
    tap.check("--apply adds it through libvirt",
              r.returncode == 0 and "added to the definition" in r.stdout,
              r.stdout + r.stderr)
    tap.check("the DEFINED event registers the domain",
              wait_until(lambda: vms().get("lv-plain", {}).get("channel")
                         == "unix:" + plain_sock, 10), vms().get("lv-plain"))
    r = env.vmic("setup-libvirt", "lv-plain", "--apply")
    tap.check("a second --apply is refused: it has the channel",
              r.returncode != 0 and "already has" in r.stderr, r.stderr)
    r = env.vmic("setup-libvirt", "nosuch", "--apply")
    tap.check("an unknown domain is named as such",
              r.returncode != 0 and "not found" in r.stderr.lower(), r.stderr)
    r = env.vmic("setup-libvirt", "bad/name")
    tap.check("a domain name vmic cannot register is refused",
              r.returncode != 0 and "may only contain" in r.stderr, r.stderr)

    # The VM goes away (its agent with it), then --force: libvirt destroys
    # the domain; the test driver raises STOPPED on hostd's connection.
    for p in env.procs:
        if p.name == "guest-lv-unix":
            p.stop()
    r = env.vmic("stop", "lv-unix", "--force", "--json")
    tap.check("stop --force powers off through libvirt",
              r.returncode == 0 and "destroyed through libvirt" in r.stdout,
              r.stdout + r.stderr)
    tap.check("the STOPPED event is seen",
              wait_until(lambda: any(e["kind"] == "libvirt" and "shut off" in e["message"]
                                     for e in env.events("lv-unix")), 10),
              env.events("lv-unix"))
    time.sleep(1.5)
    hb = env.heartbeat("lv-unix")
    tap.check("a shut-off domain reads No Contact, not Lost Communication",
              hb == "No Contact", hb)
    r = env.vmic("stop", "lv-vsock", "--turn-off", "--json")
    tap.check("turn-off of a second domain through libvirt",
              r.returncode == 0 and "destroyed through libvirt" in r.stdout,
              r.stdout + r.stderr)

    # Restart with lv-vsock gone from libvirt: the re-listing removes it;
    # its events stay.
    env.hostd_proc.stop()
    write_node(node, drop=["lv-vsock"])
    env.start_hostd("--libvirt", uri)
    tap.check("a domain gone while hostd was down is removed",
              wait_until(lambda: "lv-vsock" not in vms(), 10), sorted(vms()))
    names = sorted(vms())
    tap.check("the others stay", names == ["lv-unix", "manual1"], names)
    ev = env.events("lv-vsock")
    tap.check("its events are kept, with the removal",
              any(e["kind"] == "vm-added" for e in ev)
              and any(e["kind"] == "vm-removed" and "no longer defined" in e["message"]
                      for e in ev), [e["kind"] for e in ev])

    # A URI that cannot be opened: hostd runs on, says so in stats, and
    # the VM added by hand is unaffected.
    env.hostd_proc.stop()
    bad = "test://" + os.path.join(env.dir, "missing.xml")
    env.start_hostd("--libvirt", bad)
    tap.check("an unreachable URI shows as disconnected with the error",
              wait_until(lambda: (stats_libvirt() or [{}])[0]
                         .get("state") == "disconnected", 10),
              stats_libvirt())
    tap.check("VMs of a URI no longer followed are named in the log",
              "VMs such as lv-unix came from libvirt " + uri in env.hostd_proc.output(),
              env.hostd_proc.output()[-2000:])
    with open(env.hostd_conf, "a") as f:
        f.write("\n[libvirt]\nuri = test:///default\n")
    env.hostd_proc.signal(signal.SIGHUP)
    tap.check("a reload names the URIs it cannot change at run time",
              wait_until(lambda: "[libvirt] uri cannot change at run time"
                         in env.hostd_proc.output(), 10)
              and stats_libvirt()[0]["uri"] == bad, stats_libvirt())
    tap.check("manual VMs keep working",
              env.wait_heartbeat("manual1", "OK", 15) is not None, env.status("manual1"))
    tap.check("hostd exits 0 while reconnecting", env.hostd_proc.stop() == 0)


try:
    if os.environ.get("VMIC_LIBVIRT", "1") == "0":
        p = env.start_hostd_expect_failure("--libvirt", "qemu:///system")
        out = p.output()
        tap.check("a build without libvirt refuses --libvirt", not p.alive()
                  and p.p.returncode != 0, p.p.returncode)
        tap.check("and says why", "built without libvirt" in out, out)
    else:
        run_libvirt_tests()
finally:
    env.close()
tap.done()
