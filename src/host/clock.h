/* SPDX-License-Identifier: MIT */
/*
 * The daemon's time: a monotonic clock in microseconds, and timers set to
 * an absolute deadline. A repeating tick that sets its next deadline from
 * the previous one (not from "now") keeps its phase.
 *
 * Timers live on one timing wheel per daemon, driven by a single libuv
 * timer: a deadline is rounded up to the next slot boundary (slots of
 * HCLOCK_SLOT_US), and each wake-up runs every timer due in the slots that
 * have passed. At 10,000 VMs that is at most one wake-up per slot for all
 * their heartbeat ticks, request deadlines and other timers, instead of
 * one per timer, and libuv's heap holds one timer instead of 10,000.
 * The price is that a timer fires up to one slot after its deadline.
 *
 * The unit tests switch a daemon to a fake clock that they move by hand
 * (clock_fake_advance), so the heartbeat and stop state machines run
 * through hours in milliseconds on the same wheel, with nothing else
 * changed.
 */
#ifndef VMIC_HOST_CLOCK_H
#define VMIC_HOST_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct hostd;
struct htimer;

/*
 * The slot width. 4 ms: wide enough that 10,000 VMs ticking once a second
 * share 250 wake-ups a second (40 VMs each) rather than 10,000, narrow
 * enough that a heartbeat's timing error stays well under the 10 ms the
 * round-trip percentiles are read at (docs/benchmarks.md, heartbeat-scale).
 */
#define HCLOCK_SLOT_US 4000u
/* Buckets of the wheel: 4,096 slots, 16.4 s, cover a heartbeat interval
 * and the usual request deadlines; a later deadline waits in its bucket
 * for as many turns as it needs. A power of two. */
#define HCLOCK_WHEEL 4096u

typedef void (*htimer_cb)(struct htimer *t);

struct htimer {
	struct hostd *h;
	htimer_cb cb;
	htimer_cb closed; /* after htimer_close */
	void *data;
	uint64_t due_us; /* 0 while stopped */
	uint64_t slot;   /* the slot it fires in */
	/* its bucket, or the list being fired, or the closing list */
	struct htimer *next, **pprev;
};

struct hclock {
	bool fake;
	uint64_t now_us; /* the fake clock */
	uv_timer_t driver; /* the real clock's one libuv timer */
	bool driver_open;
	bool driver_closing;
	bool running; /* firing timers: arm the driver once, after */
	uint64_t armed;  /* slot the driver is set for, 0: not set */
	uint64_t cursor; /* slots before it have fired */
	size_t count;    /* timers on the wheel */
	struct htimer *closing; /* closed, callback to run */
	struct htimer *bucket[HCLOCK_WHEEL];
	uint64_t wakeups; /* the wheel ran (for tests and benchmarks) */
};

/* Monotonic microseconds: the real clock, or the fake one. */
uint64_t hostd_now_us(const struct hostd *h);
/* Wall-clock nanoseconds since the epoch (CLOCK_REALTIME), the time the
 * host gives its guests; on the fake clock, its microseconds * 1000. */
int64_t hostd_realtime_ns(const struct hostd *h);

/* Ready t (stopped); data is the caller's. */
void htimer_init(struct hostd *h, struct htimer *t, htimer_cb cb, void *data);
/* Fire at due_us (monotonic), rounded up to its slot's end; a deadline
 * passed fires in the next slot (from the loop, never from inside this
 * call). Restarting moves it. */
void htimer_start_at(struct htimer *t, uint64_t due_us);
/* Fire ms from now. */
void htimer_start_in(struct htimer *t, uint64_t ms);
void htimer_stop(struct htimer *t);
static inline bool htimer_active(const struct htimer *t)
{
	return t->due_us != 0;
}
/* Stop and release t; closed(t) runs once that is done (later). */
void htimer_close(struct htimer *t, htimer_cb closed);

/*
 * The daemon is stopping (h->stopping is set): the wheel's libuv timer is
 * closed as soon as no timer is armed or closing, now or later, so that
 * the loop can end. A timer started after that opens it again.
 */
void clock_stop(struct hostd *h);

/* Tests: run h on a fake clock starting at start_us (before any timer
 * is initialised). */
void clock_fake_enable(struct hostd *h, uint64_t start_us);
/* Tests: move the fake clock by us, firing every timer that falls due,
 * in deadline order, each at its own time; then the close callbacks. */
void clock_fake_advance(struct hostd *h, uint64_t us);
/* Tests: move the fake clock by us without firing anything, as a loop
 * that is busy elsewhere would; the next advance fires them late. */
void clock_fake_stall(struct hostd *h, uint64_t us);

#endif
