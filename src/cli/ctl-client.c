/* SPDX-License-Identifier: MIT */
/*
 * The client side of the control socket (docs/control.md): connect, send
 * one JSON line (with descriptors as SCM_RIGHTS when a command takes
 * them), read JSON lines back, and split a reply into its result or its
 * error. Blocking sockets and poll() are all a CLI needs.
 *
 * Nothing here prints: failures are described in a struct cli_error for
 * the command to report once (or, for `check`, to map to a state).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/duration.h"
#include "vmic.h"

/*
 * A reply line is never legitimately this large: large replies come in
 * pages (a page is at most a few MB); past it the peer is not a
 * vmic-hostd we understand.
 */
#define REPLY_MAX (64u * 1024u * 1024u)
#define READ_CHUNK 65536u

/* The request id we send and expect echoed. */
#define REQUEST_ID 1

/*
 * Connect to the daemon's socket at path. Fills e and returns -errno on
 * failure: a missing socket or refused connection means no daemon runs,
 * EACCES/EPERM means the caller may not use it.
 */
int cli_ctl_open(struct cli_ctl *c, const char *path, struct cli_error *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	int err;

	*c = (struct cli_ctl){ .fd = -1, .path = path };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		cli_error_set(e, CLI_ERR_CONNECT,
			      "the path is too long for a unix socket (at "
			      "most %zu bytes)",
			      sizeof(sa.sun_path) - 1);
		e->errnum = ENAMETOOLONG;
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = errno;
		cli_error_set(e, CLI_ERR_CONNECT, "socket: %s", strerror(err));
		e->errnum = err;
		return -err;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = errno;
		if (err == ENOENT || err == ECONNREFUSED)
			cli_error_set(e, CLI_ERR_NO_DAEMON, "%s", path);
		else if (err == EACCES || err == EPERM)
			cli_error_set(e, CLI_ERR_ACCESS, "%s", path);
		else
			cli_error_set(e, CLI_ERR_CONNECT, "%s", strerror(err));
		e->errnum = err;
		return -err;
	}
	c->fd = TAKE_FD(fd);
	return 0;
}

/* Close the connection and free its buffer; safe to call twice. */
void cli_ctl_close(struct cli_ctl *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
}

/* Write all of buf; MSG_NOSIGNAL so a vanished daemon is an error. */
static int send_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Write buf with fds[0..nfds) as SCM_RIGHTS on the sendmsg that carries
 * its first byte (docs/control.md, "Descriptors"), the rest after it.
 */
static int send_with_fds(int fd, const char *buf, size_t n, const int *fds,
			 size_t nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * CTL_FDS_MAX)] = { 0 };
	struct iovec iov = { (void *)buf, n };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	ssize_t w;

	if (nfds == 0)
		return send_all(fd, buf, n);
	if (nfds > CTL_FDS_MAX)
		return -E2BIG;
	msg.msg_control = cbuf;
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	do
		w = sendmsg(fd, &msg, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;
	return send_all(fd, buf + w, n - (size_t)w);
}

/*
 * Send o as one line (compact JSON + '\n'), with descriptors: "fds" says
 * how many. Fills e naming `what` ("the request") on failure.
 */
int cli_ctl_send_line(struct cli_ctl *c, json_t *o, const int *fds, size_t nfds,
		      const char *what, struct cli_error *e)
{
	_cleanup_free_ char *line = NULL;
	_cleanup_free_ char *text = NULL;
	size_t n;
	int r;

	if (nfds > 0 &&
	    json_object_set_new(o, "fds", json_integer((json_int_t)nfds)) < 0) {
		cli_error_set(e, CLI_ERR_LOCAL, "cannot build %s", what);
		return -ENOMEM;
	}
	text = json_dumps(o, JSON_COMPACT);
	n = text ? strlen(text) : 0;
	line = text ? malloc(n + 1) : NULL;
	if (!line) {
		cli_error_set(e, CLI_ERR_LOCAL, "cannot encode %s", what);
		return -ENOMEM;
	}
	memcpy(line, text, n);
	line[n] = '\n';
	/* One write for the whole line: its descriptors go with its first
	 * byte. */
	r = send_with_fds(c->fd, line, n + 1, fds, nfds);
	if (r < 0) {
		cli_error_set(e, CLI_ERR_IO,
			      "cannot send %s to vmic-hostd at %s: %s", what,
			      c->path, strerror(-r));
		e->errnum = -r;
	}
	return r;
}

/* Send req as one line (compact JSON + '\n'). */
static int cli_ctl_send(struct cli_ctl *c, json_t *req, struct cli_error *e)
{
	return cli_ctl_send_line(c, req, NULL, 0, "the request", e);
}

/* Make room for READ_CHUNK more bytes, within REPLY_MAX. */
static int grow_buffer(struct cli_ctl *c)
{
	size_t cap = c->cap ? c->cap * 2 : READ_CHUNK;
	char *p;

	if (c->cap - c->len >= READ_CHUNK)
		return 0;
	while (cap - c->len < READ_CHUNK)
		cap *= 2;
	if (cap > REPLY_MAX + READ_CHUNK)
		return -EMSGSIZE;
	p = realloc(c->buf, cap);
	if (!p)
		return -ENOMEM;
	c->buf = p;
	c->cap = cap;
	return 0;
}

/*
 * Wait until fd is readable or the deadline (monotonic us, 0 = never)
 * passes. Returns 0, -ETIMEDOUT or -errno.
 */
static int wait_readable(int fd, uint64_t deadline_us)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int timeout, r;

	for (;;) {
		timeout = -1;
		if (deadline_us) {
			uint64_t now = vmic_mono_us();

			if (now >= deadline_us)
				return -ETIMEDOUT;
			timeout = (int)((deadline_us - now + 999) / 1000);
		}
		r = poll(&p, 1, timeout);
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* Read more bytes; 0 at end of stream, > 0 bytes read, or -errno. */
static ssize_t read_more(struct cli_ctl *c, uint64_t deadline_us)
{
	ssize_t n;
	int r;

	r = grow_buffer(c);
	if (r < 0)
		return r;
	r = wait_readable(c->fd, deadline_us);
	if (r < 0)
		return r;
	do
		n = read(c->fd, c->buf + c->len, c->cap - c->len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	c->len += (size_t)n;
	return n;
}

/*
 * One read of what the daemon sent, when poll said the socket is
 * readable: > 0 bytes read, 0 at its end, or -errno (-EMSGSIZE past
 * REPLY_MAX without a whole line).
 */
ssize_t cli_ctl_read_some(struct cli_ctl *c)
{
	ssize_t n;
	int r = grow_buffer(c);

	if (r < 0)
		return r;
	do
		n = read(c->fd, c->buf + c->len, c->cap - c->len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	c->len += (size_t)n;
	return n;
}

/* Parse the first len bytes of the buffer as one JSON object. */
static int parse_line(struct cli_ctl *c, size_t len, json_t **line,
		      struct cli_error *e)
{
	json_error_t jerr;
	json_t *v;

	v = json_loadb(c->buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!v) {
		cli_error_set(e, CLI_ERR_PROTOCOL,
			      "the reply is not valid JSON (column %d: %s)",
			      jerr.column, jerr.text);
		return -EPROTO;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		cli_error_set(e, CLI_ERR_PROTOCOL,
			      "the reply is not a JSON object");
		return -EPROTO;
	}
	*line = v;
	return 0;
}

/* Describe a failed read in e; returns r. */
static int read_failed(struct cli_ctl *c, int r, int timeout_ms,
		       struct cli_error *e)
{
	if (r == 0 && c->len == 0)
		cli_error_set(e, CLI_ERR_IO,
			      "vmic-hostd closed the connection without "
			      "answering; its log (journalctl -u vmic-hostd) "
			      "may say why");
	else if (r == 0)
		cli_error_set(e, CLI_ERR_PROTOCOL,
			      "the reply ends in the middle of a line");
	else if (r == -ETIMEDOUT)
		cli_error_set(e, CLI_ERR_TIMEOUT,
			      "vmic-hostd did not answer within %d s; it may "
			      "be overloaded or stuck",
			      (timeout_ms + 999) / 1000);
	else if (r == -EMSGSIZE)
		cli_error_set(e, CLI_ERR_PROTOCOL,
			      "the reply is longer than %u MiB",
			      REPLY_MAX >> 20);
	else
		cli_error_set(e, CLI_ERR_IO,
			      "cannot read from vmic-hostd at %s: %s", c->path,
			      strerror(-r));
	if (r < 0)
		e->errnum = -r;
	return r == 0 ? -ECONNRESET : r;
}

/*
 * The next whole line of what was read, parsed into a JSON object (a new
 * reference in *line): 1, or 0 when no whole line is buffered, or < 0
 * with e filled (the line is consumed either way).
 */
int cli_ctl_next_line(struct cli_ctl *c, json_t **line, struct cli_error *e)
{
	char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
	int r;

	if (!nl)
		return 0;
	r = parse_line(c, (size_t)(nl - c->buf), line, e);
	c->len -= (size_t)(nl + 1 - c->buf);
	memmove(c->buf, nl + 1, c->len);
	return r < 0 ? r : 1;
}

/* True when a whole line is buffered: cli_ctl_recv will not block. */
bool cli_ctl_has_line(const struct cli_ctl *c)
{
	return c->len > 0 && memchr(c->buf, '\n', c->len) != NULL;
}

/*
 * Wait for the daemon's next bytes, watching stdout too: when the reader
 * of a pipe went away (`| head`), a follower stops now rather than at the
 * next line, which may be hours away. poll reports POLLERR/POLLHUP on
 * stdout without asking. True when stdout's reader left.
 */
static bool wait_or_reader_left(const struct cli_ctl *c)
{
	struct pollfd p[2] = {
		{ .fd = c->fd, .events = POLLIN },
		{ .fd = STDOUT_FILENO, .events = 0 },
	};

	if (cli_ctl_has_line(c))
		return false;
	while (poll(p, 2, -1) < 0)
		if (errno != EINTR)
			return false;
	return (p[1].revents & (POLLERR | POLLHUP)) != 0;
}

/*
 * The next line of a stream that runs until the user ends it (`events
 * --follow`, `kvp watch`): -EPIPE when stdout's reader left, otherwise
 * cli_ctl_recv's answer with no time limit; a daemon that hung up is named
 * as having closed `what`.
 */
int cli_ctl_follow_next(struct cli_ctl *c, const char *what, json_t **line,
			struct cli_error *e)
{
	int r;

	if (wait_or_reader_left(c))
		return -EPIPE;
	r = cli_ctl_recv(c, CTL_NO_TIMEOUT, line, e);
	if (r == -ECONNRESET && e->kind == CLI_ERR_IO)
		cli_error_set(e, CLI_ERR_IO,
			      "vmic-hostd closed %s (stopped or restarted?)",
			      what);
	return r;
}

/*
 * Read the next line and parse it into a JSON object (a new reference in
 * *line). timeout_ms bounds the wait (CTL_NO_TIMEOUT: wait for ever).
 * Fails with CLI_ERR_TIMEOUT, CLI_ERR_IO (hang-up) or CLI_ERR_PROTOCOL.
 */
int cli_ctl_recv(struct cli_ctl *c, int timeout_ms, json_t **line,
		 struct cli_error *e)
{
	uint64_t deadline = 0;
	size_t scanned = 0;
	char *nl;
	int r;

	if (timeout_ms >= 0)
		deadline = vmic_mono_us() + (uint64_t)timeout_ms * 1000 + 1;
	for (;;) {
		ssize_t n;

		nl = c->len > scanned
			     ? memchr(c->buf + scanned, '\n', c->len - scanned)
			     : NULL;
		if (nl)
			break;
		scanned = c->len;
		n = read_more(c, deadline);
		if (n <= 0)
			return read_failed(c, (int)n, timeout_ms, e);
	}
	r = parse_line(c, (size_t)(nl - c->buf), line, e);
	c->len -= (size_t)(nl + 1 - c->buf);
	memmove(c->buf, nl + 1, c->len);
	return r;
}

/*
 * Split a reply {"ok": true, "result": {...}} / {"ok": false, "error":
 * {"code", "message"}}. On success *result is borrowed from reply. A
 * daemon error becomes CLI_ERR_DAEMON (CLI_ERR_ACCESS for
 * permission-denied); a reply of another shape is CLI_ERR_PROTOCOL.
 */
static int cli_ctl_unwrap(json_t *reply, json_t **result, struct cli_error *e)
{
	json_t *ok = json_object_get(reply, "ok"), *err, *id;
	const char *code, *message;

	id = json_object_get(reply, "id");
	if (id && !json_is_null(id) &&
	    !(json_is_integer(id) && json_integer_value(id) == REQUEST_ID)) {
		cli_error_set(e, CLI_ERR_PROTOCOL,
			      "the reply answers another request (id)");
		return -EPROTO;
	}
	if (!json_is_boolean(ok)) {
		cli_error_set(e, CLI_ERR_PROTOCOL,
			      "the reply lacks 'ok' (true or false)");
		return -EPROTO;
	}
	if (json_is_true(ok)) {
		*result = json_object_get(reply, "result");
		if (!json_is_object(*result)) {
			cli_error_set(e, CLI_ERR_PROTOCOL,
				      "the reply lacks 'result' (an object)");
			return -EPROTO;
		}
		return 0;
	}
	err = json_object_get(reply, "error");
	if (json_unpack(err, "{s:s, s:s}", "code", &code, "message",
			&message) < 0) {
		cli_error_set(e, CLI_ERR_PROTOCOL,
			      "an error reply lacks 'error' with 'code' and "
			      "'message' (strings)");
		return -EPROTO;
	}
	cli_error_set(e,
		      strcmp(code, "permission-denied") == 0 ? CLI_ERR_ACCESS
							      : CLI_ERR_DAEMON,
		      "%s", message);
	snprintf(e->code, sizeof(e->code), "%s", code);
	return -EREMOTEIO;
}

/*
 * Add the request id, send req on an open connection and wait for the
 * first line of its reply (*reply, a new reference). When the daemon hung
 * up while we were sending, a reply it wrote first (permission-denied) is
 * still read and reported.
 */
static int cli_ctl_exchange(struct cli_ctl *c, json_t *req, int timeout_ms,
			    json_t **reply, struct cli_error *e)
{
	struct cli_error send_err = { 0 };
	int r;

	if (json_object_set_new(req, "id", json_integer(REQUEST_ID)) < 0) {
		cli_error_set(e, CLI_ERR_LOCAL, "cannot build the request");
		return -ENOMEM;
	}
	r = cli_ctl_send(c, req, &send_err);
	r = cli_ctl_recv(c, r < 0 ? 1000 : timeout_ms, reply, e);
	if (r < 0 && send_err.kind != CLI_ERR_NONE)
		*e = send_err;
	return r;
}

/*
 * Send req on an open connection and wait for its reply. *result is a
 * new reference on success.
 */
int cli_ctl_request(struct cli_ctl *c, json_t *req, int timeout_ms,
		    json_t **result, struct cli_error *e)
{
	json_t *reply = NULL, *res;
	int r;

	r = cli_ctl_exchange(c, req, timeout_ms, &reply, e);
	if (r < 0)
		return r;
	r = cli_ctl_unwrap(reply, &res, e);
	if (r == 0)
		*result = json_incref(res);
	json_decref(reply);
	return r;
}

/* ---- paged replies (docs/control.md, "Paged replies") ---- */

/* The head of a paged reply, or a one-line reply's array: into p. */
static int pages_begin(json_t *reply, json_t *res, const char *key,
		       struct cli_ctl_pages *p, struct cli_error *e)
{
	json_t *pages = json_object_get(reply, "pages"), *items;

	if (pages) {
		if (!json_is_string(pages) ||
		    strcmp(json_string_value(pages), key) != 0) {
			cli_error_set(e, CLI_ERR_PROTOCOL,
				      "the reply comes in pages of something "
				      "other than '%s'",
				      key);
			return -EPROTO;
		}
		p->paged = true;
		p->result = json_incref(res);
		return 0;
	}
	/* A daemon that does not page answers in one line. */
	items = json_object_get(res, key);
	if (!json_is_array(items)) {
		cli_error_set(e, CLI_ERR_PROTOCOL,
			      "the reply lacks '%s' (an array)", key);
		return -EPROTO;
	}
	p->items = json_incref(items);
	p->result = json_incref(res);
	json_object_del(res, key);
	return 0;
}

/*
 * Send req asking for pages and read the head of the reply: p->result
 * is the result without its array `key`, whose items cli_ctl_pages_next
 * hands out. A daemon that answers in one line is read the same way.
 */
int cli_ctl_request_pages(struct cli_ctl *c, json_t *req, const char *key,
			  struct cli_ctl_pages *p, struct cli_error *e)
{
	json_t *reply = NULL, *res;
	int r;

	*p = (struct cli_ctl_pages){ .key = key };
	if (json_object_set_new(req, "paged", json_true()) < 0) {
		cli_error_set(e, CLI_ERR_LOCAL, "cannot build the request");
		return -ENOMEM;
	}
	r = cli_ctl_exchange(c, req, CTL_DEFAULT_TIMEOUT_MS, &reply, e);
	if (r < 0)
		return r;
	r = cli_ctl_unwrap(reply, &res, e);
	if (r == 0)
		r = pages_begin(reply, res, key, p, e);
	json_decref(reply);
	return r;
}

/* One line after the head: a page, the end, or the error that ended
 * the reply early. */
static int pages_line(json_t *line, struct cli_ctl_pages *p, json_t **page,
		      struct cli_error *e)
{
	json_t *items = json_object_get(line, "page"), *count, *res;
	json_t *id = json_object_get(line, "id");

	if (id && !(json_is_integer(id) &&
		    json_integer_value(id) == REQUEST_ID)) {
		cli_error_set(e, CLI_ERR_PROTOCOL,
			      "a page answers another request (id)");
		return -EPROTO;
	}
	if (json_is_array(items)) {
		*page = json_incref(items);
		p->count += json_array_size(items);
		return 0;
	}
	if (json_is_true(json_object_get(line, "end"))) {
		count = json_object_get(line, "count");
		p->ended = true;
		if (json_is_integer(count) &&
		    json_integer_value(count) == (json_int_t)p->count)
			return 0;
		cli_error_set(e, CLI_ERR_PROTOCOL,
			      "the reply ended with a count other than the "
			      "%zu items that came",
			      p->count);
		return -EPROTO;
	}
	if (json_object_get(line, "ok")) {
		int r = cli_ctl_unwrap(line, &res, e);

		if (r == 0) {
			cli_error_set(e, CLI_ERR_PROTOCOL,
				      "a reply came in the middle of a paged "
				      "one");
			return -EPROTO;
		}
		if (e->kind == CLI_ERR_DAEMON) {
			char msg[sizeof(e->message)];

			snprintf(msg, sizeof(msg), "%s", e->message);
			cli_error_set(e, CLI_ERR_DAEMON,
				      "the reply broke off after %zu items: "
				      "%s",
				      p->count, msg);
		}
		return r;
	}
	cli_error_set(e, CLI_ERR_PROTOCOL,
		      "a line of a paged reply has neither 'page' nor 'end'");
	return -EPROTO;
}

/*
 * The next page of items (*page, a new reference to an array), or NULL
 * once the reply is complete. A reply that the daemon ended with an
 * error, or that stops short of its end line, is an error: the items
 * handed out so far are not all of it.
 */
int cli_ctl_pages_next(struct cli_ctl *c, struct cli_ctl_pages *p,
		       json_t **page, struct cli_error *e)
{
	json_t *line = NULL;
	int r;

	*page = NULL;
	if (p->ended)
		return 0;
	if (!p->paged) {
		p->ended = true;
		p->count = json_array_size(p->items);
		*page = p->items;
		p->items = NULL;
		return 0;
	}
	r = cli_ctl_recv(c, CTL_DEFAULT_TIMEOUT_MS, &line, e);
	if (r == -ECONNRESET) {
		cli_error_set(e, CLI_ERR_IO,
			      "vmic-hostd closed the connection in the middle "
			      "of a reply, after %zu items; its log "
			      "(journalctl -u vmic-hostd) may say why",
			      p->count);
		return r;
	}
	if (r < 0)
		return r;
	r = pages_line(line, p, page, e);
	json_decref(line);
	return r;
}

/* Free what p holds (the head's result, a one-line reply's items). */
void cli_ctl_pages_free(struct cli_ctl_pages *p)
{
	json_decref(p->result);
	json_decref(p->items);
	p->result = p->items = NULL;
}

/*
 * One request on a connection of its own: connect to cli->socket_path,
 * send req, return the reply's result (a new reference) or fill e. Takes
 * over req (NULL, a failed json_pack, is reported), so a request can be
 * built in the call.
 */
int cli_ctl_call(const struct cli *cli, json_t *req, int timeout_ms,
		 json_t **result, struct cli_error *e)
{
	struct cli_ctl c;
	int r;

	if (!req) {
		cli_error_set(e, CLI_ERR_LOCAL, "cannot build the request");
		return -ENOMEM;
	}
	r = cli_ctl_open(&c, cli->socket_path, e);
	if (r == 0) {
		r = cli_ctl_request(&c, req, timeout_ms, result, e);
		cli_ctl_close(&c);
	}
	json_decref(req);
	return r;
}
