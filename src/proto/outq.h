/* SPDX-License-Identifier: MIT */
/*
 * Outgoing frame queue with fair interleaving (no I/O).
 *
 * Frames without a stream id (requests, replies, hellos, credits) go to
 * the urgent lane and always leave first. Stream data frames go to one
 * lane per stream, served round-robin one frame at a time. Since a data
 * frame is at most VMIC_STREAM_CHUNK bytes, a heartbeat waits behind at
 * most one chunk, whatever copies are running.
 */
#ifndef VMIC_OUTQ_H
#define VMIC_OUTQ_H

#include <stddef.h>
#include <stdint.h>

struct vmic_outbuf {
	struct vmic_outbuf *next;
	uint32_t len;
	uint32_t stream_id;
	uint8_t data[]; /* a whole encoded frame */
};

struct vmic_lane {
	struct vmic_lane *next;
	uint32_t stream_id;
	struct vmic_outbuf *head, *tail;
};

struct vmic_outq {
	struct vmic_outbuf *urgent_head, *urgent_tail;
	struct vmic_lane *lanes; /* ring order: head is served next */
	size_t bytes;           /* queued bytes, all lanes */
	size_t limit;           /* push fails beyond this; 0 = no limit */
};

void vmic_outq_init(struct vmic_outq *q, size_t limit);
/* Free every queued buffer. */
void vmic_outq_clear(struct vmic_outq *q);

/* Allocate a buffer for a frame of len bytes; fill data, then push. */
struct vmic_outbuf *vmic_outbuf_new(uint32_t len, uint32_t stream_id);

/*
 * Queue b (ownership passes to the queue, even on error). Returns 0, or
 * -ENOBUFS when the queue already holds more than its limit: the peer is
 * not reading and the caller should treat the channel as stuck.
 */
int vmic_outq_push(struct vmic_outq *q, struct vmic_outbuf *b);

/* Next buffer to send, removed from the queue (caller frees), or NULL. */
struct vmic_outbuf *vmic_outq_pop(struct vmic_outq *q);

static inline int vmic_outq_empty(const struct vmic_outq *q)
{
	return q->urgent_head == NULL && q->lanes == NULL;
}

#endif
