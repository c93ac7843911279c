/* SPDX-License-Identifier: MIT */
/*
 * The `events` command's read, which must neither block the loop, nor
 * hold more than a page of events for a client that reads slowly, nor
 * lose an event between the reply and a follower's stream.
 *
 * The reply is streamed (ctl_reply_stream): its events are read a page at
 * a time on the thread pool (store_read_events with `page` set), each page
 * only once the client has taken the one before. When the request comes
 * it notes the highest id given (upto) and the number of events published
 * (seq), and waits until the writer has committed everything before
 * (events_sync: the writer's queue is FIFO, so every event with an id up
 * to `upto` is then in the table). The first page starts where the newest
 * `limit` begin. A follower's reply then gets the events published since
 * from the ring of recent events; should more have come than the ring
 * holds (a slow reader), the next range is read from the table the same
 * way. The last items and the switch to following happen in one loop
 * turn, so nothing is published in between.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "hostd.h"

/* Rows per read: a page of text stays well under max-unread. */
#define PAGE_ROWS 500

struct events_q {
	struct hostd *h;
	struct ctl_request *rq;
	bool follow;
	uint64_t seq;         /* events published when the range began */
	struct events_read r; /* the range, read page by page */
	bool reading;         /* a page read or a sync runs */
	bool range_done;      /* no page left in (after_id, upto_id] */
	bool started;         /* the first range has begun */
	bool gone;            /* the stream ended: free when the read returns */
	char *ready;          /* a page's items, not yet handed on */
	size_t ready_len, ready_count;
	size_t read_count;    /* r.count when the last page was taken */
};

static void query_free(struct events_q *q)
{
	free(q->r.text);
	free(q->ready);
	free(q);
}

static void on_page(struct hostd *h, struct events_read *r, void *ud)
{
	struct events_q *q = ud;

	(void)h;
	q->reading = false;
	if (q->gone) {
		query_free(q);
		return;
	}
	if (r->err < 0) {
		/* The reply is under way: it ends with this error (or is cut
		 * off, when the client did not ask for pages). */
		log_error("events: %s; the reply ends early", r->errmsg);
		ctl_stream_fail(q->rq, "internal",
				"reading the events failed midway: %s",
				r->errmsg);
		q->range_done = true;
		q->follow = false;
	} else {
		q->ready = r->text;
		q->ready_len = r->len;
		q->ready_count = r->count - q->read_count;
		q->read_count = r->count;
		r->text = NULL;
		r->len = r->cap = 0;
		q->range_done = !r->more;
	}
	ctl_stream_wake(q->rq);
}

static void read_page(struct hostd *h, void *ud)
{
	struct events_q *q = ud;

	store_read_events(h, &q->r, on_page, q);
}

/* Everything up to the newest id given so far, once it is committed. */
static void start_range(struct events_q *q)
{
	q->started = true;
	q->reading = true;
	q->range_done = false;
	q->seq = q->h->ev_seq;
	q->r.upto_id = q->h->ev_next_id - 1;
	events_sync(q->h, read_page, q);
}

/* Hand text of `count` items ("{..},{..},") on as one chunk of the
 * array. */
static void take_items(struct ctl_text *out, char *text, size_t len,
		       size_t count)
{
	while (len > 0 && text[len - 1] == ',')
		len--;
	if (len)
		ctl_text_append_items(out, text, len, count);
	free(text);
}

/* The range is read: catch a follower up from the ring, or read on. */
static enum ctl_stream_next finish_range(struct events_q *q,
					 struct ctl_text *out)
{
	struct events_read *r = &q->r;
	int res;

	if (!q->follow)
		return CTL_STREAM_DONE;
	r->after_id = r->upto_id;
	r->limit = 0;
	res = events_recent(q->h, q->seq, r);
	if (res == 0) {
		/* More came than the ring holds: read those from the table. */
		free(r->text);
		r->text = NULL;
		r->len = r->cap = 0;
		r->count = 0;
		q->read_count = 0;
		start_range(q);
		return q->reading ? CTL_STREAM_WAIT : CTL_STREAM_MORE;
	}
	if (res > 0)
		take_items(out, r->text, r->len, r->count - q->read_count);
	else
		free(r->text);
	r->text = NULL;
	r->len = r->cap = 0;
	ctl_request_follow(q->rq);
	return CTL_STREAM_DONE;
}

static enum ctl_stream_next query_next(void *ud, struct ctl_text *out,
				       size_t max UNUSED)
{
	struct events_q *q = ud;

	if (q->ready) {
		take_items(out, q->ready, q->ready_len, q->ready_count);
		q->ready = NULL;
		return CTL_STREAM_MORE;
	}
	if (q->reading)
		return CTL_STREAM_WAIT;
	if (!q->started) {
		start_range(q);
	} else if (!q->range_done) {
		q->reading = true;
		read_page(q->h, q);
	} else {
		return finish_range(q, out);
	}
	/* A read that ended at once (no memory) is taken next time. */
	return q->reading ? CTL_STREAM_WAIT : CTL_STREAM_MORE;
}

static void query_done(void *ud)
{
	struct events_q *q = ud;

	if (q->reading)
		q->gone = true; /* on_page frees it */
	else
		query_free(q);
}

static const struct ctl_stream_ops query_ops = { query_next, query_done };

void events_query(struct ctl_request *rq, const char *vm, int64_t since_us,
		  unsigned limit, bool follow)
{
	struct events_q *q = calloc(1, sizeof(*q));

	if (!q) {
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	q->h = ctl_request_hostd(rq);
	q->rq = rq;
	q->follow = follow;
	snprintf(q->r.vm, sizeof(q->r.vm), "%s", vm ? vm : "");
	q->r.since_us = since_us;
	q->r.limit = limit;
	q->r.page = PAGE_ROWS;
	ctl_reply_stream(rq, json_object(), "events", &query_ops, q);
}
