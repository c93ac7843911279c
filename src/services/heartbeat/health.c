/* SPDX-License-Identifier: MIT */
/*
 * Application health: run the configured command every health-interval
 * (common/run.c: in its own process group, output captured, the group
 * killed on timeout), so the loop keeps answering heartbeats meanwhile.
 * Exit status 0 means OK; anything else, a crash, a timeout or a command
 * that cannot start means "application critical", with the first line the
 * command printed (stdout and stderr together) as the reason.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/run.h"
#include "common/utf8.h"
#include "services/heartbeat/health.h"

static void set_state(struct health *h, uint8_t state, const char *reason)
{
	char clean[sizeof(h->reason)];

	vmic_utf8_sanitize(clean, sizeof(clean), reason, strlen(reason));
	if (h->state == state && strcmp(h->reason, clean) == 0)
		return;
	if (state == VMIC_HEALTH_OK)
		log_notice("application health OK");
	else
		log_warning("application critical: %s", clean);
	h->state = state;
	memcpy(h->reason, clean, sizeof(h->reason));
}

static void on_check_done(void *ud, const struct vmic_run_result *r)
{
	struct health *h = ud;
	char line[sizeof(h->reason)], what[128], reason[sizeof(h->reason)];

	h->run = NULL; /* it frees itself */
	if (r->spawn_error == 0 && !r->timed_out && !r->signo &&
	    r->status == 0) {
		set_state(h, VMIC_HEALTH_OK, "");
		return;
	}
	vmic_run_first_line(r, line, sizeof(line));
	vmic_run_describe(r, h->conf->health_timeout_ms, what, sizeof(what));
	/* The command's own words, unless it never got to say any. */
	if (line[0] && !r->timed_out && !r->signo && r->spawn_error == 0)
		snprintf(reason, sizeof(reason), "%s", line);
	else
		snprintf(reason, sizeof(reason), "health command %s", what);
	set_state(h, VMIC_HEALTH_CRITICAL, reason);
}

static void health_tick(uv_timer_t *t)
{
	struct health *h = t->data;
	int r;

	/* A check still running skips this turn. */
	if (h->run)
		return;
	r = vmic_run_start(h->loop, h->conf->health_command,
			   h->conf->health_timeout_ms, on_check_done, h,
			   &h->run);
	if (r < 0)
		set_state(h, VMIC_HEALTH_CRITICAL,
			  "cannot run the health command: out of memory");
}

/* Checks every interval when a command is set; no timer at all when not:
 * nothing to wake up for. */
static void health_schedule(struct health *h)
{
	if (!h->conf->health_command[0]) {
		if (h->running)
			uv_timer_stop(&h->timer);
		return;
	}
	if (!h->running) {
		uv_timer_init(h->loop, &h->timer);
		h->timer.data = h;
		h->running = true;
	}
	uv_timer_start(&h->timer, health_tick, 0, h->conf->health_interval_ms);
}

void health_start(struct health *h, uv_loop_t *loop,
		  const struct hb_guest_conf *conf)
{
	h->loop = loop;
	h->conf = conf;
	h->state = VMIC_HEALTH_OK;
	h->reason[0] = '\0';
	health_schedule(h);
}

void health_reconfigure(struct health *h)
{
	vmic_run_cancel(h->run);
	h->run = NULL;
	if (!h->conf->health_command[0])
		set_state(h, VMIC_HEALTH_OK, "");
	health_schedule(h);
}

void health_stop(struct health *h)
{
	vmic_run_cancel(h->run);
	h->run = NULL;
	if (h->running)
		uv_close((uv_handle_t *)&h->timer, NULL);
	h->running = false;
}
