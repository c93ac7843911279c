/* SPDX-License-Identifier: MIT */
#include "stream-table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"
#include "control.h"

void vmic_stream_table_init(struct vmic_stream_table *t, bool guest_side,
			    unsigned max)
{
	if (max == 0)
		max = VMIC_STREAMS_MAX_DEFAULT;
	if (max > VMIC_STREAMS_MAX_LIMIT)
		max = VMIC_STREAMS_MAX_LIMIT;
	t->slots = NULL;
	t->count = 0;
	t->max = max;
	for (t->cap = 4; t->cap < 2 * max; t->cap *= 2)
		;
	t->local_bit = guest_side ? VMIC_STREAM_GUEST_BIT : 0;
	t->last_id = 0;
}

void vmic_stream_table_free(struct vmic_stream_table *t)
{
	free(t->slots);
	t->slots = NULL;
	t->count = 0;
}

/* Fibonacci hashing: consecutive ids spread over the slots. */
static uint32_t slot_of(const struct vmic_stream_table *t, uint32_t id)
{
	return (id * 0x9E3779B1u) & (t->cap - 1);
}

/* The slot holding id, or the free slot where it would go. */
static uint32_t probe(const struct vmic_stream_table *t, uint32_t id)
{
	uint32_t i = slot_of(t, id);

	while (t->slots[i] && t->slots[i]->id != id)
		i = (i + 1) & (t->cap - 1);
	return i;
}

struct vmic_stream *vmic_stream_table_find(const struct vmic_stream_table *t,
					   uint32_t id)
{
	if (!t->slots)
		return NULL;
	return t->slots[probe(t, id)];
}

int vmic_stream_table_add(struct vmic_stream_table *t, struct vmic_stream *s)
{
	uint32_t i;

	if (s->id == 0)
		return -EINVAL;
	if (!t->slots) {
		t->slots = calloc(t->cap, sizeof(*t->slots));
		if (!t->slots)
			return -ENOMEM;
	}
	i = probe(t, s->id);
	if (t->slots[i])
		return -EEXIST;
	if (t->count >= t->max)
		return -EMFILE;
	t->slots[i] = s;
	t->count++;
	return 0;
}

/* True when slot j lies cyclically in (i, k]: k's entry may not move to i. */
static bool between(uint32_t i, uint32_t j, uint32_t k)
{
	return i <= k ? (i < j && j <= k) : (i < j || j <= k);
}

/*
 * Linear probing without tombstones: after emptying slot i, move later
 * entries of the same run back so that every lookup still finds them.
 */
void vmic_stream_table_remove(struct vmic_stream_table *t,
			      struct vmic_stream *s)
{
	uint32_t mask = t->cap - 1, i = probe(t, s->id), j = i;

	if (t->slots[i] != s)
		return;
	t->slots[i] = NULL;
	for (;;) {
		j = (j + 1) & mask;
		if (!t->slots[j])
			break;
		if (between(i, slot_of(t, t->slots[j]->id), j))
			continue;
		t->slots[i] = t->slots[j];
		t->slots[j] = NULL;
		i = j;
	}
	if (--t->count == 0)
		vmic_stream_table_free(t);
}

struct vmic_stream *vmic_stream_table_any(const struct vmic_stream_table *t)
{
	if (!t->slots)
		return NULL;
	for (uint32_t i = 0; i < t->cap; i++)
		if (t->slots[i])
			return t->slots[i];
	return NULL;
}

void vmic_stream_table_each(const struct vmic_stream_table *t,
			    void (*fn)(struct vmic_stream *s, void *arg),
			    void *arg)
{
	if (!t->slots)
		return;
	for (uint32_t i = 0; i < t->cap; i++)
		if (t->slots[i])
			fn(t->slots[i], arg);
}

uint32_t vmic_stream_table_next_id(struct vmic_stream_table *t)
{
	uint32_t id;

	do {
		t->last_id = (t->last_id + 1) & ~VMIC_STREAM_GUEST_BIT;
		id = t->last_id | t->local_bit;
	} while (t->last_id == 0 || vmic_stream_table_find(t, id));
	return id;
}

static void refuse(struct vmic_stream_input *in, struct vmic_stream *s,
		   uint16_t code, const char *why)
{
	in->verdict = VMIC_SV_REFUSE;
	in->s = s;
	in->code = code;
	in->why = why;
}

static void judge_data(const struct vmic_frame *f, struct vmic_stream *s,
		       struct vmic_stream_input *in)
{
	if (s->dir != VMIC_STREAM_RECV)
		refuse(in, s, VMIC_E_MALFORMED, "data on a stream that sends");
	else if (f->length > VMIC_STREAM_CHUNK)
		refuse(in, s, VMIC_E_BAD_LENGTH, "data frame over 64 KiB");
	else if (vmic_stream_rx_data(&s->rx, f->length) < 0)
		refuse(in, s, VMIC_E_FLOW, "data beyond the granted credit");
	else
		in->verdict = VMIC_SV_DATA;
}

static void judge_credit(const struct vmic_frame *f, struct vmic_stream *s,
			 struct vmic_stream_input *in)
{
	if (s->dir != VMIC_STREAM_SEND)
		refuse(in, s, VMIC_E_MALFORMED,
		       "credit on a stream that receives");
	else if (f->length != VMIC_CREDIT_LEN)
		refuse(in, s, VMIC_E_BAD_LENGTH,
		       "credit payload is not 4 bytes");
	else if (vmic_stream_tx_credit(&s->tx, vmic_get_le32(f->payload)) < 0)
		refuse(in, s, VMIC_E_FLOW, "credit of 0 or past 64 MiB");
	else
		in->verdict = VMIC_SV_CREDIT;
}

void vmic_stream_table_input(const struct vmic_stream_table *t,
			     const struct vmic_frame *f,
			     struct vmic_stream_input *in)
{
	struct vmic_stream *s = vmic_stream_table_find(t, f->stream_id);
	struct vmic_error e;

	if (s && s->service != f->service)
		s = NULL; /* another service's stream: not this one */
	in->verdict = VMIC_SV_IGNORE;
	in->s = s;
	in->code = 0;
	in->why = NULL;
	if (f->type == VMIC_T_STREAM_RESET) {
		/* Never answered, or two resets could chase each other. */
		if (!s)
			return;
		in->verdict = VMIC_SV_PEER_RESET;
		in->message[0] = '\0';
		if (vmic_error_decode(f->payload, f->length, &e) == 0) {
			in->code = e.code;
			memcpy(in->message, e.message, strlen(e.message) + 1);
		} else {
			in->code = VMIC_E_MALFORMED;
		}
		if (in->code == 0)
			in->code = VMIC_E_MALFORMED;
		return;
	}
	if (!s && f->type == VMIC_T_STREAM_CREDIT)
		return; /* late: credit crosses the END of a finished stream */
	if (!s)
		refuse(in, NULL, VMIC_E_NO_STREAM, "no such stream");
	else if (f->type == VMIC_T_STREAM_DATA)
		judge_data(f, s, in);
	else if (f->type == VMIC_T_STREAM_CREDIT)
		judge_credit(f, s, in);
}
