/* SPDX-License-Identifier: MIT */
/*
 * The clock discipline of the time service, as pure arithmetic: offsets
 * in, a step and a frequency correction out. No clock is read here, so
 * the unit tests drive it through days of simulated drift.
 *
 * The model: the guest's clock, left alone, drifts from true time at a
 * constant rate. Everything the agent did to the clock (steps, and each
 * frequency correction times how long it was in force) is summed in
 * corr_ns, so offset + corr_ns is the offset the clock would have had
 * without us: a straight line whose slope is the drift. A least-squares
 * line through the last TS_HIST such points gives the drift (and a
 * smoothed offset), whatever corrections were made meanwhile. The
 * frequency set is then the drift plus what removes the remaining offset
 * over two intervals, like a PI loop whose integral is the line.
 *
 * Steps: when |offset| >= the step threshold or a sync forces one; never
 * backwards unless allowed (a refused backward step slews instead, at the
 * fastest rate). The interval doubles after TS_STABLE_RUN calm cycles,
 * from min to max, and drops back to min after a step or a large offset.
 *
 * Sanity ([timesync] max-step; the reasoning of chrony's makestep and
 * maxchange): the offsets come from the host, which may be wrong or
 * hostile. An offset is not acted on at all (neither stepped nor slewed
 * towards, nor kept in the line) when
 * - it would set the clock before the agent's build date (no true time
 *   is earlier), or
 * - it is larger than max-step, unless the clock reads before the build
 *   date (it was never set: a VM without an RTC) and the offset brings
 *   it forward past that date, which any size may, or
 * - it would be a step larger than what is left of the step budget:
 *   steps spend max-step a day, so however many steps a host asks for
 *   (SYNCs, samples that move each cycle), the clock moves by at most
 *   max-step in a day. The budget starts full and refills at max-step
 *   per day of monotonic time (which stands still while the VM is
 *   paused). The step out of a never-set clock spends nothing.
 * Every sum of peer numbers here saturates instead of overflowing.
 */
#ifndef VMIC_TIMESYNC_DISCIPLINE_H
#define VMIC_TIMESYNC_DISCIPLINE_H

#include <stdbool.h>
#include <stdint.h>

#define TS_HIST 16
#define TS_STABLE_RUN 4
/* An offset this far from the line means the clock jumped (a pause, or
 * someone set it): the line starts again. */
#define TS_JUMP_NS 10000000LL
/* Calm: within this, or twice the sample's delay if that is more. */
#define TS_CALM_NS 200000LL
/* The step budget refills by max-step over this much monotonic time. */
#define TS_BUDGET_PERIOD_NS (86400LL * 1000000000LL)

struct ts_disc_config {
	int64_t step_threshold_ns;
	bool step_backward;
	unsigned min_interval_ms, max_interval_ms;
	int64_t max_step_ns; /* the sanity bound; 0: none */
	int64_t build_ns;    /* no true time is before it; INT64_MIN: none */
};

struct ts_point {
	int64_t t_ns;   /* monotonic time of the measurement */
	int64_t raw_ns; /* offset + corrections so far */
};

struct ts_disc {
	int64_t corr_ns;      /* steps + integral of the frequency set */
	int64_t freq_ppb;     /* frequency correction in force */
	int64_t drift_ppb;    /* estimated correction that cancels drift */
	int64_t freq_since_ns; /* monotonic time freq_ppb took effect */
	bool started;
	struct ts_point hist[TS_HIST];
	unsigned n, head;
	unsigned interval_ms;
	unsigned calm;
	/* the step budget */
	int64_t budget_ns;    /* what steps may still spend */
	int64_t budget_at_ns; /* monotonic time budget_ns was brought up to */
	bool budget_started;
};

enum ts_disc_action {
	TS_DISC_SLEW,
	TS_DISC_STEP,
	TS_DISC_REFUSE, /* the offset is not believed: leave the clock */
};

/* Why an offset is not acted on (see the top of the file). */
enum ts_disc_refusal {
	TS_REFUSE_NONE,
	TS_REFUSE_TOO_FAR, /* |offset| > max-step */
	TS_REFUSE_PAST,    /* the clock would read before the build date */
	TS_REFUSE_BUDGET,  /* a step past what the budget has left */
};

struct ts_disc_out {
	enum ts_disc_action action;
	enum ts_disc_refusal refused; /* TS_DISC_REFUSE: why */
	int64_t step_ns;     /* TS_DISC_STEP: move the clock by this */
	int64_t freq_ppb;    /* then set this frequency correction */
	bool back_refused;   /* a backward step was wanted and not allowed */
	bool unset;          /* the clock read before the build date */
	int64_t budget_ns;   /* what the step budget holds before this */
	unsigned interval_ms; /* until the next measurement */
};

/* A fresh discipline at the shortest interval. */
void ts_disc_init(struct ts_disc *d, unsigned min_interval_ms);
/* Forget the line (the clock jumped, the VM was paused); the frequency
 * in force stays. */
void ts_disc_reset(struct ts_disc *d);
/*
 * May the clock, reading clock_ns, be moved by offset_ns? The first two
 * rules at the top of the file (the budget is ts_disc_update's):
 * TS_REFUSE_NONE, TS_REFUSE_TOO_FAR or TS_REFUSE_PAST. *unset: the clock
 * reads before the build date, and the offset may move it any distance
 * forward.
 */
enum ts_disc_refusal ts_disc_sane(const struct ts_disc_config *cfg,
				  int64_t clock_ns, int64_t offset_ns,
				  bool *unset);
/*
 * One measured offset (true time minus the clock) at monotonic time
 * now_ns, when the clock read clock_ns, from a sample with round-trip
 * delay_ns. force: step by the offset whatever its size (a sync), within
 * the sanity bound; allow_back: this step may go back even if cfg says
 * otherwise. Fills out; on TS_DISC_REFUSE the caller leaves the clock
 * alone, else applies out and then calls ts_disc_applied (or
 * ts_disc_reset when the clock refused).
 */
void ts_disc_update(struct ts_disc *d, const struct ts_disc_config *cfg,
		    int64_t now_ns, int64_t clock_ns, int64_t offset_ns,
		    int64_t delay_ns, bool force, bool allow_back,
		    struct ts_disc_out *out);
/* out was applied to the clock at monotonic time now_ns (a step spends
 * from the budget). */
void ts_disc_applied(struct ts_disc *d, const struct ts_disc_out *out,
		     int64_t now_ns);
/* Measurement only (chrony or report modes): the interval backs off on
 * calm offsets the same way; returns the next interval. */
unsigned ts_disc_observe(struct ts_disc *d, const struct ts_disc_config *cfg,
			 int64_t offset_ns, int64_t delay_ns);

#endif
