/* SPDX-License-Identifier: MIT */
/*
 * The control socket (docs/control.md): newline-delimited JSON over a
 * unix stream socket.
 *
 * Accepting is done by hand on a uv_poll so that EMFILE can pause it for
 * a second instead of spinning. Each client is checked with SO_PEERCRED
 * (root, our own user, or a member of the socket group). Requests are
 * read one line at a time (64 KiB at most) and answered in order: while
 * an asynchronous command (stop) runs, the client's further lines wait
 * unread. Output a client does not read is capped; past the cap the
 * client is dropped, so a stuck reader costs bounded memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "hostd.h"

#define CTL_LINE_MAX (64 * 1024)
/* A line of CTL_LINE_MAX bytes plus its newline must fit. */
#define CTL_IN_MAX (CTL_LINE_MAX + 1)
#define CTL_IN_INITIAL 4096
/* Unwritten output beyond this drops the client. */
#define CTL_OUT_CAP (8u * 1024 * 1024)
#define CTL_ACCEPT_BURST 64
/* Requests handled per loop iteration and client: a client sending
 * thousands of lines at once must not hold the loop (and every VM's
 * heartbeat) for the fsyncs of all of them. */
#define CTL_BATCH 16
#define CTL_EMFILE_PAUSE_MS 1000

struct ctl_client {
	struct ctl_client *prev, *next;
	struct ctl *ctl;
	uv_pipe_t pipe;
	uv_timer_t resume; /* continues a batch on the next iteration */
	int handles;       /* left to close before the struct is freed */
	char *in;
	size_t inlen, incap;
	size_t out_bytes; /* handed to libuv, not yet written */
	struct ctl_request *pending;
	bool follow;
	bool eof;
	bool closing;
	bool finish_after_write;
};

struct ctl_request {
	struct ctl_client *c; /* NULL once the client went away */
	struct hostd *h;
	json_t *id;
	bool async; /* still running after its handler returned */
};

struct ctl {
	struct hostd *h;
	int fd;
	uv_poll_t poll;
	uv_timer_t pause;
	struct ctl_client *clients;
	size_t followers;
	gid_t gid;
	bool have_gid;
	bool paused;
	int handles; /* left to close before the struct is freed */
};

struct ctl_write {
	uv_write_t req;
	struct ctl_client *c;
	char *data;
	size_t len;
};

static void ctl_client_process(struct ctl_client *c);
static void ctl_on_alloc(uv_handle_t *handle, size_t suggested,
			 uv_buf_t *buf);
static void ctl_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

struct hostd *ctl_request_hostd(const struct ctl_request *rq)
{
	return rq->h;
}

/* ---- client lifetime ---- */

static void ctl_client_closed(uv_handle_t *handle)
{
	struct ctl_client *c = handle->data;

	if (--c->handles > 0)
		return;
	free(c->in);
	free(c);
}

static void ctl_client_close(struct ctl_client *c)
{
	struct ctl *ctl = c->ctl;

	if (c->closing)
		return;
	c->closing = true;
	if (c->follow)
		ctl->followers--;
	if (c->pending) {
		/* The command goes on (a stop); its reply is dropped. */
		c->pending->c = NULL;
		c->pending = NULL;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		ctl->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->pipe.data = c;
	c->resume.data = c;
	uv_close((uv_handle_t *)&c->pipe, ctl_client_closed);
	uv_close((uv_handle_t *)&c->resume, ctl_client_closed);
}

/* Close once everything queued has been written. */
static void ctl_client_finish(struct ctl_client *c)
{
	if (c->closing)
		return;
	uv_read_stop((uv_stream_t *)&c->pipe);
	c->finish_after_write = true;
	if (c->out_bytes == 0)
		ctl_client_close(c);
}

/* ---- output ---- */

static void ctl_on_write(uv_write_t *req, int status)
{
	struct ctl_write *w = req->data;
	struct ctl_client *c = w->c;

	c->out_bytes -= w->len;
	free(w->data);
	free(w);
	if (c->closing)
		return;
	if (status < 0)
		ctl_client_close(c);
	else if (c->finish_after_write && c->out_bytes == 0)
		ctl_client_close(c);
}

/* Send one line (data ends with '\n'); takes ownership of data. */
static void ctl_client_write(struct ctl_client *c, char *data, size_t len)
{
	struct ctl_write *w;
	uv_buf_t b = uv_buf_init(data, (unsigned)len);
	int r = 0;

	if (c->closing) {
		free(data);
		return;
	}
	if (c->out_bytes == 0) {
		r = uv_try_write((uv_stream_t *)&c->pipe, &b, 1);
		if (r == (int)len) {
			free(data);
			return;
		}
		if (r < 0 && r != UV_EAGAIN) {
			free(data);
			ctl_client_close(c);
			return;
		}
		if (r < 0)
			r = 0;
	}
	if (c->out_bytes > CTL_OUT_CAP) {
		log_warning("dropping a control client that stopped reading "
			    "(%zu bytes unread)",
			    c->out_bytes);
		free(data);
		ctl_client_close(c);
		return;
	}
	w = malloc(sizeof(*w));
	if (!w) {
		free(data);
		ctl_client_close(c);
		return;
	}
	w->c = c;
	w->data = data;
	w->len = len - (size_t)r;
	w->req.data = w;
	b = uv_buf_init(data + r, (unsigned)w->len);
	c->out_bytes += w->len;
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, ctl_on_write) <
	    0) {
		c->out_bytes -= w->len;
		free(data);
		free(w);
		ctl_client_close(c);
	}
}

static void ctl_client_send_json(struct ctl_client *c, json_t *o)
{
	size_t n = json_dumpb(o, NULL, 0, JSON_COMPACT);
	char *buf;

	if (n == 0 || !(buf = malloc(n + 1))) {
		ctl_client_close(c);
		return;
	}
	json_dumpb(o, buf, n, JSON_COMPACT);
	buf[n] = '\n';
	ctl_client_write(c, buf, n + 1);
}

/* ---- replies ---- */

static void ctl_request_done(struct ctl_request *rq, json_t *reply)
{
	struct ctl_client *c = rq->c;
	bool resume = rq->async;

	if (c) {
		ctl_client_send_json(c, reply);
		c->pending = NULL;
	}
	json_decref(reply);
	json_decref(rq->id);
	free(rq);
	if (c && resume && !c->closing)
		ctl_client_process(c);
}

static json_t *reply_head(struct ctl_request *rq, bool ok)
{
	json_t *o = json_object();

	json_object_set(o, "id", rq->id ? rq->id : json_null());
	json_object_set_new(o, "ok", json_boolean(ok));
	return o;
}

void ctl_reply_ok(struct ctl_request *rq, json_t *result)
{
	json_t *o = reply_head(rq, true);

	json_object_set_new(o, "result", result ? result : json_object());
	ctl_request_done(rq, o);
}

char *ctl_reply_prefix(struct ctl_request *rq, size_t *len)
{
	char *id = json_dumps(rq->id ? rq->id : json_null(),
			      JSON_ENCODE_ANY | JSON_COMPACT);
	char *prefix = NULL;
	int n;

	if (!id)
		return NULL;
	n = asprintf(&prefix, "{\"id\":%s,\"ok\":true,\"result\":", id);
	free(id);
	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return prefix;
}

void ctl_reply_line(struct ctl_request *rq, char *line, size_t len)
{
	struct ctl_client *c = rq->c;
	bool resume = rq->async;

	if (c) {
		ctl_client_write(c, line, len);
		c->pending = NULL;
	} else {
		free(line);
	}
	json_decref(rq->id);
	free(rq);
	if (c && resume && !c->closing)
		ctl_client_process(c);
}

void ctl_reply_error(struct ctl_request *rq, const char *code,
		     const char *fmt, ...)
{
	json_t *o = reply_head(rq, false);
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_set_new(o, "error", json_pack("{s:s, s:s}", "code", code,
						  "message", msg));
	ctl_request_done(rq, o);
}

void ctl_request_follow(struct ctl_request *rq)
{
	struct ctl_client *c = rq->c;

	if (!c || c->follow)
		return;
	c->follow = true;
	c->ctl->followers++;
}

bool ctl_has_followers(const struct hostd *h)
{
	return h->ctl && h->ctl->followers > 0;
}

void ctl_broadcast_event(struct hostd *h, json_t *event)
{
	json_t *line;

	if (!ctl_has_followers(h))
		return;
	line = json_pack("{s:O}", "event", event);
	for (struct ctl_client *c = h->ctl->clients, *next; c; c = next) {
		next = c->next;
		if (c->follow && !c->pending)
			ctl_client_send_json(c, line);
	}
	json_decref(line);
}

/* ---- requests ---- */

static struct ctl_request *ctl_request_new(struct ctl_client *c)
{
	struct ctl_request *rq = calloc(1, sizeof(*rq));

	if (!rq)
		return NULL;
	rq->c = c;
	rq->h = c->ctl->h;
	c->pending = rq;
	return rq;
}

/* Take a member out of the request (so strict unpacking skips it). */
static json_t *take_member(json_t *req, const char *key)
{
	json_t *v = json_object_get(req, key);

	if (v) {
		json_incref(v);
		json_object_del(req, key);
	}
	return v;
}

static void ctl_dispatch(struct ctl_request *rq, json_t *req)
{
	const struct ctl_command *cmd;
	json_t *name, *vmname = NULL;
	struct vm *vm = NULL;

	rq->id = take_member(req, "id");
	name = take_member(req, "cmd");
	if (!json_is_string(name)) {
		ctl_reply_error(rq, "bad-request",
				"the request has no \"cmd\" string; for "
				"example {\"cmd\": \"version\"}");
		goto out;
	}
	cmd = ctl_command_find(json_string_value(name));
	if (!cmd) {
		ctl_reply_error(rq, "unknown-command",
				"no command '%.64s'; valid commands: %s",
				json_string_value(name), ctl_command_names());
		goto out;
	}
	if (cmd->needs_vm) {
		vmname = take_member(req, "vm");
		if (!json_is_string(vmname)) {
			ctl_reply_error(rq, "bad-request",
					"`%s` needs \"vm\", the name of a "
					"registered VM",
					cmd->name);
			goto out;
		}
		vm = vm_find(rq->h, json_string_value(vmname));
		if (!vm) {
			ctl_reply_error(rq, "unknown-vm",
					"no VM named '%.64s'; `vmic list` "
					"shows the registered VMs",
					json_string_value(vmname));
			goto out;
		}
	}
	cmd->run(rq, vm, req);
out:
	json_decref(name);
	json_decref(vmname);
}

static void ctl_handle_line(struct ctl_client *c, const char *line, size_t n)
{
	struct ctl_request *rq;
	json_error_t jerr;
	json_t *req;

	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' ||
			 line[n - 1] == '\t'))
		n--;
	if (n == 0)
		return;
	rq = ctl_request_new(c);
	if (!rq) {
		ctl_client_close(c);
		return;
	}
	req = json_loadb(line, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!req) {
		ctl_reply_error(rq, "bad-request",
				"the request is not JSON: %s (column %d)",
				jerr.text, jerr.column);
		return;
	}
	if (!json_is_object(req)) {
		ctl_reply_error(rq, "bad-request",
				"a request must be a JSON object, such as "
				"{\"cmd\": \"version\"}");
	} else {
		ctl_dispatch(rq, req);
		if (c->pending == rq)
			rq->async = true;
	}
	json_decref(req);
}

static void ctl_client_consume(struct ctl_client *c, size_t n)
{
	memmove(c->in, c->in + n, c->inlen - n);
	c->inlen -= n;
}

/* Handle buffered lines until one is asynchronous or none is left. */
static void on_resume(uv_timer_t *t)
{
	ctl_client_process(t->data);
}

static void ctl_client_process(struct ctl_client *c)
{
	unsigned handled = 0;
	char *nl;

	while (!c->closing && !c->pending && !c->follow && c->inlen > 0) {
		if (handled++ == CTL_BATCH) {
			uv_read_stop((uv_stream_t *)&c->pipe);
			uv_timer_start(&c->resume, on_resume, 0, 0);
			return;
		}
		nl = memchr(c->in, '\n', c->inlen);
		if (!nl) {
			if (!c->eof)
				break;
			/* A last request without its newline. */
			ctl_handle_line(c, c->in, c->inlen);
			c->inlen = 0;
			break;
		}
		ctl_handle_line(c, c->in, (size_t)(nl - c->in));
		ctl_client_consume(c, (size_t)(nl - c->in) + 1);
	}
	if (c->closing || c->pending)
		return;
	if (c->follow)
		c->inlen = 0;
	if (c->eof && c->follow)
		ctl_client_close(c);
	else if (c->eof)
		ctl_client_finish(c);
	else
		/* Reading may have paused for an asynchronous command. */
		uv_read_start((uv_stream_t *)&c->pipe, ctl_on_alloc,
			      ctl_on_read);
}

static void ctl_on_alloc(uv_handle_t *handle, size_t suggested UNUSED,
			 uv_buf_t *buf)
{
	struct ctl_client *c = handle->data;

	if (c->follow) {
		/* Input after --follow is read only to notice EOF. */
		c->inlen = 0;
	} else if (c->incap - c->inlen < 1024 && c->incap < CTL_IN_MAX) {
		size_t cap = MIN(MAX(c->incap * 2, (size_t)CTL_IN_INITIAL),
				 (size_t)CTL_IN_MAX);
		char *n = realloc(c->in, cap);

		if (n) {
			c->in = n;
			c->incap = cap;
		}
	}
	buf->base = c->in + c->inlen;
	buf->len = c->incap - c->inlen;
}

static void ctl_line_too_long(struct ctl_client *c)
{
	struct ctl_request *rq = ctl_request_new(c);

	c->inlen = 0;
	if (rq)
		ctl_reply_error(rq, "bad-request",
				"the request line is longer than 64 KiB");
	ctl_client_finish(c);
}

static void ctl_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf UNUSED)
{
	struct ctl_client *c = s->data;

	if (n == 0)
		return;
	if (n < 0) {
		uv_read_stop(s);
		if (n != UV_EOF) {
			ctl_client_close(c);
			return;
		}
		c->eof = true;
		ctl_client_process(c);
		return;
	}
	c->inlen += (size_t)n;
	ctl_client_process(c);
	if (c->closing || uv_is_active((uv_handle_t *)&c->resume))
		return;
	if (c->pending) {
		/* Later lines wait for the running command's reply. */
		uv_read_stop(s);
		return;
	}
	if (!c->follow && c->inlen >= CTL_IN_MAX)
		ctl_line_too_long(c);
}

/* ---- access ---- */

static bool user_in_group(uid_t uid, gid_t primary, gid_t gid)
{
	struct passwd pw, *res = NULL;
	gid_t groups[256];
	int n = (int)ARRAY_SIZE(groups);
	char buf[4096];

	if (primary == gid)
		return true;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return false;
	if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
		return false;
	for (int i = 0; i < n; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

static bool ctl_peer_allowed(struct ctl *ctl, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	if (cred.uid == 0 || cred.uid == geteuid())
		return true;
	return ctl->have_gid && user_in_group(cred.uid, cred.gid, ctl->gid);
}

static void ctl_deny(struct ctl_client *c)
{
	struct ctl_request *rq = ctl_request_new(c);

	if (rq)
		ctl_reply_error(rq, "permission-denied",
				"only root, the daemon's user and members of "
				"the socket group may use this socket");
	ctl_client_finish(c);
}

static void ctl_client_new(struct ctl *ctl, int fd)
{
	struct ctl_client *c = calloc(1, sizeof(*c));
	bool allowed = ctl_peer_allowed(ctl, fd);

	if (!c) {
		close(fd);
		return;
	}
	c->ctl = ctl;
	c->handles = 2;
	uv_pipe_init(ctl->h->loop, &c->pipe, 0);
	uv_timer_init(ctl->h->loop, &c->resume);
	c->pipe.data = c;
	c->resume.data = c;
	if (uv_pipe_open(&c->pipe, fd) < 0) {
		close(fd);
		uv_close((uv_handle_t *)&c->pipe, ctl_client_closed);
		uv_close((uv_handle_t *)&c->resume, ctl_client_closed);
		return;
	}
	c->next = ctl->clients;
	if (c->next)
		c->next->prev = c;
	ctl->clients = c;
	if (!allowed) {
		ctl_deny(c);
		return;
	}
	if (uv_read_start((uv_stream_t *)&c->pipe, ctl_on_alloc, ctl_on_read) <
	    0)
		ctl_client_close(c);
}

/* ---- listening ---- */

static void ctl_on_readable(uv_poll_t *p, int status, int events);

static void ctl_on_pause_end(uv_timer_t *t)
{
	struct ctl *ctl = t->data;

	ctl->paused = false;
	uv_poll_start(&ctl->poll, UV_READABLE, ctl_on_readable);
}

static void ctl_on_readable(uv_poll_t *p, int status, int events UNUSED)
{
	struct ctl *ctl = p->data;

	if (status < 0)
		return;
	for (int i = 0; i < CTL_ACCEPT_BURST; i++) {
		int fd = accept4(ctl->fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			ctl_client_new(ctl, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			log_warning_errno(errno, "cannot accept control "
						 "connections; pausing for a "
						 "second");
			uv_poll_stop(p);
			ctl->paused = true;
			uv_timer_start(&ctl->pause, ctl_on_pause_end,
				       CTL_EMFILE_PAUSE_MS, 0);
		}
		return;
	}
}

static int mkdir_parents(const char *path, mode_t mode)
{
	char buf[VMIC_PATH_MAX + 1];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

/*
 * A socket file at our path: if a daemon answers there, refuse; if not,
 * it is left from a crash and removed. Anything else is not ours.
 */
static int ctl_claim_path(const char *path, const struct sockaddr_un *sa)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		log_error("%s exists and is not a socket; remove it or choose "
			  "another path with --socket",
			  path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0) {
		log_error("another vmic-hostd is already serving %s; stop it "
			  "first or use another --socket",
			  path);
		return -EADDRINUSE;
	}
	log_debug("removing the stale socket %s", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return log_error_errno(errno, "cannot remove the stale socket "
					      "%s",
				       path);
	return 0;
}

static void ctl_set_group(struct ctl *ctl, const char *path,
			  const char *group)
{
	struct group *g = group[0] ? getgrnam(group) : NULL;

	if (!g) {
		log_debug("group '%s' does not exist; the control socket "
			  "keeps the group of its owner",
			  group);
		return;
	}
	ctl->gid = g->gr_gid;
	ctl->have_gid = true;
	if (chown(path, (uid_t)-1, g->gr_gid) < 0)
		log_warning_errno(errno, "cannot give %s to group '%s'", path,
				  group);
}

int ctl_open(struct hostd *h)
{
	const char *path = h->cfg.socket;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctl *ctl;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("the socket path %s is longer than %zu bytes", path,
			  sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	r = mkdir_parents(path, 0755);
	if (r < 0)
		return log_error_errno(r, "cannot create the directory of %s",
				       path);
	r = ctl_claim_path(path, &sa);
	if (r < 0)
		return r;
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return -ENOMEM;
	ctl->h = h;
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			 0);
	if (ctl->fd < 0 ||
	    bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(ctl->fd, SOMAXCONN) < 0) {
		r = log_error_errno(errno, "cannot listen on %s", path);
		if (ctl->fd >= 0)
			close(ctl->fd);
		free(ctl);
		return r;
	}
	if (chmod(path, 0660) < 0)
		log_warning_errno(errno, "cannot chmod %s", path);
	ctl_set_group(ctl, path, h->cfg.socket_group);
	uv_poll_init(h->loop, &ctl->poll, ctl->fd);
	ctl->poll.data = ctl;
	uv_timer_init(h->loop, &ctl->pause);
	ctl->pause.data = ctl;
	uv_poll_start(&ctl->poll, UV_READABLE, ctl_on_readable);
	h->ctl = ctl;
	return 0;
}

static void ctl_free_when_closed(uv_handle_t *handle)
{
	struct ctl *ctl = handle->data;

	if (--ctl->handles == 0)
		free(ctl);
}

void ctl_close(struct hostd *h)
{
	struct ctl *ctl = h->ctl;

	if (!ctl)
		return;
	while (ctl->clients)
		ctl_client_close(ctl->clients);
	ctl->handles = 2;
	uv_close((uv_handle_t *)&ctl->poll, ctl_free_when_closed);
	uv_close((uv_handle_t *)&ctl->pause, ctl_free_when_closed);
	close(ctl->fd);
	unlink(h->cfg.socket);
	h->ctl = NULL;
}
