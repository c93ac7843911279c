/* SPDX-License-Identifier: MIT */
/*
 * The pump: a descriptor read into a SEND stream until EOF.
 *
 * Buffers are filled in turn and sent in the same order. A file has two:
 * while the link writes one (straight from it, see
 * vmic_link_stream_write), the thread pool reads the next into the other,
 * one read in flight at a time, so offsets follow each other without
 * guessing how much the previous read returns. A polled descriptor has
 * one, read on the loop when poll says so and while the stream takes
 * everything; while the stream has no room, polling stops and the
 * descriptor's own buffer (a pipe's 64 KiB) holds the writer back.
 *
 * A file's next buffer is first tried on the loop with RWF_NOWAIT, which
 * reads only what the page cache already holds and never waits for the
 * device: a cached file then costs no thread-pool round trip (two
 * wake-ups) per buffer. Whatever it cannot serve (pages not cached, EOF to
 * be confirmed, a file system without RWF_NOWAIT such as tmpfs on some
 * kernels) goes to the pool as before.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/macro.h"
#include "fdstream-internal.h"

int fds_pump_setup(struct vmic_fdstream *f)
{
	f->nbufs = f->pool ? 2 : 1;
	for (unsigned i = 0; i < f->nbufs; i++) {
		f->buf[i].p = malloc(f->buf_size);
		if (!f->buf[i].p)
			return -ENOMEM;
		fds_account(f, (ssize_t)f->buf_size);
	}
	f->bound = f->nbufs * f->buf_size;
	return 0;
}

/* n bytes were read into the buffer being filled (0: EOF). */
static void pump_got(struct vmic_fdstream *f, size_t n)
{
	struct fds_buf *b = &f->buf[f->fill];

	if (n == 0) {
		f->eof = true;
		return;
	}
	if (f->ops->on_chunk && !f->cancelled) {
		f->ops->on_chunk(f->ud, b->p, n);
		if (f->ended)
			return; /* cancelled from the tap */
	}
	b->len = n;
	b->off = 0;
	f->fill = (f->fill + 1) % f->nbufs;
	f->nready++;
}

static void pump_read_done(uv_fs_t *req)
{
	struct vmic_fdstream *f = req->data;
	ssize_t r = req->result;

	uv_fs_req_cleanup(req);
	fds_enter(f);
	f->req_busy = false;
	f->reading = false;
	if (f->ended) {
		/* ended meanwhile: the bytes are not wanted */
	} else if (r < 0) {
		fds_fail(f, (int)r);
	} else {
		if (f->seek)
			f->pos += r;
		pump_got(f, (size_t)r);
		fds_pump_kick(f);
	}
	fds_leave(f);
}

/*
 * The next buffer from the page cache, on the loop; false when the pool
 * must read it (nothing cached, EOF or an error to report from there).
 */
static bool pump_read_cached(struct vmic_fdstream *f)
{
#ifdef RWF_NOWAIT
	struct iovec iov = { f->buf[f->fill].p, f->buf_size };
	ssize_t n;

	if (!f->seek || f->nowait_off || f->opening)
		return false;
	do {
		n = preadv2(f->fd, &iov, 1, f->pos, RWF_NOWAIT);
	} while (n < 0 && errno == EINTR);
	if (n <= 0) {
		/* EAGAIN: not cached now. Anything else (EOPNOTSUPP, a real
		 * error) the pool meets again and reports; stop trying. */
		if (n < 0 && errno != EAGAIN)
			f->nowait_off = true;
		return false;
	}
	f->loop_reads++;
	f->pos += n;
	pump_got(f, (size_t)n);
	return true;
#else
	(void)f;
	return false;
#endif
}

static void pump_read_pool(struct vmic_fdstream *f)
{
	uv_buf_t b = uv_buf_init((char *)f->buf[f->fill].p,
				 (unsigned)f->buf_size);
	int r;

	f->req.data = f;
	r = uv_fs_read(f->loop, &f->req, f->fd, &b, 1, f->seek ? f->pos : -1,
		       pump_read_done);
	if (r < 0) {
		fds_fail(f, r);
		return;
	}
	f->req_busy = true;
	f->reading = true;
}

/* Read what the descriptor has now; false when it had nothing. */
static bool pump_read_now(struct vmic_fdstream *f)
{
	uint8_t *p = f->buf[f->fill].p;
	ssize_t n;

	do {
		n = f->sock ? recv(f->fd, p, f->buf_size, MSG_DONTWAIT)
			    : read(f->fd, p, f->buf_size);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EIO && f->tty)
		n = 0; /* a pty master whose slave side closed: EOF */
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return false;
	if (n < 0)
		fds_fail(f, -errno);
	else
		pump_got(f, (size_t)n);
	return true;
}

void fds_pump_polled(struct vmic_fdstream *f, int status)
{
	/* The one buffer must be free (polling stops while it is not). An
	 * error or a hang-up still reads: read() tells what it is. */
	if (f->nready == 0 && !f->eof && !pump_read_now(f) && status < 0)
		fds_fail(f, status);
	fds_pump_kick(f);
}

/* Hand the oldest full buffer to the stream; false when it had no room. */
static bool pump_send(struct vmic_fdstream *f)
{
	struct fds_buf *b = &f->buf[f->send];
	ssize_t w = vmic_link_stream_write(f->link, f->s, b->p + b->off,
					   b->len - b->off);

	if (f->ended)
		return false; /* the link closed under the write */
	if (w == -EAGAIN) {
		f->waits++;
		return false;
	}
	if (w < 0) {
		fds_link_failed(f, (int)w);
		return false;
	}
	b->off += (size_t)w;
	f->bytes += (uint64_t)w;
	if (b->off < b->len) {
		f->waits++;
		return false; /* on_writable follows */
	}
	f->nready--;
	f->send = (f->send + 1) % f->nbufs;
	return true;
}

void fds_pump_kick(struct vmic_fdstream *f)
{
	int r;

	while (!f->ended) {
		/* Start the next read first, so the pool works meanwhile. */
		if (f->pool && !f->reading && !f->eof && f->nready < f->nbufs &&
		    !pump_read_cached(f))
			pump_read_pool(f);
		if (f->ended || f->nready == 0 || !pump_send(f))
			break;
	}
	/* Poll while the buffer is free: the stream took all there was. */
	if (f->ended ||
	    !fds_poll(f, !f->eof && f->nready == 0 ? UV_READABLE : 0))
		return;
	if (f->eof && f->nready == 0 && !f->finished) {
		f->finished = true;
		r = vmic_link_stream_finish(f->link, f->s);
		if (r < 0)
			fds_link_failed(f, r);
	}
}

static void pump_writable(void *ud, struct vmic_stream *s UNUSED)
{
	struct vmic_fdstream *f = ud;

	fds_enter(f);
	if (!f->ended)
		fds_pump_kick(f);
	fds_leave(f);
}

const struct vmic_stream_ops fds_pump_ops = {
	.on_writable = pump_writable,
	.on_closed = fds_stream_closed,
};
