/* SPDX-License-Identifier: MIT */
#include "channel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"

#define VSOCK_CID_HOST 2 /* VMADDR_CID_HOST: never a guest */

struct scheme {
	const char *prefix;
	enum vmic_channel_kind kind;
	const char *example;
};

static const struct scheme schemes[] = {
	{ "unix:", VMIC_CH_UNIX, "unix:/run/vmic/vm1.sock" },
	{ "vsock:", VMIC_CH_VSOCK, "vsock:3 or vsock:3:5657" },
	{ "hvsock:", VMIC_CH_HVSOCK, "hvsock:/run/fc/vm1.vsock:5657" },
	{ "unix-listen:", VMIC_CH_UNIX_LISTEN, "unix-listen:/run/vmic.sock" },
	{ "vsock-listen:", VMIC_CH_VSOCK_LISTEN, "vsock-listen:5657" },
	{ "virtio-serial:", VMIC_CH_VIRTIO_SERIAL, "virtio-serial:org.vmic.0" },
};

#define FAIL(...)                                 \
	do {                                      \
		snprintf(err, errsz, __VA_ARGS__); \
		return -EINVAL;                   \
	} while (0)

/* Parse a decimal u32 in s[0..n); false when empty, not digits or big. */
static bool parse_u32(const char *s, size_t n, uint32_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 10)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

static int parse_path(const char *rest, struct vmic_channel *c, char *err,
		      size_t errsz)
{
	size_t n = strlen(rest);

	if (n == 0)
		FAIL("the socket path is empty");
	if (n > VMIC_PATH_MAX)
		FAIL("the socket path is %zu bytes long; unix sockets allow at "
		     "most %d",
		     n, VMIC_PATH_MAX);
	memcpy(c->path, rest, n + 1);
	return 0;
}

static int parse_port(const char *s, size_t n, struct vmic_channel *c,
		      char *err, size_t errsz)
{
	if (!parse_u32(s, n, &c->port) || c->port == 0 ||
	    c->port == UINT32_MAX)
		FAIL("'%.*s' is not a vsock port (1..4294967294)", (int)MIN(n, 20),
		     s);
	return 0;
}

static int parse_vsock(const char *rest, struct vmic_channel *c, char *err,
		       size_t errsz)
{
	const char *colon = strchr(rest, ':');
	size_t n = colon ? (size_t)(colon - rest) : strlen(rest);

	if (!parse_u32(rest, n, &c->cid))
		FAIL("'%.*s' is not a vsock CID (a number such as 3)",
		     (int)MIN(n, 20), rest);
	if (c->cid <= VSOCK_CID_HOST || c->cid == UINT32_MAX)
		FAIL("CID %u is reserved; guests have CIDs from 3 up", c->cid);
	c->port = VMIC_VSOCK_PORT;
	if (colon)
		return parse_port(colon + 1, strlen(colon + 1), c, err, errsz);
	return 0;
}

/* hvsock:PATH[:PORT]; the port is the part after the last colon. */
static int parse_hvsock(const char *rest, struct vmic_channel *c, char *err,
			size_t errsz)
{
	const char *colon = strrchr(rest, ':');
	char path[VMIC_PATH_MAX + 2];
	size_t n = strlen(rest);
	int r;

	c->port = VMIC_VSOCK_PORT;
	if (colon && parse_u32(colon + 1, strlen(colon + 1), &c->port)) {
		r = parse_port(colon + 1, strlen(colon + 1), c, err, errsz);
		if (r < 0)
			return r;
		n = (size_t)(colon - rest);
	}
	if (n > VMIC_PATH_MAX)
		FAIL("the socket path is %zu bytes long; unix sockets allow at "
		     "most %d",
		     n, VMIC_PATH_MAX);
	memcpy(path, rest, n);
	path[n] = '\0';
	return parse_path(path, c, err, errsz);
}

static int parse_port_name(const char *rest, struct vmic_channel *c,
			   char *err, size_t errsz)
{
	size_t n = strlen(rest);

	if (n == 0 || n > 64 || strchr(rest, '/') || strcmp(rest, ".") == 0 ||
	    strcmp(rest, "..") == 0)
		FAIL("'%.64s' is not a virtio-serial port name (such as %s)",
		     rest, VMIC_VIRTIO_PORT_NAME);
	memcpy(c->path, rest, n + 1);
	return 0;
}

int vmic_channel_parse(const char *uri, struct vmic_channel *c, char *err,
		       size_t errsz)
{
	memset(c, 0, sizeof(*c));
	if (strcmp(uri, "auto") == 0) {
		c->kind = VMIC_CH_AUTO;
		c->port = VMIC_VSOCK_PORT;
		strcpy(c->path, VMIC_VIRTIO_PORT_NAME);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(schemes); i++) {
		const char *rest;

		if (strncmp(uri, schemes[i].prefix, strlen(schemes[i].prefix)))
			continue;
		rest = uri + strlen(schemes[i].prefix);
		c->kind = schemes[i].kind;
		switch (c->kind) {
		case VMIC_CH_UNIX:
		case VMIC_CH_UNIX_LISTEN:
			return parse_path(rest, c, err, errsz);
		case VMIC_CH_VSOCK:
			return parse_vsock(rest, c, err, errsz);
		case VMIC_CH_HVSOCK:
			return parse_hvsock(rest, c, err, errsz);
		case VMIC_CH_VSOCK_LISTEN:
			c->port = VMIC_VSOCK_PORT;
			return *rest ? parse_port(rest, strlen(rest), c, err,
						  errsz)
				     : 0;
		case VMIC_CH_VIRTIO_SERIAL:
			return parse_port_name(rest, c, err, errsz);
		default:
			break;
		}
	}
	FAIL("unknown channel '%.64s'; use one of unix:PATH, vsock:CID[:PORT], "
	     "hvsock:PATH[:PORT] (host) or unix-listen:PATH, "
	     "vsock-listen:[PORT], virtio-serial:NAME, auto (guest)",
	     uri);
}

void vmic_channel_format(const struct vmic_channel *c, char *buf, size_t n)
{
	switch (c->kind) {
	case VMIC_CH_UNIX:
		snprintf(buf, n, "unix:%s", c->path);
		break;
	case VMIC_CH_VSOCK:
		snprintf(buf, n, "vsock:%u:%u", c->cid, c->port);
		break;
	case VMIC_CH_HVSOCK:
		snprintf(buf, n, "hvsock:%s:%u", c->path, c->port);
		break;
	case VMIC_CH_UNIX_LISTEN:
		snprintf(buf, n, "unix-listen:%s", c->path);
		break;
	case VMIC_CH_VSOCK_LISTEN:
		snprintf(buf, n, "vsock-listen:%u", c->port);
		break;
	case VMIC_CH_VIRTIO_SERIAL:
		snprintf(buf, n, "virtio-serial:%s", c->path);
		break;
	case VMIC_CH_AUTO:
		snprintf(buf, n, "auto");
		break;
	default:
		snprintf(buf, n, "invalid");
		break;
	}
}

bool vmic_channel_is_host_side(const struct vmic_channel *c)
{
	return c->kind == VMIC_CH_UNIX || c->kind == VMIC_CH_VSOCK ||
	       c->kind == VMIC_CH_HVSOCK;
}
