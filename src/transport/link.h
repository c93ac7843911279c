/* SPDX-License-Identifier: MIT */
/*
 * A link: vmic frames over one connected libuv stream.
 *
 * It owns the stream, decodes incoming bytes into frames (struct vmic_rx)
 * and writes outgoing frames fairly (struct vmic_outq). Reads go through
 * one shared buffer per process, so an idle link holds no read memory;
 * writes are tried directly and only queued when the socket is full.
 */
#ifndef VMIC_LINK_H
#define VMIC_LINK_H

#include <uv.h>

#include "proto/frame.h"
#include "proto/outq.h"

/* More than this queued means the peer stopped reading. */
#define VMIC_LINK_QUEUE_LIMIT (8u * 1024 * 1024)

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
	 * -EBADMSG / -EMSGSIZE on corrupt framing, or what on_frame returned.
	 * The link memory is the caller's again (it may free it here).
	 */
	void (*on_close)(void *ud, int reason);
	/*
	 * Optional: the decoder just lost step and is hunting for a hello
	 * (links opened with resync only). The owner should make the peer
	 * send one, or the hunt may never end.
	 */
	void (*on_resync)(void *ud, uint64_t dropped);
};

struct vmic_link {
	uv_stream_t *stream;
	struct vmic_rx rx;
	struct vmic_outq outq;
	const struct vmic_link_ops *ops;
	void *ud;
	uv_write_t wreq;
	struct vmic_outbuf *inflight[16];
	unsigned ninflight;
	bool writing;
	bool closing;
	int close_reason;
	uint64_t bytes_in;
	uint64_t bytes_out;
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
 * Send one whole encoded frame (copied when it cannot go out at once).
 * stream_id selects the fairness lane (0 = urgent). Returns 0, -ENOBUFS
 * when the peer has stopped reading, or -ENOTCONN on a closing link.
 */
int vmic_link_send(struct vmic_link *l, const uint8_t *frame, size_t len,
		   uint32_t stream_id);

/* Close: stop reading, drop queued output, free the stream, then on_close. */
void vmic_link_close(struct vmic_link *l, int reason);

/* Bytes queued and not yet written. */
static inline size_t vmic_link_queued(const struct vmic_link *l)
{
	return l->outq.bytes;
}

#endif
