/* SPDX-License-Identifier: MIT */
/*
 * Running a long operation of vmic-hostd (docs/control.md, "Operations")
 * for a command: send the request with the descriptors the command opened
 * (with the user's own rights), show the progress, pass signals on as
 * messages, hand the command the lines of its own kinds, and turn the end
 * into an exit status and one sentence. Nothing here knows a service.
 *
 * Progress is a bar on standard error when it is a terminal (bytes, rate,
 * time left) and nothing on a pipe; with --json every progress line and
 * line of the operation's own kinds is printed on standard output as a
 * JSON line ({"progress": {...}}, {"NAME": VALUE}), then the result
 * ({"result": {...}}).
 *
 * Signals reach the loop through a pipe. SIGINT, SIGTERM and SIGHUP ask
 * the daemon to cancel (the operation's reply then says what became of
 * it, and the exit status is 128 + the signal); a second one stops
 * waiting (closing the connection cancels too). A command that wants
 * them passed on (a remote process) gets {"signal": "INT"} messages
 * instead, and SIGWINCH as {"winsize": [rows, cols]} of its terminal.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/duration.h"
#include "vmic.h"

/* The request id (ctl-client.c answers to the same). */
#define OP_ID 1
/* The bar is drawn at most this often, and its rate is taken over this
 * window of samples. */
#define BAR_REDRAW_US 100000
#define RATE_WINDOW_US 5000000
#define RATE_SAMPLES 64

struct rate_sample {
	uint64_t t_us;
	uint64_t bytes;
};

struct progress_bar {
	bool on;   /* standard error is a terminal, and no --json */
	size_t drawn; /* width of what is on the line now */
	uint64_t last_draw_us;
	struct rate_sample s[RATE_SAMPLES];
	size_t first, n;
};

struct cli_op {
	struct cli *cli;
	const struct cli_op_spec *spec;
	struct cli_ctl c;
	struct progress_bar bar;
	int cancel_signal; /* the signal that asked for the cancel, 0 */
	bool sent_cancel;
};

static const struct {
	int sig;
	const char *name;
} signals[] = {
	{ SIGINT, "INT" },   { SIGTERM, "TERM" }, { SIGHUP, "HUP" },
	{ SIGQUIT, "QUIT" }, { SIGWINCH, "WINCH" },
};

/* The write end of the pipe the handlers write signal numbers to. */
static int signal_pipe = -1;

static void on_signal(int sig)
{
	unsigned char b = (unsigned char)sig;
	int saved = errno;

	if (write(signal_pipe, &b, 1) < 0) {
		/* Full: a signal is waiting already. */
	}
	errno = saved;
}

struct saved_signals {
	struct sigaction old[ARRAY_SIZE(signals)];
	bool set[ARRAY_SIZE(signals)];
	int pipe[2];
};

static bool wants_signal(const struct cli_op_spec *spec, int sig)
{
	if (sig == SIGWINCH)
		return spec->winsize_fd >= 0;
	if (sig == SIGQUIT)
		return spec->forward_signals;
	return true;
}

static int signals_catch(const struct cli_op_spec *spec,
			 struct saved_signals *ss)
{
	struct sigaction sa = { .sa_handler = on_signal };

	memset(ss, 0, sizeof(*ss));
	if (pipe2(ss->pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	signal_pipe = ss->pipe[1];
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++) {
		if (!wants_signal(spec, signals[i].sig))
			continue;
		ss->set[i] = sigaction(signals[i].sig, &sa, &ss->old[i]) == 0;
	}
	return 0;
}

static void signals_restore(struct saved_signals *ss)
{
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
		if (ss->set[i])
			sigaction(signals[i].sig, &ss->old[i], NULL);
	signal_pipe = -1;
	close(ss->pipe[0]);
	close(ss->pipe[1]);
}

static const char *signal_name(int sig)
{
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
		if (signals[i].sig == sig)
			return signals[i].name;
	return NULL;
}

/* ---- the progress bar ---- */

static void format_bytes(uint64_t b, char *buf, size_t n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB",
					     "TiB", "PiB" };
	double v = (double)b;
	size_t u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, n, "%llu B", (unsigned long long)b);
	else
		snprintf(buf, n, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v,
			 units[u]);
}

static void format_eta(double s, char *buf, size_t n)
{
	unsigned long t = s > 359999 ? 359999ul : (unsigned long)(s + 0.5);

	if (t >= 3600)
		snprintf(buf, n, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60,
			 t % 60);
	else
		snprintf(buf, n, "%lu:%02lu", t / 60, t % 60);
}

/* Bytes per second over the last RATE_WINDOW_US; < 0 while unknown. */
static double bar_rate(struct progress_bar *b, uint64_t now, uint64_t bytes)
{
	const struct rate_sample *old;

	if (b->n == RATE_SAMPLES) {
		b->first = (b->first + 1) % RATE_SAMPLES;
		b->n--;
	}
	b->s[(b->first + b->n) % RATE_SAMPLES] =
		(struct rate_sample){ now, bytes };
	b->n++;
	while (b->n > 2 && now - b->s[b->first].t_us > RATE_WINDOW_US) {
		b->first = (b->first + 1) % RATE_SAMPLES;
		b->n--;
	}
	old = &b->s[b->first];
	if (b->n < 2 || now - old->t_us < 200000 || bytes < old->bytes)
		return -1;
	return (double)(bytes - old->bytes) * 1e6 / (double)(now - old->t_us);
}

static size_t terminal_width(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	return 80;
}

/* Write text over what is on the line (no escape sequences: spaces
 * cover the rest of a longer line before). */
static void bar_put(struct progress_bar *b, const char *text)
{
	size_t n = strlen(text);

	fprintf(stderr, "\r%s", text);
	for (size_t i = n; i < b->drawn; i++)
		fputc(' ', stderr);
	if (n < b->drawn)
		fprintf(stderr, "\r%s", text);
	fflush(stderr);
	b->drawn = n;
}

static void bar_clear(struct progress_bar *b)
{
	if (!b->on || b->drawn == 0)
		return;
	bar_put(b, "");
	fputc('\r', stderr);
	fflush(stderr);
	b->drawn = 0;
}

/* Numbers of a progress object: false when the member is not one. */
static bool member_u64(json_t *o, const char *key, uint64_t *v)
{
	json_t *m = json_object_get(o, key);

	if (!json_is_integer(m) || json_integer_value(m) < 0)
		return false;
	*v = (uint64_t)json_integer_value(m);
	return true;
}

static void bar_draw(struct progress_bar *b, json_t *p)
{
	uint64_t now = vmic_mono_us(), bytes, total = 0, items, items_total;
	bool has_total, has_items;
	char done[32], all[32], rate_s[32], eta[32], line[512];
	size_t width = terminal_width(), off = 0;
	double rate;

	if (!b->on || !member_u64(p, "bytes", &bytes))
		return;
	has_total = member_u64(p, "total", &total) && total > 0;
	rate = bar_rate(b, now, bytes);
	if (b->drawn && now - b->last_draw_us < BAR_REDRAW_US)
		return;
	b->last_draw_us = now;
	format_bytes(bytes, done, sizeof(done));
	off += (size_t)snprintf(line + off, sizeof(line) - off, "%s", done);
	if (has_total) {
		unsigned pct = bytes >= total ? 100
					      : (unsigned)(bytes * 100 / total);
		size_t cells = width > 70 ? width - 60 : 10, full;

		format_bytes(total, all, sizeof(all));
		full = cells * (pct > 100 ? 100 : pct) / 100;
		off += (size_t)snprintf(line + off, sizeof(line) - off,
					" / %s %3u%% [", all, pct);
		for (size_t i = 0; i < cells && off + 1 < sizeof(line); i++)
			line[off++] = i < full ? '#' : '.';
		off += (size_t)snprintf(line + off, sizeof(line) - off, "]");
	}
	has_items = member_u64(p, "items", &items);
	if (has_items && member_u64(p, "items_total", &items_total))
		off += (size_t)snprintf(line + off, sizeof(line) - off,
					"  %llu/%llu", (unsigned long long)items,
					(unsigned long long)items_total);
	else if (has_items)
		off += (size_t)snprintf(line + off, sizeof(line) - off,
					"  %llu", (unsigned long long)items);
	if (rate >= 0) {
		format_bytes((uint64_t)rate, rate_s, sizeof(rate_s));
		off += (size_t)snprintf(line + off, sizeof(line) - off,
					"  %s/s", rate_s);
		if (has_total && rate > 0 && bytes < total) {
			format_eta((double)(total - bytes) / rate, eta,
				   sizeof(eta));
			off += (size_t)snprintf(line + off,
						sizeof(line) - off,
						"  %s left", eta);
		}
	}
	if (off >= width)
		line[width - 1] = '\0';
	bar_put(b, line);
}

/* ---- lines of the operation ---- */

int cli_op_send(struct cli_op *op, const char *name, json_t *value,
		const int *fds, size_t nfds, struct cli_error *e)
{
	json_t *o = json_pack("{s:i, s:o}", "id", OP_ID, name, value);
	int r;

	if (!o) {
		cli_error_set(e, CLI_ERR_LOCAL, "cannot build a message");
		return -ENOMEM;
	}
	r = cli_ctl_send_line(&op->c, o, fds, nfds, "a message", e);
	json_decref(o);
	return r;
}

/* Print a line as JSON (--json): {"name": value}. */
static int print_json_line(const char *name, json_t *value)
{
	json_t *o = json_pack("{s:O}", name, value);
	int r = o ? cli_print_json(o, true) : -ENOMEM;

	json_decref(o);
	return r;
}

/*
 * One line of the operation that is not its end: progress, a refused
 * message, or one of the command's own kinds. 0, or < 0 with e.
 */
static int handle_line(struct cli_op *op, json_t *line, struct cli_error *e)
{
	const char *name = NULL, *k;
	json_t *value = NULL, *v;
	char clean[1024];

	json_object_foreach(line, k, v) {
		if (strcmp(k, "id") == 0)
			continue;
		name = k;
		value = v;
		break;
	}
	if (!name) {
		cli_error_set(e, CLI_ERR_PROTOCOL,
			      "a line of the operation has only an id");
		return -EPROTO;
	}
	if (op->cli->json && strcmp(name, "rejected") != 0) {
		if (print_json_line(name, value) < 0) {
			cli_error_set(e, CLI_ERR_LOCAL,
				      "cannot print the operation's lines");
			return -EIO;
		}
	}
	if (strcmp(name, "progress") == 0) {
		if (json_is_object(value))
			bar_draw(&op->bar, value);
		return 0;
	}
	if (strcmp(name, "rejected") == 0) {
		/* A message of ours the daemon did not take: a bug here or
		 * there, not the operation's end. */
		bar_clear(&op->bar);
		cli_clean_text(json_string_value(
				       json_object_get(value, "message")),
			       clean, sizeof(clean));
		fprintf(stderr, "vmic: vmic-hostd did not take a message: %s\n",
			clean);
		return 0;
	}
	if (op->spec->on_line)
		return op->spec->on_line(op->spec->ud, op, name, value, e);
	if (strcmp(name, "warning") == 0 && json_is_string(value) &&
	    !op->cli->json) {
		bar_clear(&op->bar);
		cli_clean_text(json_string_value(value), clean, sizeof(clean));
		fprintf(stderr, "vmic: warning: %s\n", clean);
	}
	return 0;
}

/* A line's id must be ours (or null, the id of a reply to a line that
 * the daemon could not read). */
static bool line_is_ours(json_t *line)
{
	json_t *id = json_object_get(line, "id");

	return !id || json_is_null(id) ||
	       (json_is_integer(id) && json_integer_value(id) == OP_ID);
}

/*
 * The end: {"ok": ...}. The exit status, after printing the result or
 * reporting the error.
 */
static int handle_end(struct cli_op *op, json_t *line)
{
	json_t *ok = json_object_get(line, "ok");
	json_t *result = json_object_get(line, "result");
	json_t *err = json_object_get(line, "error");
	struct cli_error e = { 0 };
	const char *code = NULL, *message = NULL;

	bar_clear(&op->bar);
	if (json_is_true(ok) && json_is_object(result)) {
		if (op->cli->json && print_json_line("result", result) < 0)
			return 1;
		if (op->spec->on_result)
			return op->spec->on_result(op->spec->ud, result,
						   op->cli->json);
		return 0;
	}
	if (!json_is_false(ok) ||
	    json_unpack(err, "{s:s, s:s}", "code", &code, "message",
			&message) < 0) {
		cli_error_set(&e, CLI_ERR_PROTOCOL,
			      "the operation's end is neither a result nor "
			      "an error with a code and a message");
		return cli_report(op->cli, &e);
	}
	cli_error_set(&e,
		      strcmp(code, "permission-denied") == 0 ? CLI_ERR_ACCESS
							      : CLI_ERR_DAEMON,
		      "%s", message);
	snprintf(e.code, sizeof(e.code), "%s", code);
	cli_report(op->cli, &e);
	if (strcmp(code, "cancelled") == 0 && op->cancel_signal)
		return 128 + op->cancel_signal;
	return 1;
}

/* ---- signals ---- */

static int send_winsize(struct cli_op *op, struct cli_error *e)
{
	struct winsize ws;

	if (ioctl(op->spec->winsize_fd, TIOCGWINSZ, &ws) < 0)
		return 0; /* no terminal any more: nothing to say */
	return cli_op_send(op,
			   "winsize",
			   json_pack("[i, i]", (int)ws.ws_row, (int)ws.ws_col),
			   NULL, 0, e);
}

/*
 * A signal came: pass it on, or cancel. > 0 when the user insists (a
 * second cancel): the exit status, the connection left to be closed.
 */
static int handle_signal(struct cli_op *op, int sig, struct cli_error *e)
{
	if (sig == SIGWINCH)
		return send_winsize(op, e) < 0 ? -1 : 0;
	if (op->spec->forward_signals)
		return cli_op_send(op, "signal", json_string(signal_name(sig)),
				   NULL, 0, e) < 0
			       ? -1
			       : 0;
	if (op->sent_cancel) {
		bar_clear(&op->bar);
		fprintf(stderr, "vmic: stopped waiting; the connection closes, "
				"which cancels the operation\n");
		return 128 + sig;
	}
	op->sent_cancel = true;
	op->cancel_signal = sig;
	if (op->bar.on) {
		bar_clear(&op->bar);
		fprintf(stderr, "vmic: cancelling (again to stop waiting)\n");
	}
	return cli_op_send(op, "cancel", json_true(), NULL, 0, e) < 0 ? -1 : 0;
}

/* ---- the loop ---- */

/*
 * The connection ended before the operation did: vmic-hostd stopped,
 * crashed or was restarted under it.
 */
static int daemon_went_away(struct cli_op *op, ssize_t r)
{
	struct cli_error e = { 0 };

	bar_clear(&op->bar);
	cli_error_set(&e, CLI_ERR_IO,
		      "vmic-hostd went away in the middle of the operation "
		      "(%s): it stopped or restarted, and the operation "
		      "ended with it; its log (journalctl -u vmic-hostd) "
		      "may say why",
		      r == 0 ? "it closed the connection" : strerror((int)-r));
	return cli_report(op->cli, &e);
}

/* Read and handle what came; an exit status when the operation ended,
 * else -1 to go on. */
static int read_lines(struct cli_op *op)
{
	struct cli_error e = { 0 };
	json_t *line = NULL;
	ssize_t n = cli_ctl_read_some(&op->c);
	int r;

	if (n == -EAGAIN)
		return -1;
	if (n == -EMSGSIZE) {
		cli_error_set(&e, CLI_ERR_PROTOCOL,
			      "a line of the operation is too long");
		return cli_report(op->cli, &e);
	}
	while ((r = cli_ctl_next_line(&op->c, &line, &e)) > 0) {
		if (!line_is_ours(line)) {
			json_decref(line);
			cli_error_set(&e, CLI_ERR_PROTOCOL,
				      "a line answers another request (id)");
			return cli_report(op->cli, &e);
		}
		if (json_object_get(line, "ok")) {
			r = handle_end(op, line);
			json_decref(line);
			return r;
		}
		r = handle_line(op, line, &e);
		json_decref(line);
		if (r < 0) {
			bar_clear(&op->bar);
			return cli_report(op->cli, &e);
		}
	}
	if (r < 0)
		return cli_report(op->cli, &e);
	if (n <= 0)
		return daemon_went_away(op, n);
	return -1;
}

static int run_loop(struct cli_op *op, int sig_fd)
{
	struct cli_error e = { 0 };
	int status;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = op->c.fd, .events = POLLIN },
			{ .fd = sig_fd, .events = POLLIN },
		};
		unsigned char sig;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			cli_error_set(&e, CLI_ERR_LOCAL, "poll: %s",
				      strerror(errno));
			return cli_report(op->cli, &e);
		}
		while (p[1].revents && read(sig_fd, &sig, 1) == 1) {
			status = handle_signal(op, sig, &e);
			/* A message that cannot go: the daemon is gone,
			 * which reading shows next. */
			if (status > 0)
				return status;
		}
		if (p[0].revents) {
			status = read_lines(op);
			if (status >= 0)
				return status;
		}
	}
}

/* The request did not go out whole: a daemon that refused at once may
 * have said why before it hung up (permission-denied, a limit). */
static int send_failed(struct cli_op *op, const struct cli_error *send_err)
{
	struct cli_error e = { 0 };
	json_t *line = NULL;
	int status;

	if (send_err->kind == CLI_ERR_IO &&
	    cli_ctl_recv(&op->c, 1000, &line, &e) == 0 &&
	    json_object_get(line, "ok")) {
		status = handle_end(op, line);
		json_decref(line);
		return status;
	}
	json_decref(line);
	return cli_report(op->cli, send_err);
}

int cli_op_run(struct cli *cli, json_t *req, const struct cli_op_spec *spec)
{
	struct cli_op op = { .cli = cli, .spec = spec };
	struct saved_signals ss;
	struct cli_error e = { 0 };
	int r, status;

	if (!req) {
		cli_error_set(&e, CLI_ERR_LOCAL, "cannot build the request");
		return cli_report(cli, &e);
	}
	op.bar.on = !cli->json && isatty(STDERR_FILENO);
	r = cli_ctl_open(&op.c, cli->socket_path, &e);
	if (r < 0) {
		json_decref(req);
		return cli_report(cli, &e);
	}
	if (signals_catch(spec, &ss) < 0) {
		cli_ctl_close(&op.c);
		json_decref(req);
		cli_error_set(&e, CLI_ERR_LOCAL, "cannot catch signals: %s",
			      strerror(errno));
		return cli_report(cli, &e);
	}
	if (json_object_set_new(req, "id", json_integer(OP_ID)) < 0) {
		cli_error_set(&e, CLI_ERR_LOCAL, "cannot build the request");
		r = -ENOMEM;
	} else {
		r = cli_ctl_send_line(&op.c, req, spec->fds, spec->nfds,
				      "the request", &e);
	}
	json_decref(req);
	if (r == 0)
		status = run_loop(&op, ss.pipe[0]);
	else
		status = send_failed(&op, &e);
	signals_restore(&ss);
	cli_ctl_close(&op.c);
	return status;
}
