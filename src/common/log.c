/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
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

void log_init(const char *progname, enum log_target target)
{
	log_progname = progname;
	log_target = target;
	log_prefix_priority =
		target == LOG_TARGET_AUTO && !isatty(STDERR_FILENO);
	log_journal_native = target == LOG_TARGET_AUTO && stderr_is_journal();
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

static void log_write(int level, const char *text)
{
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

static int journal_send(int level, const char *message,
			const char *const *fields)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[8192], prio[4];
	size_t off = 0;
	ssize_t n;
	int fd;

	snprintf(prio, sizeof(prio), "%d", level);
	off = journal_append(buf, sizeof(buf), off, "PRIORITY", prio);
	off = journal_append(buf, sizeof(buf), off, "SYSLOG_IDENTIFIER",
			     log_progname);
	off = journal_append(buf, sizeof(buf), off, "MESSAGE", message);
	for (size_t i = 0; fields[i] && fields[i + 1]; i += 2)
		off = journal_append(buf, sizeof(buf), off, fields[i],
				     fields[i + 1]);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strcpy(sa.sun_path, JOURNAL_SOCKET);
	n = sendto(fd, buf, off, MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   sizeof(sa));
	close(fd);
	return n < 0 ? -errno : 0;
}

void log_struct(int level, const char *message, const char *const *fields)
{
	char buf[2048];
	size_t off;

	if (level > log_max_level)
		return;
	if (log_journal_native && journal_send(level, message, fields) == 0)
		return;
	off = (size_t)snprintf(buf, sizeof(buf), "%s", message);
	for (size_t i = 0; fields[i] && fields[i + 1] && off < sizeof(buf);
	     i += 2)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off,
					" %s=\"%s\"", fields[i],
					fields[i + 1]);
	if (log_target == LOG_TARGET_SYSLOG)
		syslog(level, "%s", buf);
	else
		log_write(level, buf);
}
