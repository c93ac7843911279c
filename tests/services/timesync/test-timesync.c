/* SPDX-License-Identifier: MIT */
/*
 * The time service's pure parts: its messages, the four-timestamp
 * arithmetic, the discipline driven through hours of a modelled clock
 * (offset, drift, measurement noise), and the choice of mode.
 */
#include "testutil.h"

#include <errno.h>
#include <time.h>

#include "common/macro.h"
#include "guest/clock.h"
#include "proto/services.h"
#include "services/timesync/discipline.h"
#include "services/timesync/env.h"
#include "services/timesync/timesync.h"

#define MS 1000000LL
#define SEC 1000000000LL
#define DAY (86400 * SEC)
/* True time at the start of every modelled run (November 2023), and a
 * build date before it. */
#define TRUE0 (1700000000 * SEC)
#define BUILD (1600000000 * SEC)

/* ---- messages ---- */

static void test_codecs_roundtrip(void **state)
{
	uint8_t buf[VMIC_TS_REPORT_MAX_LEN];
	struct vmic_ts_reply r = { -1, 2, INT64_MAX }, r2;
	struct vmic_ts_settings s = { VMIC_TS_POLICY_PTP,
				      VMIC_TS_SET_STEP_BACKWARD, 128 },
				s2;
	struct vmic_ts_sync y = { VMIC_TS_REASON_RESUME, 0 }, y2;
	struct vmic_ts_report p = { .mode = VMIC_TS_MODE_CHRONY_SOCK,
				    .action = VMIC_TS_ACT_FED,
				    .source = VMIC_TS_SRC_CHANNEL,
				    .reason = VMIC_TS_REASON_COMMAND,
				    .flags = VMIC_TS_REP_CHRONY,
				    .offset_ns = -123456789,
				    .delay_ns = 80000,
				    .step_ns = 30 * SEC,
				    .guest_ns = 1700000000 * SEC,
				    .freq_ppb = -100000,
				    .interval_ms = 32000,
				    .detail = "chronyd fed" },
			       p2;
	int64_t t1;
	int n;

	(void)state;
	n = vmic_ts_sample_encode(-5, buf, sizeof(buf));
	assert_int_equal(n, VMIC_TS_SAMPLE_LEN);
	assert_int_equal(vmic_ts_sample_decode(buf, (size_t)n, &t1), 0);
	assert_int_equal(t1, -5);
	n = vmic_ts_reply_encode(&r, buf, sizeof(buf));
	assert_int_equal(n, VMIC_TS_SAMPLE_REPLY_LEN);
	assert_int_equal(vmic_ts_reply_decode(buf, (size_t)n, &r2), 0);
	assert_memory_equal(&r, &r2, sizeof(r));
	n = vmic_ts_settings_encode(&s, buf, sizeof(buf));
	assert_int_equal(n, VMIC_TS_SETTINGS_LEN);
	assert_int_equal(vmic_ts_settings_decode(buf, (size_t)n, &s2), 0);
	assert_int_equal(s2.policy, s.policy);
	assert_int_equal(s2.flags, s.flags);
	assert_int_equal(s2.step_threshold_ms, 128);
	n = vmic_ts_sync_encode(&y, buf, sizeof(buf));
	assert_int_equal(vmic_ts_sync_decode(buf, (size_t)n, &y2), 0);
	assert_int_equal(y2.reason, VMIC_TS_REASON_RESUME);
	n = vmic_ts_report_encode(&p, buf, sizeof(buf));
	assert_int_equal(n, VMIC_TS_REPORT_MIN_LEN + 11);
	assert_int_equal(vmic_ts_report_decode(buf, (size_t)n, &p2), 0);
	assert_int_equal(p2.offset_ns, p.offset_ns);
	assert_int_equal(p2.freq_ppb, -100000);
	assert_int_equal(p2.interval_ms, 32000);
	assert_string_equal(p2.detail, "chronyd fed");
	/* Every message is in the service's table, in its direction. */
	assert_non_null(vmic_msg_find(VMIC_SVC_TIMESYNC, VMIC_TS_REPORT));
	assert_int_equal(vmic_msg_find(VMIC_SVC_TIMESYNC, VMIC_TS_SAMPLE)->dir,
			 VMIC_DIR_G2H);
}

static void test_codecs_reject(void **state)
{
	uint8_t buf[VMIC_TS_REPORT_MAX_LEN];
	struct vmic_ts_settings s = { VMIC_TS_POLICY_AUTO, 0, 128 };
	struct vmic_ts_sync y = { VMIC_TS_REASON_COMMAND, 0 };
	struct vmic_ts_report p = { 0 };
	int n;

	(void)state;
	/* Settings: unknown policy, unknown flag, threshold 0 or past 1 h. */
	vmic_ts_settings_encode(&s, buf, sizeof(buf));
	buf[0] = VMIC_TS_POLICY_COUNT;
	assert_int_equal(vmic_ts_settings_decode(buf, 6, &s), -EBADMSG);
	s = (struct vmic_ts_settings){ 0, 0x80, 128 };
	vmic_ts_settings_encode(&s, buf, sizeof(buf));
	assert_int_equal(vmic_ts_settings_decode(buf, 6, &s), -EBADMSG);
	s = (struct vmic_ts_settings){ 0, 0, 0 };
	vmic_ts_settings_encode(&s, buf, sizeof(buf));
	assert_int_equal(vmic_ts_settings_decode(buf, 6, &s), -EBADMSG);
	s.step_threshold_ms = VMIC_TS_THRESHOLD_MAX_MS + 1;
	vmic_ts_settings_encode(&s, buf, sizeof(buf));
	assert_int_equal(vmic_ts_settings_decode(buf, 6, &s), -EBADMSG);
	assert_int_equal(vmic_ts_settings_decode(buf, 5, &s), -EBADMSG);
	/* Sync: the regular reason is the guest's own, not a request. */
	y.reason = VMIC_TS_REASON_REGULAR;
	vmic_ts_sync_encode(&y, buf, sizeof(buf));
	assert_int_equal(vmic_ts_sync_decode(buf, 2, &y), -EBADMSG);
	/* Report: enums in range, UTF-8 detail. */
	n = vmic_ts_report_encode(&p, buf, sizeof(buf));
	assert_int_equal(vmic_ts_report_decode(buf, (size_t)n, &p), 0);
	buf[0] = VMIC_TS_MODE_COUNT;
	assert_int_equal(vmic_ts_report_decode(buf, (size_t)n, &p), -EBADMSG);
	buf[0] = 0;
	buf[4] = 0x80; /* unknown flag */
	assert_int_equal(vmic_ts_report_decode(buf, (size_t)n, &p), -EBADMSG);
	buf[4] = 0;
	snprintf(p.detail, sizeof(p.detail), "ab");
	n = vmic_ts_report_encode(&p, buf, sizeof(buf));
	buf[n - 1] = 0xff; /* not UTF-8 */
	assert_int_equal(vmic_ts_report_decode(buf, (size_t)n, &p), -EBADMSG);
	assert_int_equal(vmic_ts_report_decode(buf, (size_t)n - 1, &p),
			 -EBADMSG);
	/* A detail too long to send is refused at encoding. */
	memset(p.detail, 'x', VMIC_TS_DETAIL_MAX);
	p.detail[VMIC_TS_DETAIL_MAX] = '\0';
	assert_true(vmic_ts_report_encode(&p, buf, sizeof(buf)) > 0);
	assert_int_equal(vmic_ts_policy_parse("CHRONY"),
			 VMIC_TS_POLICY_CHRONY);
	assert_int_equal(vmic_ts_policy_parse("ntp"), -EINVAL);
}

static void test_offset_arithmetic(void **state)
{
	int64_t off, delay;

	(void)state;
	/* Guest 10 s behind, 100 us each way, 2 us in the host. */
	assert_int_equal(vmic_ts_offset(1000 * SEC, 1010 * SEC + 100000,
					1010 * SEC + 102000,
					1000 * SEC + 202000, &off, &delay),
			 0);
	assert_int_equal(off, 10 * SEC);
	assert_int_equal(delay, 200000);
	/* Odd halves round instead of being lost. */
	assert_int_equal(vmic_ts_offset(0, 1, 2, 2, &off, &delay), 0);
	assert_int_equal(off, 0);
	/* Less time out than the host says it held the request. */
	assert_int_equal(vmic_ts_offset(0, 5, 6, 0, &off, &delay), -ERANGE);
	/* A reply that left before the request came. */
	assert_int_equal(vmic_ts_offset(0, 10, 5, 20, &off, &delay), -ERANGE);
	/* Peer numbers that overflow are refused, not undefined. */
	assert_int_equal(vmic_ts_offset(INT64_MIN, INT64_MAX, INT64_MAX, 0,
					&off, &delay),
			 -ERANGE);
	assert_int_equal(vmic_ts_offset(0, 0, INT64_MIN, INT64_MAX, &off,
					&delay),
			 -ERANGE);
}

/* ---- the discipline against a modelled clock ---- */

struct model {
	double clock_minus_true_ns;
	int64_t drift_ppb;
	int64_t mono_ns;
	uint32_t seed;
	unsigned steps;
	int64_t noise_ns; /* measurement noise, uniform +-noise */
};

static int64_t noise(struct model *m)
{
	m->seed = m->seed * 1103515245u + 12345u;
	if (!m->noise_ns)
		return 0;
	return (int64_t)((m->seed >> 8) % (uint32_t)(2 * m->noise_ns + 1)) -
	       m->noise_ns;
}

static const struct ts_disc_config cfg = {
	.step_threshold_ns = 128 * MS,
	.step_backward = false,
	.min_interval_ms = 2000,
	.max_interval_ms = 32000,
	.max_step_ns = 365 * DAY,
	.build_ns = BUILD,
};

/* The modelled clock's reading. */
static int64_t clock_of(const struct model *m)
{
	return TRUE0 + m->mono_ns + (int64_t)m->clock_minus_true_ns;
}

/* One cycle: measure, decide, apply, and let the interval pass. Returns
 * what the discipline decided. */
static struct ts_disc_out cycle(struct ts_disc *d, struct model *m,
				const struct ts_disc_config *c, bool force,
				bool back)
{
	struct ts_disc_out out;
	int64_t measured = -(int64_t)m->clock_minus_true_ns + noise(m);

	ts_disc_update(d, c, m->mono_ns, clock_of(m), measured, 20000, force,
		       back, &out);
	if (out.action == TS_DISC_STEP) {
		m->clock_minus_true_ns += (double)out.step_ns;
		m->steps++;
	}
	ts_disc_applied(d, &out, m->mono_ns);
	m->clock_minus_true_ns += (double)(m->drift_ppb + d->freq_ppb) *
				  out.interval_ms * 1e-3;
	m->mono_ns += (int64_t)out.interval_ms * MS;
	return out;
}

static double err_us(const struct model *m)
{
	double e = m->clock_minus_true_ns / 1000;

	return e < 0 ? -e : e;
}

/* 30 s behind: one step, then it stays within microseconds. */
static void test_disc_large_offset_steps(void **state)
{
	struct model m = { .clock_minus_true_ns = -30.0 * SEC, .seed = 1 };
	struct ts_disc d;
	struct ts_disc_out out;

	(void)state;
	ts_disc_init(&d, cfg.min_interval_ms);
	out = cycle(&d, &m, &cfg, false, false);
	assert_int_equal(out.action, TS_DISC_STEP);
	assert_int_equal(out.step_ns, 30 * SEC);
	assert_int_equal(out.interval_ms, cfg.min_interval_ms);
	for (int i = 0; i < 50; i++)
		cycle(&d, &m, &cfg, false, false);
	assert_int_equal(m.steps, 1);
	assert_true(err_us(&m) < 1);
}

/* 20 ms off: slewed, never stepped, and never faster than 500 ppm. */
static void test_disc_small_offset_slews(void **state)
{
	struct model m = { .clock_minus_true_ns = 20.0 * MS, .seed = 2 };
	struct ts_disc d;
	struct ts_disc_out out;
	double before;

	(void)state;
	ts_disc_init(&d, cfg.min_interval_ms);
	for (int i = 0; i < 200; i++) {
		before = err_us(&m);
		out = cycle(&d, &m, &cfg, false, false);
		assert_int_equal(out.action, TS_DISC_SLEW);
		assert_true(out.freq_ppb >= -500000 && out.freq_ppb <= 500000);
		/* The error only shrinks while it is large. */
		if (before > 1000)
			assert_true(err_us(&m) < before);
	}
	assert_int_equal(m.steps, 0);
	assert_true(err_us(&m) < 5);
}

/* 100 ppm of drift with 20 us of noise: the frequency found, the error
 * small, the interval backed off to its maximum. */
static void test_disc_tracks_drift(void **state)
{
	struct model m = { .drift_ppb = 100000, .seed = 3, .noise_ns = 20000 };
	struct ts_disc d;
	struct ts_disc_out out = { 0 };
	double worst = 0;

	(void)state;
	ts_disc_init(&d, cfg.min_interval_ms);
	for (int i = 0; i < 400; i++) {
		out = cycle(&d, &m, &cfg, false, false);
		if (i >= 300 && err_us(&m) > worst)
			worst = err_us(&m);
	}
	assert_int_equal(m.steps, 0);
	assert_true(d.drift_ppb > -102000 && d.drift_ppb < -98000);
	assert_true(worst < 100);
	/* Noise of 20 us keeps it calm enough to back off all the way. */
	assert_int_equal(out.interval_ms, cfg.max_interval_ms);
}

/* Ahead by 30 s: no backward step unless allowed; a sync may. */
static void test_disc_backward(void **state)
{
	struct model m = { .clock_minus_true_ns = 30.0 * SEC, .seed = 4 };
	struct ts_disc_config back = cfg;
	struct ts_disc d;
	struct ts_disc_out out;

	(void)state;
	ts_disc_init(&d, cfg.min_interval_ms);
	out = cycle(&d, &m, &cfg, false, false);
	assert_int_equal(out.action, TS_DISC_SLEW);
	assert_true(out.back_refused);
	assert_int_equal(out.freq_ppb, -500000); /* as fast as it may */
	out = cycle(&d, &m, &cfg, true, true); /* an operator's sync */
	assert_int_equal(out.action, TS_DISC_STEP);
	assert_true(out.step_ns < -29 * SEC);
	m.clock_minus_true_ns = 5.0 * SEC;
	back.step_backward = true;
	out = cycle(&d, &m, &back, false, false);
	assert_int_equal(out.action, TS_DISC_STEP);
	assert_false(out.back_refused);
}

/* A sync steps whatever the size; a later jump restarts the line. */
static void test_disc_force_and_jump(void **state)
{
	struct model m = { .clock_minus_true_ns = -500000, .drift_ppb = 50000,
			   .seed = 5 };
	struct ts_disc d;
	struct ts_disc_out out;

	(void)state;
	ts_disc_init(&d, cfg.min_interval_ms);
	out = cycle(&d, &m, &cfg, true, false);
	assert_int_equal(out.action, TS_DISC_STEP);
	assert_int_equal(out.step_ns, 500000);
	for (int i = 0; i < 40; i++)
		cycle(&d, &m, &cfg, false, false);
	assert_true(d.n > 3);
	/* The VM stood still for 10 s: the clock is 10 s behind. */
	m.clock_minus_true_ns -= 10.0 * SEC;
	out = cycle(&d, &m, &cfg, false, false);
	assert_int_equal(out.action, TS_DISC_STEP);
	assert_int_equal(d.n, 1); /* the old line is gone */
	assert_int_equal(out.interval_ms, cfg.min_interval_ms);
	for (int i = 0; i < 60; i++)
		cycle(&d, &m, &cfg, false, false);
	assert_true(err_us(&m) < 5);
}

/* Measurement-only modes back off the same way. */
static void test_disc_observe_backs_off(void **state)
{
	struct ts_disc d;
	unsigned iv = 0;

	(void)state;
	ts_disc_init(&d, cfg.min_interval_ms);
	for (int i = 0; i < 40; i++)
		iv = ts_disc_observe(&d, &cfg, 1000, 20000);
	assert_int_equal(iv, cfg.max_interval_ms);
	iv = ts_disc_observe(&d, &cfg, 5 * MS, 20000);
	assert_int_equal(iv, cfg.min_interval_ms);
}

/* ---- the sanity bound (max-step, the build date, the budget) ---- */

/* One update at monotonic time mono, the clock reading clock_ns. */
static struct ts_disc_out update(struct ts_disc *d,
				 const struct ts_disc_config *c, int64_t mono,
				 int64_t clock_ns, int64_t offset, bool force,
				 bool back)
{
	struct ts_disc_out out;

	ts_disc_update(d, c, mono, clock_ns, offset, 20000, force, back, &out);
	return out;
}

/* Absurd offsets are refused whole: no step, no slew towards them, no
 * point on the line; a sync may not force them either. */
static void test_bound_refuses_absurd(void **state)
{
	struct ts_disc d;
	struct ts_disc_out out;
	int64_t century = 36525 * DAY;
	bool unset;

	(void)state;
	ts_disc_init(&d, cfg.min_interval_ms);
	d.freq_ppb = 1234;
	out = update(&d, &cfg, 0, TRUE0, century, false, false);
	assert_int_equal(out.action, TS_DISC_REFUSE);
	assert_int_equal(out.refused, TS_REFUSE_TOO_FAR);
	assert_int_equal(out.freq_ppb, 1234);
	assert_int_equal(out.interval_ms, cfg.min_interval_ms);
	assert_int_equal(d.n, 0);
	ts_disc_applied(&d, &out, 0);
	assert_int_equal(d.corr_ns, 0);
	assert_int_equal(d.freq_ppb, 1234);
	/* A sync, with stepping back allowed, changes nothing. */
	out = update(&d, &cfg, SEC, TRUE0, -2 * 365 * DAY, true, true);
	assert_int_equal(out.refused, TS_REFUSE_TOO_FAR);
	/* Back to 1970, or to 1843: before the build date. */
	out = update(&d, &cfg, 2 * SEC, TRUE0, -TRUE0, true, true);
	assert_int_equal(out.refused, TS_REFUSE_PAST);
	out = update(&d, &cfg, 3 * SEC, TRUE0, -TRUE0 - 127 * 365 * DAY, true,
		     true);
	assert_int_equal(out.refused, TS_REFUSE_PAST);
	/* Just within max-step is a step. */
	out = update(&d, &cfg, 4 * SEC, TRUE0, 365 * DAY, false, false);
	assert_int_equal(out.action, TS_DISC_STEP);
	assert_int_equal(ts_disc_sane(&cfg, TRUE0, 365 * DAY + 1, &unset),
			 TS_REFUSE_TOO_FAR);
	assert_false(unset);
}

/* A clock before the build date was never set: any step forward past
 * that date is taken, and costs no budget. */
static void test_bound_unset_clock(void **state)
{
	struct ts_disc d;
	struct ts_disc_out out;
	int64_t clock = 100000000 * SEC; /* 1973 */

	(void)state;
	ts_disc_init(&d, cfg.min_interval_ms);
	out = update(&d, &cfg, 0, clock, TRUE0 - clock, false, false);
	assert_int_equal(out.action, TS_DISC_STEP);
	assert_true(out.unset);
	assert_int_equal(out.step_ns, TRUE0 - clock);
	ts_disc_applied(&d, &out, 0);
	assert_int_equal(d.budget_ns, cfg.max_step_ns);
	/* Forward, but not as far as the build date: still wrong. */
	out = update(&d, &cfg, SEC, clock, BUILD - clock - SEC, false, false);
	assert_int_equal(out.refused, TS_REFUSE_PAST);
}

/* Steps spend max-step a day: a host that asks for 200 days twice in a
 * row gets the second only once the budget has refilled. */
static void test_bound_budget(void **state)
{
	struct ts_disc d;
	struct ts_disc_out out;
	int64_t clock = TRUE0, mono = 0;

	(void)state;
	ts_disc_init(&d, cfg.min_interval_ms);
	out = update(&d, &cfg, mono, clock, 200 * DAY, false, false);
	assert_int_equal(out.action, TS_DISC_STEP);
	assert_int_equal(out.budget_ns, 365 * DAY);
	ts_disc_applied(&d, &out, mono);
	assert_int_equal(d.budget_ns, 165 * DAY);
	clock += 200 * DAY;
	mono += 2 * SEC;
	out = update(&d, &cfg, mono, clock, 200 * DAY, true, false);
	assert_int_equal(out.action, TS_DISC_REFUSE);
	assert_int_equal(out.refused, TS_REFUSE_BUDGET);
	assert_true(out.budget_ns >= 165 * DAY && out.budget_ns < 166 * DAY);
	/* Backward steps spend it too. */
	out = update(&d, &cfg, mono, clock, -170 * DAY, true, true);
	assert_int_equal(out.refused, TS_REFUSE_BUDGET);
	/* Slews cost nothing. */
	out = update(&d, &cfg, mono, clock, 10 * MS, false, false);
	assert_int_equal(out.action, TS_DISC_SLEW);
	ts_disc_applied(&d, &out, mono);
	/* Half a day refills half of max-step. */
	mono += DAY / 2;
	out = update(&d, &cfg, mono, clock, 200 * DAY, false, false);
	assert_int_equal(out.action, TS_DISC_STEP);
	ts_disc_applied(&d, &out, mono);
	assert_true(d.budget_ns > 147 * DAY && d.budget_ns < 148 * DAY);
	/* A full budget is all it holds, however long it waited. */
	mono += 100 * DAY;
	out = update(&d, &cfg, mono, clock + 200 * DAY, 0, false, false);
	assert_int_equal(out.budget_ns, cfg.max_step_ns);
}

/*
 * Peer numbers at the extremes of int64_t, with no bound to stop them
 * first: every sum saturates (UBSan would report an overflow), the
 * frequency stays within the kernel's limit and the interval within its
 * range.
 */
static void test_disc_int64_extremes(void **state)
{
	struct ts_disc_config open = cfg;
	struct ts_disc d;
	struct ts_disc_out out;
	const int64_t offsets[] = { INT64_MAX, INT64_MAX, INT64_MIN, INT64_MIN,
				    INT64_MAX, 0, -1, INT64_MIN };
	bool unset;

	(void)state;
	open.max_step_ns = 0;
	open.build_ns = INT64_MIN;
	ts_disc_init(&d, open.min_interval_ms);
	for (size_t i = 0; i < ARRAY_SIZE(offsets); i++) {
		int64_t mono = (int64_t)i * 2 * SEC;

		ts_disc_update(&d, &open, mono, 0, offsets[i], INT64_MAX, true,
			       true, &out);
		assert_int_equal(out.action, TS_DISC_STEP);
		assert_int_equal(out.step_ns, offsets[i]);
		assert_true(out.freq_ppb >= -GUEST_CLOCK_FREQ_MAX_PPB &&
			    out.freq_ppb <= GUEST_CLOCK_FREQ_MAX_PPB);
		assert_true(out.interval_ms >= open.min_interval_ms &&
			    out.interval_ms <= open.max_interval_ms);
		ts_disc_applied(&d, &out, mono);
	}
	/* Slewing towards INT64_MIN: as fast as it may, no faster. */
	ts_disc_update(&d, &open, 100 * SEC, 0, INT64_MIN, 1, false, false,
		       &out);
	assert_true(out.back_refused);
	assert_int_equal(out.freq_ppb, -GUEST_CLOCK_FREQ_MAX_PPB);
	assert_int_equal(ts_disc_observe(&d, &open, INT64_MIN, INT64_MAX),
			 open.min_interval_ms);
	/* A clock plus an offset past int64_t is no time at all. */
	assert_int_equal(ts_disc_sane(&cfg, INT64_MAX, 1, &unset),
			 TS_REFUSE_TOO_FAR);
	assert_int_equal(ts_disc_sane(&cfg, INT64_MIN, -1, &unset),
			 TS_REFUSE_TOO_FAR);
	assert_int_equal(ts_disc_sane(&cfg, INT64_MIN, INT64_MAX, &unset),
			 TS_REFUSE_PAST);
	/* The bound stops them before any arithmetic. */
	ts_disc_init(&d, cfg.min_interval_ms);
	out = update(&d, &cfg, 0, TRUE0, INT64_MAX, true, true);
	assert_int_equal(out.refused, TS_REFUSE_TOO_FAR);
	out = update(&d, &cfg, 0, TRUE0, INT64_MIN, true, true);
	assert_int_equal(out.refused, TS_REFUSE_PAST);
}

/* The simulated clock stepped by absurd amounts: its readings saturate
 * instead of overflowing. */
static void test_clock_simulated_extremes(void **state)
{
	struct guest_clock c;
	char err[160];
	int64_t now;

	(void)state;
	assert_int_equal(guest_clock_parse_simulated("0", &c, err,
						     sizeof(err)),
			 0);
	assert_int_equal(guest_clock_step(&c, 9000000000000000000LL), 0);
	assert_int_equal(guest_clock_now(&c), INT64_MAX);
	assert_int_equal(guest_clock_step(&c, INT64_MAX), 0);
	assert_int_equal(guest_clock_now(&c), INT64_MAX);
	assert_int_equal(guest_clock_true_error(&c), -INT64_MAX);
	assert_int_equal(guest_clock_to_system(&c, 0), -INT64_MAX);
	assert_int_equal(guest_clock_to_system(&c, INT64_MIN), INT64_MIN);
	for (int i = 0; i < 3; i++)
		assert_int_equal(guest_clock_step(&c, INT64_MIN), 0);
	now = guest_clock_now(&c);
	assert_true(now < 0);
	assert_int_equal(guest_clock_true_error(&c), INT64_MAX);
	assert_int_equal(guest_clock_to_system(&c, INT64_MAX), INT64_MAX);
	/* Offsets as far as 1970 and beyond may be simulated; no further
	 * than an int64_t of ns holds. */
	assert_int_equal(guest_clock_parse_simulated("-1.7e9", &c, err,
						     sizeof(err)),
			 0);
	assert_true(guest_clock_now(&c) < BUILD);
	assert_int_equal(guest_clock_parse_simulated("5e9", &c, err,
						     sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "4e9"));
	/* The build date: a day boundary, after the model's, not ahead. */
	assert_int_equal(guest_clock_build_ns() % DAY, 0);
	assert_true(guest_clock_build_ns() > BUILD);
	assert_true(guest_clock_build_ns() <= (int64_t)time(NULL) * SEC);
}

/* ---- the choice of mode ---- */

static void test_mode_choice(void **state)
{
	struct ts_env_paths p = { "/run/chrony/vmic.sock",
				  "/run/chrony/chronyd.pid", "auto" };
	struct ts_env none = { 0 }, ptp = { .ptp_present = true,
					    .ptp_path = "/dev/ptp0" };
	struct ts_env chrony = { .chrony_running = true, .chrony_sock = true };
	struct ts_env chrony_nosock = { .chrony_running = true };
	struct ts_env phc = { .chrony_running = true, .ptp_present = true,
			      .chrony_uses_ptp = true,
			      .ptp_path = "/dev/ptp0" };
	char why[256];

	(void)state;
	assert_int_equal(ts_mode_choose(&none, VMIC_TS_POLICY_AUTO, &p, why,
					sizeof(why)),
			 VMIC_TS_MODE_CHANNEL);
	assert_string_equal(why, "");
	assert_int_equal(ts_mode_choose(&ptp, VMIC_TS_POLICY_AUTO, &p, why,
					sizeof(why)),
			 VMIC_TS_MODE_PTP);
	assert_int_equal(ts_mode_choose(&ptp, VMIC_TS_POLICY_CHANNEL, &p, why,
					sizeof(why)),
			 VMIC_TS_MODE_CHANNEL);
	assert_int_equal(ts_mode_choose(&none, VMIC_TS_POLICY_PTP, &p, why,
					sizeof(why)),
			 VMIC_TS_MODE_CHANNEL);
	assert_non_null(strstr(why, "no PTP device"));
	assert_int_equal(ts_mode_choose(&chrony, VMIC_TS_POLICY_AUTO, &p, why,
					sizeof(why)),
			 VMIC_TS_MODE_CHRONY_SOCK);
	/* Where chronyd runs the agent never disciplines the clock. */
	assert_int_equal(ts_mode_choose(&chrony, VMIC_TS_POLICY_CHANNEL, &p,
					why, sizeof(why)),
			 VMIC_TS_MODE_REPORT);
	assert_int_equal(ts_mode_choose(&chrony_nosock, VMIC_TS_POLICY_AUTO,
					&p, why, sizeof(why)),
			 VMIC_TS_MODE_REPORT);
	assert_non_null(strstr(why, "refclock SOCK /run/chrony/vmic.sock"));
	assert_int_equal(ts_mode_choose(&phc, VMIC_TS_POLICY_AUTO, &p, why,
					sizeof(why)),
			 VMIC_TS_MODE_CHRONY_PHC);
	assert_int_equal(ts_mode_choose(&none, VMIC_TS_POLICY_CHRONY, &p, why,
					sizeof(why)),
			 VMIC_TS_MODE_REPORT);
	assert_int_equal(ts_mode_choose(&ptp, VMIC_TS_POLICY_REPORT, &p, why,
					sizeof(why)),
			 VMIC_TS_MODE_REPORT);
}

/* The probe itself, on files made here: a PTP path that exists, a pid
 * file that names no chronyd. */
static void test_env_probe_paths(void **state)
{
	char *dir = tu_mkdtemp();
	char *dev = tu_write_file(dir, "ptp0", "", 0);
	char *pid = tu_write_file(dir, "chronyd.pid", "1\n", 2);
	struct ts_env_paths p = { "/nonexistent/chrony.sock", pid, dev };
	struct ts_env env;

	(void)state;
	ts_env_probe(&p, &env);
	assert_true(env.ptp_present);
	assert_string_equal(env.ptp_path, dev);
	assert_false(env.chrony_running); /* PID 1 is not chronyd */
	p.ptp_device = "none";
	ts_env_probe(&p, &env);
	assert_false(env.ptp_present);
	free(dev);
	free(pid);
	tu_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codecs_roundtrip),
		cmocka_unit_test(test_codecs_reject),
		cmocka_unit_test(test_offset_arithmetic),
		cmocka_unit_test(test_disc_large_offset_steps),
		cmocka_unit_test(test_disc_small_offset_slews),
		cmocka_unit_test(test_disc_tracks_drift),
		cmocka_unit_test(test_disc_backward),
		cmocka_unit_test(test_disc_force_and_jump),
		cmocka_unit_test(test_disc_observe_backs_off),
		cmocka_unit_test(test_bound_refuses_absurd),
		cmocka_unit_test(test_bound_unset_clock),
		cmocka_unit_test(test_bound_budget),
		cmocka_unit_test(test_disc_int64_extremes),
		cmocka_unit_test(test_clock_simulated_extremes),
		cmocka_unit_test(test_mode_choice),
		cmocka_unit_test(test_env_probe_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
