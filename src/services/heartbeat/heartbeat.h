/* SPDX-License-Identifier: MIT */
/*
 * Heartbeat service messages (service 1, version 1).
 *
 * The host sends REQUEST { u64 seq } every interval; the guest answers
 * REPLY { u64 seq + 1, u8 health, str reason } with the request's id, the
 * way Hyper-V's heartbeat answers with the sequence number plus one.
 * health is VMIC_HEALTH_OK or VMIC_HEALTH_CRITICAL ("application
 * critical"); reason says why (<= 512 bytes, empty when OK).
 */
#ifndef VMIC_SERVICES_HEARTBEAT_H
#define VMIC_SERVICES_HEARTBEAT_H

#include "proto/proto.h"

enum vmic_heartbeat_type {
	VMIC_HB_REQUEST = 1,
	VMIC_HB_REPLY = 2,
};

enum vmic_health {
	VMIC_HEALTH_OK = 0,
	VMIC_HEALTH_CRITICAL = 1,
};

#define VMIC_HB_REASON_MAX 512
#define VMIC_HB_REQUEST_LEN 8
#define VMIC_HB_REPLY_MIN_LEN (8 + 1 + 2)
#define VMIC_HB_REPLY_MAX_LEN (8 + 1 + 2 + VMIC_HB_REASON_MAX)

struct vmic_hb_reply {
	uint64_t seq;
	uint8_t health;
	char reason[VMIC_HB_REASON_MAX + 1];
};

int vmic_hb_request_encode(uint64_t seq, uint8_t *buf, size_t cap);
int vmic_hb_request_decode(const uint8_t *p, size_t n, uint64_t *seq);
int vmic_hb_reply_encode(const struct vmic_hb_reply *m, uint8_t *buf,
			 size_t cap);
/* -EBADMSG when short, the reason is not UTF-8, or health is unknown. */
int vmic_hb_reply_decode(const uint8_t *p, size_t n, struct vmic_hb_reply *m);

#endif
