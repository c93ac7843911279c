#!/usr/bin/env python3
"""Schema migration: a registry written by vmic-hostd 0.1.0 (schema 1, with
heartbeat's interval and threshold as columns of vms) opens in this build
with every VM, switch, setting and event kept, and ends at schema 4
(incremental auto-vacuum, switched by one VACUUM at 3; the services' own
data at 4); a database newer than the build is refused with a clear
message, and left untouched."""
import os
import shutil
import sqlite3

from vmictest import Env, Tap, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
V1 = os.path.join(HERE, "data", "registry-v1.db")

tap = Tap()
env = Env(tap)
try:
    os.makedirs(env.state)
    db = os.path.join(env.state, "vmic.db")
    shutil.copy(V1, db)
    events_before = sqlite3.connect(V1).execute("SELECT COUNT(*), MAX(id) FROM events").fetchone()

    env.start_hostd()
    names = sorted(v["name"] for v in env.vmic_json("list")["vms"])
    tap.check("every VM of the 0.1.0 registry is there", names == ["db2", "plain", "web1"], names)

    web1 = env.status("web1")
    hb = env.service("web1", "heartbeat")
    tap.check("web1: its heartbeat interval and threshold became its own settings",
              hb["settings"] == {"interval": "2500ms", "threshold": "7"} and hb["inherited"] == [],
              hb)
    tap.check("web1: channel and power backend kept",
              web1["channel"] == "unix:/nonexistent/web1.sock"
              and web1["power_off"] == "qmp:/nonexistent/web1.qmp", web1)
    db2 = env.service("db2", "heartbeat")
    tap.check("db2: threshold 4 kept", db2["settings"].get("threshold") == "4", db2)
    tap.check("db2: shutdown stays disabled",
              env.service("db2", "shutdown")["enabled"] is False, env.service("db2", "shutdown"))
    plain = env.service("plain", "heartbeat")
    tap.check("plain: the defaults it was given at add are kept as its own",
              plain["settings"] == {"interval": "1s", "threshold": "3"}, plain)

    evs = env.events()
    tap.check("the old events are kept, and new ids continue after them",
              len([e for e in evs if e["id"] <= events_before[1]]) == events_before[0]
              and all(e["id"] > events_before[1] for e in evs[events_before[0]:]),
              (events_before, [e["id"] for e in evs]))

    r = env.vmic("set", "web1", "heartbeat", "interval=3s", check=False)
    tap.check("a migrated VM takes new settings", r.returncode == 0, r.stderr)
    rc = env.hostd_proc.stop()
    tap.check("vmic-hostd exits cleanly", rc == 0, rc)

    con = sqlite3.connect(db)
    version = con.execute("PRAGMA user_version").fetchone()[0]
    vacuum = con.execute("PRAGMA auto_vacuum").fetchone()[0]
    cols = [c[1] for c in con.execute("PRAGMA table_info(vms)")]
    rows = con.execute("SELECT vm, key, value FROM service_settings WHERE service = 'heartbeat' "
                       "ORDER BY vm, key").fetchall()
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    con.close()
    tap.check("the file is at schema version 4", version == 4, version)
    tap.check("in incremental auto-vacuum mode (pruned events give pages back)",
              vacuum == 2, vacuum)
    tap.check("the services' data table is there", "service_data" in tables, tables)
    tap.check("the heartbeat columns are gone from vms",
              cols == ["name", "channel", "power_off", "created_us"], cols)
    tap.check("service_settings holds the values",
              ("web1", "interval", "3s") in rows and ("db2", "threshold", "4") in rows, rows)
    tap.check("the upgrades were logged",
              "upgraded from schema version 1 to 2" in env.hostd_proc.output()
              and "upgraded from schema version 2 to 3" in env.hostd_proc.output()
              and "upgraded from schema version 3 to 4" in env.hostd_proc.output(),
              env.hostd_proc.output()[-2000:])

    # A database from a newer vmic: refused, not touched.
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    before = open(db, "rb").read()
    p = env.start_hostd_expect_failure()
    tap.check("a newer schema is refused with what to do",
              "newer than this vmic-hostd knows" in p.output() and "run a newer vmic-hostd" in p.output(),
              p.output())
    tap.check("and the file is left as it was", open(db, "rb").read() == before)
finally:
    env.close()
tap.done()
