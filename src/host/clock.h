/* SPDX-License-Identifier: MIT */
/*
 * The daemon's time: a monotonic clock in microseconds, and timers set to
 * an absolute deadline. A repeating tick that sets its next deadline from
 * the previous one (not from "now") keeps its phase: libuv re-arms a
 * repeating timer from the loop's time, so timers that fire in one loop
 * iteration would share a phase from then on.
 *
 * In the daemon the timers are libuv timers. The unit tests switch a
 * daemon to a fake clock that they move by hand (clock_fake_advance), so
 * the heartbeat and stop state machines run through hours in
 * milliseconds, with nothing else changed.
 */
#ifndef VMIC_HOST_CLOCK_H
#define VMIC_HOST_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct hostd;
struct htimer;

typedef void (*htimer_cb)(struct htimer *t);

struct htimer {
	uv_timer_t uv; /* the real clock's timer */
	struct hostd *h;
	htimer_cb cb;
	htimer_cb closed; /* after htimer_close */
	void *data;
	uint64_t due_us; /* 0 while stopped */
	struct htimer *next; /* the fake clock's lists */
};

/* The fake clock of a daemon (none: the real one). */
struct hclock {
	bool fake;
	uint64_t now_us;
	struct htimer *timers; /* armed, in no order */
	struct htimer *closing;
};

/* Monotonic microseconds: the real clock, or the fake one. */
uint64_t hostd_now_us(const struct hostd *h);
/* Wall-clock nanoseconds since the epoch (CLOCK_REALTIME), the time the
 * host gives its guests; on the fake clock, its microseconds * 1000. */
int64_t hostd_realtime_ns(const struct hostd *h);

/* Ready t (stopped); data is the caller's. */
void htimer_init(struct hostd *h, struct htimer *t, htimer_cb cb, void *data);
/* Fire at due_us (monotonic); a deadline passed fires at once (from the
 * loop, never from inside this call). Restarting moves it. */
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
