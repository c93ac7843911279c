#!/usr/bin/env python3
"""docs/operations.md must show the QEMU arguments the real-VM harness boots
with (for the vmic port and QMP), so what users copy is what CI runs."""
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import vmlib  # noqa: E402

doc = (HERE.parent.parent / "docs" / "operations.md").read_text()
block = re.search(r"```sh\nqemu-system-x86_64 \.\.\. \\\n(.*?)```", doc, re.S)
if not block:
    print("not ok 1 - docs/operations.md has the QEMU command block")
    print("1..1")
    sys.exit(1)
doc_args = " ".join(block.group(1).replace("\\\n", " ").split())

# The harness's own command line, with the doc's example paths.
vm = vmlib.VM.__new__(vmlib.VM)
vm.agent_sock = "/run/vmic/vms/web1.sock"
vm.control_sock = "/run/vmic/vms/web1.test.sock"
vm.qmp_sock = "/run/vmic/vms/web1.qmp"
vm.kernel = type("K", (), {"vmlinuz": "vmlinuz"})()
vm.initrd, vm.disk, vm.name, vm.memory, vm.append = "initrd", None, "web1", "256M", ""
vm.extra_args, vm.accel, vm.qemu = [], "tcg", "qemu-system-x86_64"
cmd = vm.cmdline("console.log")

wanted = []
for i, arg in enumerate(cmd):
    nxt = cmd[i + 1] if i + 1 < len(cmd) else ""
    if arg == "-qmp" or (arg in ("-chardev", "-device") and
                         ("agent0" in nxt or nxt.startswith("virtio-serial-pci"))):
        wanted.append(f"{arg} {nxt}")

n = 0
failed = 0
for w in wanted:
    n += 1
    ok = w in doc_args
    failed += not ok
    print(f"{'ok' if ok else 'not ok'} {n} - operations.md shows `{w}`")
n += 1
ok = len(wanted) == 4
failed += not ok
print(f"{'ok' if ok else 'not ok'} {n} - the harness still has a QMP socket, a "
      f"virtio-serial bus, the agent chardev and its port ({len(wanted)} found)")
print(f"1..{n}")
sys.exit(1 if failed else 0)
