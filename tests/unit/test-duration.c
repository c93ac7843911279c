/* SPDX-License-Identifier: MIT */
/* src/common/duration.c: durations as people write them, and clocks. */
#include <errno.h>

#include "testutil.h"

#include "common/duration.h"

static uint64_t parse_ok(const char *s)
{
	uint64_t ms = 0xDEAD;
	int r = vmic_parse_duration_ms(s, &ms);

	if (r != 0)
		fail_msg("'%s' should parse, got %d", s, r);
	return ms;
}

static void parse_fails(const char *s, int expect)
{
	uint64_t ms = 0xDEAD;
	int r = vmic_parse_duration_ms(s, &ms);

	if (r != expect)
		fail_msg("'%s': expected %d, got %d", s, expect, r);
	/* The output is left alone on failure. */
	assert_int_equal(ms, 0xDEAD);
}

static void test_parse_units(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("500ms"), 500);
	assert_int_equal(parse_ok("2s"), 2000);
	assert_int_equal(parse_ok("1m"), 60000);
	assert_int_equal(parse_ok("3h"), 3 * 3600000);
	assert_int_equal(parse_ok("1d"), 86400000);
	assert_int_equal(parse_ok("0ms"), 0);
	assert_int_equal(parse_ok("1m30s"), 90000);
	assert_int_equal(parse_ok("1h1m1s1ms"), 3661001);
	assert_int_equal(parse_ok("1s500ms"), 1500);
	/* "ms" is not read as minutes followed by garbage. */
	assert_int_equal(parse_ok("10ms"), 10);
	assert_int_equal(parse_ok("10m"), 600000);
}

static void test_parse_bare_number_is_seconds(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("0"), 0);
	assert_int_equal(parse_ok("1"), 1000);
	assert_int_equal(parse_ok("30"), 30000);
	assert_int_equal(parse_ok("007"), 7000);
	/* Only a whole bare number means seconds; a trailing one is an
	 * error wherever it comes, also after a zero component. */
	parse_fails("1m30", -EINVAL);
	parse_fails("0m30", -EINVAL);
	parse_fails("0s5", -EINVAL);
}

static void test_parse_rejects(void **state)
{
	(void)state;
	parse_fails("", -EINVAL);
	parse_fails("s", -EINVAL);
	parse_fails("ms", -EINVAL);
	parse_fails("-1s", -EINVAL);
	parse_fails("+1s", -EINVAL);
	parse_fails(" 1s", -EINVAL);
	parse_fails("1s ", -EINVAL);
	parse_fails("1.5s", -EINVAL);
	parse_fails("1x", -EINVAL);
	parse_fails("1sec", -EINVAL);
	parse_fails("1S", -EINVAL);
	parse_fails("1ms2", -EINVAL);
	parse_fails("1s s", -EINVAL);
}

static void test_parse_range(void **state)
{
	(void)state;
	/* The largest value: what a u32 of milliseconds holds. */
	assert_true(parse_ok("4294967295ms") == 0xFFFFFFFFull);
	assert_true(parse_ok("49d") == 49ull * 86400000);
	parse_fails("4294967296ms", -ERANGE);
	parse_fails("50d", -ERANGE);
	parse_fails("4294968s", -ERANGE);
	parse_fails("49d17h3m", -ERANGE);
	/* Many digits: refused without overflowing. */
	parse_fails("99999999999999999999999ms", -ERANGE);
	parse_fails("18446744073709551617", -ERANGE);
}

static void check_format(uint64_t ms, const char *expect)
{
	char buf[32];
	uint64_t back;

	vmic_format_duration_ms(ms, buf, sizeof(buf));
	assert_string_equal(buf, expect);
	/* What is printed parses back to the same value. */
	assert_int_equal(vmic_parse_duration_ms(buf, &back), 0);
	assert_true(back == ms);
}

static void test_format(void **state)
{
	(void)state;
	check_format(0, "0");
	check_format(1, "1ms");
	check_format(1500, "1500ms");
	check_format(2000, "2s");
	check_format(90000, "90s");
	check_format(60000, "1m");
	check_format(3600000, "1h");
	check_format(86400000, "24h");
	check_format(0xFFFFFFFFull, "4294967295ms");
}

static void test_format_small_buffer(void **state)
{
	char buf[4];

	(void)state;
	memset(buf, 'Z', sizeof(buf));
	vmic_format_duration_ms(1500, buf, sizeof(buf));
	assert_int_equal(buf[3], '\0');
	assert_string_equal(buf, "150");
}

static void test_clocks(void **state)
{
	uint64_t a, b;
	int64_t real;

	(void)state;
	a = vmic_mono_us();
	usleep(2000);
	b = vmic_mono_us();
	assert_true(b >= a + 2000);
	assert_true(b - a < 10 * 1000 * 1000);
	real = vmic_realtime_us();
	/* After 2020-01-01 in microseconds. */
	assert_true(real > 1577836800ll * 1000000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_units),
		cmocka_unit_test(test_parse_bare_number_is_seconds),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_parse_range),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_small_buffer),
		cmocka_unit_test(test_clocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
