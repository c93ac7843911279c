/* SPDX-License-Identifier: MIT */
/*
 * hvsock: Firecracker / Cloud Hypervisor hybrid vsock. The VMM exposes the
 * guest's vsock as a unix socket; the host connects, writes
 * "CONNECT <port>\n" and reads "OK <host_port>\n", after which the socket
 * carries the guest port's byte stream.
 *
 * The answer is read one byte at a time up to its newline, so bytes the
 * guest sends right after it (our agent's hello) stay in the socket for
 * the link, and a line that arrives in pieces is collected across
 * wakeups (peeking would leave the socket readable and spin the loop).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/macro.h"
#include "transport-internal.h"

int hvsock_parse_reply(const char *line, size_t n, uint32_t *host_port)
{
	uint64_t v = 0;
	size_t i;

	if (n < 4 || strncasecmp(line, "OK ", 3) != 0)
		return -EPROTO;
	for (i = 3; i < n; i++) {
		if (line[i] < '0' || line[i] > '9' || i > 13)
			return -EPROTO;
		v = v * 10 + (uint64_t)(line[i] - '0');
	}
	if (v > UINT32_MAX)
		return -EPROTO;
	*host_port = (uint32_t)v;
	return 0;
}

/* Describe a refusal for the user: the VMM's line, made printable. */
static void hvsock_fail(struct vmic_connector *c, const char *line, size_t n)
{
	char what[HVSOCK_LINE_MAX + 64];
	size_t o;

	o = (size_t)snprintf(what, sizeof(what),
			     "hvsock CONNECT %u refused: '", c->ch.port);
	for (size_t i = 0; i < n && o + 3 < sizeof(what); i++)
		what[o++] = line[i] >= 0x20 && line[i] < 0x7f ? line[i] : '?';
	what[o++] = '\'';
	what[o] = '\0';
	connector_finish(c, -ECONNREFUSED, what);
}

static void on_reply_readable(uv_poll_t *h, int status, int events UNUSED)
{
	struct vmic_connector *c = h->data;
	uint32_t host_port;
	ssize_t n;
	char ch;

	if (status < 0) {
		connector_finish(c, status, "hvsock handshake");
		return;
	}
	for (;;) {
		n = recv(c->fd, &ch, 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return; /* wait for the rest of the line */
		if (n <= 0) {
			/* Firecracker closes the socket when no one listens
			 * on the guest port. */
			connector_finish(c, n == 0 ? -ECONNRESET : -errno,
					 "hvsock handshake: the VMM closed the "
					 "connection (is the agent listening "
					 "on that vsock port?)");
			return;
		}
		if (ch == '\n')
			break;
		if (c->linelen == sizeof(c->line)) {
			hvsock_fail(c, c->line, c->linelen);
			return;
		}
		c->line[c->linelen++] = ch;
	}
	if (hvsock_parse_reply(c->line, c->linelen, &host_port) < 0) {
		hvsock_fail(c, c->line, c->linelen);
		return;
	}
	uv_poll_stop(h);
	sockfd_hand_over(c, "hvsock handshake");
}

static void hvsock_connected(struct vmic_connector *c)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "CONNECT %u\n", c->ch.port);

	/* A fresh socket always has room for one short line. */
	if (send(c->fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
		connector_finish(c, -errno, "hvsock CONNECT");
		return;
	}
	uv_poll_start(&c->poll, UV_READABLE, on_reply_readable);
}

int hvsock_connect_start(struct vmic_connector *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memcpy(sa.sun_path, c->ch.path, strlen(c->ch.path) + 1);
	c->on_connected = hvsock_connected;
	return sockfd_connect_start(c, AF_UNIX, (struct sockaddr *)&sa,
				    sizeof(sa));
}
