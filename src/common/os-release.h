/* SPDX-License-Identifier: MIT */
/* Reading os-release(5): the distribution's name and version. */
#ifndef VMIC_OS_RELEASE_H
#define VMIC_OS_RELEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* /etc/os-release, else /usr/lib/os-release, open to read; NULL if neither. */
FILE *vmic_os_release_open(void);

/*
 * When line is KEY=value or KEY="value" (or single quotes), copy the
 * value without its quotes into out (size n, always terminated) and
 * return true; false for any other line. The value is copied as it is:
 * callers sanitize it for where it goes.
 */
bool vmic_os_release_value(const char *line, const char *key, char *out,
			   size_t n);

#endif
