/* SPDX-License-Identifier: MIT */
/*
 * os-release(5) for the guest's status and for KVP's Auto pool. Only the
 * plain KEY=value form with optional surrounding quotes is understood;
 * shell escapes inside a value are left as they are, which is what a
 * status line needs.
 */
#include <string.h>

#include "common/os-release.h"

FILE *vmic_os_release_open(void)
{
	FILE *f = fopen("/etc/os-release", "re");

	return f ? f : fopen("/usr/lib/os-release", "re");
}

bool vmic_os_release_value(const char *line, const char *key, char *out,
			   size_t n)
{
	size_t klen = strlen(key), len;
	const char *v;

	if (strncmp(line, key, klen) != 0 || line[klen] != '=')
		return false;
	v = line + klen + 1;
	len = strcspn(v, "\n");
	if (len >= 2 && (v[0] == '"' || v[0] == '\'') && v[len - 1] == v[0]) {
		v++;
		len -= 2;
	}
	snprintf(out, n, "%.*s", (int)len, v);
	return true;
}
