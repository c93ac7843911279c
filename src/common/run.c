/* SPDX-License-Identifier: MIT */
#include "run.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "macro.h"

/* After the command exits, how long output may still come. */
#define DRAIN_MS 1000

struct vmic_run {
	uv_process_t proc;
	uv_pipe_t out;
	uv_timer_t timer; /* run limit, then the drain limit after exit */
	vmic_run_cb cb;
	void *ud;
	unsigned timeout_ms;
	int handles; /* open handles; freed at zero */
	bool exited, eof, done, started;
	struct vmic_run_result res;
};

static void run_handle_closed(uv_handle_t *h)
{
	struct vmic_run *run = h->data;

	if (--run->handles == 0)
		free(run);
}

static void run_close(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, run_handle_closed);
}

/* Kill what is left of the group (unless it is let go), close
 * everything, report once. */
static void run_finish(struct vmic_run *run, bool report, bool kill_group)
{
	if (run->done)
		return;
	run->done = true;
	if (run->started && !run->exited && kill_group)
		kill(-run->proc.pid, SIGKILL);
	uv_timer_stop(&run->timer);
	run_close((uv_handle_t *)&run->timer);
	run_close((uv_handle_t *)&run->out);
	/* The process handle closes in its exit callback (or now, when the
	 * spawn failed or the process is let go): closing it earlier would
	 * lose the exit status. */
	if (!run->started || run->exited || !kill_group)
		run_close((uv_handle_t *)&run->proc);
	run->res.output[run->res.output_len] = '\0';
	if (report && run->cb)
		run->cb(run->ud, &run->res);
}

static void on_timer(uv_timer_t *t)
{
	struct vmic_run *run = t->data;

	if (!run->started) {
		run_finish(run, true, true); /* a spawn failure, reported late */
	} else if (!run->exited) {
		run->res.timed_out = true;
		kill(-run->proc.pid, SIGKILL); /* the exit callback follows */
	} else {
		run_finish(run, true, true); /* output still open after the drain */
	}
}

static void on_exit_cb(uv_process_t *p, int64_t status, int signo)
{
	struct vmic_run *run = p->data;

	run->exited = true;
	run->res.status = status;
	run->res.signo = run->res.timed_out ? 0 : signo;
	if (run->done) {
		run_close((uv_handle_t *)p);
		return;
	}
	if (run->eof) {
		run_finish(run, true, true);
		return;
	}
	uv_timer_start(&run->timer, on_timer, DRAIN_MS, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested UNUSED, uv_buf_t *b)
{
	static char scratch[4096];
	struct vmic_run *run = h->data;
	size_t room = VMIC_RUN_OUTPUT_MAX - run->res.output_len;

	/* Keep the first bytes; read and drop the rest. */
	if (room > 0)
		*b = uv_buf_init(run->res.output + run->res.output_len,
				 (unsigned)room);
	else
		*b = uv_buf_init(scratch, sizeof(scratch));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct vmic_run *run = s->data;

	if (n > 0 && b->base == run->res.output + run->res.output_len) {
		run->res.output_len += (size_t)n;
	} else if (n < 0) {
		run->eof = true;
		uv_read_stop(s);
		if (run->exited)
			run_finish(run, true, true);
	}
}

int vmic_run_start(uv_loop_t *loop, const char *command, unsigned timeout_ms,
		   vmic_run_cb cb, void *ud, struct vmic_run **out)
{
	struct vmic_run *run = calloc(1, sizeof(*run));
	char *script;
	int r;

	if (!run)
		return -ENOMEM;
	/* stderr joins stdout, so either can carry the reason. */
	if (asprintf(&script, "exec 2>&1\n%s", command) < 0) {
		free(run);
		return -ENOMEM;
	}
	char *argv[] = { "/bin/sh", "-c", script, NULL };
	uv_stdio_container_t stdio[3] = {
		{ .flags = UV_IGNORE },
		{ .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
		  .data.stream = (uv_stream_t *)&run->out },
		{ .flags = UV_IGNORE },
	};
	uv_process_options_t o = {
		.file = argv[0],
		.args = argv,
		.stdio_count = 3,
		.stdio = stdio,
		.exit_cb = on_exit_cb,
		.flags = UV_PROCESS_DETACHED, /* its own group, for the kill */
	};

	run->cb = cb;
	run->ud = ud;
	run->timeout_ms = timeout_ms;
	run->handles = 3;
	uv_pipe_init(loop, &run->out, 0);
	uv_timer_init(loop, &run->timer);
	run->out.data = run->timer.data = run->proc.data = run;
	r = uv_spawn(loop, &run->proc, &o);
	free(script);
	*out = run;
	if (r < 0) {
		/* The handle was initialised all the same; report from the
		 * loop, as promised. */
		run->res.spawn_error = r;
		uv_timer_start(&run->timer, on_timer, 0, 0);
		return 0;
	}
	run->started = true;
	uv_read_start((uv_stream_t *)&run->out, on_alloc, on_read);
	uv_timer_start(&run->timer, on_timer, timeout_ms, 0);
	return 0;
}

void vmic_run_cancel(struct vmic_run *run)
{
	if (run)
		run_finish(run, false, true);
}

void vmic_run_release(struct vmic_run *run)
{
	if (run)
		run_finish(run, false, false);
}

void vmic_run_first_line(const struct vmic_run_result *r, char *buf,
			 size_t n)
{
	const char *p = r->output, *end = r->output + r->output_len, *nl;
	size_t len;

	while (p < end && (*p == '\n' || *p == '\r' || *p == ' '))
		p++;
	nl = memchr(p, '\n', (size_t)(end - p));
	len = (size_t)((nl ? nl : end) - p);
	while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' '))
		len--;
	snprintf(buf, n, "%.*s", (int)len, p);
}

void vmic_run_describe(const struct vmic_run_result *r, unsigned timeout_ms,
		       char *buf, size_t n)
{
	char d[32];

	if (r->spawn_error < 0) {
		snprintf(buf, n, "cannot start: %s",
			 uv_strerror(r->spawn_error));
	} else if (r->timed_out) {
		vmic_format_duration_ms(timeout_ms, d, sizeof(d));
		snprintf(buf, n, "timed out after %s (killed with its process "
				 "group)",
			 d);
	} else if (r->signo) {
		snprintf(buf, n, "killed by signal %d", r->signo);
	} else {
		snprintf(buf, n, "exit status %lld", (long long)r->status);
	}
}
