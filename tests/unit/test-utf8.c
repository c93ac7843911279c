/* SPDX-License-Identifier: MIT */
/* src/common/utf8.c: validation and sanitizing of peer strings. */
#include "testutil.h"

#include "common/utf8.h"

#define VALID(lit) assert_true(vmic_utf8_valid(lit, sizeof(lit) - 1))
#define INVALID(lit) assert_false(vmic_utf8_valid(lit, sizeof(lit) - 1))

static void test_valid(void **state)
{
	(void)state;
	VALID("");
	VALID("plain ascii");
	VALID("\x7F");
	VALID("\xC2\x80");             /* U+0080, smallest 2-byte */
	VALID("\xDF\xBF");             /* U+07FF */
	VALID("\xE0\xA0\x80");         /* U+0800, smallest 3-byte */
	VALID("\xED\x9F\xBF");         /* U+D7FF, just below surrogates */
	VALID("\xEE\x80\x80");         /* U+E000, just above */
	VALID("\xEF\xBF\xBF");         /* U+FFFF */
	VALID("\xF0\x90\x80\x80");     /* U+10000, smallest 4-byte */
	VALID("\xF4\x8F\xBF\xBF");     /* U+10FFFF, the last code point */
	VALID("gr\xC3\xBC\xC3\x9F dich \xE2\x82\xAC \xF0\x9F\x98\x80");
	/* NUL is a valid character; callers that forbid it check apart. */
	assert_true(vmic_utf8_valid("a\0b", 3));
}

static void test_invalid(void **state)
{
	(void)state;
	INVALID("\x80");             /* continuation without a lead */
	INVALID("\xBF");
	INVALID("\xC0\x80");         /* overlong NUL */
	INVALID("\xC1\xBF");         /* overlong U+007F */
	INVALID("\xE0\x80\x80");     /* overlong 3-byte */
	INVALID("\xE0\x9F\xBF");     /* overlong U+07FF */
	INVALID("\xF0\x80\x80\x80"); /* overlong 4-byte */
	INVALID("\xF0\x8F\xBF\xBF"); /* overlong U+FFFF */
	INVALID("\xED\xA0\x80");     /* U+D800 high surrogate */
	INVALID("\xED\xBF\xBF");     /* U+DFFF low surrogate */
	INVALID("\xF4\x90\x80\x80"); /* U+110000, past Unicode */
	INVALID("\xF5\x80\x80\x80");
	INVALID("\xFE");
	INVALID("\xFF");
	INVALID("\xC2");             /* truncated 2-byte */
	INVALID("\xE2\x82");         /* truncated 3-byte */
	INVALID("\xF0\x9F\x98");     /* truncated 4-byte */
	INVALID("\xC2\x41");         /* lead followed by ASCII */
	INVALID("\xE2\x28\xA1");
	INVALID("ok\xE2\x82\xACok\xC3");
	/* Truncation by the length, not by the string. */
	assert_false(vmic_utf8_valid("\xE2\x82\xAC", 2));
	assert_true(vmic_utf8_valid("\xE2\x82\xAC", 3));
}

static void test_sanitize_controls(void **state)
{
	char out[64];
	size_t n;

	(void)state;
	n = vmic_utf8_sanitize(out, sizeof(out), "a\tb\nc\x1B[31m\x7F", 11);
	assert_string_equal(out, "a?b?c?[31m?");
	assert_int_equal(n, strlen(out));

	/* C1 controls (U+0080..U+009F) become one '?' each; U+00A0 stays. */
	n = vmic_utf8_sanitize(out, sizeof(out), "\xC2\x85x\xC2\x9F\xC2\xA0",
			       7);
	assert_string_equal(out, "?x?\xC2\xA0");
	assert_int_equal(n, 5);

	/* Embedded NUL is a control too: the result stays one C string. */
	n = vmic_utf8_sanitize(out, sizeof(out), "a\0b", 3);
	assert_int_equal(n, 3);
	assert_string_equal(out, "a?b");
}

static void test_sanitize_invalid(void **state)
{
	char out[64];
	size_t n;

	(void)state;
	/* Each byte of a bad sequence is replaced; good text survives. */
	n = vmic_utf8_sanitize(out, sizeof(out), "x\xFFy\xC0\xAFz", 6);
	assert_string_equal(out, "x?y??z");
	assert_int_equal(n, 6);
	n = vmic_utf8_sanitize(out, sizeof(out), "\xED\xA0\x80!", 4);
	assert_string_equal(out, "\?\?\?!");
	/* A truncated sequence at the end. */
	n = vmic_utf8_sanitize(out, sizeof(out), "ok\xE2\x82", 4);
	assert_string_equal(out, "ok??");
	assert_true(vmic_utf8_valid(out, n));
	/* Valid multi-byte text is copied unchanged. */
	n = vmic_utf8_sanitize(out, sizeof(out), "\xE2\x82\xAC\xF0\x9F\x98\x80",
			       7);
	assert_int_equal(n, 7);
	assert_memory_equal(out, "\xE2\x82\xAC\xF0\x9F\x98\x80", 8);
}

static void test_sanitize_truncates_on_boundary(void **state)
{
	const char euro3[] = "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC";
	char out[8];
	size_t n;

	(void)state;
	/* Room for 7 bytes: two euro signs (6), not half of the third. */
	memset(out, 'Z', sizeof(out));
	n = vmic_utf8_sanitize(out, sizeof(out), euro3, 9);
	assert_int_equal(n, 6);
	assert_int_equal(out[6], '\0');
	assert_true(vmic_utf8_valid(out, n));

	/* Exactly fits: 2 euro signs + NUL in 7 bytes. */
	n = vmic_utf8_sanitize(out, 7, euro3, 9);
	assert_int_equal(n, 6);
	/* One less: only one sign fits. */
	n = vmic_utf8_sanitize(out, 6, euro3, 9);
	assert_int_equal(n, 3);
	assert_string_equal(out, "\xE2\x82\xAC");

	/* ASCII stops at dstsz - 1. */
	n = vmic_utf8_sanitize(out, 4, "abcdef", 6);
	assert_int_equal(n, 3);
	assert_string_equal(out, "abc");

	/* dstsz 1 gives the empty string, 0 writes nothing at all. */
	n = vmic_utf8_sanitize(out, 1, "abc", 3);
	assert_int_equal(n, 0);
	assert_string_equal(out, "");
	out[0] = 'Q';
	n = vmic_utf8_sanitize(out, 0, "abc", 3);
	assert_int_equal(n, 0);
	assert_int_equal(out[0], 'Q');
}

/* Whatever the input, the output is valid UTF-8 without controls. */
static void test_sanitize_random(void **state)
{
	uint64_t seed = 12345;
	uint8_t in[97];
	char out[64];

	(void)state;
	for (int round = 0; round < 2000; round++) {
		size_t len = (size_t)(tu_rand(&seed) % sizeof(in));
		size_t cap = 1 + (size_t)(tu_rand(&seed) % sizeof(out));
		size_t n;

		tu_fill(&seed, in, len);
		n = vmic_utf8_sanitize(out, cap, (const char *)in, len);
		assert_true(n < cap);
		assert_int_equal(strlen(out), n);
		assert_true(vmic_utf8_valid(out, n));
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)out[i];

			assert_false(c < 0x20 || c == 0x7F);
			if (c == 0xC2 && i + 1 < n)
				assert_true((unsigned char)out[i + 1] >= 0xA0);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_sanitize_controls),
		cmocka_unit_test(test_sanitize_invalid),
		cmocka_unit_test(test_sanitize_truncates_on_boundary),
		cmocka_unit_test(test_sanitize_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
