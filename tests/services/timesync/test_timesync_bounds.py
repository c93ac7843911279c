#!/usr/bin/env python3
"""The time service's sanity bound against a host that lies (issue 13,
item 5), with real agents on simulated clocks (--simulated-clock: this
machine's clock is never set):

- a real vmic-hostd and an agent 30 s behind with max-step = 10s: the
  offset is refused, the clock left alone, and `vmic time` (and --sync)
  says why; an agent whose clock reads 1970 (before its build date) is
  stepped to the host's time whatever its size;
- a fake host (Python, the host's side of the protocol) that answers the
  agent's samples with times 100 years ahead, 1970, before 1970 and the
  extremes of int64, then floods SYNC requests while claiming 10 days
  ahead: the agent never acts on the absurd times, its clock moves by at
  most max-step however many steps are asked for, most SYNCs are answered
  busy, its log stays small, it keeps answering heartbeats and stops on
  SIGTERM.

The agents log each cycle at debug level with the simulated clock's true
error (its offset from this machine's clock): that is what the checks
read. Every wait is on a condition with a deadline.
"""
import json
import os
import re
import signal
import struct
import threading
import time

from vmictest import (CTL_HELLO, F_REPLY, ROLE_HOST, SVC_CONTROL, T_ERROR, Env,
                      FakeHost, Tap, frame, hello_payload, wait_until)

SVC_HB, SVC_TS = 1, 3
TS_SAMPLE, TS_SAMPLE_REPLY, TS_SETTINGS, TS_SYNC, TS_REPORT = 1, 2, 3, 4, 5
ACT_STEPPED, ACT_FAILED = 1, 5
POLICY_CHANNEL, SET_STEP_BACKWARD = 1, 1
REASON_COMMAND, SYNC_BACKWARD = 1, 1
E_BUSY = 9
SEC = 1_000_000_000
DAY = 86400 * SEC
YEAR = 365 * DAY
INT64_MAX, INT64_MIN = 2**63 - 1, -2**63
TRUE_ERR = re.compile(r"simulated clock: true error ([+-]?\d+) ns")
# heartbeat, shutdown and timesync, version 1, enabled
OFFERS_TS = ((1, 1, 1, 1), (2, 1, 1, 1), (3, 1, 1, 1))


def true_errors(p):
    return [int(x) for x in TRUE_ERR.findall(p.output())]


def parse_report(payload):
    (mode, action, source, reason, flags, offset, delay, step, guest, freq,
     interval, n) = struct.unpack_from("<BBBBBqqqqiIH", payload)
    detail = payload[struct.calcsize("<BBBBBqqqqiIH"):][:n].decode(errors="replace")
    return {"mode": mode, "action": action, "reason": reason, "offset": offset,
            "step": step, "detail": detail}


class TimeHost(FakeHost):
    """A fake host that offers timesync, answers the agent's samples with
    the times `answer(t1)` gives, and keeps the agent's reports, error
    answers and heartbeat replies (a thread reads everything)."""

    def __init__(self, sock):
        super().__init__(sock)
        self.answer = lambda t1: (time.time_ns(), time.time_ns())
        self.lock = threading.Lock()
        self.reports = []   # (request_id, report)
        self.answers = set()  # request ids of reports that answer a request
        self.errors = {}    # request_id: error code
        self.hb = set()     # request ids of heartbeat replies
        self.samples = 0

    def send_hello(self, established):
        self.send(SVC_CONTROL, CTL_HELLO,
                  hello_payload(ROLE_HOST, self.nonce, self.peer_nonce, established,
                                b"vmictest lying time host", OFFERS_TS))

    def serve(self):
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                f = self.recv_frame(120)
            except OSError:
                return
            if f is None:
                return
            svc, typ, flags, rid, payload = f
            if (svc, typ) == (SVC_TS, TS_SAMPLE):
                (t1,) = struct.unpack("<q", payload)
                # An agent that took a lie steps past what int64 holds.
                t2, t3 = (max(INT64_MIN, min(INT64_MAX, t)) for t in self.answer(t1))
                self.samples += 1
                self.send(SVC_TS, TS_SAMPLE_REPLY, struct.pack("<qqq", t1, t2, t3),
                          flags=F_REPLY, request_id=rid)
            with self.lock:
                if (svc, typ) == (SVC_TS, TS_REPORT):
                    self.reports.append((rid, parse_report(payload)))
                    if flags & F_REPLY:
                        self.answers.add(rid)
                elif typ == T_ERROR and flags & F_REPLY:
                    self.errors[rid] = struct.unpack_from("<H", payload)[0]
                elif (svc, typ) == (SVC_HB, 2):
                    self.hb.add(rid)
            # Keep only what the checks read.
            self.frames.clear()

    def reports_since(self, n):
        with self.lock:
            return [r for _rid, r in self.reports[n:]]

    def heartbeat(self, rid, timeout=10):
        self.send(SVC_HB, 1, struct.pack("<Q", rid), request_id=rid)
        return wait_until(lambda: rid in self.hb, timeout)


def wait_report(h, since, pred, timeout=20):
    """The first report after the first `since` that satisfies pred."""
    def found():
        for r in h.reports_since(since):
            if pred(r):
                return r
        return None
    return wait_until(found, timeout, 0.05)


def steps_logged(p):
    return len(re.findall(r"stepped the clock by", p.output()))


# --- a real host ---------------------------------------------------------------
def check_real_host(tap, env):
    # The agent's build date counts from 00:00 UTC of the day before it
    # was built: a clock 30 s behind is after it, even for an agent built
    # a moment ago.
    far = env.start_guest("far", "--simulated-clock", "-30",
                          conf="[timesync]\nmax-step = 10s\nmin-interval = 1s\n")
    env.add("far")
    unset = env.start_guest("unset", "--simulated-clock", "-1.7e9",
                            conf="[timesync]\nmax-step = 30d\nmin-interval = 1s\n")
    env.add("unset")

    t = wait_until(lambda: (lambda x: x if x["last_action"] == "failed" and
                            "max-step" in (x["detail"] or "") else None)(
        env.vmic_json("time", "far")), 30)
    tap.check("30 s behind, max-step 10s: vmic time says the offset was "
              "refused, and why", t and "max-step (10s)" in t["detail"] and
              t["last_step_ns"] is None, env.vmic_json("time", "far"))
    svc = env.service("far", "timesync")
    tap.check("... and so does the status's secondary status",
              svc and "max-step" in (svc.get("secondary_status") or ""), svc)
    errs = true_errors(far)
    tap.check("... the clock was left alone: still 30 s behind, never "
              "stepped", errs and all(abs(e - 30 * SEC) < SEC // 10 for e in errs) and
              steps_logged(far) == 0, f"{errs[-5:]}\n{far.output()[-1500:]}")
    r = env.vmic("time", "far", "--sync", "--json")
    res = json.loads(r.stdout) if r.returncode == 0 else {}
    tap.check("vmic time --sync does not force it past max-step either",
              (res.get("last_sync_request") or {}).get("action") == "failed" and
              steps_logged(far) == 0, r.stdout + r.stderr)
    tap.check("the refusal is logged in the guest, not once per cycle",
              1 <= far.output().count("refused an offset") <= 2, far.output()[-2000:])

    def set_right():
        e = true_errors(unset)
        return e and abs(e[-1]) < 10_000_000 and e
    tap.check("a clock that reads 1970 (before the agent's build date) is "
              "stepped to the host's time, 54 years at once",
              wait_until(set_right, 30) and steps_logged(unset) >= 1 and
              "never set" in unset.output(), unset.output()[-2000:])


# --- a lying host ---------------------------------------------------------------
def check_lying_host(tap, env):
    conf = ("[timesync]\nmax-step = 30d\nmin-interval = 1s\nmax-interval = 2s\n"
            "burst = 1\n")
    p = env.start_guest("lied", conf=conf)
    h = TimeHost.connect(env.guest_socket("lied"))
    tap.check("fake host: session up", h.handshake())
    h.serve()
    h.send(SVC_TS, TS_SETTINGS, struct.pack("<BBI", POLICY_CHANNEL,
                                            SET_STEP_BACKWARD, 128), request_id=1)
    r = wait_report(h, 0, lambda r: r["action"] in (2, ACT_STEPPED))
    tap.check("fake host telling the truth: the agent measures and slews", r,
              h.reports_since(0))

    cases = [
        ("100 years ahead", lambda t1: (t1 + 100 * YEAR, t1 + 100 * YEAR), "max-step"),
        ("1970", lambda t1: (0, 0), "before this agent was built"),
        ("1843", lambda t1: (-4 * 10**18, -4 * 10**18), "before this agent was built"),
        ("INT64_MAX", lambda t1: (INT64_MAX, INT64_MAX), "max-step"),
        ("INT64_MIN", lambda t1: (INT64_MIN, INT64_MIN), "no sample"),
        ("t2 INT64_MIN, t3 INT64_MAX", lambda t1: (INT64_MIN, INT64_MAX), "no sample"),
    ]
    for name, answer, why in cases:
        n = len(h.reports_since(0))
        h.answer = answer
        r = wait_report(h, n, lambda r: r["action"] == ACT_FAILED and why in r["detail"])
        tap.check(f"samples {name}: refused ({why})", r, h.reports_since(n)[-3:])
    errs = true_errors(p)
    tap.check("the clock never moved: true error under 1 s throughout, no step",
              errs and all(abs(e) < SEC for e in errs) and steps_logged(p) == 0,
              f"{errs[-10:]}\n{p.output()[-2000:]}")
    tap.check("still answers heartbeats", h.heartbeat(100))

    # A SYNC flood while the host claims 10 days ahead.
    n_reports = len(h.reports_since(0))
    h.answer = lambda t1: (t1 + 10 * DAY, t1 + 10 * DAY)
    n = 300
    ids = range(1000, 1000 + n)
    h.sock.sendall(b"".join(
        frame(SVC_TS, TS_SYNC, bytes([REASON_COMMAND, SYNC_BACKWARD]), request_id=i)
        for i in ids))

    def all_answered():
        with h.lock:
            got = set(h.errors) | set(h.answers)
        return all(i in got for i in ids)
    tap.check(f"{n} SYNCs at once: each answered", wait_until(all_answered, 30))
    with h.lock:
        busy = sum(1 for i in ids if h.errors.get(i) == E_BUSY)
    tap.check(f"... all but a few answered busy ({busy} of {n})", busy >= n - 8, busy)
    # Let the regular cycles go on lying for a while: they may step
    # until the day's budget (max-step) is spent, and no further.
    wait_until(lambda: any("steps may move the clock" in r["detail"]
                           for r in h.reports_since(n_reports)), 30)
    stepped = [r["step"] for r in h.reports_since(n_reports) if r["action"] == ACT_STEPPED]
    budget_out = [r for r in h.reports_since(n_reports)
                  if "steps may move the clock" in r["detail"]]
    tap.check("the steps stop when they have moved the clock by max-step "
              "(30 days) in the day", budget_out and sum(stepped) <= 30 * DAY + 3600 * SEC,
              f"steps {stepped}")
    errs = true_errors(p)
    tap.check("the simulated clock is never more than max-step ahead",
              errs and min(errs) >= -(30 * DAY + 3600 * SEC), min(errs or [0]))
    out = p.output()
    tap.check("step lines are rate-limited (at most 3)", steps_logged(p) <= 3,
              steps_logged(p))
    tap.check("one line about the refused SYNCs",
              out.count("asks for syncs faster") == 1, out[-2000:])
    size = os.path.getsize(p.log_path)
    tap.check(f"the agent's log stays small ({size} bytes < 100 KB)", size < 100_000)
    tap.check("still answers heartbeats after the flood", h.heartbeat(101))
    t0 = time.monotonic()
    p.signal(signal.SIGTERM)
    try:
        p.p.wait(10)
    except Exception:
        pass
    took = time.monotonic() - t0
    tap.check(f"SIGTERM ends it ({took:.1f} s), status 0",
              p.p.returncode == 0 and took < 10, p.p.returncode)
    h.close()


def main():
    tap = Tap()
    env = Env(tap)
    try:
        env.start_hostd()
        check_real_host(tap, env)
        check_lying_host(tap, env)
    finally:
        env.close()
    tap.done()


if __name__ == "__main__":
    main()
