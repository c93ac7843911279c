/* SPDX-License-Identifier: MIT */
/*
 * The user's terminal during `vmic shell` and `vmic exec --tty`: raw
 * mode, restored on every way out, and a relay of what is typed to the
 * session that watches for the escape `~.` at the start of a line (as
 * ssh does), which ends a session that no longer answers.
 *
 * The relay is a thread: it reads the terminal and writes into a pipe
 * whose other end goes to vmic-hostd as the session's stdin. On `~.` it
 * restores the terminal and ends the process: the control connection
 * closes, which makes the daemon end the session in the guest.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "vmic.h"

/* Exit status after `~.`, ssh's for a connection it closed. */
#define ESCAPE_EXIT 255

static struct termios saved;
static int saved_fd = -1;

int cli_term_raw(int fd)
{
	struct termios raw;

	if (tcgetattr(fd, &saved) < 0)
		return -errno;
	raw = saved;
	cfmakeraw(&raw);
	if (tcsetattr(fd, TCSADRAIN, &raw) < 0)
		return -errno;
	saved_fd = fd;
	return 0;
}

void cli_term_restore(void)
{
	if (saved_fd < 0)
		return;
	tcsetattr(saved_fd, TCSADRAIN, &saved);
	saved_fd = -1;
}

struct relay {
	int from, to;
};

/* Write all of buf; false when the pipe's reader is gone. */
static bool put(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(fd, buf, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		buf += w;
		n -= (size_t)w;
	}
	return true;
}

static _Noreturn void escape_exit(void)
{
	static const char msg[] = "\r\nvmic: session ended by ~.\r\n";

	cli_term_restore();
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* Nothing more to say. */
	}
	_exit(ESCAPE_EXIT);
}

/*
 * Copy bytes, holding a '~' typed at the start of a line until the next
 * byte says what it is: '.' ends the session, a second '~' sends one,
 * anything else sends both.
 */
static void *relay_run(void *arg)
{
	struct relay *r = arg;
	bool line_start = true, tilde = false;
	char in[4096], out[8192];

	for (;;) {
		ssize_t n = read(r->from, in, sizeof(in));
		size_t o = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			char ch = in[i];

			if (tilde) {
				tilde = false;
				if (ch == '.')
					escape_exit();
				if (ch != '~')
					out[o++] = '~';
			} else if (line_start && ch == '~') {
				tilde = true;
				line_start = false;
				continue;
			}
			out[o++] = ch;
			line_start = ch == '\r' || ch == '\n';
		}
		if (!put(r->to, out, o))
			break;
	}
	close(r->to);
	free(r);
	return NULL;
}

int cli_term_relay(int from, int *session_stdin)
{
	struct relay *r = malloc(sizeof(*r));
	pthread_t t;
	int p[2];

	if (!r)
		return -ENOMEM;
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(r);
		return -errno;
	}
	r->from = from;
	r->to = p[1];
	if (pthread_create(&t, NULL, relay_run, r) != 0) {
		close(p[0]);
		close(p[1]);
		free(r);
		return -EAGAIN;
	}
	pthread_detach(t);
	*session_stdin = p[0];
	return 0;
}
