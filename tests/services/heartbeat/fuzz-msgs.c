/* SPDX-License-Identifier: MIT */
/*
 * The heartbeat's message decoders (src/services/heartbeat/proto.c),
 * with their round-trip checks, for fuzz-messages and fuzz-frame
 * (tests/fuzz/fuzz.h).
 */
#include <string.h>

#include "fuzz.h"

#include "services/heartbeat/heartbeat.h"

static int hb_request_kind(const uint8_t *p, size_t n)
{
	uint8_t enc[8];
	uint64_t seq;
	int len;

	if (vmic_hb_request_decode(p, n, &seq) < 0)
		return 0;
	len = vmic_hb_request_encode(seq, enc, sizeof(enc));
	fuzz_check_prefix(enc, len, p, n);
	return 1;
}

static int hb_reply_kind(const uint8_t *p, size_t n)
{
	static struct vmic_hb_reply m, again;
	static uint8_t enc[VMIC_HB_REPLY_MAX_LEN];
	int len;

	memset(&m, 0, sizeof(m));
	if (vmic_hb_reply_decode(p, n, &m) < 0)
		return 0;
	FUZZ_CHECK(m.health <= VMIC_HEALTH_CRITICAL);
	FUZZ_CHECK(fuzz_valid_text(m.reason, VMIC_HB_REASON_MAX));
	len = vmic_hb_reply_encode(&m, enc, sizeof(enc));
	fuzz_check_prefix(enc, len, p, n);
	memset(&again, 0, sizeof(again));
	FUZZ_CHECK(vmic_hb_reply_decode(enc, (size_t)len, &again) == 0);
	FUZZ_CHECK(memcmp(&again, &m, sizeof(m)) == 0);
	return 1;
}

static const struct fuzz_msg msgs[] = {
	{ "hb-request", VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST, hb_request_kind },
	{ "hb-reply", VMIC_SVC_HEARTBEAT, VMIC_HB_REPLY, hb_reply_kind },
};

const struct fuzz_msgs fuzz_msgs_heartbeat = { msgs,
					       sizeof(msgs) / sizeof(msgs[0]) };
