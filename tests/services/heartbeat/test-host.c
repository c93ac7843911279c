/* SPDX-License-Identifier: MIT */
/*
 * The heartbeat's host half on a fake clock (tests/unit/host-world.h):
 * first reply, Lost Communication after the threshold without a pile-up
 * of requests, ticks that keep their phase, the interval setting and its
 * floor for members of the socket group.
 */
#include "host-world.h"

#include "services/heartbeat/heartbeat.h"

/* The first request comes at once; its answer makes the heartbeat OK. */
static void test_first_reply_is_ok(void **state)
{
	struct world *w = *state;

	assert_string_equal(world_service_string(w, VMIC_SVC_HEARTBEAT, "state"), "No Contact");
	assert_int_equal(world_answer_heartbeats(w), 1);
	assert_string_equal(world_service_string(w, VMIC_SVC_HEARTBEAT, "state"), "OK");
	assert_true(world_has_event(w, "heartbeat", "first heartbeat reply"));
}

/*
 * A guest that stops answering: after `threshold` (3) missed intervals,
 * Lost Communication; never more than one request waits meanwhile; the
 * late answer brings OK back and the next tick asks again.
 */
static void test_lost_after_threshold_no_pileup(void **state)
{
	struct world *w = *state;

	world_answer_heartbeats(w);
	assert_string_equal(world_service_string(w, VMIC_SVC_HEARTBEAT, "state"), "OK");
	world_advance(w, 1 * SEC); /* at most the first, random tick */
	world_advance(w, 1 * SEC);
	assert_int_equal(guest_count(w, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST),
			 1);
	for (int i = 0; i < 10 && strcmp(world_service_string(w, VMIC_SVC_HEARTBEAT, "state"), "OK") == 0; i++)
		world_advance(w, 1 * SEC);
	assert_string_equal(world_service_string(w, VMIC_SVC_HEARTBEAT, "state"), "Lost Communication");
	assert_true(world_has_event(w, "heartbeat", "no reply to 3 heartbeats"));
	world_advance(w, 20 * SEC);
	/* Twenty more intervals: still the one request, no pile-up. */
	assert_int_equal(guest_count(w, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST),
			 1);
	assert_int_equal(requests_waiting(w->vm, VMIC_SVC_HEARTBEAT), 1);
	assert_int_equal(world_answer_heartbeats(w), 1);
	assert_string_equal(world_service_string(w, VMIC_SVC_HEARTBEAT, "state"), "OK");
	assert_true(world_has_event(w, "heartbeat", "heartbeat replies resumed"));
	world_advance(w, 1 * SEC);
	assert_int_equal(guest_count(w, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST),
			 1);
}

/*
 * Ticks keep their phase: a loop that is busy for 2.5 intervals fires the
 * ticks it owes late, but the next one after that falls on the original
 * grid, not one interval after the late firing.
 */
static void test_ticks_keep_their_phase(void **state)
{
	struct world *w = *state;
	uint64_t t1, t2, t3, every = 1 * SEC;

	world_answer_heartbeats(w);
	t1 = world_next_heartbeat(w);
	world_answer_heartbeats(w);
	t2 = world_next_heartbeat(w);
	assert_int_equal(t2 - t1, every);
	world_answer_heartbeats(w);
	clock_fake_stall(&w->h, every * 5 / 2); /* busy elsewhere */
	world_advance(w, 0);                          /* late tick fires */
	world_answer_heartbeats(w);
	t3 = world_next_heartbeat(w);
	assert_int_equal((t3 - t2) % every, 0);
}

/* A new interval applies at once. */
static void test_interval_setting(void **state)
{
	struct world *w = *state;
	json_t *values = json_pack("{s:s}", "interval", "250ms");
	uint32_t mask;
	void *now;
	char err[256];
	uint64_t t1, t2;

	world_answer_heartbeats(w);
	assert_int_equal(settings_parse(w->vm, VMIC_SVC_HEARTBEAT, values,
					true, &now, &mask, err, sizeof(err)),
			 0);
	json_decref(values);
	free(w->vm->svc[VMIC_SVC_HEARTBEAT].settings);
	w->vm->svc[VMIC_SVC_HEARTBEAT].settings = now;
	host_service_get(VMIC_SVC_HEARTBEAT)->settings_changed(w->vm);
	t1 = world_next_heartbeat(w);
	world_answer_heartbeats(w);
	t2 = world_next_heartbeat(w);
	/* Each tick fires at the end of its slot (clock.h): the gap is the
	 * interval to within one slot width. */
	assert_in_range(t2 - t1, 250000 - HCLOCK_SLOT_US, 250000 + HCLOCK_SLOT_US);
}

/* A member of the socket group may lengthen the interval, but shorten
 * it (more load) only down to the daemon's value; root may go lower. */
static void test_interval_group_floor(void **state)
{
	struct world *w = *state;
	json_t *fast = json_pack("{s:s}", "interval", "250ms");
	json_t *slow = json_pack("{s:s}", "interval", "2s");
	uint32_t mask;
	void *now;
	char err[512];

	assert_int_equal(settings_parse(w->vm, VMIC_SVC_HEARTBEAT, fast,
					false, &now, &mask, err, sizeof(err)),
			 -EPERM);
	assert_null(now);
	assert_non_null(strstr(err, "1s..1h"));
	assert_non_null(strstr(err, "[heartbeat] interval"));
	assert_int_equal(settings_parse(w->vm, VMIC_SVC_HEARTBEAT, slow,
					false, &now, &mask, err, sizeof(err)),
			 0);
	free(now);
	assert_int_equal(settings_parse(w->vm, VMIC_SVC_HEARTBEAT, fast,
					true, &now, &mask, err, sizeof(err)),
			 0);
	free(now);
	json_decref(fast);
	json_decref(slow);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_first_reply_is_ok, world_setup,
						world_teardown),
		cmocka_unit_test_setup_teardown(test_lost_after_threshold_no_pileup, world_setup,
						world_teardown),
		cmocka_unit_test_setup_teardown(test_ticks_keep_their_phase, world_setup,
						world_teardown),
		cmocka_unit_test_setup_teardown(test_interval_setting, world_setup,
						world_teardown),
		cmocka_unit_test_setup_teardown(test_interval_group_floor, world_setup,
						world_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
