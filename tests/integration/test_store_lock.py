#!/usr/bin/env python3
"""Another program holding the database (the sqlite3 shell in a write
transaction) holds up only writes, never the daemon's loop: while a `set`
waits for the lock, another client's requests are answered, heartbeats go
on, and the `set` completes once the lock is gone; held for longer than
the daemon retries (5 s), the command fails with a sentence saying why.
Checked by order, not time: the second client's reply must arrive while
the first's cannot have been sent yet, since the lock is still held."""
import json
import os
import socket
import sqlite3

from vmictest import Env, Tap, wait_until


class Client:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = b""

    def send(self, req):
        self.s.sendall(json.dumps(req).encode() + b"\n")

    def recv(self, timeout=30):
        self.s.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise RuntimeError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def pending(self):
        """True when no reply has arrived (without waiting)."""
        self.s.setblocking(False)
        try:
            data = self.s.recv(65536)
            self.buf += data
        except BlockingIOError:
            pass
        finally:
            self.s.setblocking(True)
        return b"\n" not in self.buf

    def close(self):
        self.s.close()


tap = Tap()
env = Env(tap)
lock = None
try:
    env.start_hostd()
    env.start_guest("vm1")
    env.add("vm1")
    tap.check("vm1 OK", env.wait_heartbeat("vm1", "OK", 10) is not None)
    db = os.path.join(env.state, "vmic.db")

    # 1. A lock held for a moment.
    lock = sqlite3.connect(db, isolation_level=None, timeout=10)
    lock.execute("BEGIN IMMEDIATE")
    a, b = Client(env.sock), Client(env.sock)
    a.send({"id": 1, "cmd": "set", "vm": "vm1", "power_off": "exec:true 1"})
    b.send({"id": 2, "cmd": "status", "vm": "vm1"})
    rb = b.recv()
    tap.check("another client's status is answered while the set waits for the lock",
              rb["ok"] and a.pending(), rb)
    b.send({"id": 3, "cmd": "stats"})
    rb = b.recv()
    tap.check("and so are more requests", rb["ok"] and a.pending(), rb)
    lock.execute("ROLLBACK")
    ra = a.recv()
    tap.check("the set completes once the lock is gone",
              ra["ok"] and ra["result"]["power_off"] == "exec:true 1", ra)

    # 2. A lock held longer than the daemon retries.
    lock.execute("BEGIN IMMEDIATE")
    a.send({"id": 4, "cmd": "set", "vm": "vm1", "power_off": "exec:true 2"})
    b.send({"id": 5, "cmd": "version"})
    rb = b.recv()
    tap.check("held longer: still answering others", rb["ok"] and a.pending(), rb)
    ra = a.recv(timeout=60)
    tap.check("the set fails with a sentence naming the cause",
              not ra["ok"] and ra["error"]["code"] == "internal"
              and "locked by another program" in ra["error"]["message"], ra)
    lock.execute("ROLLBACK")
    tap.check("and changed nothing", env.status("vm1")["power_off"] == "exec:true 1")
    tap.check("heartbeat OK throughout",
              not [e for e in env.events("vm1") if e["kind"] == "heartbeat" and e["to"] != "OK"])
    r = env.vmic("set", "vm1", "--power-off", "exec:true 3")
    tap.check("writes work again", r.returncode == 0, r.stderr)
    a.close()
    b.close()
finally:
    if lock:
        lock.close()
    env.close()
tap.done()
