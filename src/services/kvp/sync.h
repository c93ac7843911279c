/* SPDX-License-Identifier: MIT */
/*
 * Keeping a pool in step across the channel, the same on both sides and
 * without I/O: what to send next (an outbox per pool the side writes),
 * and how to apply what arrives (an inbox per pool the side reads).
 *
 * Outbox: after IDENTITY the whole pool goes out as a full copy, in
 * batches from a cursor in key order (BEGIN on the first, END on the
 * last); a key that changes meanwhile is either still ahead of the
 * cursor (the copy will carry its current value, or leave it out when
 * deleted) or is noted as dirty and sent after the copy. Dirty keys are
 * a set, so a key that changes a thousand times while the channel is
 * busy costs one record; a dirty key that is in the table goes out in a
 * SET, one that is not in a DELETE.
 *
 * Inbox: each full copy has a generation; a record set during the copy
 * takes it, and END drops every record of an earlier one, so a key
 * deleted while the other side was away disappears here too. Bounds on
 * keys and bytes count the records of the copy under way (and any set
 * outside a copy), not those of an earlier copy still waiting to be
 * dropped, so a pool at its bound can be replaced by a different one;
 * memory stays within twice the bound meanwhile. A BEGIN while a copy is
 * still under way ends the earlier one first (its older records go), so
 * BEGINs without END cannot pile records up either.
 */
#ifndef VMIC_SERVICES_KVP_SYNC_H
#define VMIC_SERVICES_KVP_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "services/kvp/kvp.h"
#include "services/kvp/table.h"

struct kvp_outbox {
	uint8_t pool;
	bool copy_due;   /* a full copy is to start */
	bool copying;    /* a full copy is under way: cursor is valid */
	struct kvp_rec *cursor; /* the last record the copy sent (held) */
	struct kvp_table dirty; /* keys to send after the copy (no values) */
};

void kvp_outbox_init(struct kvp_outbox *ob, uint8_t pool);
void kvp_outbox_free(struct kvp_outbox *ob);
/* A new session of the service: a full copy is due, nothing dirty. */
void kvp_outbox_restart(struct kvp_outbox *ob);
/* No session: nothing is due. */
void kvp_outbox_stop(struct kvp_outbox *ob);
/* Key changed in the pool being sent: remembered unless a copy that is
 * due or under way will carry it. 0 or -ENOMEM. */
int kvp_outbox_changed(struct kvp_outbox *ob, const char *key, size_t klen);
/* Something is waiting to go out. */
bool kvp_outbox_pending(const struct kvp_outbox *ob);
/* A full copy is due or under way. */
static inline bool kvp_outbox_copying(const struct kvp_outbox *ob)
{
	return ob->copy_due || ob->copying;
}
/*
 * Build the next batch of src (the pool's table) into buf (cap bytes):
 * its payload length, and its type and record count, or 0 when nothing
 * is pending. Dirty keys leave the set as they are built into a batch.
 */
size_t kvp_outbox_next(struct kvp_outbox *ob, const struct kvp_table *src,
		       uint8_t *buf, size_t cap, uint8_t *type,
		       size_t *records);

struct kvp_inbox {
	uint32_t gen;         /* the current full copy's generation */
	bool copying;         /* BEGIN seen, END not yet */
	size_t stale_n;       /* records of an earlier copy still here */
	uint64_t stale_bytes; /* and their bytes */
};

/* Bounds of a pool, inclusive (0 keys: none may be added); SIZE_MAX
 * and UINT64_MAX for no bound. */
struct kvp_limits {
	size_t max_keys;
	uint64_t max_bytes;
};

/* A key changed: now is its new record, NULL when it was deleted. */
typedef void (*kvp_change_fn)(void *ud, const char *key, size_t klen,
			      const struct kvp_rec *now);

void kvp_inbox_init(struct kvp_inbox *in);
/*
 * Apply a decoded, checked SET or DELETE batch to t: cb (may be NULL)
 * sees every real change. Records a bound keeps out are counted in
 * *refused and skipped. 0, or -ENOMEM after applying part of it.
 */
int kvp_inbox_apply(struct kvp_inbox *in, struct kvp_table *t,
		    const struct vmic_kvp_batch *b,
		    const struct kvp_limits *lim, kvp_change_fn cb, void *ud,
		    size_t *refused);
/* Keys and bytes that count against the bounds now. */
size_t kvp_inbox_keys(const struct kvp_inbox *in, const struct kvp_table *t);
uint64_t kvp_inbox_bytes(const struct kvp_inbox *in,
			 const struct kvp_table *t);

#endif
