/* SPDX-License-Identifier: MIT */
/*
 * The time service's messages (src/services/timesync/proto.c): the first
 * input byte picks the decoder (enum ts_kind), the rest is the payload.
 * Whatever decodes must encode back to the same bytes and decode again to
 * the same value. TS_KIND_OFFSET feeds four peer timestamps to the
 * offset arithmetic, which must refuse or compute, never overflow.
 */
#include <string.h>

#include "fuzz.h"
#include "services/timesync/timesync.h"

enum ts_kind {
	TS_KIND_SAMPLE,
	TS_KIND_REPLY,
	TS_KIND_SETTINGS,
	TS_KIND_SYNC,
	TS_KIND_REPORT,
	TS_KIND_OFFSET,
	TS_KIND_COUNT
};

/* Encoded bytes must equal the input's first n bytes. */
static void same(const uint8_t *a, int n, const uint8_t *p, size_t len)
{
	FUZZ_CHECK(n > 0 && (size_t)n <= len);
	FUZZ_CHECK(memcmp(a, p, (size_t)n) == 0);
}

static void fuzz_report(const uint8_t *p, size_t n)
{
	struct vmic_ts_report m, m2;
	uint8_t out[VMIC_TS_REPORT_MAX_LEN];
	int len;

	if (vmic_ts_report_decode(p, n, &m) < 0)
		return;
	FUZZ_CHECK(vmic_ts_mode_name(m.mode) && vmic_ts_action_name(m.action));
	FUZZ_CHECK(vmic_ts_source_name(m.source) &&
		   vmic_ts_reason_name(m.reason));
	len = vmic_ts_report_encode(&m, out, sizeof(out));
	same(out, len, p, n);
	FUZZ_CHECK(vmic_ts_report_decode(out, (size_t)len, &m2) == 0);
	FUZZ_CHECK(strcmp(m.detail, m2.detail) == 0 &&
		   m.offset_ns == m2.offset_ns && m.freq_ppb == m2.freq_ppb);
}

static void fuzz_offset(const uint8_t *p, size_t n)
{
	int64_t t[4], off, delay;

	if (n < sizeof(t))
		return;
	memcpy(t, p, sizeof(t));
	if (vmic_ts_offset(t[0], t[1], t[2], t[3], &off, &delay) == 0)
		FUZZ_CHECK(delay >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t out[64];
	const uint8_t *p = data + 1;
	size_t n = size ? size - 1 : 0;
	struct vmic_ts_reply r;
	struct vmic_ts_settings s;
	struct vmic_ts_sync y;
	int64_t t1;

	if (size < 1)
		return 0;
	switch ((enum ts_kind)(data[0] % TS_KIND_COUNT)) {
	case TS_KIND_SAMPLE:
		if (vmic_ts_sample_decode(p, n, &t1) == 0)
			same(out, vmic_ts_sample_encode(t1, out, sizeof(out)),
			     p, n);
		break;
	case TS_KIND_REPLY:
		if (vmic_ts_reply_decode(p, n, &r) == 0)
			same(out, vmic_ts_reply_encode(&r, out, sizeof(out)),
			     p, n);
		break;
	case TS_KIND_SETTINGS:
		if (vmic_ts_settings_decode(p, n, &s) == 0) {
			FUZZ_CHECK(vmic_ts_policy_name(s.policy) != NULL);
			same(out, vmic_ts_settings_encode(&s, out, sizeof(out)),
			     p, n);
		}
		break;
	case TS_KIND_SYNC:
		if (vmic_ts_sync_decode(p, n, &y) == 0)
			same(out, vmic_ts_sync_encode(&y, out, sizeof(out)), p,
			     n);
		break;
	case TS_KIND_REPORT:
		fuzz_report(p, n);
		break;
	case TS_KIND_OFFSET:
	case TS_KIND_COUNT:
		fuzz_offset(p, n);
		break;
	}
	return 0;
}
