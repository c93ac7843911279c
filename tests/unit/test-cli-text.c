/* SPDX-License-Identifier: MIT */
/*
 * src/cli/safe-text.c: what `vmic` prints of a guest's strings on a
 * terminal. Nothing a terminal would act on (ESC, C1 controls) and
 * nothing that changes how a line reads unseen (bidi controls,
 * zero-width characters) gets through; everything printable does,
 * unchanged.
 */
#include "testutil.h"

#include "cli/vmic.h"

/* The escaped text of a literal (which may hold NULs). */
#define SAFE(lit, want) check_safe(lit, sizeof(lit) - 1, want)

static void check_safe(const char *s, size_t len, const char *want)
{
	char buf[512];
	size_t n = cli_safe_text(s, len, buf, sizeof(buf));

	assert_string_equal(buf, want);
	assert_int_equal(n, strlen(want));
	/* No byte a terminal acts on is left, whatever the input. */
	for (const unsigned char *p = (const unsigned char *)buf; *p; p++)
		assert_true(*p >= 0x20 && *p != 0x7F);
	assert_null(strstr(buf, "\xC2\x9B"));
	assert_null(strstr(buf, "\xE2\x80\xAE"));
}

static void test_printable_unchanged(void **state)
{
	(void)state;
	SAFE("", "");
	SAFE("web1 OK (application critical)", "web1 OK (application critical)");
	SAFE("Debian GNU/Linux 12 (bookworm)", "Debian GNU/Linux 12 (bookworm)");
	/* Letters of any script, symbols, emoji, RTL text itself. */
	SAFE("gr\xC3\xBC\xC3\x9F dich \xE2\x82\xAC \xF0\x9F\x98\x80",
	     "gr\xC3\xBC\xC3\x9F dich \xE2\x82\xAC \xF0\x9F\x98\x80");
	SAFE("\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D", "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D");
	SAFE("\xC2\xA0nbsp", "\xC2\xA0nbsp"); /* U+00A0 is printable */
}

static void test_osc_and_csi(void **state)
{
	(void)state;
	/* OSC 0: the window title; OSC 52: the clipboard; BEL or ST ends. */
	SAFE("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07");
	SAFE("\x1b]52;c;cm0gLXJmIH4K\x1b\\", "\\x1b]52;c;cm0gLXJmIH4K\\x1b\\\\");
	/* CSI: colours, cursor moves, clearing the screen. */
	SAFE("\x1b[2J\x1b[31mred\x1b[0m", "\\x1b[2J\\x1b[31mred\\x1b[0m");
	/* Line structure: a fake second line, a carriage return over it. */
	SAFE("ok\nVMIC OK\rX\t|", "ok\\nVMIC OK\\rX\\t|");
	SAFE("\x7f\x01", "\\x7f\\x01");
	SAFE("a\0b", "a\\x00b");
}

static void test_c1(void **state)
{
	(void)state;
	/* U+009B is CSI by itself, U+009D OSC, U+0085 NEL: in UTF-8 C2 xx. */
	SAFE("\xC2\x9B"
	     "31mred",
	     "\\u009b31mred");
	SAFE("\xC2\x9D"
	     "0;title\xC2\x9C",
	     "\\u009d0;title\\u009c");
	SAFE("\xC2\x80\xC2\x85\xC2\x9F", "\\u0080\\u0085\\u009f");
}

static void test_bidi_and_invisible(void **state)
{
	(void)state;
	/* RLO makes "exe.txt" read "txt.exe"; PDF ends it. */
	SAFE("file\xE2\x80\xAEtxt.exe\xE2\x80\xAC", "file\\u202etxt.exe\\u202c");
	SAFE("\xE2\x80\xAA\xE2\x80\xAB\xE2\x80\xAD",
	     "\\u202a\\u202b\\u202d");
	/* Isolates LRI RLI FSI PDI. */
	SAFE("\xE2\x81\xA6\xE2\x81\xA7\xE2\x81\xA8\xE2\x81\xA9",
	     "\\u2066\\u2067\\u2068\\u2069");
	/* LRM, RLM, ALM, zero-width space and joiner, BOM, soft hyphen. */
	SAFE("\xE2\x80\x8E\xE2\x80\x8F\xD8\x9C", "\\u200e\\u200f\\u061c");
	SAFE("O\xE2\x80\x8BK\xE2\x80\x8D", "O\\u200bK\\u200d");
	SAFE("\xEF\xBB\xBFx\xC2\xAD", "\\ufeffx\\u00ad");
	/* Line and paragraph separators, a Hangul filler. */
	SAFE("a\xE2\x80\xA8" "b\xE2\x80\xA9", "a\\u2028b\\u2029");
	SAFE("\xE3\x85\xA4", "\\u3164");
	/* Tag characters (beyond the BMP). */
	SAFE("\xF3\xA0\x80\x81\xF3\xA0\x81\xA1", "\\U000e0001\\U000e0061");
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	/* Each byte that is not part of well-formed UTF-8 is shown. */
	SAFE("a\xFF" "b", "a\\xffb");
	SAFE("\xC0\x80", "\\xc0\\x80");                 /* overlong NUL */
	SAFE("\xED\xA0\x80", "\\xed\\xa0\\x80");        /* surrogate */
	SAFE("\xE2\x80", "\\xe2\\x80");                 /* cut short */
	SAFE("\x9B" "31m", "\\x9b31m");                 /* bare C1 byte */
	SAFE("\xF4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* past U+10FFFF */
}

static void test_backslash(void **state)
{
	(void)state;
	/* A literal "\x1b" the guest typed cannot pass for an escape. */
	SAFE("C:\\Windows", "C:\\\\Windows");
	SAFE("\\x1b", "\\\\x1b");
}

/* Cut to fit between escapes, never inside one; the length is whole. */
static void test_truncation(void **state)
{
	char buf[8];
	size_t n;

	(void)state;
	n = cli_safe_text("abc\x1b[31m", 8, buf, sizeof(buf));
	assert_int_equal(n, strlen("abc\\x1b[31m"));
	assert_string_equal(buf, "abc\\x1b");
	n = cli_safe_text("abcde\x1b", 6, buf, sizeof(buf));
	assert_string_equal(buf, "abcde");
	assert_int_equal(n, 9);
	n = cli_safe_text("abcd\xE2\x82\xAC", 7, buf, 7);
	assert_string_equal(buf, "abcd");
	assert_int_equal(n, 7);
	n = cli_safe_text("x", 1, NULL, 0);
	assert_int_equal(n, 1);
	cli_clean_text(NULL, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

static void test_dup(void **state)
{
	/* 2047 bytes of ESC: the longest KVP value, four times as long. */
	char value[2047];
	char *p;

	(void)state;
	memset(value, 0x1b, sizeof(value));
	p = cli_safe_dup(value, sizeof(value));
	assert_non_null(p);
	assert_int_equal(strlen(p), 4 * sizeof(value));
	assert_memory_equal(p, "\\x1b\\x1b", 8);
	free(p);
}

/* JSON output: the same value, without C1 or invisible characters raw. */
static void test_json(void **state)
{
	const char value[] = "\x1b]0;t\x07 \xC2\x9B" "31m \xE2\x80\xAE \xF3\xA0\x80\x81 "
			     "\xC3\xBC\x7f";
	json_t *o = json_pack("{s:s}", "v", value), *back;
	char *text = json_dumps(o, JSON_COMPACT);
	char *safe = cli_safe_json(text);

	(void)state;
	assert_non_null(safe);
	assert_string_equal(safe, "{\"v\":\"\\u001B]0;t\\u0007 \\u009b31m "
				  "\\u202e \\udb40\\udc01 \xC3\xBC\\u007f\"}");
	back = json_loads(safe, 0, NULL);
	assert_non_null(back);
	assert_true(json_equal(o, back));
	json_decref(back);
	json_decref(o);
	free(text);
	free(safe);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_printable_unchanged),
		cmocka_unit_test(test_osc_and_csi),
		cmocka_unit_test(test_c1),
		cmocka_unit_test(test_bidi_and_invisible),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_backslash),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_dup),
		cmocka_unit_test(test_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
