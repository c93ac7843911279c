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
 *   host-pools.c    where a VM's pools 0..2 are: in memory while
 *                   something needs them (a session, a write), else only
 *                   in the store with their sizes kept; loading them off
 *                   the loop; the daemon-wide total of stored bytes
 *   host-read.c     kvp-get and kvp-list of pools that are only in the
 *                   store, read off the loop
 *   host-limit.c    each client user's rate of writes
 *
 * Pool 0 (External) is the host's: durable, changed only by commands, and
 * copied to the guest at the start of every session of the service. Pools
 * 1 (Guest) and 2 (Auto) are what the guest sent last: kept (durably too)
 * and shown as stale while no session is up. Pool 3 (AutoExternal) is
 * made here from the VM's registration.
 */
#ifndef VMIC_SERVICES_KVP_HOST_H
#define VMIC_SERVICES_KVP_HOST_H

#include "host/service-api.h"
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
/* Pools nothing needs stay in memory this long (a quick reconnect does
 * not read them again), then only in the store. */
#define KVP_UNLOAD_MS 5000
/* A load that failed is tried again this much later while a session
 * waits for it. */
#define KVP_LOAD_RETRY_MS 1000
/* A client may write this many seconds of its rate at once. */
#define KVP_WRITE_BURST_S 10
/* The pools kept in the store (3 is made from the registration). */
#define KVP_STORED_POOLS (VMIC_KVP_AUTO + 1)

/* Per-VM settings ([kvp] in hostd.conf, `vmic set VM kvp KEY=VALUE`). */
struct kvp_settings {
	unsigned external_max_keys;
	unsigned guest_max_keys;
	uint64_t guest_max_bytes;
};

/* Daemon-wide keys of [kvp] (hostd.conf only, not per VM). */
struct kvp_daemon_conf {
	uint64_t max_total_bytes;  /* stored keys and values, all VMs */
	unsigned client_write_rate; /* records a second, per client user */
	uint64_t client_write_bytes; /* bytes a second, per client user */
};

/* A guest request answered once its records are committed. */
struct kvp_wait {
	uint32_t request_id;
	uint16_t refused;
	uint8_t pool;
	bool by_total; /* the daemon's total kept them out */
};

/* Where a VM's pools 0..2 are (host-pools.c). */
enum kvp_where {
	KVP_IN_MEMORY, /* kv->pools; the store has the same */
	KVP_LOADING,   /* being read from the store, off the loop */
	KVP_IN_STORE,  /* only there; kv->stored has their sizes */
};

struct kvp_size {
	size_t keys;
	uint64_t bytes;
};

/* Something waiting for a VM's pools to be in memory. */
struct kvp_vm;
typedef void (*kvp_ready_fn)(struct kvp_vm *kv, void *ud, int err);
struct kvp_need;

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
	/* host-pools.c */
	enum kvp_where where;
	struct kvp_size stored[KVP_STORED_POOLS]; /* while not in memory */
	unsigned holds;      /* users that need the pools in memory */
	bool session_holds;  /* the service's session is one of them */
	struct kvp_need *needs, **needs_tail; /* waiting for a load */
	struct htimer pools_timer; /* drop them, or load again */
	bool load_failed_noted;
	uint64_t counted;    /* its bytes in the daemon's total */
	bool gone;           /* detached: counts nothing, loads nothing */
};

/* A client user's token buckets (host-limit.c), kept as the time each
 * would be empty at (GCRA), in nanoseconds of the daemon's clock. */
struct kvp_client {
	uid_t uid;
	uint64_t records_tat, bytes_tat;
};

struct kvp_daemon {
	char host[256];      /* this host's name (gethostname) */
	uint64_t sent, received, refused;
	/* host-pools.c: bytes counted against [kvp] max-total-bytes, and
	 * what sets not committed yet add to them */
	uint64_t total, total_pending;
	uint64_t total_refused; /* records and sets the total kept out */
	/* host-limit.c */
	struct kvp_client *clients;
	size_t nclients, clients_cap;
	uint64_t rate_refused;
};

/* host.c */
struct kvp_vm *kvp_of(const struct vm *vm);
const struct kvp_settings *kvp_settings_of(const struct vm *vm);
struct kvp_daemon *kvp_daemon_of(const struct vm *vm);
const struct kvp_daemon_conf *kvp_conf(const struct hostd *h);
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

/* host-pools.c */
/* A new VM: empty pools, in memory (nothing to read). */
void kvp_pools_init(struct kvp_vm *kv);
/* Start-up: the store holds keys/bytes of pool `space` for the VM; its
 * pools stay there until needed. */
void kvp_pools_sizes(struct kvp_vm *kv, unsigned space, uint64_t keys,
		     uint64_t bytes);
/* The VM is detached: waiters hear -ECANCELED, it leaves the total. */
void kvp_pools_close(struct kvp_vm *kv);
static inline bool kvp_pools_in_memory(const struct kvp_vm *kv)
{
	return kv->where == KVP_IN_MEMORY;
}
/*
 * Hold the pools in memory until kvp_pools_release: ready(kv, ud, 0)
 * runs once they are (at once when they are already), or with -errno
 * when they cannot be read (-ECANCELED: the VM goes or the daemon
 * stops); the hold is kept either way.
 */
void kvp_pools_need(struct kvp_vm *kv, kvp_ready_fn ready, void *ud);
/* Hold pools that are in memory now. */
void kvp_pools_hold(struct kvp_vm *kv);
void kvp_pools_release(struct kvp_vm *kv);
/* The service's session wants them (kvp_sync_up once they are in
 * memory) or ends (kvp_sync_down). */
void kvp_pools_session_up(struct kvp_vm *kv);
void kvp_pools_session_down(struct kvp_vm *kv);
/* Something that kept them busy is done: drop them once idle. */
void kvp_pools_idle_check(struct kvp_vm *kv);
/* A pool's keys and bytes, wherever it is. */
size_t kvp_pool_keys(const struct kvp_vm *kv, unsigned pool);
uint64_t kvp_pool_bytes(const struct kvp_vm *kv, unsigned pool);
/* Take kv's bytes into the daemon's total again after a change. */
void kvp_account(struct kvp_vm *kv);
/* Bytes the daemon may still store under [kvp] max-total-bytes. */
uint64_t kvp_total_room(const struct hostd *h);
/* VMs whose pools are in memory now. */
size_t kvp_pools_resident(const struct hostd *h);

/* host-read.c */
/* {"pool": .., "key": .., "value": ..} of one record. */
json_t *kvp_record_json(unsigned pool, const char *key, size_t klen,
			const char *value, size_t vlen);
/* Reply not-found for key (pool -1: any). */
void kvp_reply_not_found(struct ctl_request *rq, const struct vm *vm,
			 const char *key, int pool);
/* kvp-get of pools 0..2 while they are only in the store (pool -1:
 * the first that has it, then pool 3). Replies later. */
void kvp_read_get(struct ctl_request *rq, struct vm *vm, const char *key,
		  size_t klen, int pool);
/* The records of pools 0..2 (or one: only) from the store for a
 * streamed kvp-list, a page at a time: next appends the items of one
 * page (or answers CTL_STREAM_WAIT and wakes rq when it has one). */
struct kvp_store_list;
struct kvp_store_list *kvp_store_list_new(struct ctl_request *rq,
					  struct vm *vm, int only);
enum ctl_stream_next kvp_store_list_next(struct kvp_store_list *sl,
					 struct ctl_text *out);
void kvp_store_list_free(struct kvp_store_list *sl);

/* host-limit.c */
/*
 * May the client of rq write `records` records of `bytes` bytes now?
 * Root and the daemon's own user may; another user within [kvp]
 * client-write-rate and client-write-bytes, spent now. When not,
 * replies `limit` saying when to try again, and returns false.
 */
bool kvp_rate_take(struct ctl_request *rq, size_t records, uint64_t bytes);
/* At exit. */
void kvp_rate_free(struct kvp_daemon *d);

#endif
