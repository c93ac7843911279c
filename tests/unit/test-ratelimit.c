/* SPDX-License-Identifier: MIT */
/* src/common/ratelimit.c: at most one line per interval, with a count. */
#include "testutil.h"

#include "common/ratelimit.h"

static void test_first_line_passes(void **state)
{
	struct vmic_ratelimit rl = VMIC_RATELIMIT_INIT(10000);
	uint64_t held = 99;

	(void)state;
	assert_true(vmic_ratelimit_pass(&rl, 0, &held));
	assert_int_equal(held, 0);
}

/* A peer retrying every 200 ms for 10 s gets one line, then one more. */
static void test_retry_every_200ms(void **state)
{
	struct vmic_ratelimit rl = VMIC_RATELIMIT_INIT(10000);
	uint64_t held = 0, passed = 0;

	(void)state;
	for (uint64_t t = 5000; t < 15000; t += 200)
		if (vmic_ratelimit_pass(&rl, t, &held))
			passed++;
	assert_int_equal(passed, 1);
	assert_true(vmic_ratelimit_pass(&rl, 15000, &held));
	assert_int_equal(held, 49);
	/* The count starts again after a line that said it. */
	assert_false(vmic_ratelimit_pass(&rl, 15200, &held));
	assert_true(vmic_ratelimit_pass(&rl, 25000, &held));
	assert_int_equal(held, 1);
}

static void test_quiet_peer_logs_every_time(void **state)
{
	struct vmic_ratelimit rl = VMIC_RATELIMIT_INIT(1000);
	uint64_t held = 7;

	(void)state;
	for (uint64_t t = 0; t < 10000; t += 1000) {
		assert_true(vmic_ratelimit_pass(&rl, t, &held));
		assert_int_equal(held, 0);
	}
}

static void test_clock_going_back(void **state)
{
	struct vmic_ratelimit rl = VMIC_RATELIMIT_INIT(1000);
	uint64_t held = 0;

	(void)state;
	assert_true(vmic_ratelimit_pass(&rl, 50000, &held));
	assert_true(vmic_ratelimit_pass(&rl, 100, &held));
	assert_false(vmic_ratelimit_pass(&rl, 600, &held));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_line_passes),
		cmocka_unit_test(test_retry_every_200ms),
		cmocka_unit_test(test_quiet_peer_logs_every_time),
		cmocka_unit_test(test_clock_going_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
