/* SPDX-License-Identifier: MIT */
/*
 * The guest's facts (VMIC_CTL_INFO): host name, OS, kernel, architecture
 * and uptime, kept per VM for `list` and `status`. Every string is
 * sanitised on arrival, so what reaches logs, JSON and SQLite is safe.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/utf8.h"
#include "hostd.h"
#include "proto/control.h"

static void copy_clean(char *dst, size_t n, const char *src)
{
	vmic_utf8_sanitize(dst, n, src, strlen(src));
}

static bool info_differs(const struct guest_info *a,
			 const struct guest_info *b)
{
	return strcmp(a->hostname, b->hostname) || strcmp(a->os_name, b->os_name) ||
	       strcmp(a->kernel, b->kernel) || strcmp(a->arch, b->arch);
}

int guest_info_on_frame(struct vm *vm, const struct vmic_frame *f)
{
	struct vmic_info m;
	struct guest_info gi = { 0 };
	uint64_t uptime_us;

	if (vmic_info_decode(f->payload, f->length, &m) < 0) {
		conn_send_error(vm, f, VMIC_E_MALFORMED,
				"guest info does not decode: a string is longer "
				"than 255 bytes, not UTF-8, or the uptime is "
				"missing");
		return 0;
	}
	copy_clean(gi.hostname, sizeof(gi.hostname), m.hostname);
	copy_clean(gi.os_name, sizeof(gi.os_name), m.os_name);
	copy_clean(gi.kernel, sizeof(gi.kernel), m.kernel_release);
	copy_clean(gi.arch, sizeof(gi.arch), m.arch);
	/* An uptime past a century is nonsense; treat it as unknown. */
	uptime_us = m.uptime_ms < 100ull * 365 * 86400 * 1000
			    ? m.uptime_ms * 1000
			    : 0;
	gi.boot_us = vmic_realtime_us() - (int64_t)uptime_us;
	if (!vm->info) {
		vm->info = malloc(sizeof(*vm->info));
		if (!vm->info)
			return 0;
	} else if (!info_differs(vm->info, &gi)) {
		vm->info->boot_us = gi.boot_us;
		return 0;
	}
	*vm->info = gi;
	vm_touch(vm);
	events_emit(vm->h, vm->name, NULL, "guest-info", NULL, NULL,
		    "host name %s, %s, kernel %s, %s",
		    gi.hostname[0] ? gi.hostname : "(none)",
		    gi.os_name[0] ? gi.os_name : "unknown OS",
		    gi.kernel[0] ? gi.kernel : "unknown",
		    gi.arch[0] ? gi.arch : "unknown architecture");
	return 0;
}
