/* SPDX-License-Identifier: MIT */
/*
 * What hostd needs of a libvirt domain's XML: its name, UUID and vmic
 * channel. The XML comes from libvirtd (virDomainGetXMLDesc), which a
 * domain's owner can shape, so it is parsed as untrusted: bounded in
 * size, no network, no entities, no DTD (libvirt never writes one).
 */
#ifndef VMIC_HOST_LIBVIRT_XML_H
#define VMIC_HOST_LIBVIRT_XML_H

#include <stddef.h>

#define LVX_XML_MAX (4u << 20)  /* bytes of domain XML we parse at most */
#define LVX_NAME_MAX 255        /* libvirt allows longer; we skip those */
#define LVX_UUID_LEN 36
#define LVX_CHANNEL_MAX 4200    /* "unix:" + a path */
/* The virtio-serial port name of vmic's channel. */
#define LVX_PORT_NAME "org.vmic.0"

struct lvx_domain {
	char name[LVX_NAME_MAX + 1];
	char uuid[LVX_UUID_LEN + 1];
	/* "unix:PATH" of <channel type='unix'> with target org.vmic.0, else
	 * "vsock:CID" of a <vsock> with an address, else "" (none). */
	char channel[LVX_CHANNEL_MAX];
};

/*
 * Extract d from len bytes of domain XML. 0 on success (channel may be
 * ""); -EINVAL with a sentence in err when the text is not a domain we
 * can read (too large, not XML, a DTD, no name or UUID, values too long).
 */
int lvx_extract(const char *xml, size_t len, struct lvx_domain *d,
		char *err, size_t errsz);

/*
 * The XML lines that give a domain vmic's channel: a unix socket at
 * `path` for virtio-serial port org.vmic.0, as <channel> text for
 * virDomainAttachDeviceFlags and `virsh attach-device`. Returns the
 * length written, or -ENAMETOOLONG / -EINVAL (a path with a quote,
 * '<', '>', '&' or a control character, or not absolute).
 */
int lvx_channel_snippet(const char *path, char *buf, size_t n);

#endif
