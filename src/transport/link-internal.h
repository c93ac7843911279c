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
 * Write the frame a[0..alen) + b[0..blen) at once when nothing is queued
 * or being written ahead of it. Returns 1 when it went out (what the
 * socket did not take is copied and written by libuv before anything
 * else), 0 when it was not sent at all (queue it), -errno when the link
 * failed and is closing.
 */
int link_write_now(struct vmic_link *l, const void *a, size_t alen,
		   const void *b, size_t blen);

/* Queue a copy of an urgent frame; -ENOBUFS closes the link. */
int link_queue_urgent(struct vmic_link *l, const void *frame, size_t len);

/* link-stream.c */

/* An incoming STREAM_DATA, _CREDIT or _RESET on a link with streams. */
void link_stream_input(struct vmic_link *l, const struct vmic_frame *f);

/* A frame of this stream's lane was taken for writing. */
void link_stream_popped(struct vmic_link *l, struct vmic_stream *s);

/* The bulk queue drained to half its budget: wake streams that wait. */
void link_streams_budget_low(struct vmic_link *l);

/* Run the stream callbacks that came due. */
void link_streams_notify(struct vmic_link *l);

/* The link closes: close every stream (-EPIPE), release the idle handle. */
void link_streams_shutdown(struct vmic_link *l);

#endif
