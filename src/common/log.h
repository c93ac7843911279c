/* SPDX-License-Identifier: MIT */
/*
 * Logging for the daemons and the CLI.
 *
 * Daemons log to stderr; when stderr is not a terminal every line starts
 * with a "<N>" syslog priority prefix, which journald and most supervisors
 * understand. `--syslog` sends lines to syslog(3) instead. When journald
 * is the reader of stderr, every record goes to its native socket instead
 * (never blocking, see log.c), and structured events (log_struct) carry
 * fields such as VMIC_VM= that `journalctl VMIC_VM=web1` queries;
 * elsewhere the fields print as key=value pairs.
 */
#ifndef VMIC_LOG_H
#define VMIC_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

#include "macro.h"

enum log_target {
	LOG_TARGET_AUTO,   /* stderr, "<N>" prefixes unless a terminal */
	LOG_TARGET_STDERR, /* plain "prog: level: text" lines */
	LOG_TARGET_SYSLOG,
};

void log_init(const char *progname, enum log_target target);
void log_set_max_level(int level);
int log_get_max_level(void);
/* Parse "err", "warning", "info", "debug" (or 0..7); -EINVAL if unknown. */
int log_level_from_string(const char *s);
/* "err", "warning", ... for a level; "?" when out of range. */
const char *log_level_to_string(int level);

void log_msg(int level, const char *fmt, ...) PRINTF_LIKE(2, 3);
void log_msgv(int level, const char *fmt, va_list ap) PRINTF_LIKE(2, 0);
/* Log with ": strerror(err)" appended; returns -abs(err) for `return`. */
int log_msg_errno(int level, int err, const char *fmt, ...) PRINTF_LIKE(3, 4);

/*
 * Send every record to the journal's native socket at path from now on
 * (log_init does this with journald's when journald reads stderr; tests
 * give their own). Non-blocking: a record journald has no room for is
 * dropped and counted, and the next record that passes is preceded by
 * one saying how many were lost. -errno when path cannot be reached.
 */
int log_journal_open(const char *path);
/* Records dropped and not yet reported. */
uint64_t log_dropped_count(void);

/*
 * Hold mode: from log_hold_begin until log_hold_end every record is kept
 * in memory (up to max_bytes of text, the rest counted), never written,
 * so a caller can keep the process off a disk it froze. log_hold_end
 * writes the kept records in order, then one warning with the count of
 * those dropped, and returns that count. -EALREADY when a hold is on,
 * -ENOMEM. A structured record held keeps its fields as key="value" text.
 * Callable from any thread.
 */
int log_hold_begin(size_t max_bytes);
uint64_t log_hold_end(void);
bool log_held(void);

/*
 * A structured record: message plus NULL-terminated pairs of field names
 * (upper case, journald rules) and values. Values must already be
 * sanitized (see utf8.h).
 */
void log_struct(int level, const char *message, const char *const *fields);

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                       \
	do {                                                 \
		if (log_get_max_level() >= LOG_DEBUG)        \
			log_msg(LOG_DEBUG, __VA_ARGS__);     \
	} while (0)
#define log_error_errno(e, ...) log_msg_errno(LOG_ERR, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_msg_errno(LOG_WARNING, e, __VA_ARGS__)

#endif
