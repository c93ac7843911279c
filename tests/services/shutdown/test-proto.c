/* SPDX-License-Identifier: MIT */
/* src/services/shutdown/proto.c: the service's message codecs. */
#include <errno.h>

#include "testutil.h"

#include "common/wire.h"
#include "services/shutdown/shutdown.h"

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

static void test_shutdown(void **state)
{
	struct vmic_sd_request in = { .action = VMIC_SD_REBOOT,
				      .flags = VMIC_SD_F_FORCE },
			       out;
	struct vmic_sd_reply rin = { .status = 0 }, rout;
	uint8_t buf[VMIC_SD_REQUEST_MAX_LEN + 8];
	char *longest = make_str(VMIC_SD_REASON_MAX);
	int n;

	(void)state;
	snprintf(in.reason, sizeof(in.reason), "kernel update");
	n = vmic_sd_request_encode(&in, buf, sizeof(buf));
	assert_int_equal(n, 2 + 2 + 13);
	assert_int_equal(vmic_sd_request_decode(buf, (size_t)n, &out), 0);
	assert_int_equal(out.action, VMIC_SD_REBOOT);
	assert_int_equal(out.flags, VMIC_SD_F_FORCE);
	assert_string_equal(out.reason, "kernel update");

	/* Reason at the limit and over it. */
	memcpy(in.reason, longest, VMIC_SD_REASON_MAX + 1);
	n = vmic_sd_request_encode(&in, buf, sizeof(buf));
	assert_int_equal(n, VMIC_SD_REQUEST_MAX_LEN);
	assert_int_equal(vmic_sd_request_decode(buf, (size_t)n, &out), 0);
	assert_string_equal(out.reason, longest);
	vmic_put_le16(buf + 2, VMIC_SD_REASON_MAX + 1);
	assert_int_equal(vmic_sd_request_decode(buf, sizeof(buf), &out),
			 -EBADMSG);

	/* Unknown action, unknown flag bits. */
	in.reason[0] = '\0';
	in.action = VMIC_SD_HALT;
	in.flags = 0;
	n = vmic_sd_request_encode(&in, buf, sizeof(buf));
	assert_int_equal(vmic_sd_request_decode(buf, (size_t)n, &out), 0);
	buf[0] = 3;
	assert_int_equal(vmic_sd_request_decode(buf, (size_t)n, &out),
			 -EBADMSG);
	buf[0] = VMIC_SD_POWEROFF;
	buf[1] = 0x02;
	assert_int_equal(vmic_sd_request_decode(buf, (size_t)n, &out),
			 -EBADMSG);
	buf[1] = 0x80 | VMIC_SD_F_FORCE;
	assert_int_equal(vmic_sd_request_decode(buf, (size_t)n, &out),
			 -EBADMSG);
	buf[1] = VMIC_SD_F_FORCE;
	assert_int_equal(vmic_sd_request_decode(buf, (size_t)n, &out), 0);
	assert_int_equal(vmic_sd_request_decode(buf, 3, &out), -EBADMSG);

	assert_string_equal(vmic_sd_action_name(VMIC_SD_POWEROFF), "poweroff");
	assert_string_equal(vmic_sd_action_name(VMIC_SD_REBOOT), "reboot");
	assert_string_equal(vmic_sd_action_name(VMIC_SD_HALT), "halt");
	assert_null(vmic_sd_action_name(3));
	assert_null(vmic_sd_action_name(255));

	/* Reply. */
	snprintf(rin.message, sizeof(rin.message), "running systemctl reboot");
	n = vmic_sd_reply_encode(&rin, buf, sizeof(buf));
	assert_int_equal(vmic_sd_reply_decode(buf, (size_t)n, &rout), 0);
	assert_int_equal(rout.status, 0);
	assert_string_equal(rout.message, "running systemctl reboot");
	memset(rin.message, 'm', VMIC_SD_MESSAGE_MAX);
	rin.message[VMIC_SD_MESSAGE_MAX] = '\0';
	n = vmic_sd_reply_encode(&rin, buf, sizeof(buf));
	assert_int_equal(n, VMIC_SD_REPLY_MAX_LEN);
	assert_int_equal(vmic_sd_reply_decode(buf, (size_t)n, &rout), 0);
	vmic_put_le16(buf + 1, VMIC_SD_MESSAGE_MAX + 1);
	assert_int_equal(vmic_sd_reply_decode(buf, sizeof(buf), &rout),
			 -EBADMSG);
	assert_int_equal(vmic_sd_reply_decode(buf, 2, &rout), -EBADMSG);
	free(longest);
}

static void test_sd_encoders_refuse_overlong(void **state)
{
	struct vmic_sd_request *rq = calloc(1, sizeof(*rq) + 8);
	struct vmic_sd_reply *rp = calloc(1, sizeof(*rp) + 8);
	static uint8_t buf[8192];

	(void)state;
	overlong(rq, offsetof(struct vmic_sd_request, reason),
		 VMIC_SD_REASON_MAX);
	assert_int_equal(vmic_sd_request_encode(rq, buf, sizeof(buf)),
			 -EMSGSIZE);
	overlong(rp, offsetof(struct vmic_sd_reply, message),
		 VMIC_SD_MESSAGE_MAX);
	assert_int_equal(vmic_sd_reply_encode(rp, buf, sizeof(buf)),
			 -EMSGSIZE);
	/* Too small an output buffer, too. */
	rp->message[0] = '\0';
	assert_int_equal(vmic_sd_reply_encode(rp, buf, 2), -EMSGSIZE);
	free(rq);
	free(rp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shutdown),
		cmocka_unit_test(test_sd_encoders_refuse_overlong),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
