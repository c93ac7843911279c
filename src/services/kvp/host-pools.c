/* SPDX-License-Identifier: MIT */
/*
 * KVP, host half: where a VM's pools are, and the daemon-wide total.
 *
 * Pools 0 (External), 1 (Guest) and 2 (Auto) live in the store's
 * service_data. They are in memory only while something needs them: the
 * service's session (the copies to the guest, the inbox), a kvp-set or
 * kvp-delete until it is applied, a kvp-list that began on them. At
 * start-up only their sizes are read (one aggregate query for all VMs);
 * a VM's pools are read off the loop (store_read_data) when its session
 * comes up or a write comes, and dropped KVP_UNLOAD_MS after the last
 * user let go once everything its guest sent is stored. Reads of pools
 * that are not in memory go to the store (host-read.c). So the memory
 * the pools take is what the VMs that use them hold, within [kvp]
 * max-total-bytes, not what every VM ever stored, and a restart costs no
 * memory for VMs that are not connected.
 *
 * A VM that never stored anything keeps its empty pools in memory:
 * they cost nothing, and its first write needs no read.
 *
 * The total: each VM counts the bytes of keys and values of its pools
 * 0..2 (pool 3 is a few facts made here), the guest's pools as their
 * inbox counts them (the records of an earlier full copy that the
 * current one has not sent again are not counted: they go at its END,
 * so a guest that sends its pool again is not refused for the copy it
 * replaces). The sum is bounded by [kvp] max-total-bytes: a kvp-set past
 * it is refused (host-commands.c) and a guest's records past it are kept
 * out like those past its own bounds (host-sync.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "services/kvp/host.h"

struct kvp_need {
	struct kvp_need *next;
	kvp_ready_fn ready;
	void *ud;
};

/* A load under way; the tables are filled on a thread of the pool. */
struct load_job {
	struct kvp_vm *kv; /* its VM referenced */
	struct kvp_table t[KVP_STORED_POOLS];
	struct data_read d;
};

static void on_pools_timer(struct htimer *t);

void kvp_pools_init(struct kvp_vm *kv)
{
	kv->where = KVP_IN_MEMORY;
	kv->needs_tail = &kv->needs;
	htimer_init(vm_hostd(kv->vm), &kv->pools_timer, on_pools_timer, kv);
}

void kvp_pools_sizes(struct kvp_vm *kv, unsigned space, uint64_t keys,
		     uint64_t bytes)
{
	if (space >= KVP_STORED_POOLS || keys == 0)
		return;
	kv->stored[space] = (struct kvp_size){ (size_t)keys, bytes };
	/* The empty tables in memory are not the pools any more. */
	kv->where = KVP_IN_STORE;
	kvp_account(kv);
}

size_t kvp_pool_keys(const struct kvp_vm *kv, unsigned pool)
{
	if (pool < KVP_STORED_POOLS && kv->where != KVP_IN_MEMORY)
		return kv->stored[pool].keys;
	return kv->pools[pool].n;
}

uint64_t kvp_pool_bytes(const struct kvp_vm *kv, unsigned pool)
{
	if (pool < KVP_STORED_POOLS && kv->where != KVP_IN_MEMORY)
		return kv->stored[pool].bytes;
	return kv->pools[pool].bytes;
}

/* The bytes kv counts against the total now. */
static uint64_t counted(const struct kvp_vm *kv)
{
	uint64_t n = 0;

	if (kv->gone)
		return 0;
	if (kv->where != KVP_IN_MEMORY) {
		for (unsigned p = 0; p < KVP_STORED_POOLS; p++)
			n += kv->stored[p].bytes;
		return n;
	}
	return kv->pools[VMIC_KVP_EXTERNAL].bytes +
	       kvp_inbox_bytes(&kv->in[VMIC_KVP_GUEST],
			       &kv->pools[VMIC_KVP_GUEST]) +
	       kvp_inbox_bytes(&kv->in[VMIC_KVP_AUTO],
			       &kv->pools[VMIC_KVP_AUTO]);
}

void kvp_account(struct kvp_vm *kv)
{
	struct kvp_daemon *d = kvp_daemon_of(kv->vm);
	uint64_t now = counted(kv);

	/* The daemon's state is gone once it stops; so is the total. */
	if (!d)
		return;
	d->total = d->total - kv->counted + now;
	kv->counted = now;
}

uint64_t kvp_total_room(const struct hostd *h)
{
	const struct kvp_daemon *d = hostd_state(h, KVP_ID);
	const struct kvp_daemon_conf *c = kvp_conf(h);
	uint64_t used;

	if (!d || !c)
		return 0;
	used = d->total + d->total_pending;
	return used >= c->max_total_bytes ? 0 : c->max_total_bytes - used;
}

size_t kvp_pools_resident(const struct hostd *h)
{
	size_t n = 0;

	for (size_t i = 0; i < hostd_vm_count(h); i++) {
		const struct kvp_vm *kv = vm_state(hostd_vm(h, i), KVP_ID);

		if (!kv || kv->where != KVP_IN_MEMORY)
			continue;
		for (unsigned p = 0; p < KVP_STORED_POOLS; p++)
			if (kv->pools[p].n) {
				n++;
				break;
			}
	}
	return n;
}

/* Nothing needs the pools in memory and the store has all of them. */
static bool idle(const struct kvp_vm *kv)
{
	bool empty = true;

	for (unsigned p = 0; p < KVP_STORED_POOLS; p++)
		empty = empty && kv->pools[p].n == 0;
	return kv->where == KVP_IN_MEMORY && !kv->gone && kv->holds == 0 &&
	       !kv->active && !kv->store_busy && kv->nwaits == 0 &&
	       kv->dirty[VMIC_KVP_GUEST].n == 0 &&
	       kv->dirty[VMIC_KVP_AUTO].n == 0 && !empty;
}

void kvp_pools_idle_check(struct kvp_vm *kv)
{
	if (idle(kv) && !htimer_active(&kv->pools_timer))
		htimer_start_in(&kv->pools_timer, KVP_UNLOAD_MS);
}

/* Keep only the sizes; the store has the records. */
static void drop(struct kvp_vm *kv)
{
	size_t n = 0;

	for (unsigned p = 0; p < KVP_STORED_POOLS; p++) {
		kv->stored[p] = (struct kvp_size){ kv->pools[p].n,
						   kv->pools[p].bytes };
		n += kv->pools[p].n;
		kvp_table_clear(&kv->pools[p]);
		kvp_inbox_init(&kv->in[p]);
	}
	kvp_outbox_stop(&kv->out[VMIC_KVP_EXTERNAL]);
	kv->where = KVP_IN_STORE;
	kvp_account(kv);
	log_debug("%s: its KVP pools (%zu records) are left in the store",
		  vm_name(kv->vm), n);
}

/* Hand every waiter the outcome of a load (a list taken first: none is
 * added while it runs, the pools being there or the VM gone). */
static void serve_needs(struct kvp_vm *kv, int err)
{
	struct kvp_need *n = kv->needs;

	kv->needs = NULL;
	kv->needs_tail = &kv->needs;
	while (n) {
		struct kvp_need *next = n->next;

		n->ready(kv, n->ud, err);
		free(n);
		n = next;
	}
}

/* On a thread of the pool: one stored row into the job's tables. */
static int load_row(void *ud, unsigned space, const char *key, size_t klen,
		    const char *value, size_t vlen)
{
	struct load_job *j = ud;

	/* A row that breaks the limits was not written by this daemon. */
	if (space >= KVP_STORED_POOLS || vmic_kvp_check(key, klen, value, vlen))
		return 0;
	return kvp_table_set(&j->t[space], key, klen, value, vlen, 0, NULL,
			     NULL) < 0
		       ? -ENOMEM
		       : 0;
}

static void load_job_free(struct load_job *j)
{
	for (unsigned p = 0; p < KVP_STORED_POOLS; p++)
		kvp_table_clear(&j->t[p]);
	free(j);
}

static void load_failed(struct kvp_vm *kv, const char *why)
{
	kv->where = KVP_IN_STORE;
	if (!kv->load_failed_noted)
		log_error("%s: cannot read its KVP pools from the database "
			  "(%s); trying again every %d s while its session "
			  "waits for them",
			  vm_name(kv->vm), why, KVP_LOAD_RETRY_MS / 1000);
	kv->load_failed_noted = true;
	serve_needs(kv, -EIO);
	if (kv->session_holds)
		htimer_start_in(&kv->pools_timer, KVP_LOAD_RETRY_MS);
}

static void on_loaded(struct hostd *h, struct data_read *d, void *ud)
{
	struct load_job *j = ud;
	struct kvp_vm *kv = j->kv;
	struct vm *vm = kv->vm;
	size_t n = 0;

	if (kv->gone || vm_removed(vm) || hostd_stopping(h)) {
		load_job_free(j);
		vm_unref(vm);
		return;
	}
	if (d->err < 0) {
		load_failed(kv, d->errmsg);
		load_job_free(j);
		vm_unref(vm);
		return;
	}
	for (unsigned p = 0; p < KVP_STORED_POOLS; p++) {
		kvp_table_swap(&kv->pools[p], &j->t[p]);
		kvp_inbox_init(&kv->in[p]);
		n += kv->pools[p].n;
	}
	load_job_free(j); /* the empty tables it got in exchange */
	kv->where = KVP_IN_MEMORY;
	if (kv->load_failed_noted)
		log_notice("%s: its KVP pools are read again", vm_name(vm));
	kv->load_failed_noted = false;
	kvp_account(kv);
	log_debug("%s: its KVP pools (%zu records) are read from the store",
		  vm_name(vm), n);
	serve_needs(kv, 0);
	if (kv->session_holds)
		kvp_sync_up(kv);
	kvp_pools_idle_check(kv);
	vm_unref(vm);
}

/* Read the pools off the loop, unless they are there or on their way. */
static void load_start(struct kvp_vm *kv)
{
	struct load_job *j;

	if (kv->where != KVP_IN_STORE || kv->gone)
		return;
	j = calloc(1, sizeof(*j));
	if (!j) {
		load_failed(kv, "out of memory");
		return;
	}
	j->kv = kv;
	for (unsigned p = 0; p < KVP_STORED_POOLS; p++)
		kvp_table_init(&j->t[p]);
	snprintf(j->d.vm, sizeof(j->d.vm), "%s", vm_name(kv->vm));
	j->d.service = KVP_ID;
	j->d.space_min = 0;
	j->d.space_max = KVP_STORED_POOLS - 1;
	j->d.row = load_row;
	j->d.ud = j;
	kv->where = KVP_LOADING;
	vm_ref(kv->vm);
	store_read_data(vm_hostd(kv->vm), &j->d, on_loaded, j);
}

static void on_pools_timer(struct htimer *t)
{
	struct kvp_vm *kv = t->data;

	if (kv->gone)
		return;
	if (idle(kv))
		drop(kv);
	else if (kv->where == KVP_IN_STORE && (kv->session_holds || kv->needs))
		load_start(kv);
}

void kvp_pools_need(struct kvp_vm *kv, kvp_ready_fn ready, void *ud)
{
	struct kvp_need *n;

	kv->holds++;
	if (kv->where == KVP_IN_MEMORY) {
		ready(kv, ud, 0);
		return;
	}
	n = kv->gone ? NULL : calloc(1, sizeof(*n));
	if (!n) {
		ready(kv, ud, kv->gone ? -ECANCELED : -ENOMEM);
		return;
	}
	n->ready = ready;
	n->ud = ud;
	*kv->needs_tail = n;
	kv->needs_tail = &n->next;
	load_start(kv);
}

void kvp_pools_hold(struct kvp_vm *kv)
{
	kv->holds++;
}

void kvp_pools_release(struct kvp_vm *kv)
{
	if (kv->holds)
		kv->holds--;
	kvp_pools_idle_check(kv);
}

void kvp_pools_session_up(struct kvp_vm *kv)
{
	if (!kv->session_holds) {
		kv->session_holds = true;
		kv->holds++;
	}
	if (kv->where == KVP_IN_MEMORY)
		kvp_sync_up(kv);
	else
		load_start(kv); /* kvp_sync_up once they are read */
}

void kvp_pools_session_down(struct kvp_vm *kv)
{
	kvp_sync_down(kv);
	if (kv->session_holds) {
		kv->session_holds = false;
		kvp_pools_release(kv);
	}
}

void kvp_pools_close(struct kvp_vm *kv)
{
	kv->gone = true;
	kvp_account(kv); /* it leaves the total */
	serve_needs(kv, -ECANCELED);
	vm_close_timer(kv->vm, &kv->pools_timer);
}
