/* SPDX-License-Identifier: MIT */
#include "guest/clock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
#include <time.h>

#include "common/saturate.h"

#define NSEC 1000000000LL
/* The simulated clock's offset may reach about 126 years either way:
 * far enough for a clock before the agent's build date (1970 today),
 * near enough that the offset in nanoseconds fits an int64_t. */
#define SIM_OFFSET_MAX_S 4e9

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
	if (parse_number(buf, SIM_OFFSET_MAX_S, &offset_s) < 0 ||
	    (comma && parse_number(comma + 1, 1000, &drift_ppm) < 0))
		goto bad;
	memset(c, 0, sizeof(*c));
	c->simulated = true;
	c->sim_offset_ns = offset_s * 1e9;
	c->sim_drift_ppb = vmic_sat_round64(drift_ppm * 1000);
	c->sim_base_ns = realtime_ns();
	return 0;
bad:
	snprintf(err, errsz,
		 "'%s' is not OFFSET_S[,DRIFT_PPM] (seconds within 4e9, ppm "
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
	/* After steps by absurd amounts the sum saturates, never wraps. */
	return vmic_sat_add64(real, vmic_sat_round64(c->sim_offset_ns));
}

int guest_clock_step(struct guest_clock *c, int64_t delta_ns)
{
	/* Microseconds: ADJ_NANO would leave the kernel in nanosecond mode
	 * (STA_NANO) for every other reader of adjtimex. */
	struct timex tx = { .modes = ADJ_SETOFFSET };
	int64_t us = delta_ns / 1000;
	struct timespec ts;
	int64_t t, nsec;

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
	/* Kernels before 2.6.39: read, add, set. An absurd sum saturates
	 * and the kernel refuses it. */
	t = vmic_sat_add64(realtime_ns(), delta_ns);
	nsec = t % NSEC;
	ts.tv_sec = t / NSEC - (nsec < 0);
	ts.tv_nsec = nsec < 0 ? nsec + NSEC : nsec;
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
	return vmic_sat_sub64(t, vmic_sat_round64(c->sim_offset_ns));
}

int64_t guest_clock_true_error(struct guest_clock *c)
{
	if (!c->simulated)
		return 0;
	sim_update(c);
	return vmic_sat_neg64(vmic_sat_round64(c->sim_offset_ns));
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

int64_t guest_clock_build_ns(void)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *date = __DATE__; /* "Mmm dd yyyy" */
	const char *m = strstr(months, (char[4]){ date[0], date[1], date[2],
						   '\0' });
	unsigned day = (unsigned)atoi(date + 4);
	int64_t year = atoi(date + 7);

	if (!m || (m - months) % 3 || day < 1 || day > 31 || year < 1970)
		return 0; /* a compiler with another format: the epoch */
	/* __DATE__ is the build machine's local date, which begins up to
	 * 14 hours before that day does in UTC: a day earlier is safe. */
	return (days_from_civil(year, (unsigned)(m - months) / 3 + 1, day) -
		1) * 86400 * NSEC;
}
