/* SPDX-License-Identifier: MIT */
#include "link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "transport.h"

/*
 * One read buffer for the whole process. libuv calls alloc, read and the
 * read callback back to back for one stream, and every frame is handled
 * inside the callback, so sharing it is safe and idle links cost nothing.
 */
static char link_read_buf[64 * 1024];

static void link_flush(struct vmic_link *l);

static void on_alloc(uv_handle_t *h UNUSED, size_t suggested UNUSED,
		     uv_buf_t *buf)
{
	buf->base = link_read_buf;
	buf->len = sizeof(link_read_buf);
}

static int link_frame_cb(void *ud, const struct vmic_frame *f)
{
	struct vmic_link *l = ud;
	int r;

	if (l->closing)
		return -ECANCELED;
	r = l->ops->on_frame(l->ud, f);
	if (l->closing)
		return -ECANCELED;
	return r;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct vmic_link *l = s->data;
	bool was_resyncing;
	int r;

	if (n == 0)
		return;
	if (n < 0) {
		vmic_link_close(l, n == UV_EOF ? -EPIPE : (int)n);
		return;
	}
	l->bytes_in += (uint64_t)n;
	was_resyncing = l->rx.resyncing;
	r = vmic_rx_feed(&l->rx, buf->base, (size_t)n, link_frame_cb, l);
	if (r < 0 && !l->closing)
		vmic_link_close(l, r);
	else if (!was_resyncing && l->rx.resyncing && !l->closing &&
		 l->ops->on_resync)
		l->ops->on_resync(l->ud, l->rx.dropped);
}

int vmic_link_open(struct vmic_link *l, uv_stream_t *stream, bool resync,
		   const struct vmic_link_ops *ops, void *ud)
{
	int r;

	memset(l, 0, sizeof(*l));
	l->stream = stream;
	l->ops = ops;
	l->ud = ud;
	vmic_rx_init(&l->rx, resync);
	vmic_outq_init(&l->outq, VMIC_LINK_QUEUE_LIMIT);
	stream->data = l;
	r = uv_read_start(stream, on_alloc, on_read);
	if (r < 0) {
		vmic_stream_free(stream);
		l->stream = NULL;
		return r;
	}
	return 0;
}

static void link_closed(uv_handle_t *h)
{
	struct vmic_link *l = h->data;

	free(h);
	l->stream = NULL;
	l->ops->on_close(l->ud, l->close_reason);
}

void vmic_link_close(struct vmic_link *l, int reason)
{
	if (l->closing || !l->stream)
		return;
	l->closing = true;
	l->close_reason = reason;
	uv_read_stop(l->stream);
	vmic_outq_clear(&l->outq);
	vmic_rx_free(&l->rx);
	/* Pending writes complete with UV_ECANCELED before link_closed. */
	uv_close((uv_handle_t *)l->stream, link_closed);
}

static void on_write(uv_write_t *req, int status)
{
	struct vmic_link *l = req->data;

	for (unsigned i = 0; i < l->ninflight; i++) {
		l->bytes_out += l->inflight[i]->len;
		free(l->inflight[i]);
	}
	l->ninflight = 0;
	l->writing = false;
	if (l->closing)
		return;
	if (status < 0) {
		vmic_link_close(l, status);
		return;
	}
	link_flush(l);
}

/*
 * Start one write with every urgent frame queued and at most one stream
 * chunk, so urgent frames overtake bulk data at every write.
 */
static void link_flush(struct vmic_link *l)
{
	uv_buf_t bufs[ARRAY_SIZE(l->inflight)];
	bool have_bulk = false;
	int r;

	if (l->writing || l->closing)
		return;
	while (l->ninflight < ARRAY_SIZE(l->inflight)) {
		struct vmic_outbuf *b;

		if (!l->outq.urgent_head && (have_bulk || !l->outq.lanes))
			break;
		b = vmic_outq_pop(&l->outq);
		have_bulk = have_bulk || b->stream_id != 0;
		bufs[l->ninflight] = uv_buf_init((char *)b->data, b->len);
		l->inflight[l->ninflight++] = b;
	}
	if (l->ninflight == 0)
		return;
	l->wreq.data = l;
	r = uv_write(&l->wreq, l->stream, bufs, l->ninflight, on_write);
	if (r < 0) {
		for (unsigned i = 0; i < l->ninflight; i++)
			free(l->inflight[i]);
		l->ninflight = 0;
		vmic_link_close(l, r);
		return;
	}
	l->writing = true;
}

static int link_queue(struct vmic_link *l, const uint8_t *data, size_t len,
		      uint32_t stream_id)
{
	struct vmic_outbuf *b = vmic_outbuf_new((uint32_t)len, stream_id);

	if (!b)
		return -ENOMEM;
	memcpy(b->data, data, len);
	return vmic_outq_push(&l->outq, b);
}

int vmic_link_send(struct vmic_link *l, const uint8_t *frame, size_t len,
		   uint32_t stream_id)
{
	int r;

	if (l->closing || !l->stream)
		return -ENOTCONN;
	if (!l->writing && vmic_outq_empty(&l->outq)) {
		uv_buf_t b = uv_buf_init((char *)frame, (unsigned)len);

		r = uv_try_write(l->stream, &b, 1);
		if (r == (int)len) {
			l->bytes_out += len;
			return 0;
		}
		if (r < 0 && r != UV_EAGAIN) {
			vmic_link_close(l, r);
			return r;
		}
		if (r > 0) {
			/* The rest of a started frame must go out first. */
			l->bytes_out += (uint64_t)r;
			r = link_queue(l, frame + r, len - (size_t)r, 0);
			if (r == 0)
				link_flush(l);
			return r;
		}
	}
	r = link_queue(l, frame, len, stream_id);
	if (r == 0)
		link_flush(l);
	return r;
}
