/* SPDX-License-Identifier: MIT */
/*
 * KVP, host half: the exchange with the guest.
 *
 * Out: at the start of every session of the service (the session came
 * up with kvp usable, or the host enabled it), IDENTITY, then pool 3
 * and pool 0 whole, then the keys commands change. Every batch is a
 * request through the core's tracker; at most VMIC_KVP_WINDOW wait for
 * their answers, so a copy of 10,000 records (25 MB) has at most 8 x
 * 64 KiB on the link at any time, never the link's whole queue (which
 * closes the link when it overflows), and a heartbeat waits behind at
 * most that. A batch the guest does not answer in time makes the copies
 * start over.
 *
 * A session that ends while pool 0's copy is under way (a batch of it
 * sent, the last one not answered) makes the next copy wait: 1 s, doubling
 * per such cut up to a minute, back to none once a copy is answered
 * whole. So a guest that restarts its session whenever a window of
 * batches arrived (each restart would start the copy over) gets one
 * window per wait: at most 8 x 64 KiB in 1 s, 2 s, 4 s ... 1 min; a guest
 * that takes every copy whole reads every byte it is sent, and starts
 * its sessions within [connection] session-burst and session-interval.
 * IDENTITY and pool 3 (a few facts) go at once.
 *
 * In: the guest's SET and DELETE batches of pools 1 and 2. Each is
 * checked whole (sync.h, kvp.h), kept within the VM's bounds
 * (guest-max-keys, guest-max-bytes; the Auto pool a fixed few), applied
 * in memory, and answered once its records are committed (host-store.c).
 * A guest that sends more than KVP_WAIT_MAX batches unanswered is told
 * `busy`; a batch for a pool the host writes is refused. What a guest
 * causes in the log goes through events (rate-limited per VM).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "common/utf8.h"
#include "proto/control.h"
#include "proto/services.h"
#include "services/kvp/host.h"

/* The wait of a copy of pool 0 after one was cut short: the first,
 * doubling per cut up to the last. */
#define KVP_COPY_BACKOFF_MIN_MS 1000
#define KVP_COPY_BACKOFF_MAX_MS 60000

/* One batch being built; the loop is the only thread that builds. */
static uint8_t batch_buf[VMIC_KVP_BATCH_MAX];

static void on_copy_timer(struct htimer *t)
{
	kvp_sync_pump(t->data);
}

void kvp_sync_init(struct kvp_vm *kv)
{
	htimer_init(vm_hostd(kv->vm), &kv->copy_timer, on_copy_timer, kv);
}

void kvp_sync_close(struct kvp_vm *kv)
{
	vm_close_timer(kv->vm, &kv->copy_timer);
}

/* The session ends with pool 0's copy under way: the next one waits. */
static void note_copy_cut(struct kvp_vm *kv)
{
	kv->copy_backoff_ms =
		kv->copy_backoff_ms
			? MIN(kv->copy_backoff_ms * 2, KVP_COPY_BACKOFF_MAX_MS)
			: KVP_COPY_BACKOFF_MIN_MS;
	kv->copy_after_us = hostd_now_us(vm_hostd(kv->vm)) +
			    (uint64_t)kv->copy_backoff_ms * 1000;
	log_debug("%s: the session ended during the External pool's copy; "
		  "the next one waits %u ms",
		  vm_name(kv->vm), kv->copy_backoff_ms);
}

/* Must this outbox's copy wait (after a cut)? Then its timer is set. */
static bool copy_waits(struct kvp_vm *kv, const struct kvp_outbox *ob)
{
	if (ob->pool != VMIC_KVP_EXTERNAL || !ob->copy_due ||
	    hostd_now_us(vm_hostd(kv->vm)) >= kv->copy_after_us)
		return false;
	if (!htimer_active(&kv->copy_timer))
		htimer_start_at(&kv->copy_timer, kv->copy_after_us);
	return true;
}

/* Stop waiting for the requests of the session that ends: their slots
 * in the core's tracker (the service's own budget) are free again. */
static void cancel_inflight(struct kvp_vm *kv)
{
	for (unsigned i = 0; i < kv->nids; i++)
		request_cancel(kv->vm, kv->ids[i]);
	kv->nids = 0;
	kv->ninflight = 0;
}

void kvp_sync_up(struct kvp_vm *kv)
{
	struct vm *vm = kv->vm;

	cancel_inflight(kv);
	kv->epoch++;
	kv->nwaits = 0;
	kv->waits_storing = 0;
	kv->guest_refused = false;
	kv->timed_out = false;
	kv->cap_noted = false;
	kv->active = service_usable(vm, KVP_ID);
	if (!kv->active)
		return;
	kv->identity_due = true;
	kvp_facts_refresh(kv);
	kvp_outbox_restart(&kv->out[VMIC_KVP_AUTO_EXTERNAL]);
	kvp_outbox_restart(&kv->out[VMIC_KVP_EXTERNAL]);
	kv->copy_start_us = hostd_now_us(vm_hostd(vm));
	kv->copy_end_id = 0;
	kvp_sync_pump(kv);
}

void kvp_sync_down(struct kvp_vm *kv)
{
	if (kv->active && (kv->out[VMIC_KVP_EXTERNAL].copying ||
			   kv->copy_end_id))
		note_copy_cut(kv);
	htimer_stop(&kv->copy_timer);
	cancel_inflight(kv);
	kv->epoch++;
	kv->active = false;
	kv->timed_out = false;
	kv->nwaits = 0;
	kv->waits_storing = 0;
	kv->copy_end_id = 0;
	kvp_outbox_stop(&kv->out[VMIC_KVP_AUTO_EXTERNAL]);
	kvp_outbox_stop(&kv->out[VMIC_KVP_EXTERNAL]);
}

/* Send pools 3 and 0 whole again (a lost answer, an allocation). */
static void restart_copies(struct kvp_vm *kv)
{
	kvp_outbox_restart(&kv->out[VMIC_KVP_AUTO_EXTERNAL]);
	kvp_outbox_restart(&kv->out[VMIC_KVP_EXTERNAL]);
	kv->copy_start_us = hostd_now_us(vm_hostd(kv->vm));
	kv->copy_end_id = 0;
}

/* The guest refused a request of ours: say so once, stop sending. */
static void guest_refused(struct kvp_vm *kv, const struct vmic_frame *f)
{
	char text[VMIC_ERROR_MSG_MAX + 1], full[VMIC_ERROR_MSG_MAX + 64];
	uint16_t code = conn_peer_error(f, text, sizeof(text));

	if (kv->guest_refused)
		return;
	kv->guest_refused = true;
	snprintf(full, sizeof(full), "'%s': %s", vmic_error_name(code), text);
	/* Cut on a character boundary: it goes into JSON. */
	vmic_utf8_sanitize(kv->refusal, sizeof(kv->refusal), full,
			   strlen(full));
	events_emit(vm_hostd(kv->vm), vm_name(kv->vm), "kvp", "kvp", NULL, NULL,
		    "the guest answered %s; the host sends no more KVP "
		    "records until its next session",
		    kv->refusal);
}

static void on_ack(struct kvp_vm *kv, const struct vmic_frame *f)
{
	struct vm *vm = kv->vm;
	struct vmic_kvp_ack a;
	char note[VMIC_KVP_NOTE_MAX + 1];

	if (vmic_kvp_ack_decode(f->payload, f->length, &a) < 0) {
		vm_bad_frame(vm);
		return;
	}
	if (a.status == VMIC_KVP_CAP && a.refused) {
		vmic_utf8_sanitize(note, sizeof(note), a.note, strlen(a.note));
		events_emit(vm_hostd(vm), vm_name(vm), "kvp", "kvp", NULL, NULL,
			    "the guest kept %u records of the host's pools "
			    "out: %s",
			    a.refused, note[0] ? note : "its limit");
	}
	if (f->request_id == kv->copy_end_id) {
		kv->copy_end_id = 0;
		kv->copy_backoff_ms = 0;
		kv->copy_ms = (int64_t)(hostd_now_us(vm_hostd(vm)) -
					kv->copy_start_us) / 1000;
		kv->copy_records = kv->pools[VMIC_KVP_EXTERNAL].n;
		/* Routine: the status shows it; no event per session. */
		log_debug("%s: the External pool (%zu records) reached the "
			  "guest in %lld ms",
			  vm_name(vm), kv->copy_records,
			  (long long)kv->copy_ms);
	}
}

static void forget_id(struct kvp_vm *kv, uint32_t id)
{
	for (unsigned i = 0; i < kv->nids; i++)
		if (kv->ids[i] == id) {
			kv->ids[i] = kv->ids[--kv->nids];
			return;
		}
}

/* Every answer to a batch of ours; ud is the epoch it was sent in. */
static bool on_answer(struct vm *vm, void *ud, const struct vmic_frame *f,
		      int err)
{
	struct kvp_vm *kv = kvp_of(vm);

	if (!kv || (uint32_t)(uintptr_t)ud != kv->epoch)
		return false; /* an earlier session's */
	if (err == -ECANCELED || err == -ECONNRESET)
		return false; /* the VM goes, the session ended */
	if (kv->ninflight)
		kv->ninflight--;
	if (f)
		forget_id(kv, f->request_id);
	if (kv->ninflight == 0)
		kv->nids = 0; /* the rest timed out: the tracker dropped them */
	if (!f) {
		/* Once every batch that waited is given up, the pools go
		 * again whole (once, not once per lost batch). */
		if (err == -ETIMEDOUT)
			kv->timed_out = true;
		if (kv->timed_out && kv->ninflight == 0) {
			log_debug("%s: KVP batches were not answered in %ds; "
				  "sending the pools again",
				  vm_name(vm), KVP_ANSWER_TIMEOUT_MS / 1000);
			kv->timed_out = false;
			restart_copies(kv);
		}
	} else if (f->type == VMIC_T_ERROR) {
		guest_refused(kv, f);
	} else if (f->type == VMIC_KVP_ACK) {
		on_ack(kv, f);
	}
	kvp_sync_pump(kv);
	return false;
}

/* Send one request of ours; false when it could not go. */
static bool send_request(struct kvp_vm *kv, uint8_t type, const void *payload,
		 size_t len, uint32_t *id)
{
	int r = request_send(kv->vm, KVP_ID, type, payload, len,
			     KVP_ANSWER_TIMEOUT_MS, on_answer,
			     (void *)(uintptr_t)kv->epoch, id);

	if (r < 0) {
		log_debug("%s: cannot send a KVP request: %s", vm_name(kv->vm),
			  strerror(-r));
		return false;
	}
	kv->ninflight++;
	if (kv->nids < ARRAY_SIZE(kv->ids))
		kv->ids[kv->nids++] = *id;
	return true;
}

void kvp_sync_pump(struct kvp_vm *kv)
{
	static const unsigned order[] = { VMIC_KVP_AUTO_EXTERNAL,
					  VMIC_KVP_EXTERNAL };

	while (kv->active && !kv->guest_refused && !kv->timed_out &&
	       kv->ninflight < VMIC_KVP_WINDOW) {
		struct kvp_outbox *ob = NULL;
		uint8_t type;
		size_t len, n;
		bool copying;
		uint32_t id;
		int r;

		if (kv->identity_due) {
			char vm_id[VM_UUID_LEN + 1];

			vm_uuid(kv->vm, vm_id);
			r = vmic_kvp_identity_encode(vm_id, batch_buf,
						     sizeof(batch_buf));
			if (r < 0 ||
			    !send_request(kv, VMIC_KVP_IDENTITY, batch_buf, (size_t)r,
				  &id))
				return;
			kv->identity_due = false;
			continue;
		}
		for (size_t i = 0; i < ARRAY_SIZE(order) && !ob; i++)
			if (kvp_outbox_pending(&kv->out[order[i]]) &&
			    !copy_waits(kv, &kv->out[order[i]]))
				ob = &kv->out[order[i]];
		if (!ob)
			return;
		copying = kvp_outbox_copying(ob);
		/* The copy's time starts with its first batch, after any
		 * wait. */
		if (ob->pool == VMIC_KVP_EXTERNAL && ob->copy_due)
			kv->copy_start_us = hostd_now_us(vm_hostd(kv->vm));
		len = kvp_outbox_next(ob, &kv->pools[ob->pool], batch_buf,
				      sizeof(batch_buf), &type, &n);
		if (len == 0)
			return;
		if (!send_request(kv, type, batch_buf, len, &id)) {
			/* The batch is lost: the pool goes again whole. */
			kvp_outbox_restart(ob);
			return;
		}
		kvp_daemon_of(kv->vm)->sent += n;
		if (ob->pool == VMIC_KVP_EXTERNAL && copying &&
		    !kvp_outbox_copying(ob))
			kv->copy_end_id = id;
	}
}

void kvp_sync_external_changed(struct kvp_vm *kv, const char *key,
			       size_t klen)
{
	if (!kv->active)
		return;
	if (kvp_outbox_changed(&kv->out[VMIC_KVP_EXTERNAL], key, klen) < 0)
		kvp_outbox_restart(&kv->out[VMIC_KVP_EXTERNAL]);
	kvp_sync_pump(kv);
}

/* ---- the guest's batches ---- */

struct change_ctx {
	struct kvp_vm *kv;
	unsigned pool;
};

static void on_guest_change(void *ud, const char *key, size_t klen,
			    const struct kvp_rec *now)
{
	struct change_ctx *c = ud;

	kvp_store_note(c->kv, c->pool, key, klen);
	kvp_changed(c->kv, c->pool, key, klen, now);
}

/* The bounds of a pool the guest writes, as its own. */
static struct kvp_limits guest_limits(const struct kvp_vm *kv, unsigned pool)
{
	const struct kvp_settings *s = kvp_settings_of(kv->vm);

	if (pool == VMIC_KVP_AUTO)
		return (struct kvp_limits){ KVP_AUTO_MAX_KEYS,
					    KVP_AUTO_MAX_BYTES };
	return (struct kvp_limits){ s->guest_max_keys, s->guest_max_bytes };
}

/* Its own bounds, with the bytes the daemon's total still has room for
 * (*by_total: that is the tighter one). */
static struct kvp_limits batch_limits(const struct kvp_vm *kv, unsigned pool,
				      bool *by_total)
{
	struct kvp_limits lim = guest_limits(kv, pool);
	uint64_t room = kvp_total_room(vm_hostd(kv->vm));
	uint64_t now = kvp_inbox_bytes(&kv->in[pool], &kv->pools[pool]);

	*by_total = now + room < lim.max_bytes;
	if (*by_total)
		lim.max_bytes = now + room;
	return lim;
}

/* Records kept out: counted, and one event per session. */
static void note_refused(struct kvp_vm *kv, unsigned pool, size_t refused,
			 bool by_total)
{
	const struct kvp_limits lim = guest_limits(kv, pool);
	struct kvp_daemon *d = kvp_daemon_of(kv->vm);
	struct vm *vm = kv->vm;
	char size[32];

	kv->refused += refused;
	d->refused += refused;
	if (by_total)
		d->total_refused += refused;
	if (kv->cap_noted)
		return;
	kv->cap_noted = true;
	if (by_total) {
		vmic_conf_format_u64(VMIC_CONF_SIZE,
				     kvp_conf(vm_hostd(vm))->max_total_bytes,
				     size, sizeof(size));
		events_emit(vm_hostd(vm), vm_name(vm), "kvp", "kvp", NULL, NULL,
			    "the host keeps no more KVP data: all VMs "
			    "together are at [kvp] max-total-bytes (%s); %zu "
			    "records of the guest's %s pool kept out; "
			    "deleting records or raising max-total-bytes in "
			    "vmic-hostd.conf makes room",
			    size, refused, vmic_kvp_pool_display(pool));
		return;
	}
	vmic_conf_format_u64(VMIC_CONF_SIZE, lim.max_bytes, size, sizeof(size));
	events_emit(vm_hostd(vm), vm_name(vm), "kvp", "kvp", NULL, NULL,
		    "the guest's %s pool is at its limit (%zu keys, %s): %zu "
		    "records kept out%s",
		    vmic_kvp_pool_display(pool), lim.max_keys, size, refused,
		    pool == VMIC_KVP_GUEST
			    ? "; `vmic set VM kvp guest-max-keys=N "
			      "guest-max-bytes=SIZE` raises it"
			    : "");
}

/* Is the batch one the host takes now? Answers the guest when not. */
static bool batch_acceptable(struct kvp_vm *kv, const struct vmic_frame *f,
			     struct vmic_kvp_batch *b)
{
	struct vm *vm = kv->vm;
	char msg[200];

	if (!kv->active) {
		conn_send_error(vm, f, VMIC_E_NOT_READY,
				"kvp: the host has not started the exchange "
				"in this session (no IDENTITY yet)");
		return false;
	}
	if (kv->nwaits >= KVP_WAIT_MAX) {
		snprintf(msg, sizeof(msg),
			 "kvp: more than %d batches unanswered; wait for the "
			 "answers",
			 KVP_WAIT_MAX);
		conn_send_error(vm, f, VMIC_E_BUSY, msg);
		return false;
	}
	if (vmic_kvp_batch_decode(f->type, f->payload, f->length, b) < 0) {
		vm_bad_frame(vm);
		conn_send_error(vm, f, VMIC_E_MALFORMED,
				"kvp batch does not decode: a length, a "
				"string, a flag or the pool is invalid");
		return false;
	}
	if (b->pool != VMIC_KVP_GUEST && b->pool != VMIC_KVP_AUTO) {
		snprintf(msg, sizeof(msg),
			 "pool %u (%s) is not the guest's to write; a guest "
			 "writes pools 1 (Guest) and 2 (Auto)",
			 b->pool, vmic_kvp_pool_display(b->pool));
		conn_send_error(vm, f, VMIC_E_REFUSED, msg);
		return false;
	}
	return true;
}

int kvp_sync_on_frame(struct kvp_vm *kv, const struct vmic_frame *f)
{
	struct vmic_kvp_batch b;
	struct change_ctx ctx = { kv, 0 };
	struct kvp_limits lim;
	size_t refused = 0;
	bool by_total;
	int r;

	if (!vmic_frame_is_request(f) ||
	    (f->type != VMIC_KVP_SET && f->type != VMIC_KVP_DELETE))
		return 0; /* an ACK that answers nothing of ours */
	if (!batch_acceptable(kv, f, &b))
		return 0;
	ctx.pool = b.pool;
	lim = batch_limits(kv, b.pool, &by_total);
	r = kvp_inbox_apply(&kv->in[b.pool], &kv->pools[b.pool], &b, &lim,
			    on_guest_change, &ctx, &refused);
	kvp_account(kv);
	if (r < 0) {
		conn_send_error(kv->vm, f, VMIC_E_INTERNAL,
				"kvp: the host is out of memory");
		return 0;
	}
	kvp_daemon_of(kv->vm)->received += b.count;
	if (refused)
		note_refused(kv, b.pool, refused, by_total);
	if (b.type == VMIC_KVP_SET && (b.flags & VMIC_KVP_F_END))
		kv->guest_copy_us = vmic_realtime_us();
	kv->waits[kv->nwaits++] = (struct kvp_wait){
		.request_id = f->request_id,
		.refused = (uint16_t)MIN(refused, (size_t)UINT16_MAX),
		.pool = b.pool,
		.by_total = refused && by_total,
	};
	kvp_store_flush(kv);
	return 0;
}

void kvp_sync_answer(struct kvp_vm *kv, unsigned n)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_KVP_ACK_MAX_LEN];
	const struct kvp_settings *s = kvp_settings_of(kv->vm);

	n = MIN(n, kv->nwaits);
	for (unsigned i = 0; i < n; i++) {
		const struct kvp_wait *w = &kv->waits[i];
		struct vmic_kvp_ack a = {
			.status = w->refused ? VMIC_KVP_CAP : VMIC_KVP_OK,
			.refused = w->refused,
		};
		int len;

		if (w->by_total)
			snprintf(a.note, sizeof(a.note),
				 "the host keeps no more KVP data for all its "
				 "VMs together ([kvp] max-total-bytes)");
		else if (w->refused && w->pool == VMIC_KVP_AUTO)
			snprintf(a.note, sizeof(a.note),
				 "the host keeps at most %d Auto records",
				 KVP_AUTO_MAX_KEYS);
		else if (w->refused)
			snprintf(a.note, sizeof(a.note),
				 "the host keeps at most %u Guest records, "
				 "%llu bytes (guest-max-keys, guest-max-bytes)",
				 s->guest_max_keys,
				 (unsigned long long)s->guest_max_bytes);
		len = vmic_kvp_ack_encode(&a, buf + VMIC_HDR_SIZE,
					  VMIC_KVP_ACK_MAX_LEN);
		if (len < 0)
			continue;
		conn_send(kv->vm, buf,
			  vmic_frame_seal(buf, KVP_ID, VMIC_KVP_ACK,
					  VMIC_F_REPLY, w->request_id, 0,
					  (size_t)len));
	}
	memmove(kv->waits, kv->waits + n, (kv->nwaits - n) * sizeof(*kv->waits));
	kv->nwaits -= n;
}
