/* SPDX-License-Identifier: MIT */
/*
 * The CLI's helper for long operations (src/cli/operation.c), run in a
 * child process against a real vmic-hostd core in a process of its own
 * (ctl-test-daemon, with the tests' own commands): the request goes out
 * with its descriptors, progress shows as JSON lines or as a bar on a
 * terminal (nothing on a pipe), signals become a cancel or are passed
 * on, and the end becomes an exit status and one sentence, including
 * when the daemon is killed or stopped in the middle.
 *
 * argv[1]: the ctl-test-daemon executable.
 */
#include "testutil.h"

#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "cli/vmic.h"

/* Waits poll for at most this long at once; a run may take this many. */
#define WAIT_MS 10
#define WAITS 6000

static const char *daemon_exe;
static char *dir;
static char sock[100];
static pid_t daemon_pid = -1;

/* ---- the daemon ---- */

static bool daemon_answers(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static void daemon_start(void)
{
	daemon_pid = fork();
	assert_true(daemon_pid >= 0);
	if (daemon_pid == 0) {
		execl(daemon_exe, daemon_exe, dir, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < WAITS && !daemon_answers(); i++) {
		assert_int_equal(waitpid(daemon_pid, NULL, WNOHANG), 0);
		poll(NULL, 0, WAIT_MS);
	}
	assert_true(daemon_answers());
}

static void daemon_end(int sig)
{
	int st;

	if (daemon_pid < 0)
		return;
	kill(daemon_pid, sig);
	assert_int_equal(waitpid(daemon_pid, &st, 0), daemon_pid);
	daemon_pid = -1;
}

static int group_setup(void **state UNUSED)
{
	dir = tu_mkdtemp();
	snprintf(sock, sizeof(sock), "%s/ctl.sock", dir);
	daemon_start();
	return 0;
}

static int group_teardown(void **state UNUSED)
{
	daemon_end(SIGKILL);
	tu_rmtree(dir);
	return 0;
}

/* ---- a run of the helper in a child ---- */

struct run {
	const char *req;
	bool json;
	bool stderr_tty;  /* standard error is a pty (the bar shows) */
	int fd;           /* a descriptor to send, -1 for none */
	bool forward;     /* spec.forward_signals */
	int winsize_fd;
	int send_sig;     /* sent once a progress line came (json) or at
			     the first output */
	int then_sig;     /* sent after send_sig (once then_after is on
			     standard output, when given) */
	const char *then_after;
	bool kill_daemon; /* SIGKILL the daemon instead of send_sig */
	bool stop_daemon; /* SIGTERM it */
	/* out */
	int status;
	char out[65536], err[65536];
	size_t outn, errn;
};

static int print_result(void *ud UNUSED, json_t *result, bool json)
{
	if (!json)
		printf("done with %zu messages\n",
		       json_array_size(json_object_get(result, "messages")));
	return 3;
}

static void child(struct run *r, int out, int err)
{
	struct cli cli = { .socket_path = sock, .json = r->json };
	struct cli_op_spec spec = {
		.fds = &r->fd,
		.nfds = r->fd >= 0,
		.forward_signals = r->forward,
		.winsize_fd = r->winsize_fd,
		.on_result = r->json ? NULL : print_result,
	};
	json_error_t jerr;
	int status;

	dup2(out, STDOUT_FILENO);
	dup2(err, STDERR_FILENO);
	status = cli_op_run(&cli, json_loads(r->req, 0, &jerr), &spec);
	/* As vmic's exit() would. */
	fflush(NULL);
	_exit(status);
}

static void drain(int fd, char *buf, size_t *n, size_t cap, bool *eof)
{
	ssize_t k;

	while (!*eof && *n < cap - 1) {
		k = read(fd, buf + *n, cap - 1 - *n);
		if (k > 0) {
			*n += (size_t)k;
		} else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
			*eof = true; /* EIO: a pty whose child side closed */
		} else {
			break;
		}
	}
	buf[*n] = '\0';
}

static void run(struct run *r)
{
	int out[2], err[2], slave = -1, st;
	bool out_eof = false, err_eof = false, sent = false, exited = false;
	pid_t pid;

	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	if (r->stderr_tty) {
		assert_int_equal(openpty(&err[0], &slave, NULL, NULL, NULL), 0);
		err[1] = slave;
	} else {
		assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child(r, out[1], err[1]);
	close(out[1]);
	close(err[1]);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(err[0], F_SETFL, O_NONBLOCK);
	for (int i = 0; i < WAITS && !(exited && out_eof && err_eof); i++) {
		struct pollfd p[2] = { { .fd = out[0], .events = POLLIN },
				       { .fd = err[0], .events = POLLIN } };

		poll(p, 2, WAIT_MS);
		drain(out[0], r->out, &r->outn, sizeof(r->out), &out_eof);
		drain(err[0], r->err, &r->errn, sizeof(r->err), &err_eof);
		if (!sent && (strstr(r->out, "\"progress\"") ||
			      (r->stderr_tty && r->errn))) {
			sent = true;
			if (r->kill_daemon)
				daemon_end(SIGKILL);
			else if (r->stop_daemon)
				daemon_end(SIGTERM);
			else if (r->send_sig)
				kill(pid, r->send_sig);
		}
		if (sent && r->then_sig &&
		    (!r->then_after || strstr(r->out, r->then_after))) {
			kill(pid, r->then_sig);
			r->then_sig = 0;
		}
		if (!exited && waitpid(pid, &st, WNOHANG) == pid)
			exited = true;
		/* A pty's reader never sees EOF once the child is gone. */
		if (exited && r->stderr_tty)
			err_eof = true;
	}
	if (!exited) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		fail_msg("the helper did not end; stdout: %s stderr: %s",
			 r->out, r->err);
	}
	assert_true(WIFEXITED(st));
	r->status = WEXITSTATUS(st);
	close(out[0]);
	close(err[0]);
}

static void has(const char *text, const char *words)
{
	if (!strstr(text, words))
		fail_msg("'%s' is not in: %s", words, text);
}

/* ---- tests ---- */

static void test_json_progress_and_result(void **state UNUSED)
{
	struct run r = {
		.req = "{\"cmd\":\"t-op\",\"ticks\":3,\"interval_ms\":5,"
		       "\"total\":3000,\"end\":\"finish\"}",
		.json = true, .fd = -1, .winsize_fd = -1,
	};

	run(&r);
	assert_int_equal(r.status, 0);
	has(r.out, "{\"progress\":{\"bytes\":1000,\"total\":3000,\"items\":1,"
		   "\"items_total\":3}}\n");
	has(r.out, "{\"progress\":{\"bytes\":3000,");
	has(r.out, "{\"result\":{\"messages\":[],\"fds\":0,\"msg_fds\":0,"
		   "\"input\":\"none\"}}\n");
	assert_int_equal(r.errn, 0);
}

static void test_people_result_and_nothing_on_a_pipe(void **state UNUSED)
{
	struct run r = {
		.req = "{\"cmd\":\"t-op\",\"ticks\":3,\"interval_ms\":5,"
		       "\"total\":3000,\"end\":\"finish\",\"warn\":\"look "
		       "out\"}",
		.fd = -1, .winsize_fd = -1,
	};

	run(&r);
	/* The command's own printer, and its exit status. */
	assert_int_equal(r.status, 3);
	assert_string_equal(r.out, "done with 0 messages\n");
	/* No bar on a pipe: the warning alone. */
	assert_string_equal(r.err, "vmic: warning: look out\n");
}

static void test_bar_on_a_terminal(void **state UNUSED)
{
	struct run r = {
		.req = "{\"cmd\":\"t-op\",\"ticks\":5,\"interval_ms\":250,"
		       "\"total\":5242880,\"end\":\"finish\"}",
		.stderr_tty = true, .fd = -1, .winsize_fd = -1,
	};

	run(&r);
	assert_int_equal(r.status, 3);
	has(r.err, "\r1.00 MiB / 5.00 MiB  20% [");
	has(r.err, "1/5");
	/* The rate and the time left once two samples are apart. */
	has(r.err, "/s");
	has(r.err, "left");
	/* Cleared at the end: the line ends blank. */
	assert_true(r.errn >= 2 && r.err[r.errn - 1] == '\r');
}

static void test_descriptor_sent(void **state UNUSED)
{
	int p[2];
	struct run r = {
		.req = "{\"cmd\":\"t-op\",\"ticks\":1,\"interval_ms\":1,"
		       "\"end\":\"finish\"}",
		.json = true, .winsize_fd = -1,
	};

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	r.fd = p[0];
	run(&r);
	close(p[0]);
	close(p[1]);
	assert_int_equal(r.status, 0);
	has(r.out, "\"fds\":1,");
	has(r.out, "\"input\":\"pipe\"");
}

static void test_refused_at_once(void **state UNUSED)
{
	struct run r = {
		.req = "{\"cmd\":\"t-read\"}", .fd = -1, .winsize_fd = -1,
	};

	run(&r);
	assert_int_equal(r.status, 1);
	has(r.err, "vmic: `t-read` needs 1 descriptor (source: ");
	assert_int_equal(r.outn, 0);
}

static void test_sigint_cancels(void **state UNUSED)
{
	struct run r = {
		.req = "{\"cmd\":\"t-op\",\"ticks\":1000000,\"interval_ms\":10}",
		.json = true, .fd = -1, .winsize_fd = -1, .send_sig = SIGINT,
	};

	run(&r);
	assert_int_equal(r.status, 130);
	has(r.err, "vmic: the client cancelled the operation\n");
}

static void test_second_sigint_stops_waiting(void **state UNUSED)
{
	struct run r = {
		.req = "{\"cmd\":\"t-op\",\"ticks\":1000000,\"interval_ms\":10}",
		.json = true, .fd = -1, .winsize_fd = -1, .send_sig = SIGTERM,
		.then_sig = SIGINT,
	};

	/* The second signal may come before or after the daemon's answer
	 * to the first; either way the run ends at once, by a signal's
	 * status. */
	run(&r);
	assert_true(r.status == 130 || r.status == 143);
}

static void test_signals_passed_on(void **state UNUSED)
{
	int master, slave;
	struct winsize ws = { .ws_row = 30, .ws_col = 100 };
	struct run r = {
		.req = "{\"cmd\":\"t-op\",\"ticks\":1000000,\"interval_ms\":10,"
		       "\"end_on_signal\":true}",
		.json = true, .fd = -1, .forward = true,
		.send_sig = SIGWINCH, .then_sig = SIGQUIT,
		.then_after = "{\"heard\":[30,100]}",
	};

	assert_int_equal(openpty(&master, &slave, NULL, NULL, &ws), 0);
	r.winsize_fd = slave;
	run(&r);
	close(master);
	close(slave);
	assert_int_equal(r.status, 0);
	has(r.out, "\"messages\":[{\"winsize\":[30,100]},{\"signal\":"
		   "\"QUIT\"}]");
}

static void test_daemon_killed(void **state UNUSED)
{
	struct run r = {
		.req = "{\"cmd\":\"t-op\",\"ticks\":1000000,\"interval_ms\":10}",
		.json = true, .fd = -1, .winsize_fd = -1, .kill_daemon = true,
	};

	run(&r);
	daemon_start();
	assert_int_equal(r.status, 1);
	has(r.err, "vmic: vmic-hostd went away in the middle of the "
		   "operation (it closed the connection)");
}

static void test_daemon_stopped(void **state UNUSED)
{
	struct run r = {
		.req = "{\"cmd\":\"t-op\",\"ticks\":1000000,\"interval_ms\":10}",
		.json = true, .fd = -1, .winsize_fd = -1, .stop_daemon = true,
	};

	run(&r);
	daemon_start();
	assert_int_equal(r.status, 1);
	has(r.err, "vmic: vmic-hostd is stopping: the operation was "
		   "cancelled\n");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_progress_and_result),
		cmocka_unit_test(test_people_result_and_nothing_on_a_pipe),
		cmocka_unit_test(test_bar_on_a_terminal),
		cmocka_unit_test(test_descriptor_sent),
		cmocka_unit_test(test_refused_at_once),
		cmocka_unit_test(test_sigint_cancels),
		cmocka_unit_test(test_second_sigint_stops_waiting),
		cmocka_unit_test(test_signals_passed_on),
		cmocka_unit_test(test_daemon_killed),
		cmocka_unit_test(test_daemon_stopped),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: test-cli-op CTL-TEST-DAEMON\n");
		return 2;
	}
	daemon_exe = argv[1];
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
