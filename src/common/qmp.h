/* SPDX-License-Identifier: MIT */
/*
 * QMP, QEMU's machine protocol, for the host's services (a power-off, a
 * disk snapshot): what one line from QEMU's QMP socket means (qmp.c,
 * pure, fuzzed in tests/fuzz), and a client that runs one command on a
 * QMP socket from a libuv loop (qmp-client.c; host only: jansson).
 */
#ifndef VMIC_COMMON_QMP_H
#define VMIC_COMMON_QMP_H

#include <stdbool.h>
#include <stddef.h>

/* Lines are short; one this long is not QEMU talking. */
#define QMP_LINE_MAX (64 * 1024)
#define QMP_ERROR_MAX 256

enum qmp_kind {
	QMP_MALFORMED, /* not a JSON object */
	QMP_GREETING,  /* {"QMP": {...}} */
	QMP_RETURN,    /* {"return": ...}: a command succeeded */
	QMP_ERROR,     /* {"error": {"desc": ...}}: a command failed */
	QMP_EVENT,     /* {"event": ...}: asynchronous, ignored */
	QMP_OTHER,     /* an object of another shape */
};

/*
 * Classify one line (without its newline). For QMP_ERROR, err gets the
 * description made safe for logs (valid UTF-8, no control characters).
 */
enum qmp_kind qmp_parse_line(const char *line, size_t n, char *err,
			     size_t errsz);

/* ---- qmp-client.c ---- */
struct uv_loop_s;
struct qmp_call;

/* status 0 when the command was answered (or, with eof_ok, QEMU closed
 * the socket after it was sent); -errno otherwise; detail says what
 * happened in a sentence. */
typedef void (*qmp_done_cb)(void *ud, int status, const char *detail);

/*
 * Connect to QEMU's QMP socket at path, read the greeting, send
 * qmp_capabilities, then `command` (one JSON object, no newline), named
 * `what` in the sentences ("quit", "blockdev-snapshot-sync"). cb runs
 * once, later, within timeout_ms, unless the call is cancelled. 0 (*out
 * set) or -ENOMEM / -ENAMETOOLONG (then cb never runs).
 */
int qmp_call_start(struct uv_loop_s *loop, const char *path,
		   const char *command, const char *what, unsigned timeout_ms,
		   bool eof_ok, qmp_done_cb cb, void *ud, struct qmp_call **out);
/* Abandon a call: no callback; it frees itself once its handles close. */
void qmp_call_cancel(struct qmp_call *c);

#endif
