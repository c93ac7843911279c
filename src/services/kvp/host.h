/* SPDX-License-Identifier: MIT */
/*
 * The KVP service's host half, shared by its files:
 *
 *   host.c          the service entry: settings, per-VM state, the
 *                   lifecycle hooks, status, and the host's facts (pool 3)
 *   host-sync.c     the exchange with the guest: pools 3 and 0 out,
 *                   pools 1 and 2 in, both paced by acknowledgements
 *   host-store.c    the durable copy of pools 0, 1 and 2 in the store's
 *                   service_data (space = pool), written through the
 *                   store's writer thread, one transaction at a time per
 *                   VM for what the guest sends
 *   host-commands.c kvp-list, kvp-get, kvp-set, kvp-delete, kvp-watch
 *
 * Pool 0 (External) is the host's: durable, changed only by commands, and
 * copied to the guest at the start of every session of the service. Pools
 * 1 (Guest) and 2 (Auto) are what the guest sent last: kept (durably too)
 * and shown as stale while no session is up. Pool 3 (AutoExternal) is
 * made here from the VM's registration.
 */
#ifndef VMIC_SERVICES_KVP_HOST_H
#define VMIC_SERVICES_KVP_HOST_H

#include "host/hostd.h"
#include "services/kvp/kvp.h"
#include "services/kvp/sync.h"
#include "services/kvp/table.h"

#define KVP_ID VMIC_SVC_KVP
/* Guest requests the host holds unanswered (their commit is pending)
 * before it answers `busy`: twice the window a guest should use. */
#define KVP_WAIT_MAX (2 * VMIC_KVP_WINDOW)
/* The Auto pool holds facts, a few dozen at most. */
#define KVP_AUTO_MAX_KEYS 64
#define KVP_AUTO_MAX_BYTES (64 * 1024)
/* How long the guest may take to answer a batch. */
#define KVP_ANSWER_TIMEOUT_MS 60000
/* A VM's writes of what its guest sent: at most one transaction at a
 * time, and at least this far apart. */
#define KVP_STORE_GAP_MS 50
#define KVP_VM_ID_LEN 36

/* Per-VM settings ([kvp] in hostd.conf, `vmic set VM kvp KEY=VALUE`). */
struct kvp_settings {
	unsigned external_max_keys;
	unsigned guest_max_keys;
	uint64_t guest_max_bytes;
};

/* A guest request answered once its records are committed. */
struct kvp_wait {
	uint32_t request_id;
	uint16_t refused;
	uint8_t pool;
};

struct kvp_watcher;

struct kvp_vm {
	struct vm *vm;
	struct kvp_table pools[VMIC_KVP_POOLS];
	struct kvp_outbox out[VMIC_KVP_POOLS]; /* 3 and 0 */
	struct kvp_inbox in[VMIC_KVP_POOLS];   /* 1 and 2 */
	/* the session of the service (host-sync.c) */
	bool active;        /* IDENTITY went out this session */
	bool identity_due;
	bool guest_refused; /* the guest answered an error: stop sending */
	bool timed_out;     /* a batch went unanswered: start over once the
			       others are given up too */
	char refusal[200];  /* its text, sanitised */
	uint32_t epoch;     /* new at every start and end of a session */
	unsigned ninflight; /* our requests unanswered */
	uint32_t ids[2 * VMIC_KVP_WINDOW]; /* their ids, to cancel them */
	unsigned nids;
	uint32_t copy_end_id;  /* the request that ends pool 0's copy */
	/* A copy of pool 0 a session's end cut short makes the next one
	 * wait: copy_backoff_ms doubles per cut, 0 once one is through. */
	unsigned copy_backoff_ms;
	uint64_t copy_after_us; /* no copy of pool 0 starts before this */
	struct htimer copy_timer;
	uint64_t copy_start_us;
	int64_t copy_ms;       /* how long the last one took, -1: none */
	size_t copy_records;
	struct kvp_wait waits[KVP_WAIT_MAX];
	unsigned nwaits;
	bool cap_noted;     /* this session's cap event is out */
	uint64_t refused;   /* records the bounds kept out, since start */
	int64_t guest_copy_us; /* when the guest's last full copy ended */
	/* host-store.c */
	struct kvp_table dirty[VMIC_KVP_POOLS];   /* 1, 2: not stored yet */
	struct kvp_table storing[VMIC_KVP_POOLS]; /* in the transaction */
	unsigned waits_storing; /* waits[0..n) answered at its commit */
	bool store_busy;
	bool store_failed_noted;
	uint64_t store_next_us; /* no transaction before this */
	struct htimer store_timer;
	/* host-commands.c */
	size_t sets_pending; /* new External keys of sets not yet committed */
	struct kvp_watcher *watchers;
};

struct kvp_daemon {
	char host[256];      /* this host's name (gethostname) */
	uint64_t sent, received, refused;
};

/* host.c */
struct kvp_vm *kvp_of(const struct vm *vm);
const struct kvp_settings *kvp_settings_of(const struct vm *vm);
struct kvp_daemon *kvp_daemon_of(const struct vm *vm);
/* The VM's id: stable for one registration (its name and time of
 * `vmic add`), a UUID of 36 characters, into buf (37 bytes). */
void kvp_vm_id(const struct vm *vm, char *buf);
/* Pool 3 made again from the VM's registration and this host. */
void kvp_facts_refresh(struct kvp_vm *kv);
/* A key of pool changed (now NULL: deleted): tell the watchers. */
void kvp_changed(struct kvp_vm *kv, unsigned pool, const char *key,
		 size_t klen, const struct kvp_rec *now);

/* host-sync.c */
/* Ready the exchange's timer (attach); close it (detach). */
void kvp_sync_init(struct kvp_vm *kv);
void kvp_sync_close(struct kvp_vm *kv);
/* The session of the service starts (send IDENTITY, copy pools 3 and 0)
 * or ends. */
void kvp_sync_up(struct kvp_vm *kv);
void kvp_sync_down(struct kvp_vm *kv);
/* Send what is due while the window has room. */
void kvp_sync_pump(struct kvp_vm *kv);
/* A key of pool 0 changed by a command: send it. */
void kvp_sync_external_changed(struct kvp_vm *kv, const char *key,
			       size_t klen);
/* A SET or DELETE from the guest; < 0 closes the link. */
int kvp_sync_on_frame(struct kvp_vm *kv, const struct vmic_frame *f);
/* Answer the guest requests whose records are committed (the first n of
 * waits). */
void kvp_sync_answer(struct kvp_vm *kv, unsigned n);

/* host-store.c */
void kvp_store_init(struct kvp_vm *kv);
void kvp_store_close(struct kvp_vm *kv);
void kvp_store_free(struct kvp_vm *kv);
/* A key of pool 1 or 2 changed: store it with the next transaction. */
void kvp_store_note(struct kvp_vm *kv, unsigned pool, const char *key,
		    size_t klen);
/* Start the next transaction of what the guest sent, when due. */
void kvp_store_flush(struct kvp_vm *kv);

/* host-commands.c */
#define KVP_NCOMMANDS 5
extern const struct ctl_command kvp_commands[KVP_NCOMMANDS];
/* The VM goes away: end its watches. */
void kvp_watch_end_all(struct kvp_vm *kv, const char *why);

#endif
