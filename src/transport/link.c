/* SPDX-License-Identifier: MIT */
#include "link.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <linux/sockios.h>
#include <linux/vm_sockets.h>

#include "common/macro.h"
#include "link-internal.h"
#include "transport.h"

/*
 * The read buffer of the loop thread. libuv calls alloc, read and the
 * read callback back to back for one stream, and every frame is handled
 * inside the callback, so one buffer serves every link of the thread and
 * idle links cost nothing.
 *
 * When a read ends inside a frame, that frame's start stays here (owner,
 * off, len) and the link's next read lands right behind it, so the frame
 * is decoded in place when it completes: a 64 KiB data frame is never
 * copied in user space. Only when another link reads first is the partial
 * frame handed to its owner's decoder (a copy of at most one frame).
 * Room for the largest frame plus a useful read after it.
 *
 * Only a pointer is thread-local: the buffer is allocated at the thread's
 * first read and freed when the last link that read on the thread closes
 * (a link's reads and its close run on its loop's thread, which need not
 * be the thread that opened it). As a thread-local array it was
 * part of every thread's TLS block, which the C library copies and clears
 * for each new thread: 320 KiB of resident memory in every worker of
 * libuv's pool, which never reads a link (the agent's RSS doubled).
 * Large reads (a stream's data) make the whole buffer resident; once
 * none has come for RBUF_QUIET_MS, the next read frees it, so a quiet
 * link keeps a page or two, not 320 KiB (rbuf_note_read).
 */
#define READ_BUF_SIZE (VMIC_MAX_FRAME + 64 * 1024)
#define READ_MIN (64 * 1024)
/* A read ending past this offset counts as large. */
#define READ_LARGE (16 * 1024)
#define RBUF_QUIET_MS 1000
/* Slow drains in a row before the send buffer shrinks. */
#define SLOW_DRAINS_TO_SHRINK 4

static _Thread_local struct {
	struct vmic_link *owner; /* whose partial frame is kept */
	size_t off, len;         /* where it is */
	unsigned links;          /* links that read here, not yet closed */
	bool large;              /* a large read since data's allocation */
	uint64_t large_at;       /* uv_now() of the last large read */
	uint8_t *data;           /* READ_BUF_SIZE bytes, or NULL */
} rbuf;

/* A read ended at offset end of the buffer: free the buffer when large
 * reads made it resident and have stopped (see above). */
static void rbuf_note_read(uv_loop_t *loop, size_t end)
{
	uint64_t now = uv_now(loop);

	if (end > READ_LARGE) {
		rbuf.large = true;
		rbuf.large_at = now;
	} else if (rbuf.large && !rbuf.owner &&
		   now - rbuf.large_at >= RBUF_QUIET_MS) {
		free(rbuf.data);
		rbuf.data = NULL;
		rbuf.large = false;
	}
}

/* Give the kept partial frame to its owner's decoder; free the buffer. */
static void rbuf_evict(void)
{
	struct vmic_link *o = rbuf.owner;

	rbuf.owner = NULL;
	if (vmic_rx_stash(&o->rx, rbuf.data + rbuf.off, rbuf.len) < 0)
		vmic_link_close(o, -ENOMEM);
}

static void on_alloc(uv_handle_t *h, size_t suggested UNUSED, uv_buf_t *buf)
{
	struct vmic_link *l = h->data;
	size_t need;

	if (!rbuf.data && !(rbuf.data = malloc(READ_BUF_SIZE))) {
		/* libuv reports UV_ENOBUFS to on_read, which closes. */
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	if (!l->reads_rbuf) {
		l->reads_rbuf = true;
		rbuf.links++;
	}
	if (rbuf.owner && rbuf.owner != l)
		rbuf_evict();
	if (rbuf.owner != l) {
		*buf = uv_buf_init((char *)rbuf.data, READ_BUF_SIZE);
		return;
	}
	/* Keep the frame where it is unless it could not complete there
	 * or the read behind it would be short: then move it to the front. */
	need = vmic_rx_frame_size(rbuf.data + rbuf.off, rbuf.len);
	if (rbuf.off + MAX(need, rbuf.len + READ_MIN) > READ_BUF_SIZE) {
		memmove(rbuf.data, rbuf.data + rbuf.off, rbuf.len);
		rbuf.off = 0;
	}
	*buf = uv_buf_init((char *)rbuf.data + rbuf.off + rbuf.len,
			   (unsigned)(READ_BUF_SIZE - rbuf.off - rbuf.len));
}

static int link_frame_cb(void *ud, const struct vmic_frame *f)
{
	struct vmic_link *l = ud;
	int r = 0;

	if (l->closing)
		return -ECANCELED;
	if (l->streams_on && f->type >= VMIC_T_STREAM_RESET &&
	    f->type <= VMIC_T_STREAM_DATA)
		link_stream_input(l, f);
	else
		r = l->ops->on_frame(l->ud, f);
	if (l->closing)
		return -ECANCELED;
	return r;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct vmic_link *l = s->data;
	const uint8_t *data = (const uint8_t *)buf->base;
	size_t total = (size_t)n, end;
	bool was_resyncing;
	ssize_t used;

	if (n == 0)
		return;
	if (n < 0) {
		vmic_link_close(l, n == UV_EOF ? -EPIPE : (int)n);
		return;
	}
	end = (size_t)(data - rbuf.data) + (size_t)n;
	l->bytes_in += (uint64_t)n;
	if (rbuf.owner == l) {
		data = rbuf.data + rbuf.off;
		total += rbuf.len;
		rbuf.owner = NULL;
	}
	was_resyncing = l->rx.resyncing;
	used = vmic_rx_feed_keep(&l->rx, data, total, link_frame_cb, l);
	if (l->closing)
		return;
	if (used < 0) {
		vmic_link_close(l, (int)used);
		return;
	}
	if ((size_t)used < total) {
		rbuf.owner = l;
		rbuf.off = (size_t)(data + used - rbuf.data);
		rbuf.len = total - (size_t)used;
	}
	rbuf_note_read(s->loop, end);
	if (!was_resyncing && l->rx.resyncing && l->ops->on_resync)
		l->ops->on_resync(l->ud, l->rx.dropped);
	link_callbacks(l);
}

/*
 * Bound what sits unread in the kernel (see link.h). Best effort: a
 * character device has no such knob, and a socket that refuses keeps its
 * default, which is only slower to let a heartbeat through.
 */
static void link_cap_kernel(struct vmic_link *l)
{
	uv_os_fd_t fd;
	socklen_t len = sizeof(int);
	int domain, sndbuf = VMIC_LINK_SNDBUF;
	unsigned long long vsock_buf = VMIC_LINK_VSOCK_BUF;

	if (uv_fileno((uv_handle_t *)l->stream, &fd) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
		return;
	if (domain == AF_UNIX &&
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) == 0)
		l->sndbuf = VMIC_LINK_SNDBUF;
	else if (domain == AF_VSOCK)
		(void)setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE,
				 &vsock_buf, sizeof(vsock_buf));
}

/*
 * The socket was full for dt_ns until libuv could finish a write: about
 * the time the kernel's share took to drain, which is what a heartbeat
 * queued behind it waits. Grow the send buffer while that is short;
 * shrink it when it was long several times in a row, so that a reader
 * that merely lost its CPU for a moment does not cost the stream its
 * buffer (see link.h).
 */
static void link_tune_sndbuf(struct vmic_link *l, uint64_t dt_ns)
{
	uv_os_fd_t fd;
	int want = (int)l->sndbuf;

	if (dt_ns < VMIC_LINK_DRAIN_FAST_US * 1000ull) {
		want = (int)MIN(2 * l->sndbuf, VMIC_LINK_SNDBUF_MAX);
		l->slow_drains = 0;
	} else if (dt_ns <= VMIC_LINK_DRAIN_SLOW_US * 1000ull) {
		l->slow_drains = 0;
	} else if (++l->slow_drains >= SLOW_DRAINS_TO_SHRINK) {
		want = (int)MAX(l->sndbuf / 2, VMIC_LINK_SNDBUF);
		l->slow_drains = 0;
	}
	if ((uint32_t)want != l->sndbuf &&
	    uv_fileno((uv_handle_t *)l->stream, &fd) == 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want)) == 0)
		l->sndbuf = (uint32_t)want;
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
	vmic_outq_init(&l->outq, VMIC_LINK_CONTROL_BUDGET,
		       VMIC_LINK_BULK_BUDGET);
	vmic_lane_init(&l->raw_lane);
	stream->data = l;
	link_cap_kernel(l);
	r = uv_read_start(stream, on_alloc, on_read);
	if (r < 0) {
		vmic_stream_free(stream);
		l->stream = NULL;
		return r;
	}
	return 0;
}

/* A link that read on this thread is gone; with the last, the buffer. */
static void rbuf_release(struct vmic_link *l)
{
	if (!l->reads_rbuf || --rbuf.links > 0)
		return;
	free(rbuf.data);
	rbuf.data = NULL;
	rbuf.large = false;
}

static void link_closed(uv_handle_t *h)
{
	struct vmic_link *l = h->data;

	free(h);
	rbuf_release(l);
	l->stream = NULL;
	l->ops->on_close(l->ud, l->close_reason);
}

/* Frames this large get a whole chunk's room and are kept for reuse. */
#define BUF_REUSE_MIN (16u * 1024)
#define BUF_CHUNK (VMIC_HDR_SIZE + VMIC_STREAM_CHUNK)
#define BUF_SPARES (VMIC_LINK_BULK_BUDGET / BUF_CHUNK + 2)

struct vmic_outbuf *link_buf_new(struct vmic_link *l, uint32_t len)
{
	struct vmic_outbuf *b = l->spares;

	if (len < BUF_REUSE_MIN || len > BUF_CHUNK)
		return vmic_outbuf_new(len, 0);
	if (!b)
		return vmic_outbuf_new(len, BUF_CHUNK);
	l->spares = b->next;
	l->nspares--;
	b->next = NULL;
	b->len = len;
	b->sent = 0;
	return b;
}

void link_buf_free(struct vmic_link *l, struct vmic_outbuf *b)
{
	if (b->cap != BUF_CHUNK || l->nspares >= BUF_SPARES || l->closing) {
		free(b);
		return;
	}
	b->next = l->spares;
	l->spares = b;
	l->nspares++;
}

void link_buf_trim(struct vmic_link *l)
{
	while (l->spares) {
		struct vmic_outbuf *b = l->spares;

		l->spares = b->next;
		free(b);
	}
	l->nspares = 0;
}

static void batch_free(struct vmic_link *l)
{
	for (unsigned i = 0; i < l->nbatch; i++)
		link_buf_free(l, l->batch[i]);
	l->nbatch = 0;
	l->batch_bytes = 0;
}

void vmic_link_close(struct vmic_link *l, int reason)
{
	if (l->closing || !l->stream)
		return;
	l->closing = true;
	l->close_reason = reason;
	if (rbuf.owner == l)
		rbuf.owner = NULL;
	uv_read_stop(l->stream);
	link_streams_shutdown(l);
	vmic_outq_clear(&l->outq);
	if (!l->writing)
		batch_free(l);
	link_buf_trim(l);
	vmic_rx_free(&l->rx);
	/* A pending write completes with UV_ECANCELED before link_closed. */
	uv_close((uv_handle_t *)l->stream, link_closed);
}

static void note_peak(struct vmic_link *l)
{
	size_t out = vmic_link_queued(l);

	if (out > l->peak_out)
		l->peak_out = out;
}

static void on_write(uv_write_t *req, int status)
{
	struct vmic_link *l = req->data;

	if (status == 0)
		l->bytes_out += l->batch_bytes;
	if (l->wait_since && status == 0 && !l->closing)
		link_tune_sndbuf(l, uv_hrtime() - l->wait_since);
	l->wait_since = 0;
	batch_free(l);
	l->writing = false;
	if (l->closing)
		return;
	if (status < 0) {
		vmic_link_close(l, status);
		return;
	}
	link_flush(l);
	link_streams_socket_ready(l);
	link_callbacks(l);
}

/* Hand what the batch still holds to libuv, which writes it as the socket
 * drains. */
static int batch_start_write(struct vmic_link *l)
{
	uv_buf_t bufs[ARRAY_SIZE(l->batch)];
	int r;

	for (unsigned i = 0; i < l->nbatch; i++)
		bufs[i] = uv_buf_init((char *)l->batch[i]->data +
					      l->batch[i]->sent,
				      l->batch[i]->len - l->batch[i]->sent);
	l->wreq.data = l;
	if (l->sndbuf)
		l->wait_since = uv_hrtime();
	r = uv_write(&l->wreq, l->stream, bufs, l->nbatch, on_write);
	if (r < 0) {
		vmic_link_close(l, r);
		return r;
	}
	l->writing = true;
	return 0;
}

/* n bytes of the batch were written: free what is done. */
static void batch_wrote(struct vmic_link *l, size_t n)
{
	unsigned done = 0;

	l->bytes_out += n;
	l->batch_bytes -= n;
	while (done < l->nbatch && n > 0) {
		struct vmic_outbuf *b = l->batch[done];
		size_t left = b->len - b->sent;

		if (n < left) {
			b->sent += (uint32_t)n;
			break;
		}
		n -= left;
		link_buf_free(l, b);
		done++;
	}
	memmove(l->batch, l->batch + done,
		(l->nbatch - done) * sizeof(l->batch[0]));
	l->nbatch -= done;
}

/*
 * Take every urgent frame and at most one stream chunk, so urgent frames
 * overtake bulk data at every write and libuv never holds more than one
 * chunk ahead of them.
 */
static void batch_fill(struct vmic_link *l)
{
	bool have_bulk = false;

	while (l->nbatch < ARRAY_SIZE(l->batch)) {
		struct vmic_lane *from;
		struct vmic_outbuf *b;

		if (!vmic_outq_has_urgent(&l->outq) &&
		    (have_bulk || !l->outq.ring))
			break;
		b = vmic_outq_pop(&l->outq, &from);
		l->batch[l->nbatch++] = b;
		l->batch_bytes += b->len - b->sent;
		if (!from)
			continue;
		have_bulk = true;
		if (from != &l->raw_lane)
			link_stream_popped(l, container_of(from,
							   struct vmic_stream,
							   lane));
		if (l->outq.bulk_bytes <= l->outq.bulk_limit / 2)
			link_streams_budget_low(l);
	}
}

/* Write batches until the socket is full or nothing is left. */
static void link_write(struct vmic_link *l)
{
	while (!l->writing && !l->closing) {
		uv_buf_t bufs[ARRAY_SIZE(l->batch)];
		int r;

		batch_fill(l);
		if (l->nbatch == 0)
			return;
		for (unsigned i = 0; i < l->nbatch; i++)
			bufs[i] = uv_buf_init((char *)l->batch[i]->data +
						      l->batch[i]->sent,
					      l->batch[i]->len -
						      l->batch[i]->sent);
		r = uv_try_write(l->stream, bufs, l->nbatch);
		if (r == UV_EAGAIN)
			r = 0;
		if (r < 0) {
			vmic_link_close(l, r);
			return;
		}
		batch_wrote(l, (size_t)r);
		if (l->nbatch > 0 && batch_start_write(l) < 0)
			return;
	}
}

void link_flush(struct vmic_link *l)
{
	note_peak(l);
	link_write(l);
}

void link_callbacks(struct vmic_link *l)
{
	if (l->closing)
		return;
	link_streams_notify(l);
	if (!l->closing && l->bulk_refused &&
	    l->outq.bulk_bytes <= l->outq.bulk_limit / 2) {
		l->bulk_refused = false;
		if (l->ops->on_drained)
			l->ops->on_drained(l->ud);
	}
}

ssize_t link_try_writev(struct vmic_link *l, const uv_buf_t *bufs,
			unsigned n)
{
	int r;

	if (l->writing || l->nbatch || !vmic_outq_empty(&l->outq))
		return 0;
	r = uv_try_write(l->stream, bufs, n);
	if (r == UV_EAGAIN)
		return 0;
	if (r < 0) {
		vmic_link_close(l, r);
		return r;
	}
	l->bytes_out += (uint64_t)r;
	return r;
}

int link_keep_rest(struct vmic_link *l, const void *a, size_t alen,
		   const void *b, size_t blen, size_t written)
{
	struct vmic_outbuf *rest = link_buf_new(l, (uint32_t)(alen + blen));

	if (!rest) {
		vmic_link_close(l, -ENOMEM);
		return -ENOMEM;
	}
	memcpy(rest->data, a, alen);
	if (blen)
		memcpy(rest->data + alen, b, blen);
	rest->sent = (uint32_t)written;
	l->batch[0] = rest;
	l->nbatch = 1;
	l->batch_bytes = alen + blen - written;
	note_peak(l);
	return batch_start_write(l);
}

int link_write_now(struct vmic_link *l, const void *a, size_t alen,
		   const void *b, size_t blen)
{
	uv_buf_t bufs[2] = { uv_buf_init((char *)a, (unsigned)alen),
			     uv_buf_init((char *)b, (unsigned)blen) };
	ssize_t r = link_try_writev(l, bufs, blen ? 2 : 1);

	if (r <= 0)
		return (int)r;
	if ((size_t)r < alen + blen) {
		/* The rest of a started frame must go out before anything
		 * else. */
		r = link_keep_rest(l, a, alen, b, blen, (size_t)r);
		if (r < 0)
			return (int)r;
	}
	return 1;
}

int link_queue_urgent(struct vmic_link *l, const void *frame, size_t len)
{
	struct vmic_outbuf *b = vmic_outbuf_new((uint32_t)len, 0);
	int r;

	if (!b)
		return -ENOMEM;
	memcpy(b->data, frame, len);
	r = vmic_outq_push_urgent(&l->outq, b);
	if (r == -ENOBUFS) {
		/* The peer stopped reading: holding more for it would let it
		 * grow us without bound. Both daemons end up here alike. */
		vmic_link_close(l, -ENOBUFS);
		return r;
	}
	if (r == 0)
		link_flush(l);
	return r;
}

static int link_queue_bulk(struct vmic_link *l, const uint8_t *frame,
			   size_t len)
{
	struct vmic_outbuf *b;

	if (vmic_outq_bulk_room(&l->outq) < len) {
		l->bulk_refused = true;
		return -EAGAIN;
	}
	b = link_buf_new(l, (uint32_t)len);
	if (!b)
		return -ENOMEM;
	memcpy(b->data, frame, len);
	vmic_outq_push_bulk(&l->outq, &l->raw_lane, b);
	link_flush(l);
	return 0;
}

int vmic_link_send(struct vmic_link *l, const uint8_t *frame, size_t len,
		   uint32_t stream_id)
{
	int r;

	if (l->closing || !l->stream)
		return -ENOTCONN;
	r = link_write_now(l, frame, len, NULL, 0);
	if (r != 0)
		return r < 0 ? r : 0;
	if (stream_id != 0)
		return link_queue_bulk(l, frame, len);
	return link_queue_urgent(l, frame, len);
}

static int link_kernel_unsent(const struct vmic_link *l)
{
	uv_os_fd_t fd;
	int n;

	if (!l->stream || uv_fileno((uv_handle_t *)l->stream, &fd) < 0)
		return -EBADF;
	/* SIOCOUTQ, also TIOCOUTQ: ENOTTY on a virtio-serial port, and on
	 * vsock before Linux 6.10. */
	if (ioctl(fd, SIOCOUTQ, &n) < 0)
		return -errno;
	return n;
}

void vmic_link_stats(const struct vmic_link *l, struct vmic_link_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->urgent_queued = l->outq.urgent_bytes;
	st->bulk_queued = l->outq.bulk_bytes;
	st->writing = l->batch_bytes;
	st->peak_out = MAX(l->peak_out, vmic_link_queued(l));
	st->rx_carry = l->rx.cap;
	st->rx_held = l->rx_held;
	st->peak_rx_held = l->peak_rx_held;
	st->streams = l->streams.count;
	st->kernel_unsent = link_kernel_unsent(l);
	st->sndbuf = l->sndbuf;
	st->stream_refused = l->stream_refused;
	st->stream_ignored = l->stream_ignored;
}
