/* SPDX-License-Identifier: MIT */
/*
 * The sink: a RECV stream written into a descriptor, credit returned for
 * written bytes only.
 *
 * What cannot be written at once waits in a ring of one window (the
 * stream's credit never lets more arrive), allocated when first needed.
 * A file's bytes all go through it: each delivery is copied in and one
 * write at a time takes everything held (two pieces when it wraps) to the
 * thread pool. A polled descriptor is written straight from the delivered
 * bytes while nothing waits, and only what it did not take is copied; the
 * ring then drains as poll says the descriptor has room.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/macro.h"
#include "fdstream-internal.h"

/* Copy p[0..n) behind what the ring holds; false when it cannot. */
static bool ring_put(struct vmic_fdstream *f, const uint8_t *p, size_t n)
{
	size_t tail, first;

	if (!f->ring) {
		f->ring = malloc(f->cap);
		if (!f->ring) {
			fds_fail(f, -ENOMEM);
			return false;
		}
		fds_account(f, (ssize_t)f->cap);
	}
	if (n > f->cap - f->held) {
		/* The link refuses data past the credit: a bug if seen. */
		fds_end(f, -EPROTO, VMIC_E_INTERNAL,
			"the stream delivered more than its window");
		return false;
	}
	tail = (f->head + f->held) % f->cap;
	first = MIN(n, f->cap - tail);
	memcpy(f->ring + tail, p, first);
	memcpy(f->ring, p + first, n - first);
	f->held += n;
	return true;
}

/* The held bytes, oldest first: one or two pieces. */
static unsigned ring_pieces(const struct vmic_fdstream *f, uv_buf_t *iov)
{
	size_t first = MIN(f->held, f->cap - f->head);

	iov[0] = uv_buf_init((char *)f->ring + f->head, (unsigned)first);
	if (first == f->held)
		return 1;
	iov[1] = uv_buf_init((char *)f->ring, (unsigned)(f->held - first));
	return 2;
}

static void ring_drop(struct vmic_fdstream *f, size_t n)
{
	f->head = (f->head + n) % f->cap;
	f->held -= n;
}

/* n bytes reached the descriptor: that, and only that, returns credit. */
static void sink_written(struct vmic_fdstream *f, size_t n)
{
	f->bytes += n;
	if (f->seek)
		f->pos += (int64_t)n;
	if (f->s)
		vmic_link_stream_consumed(f->link, f->s, n);
}

/* Write without blocking: bytes taken, or -errno (-EAGAIN: none). */
static ssize_t sink_write_now(struct vmic_fdstream *f, const uv_buf_t *iov,
			      unsigned n)
{
	struct iovec v[2];
	struct msghdr mh = { .msg_iov = v, .msg_iovlen = n };
	ssize_t w;

	for (unsigned i = 0; i < n; i++)
		v[i] = (struct iovec){ iov[i].base, iov[i].len };
	do {
		w = f->sock ? sendmsg(f->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL)
			    : writev(f->fd, v, (int)n);
	} while (w < 0 && errno == EINTR);
	if (w < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return w;
}

static void sink_write_done(uv_fs_t *req)
{
	struct vmic_fdstream *f = req->data;
	ssize_t r = req->result;

	uv_fs_req_cleanup(req);
	fds_enter(f);
	f->req_busy = false;
	if (r > 0) {
		/* counted even when f ended meanwhile: the file has them */
		ring_drop(f, (size_t)r);
		sink_written(f, (size_t)r);
	}
	if (!f->ended && r <= 0)
		fds_fail(f, r < 0 ? (int)r : -EIO);
	else if (!f->ended)
		fds_sink_kick(f);
	fds_leave(f);
}

static void sink_write_pool(struct vmic_fdstream *f)
{
	uv_buf_t iov[2];
	unsigned n = ring_pieces(f, iov);
	int r;

	f->req.data = f;
	r = uv_fs_write(f->loop, &f->req, f->fd, iov, n, f->seek ? f->pos : -1,
			sink_write_done);
	if (r < 0)
		fds_fail(f, r);
	else
		f->req_busy = true;
}

void fds_sink_polled(struct vmic_fdstream *f, int status)
{
	uv_buf_t iov[2];
	ssize_t w = -EAGAIN;

	if (f->held)
		w = sink_write_now(f, iov, ring_pieces(f, iov));
	if (w == -EAGAIN && status < 0) {
		fds_fail(f, status);
	} else if (w == -EAGAIN) {
		f->waits += f->held > 0;
	} else if (w < 0) {
		fds_fail(f, (int)w);
	} else {
		ring_drop(f, (size_t)w);
		sink_written(f, (size_t)w);
	}
	fds_sink_kick(f);
}

void fds_sink_kick(struct vmic_fdstream *f)
{
	if (f->ended)
		return;
	if (f->pool && !f->req_busy && f->held)
		sink_write_pool(f);
	else if (!f->pool && !fds_poll(f, f->held ? UV_WRITABLE : 0))
		return;
	if (!f->ended && f->eof && !f->held && !f->req_busy)
		fds_end(f, 0, 0, ""); /* all of it is written */
}

/* Delivered bytes: straight out when the descriptor is polled and idle. */
static void sink_take(struct vmic_fdstream *f, const uint8_t *p, size_t n)
{
	if (!f->pool && f->held == 0) {
		uv_buf_t iov = uv_buf_init((char *)p, (unsigned)n);
		ssize_t w = sink_write_now(f, &iov, 1);

		if (w < 0 && w != -EAGAIN) {
			fds_fail(f, (int)w);
			return;
		}
		if (w > 0) {
			sink_written(f, (size_t)w);
			p += w;
			n -= (size_t)w;
		}
		if (n)
			f->waits++;
		if (f->ended)
			return;
	}
	if (n && !ring_put(f, p, n))
		return;
	fds_sink_kick(f);
}

static void sink_data(void *ud, struct vmic_stream *s UNUSED,
		      const uint8_t *p, size_t n)
{
	struct vmic_fdstream *f = ud;

	fds_enter(f);
	if (!f->ended && f->ops->on_chunk && !f->cancelled)
		f->ops->on_chunk(f->ud, p, n);
	if (!f->ended)
		sink_take(f, p, n);
	fds_leave(f);
}

const struct vmic_stream_ops fds_sink_ops = {
	.on_data = sink_data,
	.on_closed = fds_stream_closed,
};
