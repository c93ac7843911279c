#!/usr/bin/env python3
"""Reading the event log never holds up the daemon: while a client reads
100,000 events, another client's requests are answered (checked by order:
the small replies arrive while the large one is still incomplete); the large reply
is complete and in order; and a follower that starts while events pour in
sees every event exactly once, across the reply and the stream."""
import json
import os
import random
import socket
import sqlite3
import threading
import time

from vmictest import Env, FakeGuest, Tap, wait_until

N = 100000


class Client:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = b""

    def send(self, req):
        self.s.sendall(json.dumps(req).encode() + b"\n")

    def recv(self, timeout=60):
        self.s.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise RuntimeError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def incomplete(self):
        """True when no whole reply line has arrived yet (without waiting)."""
        self.s.setblocking(False)
        try:
            self.buf += self.s.recv(1 << 20)
        except BlockingIOError:
            pass
        finally:
            self.s.setblocking(True)
        return b"\n" not in self.buf

    def close(self):
        self.s.close()


tap = Tap()
env = Env(tap)
fake = None
try:
    # The schema from a first start, then 100,000 events from before.
    env.start_hostd()
    env.vmic_json("list")  # answered: the schema is there
    env.hostd_proc.stop()
    now = int(time.time() * 1e6)
    con = sqlite3.connect(os.path.join(env.state, "vmic.db"))
    con.executemany("INSERT INTO events (id, time_us, vm, service, kind, from_state, "
                    "to_state, message) VALUES (?, ?, 'seed', 'heartbeat', 'heartbeat', "
                    "'OK', 'Lost Communication', 'no reply to 3 heartbeats (interval 1s)')",
                    [(i + 1, now - (N - i) * 1000) for i in range(N)])
    con.commit()
    con.close()
    env.start_hostd(conf="[connection]\nretry-min = 100ms\nretry-max = 1s\n"
                         "[events]\nkeep = 1000000\nvm-rate = 1000\nvm-burst = 1000\n")
    env.start_guest("vm1")
    env.add("vm1")
    tap.check("vm1 OK", env.wait_heartbeat("vm1", "OK", 10) is not None)

    # 1. A large read and a small request.
    a, b = Client(env.sock), Client(env.sock)
    a.send({"id": "big", "cmd": "events", "limit": N})
    answered = 0
    for i in range(5):
        b.send({"id": i, "cmd": "status", "vm": "vm1"})
        answered += b.recv()["ok"]
    tap.check("five status requests, one after the other, are answered while 100,000 "
              "events are being read (that reply not complete yet)",
              answered == 5 and a.incomplete(), answered)
    ra = a.recv()
    evs = ra["result"]["events"] if ra.get("ok") else []
    ids = [e["id"] for e in evs]
    tap.check("the large reply holds the newest 100,000, oldest first",
              len(evs) == N and ids == sorted(ids) and ids[-1] == max(ids)
              and evs[-1]["vm"] == "vm1", (len(evs), ra.get("error")))
    tap.check("rows are whole", all(set(e) == {"id", "time_us", "vm", "service", "kind", "from",
                                               "to", "message"} for e in evs[:10] + evs[-10:]))
    a.close()
    b.close()

    # 2. A follower that starts while a guest floods.
    fake = FakeGuest(env.guest_socket("bad"))
    env.add("bad")
    tap.check("the fake guest is connected", fake.ready.wait(10))
    fake.hello(1)
    stop = threading.Event()

    def flood():
        rng = random.Random(3)
        while not stop.is_set():
            for _ in range(10):
                fake.hello(rng.getrandbits(63) | 1)
            time.sleep(0.005)

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    time.sleep(0.5)
    f = Client(env.sock)
    f.send({"cmd": "events", "limit": 1000, "follow": True})
    reply = f.recv()
    seen = [e["id"] for e in reply["result"]["events"]]
    # Past 1,000: events published while the reply was read (the ring).
    tap.note(f"the follower's reply held {len(seen)} events")
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        seen.append(f.recv()["event"]["id"])
    stop.set()
    t.join()
    last = seen[-1]
    tap.check("the follower saw no event twice", len(seen) == len(set(seen)),
              len(seen) - len(set(seen)))
    first = reply["result"]["events"][0]["id"]
    ok = wait_until(lambda: env.ctl({"cmd": "stats"})["result"]["events"]["pending"] == 0, 10)
    con = sqlite3.connect(f"file:{os.path.join(env.state, 'vmic.db')}?mode=ro", uri=True)
    stored = [r[0] for r in con.execute("SELECT id FROM events WHERE id >= ? AND id <= ? "
                                        "ORDER BY id", (first, last))]
    con.close()
    missing = sorted(set(stored) - set(seen))
    tap.check(f"every stored event from {first} to {last} reached the follower",
              ok and stored and not missing, missing[:20])
    tap.check("the reply and the stream are in id order across the seam",
              seen == sorted(seen), [x for x, y in zip(seen, seen[1:]) if y < x][:5])
    f.close()
finally:
    if fake:
        fake.close()
    env.close()
tap.done()
