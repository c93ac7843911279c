/* SPDX-License-Identifier: MIT */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>

size_t vmic_appendf(char *buf, size_t n, size_t off, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (n == 0)
		return 0;
	if (off >= n - 1) {
		buf[n - 1] = '\0';
		return n - 1;
	}
	va_start(ap, fmt);
	r = vsnprintf(buf + off, n - off, fmt, ap);
	va_end(ap);
	if (r < 0)
		return off;
	return off + (size_t)r >= n - 1 ? n - 1 : off + (size_t)r;
}
