/* SPDX-License-Identifier: MIT */
/* src/proto/control.c: the control service's message codecs and the
 * frame header (each service's codecs: tests/services/NAME/). */
#include <errno.h>

#include "testutil.h"

#include "common/utf8.h"
#include "common/wire.h"
#include "proto/control.h"
#include "proto/frame.h"
#include "proto/services.h"
#include "services/heartbeat/heartbeat.h"

/* A string of n bytes: 'a'..'z' repeated. */
static char *make_str(size_t n)
{
	char *s = malloc(n + 1);

	for (size_t i = 0; i < n; i++)
		s[i] = (char)('a' + i % 26);
	s[n] = '\0';
	return s;
}

static void test_info_roundtrip(void **state)
{
	struct vmic_info in = { .uptime_ms = 123456789012ull }, out;
	uint8_t buf[VMIC_INFO_MAX_LEN + 16];
	char *longest = make_str(VMIC_INFO_STR_MAX);
	int n;

	(void)state;
	snprintf(in.hostname, sizeof(in.hostname), "web1");
	snprintf(in.os_name, sizeof(in.os_name), "Debian GNU/Linux 12");
	snprintf(in.os_id, sizeof(in.os_id), "debian");
	snprintf(in.os_version, sizeof(in.os_version), "12");
	snprintf(in.kernel_release, sizeof(in.kernel_release), "6.1.0-18");
	snprintf(in.kernel_version, sizeof(in.kernel_version), "#1 SMP");
	snprintf(in.arch, sizeof(in.arch), "x86_64");
	n = vmic_info_encode(&in, buf, sizeof(buf));
	assert_true(n >= VMIC_INFO_MIN_LEN);
	memset(&out, 0x5A, sizeof(out));
	assert_int_equal(vmic_info_decode(buf, (size_t)n, &out), 0);
	assert_string_equal(out.hostname, "web1");
	assert_string_equal(out.os_name, "Debian GNU/Linux 12");
	assert_string_equal(out.arch, "x86_64");
	assert_true(out.uptime_ms == in.uptime_ms);

	/* Everything empty: the minimum length. */
	memset(&in, 0, sizeof(in));
	assert_int_equal(vmic_info_encode(&in, buf, sizeof(buf)),
			 VMIC_INFO_MIN_LEN);
	/* Everything at its limit: the maximum length. */
	memcpy(in.hostname, longest, VMIC_INFO_STR_MAX + 1);
	memcpy(in.os_name, longest, VMIC_INFO_STR_MAX + 1);
	memcpy(in.os_id, longest, VMIC_INFO_STR_MAX + 1);
	memcpy(in.os_version, longest, VMIC_INFO_STR_MAX + 1);
	memcpy(in.kernel_release, longest, VMIC_INFO_STR_MAX + 1);
	memcpy(in.kernel_version, longest, VMIC_INFO_STR_MAX + 1);
	memcpy(in.arch, longest, VMIC_INFO_STR_MAX + 1);
	n = vmic_info_encode(&in, buf, sizeof(buf));
	assert_int_equal(n, VMIC_INFO_MAX_LEN);
	assert_int_equal(vmic_info_decode(buf, (size_t)n, &out), 0);
	assert_string_equal(out.kernel_version, longest);
	/* Truncations fail. */
	for (int len = 0; len < n; len += 37)
		assert_int_equal(vmic_info_decode(buf, (size_t)len, &out),
				 -EBADMSG);
	assert_int_equal(vmic_info_decode(buf, (size_t)n - 1, &out), -EBADMSG);
	/* A string over the limit, as a peer could send it. */
	vmic_put_le16(buf, VMIC_INFO_STR_MAX + 1);
	assert_int_equal(vmic_info_decode(buf, (size_t)n, &out), -EBADMSG);
	free(longest);
}

static void test_error_roundtrip(void **state)
{
	struct vmic_error in = { .code = VMIC_E_REFUSED }, out;
	uint8_t buf[VMIC_ERROR_MAX_LEN + 8];
	char *longest = make_str(VMIC_ERROR_MSG_MAX);
	int n;

	(void)state;
	snprintf(in.message, sizeof(in.message), "shutdown refused: %s",
		 "backup running");
	n = vmic_error_encode(&in, buf, sizeof(buf));
	assert_int_equal(n, 2 + 2 + strlen(in.message));
	assert_int_equal(vmic_error_decode(buf, (size_t)n, &out), 0);
	assert_int_equal(out.code, VMIC_E_REFUSED);
	assert_string_equal(out.message, in.message);

	memcpy(in.message, longest, VMIC_ERROR_MSG_MAX + 1);
	n = vmic_error_encode(&in, buf, sizeof(buf));
	assert_int_equal(n, VMIC_ERROR_MAX_LEN);
	assert_int_equal(vmic_error_decode(buf, (size_t)n, &out), 0);
	assert_string_equal(out.message, longest);
	vmic_put_le16(buf + 2, VMIC_ERROR_MSG_MAX + 1);
	assert_int_equal(vmic_error_decode(buf, sizeof(buf), &out), -EBADMSG);
	assert_int_equal(vmic_error_decode(buf, 3, &out), -EBADMSG);
	free(longest);
}

static void check_error_frame(const uint8_t *buf, size_t n,
			      struct vmic_error *e)
{
	struct vmic_frame f;

	assert_true(n >= VMIC_HDR_SIZE + VMIC_ERROR_MIN_LEN);
	assert_int_equal(vmic_frame_parse_header(buf, &f), 0);
	assert_int_equal(f.length, n - VMIC_HDR_SIZE);
	assert_int_equal(f.type, VMIC_T_ERROR);
	assert_true(f.flags & VMIC_F_REPLY);
	assert_int_equal(vmic_msg_check(&f, VMIC_DIR_H2G), 0);
	assert_int_equal(vmic_error_decode(buf + VMIC_HDR_SIZE, f.length, e),
			 0);
	assert_true(vmic_utf8_valid(e->message, strlen(e->message)));
}

static void test_error_frame(void **state)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_ERROR_MAX_LEN];
	struct vmic_error e;
	struct vmic_frame f;
	char msg[2000];
	size_t n;

	(void)state;
	n = vmic_error_frame(buf, VMIC_SVC_SHUTDOWN, 77, VMIC_E_DISABLED,
			     "shutdown is disabled in the guest");
	check_error_frame(buf, n, &e);
	vmic_frame_parse_header(buf, &f);
	assert_int_equal(f.service, VMIC_SVC_SHUTDOWN);
	assert_int_equal(f.request_id, 77);
	assert_int_equal(e.code, VMIC_E_DISABLED);
	assert_string_equal(e.message, "shutdown is disabled in the guest");

	/* 1023 ASCII bytes then a 3-byte character: cut before it. */
	memset(msg, 'x', 1023);
	strcpy(msg + 1023, "\xE2\x82\xAC and more");
	n = vmic_error_frame(buf, VMIC_SVC_HEARTBEAT, 1, VMIC_E_FAILED, msg);
	check_error_frame(buf, n, &e);
	assert_int_equal(strlen(e.message), 1023);
	assert_int_equal(n, VMIC_HDR_SIZE + 4 + 1023);

	/* All multi-byte: the longest whole-character prefix. */
	msg[0] = '\0';
	for (int i = 0; i < 600; i++)
		strcat(msg, "\xC3\xA9");
	n = vmic_error_frame(buf, VMIC_SVC_HEARTBEAT, 1, VMIC_E_FAILED, msg);
	check_error_frame(buf, n, &e);
	assert_int_equal(strlen(e.message), 1024);

	/* Exactly the maximum fits unchanged; control bytes are masked. */
	memset(msg, 'y', VMIC_ERROR_MSG_MAX);
	msg[VMIC_ERROR_MSG_MAX] = '\0';
	msg[5] = '\n';
	n = vmic_error_frame(buf, VMIC_SVC_HEARTBEAT, 1, VMIC_E_FAILED, msg);
	check_error_frame(buf, n, &e);
	assert_int_equal(strlen(e.message), VMIC_ERROR_MSG_MAX);
	assert_int_equal(e.message[5], '?');

	/* Invalid UTF-8 from a caller (a file name, say) stays decodable. */
	n = vmic_error_frame(buf, VMIC_SVC_HEARTBEAT, 1, VMIC_E_FAILED,
			     "no such file: \xFF\xFE.txt");
	check_error_frame(buf, n, &e);
	assert_string_equal(e.message, "no such file: ??.txt");
}

static void test_frame_seal(void **state)
{
	uint8_t buf[VMIC_HDR_SIZE + 8];
	struct vmic_frame f;
	uint64_t seq;
	size_t n;

	(void)state;
	assert_int_equal(vmic_hb_request_encode(99, buf + VMIC_HDR_SIZE, 8), 8);
	n = vmic_frame_seal(buf, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST, 0, 5, 0,
			    8);
	assert_int_equal(n, VMIC_HDR_SIZE + 8);
	assert_int_equal(vmic_frame_parse_header(buf, &f), 0);
	assert_int_equal(f.service, VMIC_SVC_HEARTBEAT);
	assert_int_equal(f.type, VMIC_HB_REQUEST);
	assert_int_equal(f.request_id, 5);
	assert_int_equal(f.length, 8);
	assert_int_equal(vmic_hb_request_decode(buf + VMIC_HDR_SIZE, 8, &seq),
			 0);
	assert_true(seq == 99);
}



/*
 * Encoders refuse strings over their limits instead of cutting them. The
 * string is the last member of each struct, so an allocation with slack
 * lets a caller bug write one byte more than the array holds.
 */
static char *overlong(void *m, size_t off, size_t max)
{
	char *s = (char *)m + off;

	memset(s, 'o', max + 1);
	s[max + 1] = '\0';
	return s;
}

static void test_encoders_refuse_overlong(void **state)
{
	struct vmic_error *e = calloc(1, sizeof(*e) + 8);
	static uint8_t buf[8192];

	(void)state;
	overlong(e, offsetof(struct vmic_error, message), VMIC_ERROR_MSG_MAX);
	assert_int_equal(vmic_error_encode(e, buf, sizeof(buf)), -EMSGSIZE);
	free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_info_roundtrip),
		cmocka_unit_test(test_error_roundtrip),
		cmocka_unit_test(test_error_frame),
		cmocka_unit_test(test_frame_seal),
		cmocka_unit_test(test_encoders_refuse_overlong),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
