/* SPDX-License-Identifier: MIT */
/*
 * Events: every state change of a VM, in one place.
 *
 * An event is logged at once (structured, so journald can filter by
 * VMIC_VM=), sent to `events --follow` clients at once, and stored with
 * the next batch: pending events are committed in one transaction from a
 * short timer, or before an `events` query reads the table, so 10,000
 * VMs connecting cost a few fsyncs rather than one each. Ids are given
 * here, in order, so a follower sees the same id the table will hold.
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
/* Past this many unstored events (a broken database) new ones are only
 * logged: memory stays bounded. */
#define EVENTS_PENDING_MAX 100000
#define EVENT_MESSAGE_MAX 2048

void events_init(struct hostd *h)
{
	uv_timer_init(h->loop, &h->ev_timer);
	h->ev_timer.data = h;
	h->ev_next_id = store_events_max_id(h) + 1;
	if (h->ev_next_id < 1)
		h->ev_next_id = 1;
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
	if (strcmp(e->kind, "protocol-error") == 0)
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

static void on_flush_timer(uv_timer_t *t)
{
	events_flush(t->data);
}

static void event_queue(struct hostd *h, struct event *e)
{
	if (h->ev_pending >= EVENTS_PENDING_MAX) {
		if (h->ev_dropped++ == 0)
			log_error("the database is not taking events; further "
				  "events are only logged");
		free(e);
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

void events_emit(struct hostd *h, const char *vm, const char *service,
		 const char *kind, const char *from, const char *to,
		 const char *fmt, ...)
{
	char raw[EVENT_MESSAGE_MAX], message[EVENT_MESSAGE_MAX];
	struct event *e;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* Guest text was sanitised where it arrived; this is the backstop. */
	vmic_utf8_sanitize(message, sizeof(message), raw, strlen(raw));
	e = event_new(vm, service, kind, from, to, message);
	if (!e) {
		log_error("out of memory recording an event");
		return;
	}
	e->id = h->ev_next_id++;
	e->time_us = vmic_realtime_us();
	event_log(e);
	if (ctl_has_followers(h)) {
		json_t *o = event_json(e);

		ctl_broadcast_event(h, o);
		json_decref(o);
	}
	event_queue(h, e);
}

static void events_free_list(struct event *e)
{
	while (e) {
		struct event *next = e->next;

		free(e);
		e = next;
	}
}

int events_flush(struct hostd *h)
{
	struct event *batch = h->ev_head;
	int r;

	uv_timer_stop(&h->ev_timer);
	if (!batch)
		return 0;
	r = store_events_write(h, batch);
	if (r < 0 && h->ev_pending < EVENTS_PENDING_MAX) {
		/* Keep them for the next try; the error is logged. */
		if (!h->stopping)
			uv_timer_start(&h->ev_timer, on_flush_timer, 1000, 0);
		return r;
	}
	h->ev_head = h->ev_tail = NULL;
	h->ev_pending = 0;
	events_free_list(batch);
	return r;
}

void events_close(struct hostd *h)
{
	events_flush(h);
	events_free_list(h->ev_head);
	h->ev_head = h->ev_tail = NULL;
	h->ev_pending = 0;
	if (!uv_is_closing((uv_handle_t *)&h->ev_timer))
		uv_close((uv_handle_t *)&h->ev_timer, NULL);
}
