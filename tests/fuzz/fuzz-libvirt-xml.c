/* SPDX-License-Identifier: MIT */
/*
 * lvx_extract (src/host/libvirt-xml.c) on arbitrary bytes: the domain XML
 * hostd reads from libvirtd, which a domain's owner shapes. Whatever is
 * accepted has a non-empty name, a 36-character UUID and a channel that
 * is empty, "unix:/..." or "vsock:DIGITS"; whatever is refused says why
 * and leaves nothing behind.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#include "host/libvirt-xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lvx_domain d;
	char err[256] = "";
	int r = lvx_extract((const char *)data, size, &d, err, sizeof(err));

	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL);
		FUZZ_CHECK(strlen(err) > 10);
		FUZZ_CHECK(d.name[0] == '\0' && d.channel[0] == '\0');
		return 0;
	}
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(d.name[0] != '\0' && strlen(d.name) <= LVX_NAME_MAX);
	FUZZ_CHECK(strlen(d.uuid) == LVX_UUID_LEN);
	FUZZ_CHECK(d.channel[0] == '\0' ||
		   strncmp(d.channel, "unix:/", 6) == 0 ||
		   (strncmp(d.channel, "vsock:", 6) == 0 &&
		    strspn(d.channel + 6, "0123456789") ==
			    strlen(d.channel + 6)));
	return 0;
}
