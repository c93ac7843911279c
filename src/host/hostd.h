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
 * file that implements them.
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
#include "proto/proto.h"
#include "proto/session.h"
#include "transport/channel.h"
#include "transport/link.h"
#include "transport/transport.h"

#define HOSTD_DEFAULT_CONFIG "/etc/vmic/vmic-hostd.conf"
#define HOSTD_SOFTWARE "vmic-hostd " VMIC_VERSION

/* docs/control.md: 1 to 64 characters. */
#define VM_NAME_MAX 64
#define CHANNEL_URI_MAX (VMIC_PATH_MAX + 32)
#define POWER_URI_MAX 1024
#define ERROR_TEXT_MAX 160
/* "application critical: " and the guest's reason (<= 512 bytes). */
#define SVC_SECONDARY_MAX 640
/* Requests one VM may have waiting for answers at once. */
#define REQUESTS_MAX 64

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

/* Get-VMIntegrationService PrimaryStatus values. */
enum svc_primary {
	SVC_NONE, /* host setting off: "" */
	SVC_OK,
	SVC_NO_CONTACT,
	SVC_LOST,
	SVC_MISMATCH,
	SVC_DEGRADED,
};

struct svc_status {
	bool enabled;
	enum svc_primary primary;
	char secondary[SVC_SECONDARY_MAX];
	int version;       /* negotiated, -1 while unknown */
	int guest_enabled; /* 0, 1, or -1 while unknown */
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
	uint32_t next_request_id;
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

struct ctl;
struct ctl_request;
struct vm;

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

/* An answer awaited from the guest (requests.c). */
struct request;
struct requests {
	struct request *head;
	unsigned count;
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
	/* each service's daemon-wide state, from its daemon_start() */
	void *svc_state[VMIC_SVC_COUNT];
	bool stopping;
};

/*
 * What a service announces and what the core announces to the services
 * (vm_notify). Services that need to know about each other (a stop and
 * the heartbeat) meet here, never in each other's structs.
 */
enum notice_kind {
	NOTICE_SESSION_UP,     /* core: a session is up (after every on_up) */
	NOTICE_CHANNEL_CLOSED, /* core: the stream closed; err says why */
	NOTICE_CONNECT_FAILED, /* core: a connect attempt failed; err */
	NOTICE_STOPPING,       /* the VM goes down on purpose: silence is
				  expected, not a loss of communication */
	NOTICE_STOPPED,        /* it went down on purpose and stays off */
	NOTICE_STOP_OVER,      /* a stop ended otherwise (rebooted, failed) */
	NOTICE_ALIVE_WANTED,   /* someone waits for proof the guest works: a
				  service that will give it sets `claimed`,
				  one that has it already sets `alive` */
	NOTICE_ALIVE,          /* proof that the guest works (heartbeat OK) */
	NOTICE_RESUMED,        /* the guest answered again after a silence
				  of gap_us with the channel up: it was
				  probably paused (heartbeat) */
};

struct notice {
	enum notice_kind kind;
	int err;      /* NOTICE_CHANNEL_CLOSED, NOTICE_CONNECT_FAILED */
	bool claimed; /* NOTICE_ALIVE_WANTED: proof will follow */
	bool alive;   /* NOTICE_ALIVE_WANTED: proof is there already */
	uint64_t gap_us; /* NOTICE_RESUMED: how long it was silent */
};

/* Why a VM's services are detached. */
enum detach_reason {
	DETACH_REMOVED,  /* `vmic remove` */
	DETACH_STOPPING, /* the daemon exits */
};

/* ==== For services: descriptors and long operations on the control socket
 * (ctl-fds.c, ctl-op.c; docs/control.md "Descriptors" and "Operations").
 * To be moved into the service API's header. ==== */

/* What a descriptor handed to a command may be (fstat, isatty). */
enum ctl_fd_kind {
	CTL_FD_FILE = 1 << 0,   /* a regular file */
	CTL_FD_PIPE = 1 << 1,   /* a pipe or FIFO */
	CTL_FD_SOCKET = 1 << 2, /* a stream socket */
	CTL_FD_TTY = 1 << 3,    /* a terminal: a tty, a pty's either side */
	CTL_FD_CHAR = 1 << 4,   /* another character device (/dev/null) */
};
/* What it must be open for (fcntl F_GETFL; O_PATH never is). */
enum ctl_fd_access {
	CTL_FD_READ = 1 << 0,
	CTL_FD_WRITE = 1 << 1,
};
/* Descriptors one request or message may carry at most. */
#define CTL_FDS_MAX 8

/* One descriptor a command takes, in order. */
struct ctl_fd_spec {
	const char *name; /* its role, for errors: "source", "stdin" */
	uint8_t kinds;    /* the enum ctl_fd_kind it may be */
	uint8_t access;   /* the enum ctl_fd_access it must allow */
	bool optional;    /* it and those after it may be left out */
};

/* The control commands a table (core or service) offers. */
struct ctl_command {
	const char *name;
	/* Reply through rq now, or later for asynchronous commands. */
	void (*run)(struct ctl_request *rq, struct vm *vm, json_t *args);
	bool needs_vm; /* "vm" is required and must be registered */
	const char *members; /* for error messages */
	const char *summary;
	/* The descriptors it takes (none when nfds is 0): each request is
	 * checked against them before run is called, and refused with an
	 * error that names the descriptor when one does not fit. */
	const struct ctl_fd_spec *fds;
	uint8_t nfds;
};

/* How many descriptors came with the request (they met the command's
 * ctl_fd_spec). */
unsigned ctl_request_nfds(const struct ctl_request *rq);
/* Descriptor i of the request, -1 when there is none or it was taken.
 * Borrowed: the request closes it when it is answered, or hands it to
 * the operation it starts. */
int ctl_request_fd(const struct ctl_request *rq, unsigned i);
/* Take descriptor i: the caller owns it from now on (and closes it);
 * -1 when there is none or it was taken already. */
int ctl_request_take_fd(struct ctl_request *rq, unsigned i);

/*
 * A long operation: a command that goes on after its handler returned,
 * for seconds or hours (a copy, a shell), on its client's connection.
 * While it runs the client gets progress lines and lines of the owner's
 * own kinds, and sends messages ({"id": ID, NAME: VALUE}) that reach the
 * owner; then the owner ends it with a result or an error, which is the
 * request's reply, and the connection takes requests again. Operations
 * live in a table of their own: they hold none of the VM's request
 * slots, and are bounded by [control] max-operations and
 * max-operations-per-vm.
 */
struct ctl_op;

/* Why an operation must stop (on_cancel). */
enum ctl_op_cancel {
	CTL_OP_CANCEL_ASKED,    /* the client sent {"cancel": true}; it waits
				   for the reply (code "cancelled") */
	CTL_OP_CLIENT_GONE,     /* the client closed its connection (or was
				   dropped): nobody hears the reply */
	CTL_OP_VM_REMOVED,      /* the operation's VM is being removed */
	CTL_OP_DAEMON_STOPPING, /* vmic-hostd stops: the client was told */
};

struct ctl_op_ops {
	/* The messages the operation takes besides "cancel" ("signal",
	 * "winsize"), NULL-terminated; NULL for none. Others are answered
	 * with a "rejected" line and never reach on_message. */
	const char *const *messages;
	/* The descriptors one message may carry (checked like a
	 * command's); none when msg_nfds is 0. */
	const struct ctl_fd_spec *msg_fds;
	uint8_t msg_nfds;
	/*
	 * A message {"id": ID, NAME: VALUE} of a listed NAME; value is
	 * borrowed. fds[0..nfds) came with it, checked against msg_fds: set
	 * an entry to -1 to keep that descriptor (then it is the owner's to
	 * close); the others are closed when this returns. May end the
	 * operation.
	 */
	void (*on_message)(void *ud, struct ctl_op *op, const char *name,
			   json_t *value, int *fds, unsigned nfds);
	/*
	 * The operation must stop (why). Called at most once. The owner
	 * stops its work (in the guest too), then ends the operation with
	 * ctl_op_end or ctl_op_fail, now or later: until then it counts
	 * against the limits. Required.
	 */
	void (*on_cancel)(void *ud, struct ctl_op *op, enum ctl_op_cancel why);
};

/*
 * Turn the request into an operation on vm (NULL for none) and return
 * it; the request itself is gone (its descriptors and id move to the
 * operation). NULL after replying when a limit is reached (`limit`) or
 * memory is short, or when the client left already: then nothing runs
 * and ud is still the caller's. Call it before the work starts, since
 * it may refuse.
 */
struct ctl_op *ctl_op_start(struct ctl_request *rq, struct vm *vm,
			    const struct ctl_op_ops *ops, void *ud);
/* The operation's VM (NULL for none), the user who asked (SO_PEERCRED),
 * and whether it is root or the daemon's own user. */
struct vm *ctl_op_vm(const struct ctl_op *op);
uid_t ctl_op_uid(const struct ctl_op *op);
bool ctl_op_privileged(const struct ctl_op *op);
/* The request's descriptors: as ctl_request_fd and _take_fd; the ones
 * not taken are closed when the operation ends. */
unsigned ctl_op_nfds(const struct ctl_op *op);
int ctl_op_fd(const struct ctl_op *op, unsigned i);
int ctl_op_take_fd(struct ctl_op *op, unsigned i);
/* True while a client hears the operation (it did not leave). */
bool ctl_op_attached(const struct ctl_op *op);
/*
 * Progress: {"id": ID, "progress": progress} (taken; docs/control.md
 * names the members the CLI shows: bytes, total, items, items_total).
 * A progress line the client has not begun to read is replaced by the
 * new one, so a client that reads slowly holds one at most: send it as
 * often as is useful, a few times a second at most.
 */
void ctl_op_progress(struct ctl_op *op, json_t *progress);
/*
 * A line of the owner's own kind, {"id": ID, name: value} (value taken):
 * something the client acts on or shows ("warning", "frozen"). name must
 * not be one the protocol uses: id, ok, result, error, progress, page,
 * end, rejected, cancel, fds. Counted against [control] max-unread like
 * any output: a client that does not read them is dropped (and the
 * operation cancelled).
 */
void ctl_op_send(struct ctl_op *op, const char *name, json_t *value);
/* End with success, result (taken) the reply's result; or with an error
 * (docs/control.md codes; "cancelled" after a cancel). op is freed, the
 * descriptors not taken are closed, and the owner's ud is not touched
 * again. Exactly once per operation, after on_cancel too. */
void ctl_op_end(struct ctl_op *op, json_t *result);
void ctl_op_fail(struct ctl_op *op, const char *code, const char *fmt, ...)
	PRINTF_LIKE(3, 4);
/* "the client cancelled the operation", ...: for the error of the end. */
const char *ctl_op_cancel_text(enum ctl_op_cancel why);

/*
 * A stream of vm's link could not be opened (err from opening it, or
 * from pumping or sinking a descriptor into one): the docs/control.md
 * error code to answer with, and a sentence in msg (-EMFILE: the link
 * holds [connection] max-streams; -ENOTCONN: no session) (conn.c).
 */
const char *conn_stream_error(const struct vm *vm, int err, char *msg,
			      size_t n);

/* ==== end of the block for services ==== */

/*
 * The host half of a service (src/services/NAME/host.c). Only desc is
 * required; every hook may be NULL.
 */
struct host_service {
	const struct vmic_service_desc *desc;
	/* Per-VM settings: the keys of [NAME] (hostd.conf gives daemon-wide
	 * defaults, `vmic set VM NAME KEY=VALUE` per VM), offsets into a
	 * struct of settings_size bytes; settings_defaults fills one. At
	 * most 32 keys. */
	const struct vmic_conf_table *settings;
	size_t settings_size;
	void (*settings_defaults)(void *settings);
	/* Daemon-wide keys of the same [NAME] section that are no per-VM
	 * setting (a bound on the sum over all VMs, a rate per client): a
	 * struct of daemon_settings_size bytes, filled by
	 * daemon_settings_defaults, read from hostd.conf and taken again at
	 * a reload; svc_daemon_settings() is the current one. */
	const struct vmic_conf_table *daemon_settings;
	size_t daemon_settings_size;
	void (*daemon_settings_defaults)(void *conf);
	/* Daemon-wide state (h->svc_state[id]): at start-up, at exit. */
	int (*daemon_start)(struct hostd *h);
	void (*daemon_stop)(struct hostd *h);
	/* Per-VM state (vm->svc[id].state): attach when the VM is created,
	 * detach when it is removed or the daemon exits (stop timers with
	 * vm_close_handle, answer waiting clients), release when its last
	 * reference goes (free the memory). */
	int (*attach)(struct vm *vm);
	void (*detach)(struct vm *vm, enum detach_reason why);
	void (*release)(struct vm *vm);
	/* At start-up, once the VM's stored switches and settings are in:
	 * align the state with them, without events. */
	void (*loaded)(struct vm *vm);
	/* At start-up, before loaded: how much data the service stored for
	 * the VM (store_txn_data_set) in one space: rows, and bytes of
	 * their keys and values. The rows themselves stay in the store
	 * until the service reads them (store_read_data). */
	void (*data_sizes)(struct vm *vm, unsigned space, uint64_t rows,
			   uint64_t bytes);
	/* The session came up with the service enabled on the host, or the
	 * host enabled it during a session; on_down: the reverse, and any
	 * change of the host setting while there is no session. */
	void (*on_up)(struct vm *vm);
	void (*on_down)(struct vm *vm);
	void (*on_notice)(struct vm *vm, struct notice *n);
	/* A checked frame of the service that answers nothing of ours (a
	 * guest request, stream data); < 0 closes the link. Answers to our
	 * requests go to their waiters (requests.c), never here. */
	int (*on_frame)(struct vm *vm, const struct vmic_frame *f);
	/* A setting changed (vm->svc[id].settings already holds it). */
	void (*settings_changed)(struct vm *vm);
	/* Service-specific status when enabled (primary already set from
	 * the connection); NULL reads OK. */
	void (*status)(const struct vm *vm, struct svc_status *st);
	/* Add the service's own members: to its `status` entry, to the VM
	 * summary of `list`, to the daemon's `stats`. */
	void (*status_json)(const struct vm *vm, json_t *entry);
	void (*summary_json)(const struct vm *vm, json_t *summary);
	void (*stats_json)(struct hostd *h, json_t *stats, bool reset);
	/* Control commands of the service (`stop`, ...). */
	const struct ctl_command *commands;
	size_t ncommands;
	/* The service logs its own status events (heartbeat's): the core
	 * does not emit service-status events for it. */
	bool own_status_events;
};

/* Each service's entry: NAME_host, from its host.c. */
#define VMIC_SERVICE(name) extern const struct host_service name##_host;
#include "services/list.h"
#undef VMIC_SERVICE

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
/* A service's daemon-wide keys as configured now (its
 * daemon_settings struct), NULL when it has none. */
static inline const void *svc_daemon_settings(const struct hostd *h,
					      uint8_t id)
{
	return h->cfg.svc_daemon[id];
}
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

/* store-txn.c: a transaction, built on the loop, committed by the writer */
struct store_txn;
/* Called on the loop when the writer is done with t; t is freed after. */
typedef void (*store_txn_done_fn)(struct hostd *h, struct store_txn *t,
				  void *ud);
/*
 * An empty transaction. A command's (command true) is retried while
 * another program holds the database (up to 5 s) and may use the disk
 * reserve; a batch of events is neither. NULL without memory.
 */
struct store_txn *store_txn_new(bool command);
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
/*
 * A service's own data of a VM (the service_data table: space, key ->
 * value; value NULL deletes the row). Rows go with their VM; a VM
 * already removed makes the transaction fail. At start-up the service
 * hears how much it stored (its data_sizes hook); store_read_data reads
 * the rows.
 */
int store_txn_data_set(struct store_txn *t, const char *vm, uint8_t service,
		       unsigned space, const char *key, const char *value);
/* Append events (a list, taking the caller's reference of each). */
void store_txn_add_events(struct store_txn *t, struct event *list);
/* Take the events back (a list; the caller owns the references). */
struct event *store_txn_take_events(struct store_txn *t);
size_t store_txn_event_count(const struct store_txn *t);
/* 0 once committed; else -EBUSY (another program holds the database),
 * -ENOSPC (disk full), -EIO, -ENOMEM, with a sentence in *msg. */
int store_txn_result(const struct store_txn *t, const char **msg);
/* Free t and drop its events' references (a transaction not committed). */
void store_txn_free(struct store_txn *t);

/* store-writer.c: the one thread that writes the database */
/* Start the writer thread (it prunes in the background); -errno. */
int store_start(struct hostd *h);
/*
 * Commit t off the loop, after every transaction committed before it;
 * done runs on the loop with the result. Takes t.
 */
void store_commit(struct hostd *h, struct store_txn *t,
		  store_txn_done_fn done, void *ud);
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

/* A read of a service's data of one VM (the rows of store_txn_data_set),
 * in (space, key) order, keys compared bytewise (a shorter key first). */
struct data_read {
	/* in: what to read */
	char vm[VM_NAME_MAX + 1];
	uint8_t service;
	unsigned space_min, space_max; /* the spaces, inclusive */
	/* One key: its row in the first space that has it. NULL: rows in
	 * order, after the cursor when there is one. */
	const char *key;
	size_t klen;
	bool after; /* start after (after_space, after_key) */
	unsigned after_space;
	const char *after_key;
	size_t after_klen;
	unsigned limit; /* rows at most; 0: all */
	/*
	 * Each row, on a thread of the pool: it may touch only what ud
	 * owns. The strings are terminated; their lengths are given. 0 goes
	 * on, 1 stops after this row (more to read), < 0 ends the read
	 * with that error.
	 */
	int (*row)(void *ud, unsigned space, const char *key, size_t klen,
		   const char *value, size_t vlen);
	void *ud;
	/* out */
	size_t count;
	bool more; /* stopped at limit or by row(): rows may follow */
	int err;
	char errmsg[256];
};
typedef void (*data_read_fn)(struct hostd *h, struct data_read *d,
			     void *ud);
/*
 * Run d on the thread pool with a read-only connection (with the reads
 * of events: at most two at a time, the others wait in order); done on
 * the loop. d (and the strings it points to) stay the caller's until
 * then. It sees what is committed.
 */
void store_read_data(struct hostd *h, struct data_read *d,
		     data_read_fn done, void *ud);

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
/* Keep the memory alive across an asynchronous operation. */
void vm_ref(struct vm *vm);
/* Drop a reference; the last one frees the VM. */
void vm_unref(struct vm *vm);
/* uv_close a handle owned by the VM, holding a reference until closed. */
void vm_close_handle(struct vm *vm, uv_handle_t *handle);
/* The same for a timer of clock.h. */
void vm_close_timer(struct vm *vm, struct htimer *t);
/* NULL when fine, else a sentence why the name is not valid. */
const char *vm_name_invalid(const char *name);
/* Parse and keep a host-side channel; -EINVAL with a sentence in err. */
int vm_channel_parse(const char *uri, struct vmic_channel *ch, char *err,
		     size_t errsz);
/* -EINVAL with a sentence when uri is not qmp:PATH or exec:COMMAND. */
int vm_power_uri_check(const char *uri, char *err, size_t errsz);
/* The host setting of a service for this VM. */
static inline bool vm_service_enabled(const struct vm *vm, uint8_t service)
{
	return service < 32 && (vm->enabled_mask & (1u << service));
}
/* Tell the core, then every service of the VM (the sender too). */
void vm_notify(struct vm *vm, struct notice *n);
/* Something the VM summary of `list` shows changed (a state, a name):
 * the cached text is made again when next asked for. A service whose
 * summary_json members change calls it too. */
static inline void vm_touch(struct vm *vm)
{
	vm->gen++;
}
/* The service's per-VM state and settings. */
static inline void *vm_state(const struct vm *vm, uint8_t service)
{
	return vm->svc[service].state;
}
static inline void *vm_settings(const struct vm *vm, uint8_t service)
{
	return vm->svc[service].settings;
}

/* conn.c */
/* Idle connection state and its timer (part of vm_new). */
void conn_init(struct vm *vm);
/* Start connecting now (new VM, changed channel, daemon start). */
void conn_start(struct vm *vm);
/* Drop the current connection (if any) and connect again at once. */
void conn_restart(struct vm *vm);
/* Close everything for good (VM removed, daemon exit). */
void conn_shutdown(struct vm *vm);
/* Send one encoded frame; -ENOTCONN unless a link is open. */
int conn_send(struct vm *vm, const uint8_t *frame, size_t len);
/* A fresh non-zero request id for a request to the guest. */
uint32_t conn_request_id(struct vm *vm);
/* The session is established. */
static inline bool conn_up(const struct vm *vm)
{
	return vm->conn.state == CONN_CONNECTED;
}
/* The docs/control.md name: "connecting", "handshake", ... */
const char *conn_state_name(enum conn_state s);
/* The host's service switches changed: tell the guest. */
void conn_send_services(struct vm *vm);
/* Answer a guest request with an error frame. */
void conn_send_error(struct vm *vm, const struct vmic_frame *f, int code,
		     const char *message);
/*
 * Read a guest's error frame: its code (VMIC_E_MALFORMED when it does not
 * decode) and its message made safe for logs, events and JSON.
 */
uint16_t conn_peer_error(const struct vmic_frame *f, char *text, size_t n);
/* Milliseconds until the next attempt, -1 when none is scheduled. */
int64_t conn_next_retry_ms(const struct vm *vm);
/* Milliseconds until the guest's hellos are answered again, -1 when they
 * are not held. */
int64_t conn_hold_ms(const struct vm *vm);
/* A stop finished with the VM off: the next silence is No Contact. */
void conn_forget_contact(struct vm *vm);

/* requests.c: one tracker of the answers every service waits for */
/*
 * An answer to request `id`: `answer` is the reply or error frame (err 0),
 * or NULL with err -ETIMEDOUT (timeout_ms passed), -ECONNRESET (the
 * session ended) or -ECANCELED (the VM is removed, the daemon exits).
 * With an answer, return true to keep waiting for more answers with the
 * same id (a late error after an "accepted"); the callback must not
 * cancel the request it keeps.
 */
typedef bool (*request_cb)(struct vm *vm, void *ud,
			   const struct vmic_frame *answer, int err);
/* Tracker state of a new VM (part of vm_new). */
void requests_init(struct vm *vm);
/*
 * Send `payload` as a request of `service` and call cb with its answers.
 * timeout_ms 0 waits until the session ends. Returns 0 and the id in
 * *id, -ENOTCONN without a session, -EBUSY at REQUESTS_MAX waiting, or
 * another -errno; cb is never called when it fails.
 */
int request_send(struct vm *vm, uint8_t service, uint8_t type,
		 const void *payload, size_t len, unsigned timeout_ms,
		 request_cb cb, void *ud, uint32_t *id);
/* Stop waiting for request id; its callback is not called. */
void request_cancel(struct vm *vm, uint32_t id);
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
 * When not, replies permission-denied (saying what [access] allows) and
 * returns false. */
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
/* The Get-VMIntegrationService view of one service. */
void service_status(const struct vm *vm, uint8_t id, struct svc_status *st);
/* True when enabled here, session up, version agreed, guest allows it. */
bool service_usable(const struct vm *vm, uint8_t id);
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
 * Record one event: logged now, stored with the next batch, delivered to
 * `events --follow` clients. vm, service, from and to may be NULL. An
 * event of a registered VM passes its rate limit first (events-limit.c).
 */
void events_emit(struct hostd *h, const char *vm, const char *service,
		 const char *kind, const char *from, const char *to,
		 const char *fmt, ...) PRINTF_LIKE(7, 8);
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
/* Reply to a request (steals result); the request is finished. */
void ctl_reply_ok(struct ctl_request *rq, json_t *result);
/* Reply with a docs/control.md error code and a sentence. */
void ctl_reply_error(struct ctl_request *rq, const char *code,
		     const char *fmt, ...) PRINTF_LIKE(3, 4);
/* The request turns the connection into an event stream. */
void ctl_request_follow(struct ctl_request *rq);
/*
 * A client that watches something of a service (`kvp-watch`): rq is
 * answered with result (taken), then its connection carries the lines
 * the service sends with ctl_watch_send, and no further requests. gone
 * runs once the client leaves or is dropped, never after ctl_watch_end.
 * NULL, after replying, when the client is gone already or memory is
 * short: nothing to watch for.
 */
struct ctl_watch;
struct ctl_watch *ctl_watch_start(struct ctl_request *rq, json_t *result,
				  void (*gone)(void *ud), void *ud);
/*
 * A line of output made once and shared by every client it is sent to
 * (refcounted): a change that goes to many watchers costs one
 * serialization and its bytes once.
 */
struct ctl_line;
/* o as one compact JSON line; NULL when out of memory. */
struct ctl_line *ctl_line_json(json_t *o);
/* Drop a reference (NULL is fine); the last one frees the line. */
void ctl_line_unref(struct ctl_line *l);
/* One line to the watcher (a reference is taken while it waits). One
 * that left [control] max-unread bytes unread is sent a last line
 * {"dropped": ...} and dropped (gone runs when it is closed). */
void ctl_watch_send(struct ctl_watch *w, struct ctl_line *line);
/* The service ends the watch (its VM was removed): an optional last
 * line (not taken), then the client is closed once it has read it. */
void ctl_watch_end(struct ctl_watch *w, json_t *last);
/* The daemon a request belongs to. */
struct hostd *ctl_request_hostd(const struct ctl_request *rq);
/* The request comes from root or the daemon's own user (not merely a
 * member of the socket group). */
bool ctl_request_privileged(const struct ctl_request *rq);
/* The user the request comes from (SO_PEERCRED): the unit of the limits
 * a client meets, since connections are cheap to open again. */
uid_t ctl_request_uid(const struct ctl_request *rq);

/* JSON text being built (a batch of a streamed reply). */
struct ctl_text {
	char *p;
	size_t len, cap;
	size_t items; /* array items begun */
	int err;      /* -ENOMEM once an append failed */
};
/* Append n bytes; a comma first when the text is not empty and `item`
 * says a new array item starts (it is counted). */
void ctl_text_append(struct ctl_text *t, const char *s, size_t n, bool item);
/* Append n bytes holding `count` comma-separated items as array items. */
void ctl_text_append_items(struct ctl_text *t, const char *s, size_t n,
			   size_t count);
/* Append v as one array item (compact JSON). */
void ctl_text_append_json(struct ctl_text *t, json_t *v);

/*
 * A reply whose result holds one large array, written a batch at a time
 * as the client reads (ctl-reply.c): memory stays bounded whatever the
 * array's size, and no batch holds the loop for long.
 */
enum ctl_stream_next {
	CTL_STREAM_MORE, /* items appended (or none yet); ask again */
	CTL_STREAM_WAIT, /* fetching: ctl_stream_wake() when there are some */
	CTL_STREAM_DONE, /* the items appended are the last */
};
struct ctl_stream_ops {
	/* Append the next items (at most max), comma-separated, to out. */
	enum ctl_stream_next (*next)(void *ud, struct ctl_text *out,
				     size_t max);
	/* The reply ended or its client left: free ud. */
	void (*done)(void *ud);
};
/* Reply with result (taken) plus the array `key` filled by ops->next;
 * in pages when the request asked for them (docs/control.md). */
void ctl_reply_stream(struct ctl_request *rq, json_t *result, const char *key,
		      const struct ctl_stream_ops *ops, void *ud);
/* The producer cannot go on: its next answer is DONE, and the reply ends
 * with this error line after the items sent (paged), or is cut off (one
 * line cannot say that it is incomplete). */
void ctl_stream_fail(struct ctl_request *rq, const char *code,
		     const char *fmt, ...) PRINTF_LIKE(3, 4);
/* A producer that answered CTL_STREAM_WAIT has items now. */
void ctl_stream_wake(struct ctl_request *rq);

/* ctl-commands.c */
/* Strict unpack of a command's remaining members (jansson format);
 * replies bad-request and returns false on error. */
bool ctl_args_unpack(struct ctl_request *rq, const char *cmd, json_t *args,
		     const char *fmt, ...);
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
/* Add a service status's enabled, primary_status and secondary_status
 * members to o (every reply that shows a service's status uses these). */
void svc_status_json(json_t *o, const struct svc_status *st);

#endif
