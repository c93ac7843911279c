/* SPDX-License-Identifier: MIT */
/*
 * QMP, QEMU's machine protocol, as much as a power-off needs: what one
 * line from QEMU's QMP socket means (pure, fuzzed in tests/fuzz).
 */
#ifndef VMIC_SERVICES_SHUTDOWN_QMP_H
#define VMIC_SERVICES_SHUTDOWN_QMP_H

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

#endif
