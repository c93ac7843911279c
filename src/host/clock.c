/* SPDX-License-Identifier: MIT */
#include "clock.h"

#include <time.h>

#include "common/duration.h"
#include "hostd.h"

uint64_t hostd_now_us(const struct hostd *h)
{
	return h->clock.fake ? h->clock.now_us : vmic_mono_us();
}

int64_t hostd_realtime_ns(const struct hostd *h)
{
	struct timespec ts;

	if (h->clock.fake)
		return (int64_t)h->clock.now_us * 1000;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_uv_timer(uv_timer_t *u)
{
	struct htimer *t = u->data;

	t->due_us = 0;
	t->cb(t);
}

void htimer_init(struct hostd *h, struct htimer *t, htimer_cb cb, void *data)
{
	t->h = h;
	t->cb = cb;
	t->data = data;
	t->due_us = 0;
	t->next = NULL;
	if (!h->clock.fake) {
		uv_timer_init(h->loop, &t->uv);
		t->uv.data = t;
	}
}

/* The fake clock's lists: take t out of one. */
static void fake_unlink(struct htimer **list, struct htimer *t)
{
	for (struct htimer **p = list; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			t->next = NULL;
			return;
		}
}

void htimer_stop(struct htimer *t)
{
	if (!t->due_us)
		return;
	t->due_us = 0;
	if (t->h->clock.fake)
		fake_unlink(&t->h->clock.timers, t);
	else
		uv_timer_stop(&t->uv);
}

void htimer_start_at(struct htimer *t, uint64_t due_us)
{
	struct hostd *h = t->h;
	uint64_t now = hostd_now_us(h);

	htimer_stop(t);
	t->due_us = due_us ? due_us : 1;
	if (h->clock.fake) {
		t->next = h->clock.timers;
		h->clock.timers = t;
		return;
	}
	uv_timer_start(&t->uv, on_uv_timer,
		       due_us > now ? (due_us - now + 999) / 1000 : 0, 0);
}

void htimer_start_in(struct htimer *t, uint64_t ms)
{
	htimer_start_at(t, hostd_now_us(t->h) + ms * 1000);
}

static void on_uv_closed(uv_handle_t *u)
{
	struct htimer *t = u->data;

	t->closed(t);
}

void htimer_close(struct htimer *t, htimer_cb closed)
{
	htimer_stop(t);
	t->closed = closed;
	if (t->h->clock.fake) {
		t->next = t->h->clock.closing;
		t->h->clock.closing = t;
		return;
	}
	uv_close((uv_handle_t *)&t->uv, on_uv_closed);
}

void clock_fake_enable(struct hostd *h, uint64_t start_us)
{
	h->clock.fake = true;
	h->clock.now_us = start_us;
}

/* The armed timer with the earliest deadline, if due by `until`. */
static struct htimer *fake_next_due(struct hostd *h, uint64_t until)
{
	struct htimer *best = NULL;

	for (struct htimer *t = h->clock.timers; t; t = t->next)
		if (t->due_us <= until && (!best || t->due_us < best->due_us))
			best = t;
	return best;
}

void clock_fake_stall(struct hostd *h, uint64_t us)
{
	h->clock.now_us += us;
}

void clock_fake_advance(struct hostd *h, uint64_t us)
{
	uint64_t until = h->clock.now_us + us;
	struct htimer *t;

	while ((t = fake_next_due(h, until))) {
		if (t->due_us > h->clock.now_us)
			h->clock.now_us = t->due_us;
		fake_unlink(&h->clock.timers, t);
		t->due_us = 0;
		t->cb(t);
	}
	h->clock.now_us = until;
	while ((t = h->clock.closing)) {
		h->clock.closing = t->next;
		t->closed(t);
	}
}
