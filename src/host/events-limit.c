/* SPDX-License-Identifier: MIT */
/*
 * Each VM's events pass a token bucket: at most [events] vm-burst at
 * once and vm-rate per second after that, so a guest that changes state
 * as fast as it can (new-nonce hellos: a new session each) costs the host
 * a bounded number of rows and log lines, whatever it does.
 *
 * The bucket is kept as time: an event costs 1 s / vm-rate of credit,
 * credit grows by the time that passes, up to vm-burst events' worth.
 * What does not pass is counted with its kind; one record, "N similar
 * events suppressed", reports them once a second went by without another
 * (the burst is over), or a minute after the first (a flood that does
 * not end). The record pays for itself from the same credit, on debt if
 * need be, so in any span of T seconds a VM gets at most
 * vm-burst + vm-rate x T events, records included, plus one.
 *
 * A daemon-wide timer writes the records; it runs only while some VM
 * holds suppressed events.
 */
#include <stdio.h>
#include <string.h>

#include "common/duration.h"
#include "hostd.h"

#define LIMIT_TICK_MS 1000
#define RECORD_QUIET_US 1000000ull /* no suppression for this long */
#define RECORD_MAX_US 60000000ull  /* or this long since the first */

static int64_t cost_us(const struct hostd *h)
{
	return 1000000 / (int64_t)MAX(h->cfg.events_vm_rate, 1u);
}

static void refill(const struct hostd *h, struct ev_limit *l, uint64_t now)
{
	int64_t cap = cost_us(h) * (int64_t)MAX(h->cfg.events_vm_burst, 1u);

	if (l->last_us == 0) {
		l->credit_us = cap; /* a new VM starts with a full bucket */
	} else {
		l->credit_us += (int64_t)(now - l->last_us);
		if (l->credit_us > cap)
			l->credit_us = cap;
	}
	l->last_us = now;
}

/* Add kind to the list of suppressed kinds, once, while there is room. */
static void note_kind(struct ev_limit *l, const char *kind)
{
	size_t n = strlen(l->kinds), k = strlen(kind);
	const char *p = l->kinds;

	while ((p = strstr(p, kind))) {
		bool start = p == l->kinds || p[-1] == ' ';
		bool end = p[k] == '\0' || p[k] == ',';

		if (start && end)
			return;
		p += k;
	}
	if (n + k + 3 < sizeof(l->kinds))
		snprintf(l->kinds + n, sizeof(l->kinds) - n, "%s%s",
			 n ? ", " : "", kind);
}

static void on_limit_tick(uv_timer_t *t);

bool events_limit_pass(struct hostd *h, struct vm *vm, const char *kind)
{
	struct ev_limit *l = &vm->evlim;
	uint64_t now = vmic_mono_us();

	refill(h, l, now);
	if (l->credit_us >= cost_us(h)) {
		l->credit_us -= cost_us(h);
		return true;
	}
	if (l->held++ == 0) {
		l->first_us = now;
		l->kinds[0] = '\0';
		if (h->ev_limited++ == 0 && !h->stopping)
			uv_timer_start(&h->ev_limit_timer, on_limit_tick,
				       LIMIT_TICK_MS, LIMIT_TICK_MS);
	}
	l->recent_us = now;
	l->total++;
	h->ev_suppressed++;
	note_kind(l, kind);
	return false;
}

/* The record of what vm's bucket held back, paid from its credit. */
static void limit_record(struct hostd *h, struct vm *vm, uint64_t now)
{
	struct ev_limit *l = &vm->evlim;
	struct event *e;

	refill(h, l, now);
	l->credit_us -= cost_us(h);
	e = events_prepare(h, vm->name, NULL, "suppressed", NULL, NULL,
			   "%llu similar events suppressed (each VM may cause "
			   "%u events at once, then %u per second): %s",
			   (unsigned long long)l->held, h->cfg.events_vm_burst,
			   h->cfg.events_vm_rate, l->kinds);
	l->held = 0;
	l->kinds[0] = '\0';
	if (h->ev_limited > 0)
		h->ev_limited--;
	if (e)
		events_emit_event(h, e);
}

static void on_limit_tick(uv_timer_t *t)
{
	struct hostd *h = t->data;
	uint64_t now = vmic_mono_us();
	unsigned holding = 0;

	for (size_t i = 0; i < h->nvms; i++) {
		struct vm *vm = h->vms[i];
		struct ev_limit *l = &vm->evlim;

		if (!l->held)
			continue;
		if (now - l->recent_us >= RECORD_QUIET_US ||
		    now - l->first_us >= RECORD_MAX_US)
			limit_record(h, vm, now);
		else
			holding++;
	}
	/* Recounted here, so a VM that went away holding some cannot keep
	 * the timer running. */
	h->ev_limited = holding;
	if (holding == 0)
		uv_timer_stop(t);
}

void events_limit_flush(struct hostd *h, struct vm *vm)
{
	if (vm->evlim.held)
		limit_record(h, vm, vmic_mono_us());
}

void events_limit_init(struct hostd *h)
{
	uv_timer_init(h->loop, &h->ev_limit_timer);
	h->ev_limit_timer.data = h;
}

void events_limit_close(struct hostd *h)
{
	if (!uv_is_closing((uv_handle_t *)&h->ev_limit_timer))
		uv_close((uv_handle_t *)&h->ev_limit_timer, NULL);
}
