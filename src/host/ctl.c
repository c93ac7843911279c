/* SPDX-License-Identifier: MIT */
/*
 * The control socket (docs/control.md): newline-delimited JSON over a
 * unix stream socket. This file listens, checks who connects, and reads
 * requests; ctl-reply.c writes the answers.
 *
 * Accepting is done by hand on a uv_poll so that EMFILE can pause it for
 * a second instead of spinning. Each client is checked with SO_PEERCRED
 * (root, our own user, or a member of the socket group; group lookups are
 * cached for a few seconds, since they may ask a slow directory service).
 * Requests are read one line at a time (64 KiB at most) and answered in
 * order: while an asynchronous command (stop) or a streamed reply runs,
 * the client's further lines wait unread. Connections are bounded per
 * user and in all ([control] max-clients-per-uid, max-clients); root and
 * the daemon's own user have CTL_ADMIN_RESERVE more, so an administrator
 * always gets in.
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

#include "common/duration.h"
#include "common/log.h"
#include "ctl-internal.h"

#define CTL_LINE_MAX (64 * 1024)
/* A line of CTL_LINE_MAX bytes plus its newline must fit. */
#define CTL_IN_MAX (CTL_LINE_MAX + 1)
#define CTL_IN_INITIAL 4096
#define CTL_ACCEPT_BURST 64
/* Requests handled per loop iteration and client: a client sending
 * thousands of lines at once must not hold the loop (and every VM's
 * heartbeat) for all of them. */
#define CTL_BATCH 16
#define CTL_EMFILE_PAUSE_MS 1000
/* Group membership answers are kept this long, for this many users. */
#define ACCESS_CACHE_MS 10000
#define ACCESS_CACHE_SIZE 32
/* At most one log line per this long says connections were refused. */
#define REFUSED_LOG_US (10ull * 1000 * 1000)

static void ctl_on_alloc(uv_handle_t *handle, size_t suggested,
			 uv_buf_t *buf);
static void ctl_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

struct hostd *ctl_request_hostd(const struct ctl_request *rq)
{
	return rq->h;
}

bool ctl_request_privileged(const struct ctl_request *rq)
{
	return rq->uid == 0 || rq->uid == geteuid();
}

uid_t ctl_request_uid(const struct ctl_request *rq)
{
	return rq->uid;
}

/* ---- client lifetime ---- */

static void ctl_client_closed(uv_handle_t *handle)
{
	struct ctl_client *c = handle->data;

	if (--c->handles > 0)
		return;
	ctl_output_free(c);
	free(c->in);
	free(c);
}

void ctl_client_close(struct ctl_client *c)
{
	struct ctl *ctl = c->ctl;

	if (c->closing)
		return;
	c->closing = true;
	ctl->nclients--;
	ctl_output_release(c);
	if (c->follow)
		ctl->followers--;
	ctl_watch_gone(c);
	ctl_stream_abort(c);
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
	c->drain.data = c;
	uv_close((uv_handle_t *)&c->pipe, ctl_client_closed);
	uv_close((uv_handle_t *)&c->resume, ctl_client_closed);
	uv_close((uv_handle_t *)&c->drain, ctl_client_closed);
}

static void on_drain_timeout(uv_timer_t *t)
{
	struct ctl_client *c = t->data;

	log_info("dropping a control client that read none of its last %zu "
		 "bytes for %ds",
		 c->out_bytes,
		 (c->finish_after_write ? CTL_DRAIN_MS : CTL_STALL_MS) / 1000);
	ctl_client_close(c);
}

void ctl_client_watch(struct ctl_client *c)
{
	if (c->closing)
		return;
	if (c->out_bytes == 0)
		uv_timer_stop(&c->drain);
	else
		uv_timer_start(&c->drain, on_drain_timeout,
			       c->finish_after_write ? CTL_DRAIN_MS
						     : CTL_STALL_MS,
			       0);
}

void ctl_client_finish(struct ctl_client *c)
{
	if (c->closing || c->finish_after_write)
		return;
	uv_read_stop((uv_stream_t *)&c->pipe);
	c->finish_after_write = true;
	if (c->out_bytes == 0)
		ctl_client_close(c);
	else
		ctl_client_watch(c);
}

/* ---- requests ---- */

static struct ctl_request *ctl_request_new(struct ctl_client *c)
{
	struct ctl_request *rq = calloc(1, sizeof(*rq));

	if (!rq)
		return NULL;
	rq->c = c;
	rq->h = c->ctl->h;
	rq->uid = c->uid;
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
	json_t *name, *paged, *vmname = NULL;
	struct vm *vm = NULL;

	rq->id = take_member(req, "id");
	paged = take_member(req, "paged");
	rq->paged = json_is_true(paged);
	name = take_member(req, "cmd");
	if (paged && !json_is_boolean(paged)) {
		ctl_reply_error(rq, "bad-request",
				"\"paged\" must be true or false");
		goto out;
	}
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
	json_decref(paged);
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

static void on_resume(uv_timer_t *t)
{
	struct ctl_client *c = t->data;

	if (c->stream)
		ctl_stream_pump(c);
	else
		ctl_client_process(c);
}

void ctl_client_later(struct ctl_client *c)
{
	uv_timer_start(&c->resume, on_resume, 0, 0);
}

/* Handle buffered lines until one is asynchronous or none is left. */
void ctl_client_process(struct ctl_client *c)
{
	unsigned handled = 0;
	char *nl;

	while (!c->closing && !c->pending && !ctl_client_listens(c) &&
	       c->inlen > 0) {
		/* Past the batch, or while clients that hold more than the
		 * total in all wait to be dropped (next turn, the largest
		 * first), go on in the next iteration. */
		if (handled++ == CTL_BATCH ||
		    uv_is_active((uv_handle_t *)&c->ctl->shed)) {
			uv_read_stop((uv_stream_t *)&c->pipe);
			ctl_client_later(c);
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
	if (ctl_client_listens(c))
		c->inlen = 0;
	if (c->eof && ctl_client_listens(c))
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

	if (ctl_client_listens(c)) {
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
	if (!ctl_client_listens(c) && c->inlen >= CTL_IN_MAX)
		ctl_line_too_long(c);
}

/* ---- access ---- */

/*
 * Is the user a member of gid? getgrouplist may ask a directory service
 * (LDAP, sssd) and block, so answers are kept for ACCESS_CACHE_MS; any
 * number of groups is looked at.
 */
static bool lookup_membership(uid_t uid, gid_t primary, gid_t gid)
{
	struct passwd pw, *res = NULL;
	_cleanup_free_ gid_t *groups = NULL;
	int n = 64;
	char buf[4096];

	if (primary == gid)
		return true;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return false;
	for (int tries = 0; tries < 4; tries++) {
		gid_t *g = realloc(groups, (size_t)n * sizeof(*groups));
		int want = n;

		if (!g)
			return false;
		groups = g;
		if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &want) >= 0) {
			for (int i = 0; i < want; i++)
				if (groups[i] == gid)
					return true;
			return false;
		}
		/* Too small: want says how many there are. */
		n = want > n ? want : n * 2;
	}
	return false;
}

struct access_entry {
	uid_t uid;
	gid_t gid;
	bool member;
	uint64_t until_us; /* 0: unused */
};

static bool user_in_group(uid_t uid, gid_t primary, gid_t gid)
{
	static struct access_entry cache[ACCESS_CACHE_SIZE];
	uint64_t now = vmic_mono_us();
	struct access_entry *slot = &cache[0];

	for (size_t i = 0; i < ARRAY_SIZE(cache); i++) {
		struct access_entry *e = &cache[i];

		if (e->until_us > now && e->uid == uid && e->gid == gid)
			return e->member || primary == gid;
		if (e->until_us < slot->until_us)
			slot = e; /* the oldest, or an unused one */
	}
	*slot = (struct access_entry){
		.uid = uid,
		.gid = gid,
		.member = lookup_membership(uid, primary, gid),
		.until_us = now + (uint64_t)ACCESS_CACHE_MS * 1000,
	};
	return slot->member;
}

static bool ctl_peer_allowed(struct ctl *ctl, const struct ucred *cred)
{
	if (cred->uid == 0 || cred->uid == geteuid())
		return true;
	return ctl->have_gid && user_in_group(cred->uid, cred->gid, ctl->gid);
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

/*
 * May a peer of uid connect now? Fills why (the error line's sentence)
 * when not. Counts the clients linked now, which are bounded by the same
 * keys, so the scan stays short.
 */
static bool ctl_admit(struct ctl *ctl, uid_t uid, char *why, size_t n)
{
	const struct hostd_config *cfg = &ctl->h->cfg;
	size_t mine = 0;

	if (uid == 0 || uid == geteuid()) {
		if (ctl->nclients < (size_t)cfg->max_clients + CTL_ADMIN_RESERVE)
			return true;
		snprintf(why, n,
			 "vmic-hostd has %zu control connections open, the "
			 "most [control] max-clients (%u) and the %d kept "
			 "for root allow; close some, or raise max-clients",
			 ctl->nclients, cfg->max_clients, CTL_ADMIN_RESERVE);
		return false;
	}
	if (ctl->nclients >= cfg->max_clients) {
		snprintf(why, n,
			 "vmic-hostd has %zu control connections open, the "
			 "most [control] max-clients allows; try again when "
			 "some have closed, or ask root to raise it",
			 ctl->nclients);
		return false;
	}
	for (const struct ctl_client *c = ctl->clients; c; c = c->next)
		mine += c->uid == uid;
	if (mine < cfg->max_clients_per_uid)
		return true;
	snprintf(why, n,
		 "this user has %zu control connections open to vmic-hostd, "
		 "the most [control] max-clients-per-uid allows; close some "
		 "(a `vmic events --follow` or `vmic kvp watch` left "
		 "running?), or ask root to raise it",
		 mine);
	return false;
}

/* Say once in a while that connections were refused, with how many. */
static void log_refused(struct ctl *ctl, uid_t uid, const char *why)
{
	uint64_t now = vmic_mono_us();

	ctl->refused++;
	if (ctl->refused_log_us && now - ctl->refused_log_us < REFUSED_LOG_US)
		return;
	log_warning("refused a control connection of uid %u: %s (%llu "
		    "refused since the last such line)",
		    (unsigned)uid, why,
		    (unsigned long long)(ctl->refused - ctl->refused_logged));
	ctl->refused_logged = ctl->refused;
	ctl->refused_log_us = now;
}

static void ctl_refuse(struct ctl_client *c, const char *why)
{
	struct ctl_request *rq = ctl_request_new(c);

	log_refused(c->ctl, c->uid, why);
	if (rq)
		ctl_reply_error(rq, "limit", "%s", why);
	ctl_client_finish(c);
}

static void ctl_client_new(struct ctl *ctl, int fd)
{
	struct ctl_client *c = calloc(1, sizeof(*c));
	struct ucred cred = { .uid = (uid_t)-1, .gid = (gid_t)-1 };
	socklen_t len = sizeof(cred);
	char why[512];
	bool allowed, admitted = true;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		cred.uid = (uid_t)-1;
	allowed = cred.uid != (uid_t)-1 && ctl_peer_allowed(ctl, &cred);
	if (allowed)
		admitted = ctl_admit(ctl, cred.uid, why, sizeof(why));

	if (!c) {
		close(fd);
		return;
	}
	c->ctl = ctl;
	c->uid = cred.uid;
	c->handles = 3;
	uv_pipe_init(ctl->h->loop, &c->pipe, 0);
	uv_timer_init(ctl->h->loop, &c->resume);
	uv_timer_init(ctl->h->loop, &c->drain);
	c->pipe.data = c;
	c->resume.data = c;
	c->drain.data = c;
	if (uv_pipe_open(&c->pipe, fd) < 0) {
		close(fd);
		uv_close((uv_handle_t *)&c->pipe, ctl_client_closed);
		uv_close((uv_handle_t *)&c->resume, ctl_client_closed);
		uv_close((uv_handle_t *)&c->drain, ctl_client_closed);
		return;
	}
	c->next = ctl->clients;
	if (c->next)
		c->next->prev = c;
	ctl->clients = c;
	ctl->nclients++;
	if (!allowed) {
		ctl_deny(c);
		return;
	}
	if (!admitted) {
		ctl_refuse(c, why);
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

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return log_error_errno(errno, "cannot use %s for the control "
					      "socket",
				       path);
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_error("%s exists and is not a socket; remove it or choose "
			  "another path with --socket",
			  path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_error_errno(errno, "cannot create a unix socket");
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

void ctl_stats_json(const struct hostd *h, json_t *stats)
{
	static const struct ctl none;
	const struct ctl *ctl = h->ctl ? h->ctl : &none;

	json_object_set_new(stats, "control",
			    json_pack("{s:I, s:I, s:I, s:I, s:I}", "clients",
				      (json_int_t)ctl->nclients, "followers",
				      (json_int_t)ctl->followers,
				      "unread_bytes", (json_int_t)ctl->held,
				      "dropped", (json_int_t)ctl->dropped,
				      "refused", (json_int_t)ctl->refused));
}

void ctl_reload(struct hostd *h)
{
	if (!h->ctl)
		return;
	h->ctl->have_gid = false;
	ctl_set_group(h->ctl, h->cfg.socket, h->cfg.socket_group);
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
	ctl_output_init(ctl);
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
	ctl->handles = 2 + ctl_output_close(ctl, ctl_free_when_closed);
	uv_close((uv_handle_t *)&ctl->poll, ctl_free_when_closed);
	uv_close((uv_handle_t *)&ctl->pause, ctl_free_when_closed);
	close(ctl->fd);
	unlink(h->cfg.socket);
	h->ctl = NULL;
}
