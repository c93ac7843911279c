/* SPDX-License-Identifier: MIT */
/* Dispatch from channel kinds to the transport files, and lifetimes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "transport-internal.h"

static void free_handle(uv_handle_t *h)
{
	free(h);
}

void vmic_stream_free(uv_stream_t *s)
{
	if (s && !uv_is_closing((uv_handle_t *)s))
		uv_close((uv_handle_t *)s, free_handle);
}

void connector_unref(struct vmic_connector *c)
{
	if (--c->pending == 0)
		free(c);
}

static void connector_handle_closed(uv_handle_t *h)
{
	connector_unref(h->data);
}

/* Close our handles and drop the base reference. */
static void connector_release(struct vmic_connector *c)
{
	c->pending++;
	uv_close((uv_handle_t *)&c->timer, connector_handle_closed);
	if (c->poll_active) {
		c->pending++;
		c->poll.data = c;
		uv_close((uv_handle_t *)&c->poll, connector_handle_closed);
		c->poll_active = false;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	connector_unref(c);
}

void connector_finish(struct vmic_connector *c, int status, const char *what)
{
	uv_stream_t *s = NULL;

	if (c->done)
		return;
	c->done = true;
	if (status == 0 && c->pipe) {
		s = (uv_stream_t *)c->pipe;
		c->pipe = NULL;
		uv_read_stop(s);
		s->data = NULL;
	} else if (c->pipe) {
		vmic_stream_free((uv_stream_t *)c->pipe);
		c->pipe = NULL;
	}
	if (c->cb)
		c->cb(c->ud, status, s, what);
	c->cb = NULL;
	connector_release(c);
}

static void on_timeout(uv_timer_t *t)
{
	struct vmic_connector *c = t->data;

	connector_finish(c, -ETIMEDOUT, "connect timed out");
}

struct vmic_connector *connector_new(uv_loop_t *loop,
				     const struct vmic_channel *ch,
				     vmic_connect_cb cb, void *ud)
{
	struct vmic_connector *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->loop = loop;
	c->ch = *ch;
	c->cb = cb;
	c->ud = ud;
	c->fd = -1;
	c->pending = 1;
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	return c;
}

int vmic_connect(uv_loop_t *loop, const struct vmic_channel *ch,
		 unsigned timeout_ms, vmic_connect_cb cb, void *ud,
		 struct vmic_connector **out)
{
	struct vmic_connector *c = connector_new(loop, ch, cb, ud);
	int r;

	if (!c)
		return -ENOMEM;
	switch (ch->kind) {
	case VMIC_CH_UNIX:
		r = unix_connect_start(c);
		break;
	case VMIC_CH_HVSOCK:
		r = hvsock_connect_start(c);
		break;
	case VMIC_CH_VSOCK:
		r = vsock_connect_start(c);
		break;
	default:
		r = -EINVAL;
		break;
	}
	if (r < 0) {
		c->cb = NULL;
		c->done = true;
		if (c->pipe)
			vmic_stream_free((uv_stream_t *)c->pipe);
		c->pipe = NULL;
		connector_release(c);
		return r;
	}
	if (timeout_ms)
		uv_timer_start(&c->timer, on_timeout, timeout_ms, 0);
	*out = c;
	return 0;
}

void vmic_connect_cancel(struct vmic_connector *c)
{
	if (!c || c->done)
		return;
	c->cb = NULL;
	c->done = true;
	uv_timer_stop(&c->timer);
	if (c->pipe) {
		/* A pending uv_connect completes with UV_ECANCELED and sees
		 * done set; the handle frees itself. */
		vmic_stream_free((uv_stream_t *)c->pipe);
		c->pipe = NULL;
	}
	connector_release(c);
}

int vmic_listen(uv_loop_t *loop, const struct vmic_channel *ch,
		const struct vmic_peer_cids *allowed, vmic_accept_cb cb,
		void *ud, struct vmic_listener **out, char *err, size_t errsz)
{
	struct vmic_listener *l = calloc(1, sizeof(*l));
	struct vmic_channel resolved = *ch;
	char dev[VMIC_PATH_MAX + 1];
	int r;

	if (!l)
		return -ENOMEM;
	if (ch->kind == VMIC_CH_AUTO) {
		/* A virtio-serial port named for vmic wins; else vsock. */
		if (virtio_serial_find(ch->path, dev, sizeof(dev)) == 0)
			resolved.kind = VMIC_CH_VIRTIO_SERIAL;
		else
			resolved.kind = VMIC_CH_VSOCK_LISTEN;
	}
	l->loop = loop;
	l->ch = resolved;
	l->cb = cb;
	l->ud = ud;
	l->fd = -1;
	if (allowed)
		l->allowed = *allowed;
	l->refused_log = (struct vmic_ratelimit)VMIC_RATELIMIT_INIT(
		VMIC_REFUSED_LOG_INTERVAL_MS);
	switch (resolved.kind) {
	case VMIC_CH_UNIX_LISTEN:
		r = unix_listen_start(l, err, errsz);
		break;
	case VMIC_CH_VSOCK_LISTEN:
		r = vsock_listen_start(l, err, errsz);
		break;
	case VMIC_CH_VIRTIO_SERIAL:
		r = virtio_serial_open(l, err, errsz);
		break;
	default:
		snprintf(err, errsz, "a guest agent cannot use a host-side "
				     "channel; use unix-listen:, vsock-listen: "
				     "or virtio-serial:");
		r = -EINVAL;
		break;
	}
	if (r < 0) {
		vmic_listener_close(l);
		return r;
	}
	*out = l;
	return 0;
}

const struct vmic_channel *vmic_listener_channel(const struct vmic_listener *l)
{
	return &l->ch;
}

void vmic_listener_rearm(struct vmic_listener *l)
{
	if (l->ch.kind == VMIC_CH_VIRTIO_SERIAL)
		virtio_serial_rearm(l);
}

static void listener_handle_closed(uv_handle_t *h)
{
	struct vmic_listener *l = h->data;

	if (--l->closing == 0)
		free(l);
}

void vmic_listener_close(struct vmic_listener *l)
{
	if (!l)
		return;
	l->closing = 1; /* held until every handle below has closed */
	if (l->have_server) {
		l->closing++;
		l->server.data = l;
		uv_close((uv_handle_t *)&l->server, listener_handle_closed);
	}
	if (l->have_poll) {
		l->closing++;
		l->poll.data = l;
		uv_close((uv_handle_t *)&l->poll, listener_handle_closed);
	}
	if (l->have_timer) {
		l->closing++;
		l->retry.data = l;
		uv_close((uv_handle_t *)&l->retry, listener_handle_closed);
	}
	if (l->have_signal) {
		l->closing++;
		l->sigio.data = l;
		uv_close((uv_handle_t *)&l->sigio, listener_handle_closed);
	}
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	if (--l->closing == 0)
		free(l);
}
