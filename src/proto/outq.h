/* SPDX-License-Identifier: MIT */
/*
 * Outgoing frame queue of one link: scheduling and budgets, no I/O.
 *
 * Two classes of frames:
 *
 * - urgent: everything that is not stream data (hellos, requests,
 *   replies, errors, stream credits and resets). One FIFO, always served
 *   first, so a heartbeat never waits behind bulk data in this queue.
 * - bulk: stream data, one lane per stream. Lanes are served by deficit
 *   round robin by bytes (quantum VMIC_OUTQ_QUANTUM): a stream of small
 *   frames gets as many bytes per round as one of full 64 KiB chunks.
 *
 * A lane is a struct the caller owns (embedded in its stream), so finding
 * the lane of a frame costs nothing and the queue never allocates lanes.
 *
 * Each class has its own budget. Urgent frames over theirs mean the peer
 * stopped reading (they are small and rare), and the push fails with
 * -ENOBUFS. Bulk producers ask for room first (vmic_outq_bulk_room) and
 * wait for it; bulk can never make an urgent push fail.
 */
#ifndef VMIC_OUTQ_H
#define VMIC_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One full stream data frame fits one turn of a lane. */
#define VMIC_OUTQ_QUANTUM (64u * 1024u + 24u)

struct vmic_outbuf {
	struct vmic_outbuf *next;
	uint32_t len;  /* frame bytes in data */
	uint32_t sent; /* bytes of it already written (partial writes) */
	uint32_t cap;  /* bytes allocated for data */
	uint8_t data[]; /* one whole encoded frame */
};

struct vmic_lane {
	struct vmic_lane *next; /* ring link while scheduled */
	struct vmic_outbuf *head, *tail;
	size_t bytes;     /* queued in this lane */
	uint32_t deficit; /* DRR: bytes this lane may still send this turn */
	bool scheduled;   /* in the ring */
	bool in_turn;     /* got its quantum for the current visit */
};

struct vmic_outq {
	struct vmic_outbuf *urgent_head, *urgent_tail;
	struct vmic_lane *ring; /* the lane served last; ring->next is next */
	size_t urgent_bytes, bulk_bytes;
	size_t urgent_limit, bulk_limit; /* 0 = no limit */
};

/* An empty queue with the two budgets (bytes; 0 means unlimited). */
void vmic_outq_init(struct vmic_outq *q, size_t urgent_limit,
		    size_t bulk_limit);

/* An empty lane, not scheduled. */
void vmic_lane_init(struct vmic_lane *l);

/*
 * Free every queued buffer and unschedule every lane. The lanes stay the
 * caller's (they are not freed) and are empty afterwards.
 */
void vmic_outq_clear(struct vmic_outq *q);

/*
 * Allocate a buffer for a frame of len bytes, with room for cap >= len
 * (so it can be used again for larger frames); fill data, then push.
 */
struct vmic_outbuf *vmic_outbuf_new(uint32_t len, uint32_t cap);

/*
 * Queue an urgent frame (ownership passes to the queue, even on error).
 * Returns 0, or -ENOBUFS when the urgent budget is already used up: the
 * peer has stopped reading, and the caller should close the channel.
 */
int vmic_outq_push_urgent(struct vmic_outq *q, struct vmic_outbuf *b);

/*
 * Queue a bulk frame on lane l (ownership passes to the queue). Never
 * fails: the caller checked vmic_outq_bulk_room() first, which is what
 * keeps the bulk budget.
 */
void vmic_outq_push_bulk(struct vmic_outq *q, struct vmic_lane *l,
			 struct vmic_outbuf *b);

/* Bulk bytes that may still be queued before the bulk budget is used. */
size_t vmic_outq_bulk_room(const struct vmic_outq *q);

/*
 * The next buffer to send, removed from the queue (the caller frees it),
 * or NULL when empty. Urgent frames first; then the lanes by deficit
 * round robin. *from is set to the lane the buffer came from (NULL for an
 * urgent one), so the owner of the lane can see it drain.
 */
struct vmic_outbuf *vmic_outq_pop(struct vmic_outq *q, struct vmic_lane **from);

/* True when an urgent frame is waiting. */
static inline bool vmic_outq_has_urgent(const struct vmic_outq *q)
{
	return q->urgent_head != NULL;
}

/* Free what lane l holds and take it out of the schedule (stream reset). */
void vmic_outq_drop_lane(struct vmic_outq *q, struct vmic_lane *l);

static inline bool vmic_outq_empty(const struct vmic_outq *q)
{
	return q->urgent_head == NULL && q->ring == NULL;
}

static inline size_t vmic_outq_bytes(const struct vmic_outq *q)
{
	return q->urgent_bytes + q->bulk_bytes;
}

#endif
