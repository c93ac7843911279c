/* SPDX-License-Identifier: MIT */
/*
 * The writer: one thread that owns the read-write SQLite connection and
 * runs every write, so that no fsync, lock wait or prune ever runs on
 * the loop.
 *
 * The loop hands it transactions (store_commit) through a FIFO queue
 * under a mutex; the thread commits them one by one, in order, and puts
 * each on a done list, and a uv_async_t wakes the loop, which calls the
 * transaction's callback there. A control command replies from that
 * callback, so its reply always follows its commit; one VM's changes
 * commit in the order the loop made them. Between transactions, and when
 * idle, the thread keeps the event log within its bounds, one small step
 * at a time (store-events.c).
 *
 * Another program holding the database (the sqlite3 CLI in a
 * transaction) makes a write wait STORE_BUSY_MS, then fail with busy: a
 * command is tried again for up to LOCKED_MAX_MS, then fails with a
 * sentence saying so; a batch of events goes back to events.c, which
 * tries again later.
 *
 * A full disk (SQLITE_FULL): the thread removes the reserve file
 * (store-space.c) and tries a command again once, so that `remove` and
 * `disable` still commit; from then on batches of events are dropped
 * (counted) without touching the disk, until a check finds room again
 * and the reserve has been allocated anew.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "hostd.h"
#include "store-internal.h"

#define LOCKED_MAX_MS 5000
/* Idle, the thread wakes this often to apply max-age and check the
 * disk; while the disk is full, more often. */
#define IDLE_CHECK_MS 60000
#define FULL_CHECK_MS 1000
/* While busy, a prune step at least after this many transactions. */
#define PRUNE_EVERY 8
/* Below the loop's CPU priority: mostly it waits for fsync anyway. */
#define WRITER_NICE 5

struct writer_stats {
	bool disk_full;
	uint64_t rows, bytes, used, pruned, dropped;
};

struct store_writer {
	struct hostd *h;
	uv_thread_t thread;
	uv_mutex_t lock;
	uv_cond_t cond;
	uv_async_t async;
	/* under lock */
	struct store_txn *queue, *queue_tail;
	struct store_txn *done, *done_tail;
	struct store_limits limits;
	struct writer_stats stats;
	bool quit;
	bool maint_due; /* more pruning to do, or new limits */
	/* the thread's own */
	struct store_db *db;
	char dir[256];
	struct store_prune prune;
	bool full;
	bool reserved; /* the reserve file is there */
};

static void writer_limits(struct store_limits *l, const struct hostd_config *c)
{
	l->keep = c->events_keep;
	l->max_size = c->events_max_size;
	l->max_age_s = c->events_max_age_s;
}

/* ---- the thread ---- */

static void writer_publish_stats(struct store_writer *w)
{
	uv_mutex_lock(&w->lock);
	w->stats.disk_full = w->full;
	w->stats.rows = (uint64_t)MAX(w->prune.rows, 0);
	w->stats.bytes = w->prune.bytes;
	w->stats.used = w->prune.used;
	w->stats.pruned = w->prune.deleted;
	uv_mutex_unlock(&w->lock);
}

/* The disk is full: stop storing events; for a command, give the
 * reserve back (true when there was one to give). */
static bool writer_enter_full(struct store_writer *w, bool release)
{
	bool released = release && store_reserve_release(w->dir);

	if (released)
		w->reserved = false;

	if (!w->full)
		log_warning("the disk of %s is full: events are no longer "
			    "stored until it has room again%s",
			    w->dir,
			    released ? " (the space set aside for commands "
				       "is in use now)"
				     : "");
	w->full = true;
	writer_publish_stats(w);
	return released;
}

/* Full, or without a reserve: has the disk room for the reserve and as
 * much again? */
static void writer_check_space(struct store_writer *w)
{
	uint64_t dropped;

	if (store_space_free(w->dir) < 2ull * STORE_RESERVE_BYTES ||
	    store_reserve_make(w->dir) < 0)
		return;
	w->reserved = true;
	if (!w->full)
		return;
	w->full = false;
	uv_mutex_lock(&w->lock);
	dropped = w->stats.dropped;
	uv_mutex_unlock(&w->lock);
	log_notice("the disk of %s has room again: events are stored again "
		   "(%llu were dropped since start)",
		   w->dir, (unsigned long long)dropped);
	writer_publish_stats(w);
}

static void writer_drop(struct store_writer *w, struct store_txn *t)
{
	store_txn_set_result(t, -ENOSPC, "the disk of the state directory is "
					 "full");
	uv_mutex_lock(&w->lock);
	w->stats.dropped += store_txn_event_count(t);
	uv_mutex_unlock(&w->lock);
}

static void writer_run(struct store_writer *w, struct store_txn *t)
{
	uint64_t start = vmic_mono_us();
	bool command = store_txn_is_command(t), retried_full = false;
	int r;

	if (!command && w->full && store_txn_event_count(t) > 0) {
		writer_drop(w, t);
		return;
	}
	for (;;) {
		r = store_txn_run(w->db, t);
		if (r == -EBUSY && command &&
		    vmic_mono_us() - start < LOCKED_MAX_MS * 1000ull)
			continue; /* each try waited STORE_BUSY_MS */
		if (r == -ENOSPC && command && !retried_full &&
		    writer_enter_full(w, true)) {
			retried_full = true;
			continue;
		}
		break;
	}
	if (r == 0) {
		w->prune.rows += (int64_t)store_txn_event_count(t);
		w->prune.bytes += store_events_size(t->events);
	} else if (r == -EBUSY) {
		store_txn_set_result(t, r,
				     "the database is locked by another "
				     "program (the sqlite3 shell?); try again "
				     "once it is done");
	} else if (r == -ENOSPC) {
		writer_enter_full(w, false);
		if (!command)
			writer_drop(w, t);
		else
			store_txn_set_result(t, r,
					     "the disk of the state directory "
					     "is full; free some space");
	}
}

/* Between transactions: one prune step, or a look at the disk. True
 * when there is more to do at once. */
static bool writer_maintain(struct store_writer *w,
			    const struct store_limits *l)
{
	int r;

	if (w->full || !w->reserved)
		writer_check_space(w);
	if (w->full)
		return false;
	r = store_events_prune_step(w->db, l, &w->prune);
	if (r == -ENOSPC)
		writer_enter_full(w, false);
	else if (r < 0 && r != -EBUSY)
		log_error("%s", w->db->errmsg);
	writer_publish_stats(w);
	return r > 0;
}

static void writer_post(struct store_writer *w, struct store_txn *t)
{
	uv_mutex_lock(&w->lock);
	if (w->done_tail)
		w->done_tail->next = t;
	else
		w->done = t;
	w->done_tail = t;
	uv_mutex_unlock(&w->lock);
	uv_async_send(&w->async);
}

/* Wait for a transaction, a wake-up or the next check; the lock is held. */
static struct store_txn *writer_wait(struct store_writer *w, bool *maintain)
{
	struct store_txn *t;
	uint64_t timeout = (w->full || !w->reserved ? FULL_CHECK_MS
						    : IDLE_CHECK_MS) *
			   1000000ull;

	while (!w->queue && !w->quit && !w->maint_due)
		if (uv_cond_timedwait(&w->cond, &w->lock, timeout) ==
		    UV_ETIMEDOUT)
			w->maint_due = true;
	t = w->queue;
	if (t) {
		w->queue = t->next;
		if (!w->queue)
			w->queue_tail = NULL;
		t->next = NULL;
	}
	*maintain = w->maint_due || !w->queue;
	w->maint_due = false;
	return t;
}

static void writer_main(void *arg)
{
	struct store_writer *w = arg;
	struct store_limits limits;
	unsigned since_maint = 0;
	bool maintain;

	store_thread_background(WRITER_NICE);
	if (store_events_measure(w->db, &w->prune.rows, &w->prune.bytes) < 0)
		log_error("%s", w->db->errmsg);
	writer_publish_stats(w);
	for (;;) {
		struct store_txn *t;

		uv_mutex_lock(&w->lock);
		t = writer_wait(w, &maintain);
		limits = w->limits;
		if (!t && w->quit) {
			uv_mutex_unlock(&w->lock);
			break;
		}
		uv_mutex_unlock(&w->lock);
		if (t) {
			writer_run(w, t);
			writer_post(w, t);
			since_maint++;
		}
		if (!maintain && since_maint < PRUNE_EVERY)
			continue;
		since_maint = 0;
		if (writer_maintain(w, &limits)) {
			uv_mutex_lock(&w->lock);
			w->maint_due = true;
			uv_mutex_unlock(&w->lock);
		}
	}
}

/* ---- the loop's side ---- */

static void writer_take_done(struct store_writer *w)
{
	struct store_txn *list;

	uv_mutex_lock(&w->lock);
	list = w->done;
	w->done = w->done_tail = NULL;
	uv_mutex_unlock(&w->lock);
	while (list) {
		struct store_txn *t = list;

		list = t->next;
		t->next = NULL;
		if (t->done)
			t->done(w->h, t, t->ud);
		store_txn_free(t);
	}
}

static void on_writer_async(uv_async_t *a)
{
	writer_take_done(a->data);
}

int store_start(struct hostd *h)
{
	struct store_writer *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->h = h;
	w->db = h->store.db;
	w->reserved = h->store.reserved;
	snprintf(w->dir, sizeof(w->dir), "%s", h->store.dir);
	writer_limits(&w->limits, &h->cfg);
	w->maint_due = true; /* prune what start-up found */
	if (uv_mutex_init(&w->lock) < 0) {
		free(w);
		return -ENOMEM;
	}
	if (uv_cond_init(&w->cond) < 0) {
		uv_mutex_destroy(&w->lock);
		free(w);
		return -ENOMEM;
	}
	uv_async_init(h->loop, &w->async, on_writer_async);
	w->async.data = w;
	/* The writer never keeps the loop alive: at exit, store_stop
	 * drains it after the loop has ended. */
	uv_unref((uv_handle_t *)&w->async);
	r = uv_thread_create(&w->thread, writer_main, w);
	if (r < 0) {
		log_error("cannot start the database writer: %s",
			  uv_strerror(r));
		uv_close((uv_handle_t *)&w->async, NULL);
		uv_cond_destroy(&w->cond);
		uv_mutex_destroy(&w->lock);
		free(w);
		return r;
	}
	h->store.writer = w;
	return 0;
}

void store_commit(struct hostd *h, struct store_txn *t, store_txn_done_fn done,
		  void *ud)
{
	struct store_writer *w = h->store.writer;

	t->done = done;
	t->ud = ud;
	t->next = NULL;
	if (!w) {
		/* Start-up failed or the daemon is past its end. */
		store_txn_set_result(t, -EIO, "the database is closed");
		if (done)
			done(h, t, ud);
		store_txn_free(t);
		return;
	}
	uv_mutex_lock(&w->lock);
	if (w->queue_tail)
		w->queue_tail->next = t;
	else
		w->queue = t;
	w->queue_tail = t;
	uv_cond_signal(&w->cond);
	uv_mutex_unlock(&w->lock);
}

void store_set_limits(struct hostd *h)
{
	struct store_writer *w = h->store.writer;

	if (!w)
		return;
	uv_mutex_lock(&w->lock);
	writer_limits(&w->limits, &h->cfg);
	w->maint_due = true;
	uv_cond_signal(&w->cond);
	uv_mutex_unlock(&w->lock);
}

bool store_disk_full(struct hostd *h)
{
	struct store_writer *w = h->store.writer;
	bool full;

	if (!w)
		return false;
	uv_mutex_lock(&w->lock);
	full = w->stats.disk_full;
	uv_mutex_unlock(&w->lock);
	return full;
}

void store_stats_json(struct hostd *h, json_t *obj)
{
	struct store_writer *w = h->store.writer;
	struct writer_stats s = { 0 };

	if (w) {
		uv_mutex_lock(&w->lock);
		s = w->stats;
		uv_mutex_unlock(&w->lock);
	}
	json_object_set_new(obj, "stored", json_integer((json_int_t)s.rows));
	json_object_set_new(obj, "events_bytes",
			    json_integer((json_int_t)s.bytes));
	json_object_set_new(obj, "db_bytes", json_integer((json_int_t)s.used));
	json_object_set_new(obj, "pruned", json_integer((json_int_t)s.pruned));
	json_object_set_new(obj, "disk_full", json_boolean(s.disk_full));
}

static void on_async_closed(uv_handle_t *handle)
{
	free(handle->data);
}

void store_stop(struct hostd *h)
{
	struct store_writer *w = h->store.writer;

	if (!w)
		return;
	uv_mutex_lock(&w->lock);
	w->quit = true;
	uv_cond_signal(&w->cond);
	uv_mutex_unlock(&w->lock);
	/* The thread commits what is queued, then ends. */
	uv_thread_join(&w->thread);
	h->store.writer = NULL;
	writer_take_done(w);
	uv_cond_destroy(&w->cond);
	uv_mutex_destroy(&w->lock);
	uv_close((uv_handle_t *)&w->async, on_async_closed);
	uv_run(h->loop, UV_RUN_NOWAIT);
}
