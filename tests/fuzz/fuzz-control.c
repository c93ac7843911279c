/* SPDX-License-Identifier: MIT */
/*
 * The control socket as a member of the socket group sees it: any bytes,
 * sent on a fresh connection to a real vmic-hostd core (its store in a
 * temporary directory, its writer thread and thread pool running), then
 * EOF. Every line that comes back must be one JSON object: a reply with
 * "ok" (and on failure an error with a code and a message), a page or the
 * end of a paged reply, an event of a follower, a watcher's change or
 * end, or a follower's last "dropped" line. The daemon must go on
 * serving: a status request is answered after each input.
 *
 * The client connects as nobody when the fuzzer runs as root (only the
 * effective ids change, around connect()): root may give a VM an exec:
 * power backend, and a fuzzer that found `add` and `stop` would run
 * commands. The group may only name channels that do not exist and no
 * power backend at all.
 */
#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "fuzz.h"
#include "host/hostd.h"

#define INPUT_MAX (128u * 1024u)
/* How long one input may keep the daemon busy, in loop turns of <= 1 ms,
 * and how long a connection may stay quiet once all was sent (a follower
 * never ends: it is closed then). */
#define TURNS_MAX 10000
#define QUIET_TURNS 300

static struct hostd h;
static uv_loop_t loop;
static char dir[64];
static uid_t client_uid;
static gid_t client_gid;
static bool switch_ids;

static void die(const char *what)
{
	fprintf(stderr, "fuzz-control: %s\n", what);
	abort();
}

static void conf(const char *section, const char *key, const char *value)
{
	char err[256];

	if (vmic_conf_set(&hostd_conf_table, &h.cfg, section, key, value, err,
			  sizeof(err)) < 0) {
		fprintf(stderr, "fuzz-control: [%s] %s: %s\n", section, key,
			err);
		abort();
	}
}

/* The group the client is in: nobody's when root, else our own. */
static void choose_client(void)
{
	struct passwd *pw = getpwnam("nobody");

	switch_ids = geteuid() == 0 && pw;
	client_uid = switch_ids ? pw->pw_uid : geteuid();
	client_gid = switch_ids ? pw->pw_gid : getegid();
}

static void configure(void)
{
	char path[160], pattern[160];
	struct group *gr = getgrgid(client_gid);

	if (!gr)
		die("the client's group has no name");
	if (hostd_config_defaults(&h.cfg) < 0)
		die("no default configuration");
	snprintf(path, sizeof(path), "%s/state", dir);
	conf("daemon", "state-dir", path);
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	conf("daemon", "socket", path);
	conf("daemon", "socket-group", gr->gr_name);
	conf("daemon", "max-vms", "32");
	snprintf(pattern, sizeof(pattern), "unix:%s/absent-*", dir);
	conf("access", "group-channels", pattern);
	conf("access", "group-power-off", "");
	conf("connection", "retry-min", "1s");
	conf("connection", "retry-max", "1h");
	conf("events", "keep", "1000");
}

static int remove_one(const char *path, const struct stat *st UNUSED,
		      int type UNUSED, struct FTW *f UNUSED)
{
	remove(path);
	return 0;
}

/* The daemon's threads still run at exit; its files may go anyway. */
static void remove_dir(void)
{
	nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz-control", LOG_TARGET_STDERR);
	log_set_max_level(LOG_CRIT);
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "%s/vmic-fuzz-control-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir) || chmod(dir, 0711) < 0)
		die("cannot make a temporary directory");
	atexit(remove_dir);
	choose_client();
	configure();
	if (uv_loop_init(&loop) < 0)
		die("no loop");
	h.loop = &loop;
	if (mkdir(h.cfg.state_dir, 0750) < 0 || ctl_open(&h) < 0 ||
	    services_daemon_start(&h) < 0 || store_open(&h) < 0 ||
	    store_load_vms(&h) < 0)
		die("the daemon does not start");
	events_init(&h);
	if (store_start(&h) < 0)
		die("the store writer does not start");
	return 0;
}

static void set_ids(uid_t uid, gid_t gid)
{
	if (!switch_ids)
		return;
	/* Group first on the way down, user first on the way back. */
	if (uid != 0 ? setegid(gid) < 0 || seteuid(uid) < 0
		     : seteuid(uid) < 0 || setegid(gid) < 0)
		die("cannot switch the effective ids");
}

static int connect_client(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int r;

	if (fd < 0)
		die("no socket");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h.cfg.socket);
	set_ids(client_uid, client_gid);
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	set_ids(0, 0);
	if (r < 0)
		die("cannot connect to the control socket");
	return fd;
}

/* One reply line must be a JSON object of a known shape. */
static void check_line(const char *line, size_t n)
{
	json_error_t jerr;
	json_t *o = json_loadb(line, n, 0, &jerr);
	json_t *ok, *err;

	if (!json_is_object(o)) {
		fprintf(stderr, "not a JSON object: %.*s\n", (int)n, line);
		abort();
	}
	ok = json_object_get(o, "ok");
	if (ok) {
		FUZZ_CHECK(json_is_boolean(ok));
		err = json_object_get(o, "error");
		if (json_is_false(ok))
			FUZZ_CHECK(json_is_string(json_object_get(err, "code")) &&
				   json_is_string(
					   json_object_get(err, "message")));
	} else if (json_object_get(o, "page")) {
		/* A paged reply's page of items, or its end with the count. */
		FUZZ_CHECK(json_is_array(json_object_get(o, "page")));
	} else if (json_is_true(json_object_get(o, "end"))) {
		FUZZ_CHECK(json_is_integer(json_object_get(o, "count")));
	} else {
		FUZZ_CHECK(json_object_get(o, "event") ||
			   json_object_get(o, "dropped") ||
			   json_object_get(o, "kvp") ||
			   json_is_object(json_object_get(o, "end")));
	}
	json_decref(o);
}

struct exchange {
	int fd;
	const uint8_t *out;
	size_t out_len, sent;
	char *in;
	size_t in_len, in_cap;
	bool eof;
};

/* Keep what came in; check every complete line. */
static void take_input(struct exchange *x)
{
	char buf[65536];
	ssize_t n;

	while ((n = recv(x->fd, buf, sizeof(buf), 0)) > 0) {
		char *nl;

		if (x->in_len + (size_t)n > x->in_cap) {
			x->in_cap = (x->in_len + (size_t)n) * 2;
			x->in = realloc(x->in, x->in_cap);
			if (!x->in)
				die("out of memory");
		}
		memcpy(x->in + x->in_len, buf, (size_t)n);
		x->in_len += (size_t)n;
		while ((nl = memchr(x->in, '\n', x->in_len))) {
			size_t len = (size_t)(nl - x->in);

			check_line(x->in, len);
			memmove(x->in, nl + 1, x->in_len - len - 1);
			x->in_len -= len + 1;
		}
	}
	if (n == 0)
		x->eof = true;
}

static void give_output(struct exchange *x)
{
	ssize_t n;

	if (x->sent == x->out_len)
		return;
	n = send(x->fd, x->out + x->sent, x->out_len - x->sent, MSG_NOSIGNAL);
	if (n > 0)
		x->sent += (size_t)n;
	else if (n < 0 && errno != EAGAIN)
		x->sent = x->out_len; /* the daemon closed: nothing to send */
	if (x->sent == x->out_len)
		shutdown(x->fd, SHUT_WR);
}

/*
 * Send, read and check until the daemon closes, the turns run out or,
 * with quiet_ok, nothing came for QUIET_TURNS after all was sent.
 */
static void run_exchange(struct exchange *x, bool quiet_ok)
{
	int quiet = 0;

	for (int turn = 0; turn < TURNS_MAX && !x->eof; turn++) {
		struct pollfd p = { .fd = x->fd, .events = POLLIN };
		size_t had = x->in_len;

		give_output(x);
		uv_run(&loop, UV_RUN_NOWAIT);
		/* The writer thread and the pool answer between turns. */
		quiet = poll(&p, 1, 1) > 0 ? 0 : quiet + 1;
		take_input(x);
		if (x->in_len != had)
			quiet = 0;
		if (quiet_ok && x->sent == x->out_len && quiet > QUIET_TURNS)
			break;
	}
}

/* The daemon still answers: a list request gets a whole reply. */
static void check_alive(void)
{
	static const char req[] = "{\"cmd\": \"list\"}\n";
	struct exchange x = { .out = (const uint8_t *)req,
			      .out_len = sizeof(req) - 1 };

	x.fd = connect_client();
	run_exchange(&x, false);
	FUZZ_CHECK(x.eof);
	close(x.fd);
	free(x.in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned inputs;
	struct exchange x = { .out = data, .out_len = size };

	if (size > INPUT_MAX)
		return 0;
	x.fd = connect_client();
	if (size == 0)
		shutdown(x.fd, SHUT_WR);
	run_exchange(&x, true);
	close(x.fd);
	free(x.in);
	uv_run(&loop, UV_RUN_NOWAIT);
	if (++inputs % 64 == 0)
		check_alive();
	return 0;
}
