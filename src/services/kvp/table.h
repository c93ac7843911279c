/* SPDX-License-Identifier: MIT */
/*
 * One KVP pool in memory: records sorted by key (bytewise, a shorter key
 * before its extensions), found by binary search. The order is what lets
 * a full copy of a pool go out in batches from a cursor that survives
 * changes, and a `list` reply stream in pages. Pure: no I/O.
 */
#ifndef VMIC_SERVICES_KVP_TABLE_H
#define VMIC_SERVICES_KVP_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A record never changes once made (but for gen): a new value is a new
 * record. Records are counted, so a snapshot of a table (the agent's
 * writer thread writes one to a pool file) shares them; the counts are
 * only ever touched on one thread (the loop).
 */
struct kvp_rec {
	uint32_t refs;
	uint32_t gen;  /* the full copy that last set it (receivers) */
	uint16_t klen;
	uint16_t vlen;
	char data[];   /* key, NUL, value, NUL */
};

static inline const char *kvp_rec_key(const struct kvp_rec *r)
{
	return r->data;
}

static inline const char *kvp_rec_value(const struct kvp_rec *r)
{
	return r->data + r->klen + 1;
}

/* Bytes a record costs against a pool's byte bound: key and value. */
static inline uint64_t kvp_rec_size(const struct kvp_rec *r)
{
	return (uint64_t)r->klen + r->vlen;
}

struct kvp_table {
	struct kvp_rec **recs;
	size_t n, cap;
	uint64_t bytes; /* sum of kvp_rec_size */
};

/* How a set changed the table (kvp_table_set). */
enum kvp_change {
	KVP_SAME,     /* the key had this value already (gen is updated) */
	KVP_ADDED,
	KVP_REPLACED,
};

/* Another holder of r (on the thread that owns it), and its release. */
struct kvp_rec *kvp_rec_ref(const struct kvp_rec *r);
void kvp_rec_unref(struct kvp_rec *r);

void kvp_table_init(struct kvp_table *t);
/* Free every record and the array; the table is empty and usable. */
void kvp_table_clear(struct kvp_table *t);
/* Order of two keys (memcmp, then length): < 0, 0, > 0. */
int kvp_key_cmp(const char *a, size_t alen, const char *b, size_t blen);
/* Index of key when there (*found), else where it would go. */
size_t kvp_table_find(const struct kvp_table *t, const char *key,
		      size_t klen, bool *found);
/* The record of key, or NULL. */
const struct kvp_rec *kvp_table_get(const struct kvp_table *t,
				    const char *key, size_t klen);
/*
 * Set key to value with generation gen. *old_gen (may be NULL) gets the
 * generation of the record it replaced (when not KVP_ADDED), *old_size
 * its size. Returns the change, or -ENOMEM (the table unchanged). The
 * caller checks the lengths (kvp.h limits).
 */
int kvp_table_set(struct kvp_table *t, const char *key, size_t klen,
		  const char *value, size_t vlen, uint32_t gen,
		  uint32_t *old_gen, uint64_t *old_size);
/* Remove the record at index i. */
void kvp_table_remove_at(struct kvp_table *t, size_t i);
/* Remove key: true when it was there. */
bool kvp_table_delete(struct kvp_table *t, const char *key, size_t klen);
/*
 * Remove, in one pass, every record whose generation is not gen; cb (may
 * be NULL) sees each one before it is freed. Returns how many went.
 */
size_t kvp_table_keep_gen(struct kvp_table *t, uint32_t gen,
			  void (*cb)(void *ud, const struct kvp_rec *r),
			  void *ud);
/* Remove the first k records (k <= n). */
void kvp_table_drop_front(struct kvp_table *t, size_t k);
/* Index of the first record whose key sorts after key. */
size_t kvp_table_after(const struct kvp_table *t, const char *key,
		       size_t klen);
/* Exchange two tables' contents. */
void kvp_table_swap(struct kvp_table *a, struct kvp_table *b);
/* out (empty) shares t's records as they are now; -ENOMEM. Freed with
 * kvp_table_clear, on the thread that owns t. */
int kvp_table_snapshot(const struct kvp_table *t, struct kvp_table *out);
/*
 * Walk two tables in key order and call cb for every key whose record
 * differs: now is its record in `to`, NULL when `to` lacks it. Returns
 * how many differ.
 */
size_t kvp_table_diff(const struct kvp_table *from, const struct kvp_table *to,
		      void (*cb)(void *ud, const char *key, size_t klen,
				 const struct kvp_rec *now),
		      void *ud);

#endif
