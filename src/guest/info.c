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

#include "common/os-release.h"
#include "common/utf8.h"
#include "guestd.h"
#include "proto/control.h"

static void copy_field(char *dst, const char *src)
{
	vmic_utf8_sanitize(dst, VMIC_INFO_STR_MAX + 1, src, strlen(src));
}

static void read_os_release(struct vmic_info *info)
{
	char line[512], value[VMIC_INFO_STR_MAX + 1];
	FILE *f = vmic_os_release_open();

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (vmic_os_release_value(line, "PRETTY_NAME", value,
					  sizeof(value)))
			copy_field(info->os_name, value);
		else if (vmic_os_release_value(line, "ID", value,
					       sizeof(value)))
			copy_field(info->os_id, value);
		else if (vmic_os_release_value(line, "VERSION_ID", value,
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
