/* SPDX-License-Identifier: MIT */
#include "services/kvp/table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void kvp_table_init(struct kvp_table *t)
{
	t->recs = NULL;
	t->n = t->cap = 0;
	t->bytes = 0;
}

struct kvp_rec *kvp_rec_ref(const struct kvp_rec *r)
{
	struct kvp_rec *w = (struct kvp_rec *)r;

	w->refs++;
	return w;
}

void kvp_rec_unref(struct kvp_rec *r)
{
	if (r && --r->refs == 0)
		free(r);
}

static void rec_unref(struct kvp_rec *r)
{
	kvp_rec_unref(r);
}

void kvp_table_clear(struct kvp_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		rec_unref(t->recs[i]);
	free(t->recs);
	kvp_table_init(t);
}

int kvp_key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

size_t kvp_table_find(const struct kvp_table *t, const char *key,
		      size_t klen, bool *found)
{
	size_t lo = 0, hi = t->n;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct kvp_rec *r = t->recs[mid];
		int c = kvp_key_cmp(key, klen, kvp_rec_key(r), r->klen);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

const struct kvp_rec *kvp_table_get(const struct kvp_table *t,
				    const char *key, size_t klen)
{
	bool found;
	size_t i = kvp_table_find(t, key, klen, &found);

	return found ? t->recs[i] : NULL;
}

static struct kvp_rec *rec_new(const char *key, size_t klen,
			       const char *value, size_t vlen, uint32_t gen)
{
	struct kvp_rec *r = malloc(sizeof(*r) + klen + vlen + 2);

	if (!r)
		return NULL;
	r->refs = 1;
	r->gen = gen;
	r->klen = (uint16_t)klen;
	r->vlen = (uint16_t)vlen;
	memcpy(r->data, key, klen);
	r->data[klen] = '\0';
	if (vlen)
		memcpy(r->data + klen + 1, value, vlen);
	r->data[klen + 1 + vlen] = '\0';
	return r;
}

/* Room for one more pointer; -ENOMEM. */
static int table_grow(struct kvp_table *t)
{
	struct kvp_rec **p;
	size_t cap;

	if (t->n < t->cap)
		return 0;
	cap = t->cap ? t->cap * 2 : 16;
	p = realloc(t->recs, cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	t->recs = p;
	t->cap = cap;
	return 0;
}

int kvp_table_set(struct kvp_table *t, const char *key, size_t klen,
		  const char *value, size_t vlen, uint32_t gen,
		  uint32_t *old_gen, uint64_t *old_size)
{
	bool found;
	size_t i = kvp_table_find(t, key, klen, &found);
	struct kvp_rec *r, *old;

	if (found) {
		old = t->recs[i];
		if (old_gen)
			*old_gen = old->gen;
		if (old_size)
			*old_size = kvp_rec_size(old);
		if (old->vlen == vlen &&
		    memcmp(kvp_rec_value(old), value, vlen) == 0) {
			old->gen = gen;
			return KVP_SAME;
		}
		r = rec_new(key, klen, value, vlen, gen);
		if (!r)
			return -ENOMEM;
		t->bytes -= kvp_rec_size(old);
		t->bytes += kvp_rec_size(r);
		t->recs[i] = r;
		rec_unref(old);
		return KVP_REPLACED;
	}
	if (table_grow(t) < 0)
		return -ENOMEM;
	r = rec_new(key, klen, value, vlen, gen);
	if (!r)
		return -ENOMEM;
	memmove(t->recs + i + 1, t->recs + i, (t->n - i) * sizeof(*t->recs));
	t->recs[i] = r;
	t->n++;
	t->bytes += kvp_rec_size(r);
	return KVP_ADDED;
}

void kvp_table_remove_at(struct kvp_table *t, size_t i)
{
	struct kvp_rec *r = t->recs[i];

	t->bytes -= kvp_rec_size(r);
	rec_unref(r);
	memmove(t->recs + i, t->recs + i + 1,
		(t->n - i - 1) * sizeof(*t->recs));
	t->n--;
}

bool kvp_table_delete(struct kvp_table *t, const char *key, size_t klen)
{
	bool found;
	size_t i = kvp_table_find(t, key, klen, &found);

	if (found)
		kvp_table_remove_at(t, i);
	return found;
}

size_t kvp_table_keep_gen(struct kvp_table *t, uint32_t gen,
			  void (*cb)(void *ud, const struct kvp_rec *r),
			  void *ud)
{
	size_t kept = 0, gone;

	for (size_t i = 0; i < t->n; i++) {
		struct kvp_rec *r = t->recs[i];

		if (r->gen == gen) {
			t->recs[kept++] = r;
			continue;
		}
		if (cb)
			cb(ud, r);
		t->bytes -= kvp_rec_size(r);
		rec_unref(r);
	}
	gone = t->n - kept;
	t->n = kept;
	return gone;
}

void kvp_table_drop_front(struct kvp_table *t, size_t k)
{
	for (size_t i = 0; i < k; i++) {
		t->bytes -= kvp_rec_size(t->recs[i]);
		rec_unref(t->recs[i]);
	}
	memmove(t->recs, t->recs + k, (t->n - k) * sizeof(*t->recs));
	t->n -= k;
}

size_t kvp_table_after(const struct kvp_table *t, const char *key,
		       size_t klen)
{
	bool found;
	size_t i = kvp_table_find(t, key, klen, &found);

	return found ? i + 1 : i;
}

void kvp_table_swap(struct kvp_table *a, struct kvp_table *b)
{
	struct kvp_table tmp = *a;

	*a = *b;
	*b = tmp;
}

int kvp_table_snapshot(const struct kvp_table *t, struct kvp_table *out)
{
	kvp_table_init(out);
	if (t->n == 0)
		return 0;
	out->recs = malloc(t->n * sizeof(*out->recs));
	if (!out->recs)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		out->recs[i] = t->recs[i];
		out->recs[i]->refs++;
	}
	out->n = out->cap = t->n;
	out->bytes = t->bytes;
	return 0;
}

size_t kvp_table_diff(const struct kvp_table *from, const struct kvp_table *to,
		      void (*cb)(void *ud, const char *key, size_t klen,
				 const struct kvp_rec *now),
		      void *ud)
{
	size_t i = 0, j = 0, n = 0;

	while (i < from->n || j < to->n) {
		const struct kvp_rec *a = i < from->n ? from->recs[i] : NULL;
		const struct kvp_rec *b = j < to->n ? to->recs[j] : NULL;
		int c = !a ? 1
			: !b ? -1
			     : kvp_key_cmp(kvp_rec_key(a), a->klen,
					   kvp_rec_key(b), b->klen);

		if (c < 0) {
			cb(ud, kvp_rec_key(a), a->klen, NULL);
			i++;
			n++;
			continue;
		}
		if (c > 0 || a->vlen != b->vlen ||
		    memcmp(kvp_rec_value(a), kvp_rec_value(b), a->vlen) != 0) {
			cb(ud, kvp_rec_key(b), b->klen, b);
			n++;
		}
		if (c == 0)
			i++;
		j++;
	}
	return n;
}
