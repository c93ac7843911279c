/* SPDX-License-Identifier: MIT */
/*
 * KVP, host half: kvp-get and kvp-list of pools that are only in the
 * store (host-pools.c), read off the loop.
 *
 * A get is one lookup per pool (the primary key's point lookup). A list
 * is read a page at a time, each page only once the client has taken the
 * one before (ctl_reply_stream asks for it): at most KVP_PAGE_ROWS
 * records or KVP_PAGE_BYTES of JSON text, made on the thread pool, so
 * neither the loop nor the memory of a slow client grows with the pool.
 * Each page starts after the last key of the one before, which is where
 * the index is, so a pool of 100,000 records costs the same per page all
 * the way through. The records are read as committed: while they are
 * only in the store, nothing of them waits in memory to be written.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proto/services.h"
#include "services/kvp/host.h"

#define KVP_PAGE_ROWS 500
#define KVP_PAGE_BYTES (64 * 1024)

json_t *kvp_record_json(unsigned pool, const char *key, size_t klen,
			const char *value, size_t vlen)
{
	return json_pack("{s:s, s:s%, s:s%}", "pool", vmic_kvp_pool_name(pool),
			 "key", key, klen, "value", value, vlen);
}

void kvp_reply_not_found(struct ctl_request *rq, const struct vm *vm,
			 const char *key, int pool)
{
	if (pool >= 0)
		ctl_reply_error(rq, "not-found", "%s has no key '%.200s' in its "
						 "%s pool",
				vm_name(vm), key,
				vmic_kvp_pool_name((unsigned)pool));
	else
		ctl_reply_error(rq, "not-found", "%s has no key '%.200s' in any "
						 "pool",
				vm_name(vm), key);
}

/* ---- kvp-get ---- */

struct get_op {
	struct ctl_request *rq;
	struct vm *vm; /* referenced */
	int pool;
	char key[VMIC_KVP_KEY_MAX + 1];
	struct data_read d;
	json_t *found; /* made on the pool thread */
	unsigned found_pool;
};

/* On a thread of the pool: the record, as the reply's result. */
static int get_row(void *ud, unsigned space, const char *key, size_t klen,
		   const char *value, size_t vlen)
{
	struct get_op *op = ud;

	if (space < KVP_STORED_POOLS &&
	    !vmic_kvp_check(key, klen, value, vlen)) {
		op->found = kvp_record_json(space, key, klen, value, vlen);
		op->found_pool = space;
	}
	return 1;
}

static void on_get(struct hostd *h UNUSED, struct data_read *d, void *ud)
{
	struct get_op *op = ud;
	struct vm *vm = op->vm;
	const struct kvp_vm *kv = kvp_of(vm);
	const struct kvp_rec *r;

	if (vm_removed(vm)) {
		ctl_reply_error(op->rq, "unknown-vm",
				"no VM named '%s' any more: it was removed",
				vm_name(vm));
	} else if (d->err < 0) {
		ctl_reply_error(op->rq, "internal",
				"cannot read the KVP pools of %s: %s",
				vm_name(vm), d->errmsg);
	} else if (op->found) {
		json_object_set_new(op->found, "stale",
				    json_boolean(!kv->active &&
						 !vmic_kvp_pool_from_host(
							 op->found_pool)));
		ctl_reply_ok(op->rq, op->found);
		op->found = NULL;
	} else if (op->pool < 0 &&
		   (r = kvp_table_get(&kv->pools[VMIC_KVP_AUTO_EXTERNAL],
				      op->key, strlen(op->key)))) {
		json_t *res = kvp_record_json(VMIC_KVP_AUTO_EXTERNAL,
					      kvp_rec_key(r), r->klen,
					      kvp_rec_value(r), r->vlen);

		json_object_set_new(res, "stale", json_false());
		ctl_reply_ok(op->rq, res);
	} else {
		kvp_reply_not_found(op->rq, vm, op->key, op->pool);
	}
	json_decref(op->found);
	vm_unref(vm);
	free(op);
}

void kvp_read_get(struct ctl_request *rq, struct vm *vm, const char *key,
		  size_t klen, int pool)
{
	struct get_op *op = calloc(1, sizeof(*op));

	if (!op) {
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	/* Longer keys are in no pool (the caller checked the pool). */
	if (klen > VMIC_KVP_KEY_MAX || memchr(key, '\0', klen)) {
		free(op);
		kvp_reply_not_found(rq, vm, key, pool);
		return;
	}
	op->rq = rq;
	op->vm = vm;
	op->pool = pool;
	memcpy(op->key, key, klen);
	snprintf(op->d.vm, sizeof(op->d.vm), "%s", vm_name(vm));
	op->d.service = KVP_ID;
	op->d.space_min = pool >= 0 ? (unsigned)pool : 0;
	op->d.space_max = pool >= 0 ? (unsigned)pool : KVP_STORED_POOLS - 1;
	op->d.key = op->key;
	op->d.klen = klen;
	op->d.row = get_row;
	op->d.ud = op;
	vm_ref(vm);
	store_read_data(vm_hostd(vm), &op->d, on_get, op);
}

/* ---- kvp-list ---- */

struct kvp_store_list {
	struct ctl_request *rq;
	struct vm *vm;  /* referenced */
	struct data_read d;
	bool reading;   /* a page is being read */
	bool gone;      /* the reply ended: free when the read returns */
	bool done;      /* no page left */
	/* the last record of the page before: the next page's cursor */
	unsigned last_space;
	uint16_t last_klen;
	char last[VMIC_KVP_KEY_MAX + 1];
	/* the page the pool thread makes, and the one waiting to go */
	char *text;
	size_t len, cap;
	size_t items;      /* records in text */
	char *ready;
	size_t ready_len;
	size_t ready_items; /* records in ready */
};

/* On a thread of the pool: one record as `{...},` of the page's text. */
static int list_row(void *ud, unsigned space, const char *key, size_t klen,
		    const char *value, size_t vlen)
{
	struct kvp_store_list *sl = ud;
	json_t *o;
	char *item;
	size_t n;

	if (space >= KVP_STORED_POOLS || vmic_kvp_check(key, klen, value, vlen))
		return 0; /* not written by this daemon: skip */
	o = kvp_record_json(space, key, klen, value, vlen);
	item = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!item)
		return -ENOMEM;
	n = strlen(item);
	if (sl->len + n + 2 > sl->cap) {
		size_t cap = MAX(2 * sl->cap, sl->len + n + 2);
		char *p = realloc(sl->text, cap);

		if (!p) {
			free(item);
			return -ENOMEM;
		}
		sl->text = p;
		sl->cap = cap;
	}
	memcpy(sl->text + sl->len, item, n);
	sl->len += n;
	sl->text[sl->len++] = ',';
	sl->items++;
	free(item);
	sl->last_space = space;
	sl->last_klen = (uint16_t)klen;
	memcpy(sl->last, key, klen);
	return sl->len >= KVP_PAGE_BYTES ? 1 : 0;
}

static void list_free(struct kvp_store_list *sl)
{
	vm_unref(sl->vm);
	free(sl->text);
	free(sl->ready);
	free(sl);
}

static void on_page(struct hostd *h UNUSED, struct data_read *d, void *ud)
{
	struct kvp_store_list *sl = ud;

	sl->reading = false;
	if (sl->gone) {
		list_free(sl);
		return;
	}
	if (d->err < 0) {
		/* The reply is under way: it ends with the error (paged) or
		 * is cut off, so the client never takes it as whole. */
		log_error("kvp-list of %s: %s; the reply ends early",
			  vm_name(sl->vm), d->errmsg);
		free(sl->text);
		sl->done = true;
		ctl_stream_fail(sl->rq, "internal",
				"reading the stored pools failed: %s",
				d->errmsg);
	} else {
		free(sl->ready);
		sl->ready = sl->text;
		sl->ready_len = sl->len;
		sl->ready_items = sl->items;
		sl->done = !d->more;
	}
	sl->text = NULL;
	sl->len = sl->cap = 0;
	sl->items = 0;
	if (d->count)
		sl->d.after = true;
	ctl_stream_wake(sl->rq);
}

static void read_page(struct kvp_store_list *sl)
{
	sl->d.after_space = sl->last_space;
	sl->d.after_key = sl->last;
	sl->d.after_klen = sl->last_klen;
	sl->reading = true;
	store_read_data(vm_hostd(sl->vm), &sl->d, on_page, sl);
}

struct kvp_store_list *kvp_store_list_new(struct ctl_request *rq,
					  struct vm *vm, int only)
{
	struct kvp_store_list *sl = calloc(1, sizeof(*sl));

	if (!sl)
		return NULL;
	sl->rq = rq;
	sl->vm = vm;
	vm_ref(vm);
	snprintf(sl->d.vm, sizeof(sl->d.vm), "%s", vm_name(vm));
	sl->d.service = KVP_ID;
	sl->d.space_min = only >= 0 ? (unsigned)only : 0;
	sl->d.space_max = only >= 0 ? (unsigned)only : KVP_STORED_POOLS - 1;
	sl->d.limit = KVP_PAGE_ROWS;
	sl->d.row = list_row;
	sl->d.ud = sl;
	return sl;
}

enum ctl_stream_next kvp_store_list_next(struct kvp_store_list *sl,
					 struct ctl_text *out)
{
	if (sl->ready) {
		size_t len = sl->ready_len;

		while (len > 0 && sl->ready[len - 1] == ',')
			len--;
		if (len)
			ctl_text_append_items(out, sl->ready, len,
					      sl->ready_items);
		free(sl->ready);
		sl->ready = NULL;
		return sl->done ? CTL_STREAM_DONE : CTL_STREAM_MORE;
	}
	if (sl->done)
		return CTL_STREAM_DONE;
	if (!sl->reading)
		read_page(sl);
	/* A read that ended at once (no memory) is taken next time. */
	return sl->reading ? CTL_STREAM_WAIT : CTL_STREAM_MORE;
}

void kvp_store_list_free(struct kvp_store_list *sl)
{
	if (!sl)
		return;
	if (sl->reading)
		sl->gone = true; /* on_page frees it */
	else
		list_free(sl);
}
