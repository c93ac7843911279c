/* SPDX-License-Identifier: MIT */
/*
 * Events: every state change of a VM, in one place.
 *
 * An event is published at once: logged (structured, so journald can
 * filter by VMIC_VM=), sent to `events --follow` clients, kept in a ring
 * of recent events (for the catch-up of a new follower, events-query.c);
 * and it is stored with the next batch: the pending events go to the
 * writer thread as one transaction from a short timer, so 10,000 VMs
 * connecting cost a few fsyncs rather than one each, and none on the
 * loop. Ids are given here, in order, so a follower sees the id the
 * table will hold.
 *
 * What a guest can make the host record is bounded: each VM's events
 * pass a token bucket first (events-limit.c), events waiting to be
 * stored are capped (beyond, they are only logged), and the table
 * itself is pruned by count, age and size (store-events.c). An event a
 * control command causes is not limited: it is part of the command's
 * transaction (events_prepare) and published once that committed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "common/utf8.h"
#include "hostd.h"

#define EVENTS_FLUSH_MS 100
/* A batch the database refused as busy (another program holds it) is
 * tried again this much later. */
#define EVENTS_RETRY_MS 1000
/* Past this many events not yet stored (a database that is not keeping
 * up), new ones are only logged: memory stays bounded. */
#define EVENTS_PENDING_MAX 100000
#define EVENT_MESSAGE_MAX 2048

static void on_flush_timer(uv_timer_t *t)
{
	events_flush(t->data);
}

void events_init(struct hostd *h)
{
	uv_timer_init(h->loop, &h->ev_timer);
	h->ev_timer.data = h;
	h->ev_next_id = store_events_max_id(h) + 1;
	if (h->ev_next_id < 1)
		h->ev_next_id = 1;
	events_limit_init(h);
}

/* Lay out the event and its strings in one allocation. */
static struct event *event_new(const char *vm, const char *service,
			       const char *kind, const char *from,
			       const char *to, const char *message)
{
	const char *src[] = { vm, service, kind, from, to, message };
	size_t len[ARRAY_SIZE(src)], total = sizeof(struct event);
	const char **dst[ARRAY_SIZE(src)];
	struct event *e;
	char *p;

	for (size_t i = 0; i < ARRAY_SIZE(src); i++) {
		len[i] = src[i] ? strlen(src[i]) + 1 : 0;
		total += len[i];
	}
	e = calloc(1, total);
	if (!e)
		return NULL;
	e->refs = 1;
	dst[0] = &e->vm;
	dst[1] = &e->service;
	dst[2] = &e->kind;
	dst[3] = &e->from;
	dst[4] = &e->to;
	dst[5] = &e->message;
	p = (char *)(e + 1);
	for (size_t i = 0; i < ARRAY_SIZE(src); i++) {
		if (!src[i])
			continue;
		memcpy(p, src[i], len[i]);
		*dst[i] = p;
		p += len[i];
	}
	return e;
}

void event_unref(struct event *e)
{
	if (e && --e->refs == 0)
		free(e);
}

void events_unref_list(struct event *e)
{
	while (e) {
		struct event *next = e->next;

		event_unref(e);
		e = next;
	}
}

static struct event *event_build(struct hostd *h, const char *vm,
				 const char *service, const char *kind,
				 const char *from, const char *to,
				 const char *fmt, va_list ap) PRINTF_LIKE(7, 0);
static struct event *event_build(struct hostd *h, const char *vm,
				 const char *service, const char *kind,
				 const char *from, const char *to,
				 const char *fmt, va_list ap)
{
	char raw[EVENT_MESSAGE_MAX], message[EVENT_MESSAGE_MAX];
	struct event *e;

	vsnprintf(raw, sizeof(raw), fmt, ap);
	/* Guest text was sanitised where it arrived; this is the backstop. */
	vmic_utf8_sanitize(message, sizeof(message), raw, strlen(raw));
	e = event_new(vm, service, kind, from, to, message);
	if (!e) {
		log_error("out of memory recording an event");
		return NULL;
	}
	e->id = h->ev_next_id++;
	e->time_us = vmic_realtime_us();
	return e;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *event_json(const struct event *e)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_integer(e->id));
	json_object_set_new(o, "time_us", json_integer(e->time_us));
	json_object_set_new(o, "vm", str_or_null(e->vm));
	json_object_set_new(o, "service", str_or_null(e->service));
	json_object_set_new(o, "kind", json_string(e->kind));
	json_object_set_new(o, "from", str_or_null(e->from));
	json_object_set_new(o, "to", str_or_null(e->to));
	json_object_set_new(o, "message", json_string(e->message));
	return o;
}

static int event_level(const struct event *e)
{
	if (strcmp(e->kind, "protocol-error") == 0 ||
	    strcmp(e->kind, "suppressed") == 0)
		return LOG_WARNING;
	if (e->to && (strcmp(e->to, "Lost Communication") == 0 ||
		      strcmp(e->to, "Protocol Mismatch") == 0))
		return LOG_WARNING;
	return LOG_INFO;
}

static void event_log(const struct event *e)
{
	const char *fields[] = {
		"VMIC_VM",   e->vm ?: "",   "VMIC_SERVICE", e->service ?: "",
		"VMIC_EVENT", e->kind,       "VMIC_FROM",    e->from ?: "",
		"VMIC_TO",   e->to ?: "",   NULL,
	};
	char text[EVENT_MESSAGE_MAX + 128];

	snprintf(text, sizeof(text), "%s%s%s%s%s", e->vm ?: "",
		 e->vm ? ": " : "", e->service ?: "", e->service ? ": " : "",
		 e->message);
	log_struct(event_level(e), text, fields);
}

/* Logged, followed, kept in the ring; the caller keeps its reference. */
static void event_publish(struct hostd *h, struct event *e)
{
	struct event **slot;

	e->seq = ++h->ev_seq;
	event_log(e);
	if (ctl_has_followers(h)) {
		json_t *o = event_json(e);

		ctl_broadcast_event(h, o);
		json_decref(o);
	}
	if (h->stopping)
		return; /* no follower can come any more: no ring to keep */
	slot = &h->ev_ring[e->seq % EVENTS_RING];
	event_unref(*slot);
	e->refs++;
	*slot = e;
}

/* Note the first of a run of events that are not stored. */
static void events_note_dropped(struct hostd *h, size_t n, const char *why)
{
	h->ev_dropped += n;
	if (h->ev_drop_noted)
		return;
	h->ev_drop_noted = true;
	log_error("events are not being stored (%s); they are still logged, "
		  "and `vmic status` and `stats` count them",
		  why);
}

/* Into the batch; takes the reference. */
static void event_queue(struct hostd *h, struct event *e)
{
	if (h->ev_pending + h->ev_inflight >= EVENTS_PENDING_MAX) {
		events_note_dropped(h, 1, "the database does not keep up");
		event_unref(e);
		return;
	}
	if (h->ev_tail)
		h->ev_tail->next = e;
	else
		h->ev_head = e;
	h->ev_tail = e;
	h->ev_pending++;
	if (!uv_is_active((uv_handle_t *)&h->ev_timer) && !h->stopping)
		uv_timer_start(&h->ev_timer, on_flush_timer, EVENTS_FLUSH_MS,
			       0);
}

void events_emit_event(struct hostd *h, struct event *e)
{
	event_publish(h, e);
	event_queue(h, e);
}

void events_emit(struct hostd *h, const char *vm, const char *service,
		 const char *kind, const char *from, const char *to,
		 const char *fmt, ...)
{
	struct vm *v = vm ? vm_find(h, vm) : NULL;
	struct event *e;
	va_list ap;

	/* Before the message is even formatted: a flood costs little. */
	if (v && !events_limit_pass(h, v, kind))
		return;
	va_start(ap, fmt);
	e = event_build(h, vm, service, kind, from, to, fmt, ap);
	va_end(ap);
	if (e)
		events_emit_event(h, e);
}

struct event *events_prepare(struct hostd *h, const char *vm,
			     const char *service, const char *kind,
			     const char *from, const char *to,
			     const char *fmt, ...)
{
	struct event *e;
	va_list ap;

	va_start(ap, fmt);
	e = event_build(h, vm, service, kind, from, to, fmt, ap);
	va_end(ap);
	return e;
}

void events_txn_done(struct hostd *h, struct store_txn *t)
{
	struct event *list = store_txn_take_events(t);
	bool ok = store_txn_result(t, NULL) == 0;

	for (struct event *e = list; ok && e; e = e->next)
		event_publish(h, e);
	events_unref_list(list);
}

/* Put a batch the database refused for now back in front of the batch. */
static void events_requeue(struct hostd *h, struct event *list, size_t n)
{
	struct event *last = list;

	if (!list)
		return;
	while (last->next)
		last = last->next;
	last->next = h->ev_head;
	h->ev_head = list;
	if (!h->ev_tail)
		h->ev_tail = last;
	h->ev_pending += n;
	if (!h->stopping)
		uv_timer_start(&h->ev_timer, on_flush_timer, EVENTS_RETRY_MS,
			       0);
}

static void on_batch_done(struct hostd *h, struct store_txn *t, void *ud)
{
	size_t n = store_txn_event_count(t);
	const char *msg;
	int r = store_txn_result(t, &msg);

	(void)ud;
	h->ev_inflight -= n;
	if (r == 0) {
		if (n > 0)
			h->ev_drop_noted = false;
	} else if (r == -EBUSY && !h->stopping) {
		events_requeue(h, store_txn_take_events(t), n);
	} else {
		events_note_dropped(h, n, msg);
	}
}

/* The batch as a transaction (it may be empty: a barrier). */
static struct store_txn *events_take_batch(struct hostd *h)
{
	struct store_txn *t = store_txn_new(false);

	if (!t)
		return NULL;
	uv_timer_stop(&h->ev_timer);
	store_txn_add_events(t, h->ev_head);
	h->ev_inflight += h->ev_pending;
	h->ev_head = h->ev_tail = NULL;
	h->ev_pending = 0;
	return t;
}

void events_flush(struct hostd *h)
{
	struct store_txn *t;

	if (!h->ev_head)
		return;
	t = events_take_batch(h);
	if (t)
		store_commit(h, t, on_batch_done, NULL);
	/* Without memory the batch stays for the next timer. */
}

struct sync_wait {
	void (*cb)(struct hostd *h, void *ud);
	void *ud;
};

static void on_sync_done(struct hostd *h, struct store_txn *t, void *ud)
{
	struct sync_wait sw = *(struct sync_wait *)ud;

	free(ud);
	on_batch_done(h, t, NULL);
	sw.cb(h, sw.ud);
}

void events_sync(struct hostd *h, void (*cb)(struct hostd *h, void *ud),
		 void *ud)
{
	struct sync_wait *sw = malloc(sizeof(*sw));
	struct store_txn *t = sw ? events_take_batch(h) : NULL;

	if (!t) {
		free(sw);
		cb(h, ud); /* without memory: read what is there */
		return;
	}
	sw->cb = cb;
	sw->ud = ud;
	store_commit(h, t, on_sync_done, sw);
}

static bool event_matches(const struct event *e, const struct events_read *r)
{
	return e->id > r->after_id && e->time_us >= r->since_us &&
	       (!r->vm[0] || (e->vm && strcmp(e->vm, r->vm) == 0));
}

int events_recent(struct hostd *h, uint64_t seq, struct events_read *r)
{
	char buf[EVENT_MESSAGE_MAX * 2 + 1024];

	if (h->ev_seq - seq > EVENTS_RING)
		return 0;
	for (uint64_t s = seq + 1; s <= h->ev_seq; s++) {
		const struct event *e = h->ev_ring[s % EVENTS_RING];
		json_t *o;
		size_t n;

		if (!e || e->seq != s || !event_matches(e, r))
			continue;
		o = event_json(e);
		n = json_dumpb(o, buf, sizeof(buf) - 1, JSON_COMPACT);
		json_decref(o);
		if (n == 0 || n >= sizeof(buf) - 1)
			continue;
		buf[n++] = ',';
		if (events_read_append(r, buf, n) < 0)
			return -ENOMEM;
		r->count++;
	}
	return 1;
}

json_t *events_stats_json(struct hostd *h)
{
	json_t *o = json_object();

	json_object_set_new(o, "published", json_integer((json_int_t)h->ev_seq));
	json_object_set_new(o, "suppressed",
			    json_integer((json_int_t)h->ev_suppressed));
	json_object_set_new(o, "dropped",
			    json_integer((json_int_t)h->ev_dropped));
	json_object_set_new(o, "pending",
			    json_integer((json_int_t)(h->ev_pending +
						      h->ev_inflight)));
	json_object_set_new(o, "log_dropped",
			    json_integer((json_int_t)log_dropped_count()));
	store_stats_json(h, o);
	return o;
}

void events_close(struct hostd *h)
{
	events_flush(h);
	for (size_t i = 0; i < EVENTS_RING; i++) {
		event_unref(h->ev_ring[i]);
		h->ev_ring[i] = NULL;
	}
	if (!uv_is_closing((uv_handle_t *)&h->ev_timer))
		uv_close((uv_handle_t *)&h->ev_timer, NULL);
	events_limit_close(h);
}
