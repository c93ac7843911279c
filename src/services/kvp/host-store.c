/* SPDX-License-Identifier: MIT */
/*
 * KVP, host half: what the guest sent, made durable.
 *
 * The keys of pools 1 and 2 that changed are noted (a set of keys, so a
 * key that changes often costs one row), and written by the store's
 * writer thread in one transaction: at most one of a VM's in flight at a
 * time, KVP_STORE_GAP_MS apart at least, holding everything that changed
 * meanwhile. The guest's batches are answered when the transaction that
 * holds their records has committed, so the guest's window of
 * unanswered batches is what paces a guest that floods: one VM costs
 * the writer at most one transaction at a time, and ~20 a second.
 *
 * A transaction that fails (a full disk, another program holding the
 * database) answers the guest anyway, puts its keys back, and is tried
 * again a second later; it is logged once until one succeeds.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "services/kvp/host.h"

#define KVP_STORE_RETRY_MS 1000

static void on_store_timer(struct htimer *t)
{
	kvp_store_flush(t->data);
}

void kvp_store_init(struct kvp_vm *kv)
{
	for (unsigned p = 0; p < VMIC_KVP_POOLS; p++) {
		kvp_table_init(&kv->dirty[p]);
		kvp_table_init(&kv->storing[p]);
	}
	htimer_init(vm_hostd(kv->vm), &kv->store_timer, on_store_timer, kv);
}

void kvp_store_close(struct kvp_vm *kv)
{
	vm_close_timer(kv->vm, &kv->store_timer);
}

void kvp_store_free(struct kvp_vm *kv)
{
	for (unsigned p = 0; p < VMIC_KVP_POOLS; p++) {
		kvp_table_clear(&kv->dirty[p]);
		kvp_table_clear(&kv->storing[p]);
	}
}

void kvp_store_note(struct kvp_vm *kv, unsigned pool, const char *key,
		    size_t klen)
{
	if (kvp_table_set(&kv->dirty[pool], key, klen, "", 0, 0, NULL, NULL) <
	    0)
		log_error("%s: out of memory noting a KVP key to store",
			  vm_name(kv->vm));
}

/* Keys of a failed transaction go back to the dirty set. */
static void put_back(struct kvp_vm *kv)
{
	for (unsigned p = 0; p < VMIC_KVP_POOLS; p++) {
		const struct kvp_table *s = &kv->storing[p];

		for (size_t i = 0; i < s->n; i++)
			kvp_store_note(kv, p, kvp_rec_key(s->recs[i]),
				       s->recs[i]->klen);
		kvp_table_clear(&kv->storing[p]);
	}
}

static void on_store_done(struct hostd *h, struct store_txn *t, void *ud)
{
	struct kvp_vm *kv = ud;
	struct vm *vm = kv->vm;
	const char *msg;
	int r = store_txn_result(t, &msg);

	kv->store_busy = false;
	if (vm_removed(vm) || hostd_stopping(h)) {
		vm_unref(vm);
		return;
	}
	if (r < 0) {
		put_back(kv);
		if (!kv->store_failed_noted)
			log_error("%s: cannot store the records its guest sent "
				  "(%s); trying again every %ds",
				  vm_name(vm), msg, KVP_STORE_RETRY_MS / 1000);
		kv->store_failed_noted = true;
		kv->store_next_us = hostd_now_us(h) +
				    KVP_STORE_RETRY_MS * 1000ull;
	} else {
		for (unsigned p = 0; p < VMIC_KVP_POOLS; p++)
			kvp_table_clear(&kv->storing[p]);
		if (kv->store_failed_noted)
			log_notice("%s: the records its guest sent are stored "
				   "again",
				   vm_name(vm));
		kv->store_failed_noted = false;
	}
	kvp_sync_answer(kv, kv->waits_storing);
	kv->waits_storing = 0;
	kvp_store_flush(kv);
	/* Stored: the pools may leave memory once nothing needs them. */
	kvp_pools_idle_check(kv);
	vm_unref(vm);
}

/* The rows of the dirty keys of pool p into t, the keys into storing. */
static int add_pool(struct kvp_vm *kv, struct store_txn *t, unsigned p)
{
	const struct kvp_table *d = &kv->dirty[p];
	int r = 0;

	for (size_t i = 0; r == 0 && i < d->n; i++) {
		const char *key = kvp_rec_key(d->recs[i]);
		const struct kvp_rec *rec =
			kvp_table_get(&kv->pools[p], key, d->recs[i]->klen);

		r = store_txn_data_set(t, vm_name(kv->vm), KVP_ID, p, key,
				       rec ? kvp_rec_value(rec) : NULL);
	}
	return r;
}

void kvp_store_flush(struct kvp_vm *kv)
{
	struct vm *vm = kv->vm;
	struct hostd *h = vm_hostd(vm);
	uint64_t now = hostd_now_us(h);
	struct store_txn *t;

	if (kv->store_busy || vm_removed(vm) || hostd_stopping(h) ||
	    (!kv->dirty[VMIC_KVP_GUEST].n && !kv->dirty[VMIC_KVP_AUTO].n &&
	     !kv->nwaits))
		return;
	if (now < kv->store_next_us) {
		if (!htimer_active(&kv->store_timer))
			htimer_start_at(&kv->store_timer, kv->store_next_us);
		return;
	}
	t = store_txn_new(false);
	if (!t || add_pool(kv, t, VMIC_KVP_GUEST) < 0 ||
	    add_pool(kv, t, VMIC_KVP_AUTO) < 0) {
		store_txn_free(t);
		log_error("%s: out of memory storing KVP records", vm_name(vm));
		kv->store_next_us = now + KVP_STORE_RETRY_MS * 1000ull;
		htimer_start_at(&kv->store_timer, kv->store_next_us);
		return;
	}
	for (unsigned p = 0; p < VMIC_KVP_POOLS; p++)
		kvp_table_swap(&kv->dirty[p], &kv->storing[p]);
	kv->waits_storing = kv->nwaits;
	kv->store_busy = true;
	kv->store_next_us = now + KVP_STORE_GAP_MS * 1000ull;
	vm_ref(vm);
	store_commit(h, t, on_store_done, kv);
}
