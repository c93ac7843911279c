/* SPDX-License-Identifier: MIT */
#include "services/timesync/discipline.h"

#include <string.h>

#include "common/saturate.h"
#include "guest/service-api.h"

#define NSEC 1e9

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void ts_disc_init(struct ts_disc *d, unsigned min_interval_ms)
{
	memset(d, 0, sizeof(*d));
	d->interval_ms = min_interval_ms;
}

void ts_disc_reset(struct ts_disc *d)
{
	d->n = 0;
	d->head = 0;
	d->calm = 0;
}

/* Add what the frequency in force did to the clock up to now. */
static void disc_advance(struct ts_disc *d, int64_t now_ns)
{
	if (d->started && now_ns > d->freq_since_ns)
		d->corr_ns = vmic_sat_add64(
			d->corr_ns,
			vmic_sat_round64((double)d->freq_ppb *
					 ((double)now_ns -
					  (double)d->freq_since_ns) /
					 NSEC));
	d->freq_since_ns = now_ns;
	d->started = true;
}

/* Refill the step budget for the monotonic time since it was last. */
static void budget_refill(struct ts_disc *d, const struct ts_disc_config *cfg,
			  int64_t now_ns)
{
	double per_ns = (double)cfg->max_step_ns / (double)TS_BUDGET_PERIOD_NS;

	if (!d->budget_started) {
		d->budget_ns = cfg->max_step_ns;
		d->budget_started = true;
	} else if (now_ns > d->budget_at_ns) {
		d->budget_ns = vmic_sat_add64(
			d->budget_ns,
			vmic_sat_round64(((double)now_ns -
					  (double)d->budget_at_ns) *
					 per_ns));
	}
	/* max-step may have shrunk (a reload). */
	if (d->budget_ns > cfg->max_step_ns)
		d->budget_ns = cfg->max_step_ns;
	d->budget_at_ns = now_ns;
}

static void disc_push(struct ts_disc *d, int64_t t_ns, int64_t raw_ns)
{
	d->hist[d->head] = (struct ts_point){ t_ns, raw_ns };
	d->head = (d->head + 1) % TS_HIST;
	if (d->n < TS_HIST)
		d->n++;
}

/*
 * The least-squares line through the history: its value at t_ns and its
 * slope in ppb. false with fewer than three points or no time spread.
 */
static bool disc_line(const struct ts_disc *d, int64_t t_ns, double *at,
		      double *slope_ppb)
{
	double mt = 0, mr = 0, sxx = 0, sxy = 0;

	if (d->n < 3)
		return false;
	for (unsigned i = 0; i < d->n; i++) {
		mt += ((double)d->hist[i].t_ns - (double)t_ns) / NSEC;
		mr += (double)d->hist[i].raw_ns;
	}
	mt /= d->n;
	mr /= d->n;
	for (unsigned i = 0; i < d->n; i++) {
		double x = ((double)d->hist[i].t_ns - (double)t_ns) / NSEC -
			   mt;

		sxx += x * x;
		sxy += x * ((double)d->hist[i].raw_ns - mr);
	}
	if (sxx < 1e-6)
		return false;
	*slope_ppb = sxy / sxx; /* ns per second = ppb */
	*at = mr - *slope_ppb * mt;
	return true;
}

/* The interval after a cycle with this offset: back off when calm. */
static unsigned disc_next_interval(struct ts_disc *d,
				   const struct ts_disc_config *cfg,
				   int64_t offset_ns, int64_t delay_ns,
				   bool stepped)
{
	int64_t twice = vmic_sat_add64(delay_ns, delay_ns);
	int64_t calm = twice > TS_CALM_NS ? twice : TS_CALM_NS;

	if (stepped || vmic_sat_abs64(offset_ns) > calm) {
		d->calm = 0;
		d->interval_ms = cfg->min_interval_ms;
	} else if (++d->calm >= TS_STABLE_RUN) {
		d->calm = 0;
		d->interval_ms = d->interval_ms * 2 > cfg->max_interval_ms
					 ? cfg->max_interval_ms
					 : d->interval_ms * 2;
	}
	if (d->interval_ms < cfg->min_interval_ms)
		d->interval_ms = cfg->min_interval_ms;
	if (d->interval_ms > cfg->max_interval_ms)
		d->interval_ms = cfg->max_interval_ms;
	return d->interval_ms;
}

unsigned ts_disc_observe(struct ts_disc *d, const struct ts_disc_config *cfg,
			 int64_t offset_ns, int64_t delay_ns)
{
	return disc_next_interval(d, cfg, offset_ns, delay_ns, false);
}

enum ts_disc_refusal ts_disc_sane(const struct ts_disc_config *cfg,
				  int64_t clock_ns, int64_t offset_ns,
				  bool *unset)
{
	int64_t target;

	*unset = false;
	/* A time past what an int64_t of ns holds is no time. */
	if (__builtin_add_overflow(clock_ns, offset_ns, &target))
		return TS_REFUSE_TOO_FAR;
	if (target < cfg->build_ns)
		return TS_REFUSE_PAST;
	if (clock_ns < cfg->build_ns) {
		*unset = true;
		return TS_REFUSE_NONE;
	}
	if (cfg->max_step_ns > 0 &&
	    vmic_sat_abs64(offset_ns) > cfg->max_step_ns)
		return TS_REFUSE_TOO_FAR;
	return TS_REFUSE_NONE;
}

/* The offset is not believed: nothing changes but the interval. */
static void disc_refuse(struct ts_disc *d, const struct ts_disc_config *cfg,
			enum ts_disc_refusal why, struct ts_disc_out *out)
{
	out->action = TS_DISC_REFUSE;
	out->refused = why;
	out->freq_ppb = d->freq_ppb;
	out->interval_ms = cfg->min_interval_ms;
}

void ts_disc_update(struct ts_disc *d, const struct ts_disc_config *cfg,
		    int64_t now_ns, int64_t clock_ns, int64_t offset_ns,
		    int64_t delay_ns, bool force, bool allow_back,
		    struct ts_disc_out *out)
{
	double at, slope;
	int64_t raw, left, phase, freq, size = vmic_sat_abs64(offset_ns);
	bool back_ok = allow_back || cfg->step_backward;
	bool want, step;
	enum ts_disc_refusal why;

	memset(out, 0, sizeof(*out));
	if (cfg->max_step_ns > 0)
		budget_refill(d, cfg, now_ns);
	out->budget_ns = d->budget_ns;
	why = ts_disc_sane(cfg, clock_ns, offset_ns, &out->unset);
	want = force || out->unset || size >= cfg->step_threshold_ns;
	step = want && (offset_ns >= 0 || back_ok);
	if (why == TS_REFUSE_NONE && step && !out->unset &&
	    cfg->max_step_ns > 0 && size > d->budget_ns)
		why = TS_REFUSE_BUDGET;
	if (why != TS_REFUSE_NONE) {
		disc_refuse(d, cfg, why, out);
		return;
	}
	disc_advance(d, now_ns);
	raw = vmic_sat_add64(offset_ns, d->corr_ns);
	/* Far off the line: the clock jumped; start a new line. */
	if (disc_line(d, now_ns, &at, &slope) &&
	    vmic_sat_abs64(vmic_sat_sub64(raw, vmic_sat_round64(at))) >
		    TS_JUMP_NS)
		ts_disc_reset(d);
	disc_push(d, now_ns, raw);

	left = offset_ns;
	if (step) {
		out->action = TS_DISC_STEP;
		out->step_ns = offset_ns;
		left = 0;
	} else if (want) {
		out->back_refused = true;
	}
	out->interval_ms = disc_next_interval(d, cfg, offset_ns, delay_ns,
					      out->action == TS_DISC_STEP);
	if (disc_line(d, now_ns, &at, &slope)) {
		d->drift_ppb = clamp64(vmic_sat_round64(slope),
				       -GUEST_CLOCK_FREQ_MAX_PPB,
				       GUEST_CLOCK_FREQ_MAX_PPB);
		/* The line's offset is the measured one, less its noise. */
		if (out->action != TS_DISC_STEP && !out->back_refused)
			left = vmic_sat_sub64(vmic_sat_round64(at),
					      d->corr_ns);
	}
	/* Remove what is left over two intervals. */
	phase = vmic_sat_round64((double)left * NSEC /
				 (2.0 * out->interval_ms * 1e6));
	freq = vmic_sat_add64(d->drift_ppb, phase);
	out->freq_ppb = clamp64(freq, -GUEST_CLOCK_FREQ_MAX_PPB,
				GUEST_CLOCK_FREQ_MAX_PPB);
}

void ts_disc_applied(struct ts_disc *d, const struct ts_disc_out *out,
		     int64_t now_ns)
{
	if (out->action == TS_DISC_REFUSE)
		return;
	disc_advance(d, now_ns);
	if (out->action == TS_DISC_STEP) {
		d->corr_ns = vmic_sat_add64(d->corr_ns, out->step_ns);
		if (!out->unset)
			d->budget_ns = vmic_sat_sub64(
				d->budget_ns, vmic_sat_abs64(out->step_ns));
	}
	d->freq_ppb = out->freq_ppb;
}
