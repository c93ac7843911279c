/* SPDX-License-Identifier: MIT */
/*
 * Channel URIs: where a host reaches a guest agent, and where an agent
 * waits for its host.
 *
 *   host side                        guest side
 *   unix:PATH                        unix-listen:PATH
 *   vsock:CID[:PORT]                 vsock-listen:[PORT]
 *   hvsock:PATH[:PORT]               virtio-serial:NAME
 *                                    auto (virtio-serial:org.vmic.0 when that
 *                                          port exists, else vsock-listen)
 */
#ifndef VMIC_CHANNEL_H
#define VMIC_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * vsock port of the guest agent when a URI names none. An unassigned
 * number kept for vmic; docs/operations.md lists it.
 */
#define VMIC_VSOCK_PORT 5657
/* virtio-serial port name the agent opens by default. */
#define VMIC_VIRTIO_PORT_NAME "org.vmic.0"
/* sun_path is 108 bytes on Linux, including the terminator. */
#define VMIC_PATH_MAX 107

enum vmic_channel_kind {
	VMIC_CH_UNIX = 1,      /* host connects to a unix socket */
	VMIC_CH_VSOCK,         /* host connects to CID:PORT */
	VMIC_CH_HVSOCK,        /* host: unix socket + "CONNECT PORT\n" */
	VMIC_CH_UNIX_LISTEN,   /* guest listens on a unix socket */
	VMIC_CH_VSOCK_LISTEN,  /* guest listens on a vsock port */
	VMIC_CH_VIRTIO_SERIAL, /* guest opens a virtio-serial port */
	VMIC_CH_AUTO,          /* guest: pick virtio-serial or vsock */
};

struct vmic_channel {
	enum vmic_channel_kind kind;
	char path[VMIC_PATH_MAX + 1]; /* unix, hvsock, unix-listen; port name */
	uint32_t cid;
	uint32_t port;
};

/*
 * Parse a channel URI. Returns 0, or -EINVAL with a sentence in err that
 * says what is wrong and what a valid URI looks like.
 */
int vmic_channel_parse(const char *uri, struct vmic_channel *c, char *err,
		       size_t errsz);

/* Format back to the canonical URI (defaults made explicit). */
void vmic_channel_format(const struct vmic_channel *c, char *buf, size_t n);

/* True for the kinds a host connects to, false for the guest's. */
bool vmic_channel_is_host_side(const struct vmic_channel *c);

#endif
