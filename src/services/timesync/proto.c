/* SPDX-License-Identifier: MIT */
#include "services/timesync/timesync.h"

#include <errno.h>
#include <strings.h>

#include "common/macro.h"
#include "common/wire.h"
#include "proto/services.h"

static const struct vmic_msg_desc messages[] = {
	{ VMIC_TS_SAMPLE, VMIC_DIR_G2H, "time sample", VMIC_TS_SAMPLE_LEN,
	  VMIC_TS_SAMPLE_LEN },
	{ VMIC_TS_SAMPLE_REPLY, VMIC_DIR_H2G, "time sample reply",
	  VMIC_TS_SAMPLE_REPLY_LEN, VMIC_TS_SAMPLE_REPLY_LEN },
	{ VMIC_TS_SETTINGS, VMIC_DIR_H2G, "time settings",
	  VMIC_TS_SETTINGS_LEN, VMIC_TS_SETTINGS_LEN },
	{ VMIC_TS_SYNC, VMIC_DIR_H2G, "time sync", VMIC_TS_SYNC_LEN,
	  VMIC_TS_SYNC_LEN },
	{ VMIC_TS_REPORT, VMIC_DIR_G2H, "time report", VMIC_TS_REPORT_MIN_LEN,
	  VMIC_TS_REPORT_MAX_LEN },
};

const struct vmic_service_desc vmic_timesync_service = {
	.id = VMIC_SVC_TIMESYNC,
	.name = "timesync",
	.display = "Time Synchronization",
	.min_version = 1,
	.max_version = 1,
	.default_on = true,
	.messages = messages,
	.nmessages = ARRAY_SIZE(messages),
};

int vmic_ts_sample_encode(int64_t t1, uint8_t *buf, size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_i64(&w, t1);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_ts_sample_decode(const uint8_t *p, size_t n, int64_t *t1)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	*t1 = vmic_rd_i64(&r);
	return r.err ? -EBADMSG : 0;
}

int vmic_ts_reply_encode(const struct vmic_ts_reply *m, uint8_t *buf,
			 size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_i64(&w, m->t1);
	vmic_wr_i64(&w, m->t2);
	vmic_wr_i64(&w, m->t3);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_ts_reply_decode(const uint8_t *p, size_t n, struct vmic_ts_reply *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->t1 = vmic_rd_i64(&r);
	m->t2 = vmic_rd_i64(&r);
	m->t3 = vmic_rd_i64(&r);
	return r.err ? -EBADMSG : 0;
}

int vmic_ts_settings_encode(const struct vmic_ts_settings *m, uint8_t *buf,
			    size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u8(&w, m->policy);
	vmic_wr_u8(&w, m->flags);
	vmic_wr_u32(&w, m->step_threshold_ms);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_ts_settings_decode(const uint8_t *p, size_t n,
			    struct vmic_ts_settings *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->policy = vmic_rd_u8(&r);
	m->flags = vmic_rd_u8(&r);
	m->step_threshold_ms = vmic_rd_u32(&r);
	if (r.err || m->policy >= VMIC_TS_POLICY_COUNT ||
	    (m->flags & ~VMIC_TS_SET_KNOWN) || m->step_threshold_ms == 0 ||
	    m->step_threshold_ms > VMIC_TS_THRESHOLD_MAX_MS)
		return -EBADMSG;
	return 0;
}

int vmic_ts_sync_encode(const struct vmic_ts_sync *m, uint8_t *buf,
			size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u8(&w, m->reason);
	vmic_wr_u8(&w, m->flags);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_ts_sync_decode(const uint8_t *p, size_t n, struct vmic_ts_sync *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->reason = vmic_rd_u8(&r);
	m->flags = vmic_rd_u8(&r);
	if (r.err || (m->reason != VMIC_TS_REASON_COMMAND &&
		      m->reason != VMIC_TS_REASON_RESUME) ||
	    (m->flags & ~VMIC_TS_SYNC_KNOWN))
		return -EBADMSG;
	return 0;
}

int vmic_ts_report_encode(const struct vmic_ts_report *m, uint8_t *buf,
			  size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u8(&w, m->mode);
	vmic_wr_u8(&w, m->action);
	vmic_wr_u8(&w, m->source);
	vmic_wr_u8(&w, m->reason);
	vmic_wr_u8(&w, m->flags);
	vmic_wr_i64(&w, m->offset_ns);
	vmic_wr_i64(&w, m->delay_ns);
	vmic_wr_i64(&w, m->step_ns);
	vmic_wr_i64(&w, m->guest_ns);
	vmic_wr_u32(&w, (uint32_t)m->freq_ppb);
	vmic_wr_u32(&w, m->interval_ms);
	vmic_wr_str(&w, m->detail, VMIC_TS_DETAIL_MAX);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_ts_report_decode(const uint8_t *p, size_t n,
			  struct vmic_ts_report *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->mode = vmic_rd_u8(&r);
	m->action = vmic_rd_u8(&r);
	m->source = vmic_rd_u8(&r);
	m->reason = vmic_rd_u8(&r);
	m->flags = vmic_rd_u8(&r);
	m->offset_ns = vmic_rd_i64(&r);
	m->delay_ns = vmic_rd_i64(&r);
	m->step_ns = vmic_rd_i64(&r);
	m->guest_ns = vmic_rd_i64(&r);
	m->freq_ppb = (int32_t)vmic_rd_u32(&r);
	m->interval_ms = vmic_rd_u32(&r);
	vmic_rd_strcpy(&r, VMIC_TS_DETAIL_MAX, m->detail, sizeof(m->detail));
	if (r.err || m->mode >= VMIC_TS_MODE_COUNT ||
	    m->action >= VMIC_TS_ACT_COUNT ||
	    m->source >= VMIC_TS_SRC_COUNT ||
	    m->reason >= VMIC_TS_REASON_COUNT ||
	    (m->flags & ~VMIC_TS_REP_KNOWN))
		return -EBADMSG;
	return 0;
}

static const char *const policy_names[] = {
	[VMIC_TS_POLICY_AUTO] = "auto",
	[VMIC_TS_POLICY_CHANNEL] = "channel",
	[VMIC_TS_POLICY_CHRONY] = "chrony",
	[VMIC_TS_POLICY_PTP] = "ptp",
	[VMIC_TS_POLICY_REPORT] = "report",
};

static const char *const mode_names[] = {
	[VMIC_TS_MODE_IDLE] = "idle",
	[VMIC_TS_MODE_CHANNEL] = "channel",
	[VMIC_TS_MODE_CHRONY_SOCK] = "chrony-sock",
	[VMIC_TS_MODE_PTP] = "ptp",
	[VMIC_TS_MODE_CHRONY_PHC] = "chrony-phc",
	[VMIC_TS_MODE_REPORT] = "report",
};

static const char *const action_names[] = {
	[VMIC_TS_ACT_NONE] = "none",
	[VMIC_TS_ACT_STEPPED] = "stepped",
	[VMIC_TS_ACT_SLEWED] = "slewed",
	[VMIC_TS_ACT_FED] = "fed-chrony",
	[VMIC_TS_ACT_MEASURED] = "measured",
	[VMIC_TS_ACT_FAILED] = "failed",
};

static const char *const source_names[] = {
	[VMIC_TS_SRC_NONE] = "none",
	[VMIC_TS_SRC_CHANNEL] = "channel",
	[VMIC_TS_SRC_PTP] = "ptp",
};

static const char *const reason_names[] = {
	[VMIC_TS_REASON_REGULAR] = "regular",
	[VMIC_TS_REASON_COMMAND] = "command",
	[VMIC_TS_REASON_RESUME] = "resume",
	[VMIC_TS_REASON_CLOCK_SET] = "clock-set",
};

#define NAME_OF(table, i) ((i) < ARRAY_SIZE(table) ? (table)[i] : NULL)

const char *vmic_ts_policy_name(unsigned policy)
{
	return NAME_OF(policy_names, policy);
}

const char *vmic_ts_mode_name(unsigned mode)
{
	return NAME_OF(mode_names, mode);
}

const char *vmic_ts_action_name(unsigned action)
{
	return NAME_OF(action_names, action);
}

const char *vmic_ts_source_name(unsigned source)
{
	return NAME_OF(source_names, source);
}

const char *vmic_ts_reason_name(unsigned reason)
{
	return NAME_OF(reason_names, reason);
}

int vmic_ts_policy_parse(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(policy_names); i++)
		if (strcasecmp(s, policy_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

int vmic_ts_offset(int64_t t1, int64_t t2, int64_t t3, int64_t t4,
		   int64_t *offset, int64_t *delay)
{
	int64_t a, b, out, in;

	/* Peer numbers: any overflow is a wrong sample, never UB. */
	if (__builtin_sub_overflow(t2, t1, &a) ||
	    __builtin_sub_overflow(t3, t4, &b) ||
	    __builtin_sub_overflow(t4, t1, &out) ||
	    __builtin_sub_overflow(t3, t2, &in) ||
	    __builtin_sub_overflow(out, in, delay))
		return -ERANGE;
	/* a / 2 + b / 2 cannot overflow; the lost half nanosecond can. */
	*offset = a / 2 + b / 2 + (a % 2 + b % 2) / 2;
	/* Host time that runs backwards, or a reply before its request. */
	if (*delay < 0 || in < 0)
		return -ERANGE;
	return 0;
}
