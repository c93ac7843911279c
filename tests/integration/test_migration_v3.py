#!/usr/bin/env python3
"""Schema migration 3 -> 4: a state database of the vmic-hostd before the
KVP service (schema 3, data/registry-v3.db) opens in this build with its
VMs, switches, settings and events, gains the services' data table
(service_data, where the KVP pools live), says so in its log, and then
keeps a VM's External pool across a restart; and a file at schema 2 whose
VACUUM to 3 failed still gets the table (the next start tries the VACUUM
again)."""
import os
import shutil
import sqlite3

from vmictest import Env, Tap

HERE = os.path.dirname(os.path.abspath(__file__))
V3 = os.path.join(HERE, "data", "registry-v3.db")

tap = Tap()
env = Env(tap)
try:
    os.makedirs(env.state)
    db = os.path.join(env.state, "vmic.db")
    shutil.copy(V3, db)
    before = sqlite3.connect(V3)
    events_before = before.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    before.close()

    env.start_hostd()
    names = sorted(v["name"] for v in env.vmic_json("list")["vms"])
    tap.check("every VM of the schema 3 registry is there", names == ["db2", "web1"], names)
    hb = env.service("web1", "heartbeat")
    tap.check("web1 keeps its own heartbeat interval", hb["settings"]["interval"] == "2500ms", hb)
    tap.check("db2's shutdown stays disabled", env.service("db2", "shutdown")["enabled"] is False)
    kvp = env.service("web1", "kvp")
    tap.check("the kvp service is there, enabled by default, with empty pools",
              kvp["enabled"] is True and kvp["external_keys"] == 0, kvp)
    tap.check("the old events are kept", len(env.events()) >= events_before)
    tap.check("the upgrade was logged",
              "upgraded from schema version 3 to 4" in env.hostd_proc.output(),
              env.hostd_proc.output()[-2000:])

    r = env.vmic("kvp", "set", "web1", "owner", "team-a", "tier", "gold")
    tap.check("a migrated VM takes KVP records", r.returncode == 0, r.stderr)
    rc = env.hostd_proc.stop()
    tap.check("vmic-hostd exits cleanly", rc == 0, rc)

    con = sqlite3.connect(db)
    version = con.execute("PRAGMA user_version").fetchone()[0]
    rows = con.execute("SELECT vm, service, space, key, value FROM service_data "
                       "ORDER BY key").fetchall()
    con.close()
    tap.check("the file is at schema version 4", version == 4, version)
    tap.check("the records are rows of service_data (space 0: External)",
              rows == [("web1", "kvp", 0, "owner", "team-a"), ("web1", "kvp", 0, "tier", "gold")],
              rows)

    env.start_hostd()
    got = {(r["pool"], r["key"]): r["value"] for r in env.vmic_json("kvp", "list", "web1")["records"]}
    tap.check("the External pool is back after a restart",
              got.get(("external", "owner")) == "team-a" and got.get(("external", "tier")) == "gold",
              got)
    env.hostd_proc.stop()

    # A schema 2 file whose VACUUM failed at the last start: it runs with
    # the new table and keeps version 2 until the VACUUM succeeds.
    con = sqlite3.connect(db)
    con.execute("DROP TABLE service_data")
    con.execute("PRAGMA user_version = 2")
    con.commit()
    con.close()
    env.start_hostd()
    env.vmic_json("list")  # answered once start-up (and the upgrade) is done
    env.hostd_proc.stop()
    con = sqlite3.connect(db)
    version = con.execute("PRAGMA user_version").fetchone()[0]
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    con.close()
    tap.check("a schema 2 file goes through 3 to 4 in one start",
              version == 4 and "service_data" in tables, (version, tables))
finally:
    env.close()
tap.done()
