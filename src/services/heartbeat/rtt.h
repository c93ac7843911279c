/* SPDX-License-Identifier: MIT */
/* The daemon-wide heartbeat round-trip histogram behind `stats`. */
#ifndef VMIC_SERVICES_HEARTBEAT_RTT_H
#define VMIC_SERVICES_HEARTBEAT_RTT_H

#include <stdint.h>

/* Log-scale RTT histogram: 8 buckets per power of two. */
#define RTT_BUCKETS 256
struct rtt_hist {
	uint64_t count[RTT_BUCKETS];
	uint64_t samples;
	uint64_t max;
};

/* Count one round trip, O(1). */
void rtt_add(struct rtt_hist *r, uint64_t us);
/* Value at percentile p (0..100) as a bucket's upper bound; 0 if empty. */
uint64_t rtt_percentile(const struct rtt_hist *r, double p);
/* Start a new measuring period (`stats` with "reset"). */
void rtt_reset(struct rtt_hist *r);

#endif
