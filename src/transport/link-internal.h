/* SPDX-License-Identifier: MIT */
/* Between link.c (bytes) and link-stream.c (streams); transport only. */
#ifndef VMIC_LINK_INTERNAL_H
#define VMIC_LINK_INTERNAL_H

#include <stddef.h>

#include "link.h"

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/* link.c */

/*
 * Write as much as the socket takes now. Runs no callbacks of the owner,
 * so every vmic_link_* call may use it.
 */
void link_flush(struct vmic_link *l);

/*
 * Run the callbacks that came due (stream room, stream ends, on_drained).
 * Only from libuv's callbacks (read, write, idle), never inside a call of
 * the owner, which therefore never sees its callbacks run from within its
 * own call into the link.
 */
void link_callbacks(struct vmic_link *l);

/*
 * Write bufs at once when nothing is queued or being written ahead of
 * them, copying nothing. Returns the bytes the socket took (0 when it was
 * full or the link busy), or -errno when the link failed and is closing.
 * A frame cut by the socket must be completed with link_keep_rest().
 */
ssize_t link_try_writev(struct vmic_link *l, const uv_buf_t *bufs,
			unsigned n);

/*
 * After link_try_writev() wrote `written` bytes of the frame a + b: keep
 * a copy of the frame, whose rest libuv writes before anything else.
 */
int link_keep_rest(struct vmic_link *l, const void *a, size_t alen,
		   const void *b, size_t blen, size_t written);

/*
 * Write the frame a[0..alen) + b[0..blen) at once when nothing is queued
 * or being written ahead of it. Returns 1 when it went out (what the
 * socket did not take is copied and written by libuv before anything
 * else), 0 when it was not sent at all (queue it), -errno when the link
 * failed and is closing.
 */
int link_write_now(struct vmic_link *l, const void *a, size_t alen,
		   const void *b, size_t blen);

/*
 * A buffer for a frame of len bytes. Buffers of data chunks are kept for
 * reuse while streams send (a few per link): allocating and freeing 64 KiB
 * for every chunk made the allocator return and fault in pages all along.
 */
struct vmic_outbuf *link_buf_new(struct vmic_link *l, uint32_t len);
void link_buf_free(struct vmic_link *l, struct vmic_outbuf *b);
/* Give the kept buffers back (no stream sends any more, or closing). */
void link_buf_trim(struct vmic_link *l);

/* Queue a copy of an urgent frame; -ENOBUFS closes the link. */
int link_queue_urgent(struct vmic_link *l, const void *frame, size_t len);

/* link-stream.c */

/* An incoming STREAM_DATA, _CREDIT or _RESET on a link with streams. */
void link_stream_input(struct vmic_link *l, const struct vmic_frame *f);

/* A frame of this stream's lane was taken for writing. */
void link_stream_popped(struct vmic_link *l, struct vmic_stream *s);

/* A write the socket made wait is done: wake streams that wait for it. */
void link_streams_socket_ready(struct vmic_link *l);

/* The bulk queue drained to half its budget: wake streams that wait. */
void link_streams_budget_low(struct vmic_link *l);

/* Run the stream callbacks that came due. */
void link_streams_notify(struct vmic_link *l);

/* The link closes: close every stream (-EPIPE), release the idle handle. */
void link_streams_shutdown(struct vmic_link *l);

#endif
