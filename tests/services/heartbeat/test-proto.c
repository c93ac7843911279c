/* SPDX-License-Identifier: MIT */
/* src/services/heartbeat/proto.c: the service's message codecs. */
#include <errno.h>

#include "testutil.h"

#include "common/wire.h"
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

/* A string one byte over max at offset off of struct m, which has slack
 * behind it: an encoder must refuse it rather than cut it. */
static char *overlong(void *m, size_t off, size_t max)
{
	char *s = (char *)m + off;

	memset(s, 'o', max + 1);
	s[max + 1] = '\0';
	return s;
}

static void test_heartbeat(void **state)
{
	struct vmic_hb_reply in = { .seq = 1001, .health = VMIC_HEALTH_OK },
			     out;
	uint8_t buf[VMIC_HB_REPLY_MAX_LEN + 8];
	char *longest = make_str(VMIC_HB_REASON_MAX);
	uint64_t seq;
	int n;

	(void)state;
	assert_int_equal(vmic_hb_request_encode(0xFFFFFFFFFFFFFFFFull, buf, 8),
			 VMIC_HB_REQUEST_LEN);
	assert_int_equal(vmic_hb_request_decode(buf, 8, &seq), 0);
	assert_true(seq == 0xFFFFFFFFFFFFFFFFull);
	assert_int_equal(vmic_hb_request_decode(buf, 7, &seq), -EBADMSG);
	assert_int_equal(vmic_hb_request_encode(1, buf, 7), -EMSGSIZE);

	n = vmic_hb_reply_encode(&in, buf, sizeof(buf));
	assert_int_equal(n, VMIC_HB_REPLY_MIN_LEN);
	assert_int_equal(vmic_hb_reply_decode(buf, (size_t)n, &out), 0);
	assert_true(out.seq == 1001);
	assert_int_equal(out.health, VMIC_HEALTH_OK);
	assert_string_equal(out.reason, "");

	in.health = VMIC_HEALTH_CRITICAL;
	snprintf(in.reason, sizeof(in.reason), "nginx.service failed");
	n = vmic_hb_reply_encode(&in, buf, sizeof(buf));
	assert_int_equal(vmic_hb_reply_decode(buf, (size_t)n, &out), 0);
	assert_int_equal(out.health, VMIC_HEALTH_CRITICAL);
	assert_string_equal(out.reason, "nginx.service failed");

	/* Reason at the limit, and one byte over it. */
	memcpy(in.reason, longest, VMIC_HB_REASON_MAX + 1);
	n = vmic_hb_reply_encode(&in, buf, sizeof(buf));
	assert_int_equal(n, VMIC_HB_REPLY_MAX_LEN);
	assert_int_equal(vmic_hb_reply_decode(buf, (size_t)n, &out), 0);
	assert_string_equal(out.reason, longest);
	vmic_put_le16(buf + 9, VMIC_HB_REASON_MAX + 1);
	assert_int_equal(vmic_hb_reply_decode(buf, sizeof(buf), &out),
			 -EBADMSG);

	/* Unknown health value. */
	in.reason[0] = '\0';
	n = vmic_hb_reply_encode(&in, buf, sizeof(buf));
	buf[8] = 2;
	assert_int_equal(vmic_hb_reply_decode(buf, (size_t)n, &out), -EBADMSG);
	buf[8] = 0xFF;
	assert_int_equal(vmic_hb_reply_decode(buf, (size_t)n, &out), -EBADMSG);
	/* Truncated. */
	buf[8] = 0;
	assert_int_equal(vmic_hb_reply_decode(buf, (size_t)n - 1, &out),
			 -EBADMSG);
	/* Non-UTF-8 reason. */
	vmic_put_le16(buf + 9, 2);
	memcpy(buf + 11, "\xC3\x28", 2);
	assert_int_equal(vmic_hb_reply_decode(buf, 13, &out), -EBADMSG);
	free(longest);
}

static void test_hb_encoders_refuse_overlong(void **state)
{
	struct vmic_hb_reply *hb = calloc(1, sizeof(*hb) + 8);
	static uint8_t buf[8192];

	(void)state;
	overlong(hb, offsetof(struct vmic_hb_reply, reason),
		 VMIC_HB_REASON_MAX);
	assert_int_equal(vmic_hb_reply_encode(hb, buf, sizeof(buf)),
			 -EMSGSIZE);
	free(hb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_heartbeat),
		cmocka_unit_test(test_hb_encoders_refuse_overlong),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
