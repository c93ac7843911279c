/* SPDX-License-Identifier: MIT */
/*
 * The `events` command's read, which must neither block the loop nor
 * lose an event between the reply and a follower's stream.
 *
 * When the request comes, it notes the highest id given (upto) and the
 * number of events published (seq). It waits until the writer has
 * committed everything before (events_sync: the writer's queue is FIFO,
 * so every event with an id up to `upto` is then in the table), reads
 * the newest `limit` of them on the thread pool, as JSON text behind the
 * reply's prefix, and the loop only sends that text. A follower's reply
 * also gets the events published since the request (id above upto) from
 * the ring of recent events; should more have come than the ring holds,
 * another, smaller read fetches them first. Once the reply is queued the
 * client follows, with nothing published in between.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostd.h"

struct events_q {
	struct ctl_request *rq;
	bool follow;
	uint64_t seq; /* events published when this read began */
	struct events_read r;
};

static void query_free(struct events_q *q)
{
	free(q->r.text);
	free(q);
}

static void query_fail(struct events_q *q, const char *msg)
{
	ctl_reply_error(q->rq, "internal", "%s", msg);
	query_free(q);
}

static void query_reply(struct events_q *q)
{
	static const char tail[] = "]}}\n";
	struct events_read *r = &q->r;

	if (r->count > 0)
		r->len--; /* the last comma */
	if (events_read_append(r, tail, sizeof(tail) - 1) < 0) {
		query_fail(q, "out of memory");
		return;
	}
	if (q->follow)
		ctl_request_follow(q->rq);
	ctl_reply_line(q->rq, r->text, r->len);
	r->text = NULL;
	query_free(q);
}

static void query_read(struct hostd *h, void *ud);

static void query_read_done(struct hostd *h, struct events_read *r, void *ud)
{
	struct events_q *q = ud;
	int res;

	if (r->err < 0) {
		query_fail(q, r->errmsg);
		return;
	}
	if (!q->follow) {
		query_reply(q);
		return;
	}
	r->after_id = r->upto_id;
	r->limit = 0;
	res = events_recent(h, q->seq, r);
	if (res < 0) {
		query_fail(q, "out of memory");
		return;
	}
	if (res == 0) {
		/* More came than the ring holds: read those first. */
		q->seq = h->ev_seq;
		r->upto_id = h->ev_next_id - 1;
		events_sync(h, query_read, q);
		return;
	}
	query_reply(q);
}

static void query_read(struct hostd *h, void *ud)
{
	struct events_q *q = ud;

	store_read_events(h, &q->r, query_read_done, q);
}

void events_query(struct ctl_request *rq, const char *vm, int64_t since_us,
		  unsigned limit, bool follow)
{
	static const char open[] = "{\"events\":[";
	struct hostd *h = ctl_request_hostd(rq);
	struct events_q *q = calloc(1, sizeof(*q));
	char *prefix;
	size_t n;

	prefix = q ? ctl_reply_prefix(rq, &n) : NULL;
	if (!prefix || events_read_append(&q->r, prefix, n) < 0 ||
	    events_read_append(&q->r, open, sizeof(open) - 1) < 0) {
		free(prefix);
		if (q)
			query_free(q);
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	free(prefix);
	q->rq = rq;
	q->follow = follow;
	q->seq = h->ev_seq;
	snprintf(q->r.vm, sizeof(q->r.vm), "%s", vm ? vm : "");
	q->r.since_us = since_us;
	q->r.upto_id = h->ev_next_id - 1;
	q->r.limit = limit;
	events_sync(h, query_read, q);
}
