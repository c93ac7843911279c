/* SPDX-License-Identifier: MIT */
/*
 * unix: (host) and unix-listen: (guest). The host side is also how it
 * reaches a QEMU virtio-serial chardev (`-chardev socket,server=on`) and
 * libvirt's <channel type='unix'>.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport-internal.h"

static void unix_connect_done(uv_connect_t *req, int status)
{
	struct vmic_connector *c = req->data;

	if (!c->done)
		connector_finish(c, status, "connect");
	connector_unref(c); /* the request's reference */
}

int unix_connect_start(struct vmic_connector *c)
{
	c->pipe = malloc(sizeof(*c->pipe));
	if (!c->pipe)
		return -ENOMEM;
	uv_pipe_init(c->loop, c->pipe, 0);
	c->pipe->data = c;
	c->req.data = c;
	c->pending++;
	uv_pipe_connect(&c->req, c->pipe, c->ch.path, unix_connect_done);
	return 0;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct vmic_listener *l = server->data;
	uv_pipe_t *p;

	if (status < 0)
		return;
	p = malloc(sizeof(*p));
	if (!p)
		return;
	uv_pipe_init(l->loop, p, 0);
	if (uv_accept(server, (uv_stream_t *)p) < 0) {
		vmic_stream_free((uv_stream_t *)p);
		return;
	}
	l->cb(l->ud, (uv_stream_t *)p);
}

/* Remove a stale socket left by an earlier run, but nothing else. */
static void unlink_stale_socket(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
}

int unix_listen_start(struct vmic_listener *l, char *err, size_t errsz)
{
	int r;

	uv_pipe_init(l->loop, &l->server, 0);
	l->have_server = true;
	l->server.data = l;
	unlink_stale_socket(l->ch.path);
	r = uv_pipe_bind(&l->server, l->ch.path);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&l->server, 4, on_connection);
	if (r < 0) {
		snprintf(err, errsz, "cannot listen on %s: %s", l->ch.path,
			 uv_strerror(r));
		return r;
	}
	chmod(l->ch.path, 0600);
	return 0;
}
