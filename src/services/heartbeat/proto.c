/* SPDX-License-Identifier: MIT */
#include "services/heartbeat/heartbeat.h"

#include <errno.h>

#include "common/macro.h"
#include "common/wire.h"
#include "proto/services.h"

static const struct vmic_msg_desc messages[] = {
	{ VMIC_HB_REQUEST, VMIC_DIR_H2G, "heartbeat request",
	  VMIC_HB_REQUEST_LEN, VMIC_HB_REQUEST_LEN },
	{ VMIC_HB_REPLY, VMIC_DIR_G2H, "heartbeat reply",
	  VMIC_HB_REPLY_MIN_LEN, VMIC_HB_REPLY_MAX_LEN },
};

const struct vmic_service_desc vmic_heartbeat_service = {
	.id = VMIC_SVC_HEARTBEAT,
	.name = "heartbeat",
	.display = "Heartbeat",
	.min_version = 1,
	.max_version = 1,
	.default_on = true,
	.messages = messages,
	.nmessages = ARRAY_SIZE(messages),
};

int vmic_hb_request_encode(uint64_t seq, uint8_t *buf, size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u64(&w, seq);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_hb_request_decode(const uint8_t *p, size_t n, uint64_t *seq)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	*seq = vmic_rd_u64(&r);
	return r.err ? -EBADMSG : 0;
}

int vmic_hb_reply_encode(const struct vmic_hb_reply *m, uint8_t *buf,
			 size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u64(&w, m->seq);
	vmic_wr_u8(&w, m->health);
	vmic_wr_str(&w, m->reason, VMIC_HB_REASON_MAX);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_hb_reply_decode(const uint8_t *p, size_t n, struct vmic_hb_reply *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->seq = vmic_rd_u64(&r);
	m->health = vmic_rd_u8(&r);
	vmic_rd_strcpy(&r, VMIC_HB_REASON_MAX, m->reason, sizeof(m->reason));
	if (r.err || m->health > VMIC_HEALTH_CRITICAL)
		return -EBADMSG;
	return 0;
}
