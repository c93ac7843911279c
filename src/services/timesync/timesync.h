/* SPDX-License-Identifier: MIT */
/*
 * Time synchronisation messages (service 3, version 1).
 *
 * The guest asks, the host answers: an NTP-style four-timestamp exchange.
 * SAMPLE { i64 t1 } goes out with the guest's clock reading t1; the host
 * answers SAMPLE_REPLY { t1, t2, t3 } with its CLOCK_REALTIME when the
 * request arrived (t2) and when the answer left (t3); the guest reads t4
 * on arrival. All times are nanoseconds since the Unix epoch, signed.
 *
 * The host tells the guest its per-VM settings (SETTINGS, at session
 * start and on every change) and may ask for an immediate step (SYNC,
 * after `vmic time VM --sync` or a pause); the guest answers both, and
 * reports each cycle unasked, with REPORT.
 */
#ifndef VMIC_SERVICES_TIMESYNC_H
#define VMIC_SERVICES_TIMESYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/proto.h"

enum vmic_ts_type {
	VMIC_TS_SAMPLE = 1,       /* guest -> host, request */
	VMIC_TS_SAMPLE_REPLY = 2, /* host -> guest, reply */
	VMIC_TS_SETTINGS = 3,     /* host -> guest, request; REPORT answers */
	VMIC_TS_SYNC = 4,         /* host -> guest, request; REPORT answers */
	VMIC_TS_REPORT = 5,       /* guest -> host: a reply, or unasked */
};

/* What the host asks for (setting `mode`). */
enum vmic_ts_policy {
	VMIC_TS_POLICY_AUTO = 0,    /* the agent picks the best source */
	VMIC_TS_POLICY_CHANNEL = 1, /* discipline from channel exchanges */
	VMIC_TS_POLICY_CHRONY = 2,  /* feed chronyd's refclock SOCK */
	VMIC_TS_POLICY_PTP = 3,     /* discipline from the PTP device */
	VMIC_TS_POLICY_REPORT = 4,  /* measure and report, never touch */
	VMIC_TS_POLICY_COUNT
};

/* What the agent does now (REPORT mode). */
enum vmic_ts_mode {
	VMIC_TS_MODE_IDLE = 0,        /* no settings from the host yet */
	VMIC_TS_MODE_CHANNEL = 1,     /* steps and slews from the channel */
	VMIC_TS_MODE_CHRONY_SOCK = 2, /* feeds chronyd, leaves the clock */
	VMIC_TS_MODE_PTP = 3,         /* steps and slews from the PTP device */
	VMIC_TS_MODE_CHRONY_PHC = 4,  /* chronyd uses the PTP device: report */
	VMIC_TS_MODE_REPORT = 5,      /* measures only */
	VMIC_TS_MODE_COUNT
};

/* What the last cycle did to the clock (REPORT action). */
enum vmic_ts_action {
	VMIC_TS_ACT_NONE = 0,
	VMIC_TS_ACT_STEPPED = 1,
	VMIC_TS_ACT_SLEWED = 2,
	VMIC_TS_ACT_FED = 3,      /* a sample went to chronyd */
	VMIC_TS_ACT_MEASURED = 4, /* measured, clock left alone */
	VMIC_TS_ACT_FAILED = 5,   /* no sample, or the clock refused */
	VMIC_TS_ACT_COUNT
};

/* Where the last offset came from (REPORT source). */
enum vmic_ts_source {
	VMIC_TS_SRC_NONE = 0,
	VMIC_TS_SRC_CHANNEL = 1,
	VMIC_TS_SRC_PTP = 2,
	VMIC_TS_SRC_COUNT
};

/* Why a SYNC, and why the guest's last step (REPORT reason). */
enum vmic_ts_reason {
	VMIC_TS_REASON_REGULAR = 0, /* the agent's own cycle */
	VMIC_TS_REASON_COMMAND = 1, /* `vmic time VM --sync` */
	VMIC_TS_REASON_RESUME = 2,  /* the host saw the VM paused */
	VMIC_TS_REASON_CLOCK_SET = 3, /* someone set the guest's clock */
	VMIC_TS_REASON_COUNT
};

/* SETTINGS flags */
#define VMIC_TS_SET_STEP_BACKWARD 0x01 /* automatic steps may go back */
#define VMIC_TS_SET_KNOWN VMIC_TS_SET_STEP_BACKWARD
/* SYNC flags */
#define VMIC_TS_SYNC_BACKWARD 0x01 /* this step may go back */
#define VMIC_TS_SYNC_KNOWN VMIC_TS_SYNC_BACKWARD
/* REPORT flags */
#define VMIC_TS_REP_SIMULATED 0x01    /* the agent runs a simulated clock */
#define VMIC_TS_REP_CHRONY 0x02       /* chronyd runs in the guest */
#define VMIC_TS_REP_PTP 0x04          /* a PTP device is present */
#define VMIC_TS_REP_BACK_REFUSED 0x08 /* a backward step was not taken */
#define VMIC_TS_REP_KNOWN 0x0F

#define VMIC_TS_DETAIL_MAX 256
/* Longest step threshold the host may set: an hour. */
#define VMIC_TS_THRESHOLD_MAX_MS 3600000u

#define VMIC_TS_SAMPLE_LEN 8
#define VMIC_TS_SAMPLE_REPLY_LEN 24
#define VMIC_TS_SETTINGS_LEN 6
#define VMIC_TS_SYNC_LEN 2
#define VMIC_TS_REPORT_MIN_LEN (5 + 8 * 4 + 4 + 4 + 2)
#define VMIC_TS_REPORT_MAX_LEN (VMIC_TS_REPORT_MIN_LEN + VMIC_TS_DETAIL_MAX)

struct vmic_ts_reply {
	int64_t t1, t2, t3;
};

struct vmic_ts_settings {
	uint8_t policy; /* enum vmic_ts_policy */
	uint8_t flags;  /* VMIC_TS_SET_* */
	uint32_t step_threshold_ms;
};

struct vmic_ts_sync {
	uint8_t reason; /* enum vmic_ts_reason: COMMAND or RESUME */
	uint8_t flags;  /* VMIC_TS_SYNC_* */
};

struct vmic_ts_report {
	uint8_t mode;   /* enum vmic_ts_mode */
	uint8_t action; /* enum vmic_ts_action */
	uint8_t source; /* enum vmic_ts_source */
	uint8_t reason; /* enum vmic_ts_reason of the last cycle */
	uint8_t flags;  /* VMIC_TS_REP_* */
	int64_t offset_ns;  /* true time minus the guest's clock, measured */
	int64_t delay_ns;   /* round trip of the sample it came from */
	int64_t step_ns;    /* the step this cycle made, 0 when none */
	int64_t guest_ns;   /* the guest's clock when the report was made */
	int32_t freq_ppb;   /* frequency correction in force */
	uint32_t interval_ms; /* until the agent's next cycle */
	char detail[VMIC_TS_DETAIL_MAX + 1]; /* why this mode, what failed */
};

int vmic_ts_sample_encode(int64_t t1, uint8_t *buf, size_t cap);
int vmic_ts_sample_decode(const uint8_t *p, size_t n, int64_t *t1);
int vmic_ts_reply_encode(const struct vmic_ts_reply *m, uint8_t *buf,
			 size_t cap);
int vmic_ts_reply_decode(const uint8_t *p, size_t n, struct vmic_ts_reply *m);
int vmic_ts_settings_encode(const struct vmic_ts_settings *m, uint8_t *buf,
			    size_t cap);
/* -EBADMSG when short, unknown policy or flag bits, threshold over max. */
int vmic_ts_settings_decode(const uint8_t *p, size_t n,
			    struct vmic_ts_settings *m);
int vmic_ts_sync_encode(const struct vmic_ts_sync *m, uint8_t *buf,
			size_t cap);
/* -EBADMSG when short, or an unknown reason or flag bits. */
int vmic_ts_sync_decode(const uint8_t *p, size_t n, struct vmic_ts_sync *m);
int vmic_ts_report_encode(const struct vmic_ts_report *m, uint8_t *buf,
			  size_t cap);
/* -EBADMSG when short, any enum out of range, unknown flag bits, or the
 * detail is not UTF-8. */
int vmic_ts_report_decode(const uint8_t *p, size_t n,
			  struct vmic_ts_report *m);

/* Names as the control API and config spell them; NULL when unknown. */
const char *vmic_ts_policy_name(unsigned policy);
const char *vmic_ts_mode_name(unsigned mode);
const char *vmic_ts_action_name(unsigned action);
const char *vmic_ts_source_name(unsigned source);
const char *vmic_ts_reason_name(unsigned reason);
/* The policy named s (case-insensitive); -EINVAL when none. */
int vmic_ts_policy_parse(const char *s);

/*
 * The four-timestamp arithmetic (RFC 5905): offset of the host's clock
 * from the guest's, ((t2 - t1) + (t3 - t4)) / 2, and the round-trip
 * delay, (t4 - t1) - (t3 - t2). -ERANGE when the numbers cannot be
 * right (a negative delay beyond rounding, or sums that overflow).
 */
int vmic_ts_offset(int64_t t1, int64_t t2, int64_t t3, int64_t t4,
		   int64_t *offset, int64_t *delay);

#endif
