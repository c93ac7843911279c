/* SPDX-License-Identifier: MIT */
/* src/common/os-release.c: KEY=value lines of os-release(5). */
#include "testutil.h"

#include "common/os-release.h"

static void test_plain_and_quoted(void **state)
{
	char out[64];

	(void)state;
	assert_true(vmic_os_release_value("ID=debian\n", "ID", out,
					  sizeof(out)));
	assert_string_equal(out, "debian");
	assert_true(vmic_os_release_value("NAME=\"Debian GNU/Linux\"\n",
					  "NAME", out, sizeof(out)));
	assert_string_equal(out, "Debian GNU/Linux");
	assert_true(vmic_os_release_value("VERSION_ID='12'", "VERSION_ID",
					  out, sizeof(out)));
	assert_string_equal(out, "12");
	/* Unbalanced quotes are kept: the value is shown as it is. */
	assert_true(vmic_os_release_value("ID=\"x\n", "ID", out,
					  sizeof(out)));
	assert_string_equal(out, "\"x");
	assert_true(vmic_os_release_value("ID=\n", "ID", out, sizeof(out)));
	assert_string_equal(out, "");
}

static void test_other_keys(void **state)
{
	char out[16] = "unchanged";

	(void)state;
	/* A key that only starts like the one asked for is another key. */
	assert_false(vmic_os_release_value("VERSION_ID=12\n", "VERSION", out,
					   sizeof(out)));
	assert_false(vmic_os_release_value("ID_LIKE=debian\n", "ID", out,
					   sizeof(out)));
	assert_false(vmic_os_release_value("# ID=x\n", "ID", out,
					   sizeof(out)));
	assert_string_equal(out, "unchanged");
}

static void test_truncates(void **state)
{
	char out[8];

	(void)state;
	assert_true(vmic_os_release_value("NAME=\"a long distribution\"",
					  "NAME", out, sizeof(out)));
	assert_string_equal(out, "a long ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_and_quoted),
		cmocka_unit_test(test_other_keys),
		cmocka_unit_test(test_truncates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
