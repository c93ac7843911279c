/* SPDX-License-Identifier: MIT */
/*
 * The host half of the shutdown service: the `stop` command.
 *
 * A stop asks the guest's shutdown service through the request tracker
 * (the guest answers before it acts, and reports a command that then
 * fails with a late error on the same request, which ends the stop at
 * once), then watches the connection through the core's notices: for
 * poweroff it waits until the channel closes and a reconnect finds nobody
 * ("VM gone"); for reboot until the agent is back with a new session and
 * a service proves the guest works (NOTICE_ALIVE, the heartbeat's OK).
 * On timeout with `force`, or at once with `turn_off`, the VM's power
 * backend (power.c) turns it off. Each step is a `shutdown` event and a
 * line of the reply's "steps".
 *
 * Other services learn of a stop through notices only: NOTICE_STOPPING
 * while it runs (silence is expected), NOTICE_STOPPED when the VM is off
 * on purpose, NOTICE_STOP_OVER when it ended otherwise.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "common/utf8.h"
#include "host/service-api.h"
#include "proto/control.h"
#include "proto/services.h"
#include "services/shutdown/power.h"
#include "services/shutdown/shutdown.h"

#define ID VMIC_SVC_SHUTDOWN
#define STOP_TIMEOUT_MAX_MS 86400000

/* After a power-off, how long the channel may take to close. */
#define SETTLE_MS 10000

/* Per-VM settings ([shutdown] in hostd.conf, `vmic set VM shutdown`). */
struct sd_settings {
	unsigned timeout_ms;       /* a stop without --timeout */
	unsigned power_timeout_ms; /* how long the power backend may take */
};

static const struct vmic_conf_key keys[] = {
	{ .section = "shutdown", .key = "timeout",
	  .type = VMIC_CONF_DURATION,
	  .offset = offsetof(struct sd_settings, timeout_ms), .min = 1000,
	  .max = STOP_TIMEOUT_MAX_MS,
	  .help = "how long a stop waits for the guest without --timeout "
		  "(1s..24h)" },
	/* How long a command run as root may live: a group member goes
	 * no higher than hostd.conf's value (settings.c). */
	{ .section = "shutdown", .key = "power-timeout",
	  .type = VMIC_CONF_DURATION,
	  .offset = offsetof(struct sd_settings, power_timeout_ms),
	  .min = 1000, .max = 600000, .cost = VMIC_CONF_COST_UP,
	  .help = "how long the power backend may take before it is killed "
		  "(1s..10m)" },
};

static const struct vmic_conf_table settings_table = { keys,
						       ARRAY_SIZE(keys) };

static void sd_settings_defaults(void *p)
{
	struct sd_settings *s = p;

	s->timeout_ms = 60000;
	s->power_timeout_ms = 30000;
}

static const struct sd_settings *settings_of(const struct vm *vm)
{
	return vm_settings(vm, ID);
}

enum stop_phase {
	STOP_ASKING,       /* request sent, waiting for the guest's answer */
	STOP_WAIT_GONE,    /* poweroff accepted */
	STOP_WAIT_BACK,    /* reboot accepted */
	STOP_POWERING,     /* the power backend runs */
	STOP_POWER_SETTLE, /* powered off, waiting for the channel to close */
};

struct stop_op {
	struct vm *vm;
	struct ctl_request *rq;
	uint8_t action;
	bool force;
	bool graceful;
	bool channel_closed;
	bool agent_back;
	bool said_reconnected;
	unsigned timeout_ms;
	uint64_t start_us;
	enum stop_phase phase;
	uint32_t request_id;
	uint64_t old_nonce;
	json_t *steps;
	struct htimer timer;
	struct power_op *power;
};

/* Per-VM state: the stop in progress, if any. */
struct sd_vm {
	struct stop_op *stop;
};

static struct stop_op *stop_of(const struct vm *vm)
{
	const struct sd_vm *sd = vm_state(vm, ID);

	return sd ? sd->stop : NULL;
}

static void notify(struct vm *vm, enum notice_kind kind)
{
	vm_notify(vm, &(struct notice){ .kind = kind });
}

static void stop_power(struct stop_op *op);

static void stop_step(struct stop_op *op, const char *fmt, ...)
	PRINTF_LIKE(2, 3);
static void stop_step(struct stop_op *op, const char *fmt, ...)
{
	char raw[1200], text[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	vmic_utf8_sanitize(text, sizeof(text), raw, strlen(raw));
	json_array_append_new(op->steps, json_string(text));
	events_emit(vm_hostd(op->vm), vm_name(op->vm), "shutdown", "shutdown",
		    NULL, NULL, "%s", text);
}

static void stop_timer_closed(struct htimer *t)
{
	struct stop_op *op = t->data;

	vm_unref(op->vm);
	free(op);
}

/* Detach the operation from its VM and free it once its timer closed. */
static void stop_release(struct stop_op *op)
{
	struct sd_vm *sd = vm_state(op->vm, ID);

	sd->stop = NULL;
	if (op->request_id) {
		request_cancel(op->vm, op->request_id);
		op->request_id = 0;
	}
	if (op->power) {
		power_cancel(op->power);
		op->power = NULL;
	}
	json_decref(op->steps);
	op->steps = NULL;
	htimer_close(&op->timer, stop_timer_closed);
}

static uint64_t stop_elapsed_ms(const struct stop_op *op)
{
	return (hostd_now_us(vm_hostd(op->vm)) - op->start_us) / 1000;
}

static void stop_succeed(struct stop_op *op, const char *outcome)
{
	json_t *result = json_object();

	json_object_set_new(result, "outcome", json_string(outcome));
	json_object_set_new(result, "graceful", json_boolean(op->graceful));
	json_object_set_new(result, "elapsed_ms",
			    json_integer((json_int_t)stop_elapsed_ms(op)));
	json_object_set(result, "steps", op->steps);
	events_emit(vm_hostd(op->vm), vm_name(op->vm), "shutdown", "shutdown",
		    NULL, outcome, "stop finished: %s after %llums", outcome,
		    (unsigned long long)stop_elapsed_ms(op));
	ctl_reply_ok(op->rq, result);
	/* Off on purpose: not a loss of communication. */
	notify(op->vm, strcmp(outcome, "rebooted") == 0 ? NOTICE_STOP_OVER
							: NOTICE_STOPPED);
	stop_release(op);
}

static void stop_fail(struct stop_op *op, const char *code, const char *fmt,
		      ...) PRINTF_LIKE(3, 4);
static void stop_fail(struct stop_op *op, const char *code, const char *fmt,
		      ...)
{
	char msg[1500];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	events_emit(vm_hostd(op->vm), vm_name(op->vm), "shutdown", "shutdown",
		    NULL, "failed", "stop failed (%s): %s", code, msg);
	ctl_reply_error(op->rq, code, "%s", msg);
	notify(op->vm, NOTICE_STOP_OVER);
	stop_release(op);
}

/* Why the guest's shutdown service cannot take a request now. */
static const char *sd_unavailable_reason(const struct vm *vm)
{
	const struct vmic_session *s = vm_session(vm);

	if (!conn_up(vm))
		return "its guest agent is not connected";
	if (!vm_service_enabled(vm, ID))
		return "its shutdown service is disabled on the host";
	if (vmic_session_version(s, ID) == 0)
		return "its guest agent has no common shutdown version with "
		       "the host";
	return "its shutdown service is disabled in the guest's "
	       "configuration";
}

static void on_stop_timeout(struct htimer *t)
{
	struct stop_op *op = t->data;
	const char *waiting;

	if (op->phase == STOP_POWER_SETTLE) {
		stop_step(op, "the channel is still open %us after the "
			      "power-off",
			  SETTLE_MS / 1000);
		stop_succeed(op, "turned-off");
		return;
	}
	if (op->phase == STOP_POWERING)
		return; /* power.c has its own timeout */
	waiting = op->phase == STOP_ASKING	   ? "no answer from the guest"
		  : op->phase == STOP_WAIT_BACK ? "the guest agent is not back"
						: "the VM is still there";
	stop_step(op, "%s after %ums", waiting, op->timeout_ms);
	if (op->force && vm_power_off(op->vm)) {
		stop_power(op);
		return;
	}
	stop_fail(op, "timeout",
		  "%s after %ums; %s", waiting, op->timeout_ms,
		  vm_power_off(op->vm)
			  ? "`vmic stop --force` powers it off through its "
			    "backend"
			  : "with a power backend (`vmic set VM --power-off "
			    "qmp:PATH`), `vmic stop --force` could power it off");
}

static void on_power_done(struct vm *vm, int status, const char *detail)
{
	struct stop_op *op = stop_of(vm);

	if (!op)
		return;
	op->power = NULL;
	if (status < 0) {
		stop_step(op, "power-off failed: %s", detail);
		stop_fail(op, "internal", "the power backend failed: %s",
			  detail);
		return;
	}
	stop_step(op, "powered off: %s", detail);
	if (vm_link(vm)) {
		op->phase = STOP_POWER_SETTLE;
		htimer_start_in(&op->timer, SETTLE_MS);
		return;
	}
	stop_succeed(op, "turned-off");
}

static void stop_power(struct stop_op *op)
{
	struct vm *vm = op->vm;
	int r;

	op->phase = STOP_POWERING;
	op->graceful = false;
	htimer_stop(&op->timer);
	if (op->request_id) {
		/* No longer asking: the backend decides now. */
		request_cancel(vm, op->request_id);
		op->request_id = 0;
	}
	stop_step(op, "powering off through %s backend",
		  strncmp(vm_power_off(vm), "qmp:", 4) == 0   ? "the QMP"
		  : strncmp(vm_power_off(vm), "libvirt:", 8) == 0 ? "the libvirt"
							       : "the exec");
	r = power_off(vm, settings_of(vm)->power_timeout_ms, on_power_done,
		      &op->power);
	if (r == -ENOTCONN || r == -ENOTSUP)
		stop_fail(op, "unsupported", "cannot power off through "
					     "libvirt: vmic-hostd %s",
			  r == -ENOTSUP ? "was built without libvirt"
					: "does not follow this VM's libvirt "
					  "URI (--libvirt)");
	else if (r < 0)
		stop_fail(op, "internal", "cannot start the power-off: %s",
			  strerror(-r));
}

static bool stop_on_answer(struct vm *vm, void *ud,
			   const struct vmic_frame *f, int err);

static int stop_send_request(struct stop_op *op, const char *reason)
{
	struct vm *vm = op->vm;
	struct vmic_sd_request m = { .action = op->action };
	uint8_t payload[VMIC_SD_REQUEST_MAX_LEN];
	int n;

	snprintf(m.reason, sizeof(m.reason), "%s", reason);
	n = vmic_sd_request_encode(&m, payload, sizeof(payload));
	if (n < 0)
		return n;
	op->old_nonce = vm_session(vm)->peer_nonce;
	/* The request lives as long as the stop: a command that fails after
	 * the guest accepted comes back as a late error on it. */
	return request_send(vm, ID, VMIC_SD_REQUEST, payload, (size_t)n,
			    op->timeout_ms, stop_on_answer, op,
			    &op->request_id);
}

/* No request can be sent: power off, or say what is missing. */
static void stop_without_agent(struct stop_op *op)
{
	struct vm *vm = op->vm;
	const char *why = sd_unavailable_reason(vm);

	if (op->force && vm_power_off(vm)) {
		stop_step(op, "cannot ask the guest: %s", why);
		stop_power(op);
	} else if (!vm_power_off(vm) && !conn_up(vm)) {
		stop_fail(op, "unsupported",
			  "'%s' cannot be stopped: %s and it has no power "
			  "backend; set one with `vmic set %s --power-off "
			  "qmp:PATH`",
			  vm_name(vm), why, vm_name(vm));
	} else if (!conn_up(vm)) {
		stop_fail(op, "not-connected",
			  "'%s' cannot be asked to stop: %s (connection %s); "
			  "`vmic stop --force` powers it off through its "
			  "backend",
			  vm_name(vm), why, vm_connection_state(vm));
	} else {
		stop_fail(op, "service-unavailable", "'%s' cannot be asked to "
						     "stop: %s%s",
			  vm_name(vm), why,
			  vm_power_off(vm) ? "; `vmic stop --force` powers it "
					  "off through its backend"
					: "");
	}
}

static void stop_start(struct vm *vm, struct ctl_request *rq, uint8_t action,
		       const char *reason, unsigned timeout_ms, bool force,
		       bool turn_off)
{
	struct sd_vm *sd = vm_state(vm, ID);
	struct stop_op *op;
	int r;

	if (sd->stop) {
		ctl_reply_error(rq, "service-unavailable",
				"a stop of '%s' is already in progress; wait "
				"for its reply",
				vm_name(vm));
		return;
	}
	if (turn_off && !vm_power_off(vm)) {
		ctl_reply_error(rq, "unsupported",
				"'%s' has no power backend to turn it off; set "
				"one with `vmic set %s --power-off qmp:PATH`",
				vm_name(vm), vm_name(vm));
		return;
	}
	op = calloc(1, sizeof(*op));
	if (!op) {
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	op->vm = vm;
	op->rq = rq;
	op->action = action;
	op->force = force;
	op->graceful = true;
	op->timeout_ms = timeout_ms;
	op->start_us = hostd_now_us(vm_hostd(vm));
	op->steps = json_array();
	vm_ref(vm);
	sd->stop = op;
	htimer_init(vm_hostd(vm), &op->timer, on_stop_timeout, op);
	stop_step(op, "%s requested%s%s", vmic_sd_action_name(action),
		  reason[0] ? ": " : "", reason);
	notify(vm, NOTICE_STOPPING);
	if (turn_off) {
		stop_power(op);
		return;
	}
	if (!service_usable(vm, ID)) {
		stop_without_agent(op);
		return;
	}
	r = stop_send_request(op, reason);
	if (r < 0) {
		stop_step(op, "cannot send the request: %s", strerror(-r));
		stop_without_agent(op);
		return;
	}
	/* The request's own timeout covers the wait for an answer. */
	op->phase = STOP_ASKING;
}

/* The guest accepted: wait for the outcome of its action. */
static void stop_accepted(struct stop_op *op)
{
	uint64_t spent = stop_elapsed_ms(op);

	op->phase = op->action == VMIC_SD_REBOOT ? STOP_WAIT_BACK
						 : STOP_WAIT_GONE;
	/* What is left of the stop's timeout. */
	htimer_start_in(&op->timer,
			spent < op->timeout_ms ? op->timeout_ms - spent : 0);
}

static void stop_on_reply(struct stop_op *op, const struct vmic_frame *f)
{
	struct vmic_sd_reply m;
	char text[VMIC_SD_MESSAGE_MAX + 1];

	if (vmic_sd_reply_decode(f->payload, f->length, &m) < 0) {
		stop_fail(op, "refused", "the guest's answer to the shutdown "
					 "request does not decode");
		return;
	}
	vmic_utf8_sanitize(text, sizeof(text), m.message, strlen(m.message));
	if (m.status != 0) {
		stop_step(op, "guest refused: %s", text);
		stop_fail(op, "refused", "the guest refused to %s: %s",
			  vmic_sd_action_name(op->action), text);
		return;
	}
	stop_step(op, "guest accepted: %s", text[0] ? text : "no details");
	stop_accepted(op);
}

static void stop_on_error(struct stop_op *op, const struct vmic_frame *f)
{
	char text[VMIC_ERROR_MSG_MAX + 1];
	uint16_t code = conn_peer_error(f, text, sizeof(text));

	if (op->phase == STOP_WAIT_GONE || op->phase == STOP_WAIT_BACK) {
		/* The guest accepted, then its command failed. */
		stop_step(op, "guest reports: %s", text);
		stop_fail(op, "failed", "the guest accepted, then failed to "
					"%s: %s",
			  vmic_sd_action_name(op->action), text);
		return;
	}
	stop_step(op, "guest answered '%s': %s", vmic_error_name(code), text);
	if (code == VMIC_E_DISABLED || code == VMIC_E_VERSION)
		stop_fail(op, "service-unavailable", "the guest's shutdown "
						     "service is not "
						     "available: %s",
			  text);
	else
		stop_fail(op, "refused", "the guest answered '%s': %s",
			  vmic_error_name(code), text);
}

/* The session ended or the request timed out before an answer. */
static void stop_no_answer(struct stop_op *op, int err)
{
	if (op->phase != STOP_ASKING)
		return;
	if (err == -ETIMEDOUT) {
		on_stop_timeout(&op->timer);
		return;
	}
	if (err == -ECONNRESET && !op->channel_closed) {
		/* The agent went away or restarted: it may be acting. */
		stop_step(op, "the session ended before the guest answered");
		stop_accepted(op);
	}
}

/* Every answer to the shutdown request; true keeps listening for a late
 * error while the stop waits for the guest to act. */
static bool stop_on_answer(struct vm *vm UNUSED, void *ud,
			   const struct vmic_frame *f, int err)
{
	struct stop_op *op = ud;

	if (!f) {
		op->request_id = 0;
		stop_no_answer(op, err);
		return false;
	}
	if (f->type == VMIC_T_ERROR) {
		op->request_id = 0;
		stop_on_error(op, f);
		return false;
	}
	if (op->phase != STOP_ASKING)
		return true; /* a repeated reply: nothing new */
	stop_on_reply(op, f);
	return stop_of(vm) == op; /* still waiting: listen for a late error */
}

static void sd_on_channel_closed(struct stop_op *op)
{
	if (op->channel_closed)
		return;
	switch (op->phase) {
	case STOP_ASKING:
		op->channel_closed = true;
		stop_step(op, "channel closed before the guest answered");
		stop_accepted(op);
		break;
	case STOP_WAIT_GONE:
	case STOP_WAIT_BACK:
	case STOP_POWERING:
		op->channel_closed = true;
		stop_step(op, "channel closed");
		break;
	case STOP_POWER_SETTLE:
		stop_step(op, "channel closed");
		stop_succeed(op, "turned-off");
		break;
	}
}

static void sd_on_connect_failed(struct stop_op *op, int err)
{
	if (op->phase != STOP_WAIT_GONE || !op->channel_closed)
		return;
	stop_step(op, "VM gone (reconnect: %s)", uv_strerror(err));
	stop_succeed(op, "stopped");
}

/* Reboot: the agent is back; done once the guest is proven to work. */
static void sd_on_session_up(struct stop_op *op)
{
	struct vm *vm = op->vm;
	struct notice want = { .kind = NOTICE_ALIVE_WANTED };

	if (op->phase == STOP_WAIT_GONE && !op->said_reconnected) {
		op->said_reconnected = true;
		stop_step(op, "the guest agent answers again; still waiting "
			      "for the VM to go");
		return;
	}
	if (op->phase != STOP_WAIT_BACK || op->agent_back ||
	    vm_session(vm)->peer_nonce == op->old_nonce)
		return;
	op->agent_back = true;
	stop_step(op, "agent back (new session)");
	vm_notify(vm, &want);
	if (want.alive || !want.claimed) {
		stop_succeed(op, "rebooted");
		return;
	}
	stop_step(op, "waiting for the heartbeat");
}

static void sd_on_alive(struct stop_op *op)
{
	if (op->phase != STOP_WAIT_BACK || !op->agent_back)
		return;
	stop_step(op, "the guest answers its heartbeat");
	stop_succeed(op, "rebooted");
}

static void sd_on_notice(struct vm *vm, struct notice *n)
{
	struct stop_op *op = stop_of(vm);

	if (!op)
		return;
	switch (n->kind) {
	case NOTICE_CHANNEL_CLOSED:
		sd_on_channel_closed(op);
		break;
	case NOTICE_CONNECT_FAILED:
		sd_on_connect_failed(op, n->err);
		break;
	case NOTICE_SESSION_UP:
		sd_on_session_up(op);
		break;
	case NOTICE_ALIVE:
		sd_on_alive(op);
		break;
	default:
		break;
	}
}

/* The guest sends the host's shutdown service no requests. */
static int sd_on_frame(struct vm *vm, const struct vmic_frame *f)
{
	if (vmic_frame_is_request(f))
		conn_send_error(vm, f, VMIC_E_UNKNOWN_TYPE,
				"the host's shutdown service takes no "
				"requests");
	return 0;
}

static int sd_attach(struct vm *vm)
{
	struct sd_vm *sd = calloc(1, sizeof(*sd));

	if (!sd)
		return -ENOMEM;
	vm_set_state(vm, ID, sd);
	return 0;
}

/* The VM goes away: a stop in progress answers its client now. */
static void sd_detach(struct vm *vm, enum detach_reason why)
{
	struct stop_op *op = stop_of(vm);

	if (!op)
		return;
	if (why == DETACH_REMOVED)
		stop_fail(op, "unknown-vm",
			  "the VM was removed while it was being stopped");
	else
		stop_fail(op, "internal", "vmic-hostd is stopping");
}

static void sd_release(struct vm *vm)
{
	free(vm_state(vm, ID));
	vm_set_state(vm, ID, NULL);
}

static void cmd_stop(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	const char *action = "poweroff", *reason = "";
	json_int_t timeout = settings_of(vm)->timeout_ms;
	int force = 0, turn_off = 0;
	uint8_t act;

	if (!ctl_args_unpack(rq, "stop", args, "{s?s, s?s, s?I, s?b, s?b}",
			     "action", &action, "reason", &reason,
			     "timeout_ms", &timeout, "force", &force,
			     "turn_off", &turn_off))
		return;
	if (strcmp(action, "poweroff") == 0) {
		act = VMIC_SD_POWEROFF;
	} else if (strcmp(action, "reboot") == 0) {
		act = VMIC_SD_REBOOT;
	} else {
		ctl_reply_error(rq, "invalid-argument",
				"action must be \"poweroff\" or \"reboot\", "
				"not '%.32s'",
				action);
		return;
	}
	if (strlen(reason) > VMIC_SD_REASON_MAX) {
		ctl_reply_error(rq, "invalid-argument",
				"reason is %zu bytes long; at most %d are "
				"allowed",
				strlen(reason), VMIC_SD_REASON_MAX);
		return;
	}
	if (timeout < 1 || timeout > STOP_TIMEOUT_MAX_MS) {
		ctl_reply_error(rq, "invalid-argument",
				"timeout_ms must be 1..%d, not %lld",
				STOP_TIMEOUT_MAX_MS, (long long)timeout);
		return;
	}
	stop_start(vm, rq, act, reason, (unsigned)timeout, force, turn_off);
}

static const struct ctl_command commands[] = {
	{ "stop", cmd_stop, true,
	  "vm (string), action (string), reason (string), timeout_ms "
	  "(integer), force (boolean), turn_off (boolean)",
	  "shut a VM down or reboot it" },
};

const struct host_service shutdown_host = {
	.desc = &vmic_shutdown_service,
	.settings = &settings_table,
	.settings_size = sizeof(struct sd_settings),
	.settings_defaults = sd_settings_defaults,
	.max_requests = 1, /* one stop of a VM at a time */
	.attach = sd_attach,
	.detach = sd_detach,
	.release = sd_release,
	.on_notice = sd_on_notice,
	.on_frame = sd_on_frame,
	.commands = commands,
	.ncommands = ARRAY_SIZE(commands),
};
