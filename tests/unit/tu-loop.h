/* SPDX-License-Identifier: MIT */
/*
 * Loop helpers for the unit tests that drive a real libuv loop: run it
 * until a condition holds (failing after a deadline), or for a while.
 * The loop must have something that wakes it now and then (a timer or
 * traffic), since one turn may block.
 */
#ifndef VMIC_TU_LOOP_H
#define VMIC_TU_LOOP_H

#include <stdint.h>
#include <time.h>

#include <uv.h>

static inline uint64_t tu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define TU_SPIN_UNTIL(loop, cond, ms)                                     \
	do {                                                              \
		uint64_t end_ = tu_now_ms() + (ms);                       \
		while (!(cond)) {                                         \
			if (tu_now_ms() > end_)                           \
				fail_msg("timed out waiting for %s", #cond); \
			uv_run((loop), UV_RUN_ONCE);                      \
		}                                                         \
	} while (0)

/* Run the loop for a while (to show that something does NOT happen). */
static inline void tu_spin_for(uv_loop_t *loop, unsigned ms)
{
	uint64_t end = tu_now_ms() + ms;

	while (tu_now_ms() < end)
		uv_run(loop, UV_RUN_ONCE);
}

#endif
