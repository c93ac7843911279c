#!/usr/bin/env python3
"""The vmic demo: a real Linux guest under QEMU with vmic-guestd inside, a
vmic-hostd with a throwaway state directory, and the vmic commands a
newcomer would type, each printed before it runs.

Falls back to a guest agent running as a local process (with a one-line
explanation) only where QEMU cannot run. Everything it starts is ended by
PID and its temporary directory removed.
"""
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "vm"))
import vmlib  # noqa: E402

BOLD = "\033[1m" if sys.stdout.isatty() else ""
DIM = "\033[2m" if sys.stdout.isatty() else ""
RESET = "\033[0m" if sys.stdout.isatty() else ""


def say(text):
    print(f"\n{BOLD}== {text}{RESET}", flush=True)


def explain(text):
    for line in text.strip().splitlines():
        print(f"{DIM}   {line.strip()}{RESET}", flush=True)


class Shell:
    """Runs the real CLI the way a user would, against the demo daemon."""

    def __init__(self, cli, socket_path):
        self.cli = str(cli)
        self.env = dict(os.environ, VMIC_SOCKET=str(socket_path))

    def vmic(self, *args, show=True):
        if show:
            print(f"$ vmic {shlex.join(str(a) for a in args)}", flush=True)
        r = subprocess.run([self.cli, *map(str, args)], env=self.env,
                           capture_output=True, text=True, timeout=180)
        if show:
            sys.stdout.write(r.stdout)
            sys.stdout.write(r.stderr)
            sys.stdout.flush()
        return r

    def wait_time_report(self, vm, timeout):
        """Until the time service has a report from the guest."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.vmic("time", vm, "--json", show=False)
            if r.returncode == 0 and json.loads(r.stdout).get("report_us"):
                return True
            time.sleep(0.2)
        return False

    def wait_heartbeat(self, vm, state, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.vmic("list", "--json", show=False)
            if r.returncode == 0 and any(
                    v["name"] == vm and v["heartbeat"] == state
                    for v in json.loads(r.stdout)["vms"]):
                return True
            time.sleep(0.2)
        return False


def tour(sh, name, guest_run=None):
    """The part of the demo that is the same for a VM and a local agent."""
    say("vmic list: the registered VMs (Get-VM)")
    sh.wait_heartbeat(name, "OK", 30)
    sh.vmic("list")

    say("vmic status: the integration services of one VM (Get-VMIntegrationService)")
    sh.vmic("status", name)

    say("Heartbeat")
    explain("""The host asks every second; the guest answers with the sequence
               number plus one and its application health. `vmic check` is a
               monitoring plugin (exit 0 OK, 1 warning, 2 critical, 3 unknown).""")
    sh.vmic("check", name)
    explain("Switching heartbeat off and on again, as Disable-VMIntegrationService does:")
    sh.vmic("disable", name, "heartbeat")
    sh.vmic("enable", name, "heartbeat")
    sh.wait_heartbeat(name, "OK", 10)
    if guest_run:
        explain("Inside the guest, the agent is stopped for a few seconds (SIGSTOP):")
        print(f"guest$ kill -STOP $(pidof vmic-guestd)", flush=True)
        guest_run("kill -STOP $(pidof vmic-guestd)")
        sh.wait_heartbeat(name, "Lost Communication", 15)
        sh.vmic("check", name)
        print(f"guest$ kill -CONT $(pidof vmic-guestd)", flush=True)
        guest_run("kill -CONT $(pidof vmic-guestd)")
        sh.wait_heartbeat(name, "OK", 15)
        sh.vmic("check", name)

    say("Time synchronization")
    explain("""The agent measures its clock against the host's over the channel
               (four timestamps, a burst of samples) and steps a large offset,
               slews a small one; with chronyd in the guest it feeds chronyd
               instead. `vmic time` shows what it found and did.""")
    sh.wait_time_report(name, 20)
    sh.vmic("time", name)

    say("Key-value pairs (Hyper-V KVP)")
    explain("""The host's pool reaches the guest's /var/lib/hyperv/.kvp_pool_0
               (hv_kvp_daemon's file layout); the guest's facts come back in
               the Auto pool.""")
    sh.vmic("kvp", "set", name, "owner", "vmic-demo")
    sh.vmic("kvp", "list", name, "--pool", "auto")

    say("vmic events: every state change, also in the journal/syslog")
    sh.vmic("events", "--vm", name, "--limit", "12")


def demo_vm():
    with vmlib.Lab(name="demo") as lab:
        say("A real Linux guest under QEMU")
        explain(f"""Kernel {lab.kernel.version} (Debian's cloud kernel), a busybox
                    initramfs with the statically linked vmic-guestd, QEMU with a
                    virtio-serial port named org.vmic.0 whose host side is a unix
                    socket; vmic-hostd connects to it. The QEMU command line:""")
        print("  " + shlex.join(str(a) for a in lab.vm.cmdline("console.log")), flush=True)
        took = lab.vm.start()
        explain(f"The guest booted in {took:.1f} s (software emulation, no KVM here).")
        lab.host.start()
        sh = Shell(lab.bins["cli"], lab.host.socket)

        say("Register the VM with the host daemon (New-VM, registration only)")
        sh.vmic("add", "demo", "--channel", lab.vm.channel_uri,
                "--power-off", lab.vm.power_off_uri)
        tour(sh, "demo", guest_run=lambda cmd: lab.vm.run(cmd, check=False))

        say("Shutdown: an orderly poweroff with a reason (Stop-VM)")
        explain("""The guest agent logs the reason and runs its poweroff command;
                   vmic-hostd waits until the VM is gone. With --force it would
                   power the VM off through QMP after the timeout.""")
        sh.vmic("stop", "demo", "--reason", "vmic demo finished", "--timeout", "60s")
        lab.vm.wait_exit(30)
        explain("What the guest's console showed:")
        for line in lab.vm.console().splitlines():
            if "vmic-guestd" in line or "system is going down" in line or \
               "Power down" in line or "poweroff" in line.lower():
                print(f"   console| {line.strip()}")
        sh.vmic("status", "demo")
    say("Done: QEMU and vmic-hostd stopped, temporary files removed.")


def demo_local(reason):
    print(f"\nvmic demo: QEMU cannot run here ({reason}); using a vmic-guestd process "
          "on this machine as the guest instead.", flush=True)
    bins = vmlib.binaries()
    guestd = REPO / "build" / "src" / "guest" / "vmic-guestd"
    rundir = Path(tempfile.mkdtemp(prefix="vmic-demo-"))
    procs = []
    try:
        conf = rundir / "guest.conf"
        # "Powering off" this pretend guest ends the agent process; its
        # clock is a simulated one, 2 s behind (this machine's is never
        # set), and its KVP pool files live in the run directory.
        conf.write_text("[shutdown]\npoweroff-command = kill -TERM $PPID\n"
                        f"[kvp]\ndir = {rundir}/kvp\n")
        guest = subprocess.Popen([str(guestd), "--config", str(conf), "--channel",
                                  f"unix-listen:{rundir}/guest.sock",
                                  "--simulated-clock", "-2"],
                                 stderr=open(rundir / "guest.log", "w"))
        procs.append(guest)
        host = vmlib.HostDaemon(rundir, bins["hostd"], bins["cli"])
        host.start()
        sh = Shell(bins["cli"], host.socket)
        say("Register the local agent as a VM")
        sh.vmic("add", "demo", "--channel", f"unix:{rundir}/guest.sock")
        tour(sh, "demo", guest_run=lambda cmd: subprocess.run(
            cmd.replace("$(pidof vmic-guestd)", str(guest.pid)), shell=True))
        say("Shutdown with a reason (ends the agent process here)")
        sh.vmic("stop", "demo", "--reason", "vmic demo finished", "--timeout", "20s")
        host.stop()
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(10)
        import shutil
        shutil.rmtree(rundir, ignore_errors=True)
    say("Done.")


def main():
    print(f"{BOLD}vmic demo{RESET}: host<->guest integration services without a network.")
    try:
        demo_vm()
    except vmlib.Skip as e:
        demo_local(str(e))
    except vmlib.VMError as e:
        print(f"vmic demo: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
