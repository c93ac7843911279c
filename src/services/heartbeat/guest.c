/* SPDX-License-Identifier: MIT */
/*
 * Heartbeat, guest half: answer each request with its sequence number
 * plus one and the application health last measured by health.c. The
 * answer never waits for the health command, so a slow check cannot make
 * the host think the guest is gone.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "guest/service-api.h"
#include "proto/control.h"
#include "proto/services.h"
#include "services/heartbeat/health.h"

#define CONF(f) offsetof(struct hb_guest_conf, f)

static const struct vmic_conf_key keys[] = {
	{ .section = "heartbeat", .key = "health-command",
	  .type = VMIC_CONF_STRING, .offset = CONF(health_command),
	  .size = sizeof(((struct hb_guest_conf *)0)->health_command),
	  .help = "run by /bin/sh -c; non-zero exit reports application "
		  "critical with its first output line" },
	{ .section = "heartbeat", .key = "health-interval",
	  .type = VMIC_CONF_DURATION, .offset = CONF(health_interval_ms),
	  .min = 1000, .max = 86400000,
	  .help = "how often the health command runs" },
	{ .section = "heartbeat", .key = "health-timeout",
	  .type = VMIC_CONF_DURATION, .offset = CONF(health_timeout_ms),
	  .min = 100, .max = 600000,
	  .help = "a health command running longer is killed and counts as "
		  "failed" },
};

static const struct vmic_conf_table conf_table = { keys, ARRAY_SIZE(keys) };

static void hb_conf_defaults(void *p)
{
	struct hb_guest_conf *conf = p;

	conf->health_interval_ms = 10000;
	conf->health_timeout_ms = 5000;
}

static int hb_start(struct guestd *g)
{
	struct health *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	agent_set_state(g, VMIC_SVC_HEARTBEAT, h);
	health_start(h, agent_loop(g), agent_conf(g, VMIC_SVC_HEARTBEAT));
	return 0;
}

static void hb_stop(struct guestd *g)
{
	health_stop(agent_state(g, VMIC_SVC_HEARTBEAT));
}

static void hb_reconfigure(struct guestd *g)
{
	health_reconfigure(agent_state(g, VMIC_SVC_HEARTBEAT));
}

static int hb_on_frame(struct guest_conn *c, const struct vmic_frame *f)
{
	const struct health *h = agent_state(agent_of(c), VMIC_SVC_HEARTBEAT);
	uint8_t buf[VMIC_HDR_SIZE + VMIC_HB_REPLY_MAX_LEN];
	struct vmic_hb_reply reply;
	uint64_t seq;
	int n;

	if (f->type != VMIC_HB_REQUEST)
		return 0; /* the table admits no other type to the guest */
	if (vmic_hb_request_decode(f->payload, f->length, &seq) < 0)
		return agent_reply_error(c, f, VMIC_E_MALFORMED,
					 "heartbeat request does not decode");
	reply.seq = seq + 1;
	reply.health = h->state;
	memcpy(reply.reason, h->reason, sizeof(reply.reason));
	n = vmic_hb_reply_encode(&reply, buf + VMIC_HDR_SIZE,
				 VMIC_HB_REPLY_MAX_LEN);
	if (n < 0)
		return 0;
	return agent_reply(c, f, VMIC_HB_REPLY, buf, (size_t)n);
}

const struct guest_service heartbeat_guest = {
	.desc = &vmic_heartbeat_service,
	.enabled_help = "answer the host's heartbeat",
	.conf = &conf_table,
	.conf_size = sizeof(struct hb_guest_conf),
	.conf_defaults = hb_conf_defaults,
	.start = hb_start,
	.stop = hb_stop,
	.reconfigure = hb_reconfigure,
	.on_frame = hb_on_frame,
};
