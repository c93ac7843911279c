/* SPDX-License-Identifier: MIT */
/*
 * Facts about this guest for the host's status: host name, the OS from
 * os-release, the kernel from uname, and uptime. Every field is optional;
 * what cannot be read stays empty.
 */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "common/utf8.h"
#include "guestd.h"
#include "proto/control.h"

static void copy_field(char *dst, const char *src)
{
	vmic_utf8_sanitize(dst, VMIC_INFO_STR_MAX + 1, src, strlen(src));
}

/* Value of KEY=value or KEY="value" from an os-release line, unquoted. */
static bool os_release_value(const char *line, const char *key, char *out,
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

static void read_os_release(struct vmic_info *info)
{
	static const char *const paths[] = { "/etc/os-release",
					     "/usr/lib/os-release" };
	char line[512], value[VMIC_INFO_STR_MAX + 1];
	FILE *f = NULL;

	for (size_t i = 0; i < 2 && !f; i++)
		f = fopen(paths[i], "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (os_release_value(line, "PRETTY_NAME", value, sizeof(value)))
			copy_field(info->os_name, value);
		else if (os_release_value(line, "ID", value, sizeof(value)))
			copy_field(info->os_id, value);
		else if (os_release_value(line, "VERSION_ID", value,
					  sizeof(value)))
			copy_field(info->os_version, value);
	}
	fclose(f);
}

void info_collect(struct vmic_info *info)
{
	char host[256];
	struct utsname u;
	struct timespec ts;

	memset(info, 0, sizeof(*info));
	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		copy_field(info->hostname, host);
	}
	read_os_release(info);
	if (uname(&u) == 0) {
		copy_field(info->kernel_release, u.release);
		copy_field(info->kernel_version, u.version);
		copy_field(info->arch, u.machine);
	}
	if (clock_gettime(CLOCK_BOOTTIME, &ts) == 0)
		info->uptime_ms = (uint64_t)ts.tv_sec * 1000 +
				  (uint64_t)ts.tv_nsec / 1000000;
}
