/* SPDX-License-Identifier: MIT */
/*
 * Reads of the services' own data (service_data: vm, service, space,
 * key -> value), on a read-only connection on the thread pool
 * (store-read.c). The rows come in (space, key) order, which is the
 * primary key's: a page after a cursor is a search of the index, never
 * a scan from the start, so reading a pool of 100,000 records page by
 * page costs the same per page throughout. One key is looked up space by
 * space (a point lookup each), not by scanning the spaces.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hostd.h"
#include "proto/services.h"
#include "store-internal.h"

/* Bind what every data query shares: the VM and the service. */
static int bind_owner(sqlite3_stmt *st, const struct data_read *d)
{
	const struct vmic_service_desc *s = vmic_service_by_id(d->service);

	if (!s)
		return -EINVAL;
	sqlite3_bind_text(st, 1, d->vm, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, s->name, -1, SQLITE_STATIC);
	return 0;
}

/* Hand the rows of st to d->row; 1 when it stopped early, 0 at the end,
 * -errno (SQLite's failure in db->errmsg, or the row's). */
static int run(struct store_db *db, sqlite3_stmt *st, struct data_read *d)
{
	int rc = SQLITE_DONE, r = 0;

	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t space = sqlite3_column_int64(st, 0);
		const char *key = (const char *)sqlite3_column_text(st, 1);
		const char *value = (const char *)sqlite3_column_text(st, 2);

		/* Not written by this daemon (the file was edited): skip. */
		if (space < 0 || space > UINT32_MAX || !key || !value)
			continue;
		d->count++;
		r = d->row(d->ud, (unsigned)space, key,
			   (size_t)sqlite3_column_bytes(st, 1), value,
			   (size_t)sqlite3_column_bytes(st, 2));
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_fail(db, rc, "reading a service's data");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static int select_key(struct store_db *db, struct data_read *d)
{
	sqlite3_stmt *st = db->data_key;
	int r = 0;

	for (unsigned sp = d->space_min; r == 0 && d->count == 0 &&
					 sp <= d->space_max;
	     sp++) {
		if (bind_owner(st, d) < 0)
			return -EINVAL;
		sqlite3_bind_int64(st, 3, sp);
		sqlite3_bind_text(st, 4, d->key, (int)d->klen, SQLITE_STATIC);
		r = run(db, st, d);
	}
	return r < 0 ? r : 0;
}

static int select_rows(struct store_db *db, struct data_read *d)
{
	sqlite3_stmt *st = d->after ? db->data_after : db->data_first;
	int r;

	if (bind_owner(st, d) < 0)
		return -EINVAL;
	if (d->after) {
		sqlite3_bind_int64(st, 3, d->after_space);
		sqlite3_bind_text(st, 4, d->after_key, (int)d->after_klen,
				  SQLITE_STATIC);
	} else {
		sqlite3_bind_int64(st, 3, d->space_min);
	}
	sqlite3_bind_int64(st, 5, d->space_max);
	sqlite3_bind_int64(st, 6, d->limit ? (int64_t)d->limit : -1);
	r = run(db, st, d);
	if (r < 0)
		return r;
	d->more = r == 1 || (d->limit && d->count == d->limit);
	return 0;
}

void store_data_select(struct store_db *db, struct data_read *d)
{
	db->errmsg[0] = '\0';
	d->err = d->key ? select_key(db, d) : select_rows(db, d);
	if (d->err == 0)
		return;
	if (db->errmsg[0])
		snprintf(d->errmsg, sizeof(d->errmsg), "%s", db->errmsg);
	else if (!d->errmsg[0])
		snprintf(d->errmsg, sizeof(d->errmsg),
			 "reading a service's data: %s", strerror(-d->err));
}
