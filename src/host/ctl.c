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
 * the client's further lines wait unread; while an operation runs
 * (ctl-op.c), they are its messages. Connections are bounded per user
 * and in all ([control] max-clients-per-uid, max-clients); root and the
 * daemon's own user have CTL_ADMIN_RESERVE more, so an administrator
 * always gets in.
 *
 * A client's socket is read with recvmsg and written with sendmsg, on a
 * uv_poll, rather than through a libuv pipe: descriptors come with
 * request lines as SCM_RIGHTS (ctl-fds.c), and libuv would take them only
 * on an IPC pipe, which queues any number of them and hands out only
 * sockets.
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

static void ctl_on_io(uv_poll_t *p, int status, int events);

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
	/* libuv leaves the descriptor of a poll handle to its owner. */
	if (c->fd >= 0)
		close(c->fd);
	ctl_output_free(c);
	free(c->in);
	free(c);
}

void ctl_client_poll(struct ctl_client *c)
{
	int events = 0;

	if (c->closing)
		return;
	if (c->reading && !c->eof && !c->finish_after_write)
		events |= UV_READABLE;
	if (c->out_n > 0)
		events |= UV_WRITABLE;
	if (events == c->poll_events)
		return;
	c->poll_events = events;
	if (events == 0)
		uv_poll_stop(&c->poll);
	else if (uv_poll_start(&c->poll, events, ctl_on_io) < 0)
		ctl_client_close(c);
}

static void ctl_read_stop(struct ctl_client *c)
{
	c->reading = false;
	ctl_client_poll(c);
}

static void ctl_read_start(struct ctl_client *c)
{
	c->reading = true;
	ctl_client_poll(c);
}

void ctl_client_close(struct ctl_client *c)
{
	struct ctl *ctl = c->ctl;

	if (c->closing)
		return;
	c->closing = true;
	ctl->nclients--;
	ctl_output_release(c);
	ctl_fds_drop(c);
	if (c->follow)
		ctl->followers--;
	ctl_watch_gone(c);
	ctl_stream_abort(c);
	ctl_op_client_gone(c);
	json_decref(c->op_ended_id);
	c->op_ended_id = NULL;
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
	c->poll.data = c;
	c->resume.data = c;
	c->drain.data = c;
	uv_close((uv_handle_t *)&c->poll, ctl_client_closed);
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
	/* An operation's client may leave its output unread for as long as
	 * the operation runs: its progress lines replace each other, and
	 * anything else counts against max-unread. */
	if (c->out_bytes == 0 || (c->op && !c->finish_after_write))
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
	c->finish_after_write = true;
	ctl_read_stop(c);
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

void ctl_request_free(struct ctl_request *rq)
{
	ctl_fds_close(rq->fds, rq->nfds);
	json_decref(rq->id);
	free(rq);
}

unsigned ctl_request_nfds(const struct ctl_request *rq)
{
	return rq->nfds;
}

int ctl_request_fd(const struct ctl_request *rq, unsigned i)
{
	return i < rq->nfds ? rq->fds[i] : -1;
}

int ctl_request_take_fd(struct ctl_request *rq, unsigned i)
{
	int fd = ctl_request_fd(rq, i);

	if (fd >= 0)
		rq->fds[i] = -1;
	return fd;
}

/* The request's descriptors against what the command takes; false
 * after replying when they do not fit. */
static bool ctl_check_fds(struct ctl_request *rq,
			  const struct ctl_command *cmd)
{
	char why[1024], what[96];

	snprintf(what, sizeof(what), "`%s`", cmd->name);
	if (ctl_fds_check(what, cmd->fds, cmd->nfds, rq->fds, rq->nfds, why,
			  sizeof(why)) == 0)
		return true;
	ctl_reply_error(rq, "bad-descriptor", "%s", why);
	return false;
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
	rq->cmd = cmd->name;
	if (!ctl_check_fds(rq, cmd))
		goto out;
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

/*
 * The framing is lost (descriptors no line claims, a bad "fds"): one
 * error line, as the reply to rq, then the client is closed.
 */
static void ctl_framing_error_code(struct ctl_client *c,
				   struct ctl_request *rq, const char *code,
				   const char *why)
{
	log_info("closing a control client of uid %u: %s", (unsigned)c->uid,
		 why);
	ctl_fds_drop(c);
	ctl_reply_error(rq, code, "%s", why);
	ctl_client_finish(c);
}

static void ctl_framing_error(struct ctl_client *c, struct ctl_request *rq,
			      const char *why)
{
	ctl_framing_error_code(c, rq, "bad-descriptor", why);
}

/*
 * The request's "fds": how many descriptors came with the line (0 when
 * absent), or -1 after replying that the member is wrong.
 */
static int ctl_declared_fds(struct ctl_client *c, struct ctl_request *rq,
			    json_t *req)
{
	json_t *v = json_is_object(req) ? json_object_get(req, "fds") : NULL;
	char why[256];
	json_int_t n;

	if (!v)
		return 0;
	n = json_is_integer(v) ? json_integer_value(v) : -1;
	if (n < 0 || n > CTL_FDS_MAX) {
		snprintf(why, sizeof(why),
			 "\"fds\" must be the number of descriptors sent "
			 "with the request line, 0 to %d",
			 CTL_FDS_MAX);
		ctl_framing_error(c, rq, why);
		return -1;
	}
	json_object_del(req, "fds");
	return (int)n;
}

/*
 * A message to the operation that just ended on the connection, which
 * crossed its end: dropped, with its descriptors. The first request
 * after the end forgets the operation. True when dropped.
 */
static bool ctl_late_message(struct ctl_client *c, json_t *req, uint64_t end)
{
	json_t *id, *declared;
	int fds[CTL_FDS_MAX];
	json_int_t n = 0;
	char why[256];

	if (!c->op_ended_id)
		return false;
	if (!json_is_object(req) || json_object_get(req, "cmd")) {
		json_decref(c->op_ended_id);
		c->op_ended_id = NULL;
		return false;
	}
	id = json_object_get(req, "id");
	if (!json_equal(id ? id : json_null(), c->op_ended_id))
		return false;
	declared = json_object_get(req, "fds");
	if (declared)
		n = json_is_integer(declared) ? json_integer_value(declared)
					      : -1;
	if (n < 0 || n > CTL_FDS_MAX ||
	    ctl_fds_claim(c, (unsigned)n, end, fds, why, sizeof(why)) < 0)
		return false; /* the request path says what is wrong */
	ctl_fds_close(fds, (unsigned)n);
	return true;
}

/* A line that ends at offset `end` (its newline included). */
static void ctl_handle_line(struct ctl_client *c, const char *line, size_t n,
			    uint64_t end)
{
	struct ctl_request *rq;
	json_error_t jerr;
	char why[512];
	json_t *req;
	int nfds;

	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' ||
			 line[n - 1] == '\t'))
		n--;
	req = n ? json_loadb(line, n, JSON_REJECT_DUPLICATES, &jerr) : NULL;
	if (c->op) {
		ctl_op_line(c, req, n && !req ? jerr.text : NULL, end);
		json_decref(req);
		return;
	}
	if (ctl_late_message(c, req, end)) {
		json_decref(req);
		return;
	}
	if (n == 0 && ctl_fds_claim(c, 0, end, NULL, why, sizeof(why)) == 0)
		return; /* an empty line, alone */
	rq = ctl_request_new(c);
	if (!rq) {
		json_decref(req);
		ctl_client_close(c);
		return;
	}
	nfds = ctl_declared_fds(c, rq, req);
	if (nfds < 0) {
		json_decref(req);
		return;
	}
	if (ctl_fds_claim(c, (unsigned)nfds, end, rq->fds, why, sizeof(why)) <
	    0) {
		json_decref(req);
		ctl_framing_error(c, rq, why);
		return;
	}
	rq->nfds = (unsigned)nfds;
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
	c->in_off += n;
}

/* Input that nobody reads any more (a follower's, a watcher's). */
static void ctl_client_discard(struct ctl_client *c)
{
	c->in_off += c->inlen;
	c->inlen = 0;
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

	while (!c->closing && !c->pending && !c->finish_after_write &&
	       !ctl_client_listens(c) && c->inlen > 0) {
		/* Past the batch, or while clients that hold more than the
		 * total in all wait to be dropped (next turn, the largest
		 * first), go on in the next iteration. */
		if (handled++ == CTL_BATCH ||
		    uv_is_active((uv_handle_t *)&c->ctl->shed)) {
			ctl_read_stop(c);
			ctl_client_later(c);
			return;
		}
		nl = memchr(c->in, '\n', c->inlen);
		if (!nl) {
			if (!c->eof)
				break;
			/* A last request without its newline. */
			ctl_handle_line(c, c->in, c->inlen,
					c->in_off + c->inlen);
			if (!c->closing)
				ctl_client_discard(c);
			break;
		}
		ctl_handle_line(c, c->in, (size_t)(nl - c->in),
				c->in_off + (uint64_t)(nl - c->in) + 1);
		if (c->closing)
			return;
		ctl_client_consume(c, (size_t)(nl - c->in) + 1);
	}
	if (c->closing || c->pending || c->finish_after_write)
		return;
	if (ctl_client_listens(c))
		ctl_client_discard(c);
	if ((c->eof || ctl_client_listens(c)) && ctl_fds_unclaimed(c)) {
		/* Nothing will claim them: the framing is lost. */
		struct ctl_request *rq = ctl_request_new(c);

		if (rq)
			ctl_framing_error(c, rq,
					  "descriptors came with no request "
					  "line that declares them "
					  "(\"fds\": N)");
		else
			ctl_client_close(c);
		return;
	}
	if (c->eof && (ctl_client_listens(c) || c->op))
		/* A listener left; an operation's client left, which
		 * cancels it. */
		ctl_client_close(c);
	else if (c->eof)
		ctl_client_finish(c);
	else
		/* Reading may have paused for an asynchronous command. */
		ctl_read_start(c);
}

/* Room for more input: the buffer grows up to CTL_IN_MAX. */
static void ctl_in_room(struct ctl_client *c)
{
	if (c->incap - c->inlen < 1024 && c->incap < CTL_IN_MAX) {
		size_t cap = MIN(MAX(c->incap * 2, (size_t)CTL_IN_INITIAL),
				 (size_t)CTL_IN_MAX);
		char *n = realloc(c->in, cap);

		if (n) {
			c->in = n;
			c->incap = cap;
		}
	}
}

static void ctl_line_too_long(struct ctl_client *c)
{
	struct ctl_request *rq = ctl_request_new(c);

	ctl_client_discard(c);
	ctl_fds_drop(c);
	if (rq)
		ctl_reply_error(rq, "bad-request",
				"the request line is longer than 64 KiB");
	ctl_client_finish(c);
}

/*
 * One recvmsg: the bytes go to the input buffer, descriptors that came
 * with them to the client's list (ctl-fds.c). > 0 bytes read, 0 at EOF,
 * -EAGAIN, or another -errno (the client is closed then, after an error
 * line when the descriptors were wrong).
 */
static ssize_t ctl_receive(struct ctl_client *c)
{
	char cbuf[CMSG_SPACE(sizeof(int) * CTL_FDS_MAX)];
	char scratch[4096];
	struct iovec iov;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	char why[512];
	ssize_t n;
	int r;

	if (ctl_client_listens(c)) {
		/* Input after --follow is read only to notice EOF. */
		iov = (struct iovec){ scratch, sizeof(scratch) };
	} else {
		ctl_in_room(c);
		iov = (struct iovec){ c->in + c->inlen, c->incap - c->inlen };
		if (iov.iov_len == 0)
			return -ENOMEM; /* no room, and none to be had */
	}
	do
		n = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (!ctl_client_listens(c))
		c->inlen += (size_t)n;
	else
		c->in_off += (uint64_t)n;
	r = ctl_fds_receive(c, &msg, c->in_off + c->inlen, why, sizeof(why));
	if (r < 0) {
		/* Input is read only while no request runs: this error line
		 * is the next thing the client gets. */
		struct ctl_request *rq = ctl_request_new(c);

		if (rq)
			ctl_framing_error_code(c, rq,
					       r == -ENFILE ? "limit"
							    : "bad-descriptor",
					       why);
		else
			ctl_client_close(c);
		return -EPROTO;
	}
	return n;
}

static void ctl_client_readable(struct ctl_client *c)
{
	ssize_t n;

	if (c->inlen >= c->incap && c->incap >= CTL_IN_MAX &&
	    !ctl_client_listens(c)) {
		ctl_line_too_long(c);
		return;
	}
	n = ctl_receive(c);
	if (n == -EAGAIN || n == -EPROTO)
		return;
	if (n < 0) {
		ctl_client_close(c);
		return;
	}
	if (n == 0) {
		c->eof = true;
		c->reading = false;
		ctl_client_poll(c);
		ctl_client_process(c);
		return;
	}
	ctl_client_process(c);
	if (c->closing || uv_is_active((uv_handle_t *)&c->resume))
		return;
	if (c->pending) {
		/* Later lines wait for the running command's reply. */
		ctl_read_stop(c);
		return;
	}
	if (!ctl_client_listens(c) && c->inlen >= CTL_IN_MAX)
		ctl_line_too_long(c);
}

static void ctl_on_io(uv_poll_t *p, int status, int events)
{
	struct ctl_client *c = p->data;

	if (status < 0) {
		/* POLLERR: the peer reset the connection. */
		ctl_client_close(c);
		return;
	}
	if (events & UV_WRITABLE)
		ctl_output_writable(c);
	if (!c->closing && (events & UV_READABLE) && c->reading)
		ctl_client_readable(c);
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
	c->fd = fd;
	c->handles = 3;
	uv_timer_init(ctl->h->loop, &c->resume);
	uv_timer_init(ctl->h->loop, &c->drain);
	c->poll.data = c;
	c->resume.data = c;
	c->drain.data = c;
	if (uv_poll_init(ctl->h->loop, &c->poll, fd) < 0) {
		close(fd);
		c->fd = -1;
		c->handles = 2;
		uv_close((uv_handle_t *)&c->resume, ctl_client_closed);
		uv_close((uv_handle_t *)&c->drain, ctl_client_closed);
		return;
	}
	c->poll.data = c;
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
	ctl_read_start(c);
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
			    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
				      "clients", (json_int_t)ctl->nclients,
				      "followers", (json_int_t)ctl->followers,
				      "unread_bytes", (json_int_t)ctl->held,
				      "dropped", (json_int_t)ctl->dropped,
				      "refused", (json_int_t)ctl->refused,
				      "operations", (json_int_t)h->nops,
				      "descriptors_waiting",
				      (json_int_t)ctl->fds_pending));
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
	uv_timer_init(h->loop, &ctl->ops_due);
	ctl->ops_due.data = h;
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
	/* Operations' clients hear why they end, as far as their sockets
	 * take the line now; the owners are told to stop. */
	ctl_ops_stop(h);
	while (ctl->clients) {
		struct ctl_client *c = ctl->clients;

		/* A failed write closes c (it stays allocated until its
		 * handles are closed by the loop). */
		ctl_output_flush(c);
		if (!c->closing)
			ctl_client_close(c);
	}
	ctl->handles = 3 + ctl_output_close(ctl, ctl_free_when_closed);
	ctl->pause.data = ctl;
	ctl->ops_due.data = ctl;
	uv_close((uv_handle_t *)&ctl->poll, ctl_free_when_closed);
	uv_close((uv_handle_t *)&ctl->pause, ctl_free_when_closed);
	uv_close((uv_handle_t *)&ctl->ops_due, ctl_free_when_closed);
	close(ctl->fd);
	unlink(h->cfg.socket);
	h->ctl = NULL;
}
