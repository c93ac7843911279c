/* SPDX-License-Identifier: MIT */
/*
 * Shutdown, guest half: the host asks for poweroff, reboot or halt with a
 * reason; the agent logs the reason, answers "accepted" and starts the
 * configured command (the way Hyper-V's Linux component answers first,
 * then acts), through common/run.c. A command that cannot start, fails or
 * hangs past JOB_TIMEOUT_MS is reported afterwards with an error frame
 * carrying the same request id, its exit status and first output line, so
 * the host need not wait for its timeout. One command runs at a time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/utf8.h"
#include "common/macro.h"
#include "common/run.h"
#include "guest/service-api.h"
#include "proto/control.h"
#include "proto/services.h"
#include "services/shutdown/shutdown.h"

#define COMMAND_MAX 1024

/* [shutdown] keys: empty means systemctl where systemd runs, else the
 * plain poweroff/reboot/halt commands. */
struct sd_guest_conf {
	char poweroff_command[COMMAND_MAX];
	char reboot_command[COMMAND_MAX];
	char halt_command[COMMAND_MAX];
};

#define STR(f)                                       \
	.type = VMIC_CONF_STRING,                    \
	.offset = offsetof(struct sd_guest_conf, f), \
	.size = sizeof(((struct sd_guest_conf *)0)->f)

static const struct vmic_conf_key keys[] = {
	{ .section = "shutdown", .key = "poweroff-command",
	  STR(poweroff_command),
	  .help = "empty: systemctl poweroff where systemd runs, else "
		  "poweroff" },
	{ .section = "shutdown", .key = "reboot-command", STR(reboot_command),
	  .help = "empty: systemctl reboot where systemd runs, else reboot" },
	{ .section = "shutdown", .key = "halt-command", STR(halt_command),
	  .help = "empty: systemctl halt where systemd runs, else halt" },
};

static const struct vmic_conf_table conf_table = { keys, ARRAY_SIZE(keys) };

/* A shutdown command may take this long; then it is killed and its
 * failure reported (a poweroff that hangs must not hold the service). */
#define JOB_TIMEOUT_MS (10 * 60 * 1000)

struct shutdown_job {
	struct guestd *g;
	struct vmic_run *run;
	uint32_t request_id;
	uint64_t peer_nonce; /* the session that asked */
	char command[COMMAND_MAX];
};

/* The service's state: the one command that may run at a time. */
struct sd_state {
	struct shutdown_job *job; /* NULL when none runs */
};

static bool systemd_running(void)
{
	/* The test sd_booted() does, without libsystemd. */
	return access("/run/systemd/system", F_OK) == 0;
}

/* The command an action runs, from the config or chosen for this system. */
static const char *shutdown_command(const struct sd_guest_conf *cfg,
				    uint8_t action, bool force, char *buf,
				    size_t n)
{
	const char *configured = action == VMIC_SD_REBOOT ? cfg->reboot_command
				 : action == VMIC_SD_HALT ? cfg->halt_command
							  : cfg->poweroff_command;
	const char *verb = vmic_sd_action_name(action);

	if (configured[0])
		snprintf(buf, n, "%s", configured);
	else if (systemd_running())
		snprintf(buf, n, "systemctl %s%s", verb, force ? " --force" : "");
	else
		snprintf(buf, n, "%s%s", verb, force ? " -f" : "");
	return buf;
}

/* Tell the host when the command failed, if it is still there. */
static void report_failure(struct shutdown_job *job, const char *why)
{
	struct guest_conn *c = agent_conn(job->g);
	struct vmic_frame f = {
		.service = VMIC_SVC_SHUTDOWN,
		.request_id = job->request_id,
	};

	log_error("shutdown command '%s' failed: %s", job->command, why);
	if (c && agent_session(c)->peer_nonce == job->peer_nonce)
		agent_reply_error(c, &f, VMIC_E_FAILED,
				  "shutdown command '%s' failed: %s",
				  job->command, why);
}

static void on_job_done(void *ud, const struct vmic_run_result *r)
{
	struct shutdown_job *job = ud;
	struct sd_state *st = agent_state(job->g, VMIC_SVC_SHUTDOWN);
	char what[128], line[256], why[400];

	if (r->spawn_error || r->timed_out || r->signo || r->status) {
		vmic_run_describe(r, JOB_TIMEOUT_MS, what, sizeof(what));
		vmic_run_first_line(r, line, sizeof(line));
		snprintf(why, sizeof(why), "%s%s%s", what, line[0] ? ": " : "",
			 line);
		report_failure(job, why);
	}
	if (st && st->job == job)
		st->job = NULL;
	free(job);
}

static int send_accepted(struct guest_conn *c, const struct vmic_frame *f,
			 const char *command)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_SD_REPLY_MAX_LEN];
	struct vmic_sd_reply reply = { .status = 0 };
	int n;

	/* The message limit is the protocol's; a long command is cut. */
	snprintf(reply.message, sizeof(reply.message), "running %.*s",
		 (int)(sizeof(reply.message) - 9), command);
	n = vmic_sd_reply_encode(&reply, buf + VMIC_HDR_SIZE,
				 VMIC_SD_REPLY_MAX_LEN);
	if (n < 0)
		return 0;
	return agent_reply(c, f, VMIC_SD_REPLY, buf, (size_t)n);
}

static void log_request(const struct vmic_sd_request *req,
			const char *command)
{
	const char *action = vmic_sd_action_name(req->action);
	char reason[VMIC_SD_REASON_MAX + 1];
	char msg[VMIC_SD_REASON_MAX + COMMAND_MAX + 64];
	const char *fields[] = { "VMIC_SERVICE", "shutdown", "VMIC_ACTION",
				 action, "VMIC_REASON", reason, NULL };

	vmic_utf8_sanitize(reason, sizeof(reason), req->reason,
			   strlen(req->reason));
	snprintf(msg, sizeof(msg), "host requested %s%s%s; running %s", action,
		 reason[0] ? ", reason: " : "", reason, command);
	log_struct(LOG_NOTICE, msg, fields);
}

static int sd_on_frame(struct guest_conn *c, const struct vmic_frame *f)
{
	struct guestd *g = agent_of(c);
	struct sd_state *st = agent_state(g, VMIC_SVC_SHUTDOWN);
	struct vmic_sd_request req;
	struct shutdown_job *job;
	int r;

	if (f->type != VMIC_SD_REQUEST)
		return 0;
	if (vmic_sd_request_decode(f->payload, f->length, &req) < 0)
		return agent_reply_error(c, f, VMIC_E_MALFORMED,
					 "shutdown request does not decode "
					 "(unknown action or flags?)");
	if (st->job)
		return agent_reply_error(c, f, VMIC_E_BUSY,
					 "a shutdown command is already "
					 "running ('%s'); wait for it",
					 st->job->command);
	job = calloc(1, sizeof(*job));
	if (!job)
		return agent_reply_error(c, f, VMIC_E_INTERNAL,
					 "out of memory");
	job->g = g;
	job->request_id = f->request_id;
	job->peer_nonce = agent_session(c)->peer_nonce;
	shutdown_command(agent_conf(g, VMIC_SVC_SHUTDOWN), req.action,
			 req.flags & VMIC_SD_F_FORCE, job->command,
			 sizeof(job->command));
	log_request(&req, job->command);
	/* Accepted first, the way Hyper-V's component answers before it
	 * acts; a command that cannot start or fails is a late error. */
	r = send_accepted(c, f, job->command);
	if (vmic_run_start(agent_loop(g), job->command, JOB_TIMEOUT_MS,
			   on_job_done, job, &job->run) < 0) {
		report_failure(job, "out of memory");
		free(job);
		return r;
	}
	st->job = job;
	return r;
}

static int sd_start(struct guestd *g)
{
	struct sd_state *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	agent_set_state(g, VMIC_SVC_SHUTDOWN, st);
	return 0;
}

/* The agent exits: a command still running goes on (it may be the very
 * poweroff that stops the agent), but nobody waits for it any more. */
static void sd_stop(struct guestd *g)
{
	struct sd_state *st = agent_state(g, VMIC_SVC_SHUTDOWN);

	if (!st->job)
		return;
	vmic_run_release(st->job->run);
	free(st->job);
	st->job = NULL;
}

const struct guest_service shutdown_guest = {
	.desc = &vmic_shutdown_service,
	.enabled_help = "let the host power off or reboot this guest",
	.conf = &conf_table,
	.conf_size = sizeof(struct sd_guest_conf),
	.start = sd_start,
	.stop = sd_stop,
	.on_frame = sd_on_frame,
};
