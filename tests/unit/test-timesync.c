/* SPDX-License-Identifier: MIT */
/*
 * The time service's pure parts: its messages, the four-timestamp
 * arithmetic, the discipline driven through hours of a modelled clock
 * (offset, drift, measurement noise), and the choice of mode.
 */
#include "testutil.h"

#include <errno.h>

#include "proto/services.h"
#include "services/timesync/discipline.h"
#include "services/timesync/env.h"
#include "services/timesync/timesync.h"

#define MS 1000000LL
#define SEC 1000000000LL

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
};

/* One cycle: measure, decide, apply, and let the interval pass. Returns
 * what the discipline decided. */
static struct ts_disc_out cycle(struct ts_disc *d, struct model *m,
				const struct ts_disc_config *c, bool force,
				bool back)
{
	struct ts_disc_out out;
	int64_t measured = -(int64_t)m->clock_minus_true_ns + noise(m);

	ts_disc_update(d, c, m->mono_ns, measured, 20000, force, back, &out);
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
		cmocka_unit_test(test_mode_choice),
		cmocka_unit_test(test_env_probe_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
