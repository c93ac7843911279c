/* SPDX-License-Identifier: MIT */
/*
 * Time sync's host half on a fake clock (tests/unit/host-world.h): its
 * settings at the session's start, the bound on a guest's samples, the
 * sample reply's times, and the sync asked for after a pause.
 */
#include "host-world.h"

#include "services/timesync/timesync.h"

/* The guest's SAMPLE requests, n of them at once. */
static void guest_send_samples(struct world *w, unsigned n)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_TS_SAMPLE_LEN];

	for (unsigned i = 0; i < n; i++) {
		vmic_ts_sample_encode(1000 + i, buf + VMIC_HDR_SIZE,
				      VMIC_TS_SAMPLE_LEN);
		guest_send(w, buf,
			   vmic_frame_seal(buf, VMIC_SVC_TIMESYNC,
					   VMIC_TS_SAMPLE, 0, 100 + i, 0,
					   VMIC_TS_SAMPLE_LEN));
	}
}

static int64_t ts_member(struct world *w, const char *key)
{
	return world_service_int(w, VMIC_SVC_TIMESYNC, key);
}

/* The host sends its settings when the session comes up. */
static void test_ts_settings_at_start(void **state)
{
	struct world *w = *state;
	struct vmic_ts_settings m;
	struct rframe r;

	assert_true(guest_take(w, VMIC_SVC_TIMESYNC, VMIC_TS_SETTINGS, &r));
	assert_int_equal(vmic_ts_settings_decode(r.payload, r.f.length, &m), 0);
	assert_int_equal(m.policy, VMIC_TS_POLICY_AUTO);
	assert_int_equal(m.step_threshold_ms, 128);
	assert_int_equal(m.flags, 0);
}

/*
 * A guest flooding SAMPLEs gets at most the bucket (32) answered at once
 * and 16 more per second; the rest are dropped and counted.
 */
static void test_ts_requests_bounded(void **state)
{
	struct world *w = *state;

	world_answer_heartbeats(w);
	guest_send_samples(w, 50);
	assert_int_equal(guest_count(w, VMIC_SVC_TIMESYNC,
				     VMIC_TS_SAMPLE_REPLY),
			 32);
	assert_int_equal(ts_member(w, "samples_dropped"), 18);
	clock_fake_stall(&w->h, 1 * SEC);
	guest_send_samples(w, 50);
	assert_int_equal(guest_count(w, VMIC_SVC_TIMESYNC,
				     VMIC_TS_SAMPLE_REPLY),
			 32 + 16);
	assert_int_equal(ts_member(w, "samples_answered"), 48);
	assert_int_equal(ts_member(w, "samples_dropped"), 18 + 34);
}

/* A reply to SAMPLE carries t1 back and the host's times around it. */
static void test_ts_sample_reply(void **state)
{
	struct world *w = *state;
	struct vmic_ts_reply m;
	struct rframe r;

	guest_send_samples(w, 1);
	assert_true(guest_take(w, VMIC_SVC_TIMESYNC, VMIC_TS_SAMPLE_REPLY,
			       &r));
	assert_int_equal(r.f.request_id, 100);
	assert_true(r.f.flags & VMIC_F_REPLY);
	assert_int_equal(vmic_ts_reply_decode(r.payload, r.f.length, &m), 0);
	assert_int_equal(m.t1, 1000);
	assert_int_equal(m.t2, (int64_t)hostd_now_us(&w->h) * 1000);
	assert_true(m.t3 >= m.t2);
}

/*
 * The heartbeat hears the guest again after a silence of several
 * intervals on a live channel (a paused VM): the host asks for a sync
 * (reason resume) at once. A short silence asks for nothing.
 */
static void test_ts_resume_asks_sync(void **state)
{
	struct world *w = *state;
	struct vmic_ts_sync m;
	struct rframe r;

	world_answer_heartbeats(w);
	(void)world_next_heartbeat(w);
	world_advance(w, 1200000); /* one interval missed: 1.2 s */
	world_answer_heartbeats(w);
	assert_false(guest_take(w, VMIC_SVC_TIMESYNC, VMIC_TS_SYNC, &r));
	(void)world_next_heartbeat(w);
	world_advance(w, 10 * SEC); /* paused for 10 s */
	assert_false(guest_take(w, VMIC_SVC_TIMESYNC, VMIC_TS_SYNC, &r));
	world_answer_heartbeats(w);
	assert_true(guest_take(w, VMIC_SVC_TIMESYNC, VMIC_TS_SYNC, &r));
	assert_int_equal(vmic_ts_sync_decode(r.payload, r.f.length, &m), 0);
	assert_int_equal(m.reason, VMIC_TS_REASON_RESUME);
	assert_int_equal(m.flags, 0); /* step-backward is off */
	assert_true(world_has_event(w, "timesync", "paused?"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ts_settings_at_start, world_setup,
						world_teardown),
		cmocka_unit_test_setup_teardown(test_ts_requests_bounded, world_setup,
						world_teardown),
		cmocka_unit_test_setup_teardown(test_ts_sample_reply, world_setup,
						world_teardown),
		cmocka_unit_test_setup_teardown(test_ts_resume_asks_sync, world_setup,
						world_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
