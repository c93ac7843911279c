/* SPDX-License-Identifier: MIT */
/*
 * src/common/log.c towards journald: one connected socket, never a wait.
 * A datagram socket the test does not read stands in for a journald that
 * does not keep up (its queue holds net.unix.max_dgram_qlen datagrams).
 */
#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "testutil.h"

#include "common/log.h"

#define RECORDS 300

struct journal {
	char *dir;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd; /* the stand-in for journald's socket */
};

static void journal_bind(struct journal *j)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memcpy(sa.sun_path, j->path, sizeof(sa.sun_path));
	j->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(j->fd >= 0);
	assert_int_equal(bind(j->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

static int setup(void **state)
{
	struct journal *j = calloc(1, sizeof(*j));

	j->dir = tu_mkdtemp();
	assert_true(strlen(j->dir) + 14 < sizeof(j->path));
	snprintf(j->path, sizeof(j->path), "%.80s/journal.sock", j->dir);
	journal_bind(j);
	log_init("test-log", LOG_TARGET_AUTO);
	log_set_max_level(LOG_DEBUG);
	assert_int_equal(log_journal_open(j->path), 0);
	*state = j;
	return 0;
}

static int teardown(void **state)
{
	struct journal *j = *state;

	close(j->fd);
	tu_rmtree(j->dir);
	free(j);
	return 0;
}

/* The next datagram, or NULL when none is queued. */
static char *journal_recv(struct journal *j, char *buf, size_t n)
{
	ssize_t len = recv(j->fd, buf, n - 1, 0);

	if (len < 0) {
		assert_true(errno == EAGAIN);
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

static void log_record(int i)
{
	const char *fields[] = { "VMIC_VM", "vm1", "VMIC_EVENT", "heartbeat",
				 NULL };
	char msg[64];

	snprintf(msg, sizeof(msg), "record %d", i);
	log_struct(LOG_INFO, msg, fields);
}

/* A journald that does not read: every call returns, the excess is
 * counted, and what was sent is whole. */
static void test_full_journal_drops_and_counts(void **state)
{
	struct journal *j = *state;
	char buf[8192];
	unsigned got = 0;

	for (int i = 0; i < RECORDS; i++)
		log_record(i);
	while (journal_recv(j, buf, sizeof(buf))) {
		char want[64];

		snprintf(want, sizeof(want), "MESSAGE=record %u\n", got);
		assert_non_null(strstr(buf, want));
		assert_non_null(strstr(buf, "PRIORITY=6\n"));
		assert_non_null(strstr(buf, "SYSLOG_IDENTIFIER=test-log\n"));
		assert_non_null(strstr(buf, "VMIC_VM=vm1\n"));
		got++;
	}
	assert_true(got > 0);
	assert_true(got < RECORDS); /* the queue did fill */
	assert_int_equal(log_dropped_count(), RECORDS - got);

	/* The next record that passes says how many were lost, first. */
	log_record(RECORDS);
	assert_non_null(journal_recv(j, buf, sizeof(buf)));
	{
		char want[96];

		snprintf(want, sizeof(want),
			 "MESSAGE=%u log records dropped: journald did not "
			 "keep up\n",
			 RECORDS - got);
		assert_non_null(strstr(buf, want));
		assert_non_null(strstr(buf, "PRIORITY=4\n"));
	}
	assert_non_null(journal_recv(j, buf, sizeof(buf)));
	assert_non_null(strstr(buf, "MESSAGE=record 300\n"));
	assert_int_equal(log_dropped_count(), 0);
}

/* Plain lines take the same socket (stderr to journald can block too). */
static void test_plain_lines_use_the_socket(void **state)
{
	struct journal *j = *state;
	char buf[8192];

	log_info("plain %d", 42);
	assert_non_null(journal_recv(j, buf, sizeof(buf)));
	assert_non_null(strstr(buf, "MESSAGE=plain 42\n"));
	assert_non_null(strstr(buf, "PRIORITY=6\n"));
}

/* journald restarted: its new socket gets the next record. */
static void test_reconnects_after_restart(void **state)
{
	struct journal *j = *state;
	char buf[8192];

	close(j->fd);
	unlink(j->path);
	journal_bind(j);
	log_record(7);
	assert_non_null(journal_recv(j, buf, sizeof(buf)));
	assert_non_null(strstr(buf, "MESSAGE=record 7\n"));
	assert_int_equal(log_dropped_count(), 0);
}

/* Held (a frozen disk): nothing is written until the hold ends, then the
 * kept records in order, then one line counting those past the bound. */
static void test_hold_keeps_then_writes(void **state)
{
	struct journal *j = *state;
	char buf[8192];
	uint64_t dropped;

	assert_int_equal(log_hold_begin(64), 0);
	assert_true(log_held());
	assert_int_equal(log_hold_begin(64), -EALREADY);
	log_info("held %d", 1);
	log_record(2);
	for (int i = 0; i < 10; i++)
		log_info("overflow line %d", i);
	assert_null(journal_recv(j, buf, sizeof(buf)));
	dropped = log_hold_end();
	assert_false(log_held());
	assert_true(dropped > 0 && dropped <= 10);
	assert_non_null(journal_recv(j, buf, sizeof(buf)));
	assert_non_null(strstr(buf, "MESSAGE=held 1\n"));
	assert_non_null(journal_recv(j, buf, sizeof(buf)));
	assert_non_null(strstr(buf, "MESSAGE=record 2"));
	while (journal_recv(j, buf, sizeof(buf)) &&
	       !strstr(buf, "dropped while logging was held"))
		assert_non_null(strstr(buf, "overflow line"));
	assert_non_null(strstr(buf, "dropped while logging was held"));
	assert_int_equal(log_hold_end(), 0); /* no hold: nothing to do */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_full_journal_drops_and_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_lines_use_the_socket,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnects_after_restart,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_keeps_then_writes,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
