/* SPDX-License-Identifier: MIT */
/*
 * Reads off the loop: of the event log (a query of 100,000 events takes
 * a good part of a second to read and serialise, which on the loop would
 * delay every VM's heartbeat by as much), and of the services' data (a
 * VM's KVP pools, loaded when its session comes up, or read for
 * `kvp-get` and `kvp-list` while they are not in memory).
 *
 * Each read runs on libuv's thread pool (uv_queue_work) with a read-only
 * connection; WAL lets it read while the writer writes. At most
 * READERS_MAX run at once, each with its own connection, kept open for
 * the next read; further reads wait in order on the loop, so memory for
 * results stays bounded (each at most the command's limit of events).
 * The result is JSON text, built in the worker, that the loop only sends.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "hostd.h"
#include "store-internal.h"

#define READERS_MAX 2
#define READER_NICE 10

/* One read: of events (r) or of a service's data (d). */
struct read_job {
	uv_work_t work;
	struct read_job *next;
	struct store_readers *rd;
	struct events_read *r;
	events_read_fn done;
	struct data_read *d;
	data_read_fn data_done;
	void *ud;
	int *err;     /* the result of either */
	char *errmsg; /* READ_ERRMSG bytes */
};

#define READ_ERRMSG sizeof(((struct events_read *)0)->errmsg)

struct store_readers {
	struct hostd *h;
	char path[sizeof(((struct store *)0)->path)];
	uv_mutex_t lock; /* idle connections, taken by pool threads */
	struct store_db *idle[READERS_MAX];
	unsigned nidle;
	/* the loop's */
	unsigned running;
	struct read_job *waiting, *waiting_tail;
};

/* Pool thread: a connection of our own for this read. */
static struct store_db *reader_take(struct store_readers *rd,
				    struct read_job *j)
{
	struct store_db *db = NULL;

	uv_mutex_lock(&rd->lock);
	if (rd->nidle > 0)
		db = rd->idle[--rd->nidle];
	uv_mutex_unlock(&rd->lock);
	if (!db) {
		*j->err = store_db_open(rd->path, true, &db, j->errmsg,
					READ_ERRMSG);
		if (*j->err < 0)
			return NULL;
	}
	return db;
}

static void reader_give_back(struct store_readers *rd, struct store_db *db)
{
	uv_mutex_lock(&rd->lock);
	if (rd->nidle < READERS_MAX) {
		rd->idle[rd->nidle++] = db;
		db = NULL;
	}
	uv_mutex_unlock(&rd->lock);
	store_db_close(db);
}

static void on_read_work(uv_work_t *work)
{
	struct read_job *j = work->data;
	struct store_db *db;

	/* Serialising 100,000 rows is bulk work: it yields to the loop. The
	 * pool threads are libuv's, shared; none of its other users in
	 * vmic-hostd is in a hurry either. */
	store_thread_background(READER_NICE);
	db = reader_take(j->rd, j);

	if (!db)
		return;
	if (j->d) {
		store_data_select(db, j->d); /* sets its err, errmsg */
	} else {
		*j->err = store_events_select(db, j->r);
		if (*j->err < 0)
			snprintf(j->errmsg, READ_ERRMSG, "%s", db->errmsg);
	}
	reader_give_back(j->rd, db);
}

static void read_start(struct read_job *j);

static void on_read_done(uv_work_t *work, int status)
{
	struct read_job *j = work->data;
	struct store_readers *rd = j->rd;

	if (status < 0 && *j->err == 0) {
		*j->err = -ECANCELED;
		snprintf(j->errmsg, READ_ERRMSG, "the read was cancelled");
	}
	if (*j->err < 0)
		log_error("%s", j->errmsg);
	rd->running--;
	if (j->r)
		j->done(rd->h, j->r, j->ud);
	else
		j->data_done(rd->h, j->d, j->ud);
	free(j);
	if (rd->waiting && rd->running < READERS_MAX) {
		struct read_job *next = rd->waiting;

		rd->waiting = next->next;
		if (!rd->waiting)
			rd->waiting_tail = NULL;
		read_start(next);
	}
}

static void read_start(struct read_job *j)
{
	struct store_readers *rd = j->rd;
	int r;

	j->work.data = j;
	rd->running++;
	r = uv_queue_work(rd->h->loop, &j->work, on_read_work, on_read_done);
	if (r < 0) {
		*j->err = -EIO;
		snprintf(j->errmsg, READ_ERRMSG, "cannot start a read: %s",
			 uv_strerror(r));
		on_read_done(&j->work, 0);
	}
}

static struct store_readers *readers_get(struct hostd *h)
{
	struct store_readers *rd = h->store.readers;

	if (rd)
		return rd;
	rd = calloc(1, sizeof(*rd));
	if (!rd)
		return NULL;
	if (uv_mutex_init(&rd->lock) < 0) {
		free(rd);
		return NULL;
	}
	rd->h = h;
	snprintf(rd->path, sizeof(rd->path), "%s", h->store.path);
	h->store.readers = rd;
	return rd;
}

/* Start j now, or once a reader is free (in order). */
static void read_submit(struct store_readers *rd, struct read_job *j)
{
	j->rd = rd;
	if (rd->running < READERS_MAX) {
		read_start(j);
		return;
	}
	if (rd->waiting_tail)
		rd->waiting_tail->next = j;
	else
		rd->waiting = j;
	rd->waiting_tail = j;
}

void store_read_events(struct hostd *h, struct events_read *r,
		       events_read_fn done, void *ud)
{
	struct store_readers *rd = readers_get(h);
	struct read_job *j = rd ? calloc(1, sizeof(*j)) : NULL;

	if (!j) {
		r->err = -ENOMEM;
		snprintf(r->errmsg, sizeof(r->errmsg), "out of memory");
		done(h, r, ud);
		return;
	}
	j->r = r;
	j->done = done;
	j->ud = ud;
	j->err = &r->err;
	j->errmsg = r->errmsg;
	read_submit(rd, j);
}

void store_read_data(struct hostd *h, struct data_read *d,
		     data_read_fn done, void *ud)
{
	struct store_readers *rd = readers_get(h);
	struct read_job *j = rd ? calloc(1, sizeof(*j)) : NULL;

	d->err = 0;
	d->errmsg[0] = '\0';
	d->count = 0;
	d->more = false;
	if (!j) {
		d->err = -ENOMEM;
		snprintf(d->errmsg, sizeof(d->errmsg), "out of memory");
		done(h, d, ud);
		return;
	}
	j->d = d;
	j->data_done = done;
	j->ud = ud;
	j->err = &d->err;
	j->errmsg = d->errmsg;
	read_submit(rd, j);
}

/* At exit, after the loop ended (no read runs). */
void store_readers_close(struct hostd *h)
{
	struct store_readers *rd = h->store.readers;

	if (!rd)
		return;
	while (rd->nidle > 0)
		store_db_close(rd->idle[--rd->nidle]);
	uv_mutex_destroy(&rd->lock);
	free(rd);
	h->store.readers = NULL;
}
