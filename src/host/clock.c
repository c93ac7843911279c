/* SPDX-License-Identifier: MIT */
/*
 * The timing wheel (clock.h). A timer is in the bucket of its slot modulo
 * HCLOCK_WHEEL, in a doubly linked list, so starting and stopping cost
 * O(1). The driver (a libuv timer, or the fake clock's advance) runs the
 * slots from the cursor to the one that has just passed; in each it takes
 * the bucket's timers whose slot has come (those of later turns stay) onto
 * a list of their own, and fires them one by one: a callback may stop or
 * restart any timer, the ones still to fire included, and a timer started
 * for a slot that has already run goes into the next one.
 */
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

/* ---- lists ------------------------------------------------------------- */

static void list_push(struct htimer **head, struct htimer *t)
{
	t->next = *head;
	if (t->next)
		t->next->pprev = &t->next;
	t->pprev = head;
	*head = t;
}

static void list_unlink(struct htimer *t)
{
	*t->pprev = t->next;
	if (t->next)
		t->next->pprev = t->pprev;
	t->next = NULL;
	t->pprev = NULL;
}

/* ---- the driver -------------------------------------------------------- */

static void on_driver(uv_timer_t *u);
static void driver_arm(struct hostd *h);

static void on_driver_closed(uv_handle_t *u)
{
	struct hostd *h = u->data;

	h->clock.driver_open = false;
	h->clock.driver_closing = false;
	h->clock.armed = 0;
	driver_arm(h); /* a timer started while it closed */
}

/*
 * The earliest slot that holds a timer: a scan of at most one turn from
 * the cursor, which ends at the first bucket whose earliest timer is of
 * this turn. 0 when the wheel is empty.
 */
static uint64_t wheel_next_slot(const struct hclock *c)
{
	uint64_t best = 0;

	if (c->count == 0)
		return 0;
	for (uint64_t s = c->cursor; s < c->cursor + HCLOCK_WHEEL; s++) {
		for (const struct htimer *t = c->bucket[s % HCLOCK_WHEEL]; t;
		     t = t->next)
			if (!best || t->slot < best)
				best = t->slot;
		if (best && best <= s)
			break;
	}
	return best;
}

/* Set the real clock's driver for the earliest slot, or let it rest. */
static void driver_arm(struct hostd *h)
{
	struct hclock *c = &h->clock;
	uint64_t next, at_ms, now_ms;

	if (c->fake || c->running)
		return; /* the fake clock's advance, or on_driver, sees to it */
	next = c->closing ? c->cursor : wheel_next_slot(c);
	if (!next) {
		c->armed = 0;
		if (c->driver_open && !c->driver_closing) {
			uv_timer_stop(&c->driver);
			if (h->stopping) {
				c->driver_closing = true;
				uv_close((uv_handle_t *)&c->driver,
					 on_driver_closed);
			}
		}
		return;
	}
	if (c->armed == next || c->driver_closing)
		return; /* set already, or on_driver_closed sets it */
	if (!c->driver_open) {
		uv_timer_init(h->loop, &c->driver);
		c->driver.data = h;
		c->driver_open = true;
	}
	/*
	 * libuv's clock (uv_now) is the same monotonic clock read more
	 * coarsely, never ahead of it: a timeout measured from it ends at or
	 * after the slot's real end, so the wake-up always finds the slot
	 * passed.
	 */
	at_ms = (next * HCLOCK_SLOT_US + 999) / 1000;
	now_ms = uv_now(h->loop);
	c->armed = next;
	uv_timer_start(&c->driver, on_driver,
		       at_ms > now_ms ? at_ms - now_ms : 0, 0);
}

/* The closed callbacks of htimer_close. */
static void run_closing(struct hclock *c)
{
	struct htimer *t;

	while ((t = c->closing)) {
		list_unlink(t);
		t->closed(t);
	}
}

/* Run every slot up to `upto` (inclusive), then the closed callbacks. */
static void wheel_run(struct hostd *h, uint64_t upto)
{
	struct hclock *c = &h->clock;
	struct htimer *firing = NULL, *t;

	c->wakeups++;
	c->running = true;
	/* A turn or more behind: every bucket once, at its latest slot. */
	if (upto >= c->cursor + HCLOCK_WHEEL)
		c->cursor = upto - HCLOCK_WHEEL + 1;
	while (c->cursor <= upto) {
		uint64_t s = c->cursor++;
		struct htimer **b = &c->bucket[s % HCLOCK_WHEEL];

		for (struct htimer *n, *x = *b; x; x = n) {
			n = x->next;
			if (x->slot <= s) {
				list_unlink(x);
				list_push(&firing, x);
			}
		}
		if (c->fake && c->now_us < s * HCLOCK_SLOT_US)
			c->now_us = s * HCLOCK_SLOT_US;
		while ((t = firing)) {
			list_unlink(t);
			t->due_us = 0;
			c->count--;
			t->cb(t);
		}
	}
	run_closing(c);
	c->running = false;
}

static void on_driver(uv_timer_t *u)
{
	struct hostd *h = u->data;

	h->clock.armed = 0;
	wheel_run(h, hostd_now_us(h) / HCLOCK_SLOT_US);
	driver_arm(h);
}

/* ---- timers ------------------------------------------------------------ */

void htimer_init(struct hostd *h, struct htimer *t, htimer_cb cb, void *data)
{
	*t = (struct htimer){ .h = h, .cb = cb, .data = data };
}

void htimer_stop(struct htimer *t)
{
	if (!t->due_us)
		return;
	t->due_us = 0;
	list_unlink(t);
	t->h->clock.count--;
	/* The driver may stay set for this slot: it then finds nothing,
	 * which is cheaper than searching for the next one now. */
	if (t->h->clock.count == 0)
		driver_arm(t->h);
}

void htimer_start_at(struct htimer *t, uint64_t due_us)
{
	struct hostd *h = t->h;
	struct hclock *c = &h->clock;
	uint64_t slot;

	htimer_stop(t);
	if (c->count == 0 && !c->closing && !c->running)
		c->cursor = hostd_now_us(h) / HCLOCK_SLOT_US + 1;
	t->due_us = due_us ? due_us : 1;
	slot = (t->due_us + HCLOCK_SLOT_US - 1) / HCLOCK_SLOT_US;
	t->slot = slot < c->cursor ? c->cursor : slot;
	list_push(&c->bucket[t->slot % HCLOCK_WHEEL], t);
	c->count++;
	if (!c->armed || t->slot < c->armed)
		driver_arm(h);
}

void htimer_start_in(struct htimer *t, uint64_t ms)
{
	htimer_start_at(t, hostd_now_us(t->h) + ms * 1000);
}

void htimer_close(struct htimer *t, htimer_cb closed)
{
	struct hclock *c = &t->h->clock;

	htimer_stop(t);
	t->closed = closed;
	if (!c->closing && c->count == 0 && !c->running)
		c->cursor = hostd_now_us(t->h) / HCLOCK_SLOT_US + 1;
	list_push(&c->closing, t);
	c->armed = 0; /* the close callbacks run at the next slot's end */
	driver_arm(t->h);
}

void clock_stop(struct hostd *h)
{
	driver_arm(h);
}

/* ---- the fake clock ---------------------------------------------------- */

void clock_fake_enable(struct hostd *h, uint64_t start_us)
{
	h->clock.fake = true;
	h->clock.now_us = start_us;
	h->clock.cursor = start_us / HCLOCK_SLOT_US + 1;
}

void clock_fake_stall(struct hostd *h, uint64_t us)
{
	h->clock.now_us += us;
}

void clock_fake_advance(struct hostd *h, uint64_t us)
{
	struct hclock *c = &h->clock;
	uint64_t until = c->now_us + us, s;

	/* Slot by slot where timers are, so that each fires at its slot's
	 * time and timers started meanwhile are seen. */
	while ((s = wheel_next_slot(c)) && s * HCLOCK_SLOT_US <= until)
		wheel_run(h, s);
	if (c->now_us < until) /* a callback may have stalled it beyond */
		c->now_us = until;
	run_closing(c);
}
