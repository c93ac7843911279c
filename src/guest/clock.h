/* SPDX-License-Identifier: MIT */
/*
 * The guest's wall clock as the agent sees it: read, step, and set a
 * frequency correction. Two implementations behind one struct:
 *
 * - the real one: CLOCK_REALTIME, adjtimex(ADJ_SETOFFSET) for steps (to
 *   the microsecond) and adjtimex(ADJ_FREQUENCY) for slewing;
 * - a simulated one (vmic-guestd --simulated-clock OFFSET_S[,DRIFT_PPM]):
 *   the machine's CLOCK_REALTIME plus an offset that drifts by DRIFT_PPM
 *   and follows the steps and frequency corrections the agent makes, so
 *   tests and benchmarks run the real time service without ever setting
 *   the clock of the machine they run on. Its "true error" is known
 *   exactly, which is what the tests check.
 *
 * Everything the time service does to a clock goes through here.
 */
#ifndef VMIC_GUEST_CLOCK_H
#define VMIC_GUEST_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The kernel's limit on a frequency correction (MAXFREQ): 500 ppm. */
#define GUEST_CLOCK_FREQ_MAX_PPB 500000

struct guest_clock {
	bool simulated;
	/* simulated only */
	double sim_offset_ns;   /* this clock minus CLOCK_REALTIME */
	int64_t sim_drift_ppb;  /* how fast it runs on its own */
	int64_t sim_freq_ppb;   /* the correction the agent set */
	int64_t sim_base_ns;    /* CLOCK_REALTIME at the last update */
};

/*
 * Parse "OFFSET_S[,DRIFT_PPM]" (seconds and ppm, decimals allowed, either
 * sign; |offset| <= 4e9 s, |drift| <= 1000 ppm) into a simulated clock.
 * -EINVAL with a sentence in err.
 */
int guest_clock_parse_simulated(const char *spec, struct guest_clock *c,
				char *err, size_t errsz);
/* The real clock. */
void guest_clock_init_real(struct guest_clock *c);

/* The clock now, in nanoseconds since the epoch. */
int64_t guest_clock_now(struct guest_clock *c);
/* Move the clock by delta_ns at once (either sign); 0 or -errno. */
int guest_clock_step(struct guest_clock *c, int64_t delta_ns);
/* Run the clock faster by ppb parts per billion (negative: slower),
 * within +-GUEST_CLOCK_FREQ_MAX_PPB; replaces the previous correction.
 * 0 or -errno. */
int guest_clock_set_freq(struct guest_clock *c, int64_t ppb);
/* Simulated clock only: CLOCK_REALTIME minus this clock, the error the
 * time service should drive to zero. 0 for the real clock. */
int64_t guest_clock_true_error(struct guest_clock *c);
/* A reading t of this clock as the machine's CLOCK_REALTIME then: t for
 * the real clock. A chronyd on the machine runs on that clock, so its
 * samples must carry it; their offset then is the simulated clock's, and
 * chronyd disciplines (with -x, virtually) a clock with the same error. */
int64_t guest_clock_to_system(struct guest_clock *c, int64_t t);

/*
 * The day before this agent was built (__DATE__, which compilers take
 * from SOURCE_DATE_EPOCH in reproducible builds; a day before, since it
 * is a local date), at 00:00 UTC, in ns since the epoch: no true time is
 * earlier, so a clock that reads earlier was never set (a VM without a
 * battery-backed RTC), and a time source that says earlier is wrong.
 */
int64_t guest_clock_build_ns(void);

#endif
