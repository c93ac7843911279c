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
 *
 * Descriptors and operations: the core also has the tests' own commands
 * (tests/unit/ctl-test-commands.c: t-read, t-write, t-two, t-tty, t-op),
 * and an input that starts with "\0FD" and three plan bytes sends
 * descriptors with its bytes: plan[0] % 11 of them (more than 8 is cut
 * off by the kernel, MSG_CTRUNC), kinds chosen by plan[1] (pipe ends, a
 * regular file, /dev/null, O_PATH, a socket, a directory), as SCM_RIGHTS
 * on the sendmsg that starts at byte plan[2] % (size + 1) of the rest.
 * After each input none of them may still be open in the daemon.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#include "../unit/ctl-test-commands.h"
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
	char path[96];
	int fd;

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
	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "a regular file\n", 15) != 15)
		die("cannot make the file descriptors are opened on");
	close(fd);
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
	ctl_commands_extend(ctl_test_commands, ctl_test_command_count);
	/* An operation's progress timer must not keep an input busy. */
	ctl_test_max_ticks = 4;
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
	if (getenv("FUZZ_CONTROL_SHOW"))
		fprintf(stderr, "< %.*s\n", (int)n, line);
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
	} else if ((err = json_object_get(o, "rejected"))) {
		/* A message an operation did not take. */
		FUZZ_CHECK(json_is_string(json_object_get(err, "code")) &&
			   json_is_string(json_object_get(err, "message")));
	} else {
		/* Followers, watchers, and operations' lines (progress and
		 * the test operation's own kinds). */
		FUZZ_CHECK(json_object_get(o, "event") ||
			   json_object_get(o, "dropped") ||
			   json_object_get(o, "kvp") ||
			   json_is_object(json_object_get(o, "end")) ||
			   json_is_object(json_object_get(o, "progress")) ||
			   json_object_get(o, "warning") ||
			   json_object_get(o, "heard") ||
			   json_object_get(o, "read"));
	}
	json_decref(o);
}

/* Descriptors an input sends, and where. */
#define PLAN_MAX 10
struct fd_plan {
	int fds[PLAN_MAX];
	size_t n;
	size_t at; /* the sendmsg that starts at this byte carries them */
	/* What they are, to find any the daemon kept (not /dev/null's,
	 * which others may hold). */
	dev_t dev[PLAN_MAX];
	ino_t ino[PLAN_MAX];
	bool check[PLAN_MAX];
};

struct exchange {
	int fd;
	const uint8_t *out;
	size_t out_len, sent;
	char *in;
	size_t in_len, in_cap;
	bool eof;
	struct fd_plan *plan;
	bool fds_sent;
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

/* The next sendmsg: up to the descriptors' byte, or from it on with
 * them. */
static ssize_t send_part(struct exchange *x)
{
	char cbuf[CMSG_SPACE(sizeof(int) * PLAN_MAX)] = { 0 };
	struct fd_plan *p = x->plan;
	size_t end = x->out_len;
	struct iovec iov;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	if (p && p->n && !x->fds_sent && x->sent < p->at)
		end = p->at;
	iov = (struct iovec){ (void *)(x->out + x->sent), end - x->sent };
	if (p && p->n && !x->fds_sent && x->sent == p->at) {
		msg.msg_control = cbuf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * p->n);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * p->n);
		memcpy(CMSG_DATA(cm), p->fds, sizeof(int) * p->n);
	}
	return sendmsg(x->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void give_output(struct exchange *x)
{
	ssize_t n;

	if (x->sent == x->out_len)
		return;
	n = send_part(x);
	if (n > 0 && x->plan && x->sent == x->plan->at)
		x->fds_sent = true;
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

/* A descriptor of kind k (see the top), or -1. */
static int make_fd(unsigned k, int *spare)
{
	char path[96];
	int p[2], fd = -1;

	snprintf(path, sizeof(path), "%s/file", dir);
	switch (k % 7) {
	case 0:
	case 1:
		if (pipe2(p, O_CLOEXEC) < 0)
			return -1;
		fd = p[k % 7];
		*spare = p[1 - k % 7];
		return fd;
	case 2:
		return open("/dev/null", O_RDONLY | O_CLOEXEC);
	case 3:
		return open(path, O_RDWR | O_CLOEXEC);
	case 4:
		return open(path, O_PATH | O_CLOEXEC);
	case 5:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
			return -1;
		*spare = p[1];
		return p[0];
	default:
		return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
}

/* "\0FD" and three plan bytes: the descriptors to send, and where. */
static void plan_fds(const uint8_t **data, size_t *size, struct fd_plan *p,
		     int *spares)
{
	const uint8_t *d = *data;
	size_t n;

	memset(p, 0, sizeof(*p));
	for (size_t i = 0; i < PLAN_MAX; i++)
		spares[i] = -1;
	if (*size < 6 || memcmp(d, "\0FD", 3) != 0)
		return;
	n = d[3] % (PLAN_MAX + 1);
	*data += 6;
	*size -= 6;
	p->at = d[5] % (*size + 1);
	if (p->at == *size)
		return; /* no byte would carry them */
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		unsigned k = (unsigned)d[4] + 37u * (unsigned)i;
		int fd = make_fd(k, &spares[i]);

		if (fd < 0)
			break;
		p->fds[p->n] = fd;
		p->check[p->n] = k % 7 != 2 && fstat(fd, &st) == 0;
		p->dev[p->n] = st.st_dev;
		p->ino[p->n] = st.st_ino;
		p->n++;
	}
}

/* Once the input's connection is gone and its operation ended, no
 * descriptor it sent may still be open here (ours were closed). */
static void check_no_leak(const struct fd_plan *p)
{
	DIR *d;
	struct dirent *e;

	if (p->n == 0)
		return;
	d = opendir("/proc/self/fd");
	if (!d)
		return;
	while ((e = readdir(d))) {
		struct stat st;
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.' || fd == dirfd(d) ||
		    fstat(fd, &st) < 0)
			continue;
		for (size_t i = 0; i < p->n; i++) {
			if (p->check[i] && st.st_dev == p->dev[i] &&
			    st.st_ino == p->ino[i]) {
				fprintf(stderr, "descriptor %d of the input is "
						"still open\n",
					fd);
				abort();
			}
		}
	}
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned inputs;
	struct fd_plan plan;
	int spares[PLAN_MAX];
	struct exchange x = { .plan = &plan };

	if (size > INPUT_MAX)
		return 0;
	plan_fds(&data, &size, &plan, spares);
	x.out = data;
	x.out_len = size;
	x.fd = connect_client();
	if (size == 0)
		shutdown(x.fd, SHUT_WR);
	run_exchange(&x, true);
	close(x.fd);
	free(x.in);
	for (size_t i = 0; i < PLAN_MAX; i++) {
		if (i < plan.n)
			close(plan.fds[i]);
		if (spares[i] >= 0)
			close(spares[i]);
	}
	/* The client's close, then its operation's cancel and end. */
	for (int i = 0; i < 8 || h.nops; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	check_no_leak(&plan);
	if (++inputs % 64 == 0)
		check_alive();
	return 0;
}
