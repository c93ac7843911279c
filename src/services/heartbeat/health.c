/* SPDX-License-Identifier: MIT */
/*
 * Application health: run the configured command every health-interval
 * through uv_spawn, so the loop keeps answering heartbeats meanwhile.
 * Exit status 0 means OK; anything else, a crash, a timeout or a command
 * that cannot start means "application critical", with the first line the
 * command printed (stdout and stderr together) as the reason.
 *
 * The command runs in its own process group so a timeout kills whatever
 * it started too; its output is read until EOF, or for at most a second
 * after it exits when a child it left behind keeps the pipe open.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "common/utf8.h"
#include "services/heartbeat/health.h"

#define DRAIN_MS 1000

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

/* The first non-empty line of what the command printed, or "". */
static void first_line(const struct health *h, char *buf, size_t n)
{
	const char *p = h->output, *end = h->output + h->output_len;
	const char *nl;
	size_t len;

	while (p < end && (*p == '\n' || *p == '\r' || *p == ' '))
		p++;
	nl = memchr(p, '\n', (size_t)(end - p));
	len = (size_t)((nl ? nl : end) - p);
	while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' '))
		len--;
	snprintf(buf, n, "%.*s", (int)len, p);
}

static void health_judge(struct health *h)
{
	char line[sizeof(h->reason)], reason[sizeof(h->reason)], d[32];

	first_line(h, line, sizeof(line));
	if (h->timed_out) {
		vmic_format_duration_ms(h->conf->health_timeout_ms,
					d, sizeof(d));
		snprintf(reason, sizeof(reason),
			 "health command timed out after %s", d);
	} else if (h->signo) {
		snprintf(reason, sizeof(reason),
			 "health command killed by signal %d", h->signo);
	} else if (h->status == 0) {
		set_state(h, VMIC_HEALTH_OK, "");
		return;
	} else if (line[0]) {
		snprintf(reason, sizeof(reason), "%s", line);
	} else {
		snprintf(reason, sizeof(reason),
			 "health command exited with status %lld",
			 (long long)h->status);
	}
	set_state(h, VMIC_HEALTH_CRITICAL, reason);
}

static void on_out_closed(uv_handle_t *handle)
{
	((struct health *)handle->data)->out_open = false;
}

static void on_proc_closed(uv_handle_t *handle)
{
	((struct health *)handle->data)->proc_open = false;
}

static void close_out(struct health *h)
{
	if (h->out_open && !uv_is_closing((uv_handle_t *)&h->out))
		uv_close((uv_handle_t *)&h->out, on_out_closed);
}

/* Both the exit and the end of output (or the drain limit) are in. */
static void health_done(struct health *h)
{
	uv_timer_stop(&h->timeout);
	close_out(h);
	health_judge(h);
}

static void on_drain_timeout(uv_timer_t *t)
{
	health_done(t->data);
}

static void on_health_exit(uv_process_t *p, int64_t status, int signo)
{
	struct health *h = p->data;

	h->exited = true;
	h->status = status;
	h->signo = h->timed_out ? 0 : signo;
	uv_close((uv_handle_t *)p, on_proc_closed);
	if (h->eof)
		health_done(h);
	else
		uv_timer_start(&h->timeout, on_drain_timeout, DRAIN_MS, 0);
}

static void on_out_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *b)
{
	static char scratch[1024];
	struct health *h = handle->data;
	size_t room = sizeof(h->output) - 1 - h->output_len;

	(void)suggested;
	/* Keep the first bytes; read and drop the rest so the command
	 * never blocks on a full pipe. */
	if (room > 0)
		*b = uv_buf_init(h->output + h->output_len, (unsigned)room);
	else
		*b = uv_buf_init(scratch, sizeof(scratch));
}

static void on_out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct health *h = s->data;

	if (n > 0 && b->base == h->output + h->output_len) {
		h->output_len += (size_t)n;
	} else if (n < 0) {
		h->eof = true;
		close_out(h);
		if (h->exited)
			health_done(h);
	}
}

static void on_run_timeout(uv_timer_t *t)
{
	struct health *h = t->data;

	h->timed_out = true;
	/* Negative pid: the whole process group the command started. */
	kill(-h->proc.pid, SIGKILL);
}

static void health_spawn(struct health *h)
{
	char script[HEALTH_COMMAND_MAX + 16];
	char *argv[] = { "/bin/sh", "-c", script, NULL };
	uv_stdio_container_t stdio[3] = {
		{ .flags = UV_IGNORE },
		{ .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
		  .data.stream = (uv_stream_t *)&h->out },
		{ .flags = UV_IGNORE },
	};
	uv_process_options_t o = {
		.file = argv[0],
		.args = argv,
		.stdio_count = 3,
		.stdio = stdio,
		.exit_cb = on_health_exit,
		.flags = UV_PROCESS_DETACHED, /* own group, for the kill */
	};
	char reason[sizeof(h->reason)];
	int r;

	/* stderr joins stdout so either can carry the reason. */
	snprintf(script, sizeof(script), "exec 2>&1\n%s",
		 h->conf->health_command);
	h->output_len = 0;
	h->exited = h->eof = h->timed_out = false;
	h->status = 0;
	h->signo = 0;
	uv_pipe_init(h->loop, &h->out, 0);
	h->out.data = h;
	h->out_open = true;
	h->proc.data = h;
	r = uv_spawn(h->loop, &h->proc, &o);
	if (r < 0) {
		snprintf(reason, sizeof(reason),
			 "cannot run the health command: %s", uv_strerror(r));
		set_state(h, VMIC_HEALTH_CRITICAL, reason);
		h->proc_open = true;
		uv_close((uv_handle_t *)&h->proc, on_proc_closed);
		close_out(h);
		return;
	}
	h->proc_open = true;
	uv_read_start((uv_stream_t *)&h->out, on_out_alloc, on_out_read);
	uv_timer_start(&h->timeout, on_run_timeout, h->conf->health_timeout_ms,
		       0);
}

static void health_tick(uv_timer_t *t)
{
	struct health *h = t->data;

	/* A check still running (or closing) skips this turn. */
	if (!h->proc_open && !h->out_open)
		health_spawn(h);
}

void health_start(struct health *h, uv_loop_t *loop,
		  const struct hb_guest_conf *conf)
{
	h->loop = loop;
	h->conf = conf;
	h->state = VMIC_HEALTH_OK;
	h->reason[0] = '\0';
	if (!conf->health_command[0])
		return; /* no timer at all: nothing to wake up for */
	h->running = true;
	uv_timer_init(loop, &h->timer);
	uv_timer_init(loop, &h->timeout);
	h->timer.data = h;
	h->timeout.data = h;
	uv_timer_start(&h->timer, health_tick, 0, conf->health_interval_ms);
}

void health_stop(struct health *h)
{
	if (!h->running)
		return;
	if (h->proc_open && !h->exited)
		kill(-h->proc.pid, SIGKILL);
	uv_close((uv_handle_t *)&h->timer, NULL);
	uv_close((uv_handle_t *)&h->timeout, NULL);
	close_out(h);
}
