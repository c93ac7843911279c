/* SPDX-License-Identifier: MIT */
/*
 * vmic-hostd, the host daemon.
 *
 * One struct hostd owns the libuv loop and everything on it: the
 * configuration, the VM registry, the pending event batch and the control
 * socket. Each registered VM is a struct vm holding its settings, its one
 * connection (struct conn) and the host half of every service. Nothing
 * blocks on one VM: connects, reads, writes and timers all run on the
 * loop, and a VM's trouble only ever closes that VM's connection.
 *
 * Nothing blocks the loop either: the SQLite store is written by one
 * writer thread (store-writer.c) and read by libuv's thread pool
 * (store-read.c); the loop hands them jobs and hears back through a
 * uv_async_t. The in-memory registry is authoritative; the store mirrors
 * it, and a command's change is applied to memory once it is committed.
 *
 * This header is the map of the daemon: prototypes are grouped by the
 * file that implements them. It is the core's own: services include
 * service-api.h (which this header includes), where the core's structs
 * are incomplete types and everything a service may do is declared.
 */
#ifndef VMIC_HOSTD_H
#define VMIC_HOSTD_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "clock.h"
#include "common/config.h"
#include "common/macro.h"
#include "host/service-api.h"
#include "proto/proto.h"
#include "proto/requests.h"
#include "proto/session.h"
#include "transport/channel.h"
#include "transport/link.h"
#include "transport/transport.h"

#define HOSTD_DEFAULT_CONFIG "/etc/vmic/vmic-hostd.conf"
#define HOSTD_SOFTWARE "vmic-hostd " VMIC_VERSION

#define CHANNEL_URI_MAX (VMIC_PATH_MAX + 32)
#define POWER_URI_MAX 1024
#define ERROR_TEXT_MAX 160

struct hostd_config {
	char state_dir[256];
	char socket[VMIC_PATH_MAX + 1];
	char socket_group[64];
	int log_level;
	bool syslog;
	unsigned max_vms;
	unsigned connect_timeout_ms;
	unsigned retry_min_ms;
	unsigned retry_max_ms;
	unsigned session_burst;       /* sessions a guest may start at once */
	unsigned session_interval_ms; /* and then one per this */
	unsigned events_keep;
	uint64_t events_max_size;  /* bytes of vmic.db; 0: no bound */
	uint64_t events_max_age_s; /* seconds; 0: no bound */
	unsigned events_vm_rate;   /* events per second one VM may cause */
	unsigned events_vm_burst;  /* and how many at once */
	/* [access]: what members of the socket group may name */
	char group_channels[1024];
	char group_power_off[1024];
	unsigned group_max_vms; /* they may add VMs while fewer are there */
	/* [control] */
	unsigned max_unread;        /* bytes a client may leave unread */
	uint64_t max_unread_total;  /* bytes all clients may leave unread */
	unsigned max_clients;       /* connections at once */
	unsigned max_clients_per_uid; /* connections of one user at once */
	unsigned max_ops;           /* operations running at once */
	unsigned max_ops_per_vm;    /* of them, on one VM */
	/* [connection] */
	unsigned max_streams;       /* streams one VM's link holds at once */
	/* [libvirt] uri: comma-separated; each `uri =` line adds (libvirt.c) */
	char libvirt_uris[2048];
	/* Each service's settings as hostd.conf's [NAME] sections give
	 * them: the defaults of a VM without its own (NULL: no settings). */
	void *svc_defaults[VMIC_SVC_COUNT];
	/* Each service's daemon-wide keys of [NAME] (NULL: none). */
	void *svc_daemon[VMIC_SVC_COUNT];
};

/* docs/control.md connection states, in this order. */
enum conn_state {
	CONN_CONNECTING,
	CONN_HANDSHAKE,
	CONN_CONNECTED,
	CONN_RETRYING,
	CONN_CLOSED, /* the VM is being removed or the daemon exits */
};

struct conn {
	enum conn_state state;
	int64_t since_us;
	char last_error[ERROR_TEXT_MAX];
	unsigned attempts;  /* failed attempts since the last session */
	unsigned retry_ms;  /* next backoff delay */
	unsigned hello_ms;  /* next hello resend delay */
	uint64_t retry_at_us; /* monotonic time of the next attempt */
	struct vmic_connector *connector;
	struct vmic_link *link; /* while a stream is open */
	struct vmic_session session;
	uv_timer_t timer; /* retry, or hello resend during the handshake */
	uint64_t bytes_in, bytes_out; /* of the last link, kept after close */
	char agent[VMIC_SOFTWARE_MAX + 1];
	uint64_t stale_frames; /* dropped before the session was up */
	uint64_t bad_frames;   /* failed the message table check */
	uint64_t unexpected_answers; /* answers nobody waited for */
	bool contact;          /* a session was up since add or start */
	bool bad_frame_reported;
	unsigned resyncs; /* decoder hunts since the last session */
	uint64_t sessions; /* established since the VM was added or loaded */
	/* The sessions a guest starts (new nonces): a token bucket kept as
	 * the time it is full again, and the hold beyond it, during which
	 * its hellos go unanswered. */
	uint64_t session_tat_us;
	uint64_t hold_until_us; /* monotonic; 0 while not held */
	unsigned hold_ms;       /* the last hold; doubles while it goes on */
	bool hold_noted;        /* this run of holds has its event */
	uint64_t hold_noted_us; /* when the last such event went out */
};

struct guest_info {
	char hostname[256];
	char os_name[256];
	char kernel[256];
	char arch[64];
	int64_t boot_us; /* realtime, from the agent's uptime */
};


/*
 * One event; the strings live in the same allocation. The writer thread
 * reads an event it was handed, never changes it; refs and next belong
 * to the loop.
 */
struct event {
	struct event *next;
	int refs;     /* the batch or transaction, the recent-events ring */
	int64_t id;
	int64_t time_us;
	uint64_t seq; /* publication order, 0 until published */
	const char *vm, *service, *kind, *from, *to; /* NULL when none */
	const char *message;
};

/* One service of one VM, as the core keeps it. */
struct vm_service {
	void *state;    /* the service's own, from its attach() */
	void *settings; /* effective settings (its key table's struct) */
	uint32_t own_keys; /* bit i: key i set for this VM, not inherited */
	uint8_t primary;   /* last reported primary status, for events */
};

/*
 * A VM's event rate limit (events-limit.c): a token bucket kept as time,
 * and what it held back since its last suppression record.
 */
struct ev_limit {
	int64_t credit_us;    /* up to burst x cost; an event costs 1 s / rate;
				 below 0 after a record paid on credit */
	uint64_t last_us;     /* monotonic time of the last refill, 0: new */
	uint64_t held;        /* suppressed since the last record */
	uint64_t first_us;    /* monotonic time of the first of those */
	uint64_t recent_us;   /* and of the latest */
	uint64_t total;       /* suppressed since the VM was loaded */
	char kinds[96];       /* their kinds, "connection, heartbeat" */
};

/* The answers awaited from the guest (requests.c). */
struct requests {
	struct vmic_requests t;
	struct htimer timer; /* earliest deadline */
};

struct vm {
	struct hostd *h;
	char name[VM_NAME_MAX + 1];
	char channel_uri[CHANNEL_URI_MAX];
	struct vmic_channel channel;
	char *power_off; /* NULL when none */
	uint32_t enabled_mask; /* host settings, bit = service id */
	int64_t created_us;
	struct conn conn;
	struct requests req;
	struct guest_info *info; /* NULL until the agent sent it */
	struct vm_service svc[VMIC_SVC_COUNT];
	struct ev_limit evlim;
	int refs; /* registry + handles and operations still pending */
	unsigned nops; /* control operations running on it (ctl-op.c) */
	bool removed;
	bool quiet; /* a stop is taking the VM down: silence is expected */
	/* The `list` summary as JSON text, kept while gen stays the same. */
	uint32_t gen;
	uint32_t summary_gen;
	char *summary;
	size_t summary_len;
};

/* The SQLite state (store*.c); the parts are private to those files. */
struct store_db;
struct store_writer;
struct store_readers;
struct store {
	char dir[256];
	char path[256 + 16];
	struct store_db *db;     /* the writer's connection */
	bool reserved;           /* the disk reserve was made at start */
	struct store_writer *writer;
	struct store_readers *readers;
};

/* A parked mutating control command (ctl-commands.c). */
struct ctl_parked;

struct ctl;

#define EVENTS_RING 4096 /* published events kept for --follow catch-up */

struct hostd {
	uv_loop_t *loop;
	struct hclock clock; /* fake in unit tests, see clock.h */
	struct hostd_config cfg;
	uv_signal_t sig_term, sig_int, sig_hup;
	struct store store;
	struct vm **vms; /* sorted by name */
	size_t nvms, vms_cap;
	struct ctl *ctl;
	/* events.c */
	struct event *ev_head, *ev_tail; /* the batch, not yet submitted */
	size_t ev_pending;  /* in the batch */
	size_t ev_inflight; /* in batches the writer has not finished */
	int64_t ev_next_id;
	uint64_t ev_seq;    /* events published */
	struct event *ev_ring[EVENTS_RING]; /* by seq % EVENTS_RING */
	uint64_t ev_dropped;    /* not stored: backlog full, disk full */
	uint64_t ev_suppressed; /* held back by the per-VM limit */
	bool ev_drop_noted;     /* the current run of drops is logged */
	uv_timer_t ev_timer;
	/* events-limit.c */
	uv_timer_t ev_limit_timer; /* writes suppression records */
	unsigned ev_limited;       /* VMs holding suppressed events */
	/* ctl-commands.c: mutating commands run one at a time */
	bool cmd_busy;
	struct ctl_parked *cmd_parked, *cmd_parked_tail;
	uint64_t fd_limit; /* open files we may have (one per VM) */
	bool fd_warned;
	/* ctl-op.c: the control operations running, and how many */
	struct ctl_op *ops;
	unsigned nops;
	/* libvirt.c: the libvirt source, NULL when not following one */
	struct lv *lv;
	/* each service's daemon-wide state, from its daemon_start() */
	void *svc_state[VMIC_SVC_COUNT];
	bool stopping;
};

/* hostd-config.c */
/* Every key at its documented default; -ENOMEM. */
int hostd_config_defaults(struct hostd_config *c);
/* Free the service defaults hostd_config_defaults allocated. */
void hostd_config_free(struct hostd_config *c);
/* The config file's parts: the daemon's keys, then each service's
 * settings (their defaults) and daemon-wide keys. At most
 * HOSTD_CONF_PARTS; the count. */
#define HOSTD_CONF_PARTS (2 * VMIC_SVC_COUNT + 1)
size_t hostd_config_parts(struct hostd_config *c,
			  struct vmic_conf_part *parts);
/* "[section] key" -> field of struct hostd_config, for config.h. */
extern const struct vmic_conf_table hostd_conf_table;
/* Checks across keys; logs and returns -EINVAL when they conflict. */
int hostd_config_check(const struct hostd_config *c, const char *path);
/* Take a freshly loaded configuration (SIGHUP): everything but the keys
 * that cannot change at run time, which are named in a log line; VMs
 * that inherit service settings get the new defaults. next is left with
 * nothing to free. */
void hostd_config_apply(struct hostd *h, struct hostd_config *next);

/* store.c: the database file, its schema, start-up */
/*
 * Open (creating when needed) state_dir/vmic.db, mode 0640 with its -wal
 * and -shm, upgrade its schema, set up the disk reserve; on the loop,
 * before store_start. Logs failures.
 */
int store_open(struct hostd *h);
/* Close every connection; after store_stop, safe on a store never
 * opened. */
void store_close(struct hostd *h);
/* Create a struct vm for every registered VM, with its settings (start-up,
 * before store_start). */
int store_load_vms(struct hostd *h);
/* Highest event id stored, 0 when none (ids continue from it). */
int64_t store_events_max_id(struct hostd *h);

/* store-txn.c: a transaction, built on the loop, committed by the
 * writer (store_txn_new, store_txn_data_set, store_txn_result and
 * store_txn_free are in service-api.h) */
/* Changes, copied into t; -ENOMEM. vm_update's power_off may be NULL. */
int store_txn_vm_insert(struct store_txn *t, const struct vm *vm);
int store_txn_vm_update(struct store_txn *t, const char *name,
			const char *channel, const char *power_off);
int store_txn_vm_delete(struct store_txn *t, const char *name);
int store_txn_service_set(struct store_txn *t, const char *vm,
			  uint8_t service, bool enabled);
/* The values of the keys in `mask` of a service's settings, as
 * vmic_conf_format spells them. */
int store_txn_settings_set(struct store_txn *t, const char *vm,
			   uint8_t service, const void *settings,
			   uint32_t mask);
/* Append events (a list, taking the caller's reference of each). */
void store_txn_add_events(struct store_txn *t, struct event *list);
/* Take the events back (a list; the caller owns the references). */
struct event *store_txn_take_events(struct store_txn *t);
size_t store_txn_event_count(const struct store_txn *t);

/* store-writer.c: the one thread that writes the database */
/* Start the writer thread (it prunes in the background); -errno. */
int store_start(struct hostd *h);
/* New bounds for the event log (after a config change). */
void store_set_limits(struct hostd *h);
/* The writer's numbers for `stats`: members of obj. */
void store_stats_json(struct hostd *h, json_t *obj);
/* True while the disk is full: events are dropped, not stored. */
bool store_disk_full(struct hostd *h);
/* Let every transaction finish (their done callbacks run), stop the
 * thread. At exit, after the loop ran; safe when never started. */
void store_stop(struct hostd *h);

/* store-read.c: reads of the event log, off the loop */
struct events_read {
	/* in: what to read */
	char vm[VM_NAME_MAX + 1]; /* "" for every VM */
	int64_t since_us;
	int64_t after_id, upto_id; /* after_id < id <= upto_id */
	unsigned limit;            /* the newest `limit`; 0 for all */
	/* Paged reads: at most `page` rows per read, oldest first; each read
	 * moves after_id past what it returned and sets `more`. The first
	 * finds where the newest `limit` begin (`windowed`). 0: one read. */
	unsigned page;
	bool windowed;
	bool more;
	/* out: the events as JSON objects, oldest first, each followed by
	 * a comma, appended after `prefix` bytes already in text */
	char *text;
	size_t len, cap;
	size_t count;
	int err;
	char errmsg[256];
};
typedef void (*events_read_fn)(struct hostd *h, struct events_read *r,
			       void *ud);
/*
 * Run r on the thread pool with a read-only connection (at most two at
 * a time; more wait in order); done on the loop. r stays the caller's.
 */
void store_read_events(struct hostd *h, struct events_read *r,
		       events_read_fn done, void *ud);
/* Append n bytes to r->text, growing it; -ENOMEM. */
int events_read_append(struct events_read *r, const char *s, size_t n);


/* vm.c */
/* A new VM with its services attached (not registered yet); NULL. */
struct vm *vm_new(struct hostd *h, const char *name);
/* Insert into the registry (sorted); -EEXIST, -ENOMEM. */
int vm_register(struct hostd *h, struct vm *vm);
/* Binary search by name; NULL when not registered. */
struct vm *vm_find(struct hostd *h, const char *name);
/* Descriptors beyond one per VM: clients, the database, QMP sockets. */
#define VM_FD_SLACK 1024
/* Warn once when the VMs come close to the open file limit: more could
 * not connect. */
void vm_fd_room(struct hostd *h);
/* Index in h->vms of the first VM whose name sorts after `name` (a
 * cursor that survives VMs added or removed meanwhile). */
size_t vm_first_after(const struct hostd *h, const char *name);
/* Unregister, detach the services, stop everything, free once the last
 * handle is closed. */
void vm_destroy(struct vm *vm, enum detach_reason why);
/* NULL when fine, else a sentence why the name is not valid. */
const char *vm_name_invalid(const char *name);
/* Parse and keep a host-side channel; -EINVAL with a sentence in err. */
int vm_channel_parse(const char *uri, struct vmic_channel *ch, char *err,
		     size_t errsz);
/* -EINVAL with a sentence when uri is not qmp:PATH or exec:COMMAND. */
int vm_power_uri_check(const char *uri, char *err, size_t errsz);

/* conn.c */
/* Idle connection state and its timer (part of vm_new). */
void conn_init(struct vm *vm);
/* Start connecting now (new VM, changed channel, daemon start). */
void conn_start(struct vm *vm);
/* Drop the current connection (if any) and connect again at once. */
void conn_restart(struct vm *vm);
/* Close everything for good (VM removed, daemon exit). */
void conn_shutdown(struct vm *vm);

/* The docs/control.md name: "connecting", "handshake", ... */
const char *conn_state_name(enum conn_state s);
/* The host's service switches changed: tell the guest. */
void conn_send_services(struct vm *vm);
/* Milliseconds until the next attempt, -1 when none is scheduled. */
int64_t conn_next_retry_ms(const struct vm *vm);
/* Milliseconds until the guest's hellos are answered again, -1 when they
 * are not held. */
int64_t conn_hold_ms(const struct vm *vm);
/* A stop finished with the VM off: the next silence is No Contact. */
void conn_forget_contact(struct vm *vm);

/* requests.c: one tracker of the answers every service waits for */
/* Tracker state of a new VM (part of vm_new). */
void requests_init(struct vm *vm);
/* A fresh request id (never 0) for a message to the guest, from the
 * tracker's counter; a new connection counts from 1 again
 * (requests_restart_ids). */
uint32_t conn_request_id(struct vm *vm);
/* A new connection: ids count from 1 (nothing waits any more). */
void requests_restart_ids(struct vm *vm);
/* A frame with the REPLY flag: true when a waiter took it. */
bool requests_deliver(struct vm *vm, const struct vmic_frame *f);
/* Every waiter gets err (-ECONNRESET, -ECANCELED); the list is empty. */
void requests_fail_all(struct vm *vm, int err);
/* VM destroyed: fail all with -ECANCELED, close the timer. */
void requests_close(struct vm *vm);

/* access.c */
/* uri matches one of the comma-separated patterns: globs, but exec:
 * ones exactly, with {vm} for the VM's name (vm may be NULL). */
bool access_pattern_match(const char *patterns, const char *vm,
			  const char *uri);
/* May the request's peer name this channel / power backend (of VM vm)?
 * When not, replies `forbidden` (saying what [access] allows) and
 * returns false. (`permission-denied` is the code of a peer that may not
 * use the socket at all: ctl.c.) */
bool access_check_channel(struct ctl_request *rq, const char *uri);
bool access_check_power(struct ctl_request *rq, const char *vm,
			const char *uri);
/* May the request's peer register one more VM ([access] group-max-vms
 * for members of the socket group)? When not, replies `limit` and
 * returns false. */
bool access_check_vm_count(struct ctl_request *rq);

/* guest-info.c */
/* VMIC_CTL_INFO from the guest; 0, or < 0 to close the link. */
int guest_info_on_frame(struct vm *vm, const struct vmic_frame *f);

/* host-services.c: the table, the status rules, the lifecycle */
/* The host half of a service, NULL when this build has none. */
const struct host_service *host_service_get(uint8_t id);
/* Per-daemon start and stop of every service; -errno. */
int services_daemon_start(struct hostd *h);
void services_daemon_stop(struct hostd *h);
/* Settings from the daemon defaults, then attach(); -errno. */
int services_attach(struct vm *vm);
/* detach() of every service (VM removed, daemon exit). */
void services_detach(struct vm *vm, enum detach_reason why);
/* release() and free the settings (last reference). */
void services_release(struct vm *vm);
/* Session up: on_up of every enabled service. */
void services_up(struct vm *vm);
/* Session gone: on_down of every enabled service. */
void services_down(struct vm *vm);
/* Every service's on_notice. */
void services_notify(struct vm *vm, struct notice *n);
/* Route a checked, non-control frame that is no answer to its service. */
int services_dispatch(struct vm *vm, const struct vmic_frame *f);
/* Start-up: loaded() of each service, then take the current statuses as
 * known, without events. */
void services_init_status(struct vm *vm);
/* Emit service-status events for services whose status changed. */
void services_refresh(struct vm *vm);
/* Switch a service at run time (after the store was updated). */
void service_switch(struct vm *vm, uint8_t id, bool enabled);
/* "OK", "No Contact", ...; "" for SVC_NONE. */
const char *svc_primary_name(enum svc_primary p);
/* A control command of some service named exactly `name`, or NULL. */
const struct ctl_command *services_command_find(const char *name);
/* Append ", name" of every service command to buf (at off, see
 * vmic_appendf); returns the new end. */
size_t services_command_names(char *buf, size_t n, size_t off);
/* Add every service's members to a VM summary / the daemon stats. */
void services_summary_json(const struct vm *vm, json_t *summary);
void services_stats_json(struct hostd *h, json_t *stats, bool reset);

/* settings.c: per-VM service settings through the services' key tables */
/* The service's settings as JSON: {"key": "value", ...} and the keys
 * that follow the daemon's default in *inherited; NULL without any. */
json_t *settings_json(const struct vm *vm, uint8_t id, json_t **inherited);
/*
 * Apply {"key": value, ...} to a copy of the service's settings: on
 * success *out is the new struct (caller frees) and *mask the keys set.
 * -EINVAL with a sentence in err naming the key and what it accepts;
 * -EPERM when a client that is not privileged asks for more than
 * hostd.conf allows of a key with a cost (the sentence says how much).
 */
int settings_parse(const struct vm *vm, uint8_t id, json_t *values,
		   bool privileged, void **out, uint32_t *mask, char *err,
		   size_t errsz);
/* "interval 1s -> 2s; threshold 3 -> 5" of the keys in mask. */
void settings_describe(uint8_t id, const void *old, const void *now,
		       uint32_t mask, char *buf, size_t n);
/* New daemon defaults (a reload): the keys the VM inherits take them;
 * true when one changed. */
bool settings_rebase(struct vm *vm, uint8_t id, const void *defaults);
/* One stored value (start-up): applied, or logged and ignored. */
void settings_load(struct vm *vm, const char *service, const char *key,
		   const char *value);

/* events.c */
/* Timers; ids continue after the highest stored one. */
void events_init(struct hostd *h);
/*
 * An event a command causes, for its transaction: it gets its id now and
 * is published (logged, followed) by events_txn_done once the
 * transaction committed, or dropped if it failed. No rate limit: the
 * commands are the operator's. NULL without memory.
 */
struct event *events_prepare(struct hostd *h, const char *vm,
			     const char *service, const char *kind,
			     const char *from, const char *to,
			     const char *fmt, ...) PRINTF_LIKE(7, 8);
/* Publish and store an event from events_prepare, past the rate limit
 * (the suppression records are paid for by the limit itself). */
void events_emit_event(struct hostd *h, struct event *e);
/* Publish the events of a committed command transaction, or drop them. */
void events_txn_done(struct hostd *h, struct store_txn *t);
/* Submit the batch to the writer now. */
void events_flush(struct hostd *h);
/* Call cb on the loop once every event published so far is committed
 * (or dropped): the writer's queue is a barrier. */
void events_sync(struct hostd *h, void (*cb)(struct hostd *h, void *ud),
		 void *ud);
/* Append `,`-terminated JSON of the published events with seq > seq and
 * id > after_id matching r's filter to r->text: 1; 0 when some of them
 * already left the ring (read them from the store instead), -ENOMEM. */
int events_recent(struct hostd *h, uint64_t seq, struct events_read *r);
/* The `events` member of `stats`. */
json_t *events_stats_json(struct hostd *h);
/* Submit the batch, close the timers (at exit; again after the loop). */
void events_close(struct hostd *h);
/* Drop a reference. */
void event_unref(struct event *e);
/* Drop every reference of a list. */
void events_unref_list(struct event *e);

/* events-limit.c: each VM's events pass a token bucket */
/*
 * May vm's event of `kind` be published? Spends a token; without one the
 * event is counted (and its kind noted) for the VM's next suppression
 * record, written once no event was held back for a second, or a minute
 * after the first, and itself paid with a token.
 */
bool events_limit_pass(struct hostd *h, struct vm *vm, const char *kind);
/* Write vm's suppression record now, if it holds any (before it goes). */
void events_limit_flush(struct hostd *h, struct vm *vm);
/* The record timer (events_init), and its end (events_close). */
void events_limit_init(struct hostd *h);
void events_limit_close(struct hostd *h);

/* events-query.c: the `events` command's reads */
/*
 * Reply to rq with the newest `limit` events matching vm and since_us as
 * of now, read off the loop; with follow, also those published while it
 * read, and make rq's client a follower.
 */
void events_query(struct ctl_request *rq, const char *vm, int64_t since_us,
		  unsigned limit, bool follow);

/* ctl.c */
/* Listen on cfg.socket; -errno after logging why. */
int ctl_open(struct hostd *h);
/* Drop every client, stop listening, remove the socket file. */
void ctl_close(struct hostd *h);
/* The configuration was reloaded: take the socket group again. */
void ctl_reload(struct hostd *h);
/* "control": clients, followers and the bytes they left unread. */
void ctl_stats_json(const struct hostd *h, json_t *stats);
/* The VM is removed (or the daemon stops, why): its operations' owners
 * are told to stop (ctl-op.c). */
void ctl_ops_vm_removed(struct vm *vm, enum detach_reason why);
/* Send an event line to every following client. */
void ctl_broadcast_event(struct hostd *h, json_t *event);
/* True when some client follows events (skip building them if not). */
bool ctl_has_followers(const struct hostd *h);
/* The request turns the connection into an event stream. */
void ctl_request_follow(struct ctl_request *rq);


/* ctl-commands.c */
/* The command named exactly `name` (core or service), or NULL. */
const struct ctl_command *ctl_command_find(const char *name);
/* "version, list, ..." for unknown-command messages. */
const char *ctl_command_names(void);
/* Commands of a program that embeds the daemon's core (a test's own
 * table, looked up after the core's and the services'); vmic-hostd adds
 * none. The table must outlive the program's use of the core. */
void ctl_commands_extend(const struct ctl_command *table, size_t n);

/* ctl-json.c (new references, owned by the caller) */
/* The VM summary of `list`. */
json_t *vm_summary_json(const struct vm *vm);
/* The same as text appended to out (one array item): kept from the last
 * call while the VM is unchanged (vm_touch), with uptime_s live. */
void vm_summary_text(struct vm *vm, struct ctl_text *out);
/* The summary plus connection and service details. */
json_t *vm_status_json(const struct vm *vm);
/* One Get-VMIntegrationService entry, with settings and details. */
json_t *service_json(const struct vm *vm, uint8_t id);

#endif
