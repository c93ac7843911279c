#!/usr/bin/env python3
"""hvsock: (Firecracker / Cloud Hypervisor hybrid vsock) through a small
proxy that speaks the VMM's side: read "CONNECT <port>\\n", answer
"OK <host port>\\n", then relay to the guest agent. A refused port gives a
clear error in the VM's status."""
import os
import socket
import threading

from vmictest import Env, Tap, pump, wait_until

GUEST_PORT = 5657


class HybridVsockProxy:
    def __init__(self, path, guest_path):
        self.guest_path = guest_path
        self.requests = []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(8)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(c,), daemon=True).start()

    def handle(self, c):
        line = b""
        while not line.endswith(b"\n") and len(line) < 64:
            b = c.recv(1)
            if not b:
                c.close()
                return
            line += b
        self.requests.append(line)
        parts = line.decode(errors="replace").split()
        if len(parts) != 2 or parts[0].upper() != "CONNECT" or parts[1] != str(GUEST_PORT):
            c.close()  # what Firecracker does when nothing listens there
            return
        g = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        g.connect(self.guest_path)
        # The agent's hello may already be waiting: send it in the same
        # write as the OK line, so a host that reads past the newline
        # would lose it.
        g.settimeout(2)
        try:
            first = g.recv(65536)
        except socket.timeout:
            first = b""
        g.settimeout(None)
        c.sendall(b"OK 1073741824\n" + first)
        for src, dst in ((c, g), (g, c)):
            threading.Thread(target=pump, args=(src, dst), daemon=True).start()


tap = Tap()
env = Env(tap)
try:
    env.start_hostd()
    env.start_guest("fc1")
    vsock_path = os.path.join(env.dir, "fc1.vsock")
    proxy = HybridVsockProxy(vsock_path, env.guest_socket("fc1"))
    env.add("fc1", f"hvsock:{vsock_path}:{GUEST_PORT}")
    tap.check("heartbeat OK through the hvsock handshake",
              env.wait_heartbeat("fc1", "OK", 10) is not None, env.status("fc1"))
    tap.check("the host sent CONNECT with the port",
              proxy.requests and proxy.requests[0] == f"CONNECT {GUEST_PORT}\n".encode(),
              proxy.requests)
    env.add("fc2", f"hvsock:{vsock_path}:4444")
    st = wait_until(lambda: (s := env.status("fc2"))["connection_detail"]["last_error"] and s, 10)
    tap.check("a refused port reports an error", bool(st), env.status("fc2"))
    if st:
        err = st["connection_detail"]["last_error"]
        tap.check("the error names the handshake", "hvsock" in err.lower() or
                  "connect" in err.lower(), err)
        tap.check("fc2 is not connected", st["connection"] != "connected", st["connection"])
    tap.check("fc1 unaffected", env.heartbeat("fc1") == "OK")
finally:
    env.close()
tap.done()
