/* SPDX-License-Identifier: MIT */
/*
 * The host half of the shutdown service: the `stop` command.
 *
 * A stop asks the guest's shutdown service (which answers before it
 * acts), then watches the connection: for poweroff it waits until the
 * channel closes and a reconnect finds nobody ("VM gone"); for reboot
 * until the agent is back with a new session and heartbeat reads OK.
 * On timeout with `force`, or at once with `turn_off`, the VM's power
 * backend (power.c) turns it off. Each step is a `shutdown` event and a
 * line of the reply's "steps". The reconnect logic of conn.c is not
 * changed for a stopping VM: it backs off as usual, and its results are
 * what this file listens to.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "common/utf8.h"
#include "hostd.h"
#include "proto/control.h"
#include "proto/services.h"
#include "proto/shutdown.h"

/* After a power-off, how long the channel may take to close. */
#define SETTLE_MS 10000
/* How long a power backend may take. */
#define POWER_TIMEOUT_MS 30000

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
	uv_timer_t timer;
	struct power_op *power;
};

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
	events_emit(op->vm->h, op->vm->name, "shutdown", "shutdown", NULL, NULL,
		    "%s", text);
}

static void stop_timer_closed(uv_handle_t *handle)
{
	struct stop_op *op = handle->data;

	vm_unref(op->vm);
	free(op);
}

/* Detach the operation from its VM and free it once its timer closed. */
static void stop_release(struct stop_op *op)
{
	op->vm->stop = NULL;
	if (op->power) {
		power_cancel(op->power);
		op->power = NULL;
	}
	json_decref(op->steps);
	op->steps = NULL;
	op->timer.data = op;
	uv_close((uv_handle_t *)&op->timer, stop_timer_closed);
}

static uint64_t stop_elapsed_ms(const struct stop_op *op)
{
	return (vmic_mono_us() - op->start_us) / 1000;
}

static void stop_succeed(struct stop_op *op, const char *outcome)
{
	json_t *result = json_object();

	json_object_set_new(result, "outcome", json_string(outcome));
	json_object_set_new(result, "graceful", json_boolean(op->graceful));
	json_object_set_new(result, "elapsed_ms",
			    json_integer((json_int_t)stop_elapsed_ms(op)));
	json_object_set(result, "steps", op->steps);
	events_emit(op->vm->h, op->vm->name, "shutdown", "shutdown", NULL,
		    outcome, "stop finished: %s after %llums", outcome,
		    (unsigned long long)stop_elapsed_ms(op));
	if (strcmp(outcome, "rebooted") != 0) {
		/* Off on purpose: not a loss of communication. */
		op->vm->conn.contact = false;
		hb_forget_contact(op->vm, "the VM was stopped with vmic stop");
		services_refresh(op->vm);
	}
	ctl_reply_ok(op->rq, result);
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
	events_emit(op->vm->h, op->vm->name, "shutdown", "shutdown", NULL,
		    "failed", "stop failed (%s): %s", code, msg);
	ctl_reply_error(op->rq, code, "%s", msg);
	stop_release(op);
}

/* Why the guest's shutdown service cannot take a request now. */
static const char *sd_unavailable_reason(const struct vm *vm)
{
	const struct vmic_session *s = &vm->conn.session;

	if (!conn_up(vm))
		return "its guest agent is not connected";
	if (!vm_service_enabled(vm, VMIC_SVC_SHUTDOWN))
		return "its shutdown service is disabled on the host";
	if (vmic_session_version(s, VMIC_SVC_SHUTDOWN) == 0)
		return "its guest agent has no common shutdown version with "
		       "the host";
	return "its shutdown service is disabled in the guest's "
	       "configuration";
}

static void on_stop_timeout(uv_timer_t *t)
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
	if (op->force && op->vm->power_off) {
		stop_power(op);
		return;
	}
	stop_fail(op, "timeout",
		  "%s after %ums; %s", waiting, op->timeout_ms,
		  op->vm->power_off
			  ? "`vmic stop --force` powers it off through its "
			    "backend"
			  : "with a power backend (`vmic set VM --power-off "
			    "qmp:PATH`), `vmic stop --force` could power it off");
}

static void on_power_done(struct vm *vm, int status, const char *detail)
{
	struct stop_op *op = vm->stop;

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
	if (vm->conn.link) {
		op->phase = STOP_POWER_SETTLE;
		uv_timer_start(&op->timer, on_stop_timeout, SETTLE_MS, 0);
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
	uv_timer_stop(&op->timer);
	stop_step(op, "powering off through %s backend",
		  strncmp(vm->power_off, "qmp:", 4) == 0 ? "the QMP"
							 : "the exec");
	r = power_off(vm, POWER_TIMEOUT_MS, on_power_done, &op->power);
	if (r < 0)
		stop_fail(op, "internal", "cannot start the power-off: %s",
			  strerror(-r));
}

static int stop_send_request(struct stop_op *op, const char *reason)
{
	struct vm *vm = op->vm;
	struct vmic_sd_request m = { .action = op->action };
	uint8_t buf[VMIC_HDR_SIZE + VMIC_SD_REQUEST_MAX_LEN];
	int n;
	size_t len;

	snprintf(m.reason, sizeof(m.reason), "%s", reason);
	n = vmic_sd_request_encode(&m, buf + VMIC_HDR_SIZE,
				   VMIC_SD_REQUEST_MAX_LEN);
	if (n < 0)
		return n;
	op->request_id = conn_request_id(vm);
	len = vmic_frame_seal(buf, VMIC_SVC_SHUTDOWN, VMIC_SD_REQUEST, 0,
			      op->request_id, 0, (size_t)n);
	op->old_nonce = vm->conn.session.peer_nonce;
	return conn_send(vm, buf, len);
}

/* No request can be sent: power off, or say what is missing. */
static void stop_without_agent(struct stop_op *op)
{
	struct vm *vm = op->vm;
	const char *why = sd_unavailable_reason(vm);

	if (op->force && vm->power_off) {
		stop_step(op, "cannot ask the guest: %s", why);
		stop_power(op);
	} else if (!vm->power_off && !conn_up(vm)) {
		stop_fail(op, "unsupported",
			  "'%s' cannot be stopped: %s and it has no power "
			  "backend; set one with `vmic set %s --power-off "
			  "qmp:PATH`",
			  vm->name, why, vm->name);
	} else if (!conn_up(vm)) {
		stop_fail(op, "not-connected",
			  "'%s' cannot be asked to stop: %s (connection %s); "
			  "`vmic stop --force` powers it off through its "
			  "backend",
			  vm->name, why, conn_state_name(vm->conn.state));
	} else {
		stop_fail(op, "service-unavailable", "'%s' cannot be asked to "
						     "stop: %s%s",
			  vm->name, why,
			  vm->power_off ? "; `vmic stop --force` powers it "
					  "off through its backend"
					: "");
	}
}

void shutdown_start(struct vm *vm, struct ctl_request *rq, uint8_t action,
		    const char *reason, unsigned timeout_ms, bool force,
		    bool turn_off)
{
	struct stop_op *op;
	int r;

	if (vm->stop) {
		ctl_reply_error(rq, "service-unavailable",
				"a stop of '%s' is already in progress; wait "
				"for its reply",
				vm->name);
		return;
	}
	if (turn_off && !vm->power_off) {
		ctl_reply_error(rq, "unsupported",
				"'%s' has no power backend to turn it off; set "
				"one with `vmic set %s --power-off qmp:PATH`",
				vm->name, vm->name);
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
	op->start_us = vmic_mono_us();
	op->steps = json_array();
	vm_ref(vm);
	vm->stop = op;
	uv_timer_init(vm->h->loop, &op->timer);
	op->timer.data = op;
	stop_step(op, "%s requested%s%s", vmic_sd_action_name(action),
		  reason[0] ? ": " : "", reason);
	if (turn_off) {
		stop_power(op);
		return;
	}
	if (!service_usable(vm, VMIC_SVC_SHUTDOWN)) {
		stop_without_agent(op);
		return;
	}
	r = stop_send_request(op, reason);
	if (r < 0) {
		stop_step(op, "cannot send the request: %s", strerror(-r));
		stop_without_agent(op);
		return;
	}
	op->phase = STOP_ASKING;
	uv_timer_start(&op->timer, on_stop_timeout, timeout_ms, 0);
}

/* The guest accepted: wait for the outcome of its action. */
static void stop_accepted(struct stop_op *op)
{
	op->phase = op->action == VMIC_SD_REBOOT ? STOP_WAIT_BACK
						 : STOP_WAIT_GONE;
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

int shutdown_on_frame(struct vm *vm, const struct vmic_frame *f)
{
	struct stop_op *op = vm->stop;

	if (vmic_frame_is_request(f)) {
		conn_send_error(vm, f, VMIC_E_UNKNOWN_TYPE,
				"the host's shutdown service takes no "
				"requests");
		return 0;
	}
	if (!op || op->phase != STOP_ASKING ||
	    f->request_id != op->request_id) {
		log_debug("%s: dropping a shutdown answer nobody waits for",
			  vm->name);
		return 0;
	}
	if (f->type == VMIC_SD_REPLY)
		stop_on_reply(op, f);
	else if (f->type == VMIC_T_ERROR)
		stop_on_error(op, f);
	return 0;
}

void shutdown_on_channel_closed(struct vm *vm)
{
	struct stop_op *op = vm->stop;

	if (!op || op->channel_closed)
		return;
	switch (op->phase) {
	case STOP_ASKING:
		op->channel_closed = true;
		stop_step(op, "channel closed before the guest answered");
		stop_accepted(op);
		break;
	case STOP_WAIT_GONE:
	case STOP_WAIT_BACK:
		op->channel_closed = true;
		stop_step(op, "channel closed");
		break;
	case STOP_POWER_SETTLE:
		stop_step(op, "channel closed");
		stop_succeed(op, "turned-off");
		break;
	case STOP_POWERING:
		op->channel_closed = true;
		stop_step(op, "channel closed");
		break;
	}
}

void shutdown_on_connect_failed(struct vm *vm, int err)
{
	struct stop_op *op = vm->stop;

	if (!op || op->phase != STOP_WAIT_GONE || !op->channel_closed)
		return;
	stop_step(op, "VM gone (reconnect: %s)", uv_strerror(err));
	stop_succeed(op, "stopped");
}

void shutdown_on_session_up(struct vm *vm)
{
	struct stop_op *op = vm->stop;

	if (!op)
		return;
	if (op->phase == STOP_WAIT_GONE && !op->said_reconnected) {
		op->said_reconnected = true;
		stop_step(op, "the guest agent answers again; still waiting "
			      "for the VM to go");
		return;
	}
	if (op->phase != STOP_WAIT_BACK || op->agent_back ||
	    vm->conn.session.peer_nonce == op->old_nonce)
		return;
	op->agent_back = true;
	stop_step(op, "agent back (new session)");
	if (!service_usable(vm, VMIC_SVC_HEARTBEAT)) {
		stop_succeed(op, "rebooted");
		return;
	}
	if (vm->hb.state == HB_OK || vm->hb.state == HB_CRITICAL)
		shutdown_on_heartbeat_ok(vm);
}

void shutdown_on_heartbeat_ok(struct vm *vm)
{
	struct stop_op *op = vm->stop;

	if (!op || op->phase != STOP_WAIT_BACK || !op->agent_back)
		return;
	stop_step(op, "heartbeat %s", hb_state_name(vm->hb.state));
	stop_succeed(op, "rebooted");
}

void shutdown_abort(struct vm *vm, const char *why)
{
	struct stop_op *op = vm->stop;

	if (!op)
		return;
	stop_fail(op, vm->removed ? "unknown-vm" : "internal", "%s", why);
}
