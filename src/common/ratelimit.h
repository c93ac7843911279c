/* SPDX-License-Identifier: MIT */
/*
 * Rate limits for log lines that a peer can provoke: a process that
 * connects every 200 ms must not write a line every 200 ms. The caller
 * passes the time, so the limiter is pure and any clock will do (the
 * daemons pass their loop's uv_now()).
 */
#ifndef VMIC_RATELIMIT_H
#define VMIC_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

/* Lines of one kind, at most one per interval. */
struct vmic_ratelimit {
	uint64_t interval_ms;
	uint64_t last_ms;    /* when the last line was let through */
	uint64_t suppressed; /* lines held back since then */
	bool started;        /* a line was let through already */
};

#define VMIC_RATELIMIT_INIT(ms) { .interval_ms = (ms) }

/*
 * May a line be logged at now_ms? The first line always may, later ones
 * when interval_ms has passed since the last that was let through. On true,
 * *suppressed is how many were held back in between (to say so in the
 * line); on false the line counts as held back.
 */
bool vmic_ratelimit_pass(struct vmic_ratelimit *rl, uint64_t now_ms,
			 uint64_t *suppressed);

#endif
