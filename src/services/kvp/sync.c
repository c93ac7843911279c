/* SPDX-License-Identifier: MIT */
#include "services/kvp/sync.h"

#include <errno.h>
#include <string.h>

void kvp_outbox_init(struct kvp_outbox *ob, uint8_t pool)
{
	memset(ob, 0, sizeof(*ob));
	ob->pool = pool;
	kvp_table_init(&ob->dirty);
}

/* Forget the copy's place. */
static void cursor_drop(struct kvp_outbox *ob)
{
	kvp_rec_unref(ob->cursor);
	ob->cursor = NULL;
}

void kvp_outbox_free(struct kvp_outbox *ob)
{
	kvp_table_clear(&ob->dirty);
	cursor_drop(ob);
}

void kvp_outbox_restart(struct kvp_outbox *ob)
{
	kvp_table_clear(&ob->dirty);
	cursor_drop(ob);
	ob->copy_due = true;
	ob->copying = false;
}

void kvp_outbox_stop(struct kvp_outbox *ob)
{
	kvp_table_clear(&ob->dirty);
	cursor_drop(ob);
	ob->copy_due = false;
	ob->copying = false;
}

int kvp_outbox_changed(struct kvp_outbox *ob, const char *key, size_t klen)
{
	if (ob->copy_due)
		return 0; /* the copy will carry the key as it is then */
	if (ob->copying &&
	    (!ob->cursor || kvp_key_cmp(key, klen, kvp_rec_key(ob->cursor),
					ob->cursor->klen) > 0))
		return 0; /* still ahead of the cursor */
	if (kvp_table_set(&ob->dirty, key, klen, "", 0, 0, NULL, NULL) < 0)
		return -ENOMEM;
	return 0;
}

bool kvp_outbox_pending(const struct kvp_outbox *ob)
{
	return ob->copy_due || ob->copying || ob->dirty.n > 0;
}

/* The next batch of a full copy: records after the cursor. */
static size_t next_copy(struct kvp_outbox *ob, const struct kvp_table *src,
			uint8_t *buf, size_t cap, size_t *records)
{
	struct vmic_kvp_builder bd;
	uint8_t flags = 0;
	size_t i;

	if (ob->copy_due) {
		flags |= VMIC_KVP_F_BEGIN;
		ob->copy_due = false;
		ob->copying = true;
		i = 0;
	} else if (ob->cursor) {
		i = kvp_table_after(src, kvp_rec_key(ob->cursor),
				    ob->cursor->klen);
	} else {
		i = 0;
	}
	vmic_kvp_build_begin(&bd, buf, cap, VMIC_KVP_SET, ob->pool, flags);
	for (; i < src->n; i++) {
		const struct kvp_rec *r = src->recs[i];

		if (vmic_kvp_build_add(&bd, kvp_rec_key(r), r->klen,
				       kvp_rec_value(r), r->vlen) < 0)
			break;
		cursor_drop(ob);
		ob->cursor = kvp_rec_ref(r);
	}
	if (i >= src->n) {
		flags |= VMIC_KVP_F_END;
		vmic_kvp_build_flags(&bd, flags);
		ob->copying = false;
		cursor_drop(ob);
	}
	*records = bd.count;
	return vmic_kvp_build_end(&bd);
}

/* The next batch of dirty keys: all SETs or all DELETEs, in key order. */
static size_t next_dirty(struct kvp_outbox *ob, const struct kvp_table *src,
			 uint8_t *buf, size_t cap, uint8_t *type,
			 size_t *records)
{
	struct vmic_kvp_builder bd;
	const struct kvp_rec *first = ob->dirty.recs[0];
	size_t i;

	*type = kvp_table_get(src, kvp_rec_key(first), first->klen)
			? VMIC_KVP_SET
			: VMIC_KVP_DELETE;
	vmic_kvp_build_begin(&bd, buf, cap, *type, ob->pool, 0);
	for (i = 0; i < ob->dirty.n; i++) {
		const struct kvp_rec *d = ob->dirty.recs[i];
		const struct kvp_rec *r =
			kvp_table_get(src, kvp_rec_key(d), d->klen);

		if ((r != NULL) != (*type == VMIC_KVP_SET))
			break;
		if (vmic_kvp_build_add(&bd, kvp_rec_key(d), d->klen,
				       r ? kvp_rec_value(r) : NULL,
				       r ? r->vlen : 0) < 0)
			break;
	}
	kvp_table_drop_front(&ob->dirty, i);
	*records = bd.count;
	return vmic_kvp_build_end(&bd);
}

size_t kvp_outbox_next(struct kvp_outbox *ob, const struct kvp_table *src,
		       uint8_t *buf, size_t cap, uint8_t *type,
		       size_t *records)
{
	*records = 0;
	*type = VMIC_KVP_SET;
	if (ob->copy_due || ob->copying)
		return next_copy(ob, src, buf, cap, records);
	if (ob->dirty.n == 0)
		return 0;
	return next_dirty(ob, src, buf, cap, type, records);
}

void kvp_inbox_init(struct kvp_inbox *in)
{
	memset(in, 0, sizeof(*in));
}

size_t kvp_inbox_keys(const struct kvp_inbox *in, const struct kvp_table *t)
{
	return t->n - in->stale_n;
}

uint64_t kvp_inbox_bytes(const struct kvp_inbox *in,
			 const struct kvp_table *t)
{
	return t->bytes - in->stale_bytes;
}

/* Would setting it break a bound? rec: the record it replaces. */
static bool over_limits(const struct kvp_inbox *in, const struct kvp_table *t,
			const struct kvp_limits *lim,
			const struct kvp_rec *rec, const struct vmic_kvp_item *it)
{
	size_t keys = kvp_inbox_keys(in, t);
	uint64_t bytes = kvp_inbox_bytes(in, t);
	uint64_t size = it->klen + it->vlen;

	if (rec && rec->gen == in->gen) {
		/* Counted already: only the size changes. */
		bytes -= kvp_rec_size(rec);
	} else {
		keys++;
	}
	bytes += size;
	return keys > lim->max_keys || bytes > lim->max_bytes;
}

struct end_ctx {
	kvp_change_fn cb;
	void *ud;
};

static void end_drop(void *ud, const struct kvp_rec *r)
{
	struct end_ctx *e = ud;

	if (e->cb)
		e->cb(e->ud, kvp_rec_key(r), r->klen, NULL);
}

static int apply_set(struct kvp_inbox *in, struct kvp_table *t,
		     const struct vmic_kvp_item *it,
		     const struct kvp_limits *lim, kvp_change_fn cb, void *ud,
		     size_t *refused)
{
	const struct kvp_rec *rec = kvp_table_get(t, it->key, it->klen);
	uint32_t old_gen = 0;
	uint64_t old_size = 0;
	int c;

	if (lim && over_limits(in, t, lim, rec, it)) {
		(*refused)++;
		return 0;
	}
	c = kvp_table_set(t, it->key, it->klen, it->value, it->vlen, in->gen,
			  &old_gen, &old_size);
	if (c < 0)
		return c;
	if (c != KVP_ADDED && old_gen != in->gen && in->stale_n > 0) {
		in->stale_n--;
		in->stale_bytes -= old_size;
	}
	if (c != KVP_SAME && cb)
		cb(ud, it->key, it->klen, kvp_table_get(t, it->key, it->klen));
	return 0;
}

static void apply_delete(struct kvp_inbox *in, struct kvp_table *t,
			 const struct vmic_kvp_item *it, kvp_change_fn cb,
			 void *ud)
{
	bool found;
	size_t i = kvp_table_find(t, it->key, it->klen, &found);

	if (!found)
		return;
	if (t->recs[i]->gen != in->gen && in->stale_n > 0) {
		in->stale_n--;
		in->stale_bytes -= kvp_rec_size(t->recs[i]);
	}
	kvp_table_remove_at(t, i);
	if (cb)
		cb(ud, it->key, it->klen, NULL);
}

int kvp_inbox_apply(struct kvp_inbox *in, struct kvp_table *t,
		    const struct vmic_kvp_batch *b,
		    const struct kvp_limits *lim, kvp_change_fn cb, void *ud,
		    size_t *refused)
{
	struct vmic_kvp_item it;
	struct vmic_rd r;
	int ret = 0;

	*refused = 0;
	if (b->type == VMIC_KVP_SET && (b->flags & VMIC_KVP_F_BEGIN)) {
		/* A copy that never ended: what it had not sent again goes
		 * now, so repeated BEGINs cannot pile earlier records up. */
		if (in->copying) {
			struct end_ctx e = { cb, ud };

			kvp_table_keep_gen(t, in->gen, end_drop, &e);
		}
		in->gen++;
		in->copying = true;
		in->stale_n = t->n;
		in->stale_bytes = t->bytes;
	}
	vmic_kvp_items_init(b, &r);
	while (ret == 0 && vmic_kvp_items_next(b, &r, &it)) {
		if (b->type == VMIC_KVP_SET)
			ret = apply_set(in, t, &it, lim, cb, ud, refused);
		else
			apply_delete(in, t, &it, cb, ud);
	}
	if (ret == 0 && b->type == VMIC_KVP_SET &&
	    (b->flags & VMIC_KVP_F_END)) {
		struct end_ctx e = { cb, ud };

		kvp_table_keep_gen(t, in->gen, end_drop, &e);
		in->copying = false;
		in->stale_n = 0;
		in->stale_bytes = 0;
	}
	return ret;
}
