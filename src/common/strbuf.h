/* SPDX-License-Identifier: MIT */
/*
 * Building a string in a fixed buffer piece by piece, without the classic
 * `off += snprintf(...)` overrun: snprintf returns what it would have
 * written, so an unclamped offset walks past the buffer on the next call.
 */
#ifndef VMIC_STRBUF_H
#define VMIC_STRBUF_H

#include <stddef.h>

#include "macro.h"

/*
 * Append printf-style text at buf + off (buf holds n >= 1 bytes, off <= n
 * - 1 and buf[off] is its end). The text is cut to what fits; the buffer
 * stays NUL-terminated. Returns the new end, never more than n - 1.
 */
size_t vmic_appendf(char *buf, size_t n, size_t off, const char *fmt, ...)
	PRINTF_LIKE(4, 5);

#endif
