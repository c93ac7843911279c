/* SPDX-License-Identifier: MIT */
/*
 * The event log's SQL: inserting batches, reading them back as JSON,
 * and keeping the table within its bounds (count, age, bytes).
 *
 * Pruning runs on the writer thread in small steps of its own
 * transactions, between the other jobs, and gives the freed pages back
 * with PRAGMA incremental_vacuum (the file is in auto_vacuum=INCREMENTAL
 * mode since schema version 3), so a table that was filled once does not
 * keep its size on disk.
 *
 * The size bound measures the events themselves, not the file: other
 * tables (a guest's KVP pools) may take any part of vmic.db, and must
 * not make the log delete itself. The writer keeps the events' size as
 * a running sum (measured once at start-up, added on insert, taken off
 * with every row a prune deletes), since SQLite's own per-table page
 * counts (dbstat) are not always built in and walk every page.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/utf8.h"
#include "hostd.h"
#include "store-internal.h"

#define PRUNE_STEP 1000

/*
 * What one event counts against [events] max-size: its text, the VM's
 * name twice (the row and the index on (vm, time_us)), plus
 * EVENT_OVERHEAD for what SQLite adds to each row: id and time, the
 * record header, cell pointers and the entries of both indexes. With
 * dbstat that is within a few per cent of the pages events of usual
 * length take; long ones (messages of 2 KiB) leave pages partly empty,
 * up to a quarter more. store_event_size (insert) and EVENT_SIZE_SQL
 * (start-up, prune) compute the same.
 */
#define EVENT_OVERHEAD 64
#define SQL_NUMBER_(n) #n
#define SQL_NUMBER(n) SQL_NUMBER_(n)
#define TEXT_BYTES(col) "IFNULL(LENGTH(CAST(" col " AS BLOB)), 0)"
#define EVENT_SIZE_SQL                                                 \
	"(" SQL_NUMBER(EVENT_OVERHEAD) " + 2 * " TEXT_BYTES("vm") " + " \
	TEXT_BYTES("service") " + " TEXT_BYTES("kind") " + "            \
	TEXT_BYTES("from_state") " + " TEXT_BYTES("to_state") " + "     \
	TEXT_BYTES("message") ")"

static uint64_t text_bytes(const char *s)
{
	return s ? strlen(s) : 0;
}

uint64_t store_events_size(const struct event *list)
{
	uint64_t n = 0;

	for (const struct event *e = list; e; e = e->next)
		n += EVENT_OVERHEAD + 2 * text_bytes(e->vm) +
		     text_bytes(e->service) + text_bytes(e->kind) +
		     text_bytes(e->from) + text_bytes(e->to) +
		     text_bytes(e->message);
	return n;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

int store_events_insert(struct store_db *db, const struct event *list)
{
	sqlite3_stmt *st = db->ev_insert;
	int r = 0;

	for (const struct event *e = list; e && r == 0; e = e->next) {
		sqlite3_bind_int64(st, 1, e->id);
		sqlite3_bind_int64(st, 2, e->time_us);
		bind_text_or_null(st, 3, e->vm);
		bind_text_or_null(st, 4, e->service);
		sqlite3_bind_text(st, 5, e->kind, -1, SQLITE_STATIC);
		bind_text_or_null(st, 6, e->from);
		bind_text_or_null(st, 7, e->to);
		sqlite3_bind_text(st, 8, e->message, -1, SQLITE_STATIC);
		r = store_db_step(db, st, "writing events");
	}
	return r;
}

/* One integer from a query without parameters. */
static int query_int(struct store_db *db, const char *sql, int64_t *out,
		     const char *doing)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_db_fail(db, rc, doing);
	rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : store_db_fail(db, rc, doing);
}

int store_events_measure(struct store_db *db, int64_t *rows,
			 uint64_t *bytes)
{
	int64_t size = 0;
	int r = query_int(db, "SELECT COUNT(*) FROM events", rows,
			  "counting events");

	if (r == 0)
		r = query_int(db, "SELECT IFNULL(SUM(" EVENT_SIZE_SQL "), 0) "
				  "FROM events",
			      &size, "measuring events");
	*bytes = r == 0 ? (uint64_t)MAX(size, 0) : 0;
	return r;
}

int store_db_used(struct store_db *db, uint64_t *bytes)
{
	int64_t pages, free_pages, size;
	int r;

	r = query_int(db, "PRAGMA page_count", &pages, "measuring");
	if (r == 0)
		r = query_int(db, "PRAGMA freelist_count", &free_pages,
			      "measuring");
	if (r == 0)
		r = query_int(db, "PRAGMA page_size", &size, "measuring");
	if (r == 0)
		*bytes = (uint64_t)(pages - free_pages) * (uint64_t)size;
	return r;
}

/* Delete up to n of the events matching `where` (oldest first); count
 * them and their size. */
static int delete_oldest(struct store_db *db, const char *where,
			 int64_t cutoff_us, int64_t n, int64_t *deleted,
			 uint64_t *bytes)
{
	char sql[1024];
	sqlite3_stmt *st;
	int rc;

	snprintf(sql, sizeof(sql),
		 "DELETE FROM events WHERE id IN (SELECT id FROM events "
		 "WHERE %s ORDER BY id LIMIT ?2) RETURNING " EVENT_SIZE_SQL,
		 where);
	rc = sqlite3_prepare_v2(db->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_db_fail(db, rc, "pruning events");
	sqlite3_bind_int64(st, 1, cutoff_us);
	sqlite3_bind_int64(st, 2, n);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*bytes += (uint64_t)MAX(sqlite3_column_int64(st, 0), 0);
		(*deleted)++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_db_fail(db, rc, "pruning events");
	return 0;
}

/* How many of the oldest to delete for the count and size bounds. */
static int64_t prune_wanted(const struct store_limits *l,
			    struct store_prune *p)
{
	int64_t want = 0;

	if (l->keep && (uint64_t)p->rows > l->keep)
		p->trimming = true;
	if (p->trimming) {
		int64_t low = (int64_t)(l->keep - l->keep / 100);

		if (p->rows > low)
			want = p->rows - low;
		else
			p->trimming = false;
	}
	if (l->max_size && p->bytes > l->max_size)
		p->shrinking = true;
	if (p->shrinking) {
		if (p->bytes > l->max_size / 10 * 9 && p->rows > 0)
			want = PRUNE_STEP;
		else
			p->shrinking = false;
	}
	return MIN(want, (int64_t)PRUNE_STEP);
}

int store_events_prune_step(struct store_db *db, const struct store_limits *l,
			    struct store_prune *p)
{
	int64_t cutoff = INT64_MIN, oldest = 0, n, deleted = 0;
	uint64_t bytes = 0;
	int r;

	r = store_db_used(db, &p->used);
	if (r == 0 && l->max_age_s)
		r = query_int(db, "SELECT COALESCE(MIN(time_us), 0) FROM events",
			      &oldest, "pruning events");
	if (r < 0)
		return r;
	if (l->max_age_s && p->rows > 0)
		cutoff = vmic_realtime_us() - (int64_t)l->max_age_s * 1000000;
	n = prune_wanted(l, p);
	if (n == 0 && oldest >= cutoff)
		return 0;
	r = store_db_exec(db, "BEGIN IMMEDIATE", "pruning events");
	if (r == 0 && n > 0)
		r = delete_oldest(db, "1", 0, n, &deleted, &bytes);
	if (r == 0 && oldest < cutoff && deleted < PRUNE_STEP)
		r = delete_oldest(db, "time_us < ?1", cutoff,
				  PRUNE_STEP - deleted, &deleted, &bytes);
	/* The pages the rows held go back to the file system. */
	if (r == 0)
		r = store_db_exec(db, "PRAGMA incremental_vacuum",
				  "pruning events");
	if (r == 0)
		r = store_db_exec(db, "COMMIT", "pruning events");
	if (r < 0) {
		sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	p->rows -= deleted;
	p->deleted += (uint64_t)deleted;
	/* Rows another program added (the sqlite3 shell) were not counted
	 * in; an empty table holds nothing either way. */
	p->bytes = p->rows > 0 && p->bytes > bytes ? p->bytes - bytes : 0;
	/* The file itself shrinks when the WAL is written back; do that now
	 * (PASSIVE: never waits for a reader) rather than at the next
	 * automatic checkpoint. */
	sqlite3_wal_checkpoint_v2(db->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
				  NULL, NULL);
	r = store_db_used(db, &p->used);
	if (r < 0)
		return r;
	/* More to do while a bound is still exceeded (and rows remain). */
	return deleted > 0 && (prune_wanted(l, p) > 0 || deleted == PRUNE_STEP)
		       ? 1
		       : 0;
}

int events_read_append(struct events_read *r, const char *s, size_t n)
{
	if (r->len + n + 1 > r->cap) {
		size_t cap = MAX(r->cap * 2, r->len + n + 4096);
		char *t = realloc(r->text, cap);

		if (!t)
			return -ENOMEM;
		r->text = t;
		r->cap = cap;
	}
	memcpy(r->text + r->len, s, n);
	r->len += n;
	r->text[r->len] = '\0';
	return 0;
}

/* A text column as a JSON string (sanitised: the file may be edited). */
static json_t *column_json(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);
	char buf[4096];

	if (!s)
		return json_null();
	vmic_utf8_sanitize(buf, sizeof(buf), s, strlen(s));
	return json_string(buf);
}

/* Append one row as `{...},` to r->text. */
static int append_row(struct events_read *r, sqlite3_stmt *st)
{
	json_t *o = json_object();
	char buf[16384];
	size_t n;
	int res = 0;

	json_object_set_new(o, "id", json_integer(sqlite3_column_int64(st, 0)));
	json_object_set_new(o, "time_us",
			    json_integer(sqlite3_column_int64(st, 1)));
	json_object_set_new(o, "vm", column_json(st, 2));
	json_object_set_new(o, "service", column_json(st, 3));
	json_object_set_new(o, "kind", column_json(st, 4));
	json_object_set_new(o, "from", column_json(st, 5));
	json_object_set_new(o, "to", column_json(st, 6));
	json_object_set_new(o, "message", column_json(st, 7));
	n = json_dumpb(o, buf, sizeof(buf) - 1, JSON_COMPACT);
	json_decref(o);
	if (n == 0 || n >= sizeof(buf) - 1)
		return 0; /* cannot happen with sanitised columns; skip */
	buf[n++] = ',';
	res = events_read_append(r, buf, n);
	if (res == 0)
		r->count++;
	return res;
}

/* Bind what every event query shares; the VM when one is named. */
static void bind_read(sqlite3_stmt *st, const struct events_read *r,
		      int64_t n)
{
	sqlite3_bind_int64(st, 1, r->since_us);
	sqlite3_bind_int64(st, 2, r->after_id);
	sqlite3_bind_int64(st, 3, r->upto_id);
	sqlite3_bind_int64(st, 4, n);
	if (r->vm[0])
		sqlite3_bind_text(st, 5, r->vm, -1, SQLITE_STATIC);
}

/* Where the newest `limit` events begin: after_id moves just before. */
static int select_window(struct store_db *db, struct events_read *r)
{
	sqlite3_stmt *st = r->vm[0] ? db->ev_start_vm : db->ev_start;
	int rc;

	bind_read(st, r, (int64_t)r->limit - 1);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r->after_id = sqlite3_column_int64(st, 0) - 1;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	r->windowed = true;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_db_fail(db, rc, "reading events");
	return 0;
}

/* One page of a paged read (r->page rows at most). */
static int select_page(struct store_db *db, struct events_read *r)
{
	sqlite3_stmt *st = r->vm[0] ? db->ev_page_vm : db->ev_page;
	int rc = SQLITE_DONE, res = 0;
	size_t before = r->count;

	if (r->limit && !r->windowed && (res = select_window(db, r)) < 0)
		return res;
	bind_read(st, r, r->page);
	while (res == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		r->after_id = sqlite3_column_int64(st, 0);
		res = append_row(r, st);
	}
	if (res == 0 && rc != SQLITE_DONE)
		res = store_db_fail(db, rc, "reading events");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	r->more = res == 0 && r->count - before == r->page;
	return res;
}

int store_events_select(struct store_db *db, struct events_read *r)
{
	sqlite3_stmt *st = r->vm[0] ? db->ev_select_vm : db->ev_select;
	int rc = SQLITE_DONE, res = 0;

	if (r->page)
		return select_page(db, r);

	sqlite3_bind_int64(st, 1, r->since_us);
	sqlite3_bind_int64(st, 2, r->after_id);
	sqlite3_bind_int64(st, 3, r->upto_id);
	sqlite3_bind_int64(st, 4, r->limit);
	if (r->vm[0])
		sqlite3_bind_text(st, 5, r->vm, -1, SQLITE_STATIC);
	while (res == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		res = append_row(r, st);
	if (res == 0 && rc != SQLITE_DONE)
		res = store_db_fail(db, rc, "reading events");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return res;
}
