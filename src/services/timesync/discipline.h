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

struct ts_disc_config {
	int64_t step_threshold_ns;
	bool step_backward;
	unsigned min_interval_ms, max_interval_ms;
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
};

enum ts_disc_action {
	TS_DISC_SLEW,
	TS_DISC_STEP,
};

struct ts_disc_out {
	enum ts_disc_action action;
	int64_t step_ns;     /* TS_DISC_STEP: move the clock by this */
	int64_t freq_ppb;    /* then set this frequency correction */
	bool back_refused;   /* a backward step was wanted and not allowed */
	unsigned interval_ms; /* until the next measurement */
};

/* A fresh discipline at the shortest interval. */
void ts_disc_init(struct ts_disc *d, unsigned min_interval_ms);
/* Forget the line (the clock jumped, the VM was paused); the frequency
 * in force stays. */
void ts_disc_reset(struct ts_disc *d);
/*
 * One measured offset (true time minus the clock) at monotonic time
 * now_ns, from a sample with round-trip delay_ns. force: step by the
 * offset whatever its size (a sync); allow_back: this step may go back
 * even if cfg says otherwise. Fills out; the caller applies it and then
 * calls ts_disc_applied (or ts_disc_reset when the clock refused).
 */
void ts_disc_update(struct ts_disc *d, const struct ts_disc_config *cfg,
		    int64_t now_ns, int64_t offset_ns, int64_t delay_ns,
		    bool force, bool allow_back, struct ts_disc_out *out);
/* out was applied to the clock at monotonic time now_ns. */
void ts_disc_applied(struct ts_disc *d, const struct ts_disc_out *out,
		     int64_t now_ns);
/* Measurement only (chrony or report modes): the interval backs off on
 * calm offsets the same way; returns the next interval. */
unsigned ts_disc_observe(struct ts_disc *d, const struct ts_disc_config *cfg,
			 int64_t offset_ns, int64_t delay_ns);

#endif
