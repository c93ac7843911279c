/* SPDX-License-Identifier: MIT */
#include "guest/clock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
#include <time.h>

#define NSEC 1000000000LL

/* Round to the nearest integer without libm (the static agent links
 * none). */
static int64_t round_i64(double x)
{
	return (int64_t)(x >= 0 ? x + 0.5 : x - 0.5);
}

static int64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NSEC + ts.tv_nsec;
}

/* A decimal number with nothing after it, within +-limit. */
static int parse_number(const char *s, double limit, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno || end == s || *end || !(*out <= limit && *out >= -limit))
		return -EINVAL;
	return 0;
}

int guest_clock_parse_simulated(const char *spec, struct guest_clock *c,
				char *err, size_t errsz)
{
	char buf[64], *comma;
	double offset_s, drift_ppm = 0;

	if (strlen(spec) >= sizeof(buf))
		goto bad;
	snprintf(buf, sizeof(buf), "%s", spec);
	comma = strchr(buf, ',');
	if (comma)
		*comma = '\0';
	if (parse_number(buf, 1e6, &offset_s) < 0 ||
	    (comma && parse_number(comma + 1, 1000, &drift_ppm) < 0))
		goto bad;
	memset(c, 0, sizeof(*c));
	c->simulated = true;
	c->sim_offset_ns = offset_s * 1e9;
	c->sim_drift_ppb = (int64_t)round_i64(drift_ppm * 1000);
	c->sim_base_ns = realtime_ns();
	return 0;
bad:
	snprintf(err, errsz,
		 "'%s' is not OFFSET_S[,DRIFT_PPM] (seconds within 1e6, ppm "
		 "within 1000; example: -30,100)",
		 spec);
	return -EINVAL;
}

void guest_clock_init_real(struct guest_clock *c)
{
	memset(c, 0, sizeof(*c));
}

/* Bring the simulated offset up to now: it moved by drift + correction. */
static int64_t sim_update(struct guest_clock *c)
{
	int64_t now = realtime_ns();
	double rate = (double)(c->sim_drift_ppb + c->sim_freq_ppb) * 1e-9;

	c->sim_offset_ns += rate * (double)(now - c->sim_base_ns);
	c->sim_base_ns = now;
	return now;
}

int64_t guest_clock_now(struct guest_clock *c)
{
	int64_t real;

	if (!c->simulated)
		return realtime_ns();
	real = sim_update(c);
	return real + (int64_t)round_i64(c->sim_offset_ns);
}

int guest_clock_step(struct guest_clock *c, int64_t delta_ns)
{
	/* Microseconds: ADJ_NANO would leave the kernel in nanosecond mode
	 * (STA_NANO) for every other reader of adjtimex. */
	struct timex tx = { .modes = ADJ_SETOFFSET };
	int64_t us = delta_ns / 1000;
	struct timespec ts;
	int64_t t;

	if (c->simulated) {
		sim_update(c);
		c->sim_offset_ns += (double)delta_ns;
		return 0;
	}
	/* A relative step in the kernel: no gap between reading and
	 * setting the clock. */
	tx.time.tv_sec = us / 1000000;
	tx.time.tv_usec = us % 1000000;
	if (tx.time.tv_usec < 0) {
		tx.time.tv_sec -= 1;
		tx.time.tv_usec += 1000000;
	}
	if (adjtimex(&tx) >= 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	/* Kernels before 2.6.39: read, add, set. */
	t = realtime_ns() + delta_ns;
	ts.tv_sec = t / NSEC;
	ts.tv_nsec = t % NSEC;
	return clock_settime(CLOCK_REALTIME, &ts) < 0 ? -errno : 0;
}

int guest_clock_set_freq(struct guest_clock *c, int64_t ppb)
{
	struct timex tx = { .modes = ADJ_FREQUENCY };

	if (ppb > GUEST_CLOCK_FREQ_MAX_PPB || ppb < -GUEST_CLOCK_FREQ_MAX_PPB)
		return -ERANGE;
	if (c->simulated) {
		sim_update(c);
		c->sim_freq_ppb = ppb;
		return 0;
	}
	/* timex.freq is ppm with a 16-bit fraction. */
	tx.freq = (long)(ppb * 65536 / 1000);
	return adjtimex(&tx) < 0 ? -errno : 0;
}

int64_t guest_clock_to_system(struct guest_clock *c, int64_t t)
{
	if (!c->simulated)
		return t;
	sim_update(c);
	return t - round_i64(c->sim_offset_ns);
}

int64_t guest_clock_true_error(struct guest_clock *c)
{
	if (!c->simulated)
		return 0;
	sim_update(c);
	return -(int64_t)round_i64(c->sim_offset_ns);
}
