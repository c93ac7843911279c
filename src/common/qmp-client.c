/* SPDX-License-Identifier: MIT */
/*
 * One command on QEMU's QMP socket (qmp.h): greeting, qmp_capabilities,
 * the command, its answer. Runs on a libuv loop and never waits: a timer
 * bounds the whole conversation. Shared by the host's services (the
 * shutdown service's power-off, the backup service's disk snapshot).
 */
#include "common/qmp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <uv.h>

#include "common/macro.h"

enum qmp_stage {
	STAGE_GREETING,
	STAGE_CAPABILITIES, /* qmp_capabilities sent */
	STAGE_COMMAND,      /* the command sent */
};

struct qmp_call {
	qmp_done_cb cb;
	void *ud;
	char *command; /* with its newline */
	char what[64];
	bool eof_ok;
	unsigned timeout_ms;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uv_timer_t timer;
	uv_pipe_t pipe;
	uv_connect_t connect_req;
	uv_write_t write_req;
	enum qmp_stage stage;
	char *line;
	size_t len;
	int handles;
	bool done;
};

static void handle_closed(uv_handle_t *h)
{
	struct qmp_call *c = h->data;

	if (--c->handles > 0)
		return;
	free(c->line);
	free(c->command);
	free(c);
}

static void release(struct qmp_call *c)
{
	uv_timer_stop(&c->timer);
	if (!uv_is_closing((uv_handle_t *)&c->pipe))
		uv_close((uv_handle_t *)&c->pipe, handle_closed);
	if (!uv_is_closing((uv_handle_t *)&c->timer))
		uv_close((uv_handle_t *)&c->timer, handle_closed);
}

static void finish(struct qmp_call *c, int status, const char *fmt, ...)
	PRINTF_LIKE(3, 4);
static void finish(struct qmp_call *c, int status, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	if (c->done)
		return;
	c->done = true;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	c->cb(c->ud, status, detail);
	release(c);
}

void qmp_call_cancel(struct qmp_call *c)
{
	if (!c || c->done)
		return;
	c->done = true;
	release(c);
}

static void on_timeout(uv_timer_t *t)
{
	struct qmp_call *c = t->data;

	finish(c, -ETIMEDOUT, "QEMU did not complete %s on its QMP socket "
			      "within %ums",
	       c->what, c->timeout_ms);
}

static void on_write(uv_write_t *req, int status)
{
	struct qmp_call *c = req->data;

	if (status < 0 && status != UV_ECANCELED)
		finish(c, status, "cannot write to the QMP socket: %s",
		       uv_strerror(status));
}

static void send_line(struct qmp_call *c, const char *text)
{
	uv_buf_t b = uv_buf_init((char *)text, (unsigned)strlen(text));
	int r;

	c->write_req.data = c;
	r = uv_write(&c->write_req, (uv_stream_t *)&c->pipe, &b, 1, on_write);
	if (r < 0)
		finish(c, r, "cannot write to the QMP socket: %s",
		       uv_strerror(r));
}

/* One line from QEMU moves the conversation on. */
static void on_line(struct qmp_call *c, const char *line, size_t n)
{
	char err[QMP_ERROR_MAX];
	enum qmp_kind kind = qmp_parse_line(line, n, err, sizeof(err));

	if (kind == QMP_ERROR) {
		finish(c, -EIO, "QEMU refused %s: %s",
		       c->stage == STAGE_COMMAND ? c->what : "qmp_capabilities",
		       err);
		return;
	}
	switch (c->stage) {
	case STAGE_GREETING:
		if (kind != QMP_GREETING)
			break;
		c->stage = STAGE_CAPABILITIES;
		send_line(c, "{\"execute\":\"qmp_capabilities\"}\n");
		break;
	case STAGE_CAPABILITIES:
		if (kind != QMP_RETURN)
			break;
		c->stage = STAGE_COMMAND;
		send_line(c, c->command);
		break;
	case STAGE_COMMAND:
		if (kind == QMP_RETURN)
			finish(c, 0, "QEMU acknowledged %s", c->what);
		break;
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct qmp_call *c = h->data;

	(void)suggested;
	buf->base = c->line + c->len;
	buf->len = QMP_LINE_MAX - c->len;
}

static void drain_lines(struct qmp_call *c)
{
	char *nl;

	while (!c->done && (nl = memchr(c->line, '\n', c->len))) {
		size_t n = (size_t)(nl - c->line);

		on_line(c, c->line, n);
		memmove(c->line, nl + 1, c->len - n - 1);
		c->len -= n + 1;
	}
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct qmp_call *c = s->data;

	(void)buf;
	if (c->done)
		return;
	if (n < 0) {
		if (c->stage == STAGE_COMMAND && c->eof_ok)
			finish(c, 0, "QEMU closed its QMP socket after %s",
			       c->what);
		else
			finish(c, -EPIPE, "QEMU closed its QMP socket before "
					  "%s was %s",
			       c->what,
			       c->stage == STAGE_COMMAND ? "answered" : "sent");
		return;
	}
	c->len += (size_t)n;
	drain_lines(c);
	if (!c->done && c->len == QMP_LINE_MAX)
		finish(c, -EPROTO, "the QMP socket sent a line longer than "
				   "64 KiB: is it QEMU's QMP?");
}

static void on_connect(uv_connect_t *req, int status)
{
	struct qmp_call *c = req->data;
	int r;

	if (c->done)
		return;
	if (status < 0) {
		finish(c, status, "cannot connect to the QMP socket %s: %s",
		       c->path, uv_strerror(status));
		return;
	}
	r = uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
	if (r < 0)
		finish(c, r, "cannot read the QMP socket: %s", uv_strerror(r));
}

int qmp_call_start(struct uv_loop_s *loop, const char *path,
		   const char *command, const char *what, unsigned timeout_ms,
		   bool eof_ok, qmp_done_cb cb, void *ud, struct qmp_call **out)
{
	struct qmp_call *c;

	if (strlen(path) >= sizeof(c->path))
		return -ENAMETOOLONG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->line = malloc(QMP_LINE_MAX);
	if (!c->line || asprintf(&c->command, "%s\n", command) < 0) {
		free(c->line);
		free(c);
		return -ENOMEM;
	}
	c->cb = cb;
	c->ud = ud;
	c->eof_ok = eof_ok;
	c->timeout_ms = timeout_ms;
	snprintf(c->what, sizeof(c->what), "%s", what);
	snprintf(c->path, sizeof(c->path), "%s", path);
	uv_timer_init(loop, &c->timer);
	uv_pipe_init(loop, &c->pipe, 0);
	c->timer.data = c->pipe.data = c;
	c->handles = 2;
	c->connect_req.data = c;
	uv_pipe_connect(&c->connect_req, &c->pipe, c->path, on_connect);
	uv_timer_start(&c->timer, on_timeout, timeout_ms, 0);
	*out = c;
	return 0;
}
