/* SPDX-License-Identifier: MIT */
#include "services/shutdown/shutdown.h"

#include <errno.h>

#include "common/macro.h"
#include "common/wire.h"
#include "proto/services.h"

static const struct vmic_msg_desc messages[] = {
	{ VMIC_SD_REQUEST, VMIC_DIR_H2G, "shutdown request",
	  VMIC_SD_REQUEST_MIN_LEN, VMIC_SD_REQUEST_MAX_LEN },
	{ VMIC_SD_REPLY, VMIC_DIR_G2H, "shutdown reply",
	  VMIC_SD_REPLY_MIN_LEN, VMIC_SD_REPLY_MAX_LEN },
};

const struct vmic_service_desc vmic_shutdown_service = {
	.id = VMIC_SVC_SHUTDOWN,
	.name = "shutdown",
	.display = "Shutdown",
	.min_version = 1,
	.max_version = 1,
	.default_on = true,
	.messages = messages,
	.nmessages = ARRAY_SIZE(messages),
};

int vmic_sd_request_encode(const struct vmic_sd_request *m, uint8_t *buf,
			   size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u8(&w, m->action);
	vmic_wr_u8(&w, m->flags);
	vmic_wr_str(&w, m->reason, VMIC_SD_REASON_MAX);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_sd_request_decode(const uint8_t *p, size_t n,
			   struct vmic_sd_request *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->action = vmic_rd_u8(&r);
	m->flags = vmic_rd_u8(&r);
	vmic_rd_strcpy(&r, VMIC_SD_REASON_MAX, m->reason, sizeof(m->reason));
	if (r.err || !vmic_sd_action_name(m->action) ||
	    (m->flags & ~VMIC_SD_F_KNOWN))
		return -EBADMSG;
	return 0;
}

int vmic_sd_reply_encode(const struct vmic_sd_reply *m, uint8_t *buf,
			 size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u8(&w, m->status);
	vmic_wr_str(&w, m->message, VMIC_SD_MESSAGE_MAX);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_sd_reply_decode(const uint8_t *p, size_t n, struct vmic_sd_reply *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->status = vmic_rd_u8(&r);
	vmic_rd_strcpy(&r, VMIC_SD_MESSAGE_MAX, m->message, sizeof(m->message));
	return r.err ? -EBADMSG : 0;
}

const char *vmic_sd_action_name(uint8_t action)
{
	switch (action) {
	case VMIC_SD_POWEROFF:
		return "poweroff";
	case VMIC_SD_REBOOT:
		return "reboot";
	case VMIC_SD_HALT:
		return "halt";
	}
	return NULL;
}
