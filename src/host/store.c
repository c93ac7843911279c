/* SPDX-License-Identifier: MIT */
/*
 * The SQLite state: VM registry, per-VM service switches and settings,
 * event log.
 *
 * WAL with synchronous=FULL: every registry change is its own committed
 * transaction before the control command replies, so a kill -9 right
 * after a reply loses nothing. Events arrive in batches from events.c,
 * one transaction (one fsync) per batch. The schema version lives in
 * PRAGMA user_version. Every failure is logged here, where SQLite's
 * message is known, and kept in store.errmsg for the `internal` reply.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/utf8.h"
#include "hostd.h"
#include "proto/services.h"

#define SCHEMA_VERSION 2

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

/* migrations[v] takes a database from version v to v + 1. */
static const char *const migrations[SCHEMA_VERSION] = {
	[1] = migrate_v1_v2,
};

/* Remember and log a failure; returns -EIO for `return`. */
static int store_fail(struct hostd *h, const char *doing)
{
	struct store *s = &h->store;

	snprintf(s->errmsg, sizeof(s->errmsg), "database error while %s: %s",
		 doing, s->db ? sqlite3_errmsg(s->db) : "no database");
	log_error("%s", s->errmsg);
	return -EIO;
}

static int exec_sql(struct hostd *h, const char *sql, const char *doing)
{
	if (sqlite3_exec(h->store.db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store_fail(h, doing);
	return 0;
}

static int pragma_int(struct hostd *h, const char *sql, int *out)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(h->store.db, sql, -1, &st, NULL) != SQLITE_OK)
		return store_fail(h, "reading the schema version");
	rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : store_fail(h, "reading a pragma");
}

/* The statements that take a database of `version` to the current one. */
static int migrate_steps(struct hostd *h, int version)
{
	char what[64];

	if (version == 0)
		return exec_sql(h, schema_create, "creating the schema");
	for (int v = version; v < SCHEMA_VERSION; v++) {
		snprintf(what, sizeof(what), "upgrading the schema from "
					     "version %d",
			 v);
		if (exec_sql(h, migrations[v], what) < 0)
			return -EIO;
		log_notice("database upgraded from schema version %d to %d",
			   v, v + 1);
	}
	return 0;
}

static int store_migrate(struct hostd *h)
{
	char sql[64];
	int version, r;

	r = pragma_int(h, "PRAGMA user_version", &version);
	if (r < 0)
		return r;
	if (version == SCHEMA_VERSION)
		return 0;
	if (version > SCHEMA_VERSION || version < 0) {
		snprintf(h->store.errmsg, sizeof(h->store.errmsg),
			 "the database has schema version %d, newer than "
			 "this vmic-hostd knows (%d); run a newer vmic-hostd",
			 version, SCHEMA_VERSION);
		log_error("%s", h->store.errmsg);
		return -EPROTO;
	}
	r = exec_sql(h, "BEGIN IMMEDIATE", "upgrading the schema");
	if (r < 0)
		return r;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
	if (migrate_steps(h, version) < 0 ||
	    exec_sql(h, sql, "upgrading the schema") < 0) {
		sqlite3_exec(h->store.db, "ROLLBACK", NULL, NULL, NULL);
		return -EIO;
	}
	return exec_sql(h, "COMMIT", "upgrading the schema");
}

static int prepare(struct hostd *h, sqlite3_stmt **st, const char *sql)
{
	if (sqlite3_prepare_v3(h->store.db, sql, -1, SQLITE_PREPARE_PERSISTENT,
			       st, NULL) != SQLITE_OK)
		return store_fail(h, "preparing statements");
	return 0;
}

static int store_prepare_all(struct hostd *h)
{
	struct store *s = &h->store;
	int r = 0;

	r |= prepare(h, &s->vm_insert,
		     "INSERT INTO vms (name, channel, power_off, created_us) "
		     "VALUES (?1, ?2, ?3, ?4)");
	r |= prepare(h, &s->vm_update,
		     "UPDATE vms SET channel = ?2, power_off = ?3 "
		     "WHERE name = ?1");
	r |= prepare(h, &s->vm_delete, "DELETE FROM vms WHERE name = ?1");
	r |= prepare(h, &s->svc_set,
		     "INSERT INTO vm_services (vm, service, enabled) "
		     "VALUES (?1, ?2, ?3) ON CONFLICT (vm, service) "
		     "DO UPDATE SET enabled = excluded.enabled");
	r |= prepare(h, &s->svc_delete,
		     "DELETE FROM vm_services WHERE vm = ?1");
	r |= prepare(h, &s->setting_set,
		     "INSERT INTO service_settings (vm, service, key, value) "
		     "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (vm, service, key) "
		     "DO UPDATE SET value = excluded.value");
	r |= prepare(h, &s->ev_insert,
		     "INSERT INTO events (id, time_us, vm, service, kind, "
		     "from_state, to_state, message) "
		     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
	/* Newest first with a limit, reversed by the caller. */
	r |= prepare(h, &s->ev_query,
		     "SELECT id, time_us, vm, service, kind, from_state, "
		     "to_state, message FROM events WHERE time_us >= ?1 "
		     "ORDER BY id DESC LIMIT ?2");
	r |= prepare(h, &s->ev_query_vm,
		     "SELECT id, time_us, vm, service, kind, from_state, "
		     "to_state, message FROM events WHERE vm = ?3 AND "
		     "time_us >= ?1 ORDER BY id DESC LIMIT ?2");
	r |= prepare(h, &s->ev_prune,
		     "DELETE FROM events WHERE id <= (SELECT id FROM events "
		     "ORDER BY id DESC LIMIT 1 OFFSET ?1)");
	return r ? -EIO : 0;
}

int store_open(struct hostd *h)
{
	struct store *s = &h->store;
	char path[sizeof(h->cfg.state_dir) + 16];
	int r;

	snprintf(path, sizeof(path), "%s/vmic.db", h->cfg.state_dir);
	if (sqlite3_open_v2(path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				    SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		log_error("cannot open the database %s: %s", path,
			  s->db ? sqlite3_errmsg(s->db) : "out of memory");
		return -EIO;
	}
	sqlite3_extended_result_codes(s->db, 1);
	/* A second process on the same file (sqlite3 CLI) may hold a lock
	 * for a moment; wait briefly instead of failing a command. */
	sqlite3_busy_timeout(s->db, 2000);
	r = exec_sql(h, "PRAGMA journal_mode = WAL", "enabling WAL");
	if (r == 0)
		r = exec_sql(h, "PRAGMA synchronous = FULL; "
				"PRAGMA foreign_keys = ON",
			     "setting pragmas");
	if (r == 0)
		r = store_migrate(h);
	if (r == 0)
		r = store_prepare_all(h);
	if (r < 0)
		log_error("cannot use the database %s", path);
	return r;
}

void store_close(struct hostd *h)
{
	struct store *s = &h->store;
	sqlite3_stmt **all[] = {
		&s->vm_insert, &s->vm_update, &s->vm_delete,
		&s->svc_set,   &s->svc_delete, &s->setting_set, &s->ev_insert,
		&s->ev_query,  &s->ev_query_vm, &s->ev_prune,
	};

	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		sqlite3_finalize(*all[i]);
		*all[i] = NULL;
	}
	if (s->db)
		sqlite3_close(s->db);
	s->db = NULL;
}

/* Run a prepared statement that returns no rows, then reset it. */
static int step_done(struct hostd *h, sqlite3_stmt *st, const char *doing)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return store_fail(h, doing);
	return 0;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static void bind_vm(sqlite3_stmt *st, const struct vm *vm)
{
	sqlite3_bind_text(st, 1, vm->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, vm->channel_uri, -1, SQLITE_TRANSIENT);
	bind_text_or_null(st, 3, vm->power_off);
}

static int service_row(struct hostd *h, const struct vm *vm,
		       const char *service, bool enabled)
{
	sqlite3_stmt *st = h->store.svc_set;

	sqlite3_bind_text(st, 1, vm->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, service, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, enabled);
	return step_done(h, st, "saving a service setting");
}

int store_vm_insert(struct hostd *h, const struct vm *vm)
{
	sqlite3_stmt *st = h->store.vm_insert;
	int r;

	r = exec_sql(h, "BEGIN IMMEDIATE", "adding a VM");
	if (r < 0)
		return r;
	bind_vm(st, vm);
	sqlite3_bind_int64(st, 4, vm->created_us);
	r = step_done(h, st, "adding a VM");
	for (size_t i = 0; r == 0 && i < vmic_service_count; i++)
		r = service_row(h, vm, vmic_services[i]->name,
				vm_service_enabled(vm, vmic_services[i]->id));
	if (r == 0)
		return exec_sql(h, "COMMIT", "adding a VM");
	sqlite3_exec(h->store.db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

int store_vm_update(struct hostd *h, const struct vm *vm)
{
	sqlite3_stmt *st = h->store.vm_update;

	bind_vm(st, vm);
	return step_done(h, st, "changing a VM");
}

int store_vm_delete(struct hostd *h, const char *name)
{
	int r;

	r = exec_sql(h, "BEGIN IMMEDIATE", "removing a VM");
	if (r < 0)
		return r;
	sqlite3_bind_text(h->store.svc_delete, 1, name, -1, SQLITE_TRANSIENT);
	r = step_done(h, h->store.svc_delete, "removing a VM");
	if (r == 0) {
		sqlite3_bind_text(h->store.vm_delete, 1, name, -1,
				  SQLITE_TRANSIENT);
		r = step_done(h, h->store.vm_delete, "removing a VM");
	}
	if (r == 0)
		return exec_sql(h, "COMMIT", "removing a VM");
	sqlite3_exec(h->store.db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

int store_service_set(struct hostd *h, const struct vm *vm, uint8_t service,
		      bool enabled)
{
	const struct vmic_service_desc *d = vmic_service_by_id(service);

	if (!d)
		return -EINVAL;
	return service_row(h, vm, d->name, enabled);
}

int store_settings_set(struct hostd *h, const struct vm *vm, uint8_t service,
		       const void *settings, uint32_t mask)
{
	const struct host_service *svc = host_service_get(service);
	sqlite3_stmt *st = h->store.setting_set;
	char value[1024];
	int r;

	if (!svc || !svc->settings)
		return -EINVAL;
	r = exec_sql(h, "BEGIN IMMEDIATE", "saving settings");
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < svc->settings->count; i++) {
		const struct vmic_conf_key *k = &svc->settings->keys[i];

		if (!(mask & (1u << i)))
			continue;
		vmic_conf_format(k, settings, value, sizeof(value));
		sqlite3_bind_text(st, 1, vm->name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, svc->desc->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, k->key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, value, -1, SQLITE_TRANSIENT);
		r = step_done(h, st, "saving settings");
	}
	if (r == 0)
		return exec_sql(h, "COMMIT", "saving settings");
	sqlite3_exec(h->store.db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/* Copy a text column, or NULL; the copy is sanitised like guest input. */
static const char *column_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

/* Apply the stored service switches to the VMs just loaded. */
static int store_load_services(struct hostd *h)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(h->store.db,
			       "SELECT vm, service, enabled FROM vm_services",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(h, "loading service settings");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct vm *vm = vm_find(h, column_text(st, 0));
		const struct vmic_service_desc *d =
			vmic_service_by_name(column_text(st, 1) ?: "");

		/* A service of a newer build: its setting waits for it. */
		if (!vm || !d)
			continue;
		if (sqlite3_column_int(st, 2))
			vm->enabled_mask |= 1u << d->id;
		else
			vm->enabled_mask &= ~(1u << d->id);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_fail(h, "loading service settings");
}

/* Apply each VM's own settings to the VMs just loaded. */
static int store_load_settings(struct hostd *h)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(h->store.db,
			       "SELECT vm, service, key, value FROM "
			       "service_settings",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(h, "loading settings");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct vm *vm = vm_find(h, column_text(st, 0));

		if (vm)
			settings_load(vm, column_text(st, 1) ?: "",
				      column_text(st, 2) ?: "",
				      column_text(st, 3) ?: "");
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_fail(h, "loading settings");
}

/* One row of vms into a registered struct vm; a bad row is skipped. */
static void store_load_vm_row(struct hostd *h, sqlite3_stmt *st)
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

int store_load_vms(struct hostd *h)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(h->store.db,
			       "SELECT name, channel, power_off, created_us "
			       "FROM vms ORDER BY name",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(h, "loading VMs");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		store_load_vm_row(h, st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_fail(h, "loading VMs");
	if (store_load_services(h) < 0)
		return -EIO;
	return store_load_settings(h);
}

int store_events_write(struct hostd *h, const struct event *first)
{
	sqlite3_stmt *st = h->store.ev_insert;
	int r;

	r = exec_sql(h, "BEGIN IMMEDIATE", "writing events");
	if (r < 0)
		return r;
	for (const struct event *e = first; e && r == 0; e = e->next) {
		sqlite3_bind_int64(st, 1, e->id);
		sqlite3_bind_int64(st, 2, e->time_us);
		bind_text_or_null(st, 3, e->vm);
		bind_text_or_null(st, 4, e->service);
		sqlite3_bind_text(st, 5, e->kind, -1, SQLITE_STATIC);
		bind_text_or_null(st, 6, e->from);
		bind_text_or_null(st, 7, e->to);
		sqlite3_bind_text(st, 8, e->message, -1, SQLITE_STATIC);
		r = step_done(h, st, "writing events");
	}
	if (r == 0)
		return exec_sql(h, "COMMIT", "writing events");
	sqlite3_exec(h->store.db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/* A text column as a JSON string (sanitised: the file may be edited). */
static json_t *column_json(sqlite3_stmt *st, int i)
{
	const char *s = column_text(st, i);
	char buf[4096];

	if (!s)
		return json_null();
	vmic_utf8_sanitize(buf, sizeof(buf), s, strlen(s));
	return json_string(buf);
}

static json_t *event_row_json(sqlite3_stmt *st)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_integer(sqlite3_column_int64(st, 0)));
	json_object_set_new(o, "time_us",
			    json_integer(sqlite3_column_int64(st, 1)));
	json_object_set_new(o, "vm", column_json(st, 2));
	json_object_set_new(o, "service", column_json(st, 3));
	json_object_set_new(o, "kind", column_json(st, 4));
	json_object_set_new(o, "from", column_json(st, 5));
	json_object_set_new(o, "to", column_json(st, 6));
	json_object_set_new(o, "message", column_json(st, 7));
	return o;
}

int store_events_query(struct hostd *h, const char *vm, int64_t since_us,
		       unsigned limit, json_t *arr)
{
	sqlite3_stmt *st = vm ? h->store.ev_query_vm : h->store.ev_query;
	json_t *newest_first = json_array();
	int rc;

	sqlite3_bind_int64(st, 1, since_us);
	sqlite3_bind_int64(st, 2, limit);
	if (vm)
		sqlite3_bind_text(st, 3, vm, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(newest_first, event_row_json(st));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	for (size_t i = json_array_size(newest_first); i > 0; i--)
		json_array_append(arr, json_array_get(newest_first, i - 1));
	json_decref(newest_first);
	return rc == SQLITE_DONE ? 0 : store_fail(h, "reading events");
}

int store_events_prune(struct hostd *h, unsigned keep)
{
	sqlite3_stmt *st = h->store.ev_prune;
	int r;

	sqlite3_bind_int64(st, 1, keep);
	r = step_done(h, st, "pruning old events");
	if (r == 0 && sqlite3_changes(h->store.db) > 0)
		log_debug("pruned %d old events (keeping %u)",
			  sqlite3_changes(h->store.db), keep);
	return r;
}

int64_t store_events_max_id(struct hostd *h)
{
	sqlite3_stmt *st;
	int64_t id = 0;

	if (sqlite3_prepare_v2(h->store.db, "SELECT MAX(id) FROM events", -1,
			       &st, NULL) != SQLITE_OK)
		return store_fail(h, "reading events");
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return id;
}
