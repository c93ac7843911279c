/* SPDX-License-Identifier: MIT */
/*
 * The heartbeat service's guest half, shared by its two files: guest.c
 * (the service entry, answers) and health.c (the application health
 * command).
 */
#ifndef VMIC_SERVICES_HEARTBEAT_HEALTH_H
#define VMIC_SERVICES_HEARTBEAT_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "common/run.h"
#include "services/heartbeat/heartbeat.h"

#define HEALTH_COMMAND_MAX 1024

/* [heartbeat] keys of vmic-guestd.conf. */
struct hb_guest_conf {
	char health_command[HEALTH_COMMAND_MAX];
	unsigned health_interval_ms;
	unsigned health_timeout_ms;
};

/* The last result of the application health command. */
struct health {
	uv_loop_t *loop;
	const struct hb_guest_conf *conf;
	uv_timer_t timer;
	struct vmic_run *run; /* the check that runs now, or NULL */
	bool running;         /* the timer exists (a command was set) */
	uint8_t state;        /* enum vmic_health */
	char reason[VMIC_HB_REASON_MAX + 1];
};

/* OK until told otherwise; runs the command every interval if one is
 * configured (without one there is no timer at all). */
void health_start(struct health *h, uv_loop_t *loop,
		  const struct hb_guest_conf *conf);
/* The conf changed in place (a reload): the running check is dropped and
 * the next starts at once with the new command, interval and timeout. */
void health_reconfigure(struct health *h);
/* Kill a running check and close the handles. h must live until the
 * loop has run their close callbacks (the agent frees it at exit). */
void health_stop(struct health *h);

#endif
