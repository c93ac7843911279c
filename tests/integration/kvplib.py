"""KVP helpers for the integration tests: the hv_kvp_daemon pool files
(references.md: 2560-byte records, key[512] value[2048], NUL-padded) and
independent writer processes that append to them under either lock style,
as other software in a guest does; and the KVP messages in Python, for
fake guests (docs/protocol.md, "Key-Value Pair Exchange")."""
import fcntl
import json
import os
import struct
import subprocess
import sys

from vmictest import vstr

KEY_FIELD, VALUE_FIELD = 512, 2048
RECORD = KEY_FIELD + VALUE_FIELD
POOLS = ("external", "guest", "auto", "auto-external", "auto-internal")

SVC_KVP = 4
KVP_SET, KVP_DELETE, KVP_IDENTITY, KVP_ACK = 1, 2, 3, 4
F_BEGIN, F_END = 1, 2
# Offers of a fake guest that speaks kvp too: (service, min, max, flags).
OFFERS_KVP = ((1, 1, 1, 1), (2, 1, 1, 1), (4, 1, 1, 1))


def pool_path(directory, pool):
    return os.path.join(directory, f".kvp_pool_{pool}")


def record(key, value):
    k, v = key.encode(), value.encode()
    return k.ljust(KEY_FIELD, b"\0") + v.ljust(VALUE_FIELD, b"\0")


def parse_records(data):
    """{key: value} of a pool file's bytes (last record of a key wins)."""
    out = {}
    for at in range(0, len(data) - len(data) % RECORD, RECORD):
        k = data[at:at + KEY_FIELD].split(b"\0", 1)[0]
        v = data[at + KEY_FIELD:at + RECORD].split(b"\0", 1)[0]
        if k:
            out[k.decode(errors="replace")] = v.decode(errors="replace")
    return out


def read_pool(directory, pool):
    """The pool's records, read under a shared fcntl lock like
    hv_kvp_daemon's readers; {} when the file is missing."""
    try:
        with open(pool_path(directory, pool), "rb") as f:
            fcntl.lockf(f, fcntl.LOCK_SH)
            try:
                return parse_records(f.read())
            finally:
                fcntl.lockf(f, fcntl.LOCK_UN)
    except FileNotFoundError:
        return {}


# A writer of its own process: append records to a pool file under one
# lock style, hold the lock a while when asked, then leave.
WRITER = r"""
import fcntl, json, sys, time
path, style, hold = sys.argv[1], sys.argv[2], float(sys.argv[3])
pairs = json.load(sys.stdin)
with open(path, "ab") as f:
    if style == "flock":
        fcntl.flock(f, fcntl.LOCK_EX)
    else:
        fcntl.lockf(f, fcntl.LOCK_EX)   # fcntl(F_SETLKW), as hv_kvp_daemon
    for k, v in pairs:
        f.write(k.encode().ljust(512, b"\0") + v.encode().ljust(2048, b"\0"))
        if hold:
            f.flush()
            time.sleep(hold)
    # closing the file releases either lock
"""


def append_records(directory, pairs, style, hold=0.0):
    """Run an independent process that appends pairs [(key, value)...] to
    pool 1 under `style` ("flock" or "fcntl"), sleeping `hold` seconds
    after each record with the lock held. Returns its exit status."""
    args = [sys.executable, "-c", WRITER, pool_path(directory, 1), style, str(hold)]
    return subprocess.run(args, input=json.dumps(list(pairs)), text=True,
                          timeout=120).returncode


def write_pool_file(directory, pool, pairs):
    """Write a whole pool file (for set-up, no agent running)."""
    os.makedirs(directory, exist_ok=True)
    with open(pool_path(directory, pool), "wb") as f:
        for k, v in pairs:
            f.write(record(k, v))


# --- messages -------------------------------------------------------------
def batch(pool, pairs, flags=0, delete=False):
    """A SET (or DELETE) payload: u8 pool, u8 flags, u16 count, records."""
    p = struct.pack("<BBH", pool, flags, len(pairs))
    for item in pairs:
        if delete:
            p += vstr(item.encode() if isinstance(item, str) else item)
        else:
            k, v = item
            p += vstr(k if isinstance(k, bytes) else k.encode())
            p += vstr(v if isinstance(v, bytes) else v.encode())
    return p


def parse_ack(payload):
    status, refused, n = struct.unpack_from("<BHH", payload)
    return {"status": status, "refused": refused,
            "note": payload[5:5 + n].decode(errors="replace")}
