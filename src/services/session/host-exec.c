/* SPDX-License-Identifier: MIT */
/*
 * `session-exec`: a command or a login shell in the guest, as a long
 * operation of the control socket (docs/control.md). The client hands
 * over its stdin, stdout and stderr; the host pumps stdin into a stream
 * and sinks the guest's stdout and stderr streams into the others, so
 * the bytes flow under the link's flow control with no cap and no copy
 * kept here. The operation ends with the command's exit (EXIT from the
 * guest, after its output streams ended), or with an error when the
 * guest, the client or the daemon goes away; the guest then ends the
 * command's processes (CLOSE, or its own end of the session).
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "proto/services.h"
#include "services/session/host.h"

#define ID VMIC_SVC_SESSION
/* The command line as events show it: escaped, cut after this. */
#define CMDLINE_MAX 256
/* How long the guest may take to start a command. */
#define OPEN_TIMEOUT_MS 15000

struct ss_host_session {
	struct ss_host_session *next;
	struct vm *vm;
	struct ctl_op *op;
	uint32_t id;
	uint32_t req; /* the OPEN waiting for its answer, 0 */
	struct vmic_fdstream *in, *out, *err;
	bool started, exited;
	struct vmic_ss_exit exit;
	uint32_t pid;
	uid_t uid;
	char host_user[64];
	char guest_user[VMIC_SS_USER_MAX + 1];
	char cmdline[CMDLINE_MAX + 8];
};

/* ---- text for events ---- */

static void host_user_name(uid_t uid, char *buf, size_t n)
{
	struct passwd pw, *res = NULL;
	char pwbuf[2048];

	if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res)
		snprintf(buf, n, "%s (uid %u)", pw.pw_name, (unsigned)uid);
	else
		snprintf(buf, n, "uid %u", (unsigned)uid);
}

/* Append one argument, quoted when it holds a space or is empty, every
 * byte outside printable ASCII as \xHH; false once it does not fit. */
static bool cmdline_add(char *buf, size_t *off, const char *arg)
{
	bool quote = !arg[0] || strpbrk(arg, " '\"") != NULL;
	char tmp[8];

	if (*off && *off < CMDLINE_MAX)
		buf[(*off)++] = ' ';
	if (quote && *off < CMDLINE_MAX)
		buf[(*off)++] = '\'';
	for (const unsigned char *p = (const unsigned char *)arg; *p; p++) {
		size_t len;

		if (*p >= 0x20 && *p < 0x7f && *p != '\\' && *p != '\'') {
			tmp[0] = (char)*p;
			len = 1;
		} else {
			len = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", *p);
		}
		if (*off + len > CMDLINE_MAX)
			return false;
		memcpy(buf + *off, tmp, len);
		*off += len;
	}
	if (quote && *off < CMDLINE_MAX)
		buf[(*off)++] = '\'';
	return *off < CMDLINE_MAX;
}

static void cmdline_make(char *buf, json_t *argv, bool shell)
{
	size_t off = 0, i;
	json_t *a;

	if (shell) {
		snprintf(buf, CMDLINE_MAX, "(login shell)");
		return;
	}
	json_array_foreach(argv, i, a) {
		if (!cmdline_add(buf, &off, json_string_value(a))) {
			memcpy(buf + (off < CMDLINE_MAX ? off : CMDLINE_MAX),
			       "...", 4);
			return;
		}
	}
	buf[off] = '\0';
}

/* ---- the end ---- */

static void unlink_session(struct ss_host_session *s)
{
	struct ss_vm *sv = ss_vm_of(s->vm);
	struct ss_host_session **pp = &sv->list;

	while (*pp && *pp != s)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = s->next;
		sv->count--;
	}
}

static void stop_streams(struct ss_host_session *s, const char *why)
{
	if (s->in)
		vmic_fdstream_cancel(s->in, VMIC_E_FAILED, why);
	if (s->out)
		vmic_fdstream_cancel(s->out, VMIC_E_FAILED, why);
	if (s->err)
		vmic_fdstream_cancel(s->err, VMIC_E_FAILED, why);
	s->in = s->out = s->err = NULL;
}

/* Tell the guest to end the command's processes. */
static void send_close(struct ss_host_session *s, const char *why)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_SS_CLOSE_MAX_LEN];
	struct vmic_ss_close m = { .session = s->id };
	struct vmic_frame f = { .service = ID, .type = VMIC_SS_CLOSE };
	int n;

	if (!s->started || s->exited || !conn_up(s->vm))
		return;
	snprintf(m.reason, sizeof(m.reason), "%.*s", VMIC_SS_REASON_MAX, why);
	n = vmic_ss_close_encode(&m, buf + VMIC_HDR_SIZE,
				 VMIC_SS_CLOSE_MAX_LEN);
	if (n < 0)
		return;
	f.length = (uint32_t)n;
	f.payload = buf + VMIC_HDR_SIZE;
	vmic_frame_put_header(buf, &f);
	conn_send(s->vm, buf, VMIC_HDR_SIZE + (size_t)n);
}

static void session_free(struct ss_host_session *s, const char *outcome)
{
	if (s->started)
		events_emit(vm_hostd(s->vm), vm_name(s->vm), "session",
			    "session-end", NULL, NULL,
			    "session of host user %s as guest user %s ended "
			    "(%s): %s",
			    s->host_user, s->guest_user, outcome, s->cmdline);
	unlink_session(s);
	free(s);
}

static void session_fail(struct ss_host_session *s, const char *code,
			 const char *fmt, ...) PRINTF_LIKE(3, 4);

static void session_fail(struct ss_host_session *s, const char *code,
			 const char *fmt, ...)
{
	char msg[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s->req)
		request_cancel(s->vm, s->req);
	s->req = 0;
	stop_streams(s, msg);
	send_close(s, msg);
	ctl_op_fail(s->op, code, "%s", msg);
	session_free(s, msg);
}

/* The exit status vmic gives: the command's, 128 + a signal, 124 for a
 * timeout (as timeout(1)), 255 when it was ended from here. */
static int exit_status(const struct vmic_ss_exit *e)
{
	switch (e->how) {
	case VMIC_SS_EXIT_STATUS:
		return e->value;
	case VMIC_SS_EXIT_SIGNAL:
		return 128 + e->value;
	case VMIC_SS_EXIT_TIMEOUT:
		return 124;
	}
	return 255;
}

static const char *how_name(uint8_t how)
{
	static const char *const names[] = { "exited", "signal", "timeout",
					     "closed" };

	return how < ARRAY_SIZE(names) ? names[how] : "closed";
}

/* Exited and every output byte written: the operation's result. */
static void maybe_finish(struct ss_host_session *s)
{
	const char *sig;
	char outcome[96];
	json_t *res;

	if (!s->exited || s->out || s->err)
		return;
	stop_streams(s, "the command ended");
	sig = s->exit.how == VMIC_SS_EXIT_SIGNAL
		      ? vmic_ss_signal_name(s->exit.value)
		      : NULL;
	res = json_pack("{s:s, s:i, s:i, s:I, s:s}", "how",
			how_name(s->exit.how), "exit_status",
			exit_status(&s->exit), "value", (int)s->exit.value,
			"pid", (json_int_t)s->pid, "user", s->guest_user);
	if (res && s->exit.how == VMIC_SS_EXIT_SIGNAL)
		json_object_set_new(res, "signal",
				    sig ? json_string(sig) : json_null());
	snprintf(outcome, sizeof(outcome), "%s, exit status %d",
		 how_name(s->exit.how), exit_status(&s->exit));
	ctl_op_end(s->op, res);
	session_free(s, outcome);
}

void ss_host_exit(struct vm *vm, const struct vmic_ss_exit *m)
{
	struct ss_vm *sv = ss_vm_of(vm);

	for (struct ss_host_session *s = sv->list; s; s = s->next) {
		if (s->id == m->session && s->started && !s->exited) {
			s->exited = true;
			s->exit = *m;
			maybe_finish(s);
			return;
		}
	}
}

void ss_host_lost(struct vm *vm, const char *why)
{
	struct ss_vm *sv = ss_vm_of(vm);

	while (sv && sv->list)
		session_fail(sv->list, "not-connected",
			     "the session in '%s' ended: %s; the guest agent "
			     "ends its processes",
			     vm_name(vm), why);
}

/* ---- streams ---- */

static void on_in_done(void *ud, struct vmic_fdstream *f, int err,
		       uint16_t code, const char *message)
{
	struct ss_host_session *s = ud;

	(void)f;
	(void)code;
	/* EOF went to the guest (the command reads EOF), or the command
	 * closed its stdin: either way the session goes on. */
	if (err)
		log_debug("session %u: stdin: %s", s->id, message);
	s->in = NULL;
}

static void on_out_done(void *ud, struct vmic_fdstream *f, int err,
			uint16_t code, const char *message)
{
	struct ss_host_session *s = ud;

	(void)code;
	/* A client that closed its stdout (-EPIPE) resets the stream: the
	 * command gets SIGPIPE, as it would locally. */
	if (err)
		log_debug("session %u: output: %s", s->id, message);
	if (f == s->out)
		s->out = NULL;
	else if (f == s->err)
		s->err = NULL;
	maybe_finish(s);
}

static const struct vmic_fdstream_ops in_ops = { .on_done = on_in_done };
static const struct vmic_fdstream_ops out_ops = { .on_done = on_out_done };

/* ---- the guest's answer to OPEN ---- */

static const char *refusal_code(uint16_t code)
{
	switch (code) {
	case VMIC_E_BUSY:
		return "limit";
	case VMIC_E_DISABLED:
	case VMIC_E_VERSION:
		return "service-unavailable";
	case VMIC_E_FAILED:
		return "failed";
	}
	return "refused";
}

static void started(struct ss_host_session *s, const struct vmic_frame *a)
{
	struct vmic_ss_started m;

	if (vmic_ss_started_decode(a->payload, a->length, &m) < 0) {
		vm_bad_frame(s->vm);
		session_fail(s, "internal",
			     "the guest's answer to a session does not "
			     "decode");
		return;
	}
	s->started = true;
	s->pid = m.pid;
	snprintf(s->guest_user, sizeof(s->guest_user), "%s", m.user);
	events_emit(vm_hostd(s->vm), vm_name(s->vm), "session",
		    "session-start", NULL, NULL,
		    "host user %s opened a session as guest user %s "
		    "(pid %u): %s",
		    s->host_user, s->guest_user, (unsigned)s->pid, s->cmdline);
	ctl_op_send(s->op, "started",
		    json_pack("{s:I, s:s}", "pid", (json_int_t)m.pid, "user",
			      m.user));
}

static bool on_open_answer(struct vm *vm, void *ud,
			   const struct vmic_frame *a, int err)
{
	struct ss_host_session *s = ud;
	char text[VMIC_ERROR_MSG_MAX + 1];
	uint16_t code;

	(void)vm;
	s->req = 0;
	if (err) {
		session_fail(s, err == -ETIMEDOUT ? "timeout" : "not-connected",
			     "the guest agent of '%s' %s", vm_name(s->vm),
			     err == -ETIMEDOUT
				     ? "did not start the command in time"
				     : "went away before the command started");
	} else if (a->type == VMIC_SS_STARTED) {
		started(s, a);
	} else {
		code = conn_peer_error(a, text, sizeof(text));
		session_fail(s, refusal_code(code), "the guest refused: %s",
			     text);
	}
	return false;
}

/* ---- the client's messages ---- */

static void send_small(struct ss_host_session *s, uint8_t type,
		       const uint8_t *payload, size_t n)
{
	uint8_t buf[VMIC_HDR_SIZE + 16];
	struct vmic_frame f = { .service = ID, .type = type,
				.length = (uint32_t)n, .payload = payload };

	if (!s->started || s->exited || n > 16)
		return;
	memcpy(buf + VMIC_HDR_SIZE, payload, n);
	vmic_frame_put_header(buf, &f);
	conn_send(s->vm, buf, VMIC_HDR_SIZE + n);
}

static void on_message(void *ud, struct ctl_op *op, const char *name,
		       json_t *value, int *fds, unsigned nfds)
{
	struct ss_host_session *s = ud;
	uint8_t p[16];
	int n;

	(void)op;
	(void)fds;
	(void)nfds;
	if (strcmp(name, "signal") == 0 && json_is_string(value)) {
		struct vmic_ss_signal m = {
			.session = s->id,
			.signo = (uint8_t)vmic_ss_signal_number(
				json_string_value(value)),
		};

		if (m.signo && (n = vmic_ss_signal_encode(&m, p, sizeof(p))) > 0)
			send_small(s, VMIC_SS_SIGNAL, p, (size_t)n);
	} else if (strcmp(name, "winsize") == 0) {
		json_int_t rows = 0, cols = 0;
		struct vmic_ss_winsize m = { .session = s->id };

		if (json_unpack(value, "[I, I]", &rows, &cols) < 0 ||
		    rows < 1 || rows > 65535 || cols < 1 || cols > 65535)
			return;
		m.rows = (uint16_t)rows;
		m.cols = (uint16_t)cols;
		if ((n = vmic_ss_winsize_encode(&m, p, sizeof(p))) > 0)
			send_small(s, VMIC_SS_WINSIZE, p, (size_t)n);
	}
}

static void on_cancel(void *ud, struct ctl_op *op, enum ctl_op_cancel why)
{
	struct ss_host_session *s = ud;

	(void)op;
	session_fail(s, "cancelled", "%s", ctl_op_cancel_text(why));
}

static const char *const op_messages[] = { "signal", "winsize", NULL };

static const struct ctl_op_ops op_ops = {
	.messages = op_messages,
	.on_message = on_message,
	.on_cancel = on_cancel,
};

/* ---- the command ---- */

/* What the request asks for, checked. */
struct exec_args {
	json_t *argv, *env, *winsize;
	const char *user, *cwd, *term;
	json_int_t timeout;
	int tty, shell, merge;
};

/* Strings of a JSON array into out (at most max of at most len bytes);
 * the count, or -1 after replying. */
static int strings_of(struct ctl_request *rq, json_t *arr, const char *what,
		      struct vmic_ss_str *out, size_t max, size_t len)
{
	size_t i;
	json_t *v;

	if (!arr)
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > max) {
		ctl_reply_error(rq, "invalid-argument",
				"%s must be an array of at most %zu strings",
				what, max);
		return -1;
	}
	json_array_foreach(arr, i, v) {
		const char *str = json_string_value(v);
		size_t n = str ? json_string_length(v) : 0;

		if (!str || n > len || strlen(str) != n) {
			ctl_reply_error(rq, "invalid-argument",
					"%s[%zu] must be a string of at most "
					"%zu bytes without NUL",
					what, i, len);
			return -1;
		}
		out[i].p = str;
		out[i].n = (uint16_t)n;
	}
	return (int)i;
}

static bool copy_field(struct ctl_request *rq, char *dst, size_t size,
		       const char *src, const char *what)
{
	if (strlen(src) >= size) {
		ctl_reply_error(rq, "invalid-argument",
				"%s is longer than %zu bytes", what, size - 1);
		return false;
	}
	memcpy(dst, src, strlen(src) + 1);
	return true;
}

/* Fill m from a; false after replying. */
static bool open_from_args(struct ctl_request *rq, const struct exec_args *a,
			   struct vmic_ss_open *m)
{
	json_int_t rows = 0, cols = 0;
	int n;

	m->flags = (a->tty ? VMIC_SS_F_TTY : 0) |
		   (a->shell ? VMIC_SS_F_SHELL | VMIC_SS_F_TTY : 0) |
		   (a->merge ? VMIC_SS_F_MERGE : 0);
	if (a->timeout < 0 || a->timeout > VMIC_SS_TIMEOUT_MAX) {
		ctl_reply_error(rq, "invalid-argument",
				"timeout must be 0..%u seconds",
				VMIC_SS_TIMEOUT_MAX);
		return false;
	}
	m->timeout_s = (uint32_t)a->timeout;
	if (a->winsize &&
	    (json_unpack(a->winsize, "[I, I]", &rows, &cols) < 0 || rows < 0 ||
	     rows > 65535 || cols < 0 || cols > 65535)) {
		ctl_reply_error(rq, "invalid-argument",
				"winsize must be [rows, cols], each 0..65535");
		return false;
	}
	m->rows = (uint16_t)rows;
	m->cols = (uint16_t)cols;
	if (!copy_field(rq, m->user, sizeof(m->user), a->user, "user") ||
	    !copy_field(rq, m->cwd, sizeof(m->cwd), a->cwd, "cwd") ||
	    !copy_field(rq, m->term, sizeof(m->term), a->term, "term"))
		return false;
	n = strings_of(rq, a->argv, "argv", m->argv, VMIC_SS_ARGC_MAX,
		       VMIC_SS_ARG_MAX);
	if (n < 0)
		return false;
	m->argc = (uint16_t)n;
	if (a->shell ? m->argc != 0 : m->argc == 0) {
		ctl_reply_error(rq, "invalid-argument",
				a->shell ? "a shell takes no argv"
					 : "argv must name a command");
		return false;
	}
	n = strings_of(rq, a->env, "env", m->env, VMIC_SS_ENVC_MAX,
		       VMIC_SS_ENV_MAX);
	if (n < 0)
		return false;
	m->envc = (uint16_t)n;
	for (uint16_t i = 0; i < m->envc; i++) {
		const char *eq = memchr(m->env[i].p, '=', m->env[i].n);

		if (!eq || eq == m->env[i].p) {
			ctl_reply_error(rq, "invalid-argument",
					"env[%u] must be NAME=VALUE", i);
			return false;
		}
	}
	return true;
}

/* The command's stream ids once they are open; then the request. */
static int open_streams(struct ss_host_session *s, struct vmic_ss_open *m)
{
	/* The output streams open here before the guest opens its ends: a
	 * window beyond the implicit credit would be granted at once, in a
	 * CREDIT frame the guest drops as late (its end is not open yet),
	 * and the two sides would disagree on the credit. */
	static const struct vmic_fdstream_opts out_opts = {
		.window = VMIC_STREAM_INITIAL_CREDIT,
	};
	struct vmic_link *l = vm_link(s->vm);
	int r;

	if (!l)
		return -ENOTCONN;
	r = vmic_fdstream_sink(l, 0, ID, ctl_op_fd(s->op, 1), &out_opts,
			       &out_ops, s, &s->out);
	if (r == 0 && !(m->flags & (VMIC_SS_F_TTY | VMIC_SS_F_MERGE)))
		r = vmic_fdstream_sink(l, 0, ID, ctl_op_fd(s->op, 2),
				       &out_opts, &out_ops, s, &s->err);
	if (r == 0)
		r = vmic_fdstream_pump(l, 0, ID, ctl_op_fd(s->op, 0), NULL,
				       &in_ops, s, &s->in);
	if (r < 0)
		return r;
	m->in_stream = vmic_fdstream_id(s->in);
	m->out_stream = vmic_fdstream_id(s->out);
	m->err_stream = s->err ? vmic_fdstream_id(s->err) : 0;
	return 0;
}

static void session_begin(struct ss_host_session *s, struct vmic_ss_open *m)
{
	uint8_t *payload = malloc(VMIC_SS_OPEN_MAX_LEN);
	char msg[300];
	int r, n;

	if (!payload) {
		session_fail(s, "internal", "out of memory");
		return;
	}
	r = open_streams(s, m);
	if (r < 0) {
		const char *code = conn_stream_error(s->vm, r, msg, sizeof(msg));

		free(payload);
		session_fail(s, code, "%s", msg);
		return;
	}
	n = vmic_ss_open_encode(m, payload, VMIC_SS_OPEN_MAX_LEN);
	r = n < 0 ? n
		  : request_send(s->vm, ID, VMIC_SS_OPEN, payload, (size_t)n,
				 OPEN_TIMEOUT_MS, on_open_answer, s, &s->req);
	free(payload);
	if (r < 0)
		session_fail(s, r == -EBUSY ? "limit" : "not-connected",
			     "cannot ask the guest agent of '%s' for a "
			     "session: %s",
			     vm_name(s->vm), strerror(-r));
}

/* Refuse what cannot start: who asks, the service's state; false after
 * replying. */
static bool may_open(struct ctl_request *rq, struct vm *vm)
{
	const struct ss_host_conf *conf =
		svc_daemon_settings(ctl_request_hostd(rq), ID);
	struct svc_status st;

	if (!ss_host_uid_allowed(ctl_request_uid(rq),
				 ctl_request_privileged(rq), conf->group)) {
		ctl_reply_error(rq, "forbidden",
				"only root%s%s%s may open sessions: set [session] "
				"group in hostd.conf to let a group's members",
				conf->group[0] ? " and members of group '" : "",
				conf->group, conf->group[0] ? "'" : "");
		return false;
	}
	if (service_usable(vm, ID))
		return true;
	service_status(vm, ID, &st);
	if (!vm_service_enabled(vm, ID))
		ctl_reply_error(rq, "service-unavailable",
				"the session service is disabled for '%s'; "
				"`vmic enable %s session` turns it on",
				vm_name(vm), vm_name(vm));
	else if (!conn_up(vm))
		ctl_reply_error(rq, "not-connected",
				"'%s' has no connection to its guest agent "
				"(connection %s)",
				vm_name(vm), vm_connection_state(vm));
	else
		ctl_reply_error(rq, "service-unavailable",
				"the guest of '%s' does not offer sessions: %s "
				"([session] enabled = yes in its "
				"vmic-guestd.conf turns them on)",
				vm_name(vm),
				st.secondary[0] ? st.secondary : "disabled");
	return false;
}

static void cmd_session_exec(struct ctl_request *rq, struct vm *vm,
			     json_t *args)
{
	struct exec_args a = { .user = "", .cwd = "", .term = "" };
	struct ss_vm *sv = ss_vm_of(vm);
	struct ss_host_session *s;
	struct vmic_ss_open *m;

	if (!ctl_args_unpack(rq, "session-exec", args,
			     "{s?o, s?s, s?s, s?o, s?I, s?b, s?b, s?b, s?o, s?s}",
			     "argv", &a.argv, "user", &a.user, "cwd", &a.cwd,
			     "env", &a.env, "timeout", &a.timeout, "tty",
			     &a.tty, "shell", &a.shell, "merge_stderr",
			     &a.merge, "winsize", &a.winsize, "term",
			     &a.term) ||
	    !may_open(rq, vm))
		return;
	m = calloc(1, sizeof(*m));
	s = calloc(1, sizeof(*s));
	if (!m || !s) {
		free(m);
		free(s);
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	if (!open_from_args(rq, &a, m))
		goto out;
	if (!(m->flags & (VMIC_SS_F_TTY | VMIC_SS_F_MERGE)) &&
	    ctl_request_nfds(rq) < 3) {
		ctl_reply_error(rq, "bad-descriptor",
				"session-exec without tty or merge_stderr "
				"takes three descriptors (stdin, stdout, "
				"stderr)");
		goto out;
	}
	s->vm = vm;
	s->uid = ctl_request_uid(rq);
	s->id = ++sv->next_id ? sv->next_id : ++sv->next_id;
	host_user_name(s->uid, s->host_user, sizeof(s->host_user));
	cmdline_make(s->cmdline, a.argv, a.shell);
	snprintf(s->guest_user, sizeof(s->guest_user), "%s",
		 m->user[0] ? m->user : "(default)");
	m->session = s->id;
	s->op = ctl_op_start(rq, vm, &op_ops, s);
	if (!s->op)
		goto out;
	s->next = sv->list;
	sv->list = s;
	sv->count++;
	s = NULL;
	session_begin(sv->list, m);
out:
	free(s);
	free(m);
}

static const struct ctl_fd_spec exec_fds[] = {
	{ "stdin", CTL_FD_FILE | CTL_FD_PIPE | CTL_FD_SOCKET | CTL_FD_TTY |
			   CTL_FD_CHAR,
	  CTL_FD_READ, false },
	{ "stdout", CTL_FD_FILE | CTL_FD_PIPE | CTL_FD_SOCKET | CTL_FD_TTY |
			    CTL_FD_CHAR,
	  CTL_FD_WRITE, false },
	{ "stderr", CTL_FD_FILE | CTL_FD_PIPE | CTL_FD_SOCKET | CTL_FD_TTY |
			    CTL_FD_CHAR,
	  CTL_FD_WRITE, true },
};

const struct ctl_command ss_host_commands[SS_HOST_NCOMMANDS] = {
	{ "session-exec", cmd_session_exec, true,
	  "vm (string), argv (array of strings), user (string), cwd "
	  "(string), env (array of NAME=VALUE), timeout (seconds), tty "
	  "(boolean), shell (boolean), merge_stderr (boolean), winsize "
	  "([rows, cols]), term "
	  "(string); descriptors stdin, stdout[, stderr]",
	  "run a command or a login shell in the guest (an operation)",
	  exec_fds, ARRAY_SIZE(exec_fds) },
};
