/* SPDX-License-Identifier: MIT */
/*
 * What the store's files share and nobody else needs: one SQLite
 * connection with its statements, the SQL of transactions and of the
 * event log, and the disk reserve. A struct store_db is used by one
 * thread at a time (the daemon opens connections with
 * SQLITE_OPEN_NOMUTEX): the writer's by the writer thread once it runs,
 * each reader's by the pool thread that holds it.
 */
#ifndef VMIC_STORE_INTERNAL_H
#define VMIC_STORE_INTERNAL_H

#include <sqlite3.h>

#include "hostd.h"

/* Every connection waits this long for a lock: only our own threads
 * contend, and none holds a lock longer than one short transaction. */
#define STORE_BUSY_MS 100
/* The disk reserve: released when the disk is full so that `remove` and
 * `disable` can still commit (a few pages of WAL each). */
#define STORE_RESERVE_BYTES (8u << 20)

struct store_db {
	sqlite3 *db;
	bool readonly;
	sqlite3_stmt *vm_insert, *vm_update, *vm_delete;
	sqlite3_stmt *svc_set, *svc_delete, *setting_set;
	sqlite3_stmt *data_set, *data_delete;
	sqlite3_stmt *ev_insert, *ev_select, *ev_select_vm;
	sqlite3_stmt *ev_start, *ev_start_vm, *ev_page, *ev_page_vm;
	sqlite3_stmt *data_first, *data_after, *data_key;
	char errmsg[256]; /* last failure, a sentence */
};

/* A transaction (store-txn.c); next, done and ud are the writer's. */
struct txn_op;
struct store_txn {
	struct store_txn *next;
	bool command;
	struct txn_op *ops, **ops_tail;
	struct event *events, *events_tail;
	size_t nevents;
	int err;
	char errmsg[256];
	store_txn_done_fn done;
	void *ud;
};

/* What the event log may hold (0: no bound). */
struct store_limits {
	uint64_t keep;
	uint64_t max_size;
	uint64_t max_age_s;
};

/* store.c */
/* Lower the calling thread's CPU priority (nice 0..19): threads that do
 * the store's work yield to the loop, which answers heartbeats. */
void store_thread_background(int nice);
/*
 * Open path: the writer's connection (creating the file 0640, WAL,
 * synchronous=FULL, the schema) or a read-only one. -EIO, -EPROTO (a
 * schema newer than this build) with a sentence in err.
 */
int store_db_open(const char *path, bool readonly, struct store_db **out,
		  char *err, size_t errsz);
/* Finalize and close; NULL is fine. */
void store_db_close(struct store_db *db);
/* Keep SQLite's message for what failed in db->errmsg; the -errno of rc:
 * -EBUSY (locked), -ENOSPC (disk full), -ENOMEM, -EIO. */
int store_db_fail(struct store_db *db, int rc, const char *doing);
/* sqlite3_exec; store_db_fail on error. */
int store_db_exec(struct store_db *db, const char *sql, const char *doing);
/* Run a prepared statement that returns no rows, then reset it. */
int store_db_step(struct store_db *db, sqlite3_stmt *st, const char *doing);

/* store-txn.c */
/* Run t as one transaction (BEGIN IMMEDIATE .. COMMIT, or ROLLBACK);
 * the result is kept in t. */
int store_txn_run(struct store_db *db, struct store_txn *t);
bool store_txn_is_command(const struct store_txn *t);
/* Record a result without running t (dropped while the disk is full). */
void store_txn_set_result(struct store_txn *t, int err, const char *msg);

/* store-events.c */
/* Insert a list of events; inside a transaction. */
int store_events_insert(struct store_db *db, const struct event *list);
/* Rows in the events table and their size as max-size counts it (one
 * pass over the table, at start-up). */
int store_events_measure(struct store_db *db, int64_t *rows,
			 uint64_t *bytes);
/* The size of a list of events as max-size counts it. */
uint64_t store_events_size(const struct event *list);
/* Bytes of the database in use (pages not on the free list). */
int store_db_used(struct store_db *db, uint64_t *bytes);
/* Where pruning stands (the writer's). */
struct store_prune {
	int64_t rows;     /* events in the table */
	bool trimming;    /* over keep: going down to 99 % of it */
	bool shrinking;   /* over max_size: going down to 90 % of it */
	uint64_t deleted; /* since start */
	uint64_t bytes;   /* the events' size (store_events_size), kept as
			     rows are stored and deleted */
	uint64_t used;    /* bytes of vmic.db in use, as of the last step */
};
/*
 * One step towards the bounds, in one transaction: delete at most a
 * thousand of the oldest events beyond keep, older than max_age, or
 * while the events' size is over max_size, and give the freed pages back to
 * the file system. The count and size bounds go a little below the
 * bound (99 %, 90 %), so that a full table is not pruned after every
 * batch. 1 when more remains to do, 0 when within the bounds, -errno.
 */
int store_events_prune_step(struct store_db *db, const struct store_limits *l,
			    struct store_prune *p);
/* Read what r asks for (store-read.c, on a read-only connection). */
int store_events_select(struct store_db *db, struct events_read *r);

/* store-data.c */
/* Read what d asks for (store-read.c, on a read-only connection); the
 * result in d->err and d->errmsg. */
void store_data_select(struct store_db *db, struct data_read *d);

/* store-read.c */
/* Close the idle read connections; at exit, after the loop ended. */
void store_readers_close(struct hostd *h);

/* store-space.c */
/* Make dir/vmic.reserve STORE_RESERVE_BYTES long, allocated; -errno
 * (-ENOSPC when the disk has no room for it). */
int store_reserve_make(const char *dir);
/* Give the reserve back to the file system; true when there was one. */
bool store_reserve_release(const char *dir);
/* Bytes an unprivileged writer could still use in dir's file system. */
uint64_t store_space_free(const char *dir);

#endif
