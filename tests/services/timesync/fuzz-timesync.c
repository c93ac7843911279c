/* SPDX-License-Identifier: MIT */
/*
 * The time service's messages (src/services/timesync/proto.c): the first
 * input byte picks the decoder (enum ts_kind), the rest is the payload.
 * Whatever decodes must encode back to the same bytes and decode again to
 * the same value. TS_KIND_OFFSET feeds four peer timestamps to the
 * offset arithmetic, which must refuse or compute, never overflow.
 * TS_KIND_DISC runs the discipline (discipline.c, compiled in) on peer
 * offsets and clock readings under a fuzzed config: it must never
 * overflow, never set a frequency past the kernel's limit, and never
 * step past the sanity bound or what is left of the step budget.
 */
#include <string.h>

#include "fuzz.h"
#include "guest/clock.h"
#include "services/timesync/discipline.h"
#include "services/timesync/timesync.h"

enum ts_kind {
	TS_KIND_SAMPLE,
	TS_KIND_REPLY,
	TS_KIND_SETTINGS,
	TS_KIND_SYNC,
	TS_KIND_REPORT,
	TS_KIND_OFFSET,
	TS_KIND_DISC,
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

static int64_t take_i64(const uint8_t **p)
{
	int64_t v;

	memcpy(&v, *p, sizeof(v));
	*p += sizeof(v);
	return v;
}

static uint32_t take_u32(const uint8_t **p)
{
	uint32_t v;

	memcpy(&v, *p, sizeof(v));
	*p += sizeof(v);
	return v;
}

/* Check one verdict of the discipline against the bound. */
static void check_disc(const struct ts_disc *d,
		       const struct ts_disc_config *cfg,
		       const struct ts_disc_out *out, int64_t offset)
{
	FUZZ_CHECK(out->freq_ppb >= -GUEST_CLOCK_FREQ_MAX_PPB &&
		   out->freq_ppb <= GUEST_CLOCK_FREQ_MAX_PPB);
	FUZZ_CHECK(out->interval_ms >= cfg->min_interval_ms &&
		   out->interval_ms <= cfg->max_interval_ms);
	FUZZ_CHECK((out->action == TS_DISC_REFUSE) ==
		   (out->refused != TS_REFUSE_NONE));
	if (out->action != TS_DISC_STEP)
		return;
	FUZZ_CHECK(out->step_ns == offset);
	if (cfg->max_step_ns > 0 && !out->unset) {
		FUZZ_CHECK(offset <= cfg->max_step_ns &&
			   offset >= -cfg->max_step_ns);
		FUZZ_CHECK(offset <= out->budget_ns &&
			   offset >= -out->budget_ns);
	}
	FUZZ_CHECK(d->budget_ns <= cfg->max_step_ns || cfg->max_step_ns <= 0);
}

/*
 * u32 max-step (s), u32 threshold (ms), u8 flags (1: step backward),
 * i64 build date; then steps of i64 clock, i64 offset, i64 delay, u8
 * seconds since the last, u8 flags (1: force, 2: this step may go back).
 */
static void fuzz_disc(const uint8_t *p, size_t n)
{
	const uint8_t *end = p + n;
	struct ts_disc_config cfg = { .min_interval_ms = 1000,
				      .max_interval_ms = 32000 };
	struct ts_disc d;
	struct ts_disc_out out;
	int64_t mono = 0;

	if (n < 17)
		return;
	cfg.max_step_ns = (int64_t)(take_u32(&p) % (36500u * 86400 + 1)) *
			  1000000000;
	cfg.step_threshold_ns = (int64_t)(take_u32(&p) % 3600001) * 1000000;
	cfg.step_backward = *p++ & 1;
	cfg.build_ns = take_i64(&p);
	ts_disc_init(&d, cfg.min_interval_ms);
	while (end - p >= 26) {
		int64_t clock = take_i64(&p), offset = take_i64(&p);
		int64_t delay = take_i64(&p);

		mono += (int64_t)*p++ * 1000000000;
		ts_disc_update(&d, &cfg, mono, clock, offset, delay, *p & 1,
			       *p & 2, &out);
		p++;
		check_disc(&d, &cfg, &out, offset);
		ts_disc_applied(&d, &out, mono);
		FUZZ_CHECK(ts_disc_observe(&d, &cfg, offset, delay) >=
			   cfg.min_interval_ms);
	}
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
		fuzz_offset(p, n);
		break;
	case TS_KIND_DISC:
	case TS_KIND_COUNT:
		fuzz_disc(p, n);
		break;
	}
	return 0;
}
