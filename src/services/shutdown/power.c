/* SPDX-License-Identifier: MIT */
/*
 * Power backends: turn a VM off without its guest agent.
 *
 *   qmp:PATH      QEMU's QMP socket: read the greeting, send
 *                 qmp_capabilities, then quit; done when quit is
 *                 acknowledged or QEMU closes the socket.
 *   exec:COMMAND  /bin/sh -c COMMAND in a process group of its own (the
 *                 whole group is killed on timeout); done when it exits
 *                 with status 0. Its first output line goes into the
 *                 result, and so into the stop's steps and events.
 *   libvirt:UUID:URI  a domain hostd found through libvirt: destroyed
 *                 (virDomainDestroy) through hostd's own connection,
 *                 off the loop (vm_libvirt_destroy).
 *
 * Both run on the loop and end within a timeout; the callback runs
 * exactly once unless the operation is cancelled. The operation keeps
 * its own copy of the backend: a `vmic set --power-off` meanwhile frees
 * the VM's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/run.h"
#include "common/utf8.h"
#include "services/shutdown/power.h"
#include "common/qmp.h"

struct power_op {
	struct vm *vm;
	power_cb cb;
	uv_timer_t timer;
	unsigned timeout_ms;
	int handles; /* open handles; freed at zero once done */
	bool done;
	/* qmp (common/qmp-client.c) */
	struct qmp_call *qmp;
	/* exec */
	struct vmic_run *run;
	char command[128]; /* sanitised, for messages */
	/* libvirt */
	uint64_t lv_token; /* 0 when no destroy is pending */
};

static void power_handle_closed(uv_handle_t *handle)
{
	struct power_op *op = handle->data;

	if (--op->handles > 0)
		return;
	vm_unref(op->vm);
	free(op);
}

static void power_close_handle(struct power_op *op, uv_handle_t *handle)
{
	if (uv_is_closing(handle))
		return;
	handle->data = op;
	uv_close(handle, power_handle_closed);
}

static void power_release(struct power_op *op)
{
	qmp_call_cancel(op->qmp);
	op->qmp = NULL;
	if (op->lv_token)
		vm_libvirt_cancel(vm_hostd(op->vm), op->lv_token);
	op->lv_token = 0;
	vmic_run_cancel(op->run); /* kills what still runs of the group */
	op->run = NULL;
	power_close_handle(op, (uv_handle_t *)&op->timer);
}

static void power_finish(struct power_op *op, int status, const char *fmt,
			 ...) PRINTF_LIKE(3, 4);
static void power_finish(struct power_op *op, int status, const char *fmt,
			 ...)
{
	char detail[1024];
	va_list ap;

	if (op->done)
		return;
	op->done = true;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (op->cb)
		op->cb(op->vm, status, detail);
	op->cb = NULL;
	power_release(op);
}

void power_cancel(struct power_op *op)
{
	if (!op || op->done)
		return;
	op->done = true;
	op->cb = NULL;
	power_release(op);
}

/* ---- qmp ---- */

static void qmp_done(void *ud, int status, const char *detail)
{
	struct power_op *op = ud;

	op->qmp = NULL; /* it frees itself */
	power_finish(op, status, "%s", detail);
}

static int qmp_start(struct power_op *op, const char *path)
{
	return qmp_call_start(hostd_loop(vm_hostd(op->vm)), path,
			      "{\"execute\":\"quit\"}", "quit",
			      op->timeout_ms, true, qmp_done, op, &op->qmp);
}

/* ---- exec ---- */

static void exec_on_done(void *ud, const struct vmic_run_result *r)
{
	struct power_op *op = ud;
	char what[128], raw[256], line[256];

	op->run = NULL; /* it frees itself */
	vmic_run_describe(r, op->timeout_ms, what, sizeof(what));
	vmic_run_first_line(r, raw, sizeof(raw));
	vmic_utf8_sanitize(line, sizeof(line), raw, strlen(raw));
	power_finish(op, r->spawn_error == 0 && !r->timed_out && !r->signo &&
				 r->status == 0
			     ? 0
			     : -EIO,
		     "'%s': %s%s%s", op->command, what, line[0] ? ": " : "",
		     line);
}

static int exec_start(struct power_op *op, const char *command)
{
	vmic_utf8_sanitize(op->command, sizeof(op->command), command,
			   strlen(command));
	log_debug("%s: starting the power-off command", vm_name(op->vm));
	return vmic_run_start(hostd_loop(vm_hostd(op->vm)), command,
			      op->timeout_ms, exec_on_done, op, &op->run);
}

/* ---- libvirt ---- */

static void libvirt_on_done(void *ud, int status, const char *detail)
{
	struct power_op *op = ud;

	op->lv_token = 0; /* answered: nothing to cancel */
	power_finish(op, status, "%s", detail);
}

static void on_libvirt_timeout(uv_timer_t *t)
{
	struct power_op *op = t->data;

	power_finish(op, -ETIMEDOUT, "libvirt did not destroy the domain "
				     "within %ums (is libvirtd answering? see "
				     "`vmic stats`)",
		     op->timeout_ms);
}

static int libvirt_start(struct power_op *op)
{
	int r = vm_libvirt_destroy(op->vm, libvirt_on_done, op,
				   &op->lv_token);

	if (r < 0)
		return r;
	uv_timer_start(&op->timer, on_libvirt_timeout, op->timeout_ms, 0);
	return 0;
}

int power_off(struct vm *vm, unsigned timeout_ms, power_cb cb,
	      struct power_op **out)
{
	const char *backend = vm_power_off(vm);
	struct power_op *op;
	int r;

	if (!backend)
		return -EOPNOTSUPP;
	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->vm = vm;
	op->cb = cb;
	op->timeout_ms = timeout_ms;
	vm_ref(vm);
	/* The timer is only a handle whose close frees op, once the QMP
	 * call or the command (each with its own timeout) is released. */
	uv_timer_init(hostd_loop(vm_hostd(vm)), &op->timer);
	op->timer.data = op;
	op->handles = 1;
	if (strncmp(backend, "qmp:", 4) == 0)
		r = qmp_start(op, backend + 4);
	else if (strncmp(backend, "exec:", 5) == 0)
		r = exec_start(op, backend + 5);
	else if (strncmp(backend, "libvirt:", 8) == 0)
		r = libvirt_start(op);
	else
		r = -EINVAL;
	if (r < 0) {
		op->done = true;
		power_release(op);
		return r;
	}
	*out = op;
	return 0;
}
