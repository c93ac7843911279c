/* SPDX-License-Identifier: MIT */
/*
 * The SQLite state: the database file, its connections, its schema, and
 * loading the registry at start-up.
 *
 * One file, state_dir/vmic.db, WAL with synchronous=FULL, mode 0640 like
 * its -wal and -shm (SQLite gives those the database's mode): it holds
 * the VM registry, per-VM service switches and settings, the services'
 * own data of each VM (service_data: the KVP pools, of which only the
 * sizes are read at start-up), and the event log.
 * The writer thread owns the one read-write connection
 * (store-writer.c); `events` queries use read-only ones (store-read.c),
 * which WAL lets read while the writer writes. The schema version lives
 * in PRAGMA user_version. Start-up runs here, on the loop, before the
 * writer starts: the loop has nothing else to do yet.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "hostd.h"
#include "proto/services.h"
#include "store-internal.h"

#define SCHEMA_VERSION 4
#define DB_MODE 0640
/* A checkpointed WAL is cut back to this size, so the event log's
 * churn does not leave a large -wal file behind. */
#define WAL_SIZE_LIMIT "4194304" /* 4 MiB */

/* A new database: the current schema in one go. */
static const char schema_create[] =
	"CREATE TABLE vms ("
	" name TEXT PRIMARY KEY,"
	" channel TEXT NOT NULL,"
	" power_off TEXT,"
	" created_us INTEGER NOT NULL);"
	"CREATE TABLE vm_services ("
	" vm TEXT NOT NULL REFERENCES vms(name) ON DELETE CASCADE,"
	" service TEXT NOT NULL,"
	" enabled INTEGER NOT NULL,"
	" PRIMARY KEY (vm, service));"
	"CREATE TABLE service_settings ("
	" vm TEXT NOT NULL REFERENCES vms(name) ON DELETE CASCADE,"
	" service TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" value TEXT NOT NULL,"
	" PRIMARY KEY (vm, service, key));"
	"CREATE TABLE events ("
	" id INTEGER PRIMARY KEY,"
	" time_us INTEGER NOT NULL,"
	" vm TEXT,"
	" service TEXT,"
	" kind TEXT NOT NULL,"
	" from_state TEXT,"
	" to_state TEXT,"
	" message TEXT NOT NULL);"
	"CREATE INDEX events_vm_time ON events (vm, time_us);"
	"CREATE INDEX events_time ON events (time_us);";

/*
 * Version 3 to 4: a table where each service keeps data of its own per
 * VM, (space, key) -> value (the KVP service: a space per pool). It
 * goes with its VM (ON DELETE CASCADE). IF NOT EXISTS: a new file gets
 * it the same way, after the steps that make version 3.
 */
static const char migrate_v3_v4[] =
	"CREATE TABLE IF NOT EXISTS service_data ("
	" vm TEXT NOT NULL REFERENCES vms(name) ON DELETE CASCADE,"
	" service TEXT NOT NULL,"
	" space INTEGER NOT NULL,"
	" key TEXT NOT NULL,"
	" value TEXT NOT NULL,"
	" PRIMARY KEY (vm, service, space, key)) WITHOUT ROWID;";

/*
 * Version 1 (vmic 0.1.0) to 2: heartbeat's interval and threshold move
 * from columns of vms to the generic per-service settings, each VM's
 * values kept as its own (they were copied from the defaults at `add`).
 */
static const char migrate_v1_v2[] =
	"CREATE TABLE service_settings ("
	" vm TEXT NOT NULL REFERENCES vms(name) ON DELETE CASCADE,"
	" service TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" value TEXT NOT NULL,"
	" PRIMARY KEY (vm, service, key));"
	"INSERT INTO service_settings (vm, service, key, value)"
	" SELECT name, 'heartbeat', 'interval', heartbeat_interval_ms || 'ms'"
	" FROM vms;"
	"INSERT INTO service_settings (vm, service, key, value)"
	" SELECT name, 'heartbeat', 'threshold',"
	" CAST(heartbeat_threshold AS TEXT) FROM vms;"
	"ALTER TABLE vms DROP COLUMN heartbeat_interval_ms;"
	"ALTER TABLE vms DROP COLUMN heartbeat_threshold;";

/*
 * migrations[v] takes a database from version v to v + 1 inside one
 * transaction. Version 2 to 3 is no SQL of that kind: it switches the
 * file to incremental auto-vacuum, which takes a VACUUM outside any
 * transaction (store_switch_vacuum).
 */
static const char *const migrations[SCHEMA_VERSION] = {
	[1] = migrate_v1_v2,
	[3] = migrate_v3_v4,
};

void store_thread_background(int nice)
{
	/* Linux: a thread's own nice value (setpriority on its tid); on a
	 * busy machine the loop then wins the CPU over bulk work. Failure
	 * only costs latency, so it is ignored. */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice);
}

int store_db_fail(struct store_db *db, int rc, const char *doing)
{
	int prim = rc & 0xff;

	snprintf(db->errmsg, sizeof(db->errmsg), "database error while %s: %s",
		 doing, db->db ? sqlite3_errmsg(db->db) : "no database");
	if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
		return -EBUSY;
	if (prim == SQLITE_FULL ||
	    (prim == SQLITE_IOERR && db->db &&
	     sqlite3_system_errno(db->db) == ENOSPC))
		return -ENOSPC;
	if (prim == SQLITE_NOMEM)
		return -ENOMEM;
	return -EIO;
}

int store_db_exec(struct store_db *db, const char *sql, const char *doing)
{
	int rc = sqlite3_exec(db->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : store_db_fail(db, rc, doing);
}

int store_db_step(struct store_db *db, sqlite3_stmt *st, const char *doing)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : store_db_fail(db, rc, doing);
}

static int pragma_int(struct store_db *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_db_fail(db, rc, "reading a pragma");
	rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : store_db_fail(db, rc, "reading a pragma");
}

/* The statements that take a database of `version` to version 2. */
static int migrate_steps(struct store_db *db, int version)
{
	char what[64];

	if (version == 0)
		return store_db_exec(db, schema_create, "creating the schema");
	for (int v = version; v < 2; v++) {
		snprintf(what, sizeof(what), "upgrading the schema from "
					     "version %d",
			 v);
		if (store_db_exec(db, migrations[v], what) < 0)
			return -EIO;
		log_notice("database upgraded from schema version %d to %d",
			   v, v + 1);
	}
	return 0;
}

/* Version 2 to 3: incremental auto-vacuum, so pruned events give their
 * pages back. On failure (a full disk: VACUUM writes a copy) the file
 * stays at version 2, which this build runs as well (with the tables of
 * version 4, see store_migrate), and the next start tries again. */
static void store_switch_vacuum(struct store_db *db, bool quiet)
{
	if (!quiet)
		log_notice("switching the database to incremental vacuum (a "
			   "VACUUM, once; large databases take a while)");
	if (store_db_exec(db, "PRAGMA auto_vacuum = INCREMENTAL; VACUUM",
			  "switching to incremental vacuum") < 0 ||
	    store_db_exec(db, "PRAGMA user_version = 3",
			  "upgrading the schema") < 0) {
		log_warning("%s; pruned events leave free pages in the file "
			    "until the next start manages it",
			    db->errmsg);
		return;
	}
	if (!quiet)
		log_notice("database upgraded from schema version 2 to 3");
}

/*
 * Version 3 to 4 in one transaction. A file still at version 2 (its
 * VACUUM failed) gets the new table as well, and keeps its version so
 * that the next start tries the VACUUM again.
 */
static int store_migrate_v4(struct store_db *db, bool quiet)
{
	int64_t version;
	int r = pragma_int(db, "PRAGMA user_version", &version);

	if (r < 0 || version >= 4)
		return r;
	r = store_db_exec(db, "BEGIN IMMEDIATE", "upgrading the schema");
	if (r < 0)
		return r;
	if (store_db_exec(db, migrations[3], "upgrading the schema from "
					     "version 3") < 0 ||
	    (version == 3 && store_db_exec(db, "PRAGMA user_version = 4",
					   "upgrading the schema") < 0)) {
		sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
		return -EIO;
	}
	r = store_db_exec(db, "COMMIT", "upgrading the schema");
	if (r == 0 && version == 3 && !quiet)
		log_notice("database upgraded from schema version 3 to 4");
	return r;
}

static int store_migrate(struct store_db *db, char *err, size_t errsz)
{
	char sql[64];
	int64_t version;
	bool created;
	int target, r;

	r = pragma_int(db, "PRAGMA user_version", &version);
	if (r < 0)
		return r;
	created = version == 0;
	if (version > SCHEMA_VERSION || version < 0) {
		snprintf(err, errsz,
			 "the database has schema version %lld, newer than "
			 "this vmic-hostd knows (%d); run a newer vmic-hostd",
			 (long long)version, SCHEMA_VERSION);
		return -EPROTO;
	}
	if (version < 2) {
		/* A new file gets the tables of version 2, an old one
		 * reaches 2 here; both then take the step to 3. (WAL mode
		 * has written the header already, so even a new file needs
		 * the VACUUM to change auto_vacuum; empty, it is instant.) */
		target = 2;
		r = store_db_exec(db, "BEGIN IMMEDIATE", "upgrading the schema");
		if (r < 0)
			return r;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", target);
		if (migrate_steps(db, (int)version) < 0 ||
		    store_db_exec(db, sql, "upgrading the schema") < 0) {
			sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
			return -EIO;
		}
		r = store_db_exec(db, "COMMIT", "upgrading the schema");
		if (r < 0)
			return r;
		version = target;
	}
	if (version == 2)
		store_switch_vacuum(db, created);
	return store_migrate_v4(db, created);
}

static int prepare(struct store_db *db, sqlite3_stmt **st, const char *sql)
{
	int rc = sqlite3_prepare_v3(db->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
				    st, NULL);

	return rc == SQLITE_OK ? 0
			       : store_db_fail(db, rc, "preparing statements");
}

/* Newest first with a limit inside, oldest first outside: the reader
 * wants them in order. ?4 is 0 for "all". */
#define EV_COLUMNS                                                          \
	"id, time_us, vm, service, kind, from_state, to_state, message"
#define EV_SELECT(where)                                                    \
	"SELECT " EV_COLUMNS " FROM (SELECT " EV_COLUMNS " FROM events "    \
	"WHERE " where " AND time_us >= ?1 AND id > ?2 AND id <= ?3 "       \
	"ORDER BY id DESC LIMIT CASE WHEN ?4 > 0 THEN ?4 ELSE -1 END) "     \
	"ORDER BY id"

/* The first id of the newest ?4 + 1 matching events (OFFSET ?4). */
#define EV_START(where)                                                    \
	"SELECT id FROM events WHERE " where " AND time_us >= ?1 AND id > ?2 " \
	"AND id <= ?3 ORDER BY id DESC LIMIT 1 OFFSET ?4"
/* One page, oldest first, after the cursor ?2. */
#define EV_PAGE(where)                                                     \
	"SELECT " EV_COLUMNS " FROM events WHERE " where " AND time_us >= ?1 " \
	"AND id > ?2 AND id <= ?3 ORDER BY id LIMIT ?4"

static int store_prepare_writer(struct store_db *db)
{
	int r = 0;

	r |= prepare(db, &db->vm_insert,
		     "INSERT INTO vms (name, channel, power_off, created_us) "
		     "VALUES (?1, ?2, ?3, ?4)");
	r |= prepare(db, &db->vm_update,
		     "UPDATE vms SET channel = ?2, power_off = ?3 "
		     "WHERE name = ?1");
	r |= prepare(db, &db->vm_delete, "DELETE FROM vms WHERE name = ?1");
	r |= prepare(db, &db->svc_set,
		     "INSERT INTO vm_services (vm, service, enabled) "
		     "VALUES (?1, ?2, ?3) ON CONFLICT (vm, service) "
		     "DO UPDATE SET enabled = excluded.enabled");
	r |= prepare(db, &db->svc_delete,
		     "DELETE FROM vm_services WHERE vm = ?1");
	r |= prepare(db, &db->setting_set,
		     "INSERT INTO service_settings (vm, service, key, value) "
		     "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (vm, service, key) "
		     "DO UPDATE SET value = excluded.value");
	r |= prepare(db, &db->data_set,
		     "INSERT INTO service_data (vm, service, space, key, value) "
		     "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (vm, service, "
		     "space, key) DO UPDATE SET value = excluded.value");
	r |= prepare(db, &db->data_delete,
		     "DELETE FROM service_data WHERE vm = ?1 AND service = ?2 "
		     "AND space = ?3 AND key = ?4");
	r |= prepare(db, &db->ev_insert,
		     "INSERT INTO events (id, time_us, vm, service, kind, "
		     "from_state, to_state, message) "
		     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
	return r ? -EIO : 0;
}

static int store_prepare_reader(struct store_db *db)
{
	int r = 0;

	r |= prepare(db, &db->ev_select, EV_SELECT("1"));
	r |= prepare(db, &db->ev_select_vm, EV_SELECT("vm = ?5"));
	r |= prepare(db, &db->ev_start, EV_START("1"));
	r |= prepare(db, &db->ev_start_vm, EV_START("vm = ?5"));
	r |= prepare(db, &db->ev_page, EV_PAGE("1"));
	r |= prepare(db, &db->ev_page_vm, EV_PAGE("vm = ?5"));
	/* A service's rows in (space, key) order: from the first space, or
	 * after a cursor (a row value, which the primary key's order
	 * serves); one key, space by space. */
	r |= prepare(db, &db->data_first,
		     "SELECT space, key, value FROM service_data WHERE vm = ?1 "
		     "AND service = ?2 AND space >= ?3 AND space <= ?5 "
		     "ORDER BY space, key LIMIT ?6");
	r |= prepare(db, &db->data_after,
		     "SELECT space, key, value FROM service_data WHERE vm = ?1 "
		     "AND service = ?2 AND (space, key) > (?3, ?4) AND "
		     "space <= ?5 ORDER BY space, key LIMIT ?6");
	r |= prepare(db, &db->data_key,
		     "SELECT space, key, value FROM service_data WHERE vm = ?1 "
		     "AND service = ?2 AND space = ?3 AND key = ?4");
	return r ? -EIO : 0;
}

/*
 * The file and its -wal and -shm are 0640 whatever the umask, and so is
 * a file an older vmic-hostd created 0644. SQLite creates -wal and -shm
 * with the database's mode, so creating the database first is enough for
 * new files.
 */
static int store_fix_modes(const char *path)
{
	const char *suffix[] = { "-wal", "-shm" };
	char other[PATH_MAX];
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, DB_MODE);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, DB_MODE) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	close(fd);
	for (size_t i = 0; i < ARRAY_SIZE(suffix); i++) {
		snprintf(other, sizeof(other), "%s%s", path, suffix[i]);
		if (chmod(other, DB_MODE) < 0 && errno != ENOENT)
			return -errno;
	}
	return 0;
}

static int store_setup_writer(struct store_db *db, char *err, size_t errsz)
{
	int r;

	r = store_db_exec(db, "PRAGMA journal_mode = WAL", "enabling WAL");
	/* temp_store: statement journals in memory, not in files on a disk
	 * that may be full. */
	if (r == 0)
		r = store_db_exec(db,
				  "PRAGMA synchronous = FULL; "
				  "PRAGMA foreign_keys = ON; "
				  "PRAGMA temp_store = MEMORY; "
				  "PRAGMA journal_size_limit = " WAL_SIZE_LIMIT,
				  "setting pragmas");
	if (r == 0)
		r = store_migrate(db, err, errsz);
	else
		snprintf(err, errsz, "%s", db->errmsg);
	if (r == -EIO)
		snprintf(err, errsz, "%s", db->errmsg);
	if (r == 0) {
		r = store_prepare_writer(db);
		if (r < 0)
			snprintf(err, errsz, "%s", db->errmsg);
	}
	return r;
}

int store_db_open(const char *path, bool readonly, struct store_db **out,
		  char *err, size_t errsz)
{
	struct store_db *db = calloc(1, sizeof(*db));
	int flags = SQLITE_OPEN_NOMUTEX, r;

	*out = NULL;
	if (!db) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	db->readonly = readonly;
	flags |= readonly ? SQLITE_OPEN_READONLY
			  : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	if (!readonly && (r = store_fix_modes(path)) < 0) {
		snprintf(err, errsz, "cannot create %s: %s", path, strerror(-r));
		free(db);
		return -EIO;
	}
	if (sqlite3_open_v2(path, &db->db, flags, NULL) != SQLITE_OK) {
		snprintf(err, errsz, "cannot open %s: %s", path,
			 db->db ? sqlite3_errmsg(db->db) : "out of memory");
		store_db_close(db);
		return -EIO;
	}
	sqlite3_extended_result_codes(db->db, 1);
	/* Another program on the file (the sqlite3 CLI) holding a lock
	 * longer than this makes a write fail with -EBUSY; the writer
	 * retries commands for a while (store-writer.c). */
	sqlite3_busy_timeout(db->db, STORE_BUSY_MS);
	if (readonly) {
		r = store_prepare_reader(db);
		if (r < 0)
			snprintf(err, errsz, "%s", db->errmsg);
	} else {
		r = store_setup_writer(db, err, errsz);
	}
	if (r < 0) {
		store_db_close(db);
		return r;
	}
	*out = db;
	return 0;
}

void store_db_close(struct store_db *db)
{
	if (!db)
		return;
	sqlite3_finalize(db->vm_insert);
	sqlite3_finalize(db->vm_update);
	sqlite3_finalize(db->vm_delete);
	sqlite3_finalize(db->svc_set);
	sqlite3_finalize(db->svc_delete);
	sqlite3_finalize(db->setting_set);
	sqlite3_finalize(db->data_set);
	sqlite3_finalize(db->data_delete);
	sqlite3_finalize(db->ev_insert);
	sqlite3_finalize(db->ev_select);
	sqlite3_finalize(db->ev_select_vm);
	sqlite3_finalize(db->ev_start);
	sqlite3_finalize(db->ev_start_vm);
	sqlite3_finalize(db->ev_page);
	sqlite3_finalize(db->ev_page_vm);
	sqlite3_finalize(db->data_first);
	sqlite3_finalize(db->data_after);
	sqlite3_finalize(db->data_key);
	sqlite3_close(db->db);
	free(db);
}

int store_open(struct hostd *h)
{
	struct store *s = &h->store;
	char err[512];
	int r;

	snprintf(s->dir, sizeof(s->dir), "%s", h->cfg.state_dir);
	snprintf(s->path, sizeof(s->path), "%s/vmic.db", h->cfg.state_dir);
	r = store_db_open(s->path, false, &s->db, err, sizeof(err));
	if (r < 0) {
		log_error("%s", err);
		log_error("cannot use the database %s", s->path);
		return r;
	}
	r = store_reserve_make(s->dir);
	s->reserved = r == 0;
	if (r < 0)
		log_warning_errno(r, "cannot set aside %u MiB in %s for a full "
				     "disk; `vmic remove` and `disable` may "
				     "then fail",
				  STORE_RESERVE_BYTES >> 20, s->dir);
	return 0;
}

void store_close(struct hostd *h)
{
	store_readers_close(h);
	store_db_close(h->store.db);
	h->store.db = NULL;
}

static const char *column_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

/* Log a start-up read failure; -EIO. */
static int load_fail(struct store_db *db, int rc, const char *doing)
{
	store_db_fail(db, rc, doing);
	log_error("%s", db->errmsg);
	return -EIO;
}

/* Run a start-up query and hand each row to row(); -EIO (logged) when
 * SQLite fails, "doing" naming the step. */
static int load_rows(struct hostd *h, const char *sql, const char *doing,
		     void (*row)(struct hostd *h, sqlite3_stmt *st))
{
	struct store_db *db = h->store.db;
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return load_fail(db, rc, doing);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		row(h, st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : load_fail(db, rc, doing);
}

/* One row of vm_services: a stored service switch of a loaded VM. */
static void load_service_row(struct hostd *h, sqlite3_stmt *st)
{
	struct vm *vm = vm_find(h, column_text(st, 0));
	const struct vmic_service_desc *d =
		vmic_service_by_name(column_text(st, 1) ?: "");

	/* A service of a newer build: its setting waits for it. */
	if (!vm || !d)
		return;
	if (sqlite3_column_int(st, 2))
		vm->enabled_mask |= 1u << d->id;
	else
		vm->enabled_mask &= ~(1u << d->id);
}

/* One row of service_settings: a VM's own value of a service setting. */
static void load_setting_row(struct hostd *h, sqlite3_stmt *st)
{
	struct vm *vm = vm_find(h, column_text(st, 0));

	if (vm)
		settings_load(vm, column_text(st, 1) ?: "",
			      column_text(st, 2) ?: "",
			      column_text(st, 3) ?: "");
}

/* One row of vms into a registered struct vm; a bad row is skipped. */
static void load_vm_row(struct hostd *h, sqlite3_stmt *st)
{
	const char *name = column_text(st, 0), *channel = column_text(st, 1);
	const char *power = column_text(st, 2);
	char err[256];
	struct vm *vm;

	if (!name || vm_name_invalid(name)) {
		log_warning("database: skipping a VM with an invalid name");
		return;
	}
	vm = vm_new(h, name);
	if (!vm)
		return;
	if (vm_channel_parse(channel ?: "", &vm->channel, err, sizeof(err)) <
	    0) {
		log_warning("database: VM '%s' has an invalid channel (%s); "
			    "fix it with `vmic set %s --channel URI`",
			    name, err, name);
		vm->channel.kind = 0;
	}
	vmic_channel_format(&vm->channel, vm->channel_uri,
			    sizeof(vm->channel_uri));
	if (vm->channel.kind == 0)
		snprintf(vm->channel_uri, sizeof(vm->channel_uri), "%s",
			 channel ?: "");
	if (power && *power)
		vm->power_off = strdup(power);
	vm->created_us = sqlite3_column_int64(st, 3);
	if (vm_register(h, vm) < 0)
		vm_destroy(vm, DETACH_REMOVED);
}

/* The size of one VM's data in one space of a service, to its service. */
static void load_sizes_row(struct hostd *h, sqlite3_stmt *st)
{
	struct vm *vm = vm_find(h, column_text(st, 0));
	const struct vmic_service_desc *d =
		vmic_service_by_name(column_text(st, 1) ?: "");
	const struct host_service *s = d ? host_service_get(d->id) : NULL;
	int64_t space = sqlite3_column_int64(st, 2);

	/* A service of a newer build: its data waits for it. */
	if (!vm || !s || !s->data_sizes || space < 0 || space > UINT_MAX)
		return;
	s->data_sizes(vm, (unsigned)space,
		      (uint64_t)sqlite3_column_int64(st, 3),
		      (uint64_t)sqlite3_column_int64(st, 4));
}

int store_load_vms(struct hostd *h)
{
	if (load_rows(h,
		      "SELECT name, channel, power_off, created_us FROM vms "
		      "ORDER BY name",
		      "loading VMs", load_vm_row) < 0 ||
	    load_rows(h, "SELECT vm, service, enabled FROM vm_services",
		      "loading service settings", load_service_row) < 0 ||
	    load_rows(h,
		      "SELECT vm, service, key, value FROM service_settings",
		      "loading settings", load_setting_row) < 0)
		return -EIO;
	/* Sizes only: a service reads its rows when it needs them, so
	 * what the VMs stored costs the daemon no memory at start-up. */
	return load_rows(h,
			 "SELECT vm, service, space, COUNT(*), "
			 "SUM(LENGTH(CAST(key AS BLOB)) + "
			 "LENGTH(CAST(value AS BLOB))) FROM service_data "
			 "GROUP BY vm, service, space",
			 "summing the services' data", load_sizes_row);
}

int64_t store_events_max_id(struct hostd *h)
{
	struct store_db *db = h->store.db;
	int64_t id = 0;

	if (pragma_int(db, "SELECT COALESCE(MAX(id), 0) FROM events", &id) < 0)
		log_error("%s", db->errmsg);
	return id;
}
