/* SPDX-License-Identifier: MIT */
/* src/common/strbuf.c: bounded appends never run past the buffer. */
#include "testutil.h"

#include <string.h>

#include "common/strbuf.h"

static void test_appends_in_order(void **state)
{
	char buf[32];
	size_t off;

	(void)state;
	off = vmic_appendf(buf, sizeof(buf), 0, "%s", "heartbeat");
	off = vmic_appendf(buf, sizeof(buf), off, ", %s", "shutdown");
	assert_string_equal(buf, "heartbeat, shutdown");
	assert_int_equal(off, strlen(buf));
}

/* The overrun the helper exists for: an offset past the end must clamp,
 * and later appends must neither write nor move it. */
static void test_clamps_at_the_end(void **state)
{
	char buf[16];
	size_t off = 0;

	(void)state;
	memset(buf, 'x', sizeof(buf));
	for (int i = 0; i < 10; i++)
		off = vmic_appendf(buf, 12, off, "%s", "abcde");
	assert_int_equal(off, 11);
	assert_string_equal(buf, "abcdeabcdea");
	/* Bytes past n were never touched. */
	assert_int_equal(buf[12], 'x');
	assert_int_equal(buf[15], 'x');
	assert_int_equal(vmic_appendf(buf, 12, 50, "more"), 11);
	assert_string_equal(buf, "abcdeabcdea");
}

static void test_tiny_buffers(void **state)
{
	char one[1] = { 'z' };

	(void)state;
	assert_int_equal(vmic_appendf(one, 1, 0, "%d", 12345), 0);
	assert_int_equal(one[0], '\0');
	assert_int_equal(vmic_appendf(one, 0, 0, "x"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_appends_in_order),
		cmocka_unit_test(test_clamps_at_the_end),
		cmocka_unit_test(test_tiny_buffers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
