/* SPDX-License-Identifier: MIT */
#include "outq.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/param.h>

void vmic_outq_init(struct vmic_outq *q, size_t urgent_limit,
		    size_t bulk_limit)
{
	q->urgent_head = q->urgent_tail = NULL;
	q->ring = NULL;
	q->urgent_bytes = q->bulk_bytes = 0;
	q->urgent_limit = urgent_limit;
	q->bulk_limit = bulk_limit;
}

void vmic_lane_init(struct vmic_lane *l)
{
	l->next = NULL;
	l->head = l->tail = NULL;
	l->bytes = 0;
	l->deficit = 0;
	l->scheduled = false;
	l->in_turn = false;
}

struct vmic_outbuf *vmic_outbuf_new(uint32_t len, uint32_t cap)
{
	struct vmic_outbuf *b = malloc(sizeof(*b) + MAX(len, cap));

	if (!b)
		return NULL;
	b->next = NULL;
	b->len = len;
	b->sent = 0;
	b->cap = MAX(len, cap);
	return b;
}

static void chain_append(struct vmic_outbuf **head, struct vmic_outbuf **tail,
			 struct vmic_outbuf *b)
{
	b->next = NULL;
	if (*tail)
		(*tail)->next = b;
	else
		*head = b;
	*tail = b;
}

int vmic_outq_push_urgent(struct vmic_outq *q, struct vmic_outbuf *b)
{
	if (q->urgent_limit && q->urgent_bytes + b->len > q->urgent_limit) {
		free(b);
		return -ENOBUFS;
	}
	chain_append(&q->urgent_head, &q->urgent_tail, b);
	q->urgent_bytes += b->len;
	return 0;
}

/* Append l at the end of the service order (just after the last served). */
static void ring_append(struct vmic_outq *q, struct vmic_lane *l)
{
	if (!q->ring) {
		l->next = l;
	} else {
		l->next = q->ring->next;
		q->ring->next = l;
	}
	q->ring = l;
	l->scheduled = true;
	l->in_turn = false;
	l->deficit = 0;
}

/* Take l, whose predecessor in the ring is prev, out of the ring. */
static void ring_unlink(struct vmic_outq *q, struct vmic_lane *prev,
			struct vmic_lane *l)
{
	if (l->next == l)
		q->ring = NULL;
	else {
		prev->next = l->next;
		if (q->ring == l)
			q->ring = prev;
	}
	l->next = NULL;
	l->scheduled = false;
	l->in_turn = false;
	l->deficit = 0;
}

void vmic_outq_push_bulk(struct vmic_outq *q, struct vmic_lane *l,
			 struct vmic_outbuf *b)
{
	chain_append(&l->head, &l->tail, b);
	l->bytes += b->len;
	q->bulk_bytes += b->len;
	if (!l->scheduled)
		ring_append(q, l);
}

size_t vmic_outq_bulk_room(const struct vmic_outq *q)
{
	if (!q->bulk_limit)
		return SIZE_MAX;
	return q->bulk_limit > q->bulk_bytes ? q->bulk_limit - q->bulk_bytes
					     : 0;
}

static struct vmic_outbuf *pop_urgent(struct vmic_outq *q)
{
	struct vmic_outbuf *b = q->urgent_head;

	q->urgent_head = b->next;
	if (!q->urgent_head)
		q->urgent_tail = NULL;
	q->urgent_bytes -= b->len;
	b->next = NULL;
	return b;
}

static struct vmic_outbuf *lane_take(struct vmic_outq *q, struct vmic_lane *l)
{
	struct vmic_outbuf *b = l->head;

	l->head = b->next;
	if (!l->head)
		l->tail = NULL;
	l->bytes -= b->len;
	q->bulk_bytes -= b->len;
	b->next = NULL;
	return b;
}

/*
 * Deficit round robin: a lane starting its visit earns one quantum; it
 * sends frames while its deficit covers them, then the next lane's visit
 * begins. A frame larger than the quantum waits for several visits'
 * worth, so fairness holds in bytes, whatever the frame sizes.
 */
static struct vmic_outbuf *pop_bulk(struct vmic_outq *q,
				    struct vmic_lane **from)
{
	for (;;) {
		struct vmic_lane *l = q->ring->next;
		struct vmic_outbuf *b;

		if (!l->in_turn) {
			l->deficit += VMIC_OUTQ_QUANTUM;
			l->in_turn = true;
		}
		if (l->head->len > l->deficit) {
			l->in_turn = false;
			q->ring = l; /* end of its visit: next lane */
			continue;
		}
		l->deficit -= l->head->len;
		b = lane_take(q, l);
		if (!l->head) {
			ring_unlink(q, q->ring, l);
		} else if (l->head->len > l->deficit) {
			l->in_turn = false; /* visit over: next lane's turn */
			q->ring = l;
		}
		*from = l;
		return b;
	}
}

struct vmic_outbuf *vmic_outq_pop(struct vmic_outq *q, struct vmic_lane **from)
{
	*from = NULL;
	if (q->urgent_head)
		return pop_urgent(q);
	if (q->ring)
		return pop_bulk(q, from);
	return NULL;
}

void vmic_outq_drop_lane(struct vmic_outq *q, struct vmic_lane *l)
{
	struct vmic_lane *prev;

	while (l->head)
		free(lane_take(q, l));
	if (!l->scheduled)
		return;
	prev = l;
	while (prev->next != l)
		prev = prev->next;
	ring_unlink(q, prev, l);
}

void vmic_outq_clear(struct vmic_outq *q)
{
	while (q->urgent_head)
		free(pop_urgent(q));
	while (q->ring)
		vmic_outq_drop_lane(q, q->ring);
}
