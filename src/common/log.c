/* SPDX-License-Identifier: MIT */
/*
 * Logging (log.h). Under journald, every record goes to its native
 * datagram socket, one socket for the life of the process, non-blocking:
 * a journald that does not keep up costs the daemon a dropped record
 * (counted, and reported in the next record that gets through), never a
 * wait, so logging cannot stall an event loop. Callable from any thread.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static const char *log_progname = "vmic";
static enum log_target log_target = LOG_TARGET_AUTO;
static int log_max_level = LOG_INFO;
static int log_prefix_priority; /* decided once in log_init */
static int log_journal_native;
static int journal_fd = -1;     /* connected, non-blocking */
static char journal_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static uint64_t journal_dropped; /* atomic: records journald did not take */

static const char *const level_names[] = {
	"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

/*
 * journald sets JOURNAL_STREAM=dev:ino for the stderr it reads; only then
 * is it worth sending structured records to its native socket.
 */
static int stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return st.st_dev == dev && st.st_ino == ino;
}

/* A connected, non-blocking datagram socket to path; -errno. */
static int journal_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

int log_journal_open(const char *path)
{
	int fd = journal_connect(path);

	if (fd < 0)
		return fd;
	snprintf(journal_path, sizeof(journal_path), "%s", path);
	if (journal_fd < 0) {
		journal_fd = fd;
	} else {
		/* Same fd number: a sender in another thread never writes
		 * to a closed (or reused) descriptor. */
		dup3(fd, journal_fd, O_CLOEXEC);
		close(fd);
	}
	log_journal_native = 1;
	return 0;
}

/* journald restarted: the socket we hold is not its socket any more. */
static int journal_reconnect(void)
{
	int fd = journal_connect(journal_path);

	if (fd < 0)
		return fd;
	if (dup3(fd, journal_fd, O_CLOEXEC) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	close(fd);
	return 0;
}

uint64_t log_dropped_count(void)
{
	return __atomic_load_n(&journal_dropped, __ATOMIC_RELAXED);
}

void log_init(const char *progname, enum log_target target)
{
	log_progname = progname;
	log_target = target;
	log_prefix_priority =
		target == LOG_TARGET_AUTO && !isatty(STDERR_FILENO);
	if (target == LOG_TARGET_AUTO && stderr_is_journal())
		log_journal_open(JOURNAL_SOCKET); /* else stderr, as before */
	if (target == LOG_TARGET_SYSLOG)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_max_level(int level)
{
	log_max_level = level;
}

int log_get_max_level(void)
{
	return log_max_level;
}

int log_level_from_string(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return (int)i;
	if (strcasecmp(s, "error") == 0)
		return LOG_ERR;
	if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
		return s[0] - '0';
	return -EINVAL;
}

const char *log_level_to_string(int level)
{
	return level >= 0 && level < (int)ARRAY_SIZE(level_names)
		       ? level_names[level]
		       : "?";
}

static int journal_send(int level, const char *message,
			const char *const *fields);

/*
 * Hold mode (log_hold_begin): records wait in memory, in order, up to a
 * byte bound; the rest are counted. The mutex guards only the hold state,
 * since worker threads may log while the loop thread ends the hold.
 */
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static char *hold_buf;       /* records: level byte, text, NUL */
static size_t hold_len, hold_cap;
static uint64_t hold_dropped;

/* Keep the record when held: true when it was kept or counted. */
static bool hold_record(int level, const char *text)
{
	size_t n;
	bool held;

	pthread_mutex_lock(&hold_lock);
	held = hold_buf != NULL;
	if (held) {
		n = strlen(text) + 2;
		if (hold_len + n <= hold_cap) {
			hold_buf[hold_len] = (char)level;
			memcpy(hold_buf + hold_len + 1, text, n - 1);
			hold_len += n;
		} else {
			hold_dropped++;
		}
	}
	pthread_mutex_unlock(&hold_lock);
	return held;
}

static void log_write(int level, const char *text)
{
	static const char *const no_fields[] = { NULL };

	if (hold_record(level, text))
		return;
	if (log_journal_native && log_target == LOG_TARGET_AUTO &&
	    journal_send(level, text, no_fields) == 0)
		return;
	if (log_target == LOG_TARGET_SYSLOG) {
		syslog(level, "%s", text);
		return;
	}
	if (log_prefix_priority)
		fprintf(stderr, "<%d>%s\n", level, text);
	else
		fprintf(stderr, "%s: %s%s%s\n", log_progname,
			level <= LOG_ERR	 ? "error"
			: level == LOG_WARNING ? "warning"
					       : "",
			level <= LOG_WARNING ? ": " : "", text);
}

void log_msgv(int level, const char *fmt, va_list ap)
{
	char buf[2048];
	int saved = errno;

	if (level > log_max_level)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	log_write(level, buf);
	errno = saved;
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_msgv(level, fmt, ap);
	va_end(ap);
}

int log_msg_errno(int level, int err, const char *fmt, ...)
{
	char buf[1800];
	va_list ap;

	err = abs(err);
	if (level <= log_max_level) {
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		log_msg(level, "%s: %s", buf, strerror(err));
	}
	return -err;
}

/* Append "KEY=value\n" to a journal datagram; values here have no '\n'. */
static size_t journal_append(char *buf, size_t cap, size_t off,
			     const char *key, const char *val)
{
	int n = snprintf(buf + off, cap - off, "%s=%s\n", key, val);

	if (n < 0 || (size_t)n >= cap - off)
		return off;
	return off + (size_t)n;
}

/*
 * One datagram, never waiting: 0 when sent or dropped because journald's
 * queue is full (counted), -errno when the socket is unusable (the caller
 * writes to stderr instead).
 */
static int journal_datagram(const char *buf, size_t len)
{
	for (int attempt = 0;; attempt++) {
		if (send(journal_fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
			return 0;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			__atomic_add_fetch(&journal_dropped, 1, __ATOMIC_RELAXED);
			return 0;
		}
		if (attempt > 0 || journal_reconnect() < 0)
			return -errno;
	}
}

static size_t journal_format(char *buf, size_t cap, int level,
			     const char *message, const char *const *fields)
{
	char prio[4];
	size_t off = 0;

	snprintf(prio, sizeof(prio), "%d", level);
	off = journal_append(buf, cap, off, "PRIORITY", prio);
	off = journal_append(buf, cap, off, "SYSLOG_IDENTIFIER", log_progname);
	off = journal_append(buf, cap, off, "MESSAGE", message);
	for (size_t i = 0; fields[i] && fields[i + 1]; i += 2)
		off = journal_append(buf, cap, off, fields[i], fields[i + 1]);
	return off;
}

/* Records dropped since the last report: say so first. */
static void journal_report_drops(void)
{
	uint64_t n = __atomic_exchange_n(&journal_dropped, 0, __ATOMIC_RELAXED);
	const char *fields[] = { "VMIC_LOG_DROPPED", NULL, NULL };
	char msg[128], count[24], buf[512];
	size_t len;

	if (n == 0)
		return;
	snprintf(count, sizeof(count), "%llu", (unsigned long long)n);
	fields[1] = count;
	snprintf(msg, sizeof(msg), "%llu log records dropped: journald did "
				   "not keep up",
		 (unsigned long long)n);
	len = journal_format(buf, sizeof(buf), LOG_WARNING, msg, fields);
	if (send(journal_fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		__atomic_add_fetch(&journal_dropped, n, __ATOMIC_RELAXED);
}

static int journal_send(int level, const char *message,
			const char *const *fields)
{
	char buf[8192];
	size_t len = journal_format(buf, sizeof(buf), level, message, fields);

	journal_report_drops();
	return journal_datagram(buf, len);
}

void log_struct(int level, const char *message, const char *const *fields)
{
	char buf[2048];
	size_t off;

	if (level > log_max_level)
		return;
	if (!log_held() && log_journal_native &&
	    log_target == LOG_TARGET_AUTO &&
	    journal_send(level, message, fields) == 0)
		return;
	off = (size_t)snprintf(buf, sizeof(buf), "%s", message);
	for (size_t i = 0; fields[i] && fields[i + 1] && off < sizeof(buf);
	     i += 2)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off,
					" %s=\"%s\"", fields[i],
					fields[i + 1]);
	if (log_target == LOG_TARGET_SYSLOG && !log_held())
		syslog(level, "%s", buf);
	else
		log_write(level, buf);
}

int log_hold_begin(size_t max_bytes)
{
	char *b = malloc(max_bytes ? max_bytes : 1);

	if (!b)
		return -ENOMEM;
	pthread_mutex_lock(&hold_lock);
	if (hold_buf) {
		pthread_mutex_unlock(&hold_lock);
		free(b);
		return -EALREADY;
	}
	hold_buf = b;
	hold_cap = max_bytes;
	hold_len = 0;
	hold_dropped = 0;
	pthread_mutex_unlock(&hold_lock);
	return 0;
}

bool log_held(void)
{
	bool held;

	pthread_mutex_lock(&hold_lock);
	held = hold_buf != NULL;
	pthread_mutex_unlock(&hold_lock);
	return held;
}

uint64_t log_hold_end(void)
{
	char *b;
	size_t len;
	uint64_t dropped;

	pthread_mutex_lock(&hold_lock);
	b = hold_buf;
	len = hold_len;
	dropped = hold_dropped;
	hold_buf = NULL;
	hold_len = hold_cap = 0;
	hold_dropped = 0;
	pthread_mutex_unlock(&hold_lock);
	if (!b)
		return 0;
	/* Written in order now that the hold is off; a record may be
	 * logged by another thread in between, which is harmless. */
	for (size_t off = 0; off < len;) {
		size_t n = strlen(b + off + 1);

		log_write((unsigned char)b[off], b + off + 1);
		off += n + 2;
	}
	free(b);
	if (dropped)
		log_msg(LOG_WARNING,
			"%llu log lines dropped while logging was held "
			"(the hold buffer was full)",
			(unsigned long long)dropped);
	return dropped;
}
