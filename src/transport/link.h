/* SPDX-License-Identifier: MIT */
/*
 * A link: vmic frames over one connected libuv stream.
 *
 * It owns the stream, decodes incoming bytes into frames (struct vmic_rx)
 * and writes outgoing frames (struct vmic_outq): urgent frames first,
 * stream data by deficit round robin, each class within its own budget.
 *
 * Memory: reads go through one buffer per loop thread, so an idle link
 * holds no read memory; a frame cut by the end of a read stays in that
 * buffer and the next read lands behind it, so even 64 KiB data frames
 * are decoded in place. Writes are tried directly (writev) and only the
 * rest is queued when the socket is full.
 *
 * Kernel: on a unix socket the link starts with a small send buffer
 * (VMIC_LINK_SNDBUF) and lets it grow only while the peer drains it fast;
 * on vsock it asks for a small receive buffer (which bounds what the peer
 * may have in flight to us). What sits in the kernel ahead of a heartbeat
 * is then about 1.5 data chunks, or about a millisecond's worth, not
 * 228 KiB. Character devices (virtio-serial) are left as they are.
 *
 * Streams (link-stream.c): once vmic_link_streams_attach() was called,
 * the link handles STREAM_DATA, STREAM_CREDIT and STREAM_RESET frames
 * itself and never passes them to on_frame. Without it they reach
 * on_frame like any other frame, as before streams existed.
 */
#ifndef VMIC_LINK_H
#define VMIC_LINK_H

#include <uv.h>

#include "proto/frame.h"
#include "proto/outq.h"
#include "proto/stream-table.h"

/*
 * Urgent frames (everything but stream data) queued beyond this mean the
 * peer stopped reading: the send fails with -ENOBUFS and the link closes,
 * on the host and on the guest alike.
 */
#define VMIC_LINK_CONTROL_BUDGET (1024u * 1024)
/* Stream data queued in user space per link; producers wait beyond it. */
#define VMIC_LINK_BULK_BUDGET (1024u * 1024)
/*
 * SO_SNDBUF of unix sockets, which Linux doubles and fills until about
 * 1.5 times that is unread: 48 KiB lets about 1.5 data chunks sit in the
 * kernel ahead of a heartbeat, against about 228 KiB by default. While
 * the peer drains the socket fast (a full buffer empties in under
 * VMIC_LINK_DRAIN_FAST_US), the link doubles it up to the maximum; when
 * draining took over VMIC_LINK_DRAIN_SLOW_US four times in a row, it
 * halves it again. What sits ahead of a heartbeat is thus about one chunk
 * and a half, or about a millisecond's worth on a fast channel.
 */
#define VMIC_LINK_SNDBUF (48u * 1024)
#define VMIC_LINK_SNDBUF_MAX (128u * 1024)
#define VMIC_LINK_DRAIN_FAST_US 250
#define VMIC_LINK_DRAIN_SLOW_US 1000
/* SO_VM_SOCKETS_BUFFER_SIZE asked for on vsock (default 256 KiB). */
#define VMIC_LINK_VSOCK_BUF (128u * 1024)

struct vmic_link;

struct vmic_link_ops {
	/*
	 * A well-framed frame arrived (payload valid only during the call).
	 * Return < 0 to close the link with that reason.
	 */
	int (*on_frame)(void *ud, const struct vmic_frame *f);
	/*
	 * The link is closed and its stream freed; `reason` is 0 on a local
	 * vmic_link_close(l, 0), -EPIPE / UV_EOF when the peer went away,
	 * -EBADMSG / -EMSGSIZE on corrupt framing, -ENOBUFS when the urgent
	 * budget overflowed, or what on_frame returned. The link memory is
	 * the caller's again (it may free it here).
	 */
	void (*on_close)(void *ud, int reason);
	/*
	 * Optional: the decoder just lost step and is hunting for a hello
	 * (links opened with resync only). The owner should make the peer
	 * send one, or the hunt may never end.
	 */
	void (*on_resync)(void *ud, uint64_t dropped);
	/*
	 * Optional: vmic_link_send() refused a stream-data frame with
	 * -EAGAIN, and the bulk queue has drained to half its budget since.
	 */
	void (*on_drained)(void *ud);
};

/* Counters for tests, benchmarks and metrics (vmic_link_stats). */
struct vmic_link_stats {
	size_t urgent_queued; /* bytes in the urgent queue */
	size_t bulk_queued;   /* bytes in the stream lanes */
	size_t writing;       /* bytes taken from the queues, not yet written */
	size_t peak_out;      /* highest urgent + bulk + writing so far */
	size_t rx_carry;      /* bytes of a partial frame copied aside */
	size_t rx_held;       /* stream bytes delivered, not yet consumed */
	size_t peak_rx_held;  /* highest rx_held so far */
	unsigned streams;     /* open streams */
	int kernel_unsent;    /* SIOCOUTQ: bytes the peer has not read, or
			       * -errno where the device cannot tell */
	unsigned sndbuf;      /* SO_SNDBUF the link set now, 0 if none */
	uint64_t stream_refused; /* stream frames answered with a reset */
	uint64_t stream_ignored; /* resets for streams we did not have */
};

struct vmic_link {
	uv_stream_t *stream;
	struct vmic_rx rx;
	struct vmic_outq outq;
	const struct vmic_link_ops *ops;
	void *ud;
	uv_write_t wreq;
	struct vmic_outbuf *batch[16]; /* taken from outq, being written */
	unsigned nbatch;
	size_t batch_bytes;
	bool writing; /* a uv_write of the batch is pending */
	uint32_t sndbuf;     /* SO_SNDBUF now, 0 when not a unix socket */
	unsigned slow_drains; /* in a row, see link_tune_sndbuf() */
	uint64_t wait_since; /* uv_hrtime() the socket became full, or 0 */
	bool bulk_refused; /* a raw bulk send got -EAGAIN: on_drained due */
	bool closing;
	bool streams_on;
	bool reads_rbuf; /* counted in its loop thread's read buffer users */
	int close_reason;
	uint64_t bytes_in;
	uint64_t bytes_out;
	size_t peak_out;
	struct vmic_lane raw_lane; /* bulk frames given to vmic_link_send */
	struct vmic_outbuf *spares; /* chunk buffers kept for reuse */
	unsigned nspares;
	/* streams (link-stream.c) */
	struct vmic_stream_table streams;
	uv_idle_t *idle; /* runs callbacks that came due inside a call */
	struct vmic_stream *notify, *notify_tail; /* callbacks due */
	unsigned send_streams;
	bool budget_waiters; /* a stream waits for the bulk budget */
	bool socket_waiters; /* a stream waits for the socket to drain */
	size_t rx_held, peak_rx_held;
	uint64_t stream_refused, stream_ignored;
};

/*
 * Take over `stream` (from vmic_connect or vmic_listen) and start reading.
 * With `resync`, corrupt input makes the decoder hunt for the next hello
 * instead of closing the link (the guest side of virtio-serial, whose
 * bytes survive a restart of either end). Returns 0 or -errno; on error
 * the stream has been freed.
 */
int vmic_link_open(struct vmic_link *l, uv_stream_t *stream, bool resync,
		   const struct vmic_link_ops *ops, void *ud);

/*
 * Send one whole encoded frame, copied when it cannot go out at once.
 * stream_id 0: an urgent frame; returns 0, or -ENOBUFS when the urgent
 * budget is used up, in which case the link is already closing (reason
 * -ENOBUFS). stream_id != 0: a stream-data frame queued behind urgent
 * ones in a lane shared by all such sends; returns -EAGAIN when the bulk
 * budget is used up (on_drained follows). Either way -ENOTCONN on a
 * closing link. Services use the stream API below rather than this.
 */
int vmic_link_send(struct vmic_link *l, const uint8_t *frame, size_t len,
		   uint32_t stream_id);

/*
 * Close: stop reading, close every stream (on_closed -EPIPE), drop queued
 * output, free the stream, then on_close.
 */
void vmic_link_close(struct vmic_link *l, int reason);

/* Bytes queued and not yet written. */
static inline size_t vmic_link_queued(const struct vmic_link *l)
{
	return vmic_outq_bytes(&l->outq) + l->batch_bytes;
}

/* Fill st with the link's counters (kernel_unsent costs one ioctl). */
void vmic_link_stats(const struct vmic_link *l, struct vmic_link_stats *st);

/* ---- streams (link-stream.c) ---------------------------------------- */

/*
 * Let this link carry streams: from now on it handles the stream frames
 * itself. guest_side picks the id space of vmic_link_stream_open(id 0);
 * max bounds the streams open at once (0 = VMIC_STREAMS_MAX_DEFAULT).
 * Returns 0, or -EALREADY.
 */
int vmic_link_streams_attach(struct vmic_link *l, bool guest_side,
			     unsigned max);

/*
 * Close every stream, telling each owner (on_closed -ECONNRESET) and
 * freeing their queued data; nothing is sent. For a new session: the peer
 * drops its streams too, and late frames of the old ones are answered
 * with resets and otherwise ignored.
 */
void vmic_link_streams_reset(struct vmic_link *l);

/*
 * Open this side's end of stream `id` (0: pick a fresh id of this side)
 * for sending or receiving `service` data. window (RECV only) is how far
 * the consumer may lag, 0 for VMIC_STREAM_INITIAL_CREDIT; what a larger
 * window adds is granted with the first data received (by then the
 * sender's end exists, so the order in which the two ends open does not
 * matter). Returns 0 with *out set, -EEXIST for an id in use,
 * -EMFILE when the link holds its maximum, -ENOTCONN on a closing link,
 * -EINVAL without vmic_link_streams_attach(), -ENOMEM.
 */
int vmic_link_stream_open(struct vmic_link *l, uint32_t id, uint8_t service,
			  enum vmic_stream_dir dir, uint32_t window,
			  const struct vmic_stream_ops *ops, void *ud,
			  struct vmic_stream **out);

/*
 * SEND: take up to len bytes, cut into data frames of at most 64 KiB.
 * While nothing waits ahead they go to the socket at once from buf
 * (writev, no copy); what has to wait is copied. Returns how many bytes
 * were taken: less than len when credit, the bulk budget or a full socket
 * stopped it (on_writable follows), -EAGAIN when none were (likewise);
 * -EPIPE after vmic_link_stream_finish(), -EINVAL on a RECV stream,
 * -ENOTCONN on a closing link, -ENOMEM. buf is the caller's again on
 * return.
 */
ssize_t vmic_link_stream_write(struct vmic_link *l, struct vmic_stream *s,
			       const void *buf, size_t len);

/*
 * SEND: no more data; END goes out after what is queued, then on_closed
 * (0) frees the stream. Returns 0, -EPIPE when already finished,
 * -EINVAL on a RECV stream.
 */
int vmic_link_stream_finish(struct vmic_link *l, struct vmic_stream *s);

/*
 * RECV: the owner wrote n more delivered bytes out; credit goes back to
 * the sender once half a window has drained.
 */
void vmic_link_stream_consumed(struct vmic_link *l, struct vmic_stream *s,
			       size_t n);

/*
 * Abort the stream: its queued data is dropped, the peer gets a
 * STREAM_RESET with code and message, and s is freed without a callback.
 */
void vmic_link_stream_reset(struct vmic_link *l, struct vmic_stream *s,
			    uint16_t code, const char *message);

#endif
