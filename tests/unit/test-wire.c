/* SPDX-License-Identifier: MIT */
/* src/common/wire.c: bounded little-endian readers and writers. */
#include "testutil.h"

#include "common/wire.h"

static void test_roundtrip_integers(void **state)
{
	uint8_t buf[64];
	struct vmic_wr w;
	struct vmic_rd r;

	(void)state;
	vmic_wr_init(&w, buf, sizeof(buf));
	vmic_wr_u8(&w, 0xA5);
	vmic_wr_u16(&w, 0xBEEF);
	vmic_wr_u32(&w, 0xDEADBEEFu);
	vmic_wr_u64(&w, 0x0123456789ABCDEFull);
	vmic_wr_i64(&w, -42);
	assert_false(w.err);
	assert_int_equal(w.off, 1 + 2 + 4 + 8 + 8);
	/* Little-endian on the wire, whatever the host order. */
	assert_int_equal(buf[1], 0xEF);
	assert_int_equal(buf[2], 0xBE);
	assert_int_equal(buf[3], 0xEF);
	assert_int_equal(buf[6], 0xDE);
	assert_int_equal(buf[7], 0xEF);
	assert_int_equal(buf[14], 0x01);

	vmic_rd_init(&r, buf, w.off);
	assert_int_equal(vmic_rd_u8(&r), 0xA5);
	assert_int_equal(vmic_rd_u16(&r), 0xBEEF);
	assert_int_equal(vmic_rd_u32(&r), 0xDEADBEEFu);
	assert_true(vmic_rd_u64(&r) == 0x0123456789ABCDEFull);
	assert_true(vmic_rd_i64(&r) == -42);
	assert_false(r.err);
	assert_int_equal(vmic_rd_left(&r), 0);
}

static void test_short_reads_set_err(void **state)
{
	const uint8_t buf[7] = { 1, 2, 3, 4, 5, 6, 7 };
	struct vmic_rd r;

	(void)state;
	/* A u64 from 7 bytes: error, zero, and nothing consumed. */
	vmic_rd_init(&r, buf, sizeof(buf));
	assert_true(vmic_rd_u64(&r) == 0);
	assert_true(r.err);
	assert_int_equal(vmic_rd_left(&r), 0);
	/* Once in error, every later read returns zero, even if it fits. */
	assert_int_equal(vmic_rd_u8(&r), 0);
	assert_int_equal(vmic_rd_u16(&r), 0);

	vmic_rd_init(&r, buf, 3);
	assert_int_equal(vmic_rd_u16(&r), 0x0201);
	assert_int_equal(vmic_rd_u16(&r), 0);
	assert_true(r.err);

	vmic_rd_init(&r, buf, 3);
	assert_int_equal(vmic_rd_u32(&r), 0);
	assert_true(r.err);

	vmic_rd_init(&r, buf, 0);
	assert_int_equal(vmic_rd_u8(&r), 0);
	assert_true(r.err);

	vmic_rd_init(&r, buf, sizeof(buf));
	vmic_rd_skip(&r, 7);
	assert_false(r.err);
	vmic_rd_skip(&r, 1);
	assert_true(r.err);

	/* A huge skip must not wrap the offset around. */
	vmic_rd_init(&r, buf, sizeof(buf));
	vmic_rd_u8(&r);
	vmic_rd_skip(&r, SIZE_MAX);
	assert_true(r.err);
}

static void test_short_writes_set_err(void **state)
{
	uint8_t buf[8];
	struct vmic_wr w;

	(void)state;
	memset(buf, 0x55, sizeof(buf));
	vmic_wr_init(&w, buf, 5);
	vmic_wr_u32(&w, 1);
	vmic_wr_u16(&w, 2); /* one byte short */
	assert_true(w.err);
	assert_int_equal(w.off, 4);
	/* Nothing written past the capacity. */
	assert_int_equal(buf[4], 0x55);
	vmic_wr_u8(&w, 3); /* would fit, but the writer is in error */
	assert_int_equal(buf[4], 0x55);

	vmic_wr_init(&w, buf, 7);
	vmic_wr_u64(&w, 1);
	assert_true(w.err);
	memset(buf, 0x55, sizeof(buf));
	vmic_wr_init(&w, buf, 3);
	vmic_wr_bytes(&w, "abcd", 4);
	assert_true(w.err);
	assert_int_equal(buf[0], 0x55);
}

static void test_string_roundtrip(void **state)
{
	uint8_t buf[64];
	char dst[16];
	struct vmic_wr w;
	struct vmic_rd r;
	const char *s;
	size_t n;

	(void)state;
	vmic_wr_init(&w, buf, sizeof(buf));
	vmic_wr_str(&w, "h\xC3\xA9llo", 15); /* "héllo" */
	vmic_wr_str(&w, "", 15);
	vmic_wr_strn(&w, "abcdef", 3, 15);
	assert_false(w.err);
	assert_int_equal(vmic_get_le16(buf), 6);

	vmic_rd_init(&r, buf, w.off);
	vmic_rd_str(&r, 15, &s, &n);
	assert_false(r.err);
	assert_int_equal(n, 6);
	assert_memory_equal(s, "h\xC3\xA9llo", 6);
	vmic_rd_strcpy(&r, 15, dst, sizeof(dst));
	assert_false(r.err);
	assert_string_equal(dst, "");
	vmic_rd_strcpy(&r, 15, dst, sizeof(dst));
	assert_false(r.err);
	assert_string_equal(dst, "abc");
	assert_int_equal(vmic_rd_left(&r), 0);
}

static void test_string_limits(void **state)
{
	uint8_t buf[64];
	char dst[8];
	struct vmic_wr w;
	struct vmic_rd r;
	const char *s;
	size_t n;

	(void)state;
	/* Writer: exactly max is fine, max + 1 is an error. */
	vmic_wr_init(&w, buf, sizeof(buf));
	vmic_wr_str(&w, "1234567", 7);
	assert_false(w.err);
	vmic_wr_str(&w, "12345678", 7);
	assert_true(w.err);

	/* Reader: a declared length over max fails before reading it. */
	vmic_wr_init(&w, buf, sizeof(buf));
	vmic_wr_str(&w, "12345678", 8);
	assert_false(w.err);
	vmic_rd_init(&r, buf, w.off);
	vmic_rd_str(&r, 7, &s, &n);
	assert_true(r.err);
	assert_int_equal(n, 0);
	assert_string_equal(s, "");

	/* Same with a copy: max 7 into 8 bytes works at exactly 7. */
	vmic_wr_init(&w, buf, sizeof(buf));
	vmic_wr_str(&w, "1234567", 7);
	vmic_rd_init(&r, buf, w.off);
	vmic_rd_strcpy(&r, 7, dst, sizeof(dst));
	assert_false(r.err);
	assert_string_equal(dst, "1234567");

	/* A destination too small for max is refused, not truncated. */
	vmic_rd_init(&r, buf, w.off);
	vmic_rd_strcpy(&r, 8, dst, sizeof(dst));
	assert_true(r.err);
	assert_string_equal(dst, "");

	/* Declared length longer than the buffer. */
	vmic_put_le16(buf, 10);
	memcpy(buf + 2, "abc", 3);
	vmic_rd_init(&r, buf, 5);
	vmic_rd_str(&r, 100, &s, &n);
	assert_true(r.err);
	assert_int_equal(n, 0);

	/* Length field itself cut short. */
	vmic_rd_init(&r, buf, 1);
	vmic_rd_str(&r, 100, &s, &n);
	assert_true(r.err);

	/* strn beyond the u16 length field. */
	vmic_wr_init(&w, buf, sizeof(buf));
	vmic_wr_strn(&w, "x", 70000, 100000);
	assert_true(w.err);
	assert_int_equal(w.off, 0);
}

static void check_bad_string(const char *bytes, size_t len)
{
	uint8_t buf[64];
	struct vmic_rd r;
	const char *s;
	size_t n;
	char dst[32];

	vmic_put_le16(buf, (uint16_t)len);
	memcpy(buf + 2, bytes, len);
	vmic_rd_init(&r, buf, 2 + len);
	vmic_rd_str(&r, 30, &s, &n);
	assert_true(r.err);
	assert_int_equal(n, 0);
	vmic_rd_init(&r, buf, 2 + len);
	vmic_rd_strcpy(&r, 30, dst, sizeof(dst));
	assert_true(r.err);
	assert_string_equal(dst, "");
}

static void test_string_content_checked(void **state)
{
	(void)state;
	check_bad_string("ab\0cd", 5);       /* embedded NUL */
	check_bad_string("\0", 1);           /* only a NUL */
	check_bad_string("ab\xFF", 3);       /* never valid in UTF-8 */
	check_bad_string("\xC0\xAF", 2);     /* overlong '/' */
	check_bad_string("\xED\xA0\x80", 3); /* surrogate U+D800 */
	check_bad_string("x\xE2\x82", 3);    /* truncated sequence */
	check_bad_string("\x80", 1);         /* lone continuation */
}

static void test_blob(void **state)
{
	uint8_t buf[64];
	const uint8_t raw[5] = { 0, 1, 0xFF, 'V', 0 };
	struct vmic_wr w;
	struct vmic_rd r;
	const uint8_t *b;
	size_t n;

	(void)state;
	vmic_wr_init(&w, buf, sizeof(buf));
	vmic_wr_blob(&w, raw, sizeof(raw), 5);
	assert_false(w.err);
	assert_int_equal(w.off, 4 + 5);
	vmic_wr_blob(&w, raw, sizeof(raw), 4);
	assert_true(w.err);

	/* Blobs are raw: NUL and non-UTF-8 bytes are fine. */
	vmic_rd_init(&r, buf, 9);
	vmic_rd_blob(&r, 5, &b, &n);
	assert_false(r.err);
	assert_int_equal(n, 5);
	assert_memory_equal(b, raw, 5);

	vmic_rd_init(&r, buf, 9);
	vmic_rd_blob(&r, 4, &b, &n);
	assert_true(r.err);
	assert_null(b);
	assert_int_equal(n, 0);

	vmic_rd_init(&r, buf, 8);
	vmic_rd_blob(&r, 5, &b, &n);
	assert_true(r.err);
	assert_null(b);

	/* A length near UINT32_MAX must not pass the bound by overflow. */
	vmic_put_le32(buf, 0xFFFFFFFFu);
	vmic_rd_init(&r, buf, 9);
	vmic_rd_blob(&r, SIZE_MAX, &b, &n);
	assert_true(r.err);
	assert_null(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_integers),
		cmocka_unit_test(test_short_reads_set_err),
		cmocka_unit_test(test_short_writes_set_err),
		cmocka_unit_test(test_string_roundtrip),
		cmocka_unit_test(test_string_limits),
		cmocka_unit_test(test_string_content_checked),
		cmocka_unit_test(test_blob),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
