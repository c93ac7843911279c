/* SPDX-License-Identifier: MIT */
/* Time sync's seeds for fuzz-timesync (tests/fuzz/corpus.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"

#include "services/timesync/timesync.h"

/* fuzz-timesync: selector byte (its enum ts_kind), then the payload. */
static void ts_seed(const char *name, uint8_t kind, const uint8_t *p, int n)
{
	uint8_t out[VMIC_TS_REPORT_MAX_LEN + 1];

	if (n < 0 || (size_t)n >= sizeof(out))
		abort();
	out[0] = kind;
	memcpy(out + 1, p, (size_t)n);
	save("fuzz-timesync", name, out, (size_t)n + 1);
}

/* Append v's bytes at *at. */
static void put_le(uint8_t **at, const void *v, size_t n)
{
	memcpy(*at, v, n);
	*at += n;
}

/* fuzz-timesync's discipline: a year's max-step, a 2020 build date, and
 * cycles that step, lie by a century, reach int64's end, and find a
 * never-set clock (see fuzz_disc for the layout). */
static void gen_timesync_disc(void)
{
	const int64_t s = 1000000000, now = 1700000000 * s;
	const int64_t steps[][3] = {
		{ now, 30 * s, 20000 },
		{ now + 30 * s, 100LL * 365 * 86400 * s, 20000 },
		{ now, INT64_MAX, INT64_MAX },
		{ now, INT64_MIN, 0 },
		{ 100000000 * s, now - 100000000 * s, 20000 },
	};
	uint8_t buf[256], *at = buf;
	uint32_t max_step = 365 * 86400, threshold = 128;
	int64_t build = 1600000000 * s;
	uint8_t flags = 0;

	put_le(&at, &max_step, sizeof(max_step));
	put_le(&at, &threshold, sizeof(threshold));
	put_le(&at, &flags, 1);
	put_le(&at, &build, sizeof(build));
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		uint8_t adv = 2, f = (uint8_t)(i % 4);

		put_le(&at, steps[i], sizeof(steps[i]));
		put_le(&at, &adv, 1);
		put_le(&at, &f, 1);
	}
	ts_seed("discipline", 6, buf, (int)(at - buf));
}

void gen_corpus_timesync(void)
{
	uint8_t p[VMIC_TS_REPORT_MAX_LEN];
	struct vmic_ts_reply r = { 1700000000000000000, 1700000010000100000,
				   1700000010000102000 };
	struct vmic_ts_settings s = { VMIC_TS_POLICY_AUTO,
				      VMIC_TS_SET_STEP_BACKWARD, 128 };
	struct vmic_ts_sync y = { VMIC_TS_REASON_RESUME, 0 };
	struct vmic_ts_report m = { .mode = VMIC_TS_MODE_CHANNEL,
				    .action = VMIC_TS_ACT_STEPPED,
				    .source = VMIC_TS_SRC_CHANNEL,
				    .reason = VMIC_TS_REASON_RESUME,
				    .offset_ns = 30000000000,
				    .delay_ns = 80000,
				    .step_ns = 30000000000,
				    .guest_ns = 1700000000000000000,
				    .freq_ppb = -100000,
				    .interval_ms = 2000,
				    .detail = "chronyd runs without `refclock "
					      "SOCK /run/vmic/chrony.sock`" };
	int64_t t[4] = { 0, 10, 12, 30 };

	ts_seed("sample", 0, p, vmic_ts_sample_encode(-1, p, sizeof(p)));
	ts_seed("reply", 1, p, vmic_ts_reply_encode(&r, p, sizeof(p)));
	ts_seed("settings", 2, p, vmic_ts_settings_encode(&s, p, sizeof(p)));
	ts_seed("sync", 3, p, vmic_ts_sync_encode(&y, p, sizeof(p)));
	ts_seed("report", 4, p, vmic_ts_report_encode(&m, p, sizeof(p)));
	ts_seed("offset", 5, (const uint8_t *)t, sizeof(t));
	gen_timesync_disc();
}
