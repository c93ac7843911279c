/* SPDX-License-Identifier: MIT */
#include "outq.h"

#include <errno.h>
#include <stdlib.h>

void vmic_outq_init(struct vmic_outq *q, size_t limit)
{
	q->urgent_head = q->urgent_tail = NULL;
	q->lanes = NULL;
	q->bytes = 0;
	q->limit = limit;
}

void vmic_outq_clear(struct vmic_outq *q)
{
	struct vmic_outbuf *b;

	while ((b = vmic_outq_pop(q)))
		free(b);
}

struct vmic_outbuf *vmic_outbuf_new(uint32_t len, uint32_t stream_id)
{
	struct vmic_outbuf *b = malloc(sizeof(*b) + len);

	if (!b)
		return NULL;
	b->next = NULL;
	b->len = len;
	b->stream_id = stream_id;
	return b;
}

static void chain_append(struct vmic_outbuf **head, struct vmic_outbuf **tail,
			 struct vmic_outbuf *b)
{
	if (*tail)
		(*tail)->next = b;
	else
		*head = b;
	*tail = b;
}

/* Find the lane of a stream in the ring, or NULL. */
static struct vmic_lane *lane_find(struct vmic_outq *q, uint32_t id)
{
	struct vmic_lane *l = q->lanes;

	if (!l)
		return NULL;
	do {
		if (l->stream_id == id)
			return l;
		l = l->next;
	} while (l != q->lanes);
	return NULL;
}

/* Insert a new lane just before the head, i.e. last in service order. */
static void lane_insert(struct vmic_outq *q, struct vmic_lane *l)
{
	struct vmic_lane *last;

	if (!q->lanes) {
		l->next = l;
		q->lanes = l;
		return;
	}
	last = q->lanes;
	while (last->next != q->lanes)
		last = last->next;
	last->next = l;
	l->next = q->lanes;
}

int vmic_outq_push(struct vmic_outq *q, struct vmic_outbuf *b)
{
	struct vmic_lane *l;

	b->next = NULL;
	if (q->limit && q->bytes > q->limit) {
		free(b);
		return -ENOBUFS;
	}
	if (b->stream_id == 0) {
		chain_append(&q->urgent_head, &q->urgent_tail, b);
	} else {
		l = lane_find(q, b->stream_id);
		if (!l) {
			l = calloc(1, sizeof(*l));
			if (!l) {
				free(b);
				return -ENOMEM;
			}
			l->stream_id = b->stream_id;
			lane_insert(q, l);
		}
		chain_append(&l->head, &l->tail, b);
	}
	q->bytes += b->len;
	return 0;
}

/* Remove the (now empty) head lane from the ring. */
static void lane_remove_head(struct vmic_outq *q)
{
	struct vmic_lane *l = q->lanes, *last = l;

	if (l->next == l) {
		q->lanes = NULL;
	} else {
		while (last->next != l)
			last = last->next;
		last->next = l->next;
		q->lanes = l->next;
	}
	free(l);
}

struct vmic_outbuf *vmic_outq_pop(struct vmic_outq *q)
{
	struct vmic_outbuf *b;
	struct vmic_lane *l;

	if (q->urgent_head) {
		b = q->urgent_head;
		q->urgent_head = b->next;
		if (!q->urgent_head)
			q->urgent_tail = NULL;
	} else if ((l = q->lanes)) {
		b = l->head;
		l->head = b->next;
		if (!l->head) {
			l->tail = NULL;
			lane_remove_head(q);
		} else {
			q->lanes = l->next; /* round-robin: next lane's turn */
		}
	} else {
		return NULL;
	}
	b->next = NULL;
	q->bytes -= b->len;
	return b;
}
