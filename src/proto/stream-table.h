/* SPDX-License-Identifier: MIT */
/*
 * The streams of one link (pure, no I/O): a small hash table keyed by
 * stream id with a bounded count, and the rules for an incoming stream
 * frame (which stream, whether it keeps to its credit, what to answer).
 *
 * Slots are allocated with the first stream and freed with the last, so a
 * link without streams holds nothing. The table never owns the streams:
 * the link allocates them and removes each before freeing it.
 */
#ifndef VMIC_STREAM_TABLE_H
#define VMIC_STREAM_TABLE_H

#include "stream.h"

/* Streams a link holds at once unless told otherwise. */
#define VMIC_STREAMS_MAX_DEFAULT 64u
/* Upper bound for any configured maximum. */
#define VMIC_STREAMS_MAX_LIMIT 4096u

struct vmic_stream_table {
	struct vmic_stream **slots; /* open addressing, linear probing */
	uint32_t cap;               /* slots: a power of two, >= 2 * max */
	uint32_t count;
	uint32_t max;
	uint32_t local_bit; /* VMIC_STREAM_GUEST_BIT on the guest, else 0 */
	uint32_t last_id;   /* last local id handed out, without the bit */
};

/*
 * An empty table for the guest side (its ids have VMIC_STREAM_GUEST_BIT
 * set) or the host side, holding at most max streams (0 = the default,
 * clamped to VMIC_STREAMS_MAX_LIMIT).
 */
void vmic_stream_table_init(struct vmic_stream_table *t, bool guest_side,
			    unsigned max);

/* Free the slots. The table must be empty (every stream removed). */
void vmic_stream_table_free(struct vmic_stream_table *t);

/* The stream with this id, or NULL. */
struct vmic_stream *vmic_stream_table_find(const struct vmic_stream_table *t,
					   uint32_t id);

/*
 * Add s under s->id. Returns 0, -EINVAL for id 0, -EEXIST when the id is
 * in use, -EMFILE when the table already holds its maximum, -ENOMEM.
 */
int vmic_stream_table_add(struct vmic_stream_table *t, struct vmic_stream *s);

/* Remove s (which must be in the table). */
void vmic_stream_table_remove(struct vmic_stream_table *t,
			      struct vmic_stream *s);

/* Some stream of the table, or NULL when empty: for emptying it. */
struct vmic_stream *vmic_stream_table_any(const struct vmic_stream_table *t);

/*
 * Call fn for every stream; fn must not add or remove streams (collect
 * first when it needs to).
 */
void vmic_stream_table_each(const struct vmic_stream_table *t,
			    void (*fn)(struct vmic_stream *s, void *arg),
			    void *arg);

/*
 * A fresh id for a stream this side opens: this side's bit, never 0, not
 * in use, and not handed out recently (ids count up and wrap after 2^31),
 * so late frames of a closed stream cannot reach a new one.
 */
uint32_t vmic_stream_table_next_id(struct vmic_stream_table *t);

/* What to do with an incoming STREAM_DATA, STREAM_CREDIT or STREAM_RESET. */
enum vmic_stream_verdict {
	VMIC_SV_IGNORE,     /* a reset or credit for a stream we do not have */
	VMIC_SV_DATA,       /* deliver the payload to s; END: s then ends */
	VMIC_SV_CREDIT,     /* credit applied to s: it may have room now */
	VMIC_SV_PEER_RESET, /* the peer reset s with `code` */
	VMIC_SV_REFUSE,     /* answer STREAM_RESET `code`; close s if set */
};

struct vmic_stream_input {
	enum vmic_stream_verdict verdict;
	struct vmic_stream *s; /* the stream concerned, or NULL */
	uint16_t code;         /* PEER_RESET, REFUSE: VMIC_E_* */
	const char *why;       /* REFUSE: a sentence for the reset message */
	/* PEER_RESET: the peer's message (valid UTF-8, maybe empty) */
	char message[VMIC_ERROR_MSG_MAX + 1];
};

/*
 * Judge a stream frame (type STREAM_DATA, STREAM_CREDIT or STREAM_RESET)
 * against the table, applying its credit accounting: data is counted
 * against the receiver's credit, a credit grant is added to the sender's.
 * Data for an unknown stream, and frames in the wrong direction, of a bad
 * length or beyond the credit are refused. A reset is never answered, and
 * neither is a credit for an unknown stream: a receiver's credit may cross
 * the END of a sender that has finished, which forgets the stream at once.
 */
void vmic_stream_table_input(const struct vmic_stream_table *t,
			     const struct vmic_frame *f,
			     struct vmic_stream_input *in);

#endif
