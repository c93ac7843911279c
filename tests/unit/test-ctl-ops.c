/* SPDX-License-Identifier: MIT */
/*
 * Descriptors over the control socket and long operations, through a
 * real vmic-hostd core run in this process (its store in a temporary
 * directory, its writer thread and thread pool running) with the tests'
 * own commands (ctl-test-commands.c), driven over real unix sockets with
 * sendmsg and SCM_RIGHTS. The core runs here, so this process's own
 * descriptors are the daemon's: the leak check counts /proc/self/fd.
 *
 * Every wait is on a condition: the loop turns, and the socket is polled
 * for at most a millisecond between turns, until what is awaited came
 * (or a generous bound of turns passed, which fails the test).
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/log.h"
#include "ctl-test-commands.h"
#include "host/ctl-internal.h"
#include "host/hostd.h"
#include "transport/link.h"

/* Loop turns (each polling the client for <= 1 ms) before giving up. */
#define TURNS 20000
#define LINE_MAX_TEST (1 << 20)

struct world {
	struct hostd h;
	uv_loop_t loop;
	char *dir;
};

struct client {
	int fd;
	char buf[LINE_MAX_TEST];
	size_t len;
	bool eof;
};

/* ---- the daemon ---- */

static void conf(struct world *w, const char *section, const char *key,
		 const char *value)
{
	char err[256];

	assert_int_equal(vmic_conf_set(&hostd_conf_table, &w->h.cfg, section,
				       key, value, err, sizeof(err)),
			 0);
}

static struct world *world_new(const char *max_per_vm, const char *max_ops)
{
	struct world *w = calloc(1, sizeof(*w));
	char path[300];

	assert_non_null(w);
	w->dir = tu_mkdtemp();
	assert_int_equal(uv_loop_init(&w->loop), 0);
	w->h.loop = &w->loop;
	assert_int_equal(hostd_config_defaults(&w->h.cfg), 0);
	snprintf(path, sizeof(path), "%s/state", w->dir);
	conf(w, "daemon", "state-dir", path);
	snprintf(path, sizeof(path), "%s/ctl.sock", w->dir);
	conf(w, "daemon", "socket", path);
	conf(w, "connection", "retry-min", "1h");
	conf(w, "connection", "retry-max", "1h");
	conf(w, "connection", "max-streams", "3");
	if (max_per_vm)
		conf(w, "control", "max-operations-per-vm", max_per_vm);
	if (max_ops)
		conf(w, "control", "max-operations", max_ops);
	assert_int_equal(mkdir(w->h.cfg.state_dir, 0750), 0);
	assert_int_equal(ctl_open(&w->h), 0);
	assert_int_equal(services_daemon_start(&w->h), 0);
	assert_int_equal(store_open(&w->h), 0);
	assert_int_equal(store_load_vms(&w->h), 0);
	events_init(&w->h);
	assert_int_equal(store_start(&w->h), 0);
	ctl_commands_extend(ctl_test_commands, ctl_test_command_count);
	memset(&ctl_test_counts, 0, sizeof(ctl_test_counts));
	return w;
}

static void world_free(struct world *w)
{
	w->h.stopping = true;
	while (w->h.nvms > 0)
		vm_destroy(w->h.vms[w->h.nvms - 1], DETACH_STOPPING);
	ctl_close(&w->h);
	services_daemon_stop(&w->h);
	events_close(&w->h);
	clock_stop(&w->h);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	events_close(&w->h);
	store_stop(&w->h);
	assert_int_equal(uv_loop_close(&w->loop), 0);
	store_close(&w->h);
	free(w->h.vms);
	hostd_config_free(&w->h.cfg);
	tu_rmtree(w->dir);
	free(w);
}

static int setup(void **state)
{
	log_init("test-ctl-ops", LOG_TARGET_STDERR);
	log_set_max_level(LOG_ERR);
	signal(SIGPIPE, SIG_IGN);
	*state = world_new(NULL, NULL);
	return 0;
}

static int setup_limits(void **state)
{
	log_init("test-ctl-ops", LOG_TARGET_STDERR);
	log_set_max_level(LOG_ERR);
	signal(SIGPIPE, SIG_IGN);
	*state = world_new("2", "3");
	return 0;
}

static int teardown(void **state)
{
	world_free(*state);
	return 0;
}

static void turn(struct world *w)
{
	uv_run(&w->loop, UV_RUN_NOWAIT);
}

/* ---- a client ---- */

static struct client *client_new(struct world *w)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct client *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", w->h.cfg.socket);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)),
			 0);
	return c;
}

static void client_free(struct world *w, struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	for (int i = 0; i < 20; i++)
		turn(w);
}

/* Send text (one or more lines, or less) with fds as SCM_RIGHTS on the
 * one sendmsg that carries its first byte; false when the daemon closed
 * the connection meanwhile. */
static bool client_send_maybe(struct world *w, struct client *c,
			      const char *text, const int *fds, size_t nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 32)] = { 0 };
	struct iovec iov = { (void *)text, strlen(text) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	size_t sent = 0;

	if (nfds) {
		struct cmsghdr *cm;

		assert_true(nfds <= 32);
		msg.msg_control = cbuf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	for (int i = 0; i < TURNS && sent < strlen(text); i++) {
		ssize_t n;

		iov = (struct iovec){ (void *)(text + sent),
				      strlen(text) - sent };
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		if (n > 0) {
			sent += (size_t)n;
			msg.msg_control = NULL;
			msg.msg_controllen = 0;
		} else if (errno == EPIPE || errno == ECONNRESET) {
			return false;
		} else {
			assert_true(errno == EAGAIN);
			turn(w);
		}
	}
	assert_int_equal(sent, strlen(text));
	return true;
}

static void client_send(struct world *w, struct client *c, const char *text,
			const int *fds, size_t nfds)
{
	assert_true(client_send_maybe(w, c, text, fds, nfds));
}

/* Read what came, without waiting. */
static void client_take(struct client *c)
{
	ssize_t n;

	while (!c->eof && c->len < sizeof(c->buf)) {
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len,
			 MSG_DONTWAIT);
		if (n > 0)
			c->len += (size_t)n;
		else if (n == 0 || (errno != EAGAIN && errno != EINTR))
			c->eof = true;
		else
			break;
	}
}

/* The next line from the daemon (parsed), or NULL at EOF. */
static json_t *client_line(struct world *w, struct client *c)
{
	for (int i = 0; i < TURNS; i++) {
		char *nl = memchr(c->buf, '\n', c->len);
		struct pollfd p = { .fd = c->fd, .events = POLLIN };

		if (nl) {
			json_error_t jerr;
			size_t n = (size_t)(nl - c->buf);
			json_t *o = json_loadb(c->buf, n, 0, &jerr);

			if (!o)
				fail_msg("not JSON: %.*s", (int)n, c->buf);
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			return o;
		}
		if (c->eof)
			return NULL;
		turn(w);
		poll(&p, 1, 1);
		client_take(c);
	}
	fail_msg("no line from the daemon");
	return NULL;
}

/* The daemon closes the connection (after any lines). */
static void client_expect_eof(struct world *w, struct client *c)
{
	json_t *o;

	while ((o = client_line(w, c))) {
		if (json_object_get(o, "progress") == NULL)
			fail_msg("a line before the close: %s",
				 json_dumps(o, JSON_COMPACT));
		json_decref(o);
	}
}

/* The reply's error code and message (borrowed from the reply, which the
 * caller frees). */
static const char *error_code(json_t *reply, const char **message)
{
	json_t *e = json_object_get(reply, "error");

	assert_true(json_is_false(json_object_get(reply, "ok")));
	*message = json_string_value(json_object_get(e, "message"));
	assert_non_null(*message);
	return json_string_value(json_object_get(e, "code"));
}

/* Send a request and expect an error of code whose message holds
 * `words`. */
static void expect_error(struct world *w, struct client *c, const char *req,
			 const int *fds, size_t nfds, const char *code,
			 const char *words)
{
	json_t *r;
	const char *msg;

	client_send(w, c, req, fds, nfds);
	r = client_line(w, c);
	assert_non_null(r);
	assert_string_equal(error_code(r, &msg), code);
	if (!strstr(msg, words))
		fail_msg("'%s' is not in: %s", words, msg);
	json_decref(r);
}

static json_t *expect_ok(struct world *w, struct client *c, const char *req,
			 const int *fds, size_t nfds)
{
	json_t *r;

	client_send(w, c, req, fds, nfds);
	r = client_line(w, c);
	assert_non_null(r);
	if (!json_is_true(json_object_get(r, "ok")))
		fail_msg("not ok: %s", json_dumps(r, JSON_COMPACT));
	return r;
}

/* ---- descriptors to hand over ---- */

static int tmp_file(struct world *w, const char *text, int flags)
{
	char path[300];
	int fd;

	snprintf(path, sizeof(path), "%s/file", w->dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	fd = open(path, flags | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

static unsigned count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}

/* ---- errors quote what the client sent as valid UTF-8 ---- */

static void test_error_text_is_utf8(void **state)
{
	struct world *w = *state;
	struct client *c = client_new(w);
	char req[256];
	size_t off;

	/* The parser's message quotes bytes that are no UTF-8. */
	expect_error(w, c,
		     "{\"id\":1,\"L\\\xcc\x98\x01progress\":1}\n", NULL,
		     0, "bad-request", "the request is not JSON");
	/* A command name cut at 64 bytes in the middle of a character. */
	off = (size_t)snprintf(req, sizeof(req), "{\"cmd\":\"a");
	for (int i = 0; i < 40; i++)
		off += (size_t)snprintf(req + off, sizeof(req) - off,
					"\xc3\xa9");
	snprintf(req + off, sizeof(req) - off, "\"}\n");
	expect_error(w, c, req, NULL, 0, "unknown-command", "no command 'a");
	client_free(w, c);
}

/* ---- descriptors: accepted ---- */

static void test_fds_accepted(void **state)
{
	struct world *w = *state;
	struct client *c = client_new(w);
	int fd, p[2], sp[2];
	json_t *r;
	char buf[64];

	fd = tmp_file(w, "hello from the user's file", O_RDONLY);
	r = expect_ok(w, c, "{\"cmd\":\"t-read\",\"fds\":1}\n", &fd, 1);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(r, "result"), "data")),
			    "hello from the user's file");
	json_decref(r);
	close(fd);

	assert_int_equal(pipe(p), 0);
	r = expect_ok(w, c, "{\"cmd\":\"t-write\",\"fds\":1}\n", &p[1], 1);
	json_decref(r);
	close(p[1]);
	assert_int_equal(read(p[0], buf, sizeof(buf)), 22);
	assert_memory_equal(buf, "written by vmic-hostd\n", 22);
	close(p[0]);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	r = expect_ok(w, c, "{\"cmd\":\"t-read\",\"fds\":1}\n", &sp[0], 1);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(r, "result"), "kind")),
			    "socket");
	json_decref(r);
	close_all(sp, 2);

	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	r = expect_ok(w, c, "{\"cmd\":\"t-read\",\"fds\":1}\n", &fd, 1);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(r, "result"), "kind")),
			    "char");
	json_decref(r);
	close(fd);

	/* Two, in order; the second optional. */
	assert_int_equal(pipe(p), 0);
	r = expect_ok(w, c, "{\"cmd\":\"t-two\",\"fds\":2}\n", p, 2);
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(r, "result"), "fds")),
			 2);
	json_decref(r);
	r = expect_ok(w, c, "{\"cmd\":\"t-two\",\"fds\":1}\n", p, 1);
	json_decref(r);
	close_all(p, 2);
	client_free(w, c);
}

static void test_fds_terminal(void **state)
{
	struct world *w = *state;
	struct client *c = client_new(w);
	int master, slave, fd;
	json_t *r;

	if (openpty(&master, &slave, NULL, NULL, NULL) < 0) {
		client_free(w, c);
		skip();
	}
	r = expect_ok(w, c, "{\"cmd\":\"t-tty\",\"fds\":1}\n", &slave, 1);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(r, "result"), "kind")),
			    "terminal");
	json_decref(r);
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	expect_error(w, c, "{\"cmd\":\"t-tty\",\"fds\":1}\n", &fd, 1,
		     "bad-descriptor",
		     "descriptor 1 of 1 (terminal) of `t-tty` is a character "
		     "device; it must be a terminal");
	close(fd);
	close(master);
	close(slave);
	client_free(w, c);
}

/* ---- descriptors: every refusal ---- */

static void test_fds_wrong_kind(void **state)
{
	struct world *w = *state;
	struct client *c = client_new(w);
	int dir = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int sp[2], dg[2];

	expect_error(w, c, "{\"cmd\":\"t-read\",\"fds\":1}\n", &dir, 1,
		     "bad-descriptor",
		     "descriptor 1 of 1 (source) of `t-read` is a directory; "
		     "it must be a regular file, a pipe, a stream socket, a "
		     "terminal or a character device, open for reading");
	close(dir);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	expect_error(w, c, "{\"cmd\":\"t-write\",\"fds\":1}\n", &sp[0], 1,
		     "bad-descriptor",
		     "(destination) of `t-write` is a stream socket; it must "
		     "be a regular file or a pipe, open for writing");
	close_all(sp, 2);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, dg), 0);
	expect_error(w, c, "{\"cmd\":\"t-read\",\"fds\":1}\n", &dg[0], 1,
		     "bad-descriptor",
		     "is a socket that is not a stream socket");
	close_all(dg, 2);
	/* The connection goes on after each. */
	json_decref(expect_ok(w, c, "{\"cmd\":\"version\"}\n", NULL, 0));
	client_free(w, c);
}

static void test_fds_wrong_mode(void **state)
{
	struct world *w = *state;
	struct client *c = client_new(w);
	int ro = tmp_file(w, "x", O_RDONLY), wo, path, p[2];

	expect_error(w, c, "{\"cmd\":\"t-write\",\"fds\":1}\n", &ro, 1,
		     "bad-descriptor",
		     "(destination) of `t-write` is open for reading only");
	close(ro);
	wo = tmp_file(w, "x", O_WRONLY);
	expect_error(w, c, "{\"cmd\":\"t-read\",\"fds\":1}\n", &wo, 1,
		     "bad-descriptor",
		     "(source) of `t-read` is open for writing only");
	close(wo);
	assert_int_equal(pipe(p), 0);
	expect_error(w, c, "{\"cmd\":\"t-read\",\"fds\":1}\n", &p[1], 1,
		     "bad-descriptor", "is open for writing only");
	close_all(p, 2);
	path = tmp_file(w, "x", O_PATH);
	expect_error(w, c, "{\"cmd\":\"t-read\",\"fds\":1}\n", &path, 1,
		     "bad-descriptor", "O_PATH");
	close(path);
	client_free(w, c);
}

static void test_fds_counts(void **state)
{
	struct world *w = *state;
	struct client *c = client_new(w);
	int p[2], q[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(pipe(q), 0);
	/* More than it takes. */
	expect_error(w, c, "{\"cmd\":\"t-read\",\"fds\":2}\n", p, 2,
		     "bad-descriptor",
		     "`t-read` takes at most 1 descriptor (source: ");
	/* None when it needs one. */
	expect_error(w, c, "{\"cmd\":\"t-read\"}\n", NULL, 0, "bad-descriptor",
		     "`t-read` needs 1 descriptor (source: a regular file");
	/* Descriptors to a command that takes none. */
	expect_error(w, c, "{\"cmd\":\"version\",\"fds\":1}\n", p, 1,
		     "bad-descriptor",
		     "`version` takes no descriptors, but 1 came with the "
		     "request");
	/* A wrong one among several: named by its place and role. */
	expect_error(w, c, "{\"cmd\":\"t-two\",\"fds\":2}\n",
		     (int[]){ p[0], q[0] }, 2, "bad-descriptor",
		     "descriptor 2 of 2 (destination) of `t-two` is open for "
		     "reading only");
	/* An unknown command: its descriptors closed all the same. */
	expect_error(w, c, "{\"cmd\":\"nope\",\"fds\":2}\n", p, 2,
		     "unknown-command", "no command 'nope'");
	json_decref(expect_ok(w, c, "{\"cmd\":\"version\"}\n", NULL, 0));
	close_all(p, 2);
	close_all(q, 2);
	client_free(w, c);
}

/* Framing errors: the client gets a reason and is closed. */
static void framing_error(struct world *w, const char *text, const int *fds,
			  size_t nfds, bool shut, const char *words)
{
	struct client *c = client_new(w);
	const char *msg;
	json_t *r;

	client_send(w, c, text, fds, nfds);
	if (shut)
		shutdown(c->fd, SHUT_WR);
	r = client_line(w, c);
	assert_non_null(r);
	assert_string_equal(error_code(r, &msg), "bad-descriptor");
	if (!strstr(msg, words))
		fail_msg("'%s' is not in: %s", words, msg);
	json_decref(r);
	client_expect_eof(w, c);
	client_free(w, c);
}

static void test_fds_framing(void **state)
{
	struct world *w = *state;
	int p[2], many[CTL_FDS_MAX + 1];
	struct client *c;
	json_t *r;

	assert_int_equal(pipe(p), 0);
	/* With a line that does not declare them. */
	framing_error(w, "{\"cmd\":\"version\"}\n", p, 1, false,
		      "1 descriptor came with a request line that does not "
		      "declare it");
	/* With bytes that never become a request line that declares
	 * them. */
	framing_error(w, "{\"cmd\"", p, 2, true,
		      "2 descriptors came with a request line that does not "
		      "declare them");
	framing_error(w, "\n", p, 1, false,
		      "1 descriptor came with a request line that does not "
		      "declare it");
	/* Declared, but none came. */
	framing_error(w, "{\"cmd\":\"t-read\",\"fds\":1}\n", NULL, 0, false,
		      "the request line declares 1 descriptor (\"fds\"), but "
		      "0 came with it");
	/* A bad "fds". */
	framing_error(w, "{\"cmd\":\"t-read\",\"fds\":\"one\"}\n", NULL, 0,
		      false, "\"fds\" must be the number of descriptors");
	framing_error(w, "{\"cmd\":\"t-read\",\"fds\":9}\n", NULL, 0, false,
		      "\"fds\" must be the number of descriptors");
	/* More than one message may carry: the kernel cuts the rest off
	 * (MSG_CTRUNC). */
	for (size_t i = 0; i < ARRAY_SIZE(many); i++)
		many[i] = p[i % 2];
	framing_error(w, "{\"cmd\":\"t-two\",\"fds\":9}\n", many,
		      ARRAY_SIZE(many), false,
		      "more descriptors came with one message than a request "
		      "may carry (8)");
	/* With no request line at all: after `events --follow`, lines are
	 * not read as requests. */
	c = client_new(w);
	client_send(w, c, "{\"cmd\":\"events\",\"follow\":true}\n", NULL,
		    0);
	r = client_line(w, c);
	assert_true(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	client_send(w, c, "x", p, 1);
	r = client_line(w, c);
	assert_non_null(strstr(
		json_string_value(json_object_get(json_object_get(r, "error"),
						  "message")),
		"descriptors came with no request line that declares them"));
	json_decref(r);
	client_expect_eof(w, c);
	client_free(w, c);
	/* More than CTL_FDS_MAX waiting for a line to claim them. */
	c = client_new(w);
	client_send(w, c, "{", many, CTL_FDS_MAX);
	for (int i = 0; i < 50; i++)
		turn(w);
	client_send(w, c, "\"", many, 1);
	r = client_line(w, c);
	assert_non_null(r);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(r, "error"), "code")),
			    "bad-descriptor");
	assert_non_null(strstr(
		json_string_value(json_object_get(json_object_get(r, "error"),
						  "message")),
		"9 descriptors came before a request line claimed them"));
	json_decref(r);
	client_expect_eof(w, c);
	client_free(w, c);
	close_all(p, 2);
	/* None is held afterwards. */
	assert_int_equal(w->h.ctl->fds_pending, 0);
}

/* All clients together hold at most 256 descriptors waiting for their
 * lines: past that a client is closed with `limit`. */
static void test_fds_waiting_total(void **state)
{
	struct world *w = *state;
	struct client *c[33];
	int p[2], eight[CTL_FDS_MAX];
	const char *msg;
	json_t *r;

	assert_int_equal(pipe(p), 0);
	for (size_t i = 0; i < ARRAY_SIZE(eight); i++)
		eight[i] = p[0];
	for (size_t i = 0; i < 32; i++) {
		c[i] = client_new(w);
		client_send(w, c[i], "{", eight, CTL_FDS_MAX);
		for (int t = 0; t < TURNS && w->h.ctl->fds_pending < 8 * (i + 1);
		     t++)
			turn(w);
	}
	assert_int_equal(w->h.ctl->fds_pending, 256);
	c[32] = client_new(w);
	client_send(w, c[32], "{", eight, 1);
	r = client_line(w, c[32]);
	assert_string_equal(error_code(r, &msg), "limit");
	assert_non_null(strstr(msg, "vmic-hostd holds 256 descriptors of "
				    "request lines not read yet"));
	json_decref(r);
	client_expect_eof(w, c[32]);
	for (size_t i = 0; i < ARRAY_SIZE(c); i++)
		client_free(w, c[i]);
	for (int t = 0; t < TURNS && w->h.ctl->fds_pending; t++)
		turn(w);
	assert_int_equal(w->h.ctl->fds_pending, 0);
	close_all(p, 2);
}

/* One line with its descriptors split over two sendmsg calls: they may
 * come with any byte of the line. */
static void test_fds_lenient_split(void **state)
{
	struct world *w = *state;
	struct client *c = client_new(w);
	int fd = tmp_file(w, "split", O_RDONLY);
	json_t *r;

	client_send(w, c, "{\"cmd\":\"t-read\",", NULL, 0);
	for (int i = 0; i < 20; i++)
		turn(w);
	client_send(w, c, "\"fds\":1}\n", &fd, 1);
	r = client_line(w, c);
	assert_true(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	close(fd);
	client_free(w, c);
}

/* ---- no descriptor leaks: 1,000 requests, accepted and refused ---- */

static void one_round(struct world *w, struct client *c, unsigned i)
{
	int fd, p[2], dir;
	json_t *r;

	switch (i % 8) {
	case 0:
		fd = tmp_file(w, "leak check", O_RDONLY);
		json_decref(expect_ok(w, c,
				      "{\"cmd\":\"t-read\",\"fds\":1}\n", &fd,
				      1));
		close(fd);
		break;
	case 1:
		assert_int_equal(pipe(p), 0);
		json_decref(expect_ok(w, c,
				      "{\"cmd\":\"t-write\",\"fds\":1}\n",
				      &p[1], 1));
		close_all(p, 2);
		break;
	case 2:
		dir = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		expect_error(w, c, "{\"cmd\":\"t-read\",\"fds\":1}\n", &dir, 1,
			     "bad-descriptor", "is a directory");
		close(dir);
		break;
	case 3:
		assert_int_equal(pipe(p), 0);
		expect_error(w, c, "{\"cmd\":\"t-read\",\"fds\":2}\n", p, 2,
			     "bad-descriptor", "takes at most 1");
		close_all(p, 2);
		break;
	case 4:
		assert_int_equal(pipe(p), 0);
		expect_error(w, c, "{\"cmd\":\"version\",\"fds\":2}\n", p, 2,
			     "bad-descriptor", "takes no descriptors");
		close_all(p, 2);
		break;
	case 5:
		/* An operation with its input, ended by a message. */
		assert_int_equal(pipe(p), 0);
		client_send(w, c, "{\"id\":5,\"cmd\":\"t-op\",\"fds\":1}\n",
			    p, 1);
		client_send(w, c, "{\"id\":5,\"file\":1,\"fds\":1}\n", &p[0],
			    1); /* a pipe: refused */
		r = client_line(w, c);
		assert_non_null(json_object_get(r, "rejected"));
		json_decref(r);
		r = expect_ok(w, c, "{\"id\":5,\"finish\":true}\n", NULL, 0);
		json_decref(r);
		close_all(p, 2);
		break;
	case 6: {
		/* An operation cancelled by its client leaving, on a
		 * connection of its own. */
		struct client *o = client_new(w);

		fd = tmp_file(w, "op input", O_RDONLY);
		client_send(w, o, "{\"cmd\":\"t-op\",\"fds\":1}\n", &fd, 1);
		client_send(w, o, "{\"id\":null,\"say\":1}\n", NULL, 0);
		r = client_line(w, o);
		assert_non_null(json_object_get(r, "heard"));
		json_decref(r);
		close(fd);
		client_free(w, o);
		break;
	}
	default: {
		/* A framing error, on a connection of its own. */
		assert_int_equal(pipe(p), 0);
		framing_error(w, "{\"cmd\":\"version\"}\n", p, 2, false,
			      "does not declare");
		close_all(p, 2);
		break;
	}
	}
}

static void test_fds_no_leak(void **state)
{
	struct world *w = *state;
	struct client *c = client_new(w);
	unsigned before, after = 0;

	/* A first round opens what stays open (the store's readers). */
	for (unsigned i = 0; i < 8; i++)
		one_round(w, c, i);
	before = count_fds();
	for (unsigned i = 0; i < 1000; i++)
		one_round(w, c, i);
	/* Closed clients and ended operations settle within a few turns. */
	for (int i = 0; i < TURNS; i++) {
		turn(w);
		after = count_fds();
		if (after == before && w->h.nops == 0)
			break;
	}
	assert_int_equal(w->h.nops, 0);
	assert_int_equal(after, before);
	assert_int_equal(w->h.ctl->fds_pending, 0);
	assert_int_equal(ctl_test_counts.started, ctl_test_counts.ended);
	client_free(w, c);
}

/* ---- operations ---- */

static json_t *result_of(json_t *r)
{
	return json_object_get(r, "result");
}

static void test_op_lines_and_messages(void **state)
{
	struct world *w = *state;
	struct client *c = client_new(w);
	int fd = tmp_file(w, "message file", O_RDONLY);
	json_t *r, *msgs;

	client_send(w, c,
		    "{\"id\":\"op-1\",\"cmd\":\"t-op\",\"warn\":\"careful\"}\n",
		    NULL, 0);
	r = client_line(w, c);
	assert_string_equal(json_string_value(json_object_get(r, "warning")),
			    "careful");
	assert_string_equal(json_string_value(json_object_get(r, "id")),
			    "op-1");
	json_decref(r);
	/* Messages reach the owner, in order; its lines come back. */
	client_send(w, c,
		    "{\"id\":\"op-1\",\"say\":\"hello\"}\n"
		    "{\"id\":\"op-1\",\"progress\":{\"bytes\":10,\"total\":20}}\n"
		    "{\"id\":\"op-1\",\"signal\":\"INT\"}\n"
		    "{\"id\":\"op-1\",\"winsize\":[24,80]}\n",
		    NULL, 0);
	r = client_line(w, c);
	assert_string_equal(json_string_value(json_object_get(r, "heard")),
			    "hello");
	json_decref(r);
	r = client_line(w, c);
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(r, "progress"), "bytes")),
			 10);
	json_decref(r);
	r = client_line(w, c);
	assert_int_equal(json_integer_value(json_array_get(
				 json_object_get(r, "heard"), 0)),
			 24);
	json_decref(r);
	/* A message with a descriptor of the kind its messages take. */
	client_send(w, c, "{\"id\":\"op-1\",\"file\":true,\"fds\":1}\n", &fd,
		    1);
	r = client_line(w, c);
	assert_string_equal(json_string_value(json_object_get(r, "read")),
			    "message file");
	json_decref(r);
	close(fd);
	r = expect_ok(w, c, "{\"id\":\"op-1\",\"finish\":1}\n", NULL, 0);
	assert_string_equal(json_string_value(json_object_get(r, "id")),
			    "op-1");
	msgs = json_object_get(result_of(r), "messages");
	assert_int_equal(json_array_size(msgs), 6);
	assert_string_equal(
		json_string_value(json_object_get(json_array_get(msgs, 2),
						  "signal")),
		"INT");
	assert_int_equal(json_integer_value(json_array_get(
				 json_object_get(json_array_get(msgs, 3),
						 "winsize"),
				 1)),
			 80);
	assert_int_equal(json_integer_value(
				 json_object_get(result_of(r), "msg_fds")),
			 1);
	json_decref(r);
	assert_int_equal(w->h.nops, 0);
	/* A message that crossed the end is dropped; then requests. */
	client_send(w, c, "{\"id\":\"op-1\",\"say\":\"late\"}\n", NULL, 0);
	r = expect_ok(w, c, "{\"id\":2,\"cmd\":\"version\"}\n", NULL, 0);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 2);
	json_decref(r);
	client_free(w, c);
}

static void test_op_rejects(void **state)
{
	struct world *w = *state;
	struct client *c = client_new(w);
	int p[2];
	json_t *r;
	const char *want[] = {
		"while `t-op` runs, each line is a message to it with its "
		"request's id",
		"`t-op` takes no message 'dance'; it takes cancel, say, "
		"progress",
		"a message to `t-op` has \"id\" and one member more",
		"the message is not JSON",
		"a message is a JSON object",
		"a 'say' message of `t-op` takes at most 1 descriptor",
		"descriptor 1 of 1 (file) of a 'file' message of `t-op` is a "
		"pipe",
		"cancel is {\"id\": ID, \"cancel\": true}",
	};

	assert_int_equal(pipe(p), 0);
	client_send(w, c, "{\"id\":7,\"cmd\":\"t-op\",\"fds\":1}\n", p, 1);
	client_send(w, c,
		    "{\"id\":8,\"say\":1}\n"
		    "{\"id\":7,\"dance\":1}\n"
		    "{\"id\":7,\"say\":1,\"fail\":1}\n"
		    "not json\n"
		    "[7]\n",
		    NULL, 0);
	client_send(w, c, "{\"id\":7,\"say\":1,\"fds\":2}\n", p, 2);
	client_send(w, c, "{\"id\":7,\"file\":1,\"fds\":1}\n", p, 1);
	client_send(w, c, "{\"id\":7,\"cancel\":\"yes\"}\n", NULL, 0);
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		const char *msg;

		r = client_line(w, c);
		msg = json_string_value(json_object_get(
			json_object_get(r, "rejected"), "message"));
		if (!msg || !strstr(msg, want[i]))
			fail_msg("line %zu: '%s' is not in %s", i, want[i],
				 json_dumps(r, JSON_COMPACT));
		json_decref(r);
	}
	/* None reached the owner; the operation goes on. */
	assert_int_equal(ctl_test_counts.messages, 0);
	r = expect_ok(w, c, "{\"id\":7,\"finish\":1}\n", NULL, 0);
	assert_string_equal(json_string_value(json_object_get(result_of(r),
							       "input")),
			    "pipe");
	json_decref(r);
	close_all(p, 2);
	client_free(w, c);
}

static void test_op_cancel_asked(void **state)
{
	struct world *w = *state;
	struct client *c = client_new(w);
	const char *msg;
	json_t *r;

	client_send(w, c, "{\"id\":1,\"cmd\":\"t-op\"}\n", NULL, 0);
	client_send(w, c, "{\"id\":1,\"cancel\":true}\n", NULL, 0);
	r = client_line(w, c);
	assert_string_equal(error_code(r, &msg), "cancelled");
	assert_string_equal(msg, "the client cancelled the operation");
	json_decref(r);
	assert_int_equal(ctl_test_counts.cancels[CTL_OP_CANCEL_ASKED], 1);
	assert_int_equal(w->h.nops, 0);
	client_free(w, c);
}

/* The client closing its connection cancels the operation: the owner
 * hears it (once), and the operation's place is free again. */
static void test_op_cancel_by_close(void **state)
{
	struct world *w = *state;
	struct client *c = client_new(w);
	struct client *half = client_new(w);
	json_t *r;

	client_send(w, c, "{\"cmd\":\"t-op\",\"ticks\":1000000}\n", NULL, 0);
	r = client_line(w, c);
	assert_non_null(json_object_get(r, "progress"));
	json_decref(r);
	assert_int_equal(w->h.nops, 1);
	close(c->fd);
	c->fd = -1;
	for (int i = 0; i < TURNS && w->h.nops; i++)
		turn(w);
	assert_int_equal(w->h.nops, 0);
	assert_int_equal(ctl_test_counts.cancels[CTL_OP_CLIENT_GONE], 1);
	assert_int_equal(ctl_test_counts.ended, 1);
	/* Closing only its writing half counts as leaving too. */
	client_send(w, half, "{\"cmd\":\"t-op\"}\n", NULL, 0);
	for (int i = 0; i < TURNS && w->h.nops == 0; i++)
		turn(w);
	shutdown(half->fd, SHUT_WR);
	client_expect_eof(w, half);
	for (int i = 0; i < TURNS && w->h.nops; i++)
		turn(w);
	assert_int_equal(ctl_test_counts.cancels[CTL_OP_CLIENT_GONE], 2);
	client_free(w, c);
	client_free(w, half);
}

/* Progress lines a client has not begun to read are replaced: a client
 * that does not read holds one, and is not dropped (max-unread is 4 MiB,
 * the burst 16 MiB), nor cut off for being silent while it runs. */
static void test_op_progress_replaced(void **state)
{
	struct world *w = *state;
	struct client *c = client_new(w);
	struct ctl_client *cc;
	json_int_t last = 0;
	json_t *r;

	client_send(w, c, "{\"id\":3,\"cmd\":\"t-op\"}\n", NULL, 0);
	client_send(w, c, "{\"id\":3,\"burst\":1000}\n", NULL, 0);
	for (int i = 0; i < TURNS && ctl_test_counts.messages == 0; i++)
		turn(w);
	cc = w->h.ctl->clients;
	assert_non_null(cc);
	assert_true(cc->out_n <= 2);
	assert_true(cc->out_bytes < 2 * 17000 + 1024);
	assert_false(uv_is_active((uv_handle_t *)&cc->drain));
	assert_false(cc->dropped);
	/* What comes ends with the last one; fewer than were made. */
	client_send(w, c, "{\"id\":3,\"finish\":1}\n", NULL, 0);
	unsigned lines = 0;
	while ((r = client_line(w, c)) &&
	       !json_object_get(r, "ok")) {
		last = json_integer_value(json_object_get(
			json_object_get(r, "progress"), "bytes"));
		lines++;
		json_decref(r);
	}
	assert_non_null(r);
	json_decref(r);
	assert_int_equal(last, 1000);
	assert_true(lines < 1000);
	client_free(w, c);
}

static void test_op_client_reads_nothing_else(void **state)
{
	struct world *w = *state;
	struct client *c = client_new(w);
	json_t *r;

	/* Lines of its own kinds count against max-unread: a client that
	 * reads none of 4 MiB of them is dropped, which cancels. */
	client_send(w, c, "{\"id\":4,\"cmd\":\"t-op\"}\n", NULL, 0);
	for (int i = 0; i < 400; i++) {
		char line[16500];

		snprintf(line, sizeof(line), "{\"id\":4,\"say\":\"%0*d\"}\n",
			 16384, i);
		if (!client_send_maybe(w, c, line, NULL, 0) ||
		    ctl_test_counts.cancels[CTL_OP_CLIENT_GONE])
			break;
	}
	for (int i = 0; i < TURNS && w->h.nops; i++)
		turn(w);
	assert_int_equal(ctl_test_counts.cancels[CTL_OP_CLIENT_GONE], 1);
	assert_int_equal(w->h.nops, 0);
	while ((r = client_line(w, c)))
		json_decref(r);
	client_free(w, c);
}

/* ---- VMs: the limits, removal ---- */

static void add_vm(struct world *w, struct client *c, const char *name)
{
	char req[512];

	snprintf(req, sizeof(req),
		 "{\"cmd\":\"add\",\"vm\":\"%s\",\"channel\":"
		 "\"unix:%s/%s.sock\"}\n",
		 name, w->dir, name);
	json_decref(expect_ok(w, c, req, NULL, 0));
}

static struct client *start_op(struct world *w, const char *vm)
{
	struct client *c = client_new(w);
	char req[256];
	json_t *r;

	snprintf(req, sizeof(req),
		 "{\"cmd\":\"t-op\",\"vm\":\"%s\",\"warn\":\"started\"}\n", vm);
	client_send(w, c, req, NULL, 0);
	r = client_line(w, c);
	assert_non_null(json_object_get(r, "warning"));
	json_decref(r);
	return c;
}

static void test_op_limits(void **state)
{
	struct world *w = *state;
	struct client *admin = client_new(w);
	struct client *a1, *a2, *b1, *x;

	add_vm(w, admin, "a");
	add_vm(w, admin, "b");
	a1 = start_op(w, "a");
	a2 = start_op(w, "a");
	expect_error(w, admin, "{\"cmd\":\"t-op\",\"vm\":\"a\"}\n", NULL, 0,
		     "limit",
		     "VM 'a' has 2 operations running, the most [control] "
		     "max-operations-per-vm allows");
	b1 = start_op(w, "b");
	assert_int_equal(w->h.nops, 3);
	expect_error(w, admin, "{\"cmd\":\"t-op\",\"vm\":\"b\"}\n", NULL, 0,
		     "limit",
		     "vmic-hostd runs 3 operations, the most [control] "
		     "max-operations allows");
	expect_error(w, admin, "{\"cmd\":\"t-op\"}\n", NULL, 0, "limit",
		     "max-operations allows");
	/* Heartbeat's requests do not wait on them: the VM's request
	 * slots are all free. */
	for (uint8_t id = 0; id < VMIC_SVC_COUNT; id++)
		assert_int_equal(requests_waiting(vm_find(&w->h, "a"), id), 0);
	/* One ends: room again. */
	json_decref(expect_ok(w, a1, "{\"id\":null,\"finish\":1}\n", NULL, 0));
	x = start_op(w, "a");
	assert_int_equal(w->h.nops, 3);
	client_free(w, a1);
	client_free(w, a2);
	client_free(w, b1);
	client_free(w, x);
	for (int i = 0; i < TURNS && w->h.nops; i++)
		turn(w);
	assert_int_equal(w->h.nops, 0);
	client_free(w, admin);
}

static void test_op_vm_removed(void **state)
{
	struct world *w = *state;
	struct client *admin = client_new(w);
	struct client *c;
	const char *msg;
	json_t *r;

	add_vm(w, admin, "gone");
	c = start_op(w, "gone");
	json_decref(expect_ok(w, admin,
			      "{\"cmd\":\"remove\",\"vm\":\"gone\"}\n", NULL,
			      0));
	r = client_line(w, c);
	assert_string_equal(error_code(r, &msg), "cancelled");
	assert_string_equal(msg, "the VM was removed");
	json_decref(r);
	assert_int_equal(ctl_test_counts.cancels[CTL_OP_VM_REMOVED], 1);
	assert_int_equal(w->h.nops, 0);
	client_free(w, c);
	client_free(w, admin);
}

/* The daemon stops: the client hears why, then the connection closes. */
static void test_op_daemon_stops(void **state)
{
	struct world *w = *state;
	struct client *c = client_new(w);
	const char *msg;
	json_t *r;

	client_send(w, c, "{\"id\":9,\"cmd\":\"t-op\"}\n", NULL, 0);
	for (int i = 0; i < TURNS && w->h.nops == 0; i++)
		turn(w);
	w->h.stopping = true;
	ctl_close(&w->h);
	r = client_line(w, c);
	assert_string_equal(error_code(r, &msg), "cancelled");
	assert_string_equal(msg,
			    "vmic-hostd is stopping: the operation was "
			    "cancelled");
	json_decref(r);
	client_expect_eof(w, c);
	assert_int_equal(ctl_test_counts.cancels[CTL_OP_DAEMON_STOPPING], 1);
	assert_int_equal(w->h.nops, 0);
	close(c->fd);
	free(c);
}

static void on_data(void *ud UNUSED, struct vmic_stream *s UNUSED,
		    const uint8_t *p UNUSED, size_t n UNUSED)
{
}

static void on_closed(void *ud UNUSED, struct vmic_stream *s UNUSED,
		      int reason UNUSED)
{
}

/* [connection] max-streams bounds the streams of a VM's link, with a
 * sentence naming the key when reached. */
static void test_streams_limit(void **state)
{
	struct world *w = *state;
	struct client *admin = client_new(w);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static const struct vmic_stream_ops ops = { on_data, NULL, on_closed };
	struct vmic_stream *s[4];
	char msg[512];
	int lfd, g = -1;
	struct vm *vm;

	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s.sock", w->dir);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	add_vm(w, admin, "s");
	vm = vm_find(&w->h, "s");
	for (int i = 0; i < TURNS && (g < 0 || !vm->conn.link); i++) {
		turn(w);
		if (g < 0)
			g = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	}
	assert_non_null(vm->conn.link);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(vmic_link_stream_open(vm->conn.link, 0, 1,
						       VMIC_STREAM_RECV, 0,
						       &ops, NULL, &s[i]),
				 0);
	assert_int_equal(vmic_link_stream_open(vm->conn.link, 0, 1,
					       VMIC_STREAM_RECV, 0, &ops,
					       NULL, &s[3]),
			 -EMFILE);
	assert_string_equal(conn_stream_error(vm, -EMFILE, msg, sizeof(msg)),
			    "limit");
	assert_non_null(strstr(msg, "VM 's' has 3 streams open, the most "
				    "[connection] max-streams"));
	close(g);
	close(lfd);
	client_free(w, admin);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_error_text_is_utf8, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fds_accepted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fds_terminal, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fds_wrong_kind, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fds_wrong_mode, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fds_counts, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fds_framing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fds_waiting_total, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fds_lenient_split, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fds_no_leak, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_op_lines_and_messages,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_op_rejects, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_op_cancel_asked, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_op_cancel_by_close, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_op_progress_replaced,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_op_client_reads_nothing_else, setup, teardown),
		cmocka_unit_test_setup_teardown(test_op_limits, setup_limits,
						teardown),
		cmocka_unit_test_setup_teardown(test_op_vm_removed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_op_daemon_stops, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_streams_limit, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
