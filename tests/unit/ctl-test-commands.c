/* SPDX-License-Identifier: MIT */
/* The tests' own control commands: see ctl-test-commands.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl-test-commands.h"

#define ANY_STREAM (CTL_FD_PIPE | CTL_FD_SOCKET | CTL_FD_TTY | CTL_FD_CHAR)

struct ctl_test_counts ctl_test_counts;
unsigned ctl_test_max_ticks;

static const char *kind_name(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return "unknown";
	if (S_ISREG(st.st_mode))
		return "file";
	if (S_ISFIFO(st.st_mode))
		return "pipe";
	if (S_ISSOCK(st.st_mode))
		return "socket";
	if (S_ISCHR(st.st_mode))
		return isatty(fd) ? "terminal" : "char";
	return "other";
}

/* The first bytes of a regular file, as a string ("" for others). */
static json_t *first_bytes(int fd)
{
	char buf[65];
	ssize_t n = 0;
	struct stat st;

	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		n = 0;
	return json_stringn(buf, (size_t)n);
}

static void cmd_read(struct ctl_request *rq, struct vm *vm UNUSED,
		     json_t *args)
{
	int fd = ctl_request_fd(rq, 0);

	if (!ctl_args_unpack(rq, "t-read", args, "{}"))
		return;
	ctl_reply_ok(rq, json_pack("{s:s, s:o}", "kind", kind_name(fd), "data",
				   first_bytes(fd)));
}

static void cmd_write(struct ctl_request *rq, struct vm *vm UNUSED,
		      json_t *args)
{
	static const char text[] = "written by vmic-hostd\n";
	int fd = ctl_request_take_fd(rq, 0);
	ssize_t n;

	if (!ctl_args_unpack(rq, "t-write", args, "{}")) {
		close(fd);
		return;
	}
	n = write(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0) {
		ctl_reply_error(rq, "failed", "write: %s", strerror(errno));
		return;
	}
	ctl_reply_ok(rq, json_pack("{s:I}", "written", (json_int_t)n));
}

static void cmd_two(struct ctl_request *rq, struct vm *vm UNUSED,
		    json_t *args)
{
	if (!ctl_args_unpack(rq, "t-two", args, "{}"))
		return;
	ctl_reply_ok(rq, json_pack("{s:i}", "fds", ctl_request_nfds(rq)));
}

static void cmd_tty(struct ctl_request *rq, struct vm *vm UNUSED,
		    json_t *args)
{
	if (!ctl_args_unpack(rq, "t-tty", args, "{}"))
		return;
	ctl_reply_ok(rq, json_pack("{s:s}", "kind",
				   kind_name(ctl_request_fd(rq, 0))));
}

/* ---- t-op ---- */

struct top {
	struct ctl_op *op;
	struct hostd *h;
	json_t *messages; /* [{"NAME": VALUE}, ...] as they came */
	unsigned msg_fds;
	uv_timer_t timer;
	bool timer_on;
	unsigned ticks, tick;
	uint64_t total;
	bool finish_after_ticks, end_on_signal;
};

static void top_free(uv_handle_t *h)
{
	struct top *t = h->data;

	json_decref(t->messages);
	free(t);
}

/* The operation ended: the owner's state goes (its timer first). */
static void top_release(struct top *t)
{
	ctl_test_counts.ended++;
	uv_close((uv_handle_t *)&t->timer, top_free);
}

static void top_finish(struct top *t)
{
	struct ctl_op *op = t->op;
	int in = ctl_op_fd(op, 0);
	json_t *r = json_pack("{s:O, s:i, s:i, s:s}", "messages", t->messages,
			      "fds", ctl_op_nfds(op), "msg_fds", t->msg_fds,
			      "input", in >= 0 ? kind_name(in) : "none");

	ctl_op_end(op, r);
	top_release(t);
}

static void on_tick(uv_timer_t *timer)
{
	struct top *t = timer->data;
	uint64_t bytes;

	t->tick++;
	bytes = t->ticks ? t->total * t->tick / t->ticks : 0;
	ctl_op_progress(t->op, json_pack("{s:I, s:I, s:i, s:i}", "bytes",
					 (json_int_t)bytes, "total",
					 (json_int_t)t->total, "items", t->tick,
					 "items_total", t->ticks));
	if (t->tick < t->ticks)
		return;
	uv_timer_stop(timer);
	if (t->finish_after_ticks)
		top_finish(t);
}

/* N progress lines of 16 KiB each at once: a client that does not read
 * holds one of them at most. */
static void top_burst(struct top *t, json_int_t n)
{
	static char pad[16384];

	memset(pad, 'p', sizeof(pad) - 1);
	for (json_int_t i = 1; i <= n; i++)
		ctl_op_progress(t->op, json_pack("{s:I, s:s}", "bytes", i,
						 "pad", pad));
}

static void top_message(void *ud, struct ctl_op *op, const char *name,
			json_t *value, int *fds, unsigned nfds)
{
	struct top *t = ud;
	char buf[64];
	ssize_t n;

	ctl_test_counts.messages++;
	ctl_test_counts.msg_fds += nfds;
	t->msg_fds += nfds;
	json_array_append_new(t->messages, json_pack("{s:O}", name, value));
	if (strcmp(name, "say") == 0 || strcmp(name, "winsize") == 0) {
		ctl_op_send(op, "heard", json_incref(value));
	} else if (strcmp(name, "progress") == 0) {
		ctl_op_progress(op, json_incref(value));
	} else if (strcmp(name, "burst") == 0) {
		top_burst(t, json_integer_value(value));
	} else if (strcmp(name, "finish") == 0) {
		top_finish(t);
	} else if (strcmp(name, "fail") == 0) {
		ctl_op_fail(op, "failed", "%s",
			    json_is_string(value) ? json_string_value(value)
						  : "asked to fail");
		top_release(t);
	} else if (strcmp(name, "signal") == 0 && t->end_on_signal) {
		top_finish(t);
	} else if (strcmp(name, "file") == 0 && nfds == 1) {
		n = pread(fds[0], buf, sizeof(buf), 0);
		ctl_op_send(op, "read",
			    json_stringn(buf, n > 0 ? (size_t)n : 0));
	}
}

static void top_cancel(void *ud, struct ctl_op *op, enum ctl_op_cancel why)
{
	struct top *t = ud;

	ctl_test_counts.cancels[why]++;
	uv_timer_stop(&t->timer);
	ctl_op_fail(op, "cancelled", "%s", ctl_op_cancel_text(why));
	top_release(t);
}

static const char *const top_messages[] = {
	"say", "progress", "burst", "finish", "fail", "signal", "winsize",
	"file", NULL,
};
static const struct ctl_fd_spec top_msg_fds[] = {
	{ "file", CTL_FD_FILE, CTL_FD_READ, true },
};
static const struct ctl_op_ops top_ops = {
	.messages = top_messages,
	.msg_fds = top_msg_fds,
	.msg_nfds = 1,
	.on_message = top_message,
	.on_cancel = top_cancel,
};

static void cmd_op(struct ctl_request *rq, struct vm *unused UNUSED,
		   json_t *args)
{
	struct hostd *h = ctl_request_hostd(rq);
	const char *vmname = NULL, *end = NULL, *warn = NULL;
	json_int_t ticks = 0, interval = 10, total = 0;
	int end_on_signal = 0;
	struct vm *vm = NULL;
	struct top *t;

	if (!ctl_args_unpack(rq, "t-op", args,
			     "{s?s, s?I, s?I, s?I, s?s, s?b, s?s}", "vm",
			     &vmname, "ticks", &ticks, "interval_ms",
			     &interval, "total", &total, "end", &end,
			     "end_on_signal", &end_on_signal, "warn", &warn))
		return;
	if (vmname && !(vm = vm_find(h, vmname))) {
		ctl_reply_error(rq, "unknown-vm", "no VM named '%s'", vmname);
		return;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	t->h = h;
	t->messages = json_array();
	t->ticks = ticks > 0 && ticks < 100000000 ? (unsigned)ticks : 0;
	if (ctl_test_max_ticks && t->ticks > ctl_test_max_ticks)
		t->ticks = ctl_test_max_ticks;
	t->total = total > 0 ? (uint64_t)total : 0;
	t->finish_after_ticks = end && strcmp(end, "finish") == 0;
	t->end_on_signal = end_on_signal;
	t->op = ctl_op_start(rq, vm, &top_ops, t);
	if (!t->op) {
		json_decref(t->messages);
		free(t);
		return;
	}
	ctl_test_counts.started++;
	uv_timer_init(h->loop, &t->timer);
	t->timer.data = t;
	if (warn)
		ctl_op_send(t->op, "warning", json_string(warn));
	if (t->ticks)
		uv_timer_start(&t->timer, on_tick,
			       interval > 0 ? (uint64_t)interval : 1,
			       interval > 0 ? (uint64_t)interval : 1);
}

static const struct ctl_fd_spec read_fds[] = {
	{ "source", CTL_FD_FILE | ANY_STREAM, CTL_FD_READ, false },
};
static const struct ctl_fd_spec write_fds[] = {
	{ "destination", CTL_FD_FILE | CTL_FD_PIPE, CTL_FD_WRITE, false },
};
static const struct ctl_fd_spec two_fds[] = {
	{ "source", CTL_FD_FILE | CTL_FD_PIPE, CTL_FD_READ, false },
	{ "destination", CTL_FD_FILE | CTL_FD_PIPE, CTL_FD_WRITE, true },
};
static const struct ctl_fd_spec tty_fds[] = {
	{ "terminal", CTL_FD_TTY, CTL_FD_READ | CTL_FD_WRITE, false },
};
static const struct ctl_fd_spec op_fds[] = {
	{ "input", CTL_FD_FILE | ANY_STREAM, CTL_FD_READ, true },
};

const struct ctl_command ctl_test_commands[] = {
	{ "t-read", cmd_read, false, "", "test: read a descriptor", read_fds,
	  1 },
	{ "t-write", cmd_write, false, "", "test: write a descriptor",
	  write_fds, 1 },
	{ "t-two", cmd_two, false, "", "test: two descriptors", two_fds, 2 },
	{ "t-tty", cmd_tty, false, "", "test: a terminal", tty_fds, 1 },
	{ "t-op", cmd_op, false,
	  "vm (string), ticks, interval_ms, total (integers), end (string), "
	  "end_on_signal (boolean), warn (string)",
	  "test: an operation", op_fds, 1 },
};
const size_t ctl_test_command_count = ARRAY_SIZE(ctl_test_commands);
