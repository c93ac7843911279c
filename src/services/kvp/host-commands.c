/* SPDX-License-Identifier: MIT */
/*
 * KVP, host half: the control commands (docs/control.md).
 *
 *   kvp-set     keys of the External pool: committed, then applied and
 *               sent to the guest (now, or in the copy of its next
 *               session); the reply follows the commit
 *   kvp-delete  the same for removals
 *   kvp-get     one key (of one pool, or of the first pool that has it)
 *   kvp-list    every record, streamed a batch at a time
 *   kvp-watch   the reply, then one line per change as it happens
 *
 * Sets and deletes do not wait for each other or for other commands:
 * the store's writer commits in the order they were handed over, and
 * each is applied in memory when its commit is reported, in that order.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "proto/services.h"
#include "services/kvp/host.h"

struct kvp_watcher {
	struct kvp_watcher *next;
	struct kvp_vm *kv;
	struct ctl_watch *w;
	int pool; /* -1: every pool */
};

/* A pool a request names ("pool"), or -1 when none; -2 after replying
 * invalid-argument. */
static int request_pool(struct ctl_request *rq, const char *name)
{
	int p;

	if (!name)
		return -1;
	p = vmic_kvp_pool_parse(name);
	if (p < 0) {
		ctl_reply_error(rq, "invalid-argument",
				"no pool '%.40s'; the pools are external, "
				"guest, auto and auto-external (or 0..3)",
				name);
		return -2;
	}
	if (p == VMIC_KVP_AUTO_INTERNAL) {
		ctl_reply_error(rq, "invalid-argument",
				"pool auto-internal stays inside the guest; "
				"the host has external, guest, auto and "
				"auto-external");
		return -2;
	}
	return p;
}

static json_t *record_json(unsigned pool, const struct kvp_rec *r)
{
	return kvp_record_json(pool, kvp_rec_key(r), r->klen, kvp_rec_value(r),
			       r->vlen);
}

/* ---- watchers ---- */

void kvp_changed(struct kvp_vm *kv, unsigned pool, const char *key,
		 size_t klen, const struct kvp_rec *now)
{
	struct ctl_line *line;
	json_t *o;

	if (!kv->watchers)
		return;
	o = json_pack("{s:{s:I, s:s, s:s, s:s%, s:o}}", "kvp", "time_us",
		      (json_int_t)vmic_realtime_us(), "vm", vm_name(kv->vm),
		      "pool", vmic_kvp_pool_name(pool), "key", key, klen,
		      "value",
		      now ? json_stringn(kvp_rec_value(now), now->vlen)
			  : json_null());
	/* Serialized once: every watcher's queue shares these bytes. */
	line = o ? ctl_line_json(o) : NULL;
	json_decref(o);
	if (!line)
		return;
	/* A send may drop its client, and with it that watcher. */
	for (struct kvp_watcher *w = kv->watchers, *next; w; w = next) {
		next = w->next;
		if (w->pool < 0 || (unsigned)w->pool == pool)
			ctl_watch_send(w->w, line);
	}
	ctl_line_unref(line);
}

static void unlink_watcher(struct kvp_watcher *w)
{
	for (struct kvp_watcher **p = &w->kv->watchers; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			return;
		}
}

static void watcher_gone(void *ud)
{
	struct kvp_watcher *w = ud;

	unlink_watcher(w);
	free(w);
}

void kvp_watch_end_all(struct kvp_vm *kv, const char *why)
{
	json_t *last = json_pack("{s:{s:s, s:s}}", "end", "vm", vm_name(kv->vm),
				 "reason", why);

	while (kv->watchers) {
		struct kvp_watcher *w = kv->watchers;

		kv->watchers = w->next;
		ctl_watch_end(w->w, last);
		free(w);
	}
	json_decref(last);
}

static void cmd_watch(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	struct kvp_vm *kv = kvp_of(vm);
	const char *pool_name = NULL;
	struct kvp_watcher *w;
	int pool;

	if (!ctl_args_unpack(rq, "kvp-watch", args, "{s?s}", "pool",
			     &pool_name))
		return;
	pool = request_pool(rq, pool_name);
	if (pool == -2)
		return;
	w = calloc(1, sizeof(*w));
	if (!w) {
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	w->kv = kv;
	w->pool = pool;
	w->w = ctl_watch_start(rq,
			       json_pack("{s:s, s:b}", "vm", vm_name(vm),
					 "connected", kv->active),
			       watcher_gone, w);
	if (!w->w) {
		free(w);
		return;
	}
	w->next = kv->watchers;
	kv->watchers = w;
}

/* ---- reads ---- */

/* "stale": the guest's pools are what it sent last, not live. */
static bool stale(const struct kvp_vm *kv)
{
	return !kv->active;
}

static void cmd_get(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	struct kvp_vm *kv = kvp_of(vm);
	const char *key, *pool_name = NULL;
	size_t klen;
	json_t *res;
	int pool;

	if (!ctl_args_unpack(rq, "kvp-get", args, "{s:s%, s?s}", "key", &key,
			     &klen, "pool", &pool_name))
		return;
	pool = request_pool(rq, pool_name);
	if (pool == -2)
		return;
	if (pool != VMIC_KVP_AUTO_EXTERNAL && !kvp_pools_in_memory(kv)) {
		kvp_read_get(rq, vm, key, klen, pool);
		return;
	}
	for (unsigned p = 0; p < VMIC_KVP_AUTO_INTERNAL; p++) {
		const struct kvp_rec *r;

		if (pool >= 0 && (unsigned)pool != p)
			continue;
		r = kvp_table_get(&kv->pools[p], key, klen);
		if (!r)
			continue;
		res = record_json(p, r);
		json_object_set_new(res, "stale",
				    json_boolean(stale(kv) &&
						 !vmic_kvp_pool_from_host(p)));
		ctl_reply_ok(rq, res);
		return;
	}
	kvp_reply_not_found(rq, vm, key, pool);
}

/* Where a streamed `kvp-list` is. */
struct list_cursor {
	struct ctl_request *rq; /* the reply being streamed */
	struct vm *vm; /* referenced */
	int only;      /* -1: every pool */
	unsigned pool;
	bool started;
	uint16_t klen;
	char last[VMIC_KVP_KEY_MAX + 1];
	/* Pools 0..2 from the store (first), when they were not in memory
	 * as the list began; else held there until it ends. */
	struct kvp_store_list *stored;
	bool held;
};

static enum ctl_stream_next list_next(void *ud, struct ctl_text *out,
				      size_t max)
{
	struct list_cursor *lc = ud;
	struct kvp_vm *kv;
	size_t n = 0;

	if (vm_removed(lc->vm)) {
		/* Part of the pools went out: say so rather than end as if
		 * that was all of them. */
		ctl_stream_fail(lc->rq, "unknown-vm",
				"%s was removed while its pools were listed",
				vm_name(lc->vm));
		return CTL_STREAM_DONE;
	}
	if (lc->stored) {
		enum ctl_stream_next r = kvp_store_list_next(lc->stored, out);

		if (r != CTL_STREAM_DONE)
			return r;
		kvp_store_list_free(lc->stored);
		lc->stored = NULL;
		lc->pool = KVP_STORED_POOLS; /* then pool 3, from memory */
		return CTL_STREAM_MORE;
	}
	kv = kvp_of(lc->vm);
	for (; lc->pool < VMIC_KVP_AUTO_INTERNAL && n < max; lc->pool++) {
		const struct kvp_table *t = &kv->pools[lc->pool];
		size_t i;

		if (lc->only >= 0 && (unsigned)lc->only != lc->pool)
			continue;
		i = lc->started ? kvp_table_after(t, lc->last, lc->klen) : 0;
		for (; i < t->n && n < max; i++, n++) {
			json_t *o = record_json(lc->pool, t->recs[i]);

			ctl_text_append_json(out, o);
			json_decref(o);
			memcpy(lc->last, kvp_rec_key(t->recs[i]),
			       t->recs[i]->klen);
			lc->klen = t->recs[i]->klen;
			lc->started = true;
		}
		if (i < t->n)
			return CTL_STREAM_MORE;
		lc->started = false;
	}
	return lc->pool < VMIC_KVP_AUTO_INTERNAL ? CTL_STREAM_MORE
						 : CTL_STREAM_DONE;
}

static void list_done(void *ud)
{
	struct list_cursor *lc = ud;

	kvp_store_list_free(lc->stored);
	if (lc->held)
		kvp_pools_release(kvp_of(lc->vm));
	vm_unref(lc->vm);
	free(lc);
}

static const struct ctl_stream_ops list_ops = { list_next, list_done };

static void cmd_list(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	struct kvp_vm *kv = kvp_of(vm);
	const char *pool_name = NULL;
	struct list_cursor *lc;
	int pool;

	if (!ctl_args_unpack(rq, "kvp-list", args, "{s?s}", "pool",
			     &pool_name))
		return;
	pool = request_pool(rq, pool_name);
	if (pool == -2)
		return;
	lc = calloc(1, sizeof(*lc));
	if (!lc) {
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	lc->rq = rq;
	lc->vm = vm;
	lc->only = pool;
	vm_ref(vm);
	if (kvp_pools_in_memory(kv)) {
		kvp_pools_hold(kv);
		lc->held = true;
	} else if (pool < KVP_STORED_POOLS &&
		   !(lc->stored = kvp_store_list_new(rq, vm, pool))) {
		list_done(lc);
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	ctl_reply_stream(rq,
			 json_pack("{s:s, s:b, s:o}", "vm", vm_name(vm),
				   "stale", stale(kv), "guest_copy_us",
				   kv->guest_copy_us
					   ? json_integer(kv->guest_copy_us)
					   : json_null()),
			 "records", &list_ops, lc);
}

/* ---- writes ---- */

/* Can the host write the External pool of vm now? Replies when not. */
static bool writable(struct ctl_request *rq, struct vm *vm,
		     const char *pool_name)
{
	int pool = request_pool(rq, pool_name);

	if (pool == -2)
		return false;
	if (pool >= 0 && pool != VMIC_KVP_EXTERNAL) {
		ctl_reply_error(rq, "read-only",
				"the %s pool is %s; the host writes the "
				"external pool",
				vmic_kvp_pool_name((unsigned)pool),
				pool == VMIC_KVP_AUTO_EXTERNAL
					? "made by vmic-hostd from the VM's "
					  "registration"
					: "written by the guest");
		return false;
	}
	if (!vm_service_enabled(vm, KVP_ID)) {
		ctl_reply_error(rq, "service-unavailable",
				"the kvp service is disabled for %s on the "
				"host; `vmic enable %s kvp` turns it on",
				vm_name(vm), vm_name(vm));
		return false;
	}
	if (conn_up(vm) &&
	    vmic_session_version(vm_session(vm), KVP_ID) == 0) {
		ctl_reply_error(rq, "service-unavailable",
				"the guest agent of %s has no common kvp "
				"version with the host",
				vm_name(vm));
		return false;
	}
	if (conn_up(vm) && !vmic_session_peer_enabled(vm_session(vm),
						      KVP_ID)) {
		ctl_reply_error(rq, "service-unavailable",
				"the kvp service of %s is disabled in the "
				"guest's configuration ([kvp] enabled = no in "
				"vmic-guestd.conf)",
				vm_name(vm));
		return false;
	}
	return true;
}

/*
 * A set or delete: checked as it comes (and charged to its client's
 * rate), then, once the VM's pools are in memory (host-pools.c), held
 * to the pool's and the daemon's bounds, committed, applied.
 */
struct write_op {
	struct ctl_request *rq;
	struct vm *vm;   /* referenced */
	json_t *items;   /* {"key": "value"}, or {"key": null} to delete */
	size_t new_keys; /* counted in sets_pending */
	uint64_t growth; /* counted in the daemon's total_pending */
	bool set;
	bool held;       /* holds the VM's pools in memory */
};

static struct write_op *write_op_new(struct ctl_request *rq, struct vm *vm,
				     json_t *items, bool set)
{
	struct write_op *op = calloc(1, sizeof(*op));

	if (!op) {
		json_decref(items);
		ctl_reply_error(rq, "internal", "out of memory");
		return NULL;
	}
	op->rq = rq;
	op->vm = vm;
	op->items = items;
	op->set = set;
	vm_ref(vm);
	return op;
}

static void write_op_free(struct write_op *op)
{
	if (op->held)
		kvp_pools_release(kvp_of(op->vm));
	json_decref(op->items);
	vm_unref(op->vm);
	free(op);
}

static void write_apply(struct write_op *op)
{
	struct kvp_vm *kv = kvp_of(op->vm);
	struct kvp_table *t = &kv->pools[VMIC_KVP_EXTERNAL];
	const char *key;
	json_t *v;
	size_t n = 0;

	json_object_foreach(op->items, key, v) {
		size_t klen = strlen(key);
		bool changed;

		if (json_is_string(v)) {
			int c = kvp_table_set(t, key, klen, json_string_value(v),
					      json_string_length(v), 0, NULL,
					      NULL);

			changed = c == KVP_ADDED || c == KVP_REPLACED;
		} else {
			changed = kvp_table_delete(t, key, klen);
		}
		if (!changed)
			continue;
		n++;
		kvp_changed(kv, VMIC_KVP_EXTERNAL, key, klen,
			    kvp_table_get(t, key, klen));
		kvp_sync_external_changed(kv, key, klen);
	}
	kvp_account(kv);
	log_debug("%s: kvp %s of %zu keys committed, %zu changed",
		  vm_name(op->vm), op->set ? "set" : "delete",
		  json_object_size(op->items), n);
	ctl_reply_ok(op->rq, json_pack("{s:s, s:I, s:b}", "pool", "external",
				       op->set ? "keys" : "deleted",
				       (json_int_t)json_object_size(op->items),
				       "connected", kv->active));
}

static void on_write_done(struct hostd *h, struct store_txn *t, void *ud)
{
	struct write_op *op = ud;
	struct kvp_daemon *d = hostd_state(h, KVP_ID);
	const char *msg;
	int r = store_txn_result(t, &msg);

	kvp_of(op->vm)->sets_pending -= op->new_keys;
	if (d)
		d->total_pending -= op->growth;
	if (vm_removed(op->vm))
		ctl_reply_error(op->rq, "unknown-vm",
				"no VM named '%s' any more: it was removed",
				vm_name(op->vm));
	else if (hostd_stopping(h))
		ctl_reply_error(op->rq, "internal", "vmic-hostd is stopping");
	else if (r < 0)
		ctl_reply_error(op->rq, "internal", "%s", msg);
	else
		write_apply(op);
	if (r < 0 && !vm_removed(op->vm))
		log_error("%s: kvp %s failed: %s", vm_name(op->vm),
			  op->set ? "set" : "delete", msg);
	write_op_free(op);
}

/* Commit op's items as rows of the External pool, then apply. */
static void write_commit(struct write_op *op)
{
	struct hostd *h = vm_hostd(op->vm);
	struct kvp_daemon *d = hostd_state(h, KVP_ID);
	struct store_txn *t = store_txn_new(true);
	const char *key;
	json_t *v;
	int r = t ? 0 : -ENOMEM;

	json_object_foreach(op->items, key, v) {
		if (r == 0)
			r = store_txn_data_set(t, vm_name(op->vm), KVP_ID,
					       VMIC_KVP_EXTERNAL, key,
					       json_string_value(v));
	}
	if (r < 0) {
		store_txn_free(t);
		ctl_reply_error(op->rq, "internal", "out of memory");
		write_op_free(op);
		return;
	}
	kvp_of(op->vm)->sets_pending += op->new_keys;
	d->total_pending += op->growth;
	store_commit(h, t, on_write_done, op);
}

/* The pools are in memory (err 0) or could not be read: false, after
 * replying and freeing op, when the write cannot go on. */
static bool write_ready(struct write_op *op, int err)
{
	if (err == 0)
		return true;
	if (vm_removed(op->vm))
		ctl_reply_error(op->rq, "unknown-vm",
				"no VM named '%s' any more: it was removed",
				vm_name(op->vm));
	else if (hostd_stopping(vm_hostd(op->vm)))
		ctl_reply_error(op->rq, "internal", "vmic-hostd is stopping");
	else
		ctl_reply_error(op->rq, "internal",
				"cannot read the KVP pools of %s from the "
				"database (%s); vmic-hostd's log says why",
				vm_name(op->vm), strerror(-err));
	write_op_free(op);
	return false;
}

/* Check one key (and value) for a write; replies when it is bad. */
static bool item_valid(struct ctl_request *rq, const char *key,
		       json_t *value)
{
	const char *bad;

	if (value && !json_is_string(value)) {
		ctl_reply_error(rq, "bad-request",
				"the value of '%.64s' is not a string", key);
		return false;
	}
	bad = vmic_kvp_check(key, strlen(key),
			     value ? json_string_value(value) : NULL,
			     value ? json_string_length(value) : 0);
	if (bad) {
		ctl_reply_error(rq, "invalid-argument", "key '%.64s%s': %s",
				key, strlen(key) > 64 ? "..." : "", bad);
		return false;
	}
	return true;
}

/* Every item of a set (values) or delete (keys alone) valid: their
 * bytes of keys and values in *bytes. */
static bool items_valid(struct ctl_request *rq, json_t *items, bool set,
			uint64_t *bytes)
{
	const char *key;
	json_t *v;

	*bytes = 0;
	json_object_foreach(items, key, v) {
		if (!item_valid(rq, key, set ? v : NULL))
			return false;
		*bytes += strlen(key) + (json_is_string(v)
						 ? json_string_length(v)
						 : 0);
	}
	return true;
}

/* The pool's and the daemon's bounds; replies `limit` when passed. */
static bool set_within_bounds(struct write_op *op)
{
	struct vm *vm = op->vm;
	struct kvp_vm *kv = kvp_of(vm);
	const struct kvp_settings *s = kvp_settings_of(vm);
	const struct kvp_table *t = &kv->pools[VMIC_KVP_EXTERNAL];
	struct kvp_daemon *d = kvp_daemon_of(vm);
	int64_t growth = 0;
	const char *key;
	char total[32];
	json_t *v;

	json_object_foreach(op->items, key, v) {
		size_t klen = strlen(key);
		const struct kvp_rec *r = kvp_table_get(t, key, klen);

		growth += (int64_t)(klen + json_string_length(v));
		if (r)
			growth -= (int64_t)kvp_rec_size(r);
		else
			op->new_keys++;
	}
	if (op->new_keys &&
	    t->n + kv->sets_pending + op->new_keys > s->external_max_keys) {
		ctl_reply_error(op->rq, "limit",
				"%s's external pool has %zu keys; %zu more "
				"would pass its limit of %u; `vmic set %s kvp "
				"external-max-keys=N` raises it",
				vm_name(vm), t->n + kv->sets_pending,
				op->new_keys, s->external_max_keys,
				vm_name(vm));
		return false;
	}
	if (growth > 0 && (uint64_t)growth > kvp_total_room(vm_hostd(vm))) {
		d->total_refused++;
		vmic_conf_format_u64(VMIC_CONF_SIZE,
				     kvp_conf(vm_hostd(vm))->max_total_bytes,
				     total, sizeof(total));
		ctl_reply_error(op->rq, "limit",
				"this set adds %lld bytes of keys and values, "
				"and the KVP data of all VMs holds %llu of the "
				"%s that [kvp] max-total-bytes allows; delete "
				"records, or ask root to raise max-total-bytes "
				"in vmic-hostd.conf",
				(long long)growth,
				(unsigned long long)(d->total +
						     d->total_pending),
				total);
		return false;
	}
	op->growth = growth > 0 ? (uint64_t)growth : 0;
	return true;
}

static void set_ready(struct kvp_vm *kv UNUSED, void *ud, int err)
{
	struct write_op *op = ud;

	if (!write_ready(op, err))
		return;
	if (!set_within_bounds(op)) {
		write_op_free(op);
		return;
	}
	write_commit(op);
}

static void cmd_set(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	const char *key = NULL, *pool_name = NULL;
	json_t *value = NULL, *items = NULL;
	struct write_op *op;
	uint64_t bytes;

	if (!ctl_args_unpack(rq, "kvp-set", args, "{s?s, s?o, s?o, s?s}",
			     "key", &key, "value", &value, "items", &items,
			     "pool", &pool_name))
		return;
	if (!writable(rq, vm, pool_name))
		return;
	if ((key != NULL) != (value != NULL) || (key != NULL) == (items != NULL)) {
		ctl_reply_error(rq, "bad-request",
				"`kvp-set` takes \"key\" and \"value\", or "
				"\"items\" ({\"KEY\": \"VALUE\", ...})");
		return;
	}
	if (items) {
		if (!json_is_object(items) || json_object_size(items) == 0) {
			ctl_reply_error(rq, "bad-request",
					"\"items\" must be an object of at "
					"least one \"KEY\": \"VALUE\"");
			return;
		}
		items = json_deep_copy(items);
	} else {
		items = json_object();
		json_object_set(items, key, value);
	}
	if (!items_valid(rq, items, true, &bytes) ||
	    !kvp_rate_take(rq, json_object_size(items), bytes)) {
		json_decref(items);
		return;
	}
	op = write_op_new(rq, vm, items, true);
	if (!op)
		return;
	op->held = true;
	kvp_pools_need(kvp_of(vm), set_ready, op);
}

static void delete_ready(struct kvp_vm *kv, void *ud, int err)
{
	struct write_op *op = ud;
	const char *key;
	json_t *k;

	if (!write_ready(op, err))
		return;
	json_object_foreach(op->items, key, k) {
		if (!kvp_table_get(&kv->pools[VMIC_KVP_EXTERNAL], key,
				   strlen(key))) {
			ctl_reply_error(op->rq, "not-found",
					"%s has no key '%.200s' in its "
					"external pool",
					vm_name(op->vm), key);
			write_op_free(op);
			return;
		}
	}
	write_commit(op);
}

static void cmd_delete(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	const char *key = NULL, *pool_name = NULL;
	json_t *keys = NULL, *items, *k;
	struct write_op *op;
	uint64_t bytes;
	size_t i;

	if (!ctl_args_unpack(rq, "kvp-delete", args, "{s?s, s?o, s?s}", "key",
			     &key, "keys", &keys, "pool", &pool_name))
		return;
	if (!writable(rq, vm, pool_name))
		return;
	if ((key != NULL) == (keys != NULL) ||
	    (keys && (!json_is_array(keys) || json_array_size(keys) == 0))) {
		ctl_reply_error(rq, "bad-request",
				"`kvp-delete` takes \"key\", or \"keys\" (an "
				"array of at least one)");
		return;
	}
	items = json_object();
	if (key)
		json_object_set_new(items, key, json_null());
	json_array_foreach(keys, i, k) {
		if (!json_is_string(k)) {
			json_decref(items);
			ctl_reply_error(rq, "bad-request",
					"\"keys\" must hold strings");
			return;
		}
		json_object_set_new(items, json_string_value(k), json_null());
	}
	if (!items_valid(rq, items, false, &bytes) ||
	    !kvp_rate_take(rq, json_object_size(items), bytes)) {
		json_decref(items);
		return;
	}
	op = write_op_new(rq, vm, items, false);
	if (!op)
		return;
	op->held = true;
	kvp_pools_need(kvp_of(vm), delete_ready, op);
}

const struct ctl_command kvp_commands[KVP_NCOMMANDS] = {
	{ "kvp-list", cmd_list, true, "vm (string), pool (string)",
	  "a VM's KVP records (every pool, or one)" },
	{ "kvp-get", cmd_get, true, "vm (string), key (string), pool (string)",
	  "one KVP record" },
	{ "kvp-set", cmd_set, true,
	  "vm (string), key (string), value (string), items (object), pool "
	  "(string)",
	  "set keys of a VM's External pool" },
	{ "kvp-delete", cmd_delete, true,
	  "vm (string), key (string), keys (array), pool (string)",
	  "delete keys of a VM's External pool" },
	{ "kvp-watch", cmd_watch, true, "vm (string), pool (string)",
	  "a VM's KVP changes as they happen" },
};
