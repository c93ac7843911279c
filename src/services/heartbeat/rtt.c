/* SPDX-License-Identifier: MIT */
/*
 * The daemon-wide heartbeat round-trip histogram behind `stats`.
 *
 * Values below 16 us get a bucket each; above, every power of two is cut
 * into 8 buckets, so a percentile is exact to within 12.5% at any scale,
 * in 2 KiB and O(1) per sample.
 */
#include <string.h>

#include "common/macro.h"
#include "services/heartbeat/rtt.h"

#define SUB_BITS 3
#define SUB (1u << SUB_BITS)
#define LINEAR 16u

static unsigned bucket_of(uint64_t us)
{
	unsigned e, idx;

	if (us < LINEAR)
		return (unsigned)us;
	e = 63u - (unsigned)__builtin_clzll(us); /* >= 4 */
	idx = LINEAR + (e - 4) * SUB +
	      (unsigned)((us >> (e - SUB_BITS)) & (SUB - 1));
	return idx < RTT_BUCKETS ? idx : RTT_BUCKETS - 1;
}

/* Largest value that falls into bucket idx. */
static uint64_t bucket_upper(unsigned idx)
{
	unsigned e, sub;

	if (idx < LINEAR)
		return idx;
	e = (idx - LINEAR) / SUB + 4;
	sub = (idx - LINEAR) % SUB;
	return ((uint64_t)(SUB + sub + 1) << (e - SUB_BITS)) - 1;
}

void rtt_add(struct rtt_hist *r, uint64_t us)
{
	r->count[bucket_of(us)]++;
	r->samples++;
	if (us > r->max)
		r->max = us;
}

uint64_t rtt_percentile(const struct rtt_hist *r, double p)
{
	uint64_t rank, seen = 0;

	if (r->samples == 0)
		return 0;
	rank = (uint64_t)((double)r->samples * p / 100.0 + 0.5);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < RTT_BUCKETS; i++) {
		seen += r->count[i];
		if (seen >= rank)
			return MIN(bucket_upper(i), r->max);
	}
	return r->max;
}

void rtt_reset(struct rtt_hist *r)
{
	memset(r, 0, sizeof(*r));
}
