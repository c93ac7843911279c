/* SPDX-License-Identifier: MIT */
/*
 * The shutdown service's message decoders (src/services/shutdown/
 * proto.c),
 * with their round-trip checks, for fuzz-messages and fuzz-frame
 * (tests/fuzz/fuzz.h).
 */
#include <string.h>

#include "fuzz.h"

#include "services/shutdown/shutdown.h"

static int sd_request_kind(const uint8_t *p, size_t n)
{
	static struct vmic_sd_request m, again;
	static uint8_t enc[VMIC_SD_REQUEST_MAX_LEN];
	int len;

	memset(&m, 0, sizeof(m));
	if (vmic_sd_request_decode(p, n, &m) < 0)
		return 0;
	FUZZ_CHECK(vmic_sd_action_name(m.action) != NULL);
	FUZZ_CHECK((m.flags & ~VMIC_SD_F_KNOWN) == 0);
	FUZZ_CHECK(fuzz_valid_text(m.reason, VMIC_SD_REASON_MAX));
	len = vmic_sd_request_encode(&m, enc, sizeof(enc));
	fuzz_check_prefix(enc, len, p, n);
	memset(&again, 0, sizeof(again));
	FUZZ_CHECK(vmic_sd_request_decode(enc, (size_t)len, &again) == 0);
	FUZZ_CHECK(memcmp(&again, &m, sizeof(m)) == 0);
	return 1;
}

static int sd_reply_kind(const uint8_t *p, size_t n)
{
	static struct vmic_sd_reply m, again;
	static uint8_t enc[VMIC_SD_REPLY_MAX_LEN];
	int len;

	memset(&m, 0, sizeof(m));
	if (vmic_sd_reply_decode(p, n, &m) < 0)
		return 0;
	FUZZ_CHECK(fuzz_valid_text(m.message, VMIC_SD_MESSAGE_MAX));
	len = vmic_sd_reply_encode(&m, enc, sizeof(enc));
	fuzz_check_prefix(enc, len, p, n);
	memset(&again, 0, sizeof(again));
	FUZZ_CHECK(vmic_sd_reply_decode(enc, (size_t)len, &again) == 0);
	FUZZ_CHECK(memcmp(&again, &m, sizeof(m)) == 0);
	return 1;
}

static const struct fuzz_msg msgs[] = {
	{ "sd-request", VMIC_SVC_SHUTDOWN, VMIC_SD_REQUEST, sd_request_kind },
	{ "sd-reply", VMIC_SVC_SHUTDOWN, VMIC_SD_REPLY, sd_reply_kind },
};

const struct fuzz_msgs fuzz_msgs_shutdown = { msgs,
					      sizeof(msgs) / sizeof(msgs[0]) };
