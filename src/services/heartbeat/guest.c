/* SPDX-License-Identifier: MIT */
/*
 * Heartbeat, guest half: answer each request with its sequence number
 * plus one and the application health last measured by health.c. The
 * answer never waits for the health command, so a slow check cannot make
 * the host think the guest is gone.
 */
#include <string.h>

#include "common/log.h"
#include "guestd.h"
#include "proto/control.h"
#include "proto/heartbeat.h"

int heartbeat_on_frame(struct guest_conn *c, const struct vmic_frame *f)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_HB_REPLY_MAX_LEN];
	struct vmic_hb_reply reply;
	uint64_t seq;
	int n;

	if (f->type != VMIC_HB_REQUEST)
		return 0; /* the table admits no other type to the guest */
	if (vmic_hb_request_decode(f->payload, f->length, &seq) < 0)
		return conn_reply_error(c, f, VMIC_E_MALFORMED,
					"heartbeat request does not decode");
	reply.seq = seq + 1;
	reply.health = c->g->health.state;
	memcpy(reply.reason, c->g->health.reason, sizeof(reply.reason));
	n = vmic_hb_reply_encode(&reply, buf + VMIC_HDR_SIZE,
				 VMIC_HB_REPLY_MAX_LEN);
	if (n < 0)
		return 0;
	return conn_reply(c, f, VMIC_HB_REPLY, buf, (size_t)n);
}
