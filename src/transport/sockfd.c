/* SPDX-License-Identifier: MIT */
/*
 * Non-blocking connect and accept for socket families libuv has no API
 * for (AF_VSOCK), driven by uv_poll. The connected or accepted fd is then
 * wrapped in a uv_pipe_t, so the rest of vmic sees an ordinary stream.
 * The code takes any address family: the tests exercise it over AF_UNIX,
 * since vsock loopback is not available on every machine.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "transport-internal.h"

uv_stream_t *sockfd_wrap(uv_loop_t *loop, int fd, int *err)
{
	uv_pipe_t *p = malloc(sizeof(*p));
	int r;

	if (!p) {
		close(fd);
		*err = -ENOMEM;
		return NULL;
	}
	uv_pipe_init(loop, p, 0);
	r = uv_pipe_open(p, fd);
	if (r < 0) {
		close(fd);
		vmic_stream_free((uv_stream_t *)p);
		*err = r;
		return NULL;
	}
	*err = 0;
	return (uv_stream_t *)p;
}

void sockfd_hand_over(struct vmic_connector *c, const char *what)
{
	int fd = dup(c->fd), err = 0;

	if (fd < 0) {
		connector_finish(c, -errno, "dup");
		return;
	}
	c->pipe = (uv_pipe_t *)sockfd_wrap(c->loop, fd, &err);
	connector_finish(c, err, what);
}

static void on_connect_writable(uv_poll_t *h, int status, int events UNUSED)
{
	struct vmic_connector *c = h->data;
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	/* libuv reports POLLERR as UV_EBADF; SO_ERROR has the real cause. */
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (status < 0 || soerr) {
		connector_finish(c, soerr ? -soerr : status, "connect");
		return;
	}
	uv_poll_stop(h);
	c->on_connected(c);
}

int sockfd_connect_start(struct vmic_connector *c, int family,
			 const struct sockaddr *sa, socklen_t salen)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int r;

	if (fd < 0)
		return -errno;
	if (connect(fd, sa, salen) < 0 && errno != EINPROGRESS) {
		r = -errno;
		close(fd);
		return r;
	}
	c->fd = fd;
	/* Poll even when connect finished at once: one path for both. */
	r = uv_poll_init(c->loop, &c->poll, fd);
	if (r < 0)
		return r;
	c->poll_active = true;
	c->poll.data = c;
	return uv_poll_start(&c->poll, UV_WRITABLE, on_connect_writable);
}

#define ACCEPT_PAUSE_MS 1000

static void on_listen_readable(uv_poll_t *h, int status, int events);

static void on_accept_resume(uv_timer_t *t)
{
	struct vmic_listener *l = t->data;

	uv_poll_start(&l->poll, UV_READABLE, on_listen_readable);
}

static void on_listen_readable(uv_poll_t *h, int status, int events UNUSED)
{
	struct vmic_listener *l = h->data;
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	uv_stream_t *s;
	int fd, err;

	if (status < 0)
		return;
	fd = accept4(l->fd, (struct sockaddr *)&sa, &salen,
		     SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		/* Out of descriptors, the pending peer stays and the socket
		 * stays readable: pause instead of spinning. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			uv_poll_stop(h);
			uv_timer_start(&l->retry, on_accept_resume,
				       ACCEPT_PAUSE_MS, 0);
		}
		return; /* EAGAIN, or a peer that left: wait for the next */
	}
	/* Refused before any byte is read from it or written to it. */
	if (l->admit && !l->admit(l, (struct sockaddr *)&sa, salen)) {
		close(fd);
		return;
	}
	s = sockfd_wrap(l->loop, fd, &err);
	if (s)
		l->cb(l->ud, s);
}

int sockfd_listen_start(struct vmic_listener *l, int family,
			const struct sockaddr *sa, socklen_t salen, char *err,
			size_t errsz)
{
	int r;

	l->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		r = -errno;
		snprintf(err, errsz, "cannot create the socket: %s",
			 strerror(-r));
		return r;
	}
	if (bind(l->fd, sa, salen) < 0 || listen(l->fd, 4) < 0) {
		r = -errno;
		snprintf(err, errsz, "cannot listen: %s", strerror(-r));
		return r;
	}
	r = uv_poll_init(l->loop, &l->poll, l->fd);
	if (r < 0) {
		snprintf(err, errsz, "cannot watch the socket: %s",
			 uv_strerror(r));
		return r;
	}
	l->have_poll = true;
	l->poll.data = l;
	uv_timer_init(l->loop, &l->retry);
	l->have_timer = true;
	l->retry.data = l;
	return uv_poll_start(&l->poll, UV_READABLE, on_listen_readable);
}
