/* SPDX-License-Identifier: MIT */
/*
 * 64-bit arithmetic on numbers a peer chose (timestamps and offsets from
 * the wire): sums that stop at INT64_MIN or INT64_MAX instead of
 * overflowing, which in C is undefined, and conversions from double that
 * do the same where a plain cast would be undefined. A saturated result
 * is absurd, and the callers' bounds refuse it as such.
 */
#ifndef VMIC_SATURATE_H
#define VMIC_SATURATE_H

#include <stdint.h>

static inline int64_t vmic_sat_add64(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static inline int64_t vmic_sat_sub64(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_sub_overflow(a, b, &r))
		return b < 0 ? INT64_MAX : INT64_MIN;
	return r;
}

/* |v|, with |INT64_MIN| as INT64_MAX. */
static inline int64_t vmic_sat_abs64(int64_t v)
{
	return v >= 0 ? v : v == INT64_MIN ? INT64_MAX : -v;
}

/* -v, with -INT64_MIN as INT64_MAX. */
static inline int64_t vmic_sat_neg64(int64_t v)
{
	return v == INT64_MIN ? INT64_MAX : -v;
}

/* x rounded to the nearest integer, within [INT64_MIN, INT64_MAX]; NaN
 * is 0. 2^63 is exact as a double, so the comparisons are too. */
static inline int64_t vmic_sat_round64(double x)
{
	if (__builtin_isnan(x))
		return 0;
	if (x >= 9223372036854775808.0)
		return INT64_MAX;
	if (x <= -9223372036854775808.0)
		return INT64_MIN;
	x = x >= 0 ? x + 0.5 : x - 0.5;
	/* Adding a half may have reached 2^63 again. */
	if (x >= 9223372036854775808.0)
		return INT64_MAX;
	return (int64_t)x;
}

#endif
