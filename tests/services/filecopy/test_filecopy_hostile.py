#!/usr/bin/env python3
"""A channel that damages data and a client that sends many requests with
descriptors. A proxy between vmic-hostd and the agent flips one byte of a
File Copy stream data frame (the frame header stays valid): the XXH3-128
catches it both ways, nothing is written, and the next copy through the
mended proxy works. Then 1,000 `copy-to-guest` requests with descriptors,
refused before the operation starts, refused by the guest, and accepted,
leave vmic-hostd with the descriptors it had before."""
import json
import os
import socket
import struct
import threading

from vmictest import Tap, CtlClient, wait_until
from fclib import setup, write_file, same, temporaries, fc_conf, ready

SVC_FILECOPY, T_DATA = 6, 0xFE


class CorruptingProxy:
    """hostd connects here; each connection is relayed to the agent's
    socket frame by frame. While `armed`, the first File Copy data frame
    of a direction gets one payload byte flipped."""

    def __init__(self, listen, upstream):
        self.upstream = upstream
        self.armed = False
        self.flipped = 0
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(listen)
        self.srv.listen(4)
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                h, _ = self.srv.accept()
                g = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                g.connect(self.upstream)
            except OSError:
                return
            threading.Thread(target=self.relay, args=(h, g), daemon=True).start()
            threading.Thread(target=self.relay, args=(g, h), daemon=True).start()

    @staticmethod
    def read_exact(s, n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def relay(self, src, dst):
        try:
            while True:
                head = self.read_exact(src, 24)
                length = struct.unpack_from("<I", head, 4)[0]
                payload = bytearray(self.read_exact(src, length))
                if self.armed and head[8] == SVC_FILECOPY and head[9] == T_DATA and length:
                    payload[length // 2] ^= 0x40
                    self.armed = False
                    self.flipped += 1
                dst.sendall(head + payload)
        except (EOFError, OSError):
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


tap = Tap()
env, guest = setup(tap, enable=False)
D = env.dir
IN, OUT, HOST = f"{D}/in", f"{D}/out", f"{D}/host"
try:
    env.vmic("remove", "vm1", check=True)
    proxy = CorruptingProxy(f"{D}/proxy.sock", env.guest_socket("vm1"))
    env.vmic("add", "vm1", "--channel", f"unix:{D}/proxy.sock", check=True)
    env.vmic("enable", "vm1", "filecopy", check=True)
    ready(env)
    write_file(f"{HOST}/src", 700_000, seed=5)
    proxy.armed = True
    r = env.vmic("copy", "vm1", f"{HOST}/src", f"{IN}/dst")
    tap.check("a byte flipped on the way into the guest: the hash catches it",
              proxy.flipped == 1 and r.returncode != 0 and "damaged" in r.stderr, r.stderr)
    tap.check("... nothing written, no temporary",
              not os.path.exists(f"{IN}/dst") and temporaries(IN) == [], os.listdir(IN))
    write_file(f"{OUT}/src", 700_000, seed=6)
    proxy.armed = True
    r = env.vmic("copy", "vm1", "--from-guest", f"{OUT}/src", f"{HOST}/dst")
    tap.check("a byte flipped on the way out of the guest: the hash catches it",
              proxy.flipped == 2 and r.returncode != 0 and "damaged" in r.stderr, r.stderr)
    tap.check("... nothing written on the host, no temporary",
              not os.path.exists(f"{HOST}/dst") and temporaries(HOST) == [], os.listdir(HOST))
    r = env.vmic("copy", "vm1", f"{HOST}/src", f"{IN}/dst")
    tap.check("the same copy through the mended channel works",
              r.returncode == 0 and same(f"{HOST}/src", f"{IN}/dst"), r.stderr)

    # 1,000 requests with descriptors on one connection: no descriptor
    # stays behind in the daemon.
    pid = env.hostd_proc.pid
    write_file(f"{HOST}/tiny", 100, seed=1)
    before = fd_count(pid)
    c = CtlClient(env.sock)
    results = {"invalid-argument": 0, "refused": 0, "ok": 0}
    for i in range(1000):
        kind = i % 3
        path = ("relative" if kind == 0 else f"{IN}/dst" if kind == 1 else f"{IN}/t{i}")
        fd = os.open(f"{HOST}/tiny", os.O_RDONLY)
        req = {"id": i + 1, "cmd": "copy-to-guest", "vm": "vm1", "path": path, "fds": 1}
        socket.send_fds(c.s, [json.dumps(req).encode() + b"\n"], [fd])
        os.close(fd)
        while True:
            line = c.recv()
            if "ok" in line:
                break
        code = "ok" if line["ok"] else line["error"]["code"]
        results[code] = results.get(code, 0) + 1
    c.close()
    tap.check("1,000 requests: refused early, refused by the guest, and copied",
              results == {"invalid-argument": 334, "refused": 333, "ok": 333}, results)
    tap.check("vmic-hostd holds the same number of descriptors as before",
              wait_until(lambda: fd_count(pid) == before, 5), (before, fd_count(pid)))
finally:
    env.close()
tap.done()
