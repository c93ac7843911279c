/* SPDX-License-Identifier: MIT */
/*
 * Power backends: turn a VM off without its guest agent.
 *
 *   qmp:PATH      QEMU's QMP socket: read the greeting, send
 *                 qmp_capabilities, then quit; done when quit is
 *                 acknowledged or QEMU closes the socket.
 *   exec:COMMAND  /bin/sh -c COMMAND; done when it exits with status 0.
 *
 * Both run on the loop and end within a timeout; the callback runs
 * exactly once unless the operation is cancelled.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/utf8.h"
#include "services/shutdown/power.h"

/* QMP replies are short; a line this long is not QEMU talking. */
#define QMP_LINE_MAX (64 * 1024)

enum qmp_stage {
	QMP_GREETING,
	QMP_CAPABILITIES, /* qmp_capabilities sent */
	QMP_QUIT,         /* quit sent */
};

struct power_op {
	struct vm *vm;
	power_cb cb;
	uv_timer_t timer;
	bool is_qmp;
	/* qmp */
	uv_pipe_t pipe;
	uv_connect_t connect_req;
	uv_write_t write_req;
	bool pipe_open;
	enum qmp_stage stage;
	char *line;
	size_t len;
	/* exec */
	uv_process_t proc;
	bool proc_running;
	char command[128]; /* sanitised, for messages */
	unsigned timeout_ms;
	int handles; /* open handles; freed at zero once done */
	bool done;
	int deferred_status; /* a failure found before anything started */
	char deferred_detail[256];
};

static void power_handle_closed(uv_handle_t *handle)
{
	struct power_op *op = handle->data;

	if (--op->handles > 0)
		return;
	vm_unref(op->vm);
	free(op->line);
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
	uv_timer_stop(&op->timer);
	if (op->pipe_open)
		power_close_handle(op, (uv_handle_t *)&op->pipe);
	if (op->proc_running) {
		/* Ours, by pid: it must not outlive the operation. Its exit
		 * callback closes the handle. */
		uv_process_kill(&op->proc, SIGKILL);
	}
	power_close_handle(op, (uv_handle_t *)&op->timer);
}

static void power_finish(struct power_op *op, int status, const char *fmt,
			 ...) PRINTF_LIKE(3, 4);
static void power_finish(struct power_op *op, int status, const char *fmt,
			 ...)
{
	char detail[512];
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

static void on_power_timeout(uv_timer_t *t)
{
	struct power_op *op = t->data;

	if (op->deferred_status)
		power_finish(op, op->deferred_status, "%s", op->deferred_detail);
	else if (op->is_qmp)
		power_finish(op, -ETIMEDOUT, "QEMU did not complete quit on its "
					     "QMP socket within %ums",
			     op->timeout_ms);
	else
		power_finish(op, -ETIMEDOUT, "'%s' did not finish within %ums; "
					     "it was killed",
			     op->command, op->timeout_ms);
}

/* Report a failure from the loop, never from inside power_off(). */
static void power_defer_failure(struct power_op *op, int status,
				const char *detail)
{
	op->deferred_status = status;
	snprintf(op->deferred_detail, sizeof(op->deferred_detail), "%s",
		 detail);
	uv_timer_start(&op->timer, on_power_timeout, 0, 0);
}

/* ---- qmp ---- */

static void qmp_on_write(uv_write_t *req, int status)
{
	struct power_op *op = req->data;

	if (status < 0 && status != UV_ECANCELED)
		power_finish(op, status, "cannot write to the QMP socket: %s",
			     uv_strerror(status));
}

static void qmp_send(struct power_op *op, const char *command)
{
	uv_buf_t b = uv_buf_init((char *)command, (unsigned)strlen(command));
	int r;

	op->write_req.data = op;
	r = uv_write(&op->write_req, (uv_stream_t *)&op->pipe, &b, 1,
		     qmp_on_write);
	if (r < 0)
		power_finish(op, r, "cannot write to the QMP socket: %s",
			     uv_strerror(r));
}

static void qmp_error_text(json_t *msg, char *buf, size_t n)
{
	const char *desc = NULL;

	json_unpack(msg, "{s:{s:s}}", "error", "desc", &desc);
	vmic_utf8_sanitize(buf, n, desc ? desc : "unknown error",
			   strlen(desc ? desc : "unknown error"));
}

static void qmp_on_message(struct power_op *op, json_t *msg)
{
	char err[256];

	if (json_object_get(msg, "event"))
		return;
	if (json_object_get(msg, "error")) {
		qmp_error_text(msg, err, sizeof(err));
		power_finish(op, -EIO, "QEMU refused %s: %s",
			     op->stage == QMP_QUIT ? "quit"
						   : "qmp_capabilities",
			     err);
		return;
	}
	switch (op->stage) {
	case QMP_GREETING:
		if (!json_object_get(msg, "QMP"))
			break;
		op->stage = QMP_CAPABILITIES;
		qmp_send(op, "{\"execute\":\"qmp_capabilities\"}\n");
		break;
	case QMP_CAPABILITIES:
		if (!json_object_get(msg, "return"))
			break;
		op->stage = QMP_QUIT;
		qmp_send(op, "{\"execute\":\"quit\"}\n");
		break;
	case QMP_QUIT:
		if (json_object_get(msg, "return"))
			power_finish(op, 0, "QEMU acknowledged quit");
		break;
	}
}

static void qmp_on_alloc(uv_handle_t *h, size_t suggested UNUSED,
			 uv_buf_t *buf)
{
	struct power_op *op = h->data;
	size_t room = QMP_LINE_MAX - op->len;

	buf->base = op->line + op->len;
	buf->len = room;
}

/* Handle every complete line in the buffer; keep the rest. */
static void qmp_drain_lines(struct power_op *op)
{
	char *nl;

	while (!op->done && (nl = memchr(op->line, '\n', op->len))) {
		size_t n = (size_t)(nl - op->line);
		json_t *msg = json_loadb(op->line, n, 0, NULL);

		if (msg) {
			qmp_on_message(op, msg);
			json_decref(msg);
		}
		memmove(op->line, nl + 1, op->len - n - 1);
		op->len -= n + 1;
	}
}

static void qmp_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf UNUSED)
{
	struct power_op *op = s->data;

	if (op->done)
		return;
	if (n < 0) {
		if (op->stage == QMP_QUIT)
			power_finish(op, 0, "QEMU closed its QMP socket after "
					    "quit");
		else
			power_finish(op, -EPIPE, "QEMU closed its QMP socket "
						 "before quit was sent");
		return;
	}
	op->len += (size_t)n;
	qmp_drain_lines(op);
	if (!op->done && op->len == QMP_LINE_MAX)
		power_finish(op, -EPROTO, "the QMP socket sent a line longer "
					  "than 64 KiB: is it QEMU's QMP?");
}

static void qmp_on_connect(uv_connect_t *req, int status)
{
	struct power_op *op = req->data;
	int r;

	if (op->done)
		return;
	if (status < 0) {
		power_finish(op, status, "cannot connect to the QMP socket "
					 "%s: %s",
			     op->vm->power_off + 4, uv_strerror(status));
		return;
	}
	r = uv_read_start((uv_stream_t *)&op->pipe, qmp_on_alloc, qmp_on_read);
	if (r < 0)
		power_finish(op, r, "cannot read the QMP socket: %s",
			     uv_strerror(r));
}

static int qmp_start(struct power_op *op, const char *path)
{
	op->line = malloc(QMP_LINE_MAX);
	if (!op->line)
		return -ENOMEM;
	uv_pipe_init(op->vm->h->loop, &op->pipe, 0);
	op->pipe.data = op;
	op->pipe_open = true;
	op->handles++;
	op->connect_req.data = op;
	uv_pipe_connect(&op->connect_req, &op->pipe, path, qmp_on_connect);
	return 0;
}

/* ---- exec ---- */

static void exec_on_exit(uv_process_t *p, int64_t status, int signal)
{
	struct power_op *op = p->data;

	op->proc_running = false;
	power_close_handle(op, (uv_handle_t *)p);
	if (signal)
		power_finish(op, -EIO, "'%s' was killed by signal %d",
			     op->command, signal);
	else if (status != 0)
		power_finish(op, -EIO, "'%s' exited with status %lld",
			     op->command, (long long)status);
	else
		power_finish(op, 0, "'%s' exited with status 0", op->command);
}

static void exec_start(struct power_op *op, const char *command)
{
	char *args[] = { "sh", "-c", (char *)command, NULL };
	uv_stdio_container_t stdio[3] = {
		{ .flags = UV_IGNORE },
		/* Output of the command goes to the daemon's log. */
		{ .flags = UV_INHERIT_FD, .data.fd = STDERR_FILENO },
		{ .flags = UV_INHERIT_FD, .data.fd = STDERR_FILENO },
	};
	uv_process_options_t o = {
		.exit_cb = exec_on_exit,
		.file = "/bin/sh",
		.args = args,
		.stdio_count = 3,
		.stdio = stdio,
	};
	char detail[256];
	int r;

	vmic_utf8_sanitize(op->command, sizeof(op->command), command,
			   strlen(command));
	op->proc.data = op;
	r = uv_spawn(op->vm->h->loop, &op->proc, &o);
	op->handles++; /* uv_spawn initialises the handle even on error */
	if (r < 0) {
		power_close_handle(op, (uv_handle_t *)&op->proc);
		snprintf(detail, sizeof(detail), "cannot run '%s': %s",
			 op->command, uv_strerror(r));
		power_defer_failure(op, r, detail);
		return;
	}
	op->proc_running = true;
	log_debug("%s: power-off command started (pid %d)", op->vm->name,
		  op->proc.pid);
}

int power_off(struct vm *vm, unsigned timeout_ms, power_cb cb,
	      struct power_op **out)
{
	struct power_op *op;
	int r = 0;

	if (!vm->power_off)
		return -EOPNOTSUPP;
	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->vm = vm;
	op->cb = cb;
	op->timeout_ms = timeout_ms;
	vm_ref(vm);
	uv_timer_init(vm->h->loop, &op->timer);
	op->timer.data = op;
	op->handles = 1;
	if (strncmp(vm->power_off, "qmp:", 4) == 0) {
		op->is_qmp = true;
		r = qmp_start(op, vm->power_off + 4);
	} else if (strncmp(vm->power_off, "exec:", 5) == 0) {
		exec_start(op, vm->power_off + 5);
	} else {
		r = -EINVAL;
	}
	if (r < 0) {
		op->done = true;
		power_release(op);
		return r;
	}
	if (!op->deferred_status)
		uv_timer_start(&op->timer, on_power_timeout, timeout_ms, 0);
	*out = op;
	return 0;
}
