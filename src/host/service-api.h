/* SPDX-License-Identifier: MIT */
/*
 * What a host service may do: the one header of the daemon's core that
 * the host half of a service (src/services/NAME/host*.c) includes.
 *
 * The core's structs (struct vm, struct hostd, the connection, the store)
 * are incomplete types here, so a service cannot touch their members: it
 * reads and changes what it may through the functions below, each with
 * its contract. `make check` also fails when a file under src/services/
 * includes another header of src/host/ or src/guest/
 * (scripts/check-service-api.sh, docs/architecture.md).
 *
 * Besides this header a service may include the headers of src/common/
 * and src/proto/, src/transport/fdstream.h (reached through here too) and
 * the headers of its own folder; never another service's.
 *
 * Names: every function declared here is defined by vmic-hostd alone, so
 * no name means two things in two binaries. The agent's counterpart is
 * src/guest/service-api.h (prefix agent_).
 *
 * Threads: everything here runs on the daemon's loop thread and must be
 * called from it, except where a function says otherwise (the row
 * callback of a data read).
 */
#ifndef VMIC_HOST_SERVICE_API_H
#define VMIC_HOST_SERVICE_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "common/config.h"
#include "common/macro.h"
#include "host/clock.h"
#include "proto/frame.h"
#include "proto/proto.h"
#include "proto/session.h"
#include "transport/fdstream.h"

/* docs/control.md: a VM's name is 1 to 64 characters. */
#define VM_NAME_MAX 64
/* A VM's id as text (vm_uuid): a UUID, 36 characters. */
#define VM_UUID_LEN 36
/* "application critical: " and the guest's reason (<= 512 bytes). */
#define SVC_SECONDARY_MAX 640
/* Requests of one service that may wait for answers of one VM at once,
 * unless its table entry says otherwise (max_requests). */
#define REQUESTS_DEFAULT 4
/* What an entry's max_requests may ask for. */
#define REQUESTS_SERVICE_MAX 256

/* The core's own; services hold pointers, never look inside. */
struct hostd;
struct vm;
struct ctl_request;
struct ctl_watch;
struct ctl_line;
struct store_txn;

/* ---- the service's entry in the daemon's table ---- */

/* Get-VMIntegrationService PrimaryStatus values. */
enum svc_primary {
	SVC_NONE, /* host setting off: "" */
	SVC_OK,
	SVC_NO_CONTACT,
	SVC_LOST,
	SVC_MISMATCH,
	SVC_DEGRADED,
};

/* One service's status as `status` shows it. */
struct svc_status {
	bool enabled;
	enum svc_primary primary;
	char secondary[SVC_SECONDARY_MAX];
	int version;       /* negotiated, -1 while unknown */
	int guest_enabled; /* 0, 1, or -1 while unknown */
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

/* The control commands a table (core or service) offers. */
/* Descriptors a command takes (ctl-fds.c; docs/control.md
 * "Descriptors"). */
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

/*
 * The host half of a service (src/services/NAME/host.c). Only desc is
 * required; every hook may be NULL.
 */
struct host_service {
	const struct vmic_service_desc *desc;
	/* Per-VM settings: the keys of [NAME] (hostd.conf gives daemon-wide
	 * defaults, `vmic set VM NAME KEY=VALUE` per VM), offsets into a
	 * struct of settings_size bytes; settings_defaults fills one. At
	 * most 32 keys. A key that bounds what a VM costs carries a `cost`:
	 * members of the socket group move it no further than hostd.conf's
	 * value (the core checks it). */
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
	/* Requests of this service one VM may have waiting for answers at
	 * once (request_send), its own budget: no service can take another's
	 * slots. 0: REQUESTS_DEFAULT; at most REQUESTS_SERVICE_MAX. Long
	 * operations (a copy, a shell) hold none while they run: their bytes
	 * travel in streams and their state is the service's own. */
	unsigned max_requests;
	/* Daemon-wide state (hostd_set_state): at start-up, at exit. */
	int (*daemon_start)(struct hostd *h);
	void (*daemon_stop)(struct hostd *h);
	/* Per-VM state (vm_set_state): attach when the VM is created, detach
	 * when it is removed or the daemon exits (stop timers with
	 * vm_close_timer or vm_close_handle, answer waiting clients), release
	 * when its last reference goes (free the memory). */
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
	 * requests go to their waiters (request_send), never here. */
	int (*on_frame)(struct vm *vm, const struct vmic_frame *f);
	/* A setting changed (vm_settings() already holds it). */
	void (*settings_changed)(struct vm *vm);
	/* Service-specific status when enabled (primary already set from
	 * the connection); NULL reads OK. */
	void (*status)(const struct vm *vm, struct svc_status *st);
	/* Add the service's own members: to its `status` entry, to the VM
	 * summary of `list` (call vm_touch when they change), to the
	 * daemon's `stats`. */
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

/* ---- the VM: who it is ---- */

/* The name it is registered under (1..VM_NAME_MAX characters); the same
 * for the VM's whole life. */
const char *vm_name(const struct vm *vm);
/* Its id: a UUID made from its name and the time it was registered, so
 * the same across restarts of the daemon, and new for a VM removed and
 * added again under the same name; 36 characters and a NUL into buf
 * (VM_UUID_LEN + 1 bytes). Valid once the VM is loaded (`loaded`). */
void vm_uuid(const struct vm *vm, char *buf);
/* When it was registered (`vmic add`), realtime microseconds. */
int64_t vm_created_us(const struct vm *vm);
/* Its power backend (qmp:PATH or exec:COMMAND), NULL when it has none.
 * The string may be freed by a `vmic set --power-off`: copy what must
 * outlive the current callback. */
const char *vm_power_off(const struct vm *vm);
/* It was removed: memory a service still holds a reference to (vm_ref)
 * stays valid, but nothing will happen to it any more. */
bool vm_removed(const struct vm *vm);
/* A stop is taking it down (between NOTICE_STOPPING and its end):
 * silence from the guest is expected. */
bool vm_quiet(const struct vm *vm);
/* The daemon it belongs to. */
struct hostd *vm_hostd(const struct vm *vm);
/* Keep the VM's memory alive across an asynchronous operation; drop the
 * reference when it ends (the last one frees the VM). */
void vm_ref(struct vm *vm);
void vm_unref(struct vm *vm);
/* Something the VM summary of `list` shows changed: the cached text is
 * made again when next asked for. A service whose summary_json members
 * change calls it. */
void vm_touch(struct vm *vm);
/*
 * The VM came from libvirt (power backend libvirt:UUID:URI): destroy its
 * domain through hostd's libvirt connection, off the loop. cb runs once
 * on the loop with 0 or -errno and a sentence, unless cancelled with
 * the *token given. -ENOTCONN when hostd does not follow that URI,
 * -ENOTSUP in a build without libvirt.
 */
typedef void (*vm_libvirt_cb)(void *ud, int status, const char *detail);
int vm_libvirt_destroy(struct vm *vm, vm_libvirt_cb cb, void *ud,
		       uint64_t *token);
/* Forget a destroy's callback (its operation is gone); the destroy may
 * still happen. */
void vm_libvirt_cancel(struct hostd *h, uint64_t token);
/* Tell the core, then every service of the VM (the sender too). */
void vm_notify(struct vm *vm, struct notice *n);

/* ---- the service's own state and settings of a VM ---- */

/* The per-VM state the service set in attach (NULL before, and after
 * release). A service passes its own id. */
void *vm_state(const struct vm *vm, uint8_t service);
void vm_set_state(struct vm *vm, uint8_t service, void *state);
/* The VM's effective settings: the service's settings struct, read-only
 * (the core replaces it on a change, then calls settings_changed). */
const void *vm_settings(const struct vm *vm, uint8_t service);
/* The host's switch of a service for this VM (`vmic enable/disable`). */
bool vm_service_enabled(const struct vm *vm, uint8_t service);
/* Enabled here, session up, version agreed, the guest allows it. */
bool service_usable(const struct vm *vm, uint8_t service);
/* The Get-VMIntegrationService view of one service. */
void service_status(const struct vm *vm, uint8_t service,
		    struct svc_status *st);
/* Add a status's enabled, primary_status and secondary_status members to
 * o (every reply that shows a service's status uses these). */
void svc_status_json(json_t *o, const struct svc_status *st);

/* ---- the daemon ---- */

/* The daemon's libuv loop, for handles of the service's own (a socket,
 * a process, a poll); close them with vm_close_handle or by yourself. */
uv_loop_t *hostd_loop(const struct hostd *h);
/* The daemon exits: start nothing new, answer what waits. */
bool hostd_stopping(const struct hostd *h);
/* The service's daemon-wide state (daemon_start to daemon_stop), NULL
 * when it has none or the daemon stopped. */
void *hostd_state(const struct hostd *h, uint8_t service);
void hostd_set_state(struct hostd *h, uint8_t service, void *state);
/* The service's daemon-wide keys of [NAME] as configured now (its
 * daemon_settings struct, replaced at a reload), NULL when it has none. */
const void *svc_daemon_settings(const struct hostd *h, uint8_t service);
/* The registered VMs, in name order: count, and the i-th (i < count).
 * Registering or removing a VM changes the order: do not keep i across
 * a return to the loop. */
size_t hostd_vm_count(const struct hostd *h);
struct vm *hostd_vm(const struct hostd *h, size_t i);
/* Time (clock.h): hostd_now_us() is monotonic microseconds,
 * hostd_realtime_ns() the wall clock the host gives its guests; both run
 * on the fake clock in unit tests. Timers (htimer_init with
 * vm_hostd(vm), htimer_start_at, htimer_start_in, htimer_stop) fire on
 * the loop; a service's timer of a VM is closed in detach with
 * vm_close_timer, which keeps the VM until it is closed. `data` of a
 * struct htimer is the service's; its other members are the clock's. */
void vm_close_timer(struct vm *vm, struct htimer *t);
/* uv_close a handle owned by the VM's service, holding a reference to
 * the VM until it is closed. */
void vm_close_handle(struct vm *vm, uv_handle_t *handle);

/* ---- the connection: frames and streams ---- */

/* The session with the guest agent is established. */
bool conn_up(const struct vm *vm);
/* The connection's state as docs/control.md names it ("connecting",
 * "handshake", "connected", "retrying", "closed"). */
const char *vm_connection_state(const struct vm *vm);
/* The current session (negotiated versions, the guest's switches, the
 * peer's nonce); meaningful while conn_up(). */
const struct vmic_session *vm_session(const struct vm *vm);
/*
 * Send one encoded frame (vmic_frame_seal): an answer to a guest request
 * (VMIC_F_REPLY with its id), or a message that expects none. Requests
 * that expect answers go through request_send. 0, or -ENOTCONN unless a
 * link is open, or another -errno from the link (-ENOBUFS: the guest
 * stopped reading and its link is closed).
 */
int conn_send(struct vm *vm, const uint8_t *frame, size_t len);
/* Answer guest request f with an error frame: a VMIC_E_* code and a
 * sentence for the guest's log (only requests are answered: check
 * vmic_frame_is_request first). */
void conn_send_error(struct vm *vm, const struct vmic_frame *f, int code,
		     const char *message);
/*
 * Read a guest's error frame: its code (VMIC_E_MALFORMED when it does not
 * decode) and its message made safe for logs, events and JSON.
 */
uint16_t conn_peer_error(const struct vmic_frame *f, char *text, size_t n);
/* Count a frame of the service that passed the table check but not the
 * service's own decoding (`status` shows bad_frames). */
void vm_bad_frame(struct vm *vm);
/*
 * The link of the VM's current connection, for streams (transport/
 * fdstream.h: vmic_fdstream_pump and _sink; link.h for raw streams);
 * NULL while there is none. A link lives while its connection does: a
 * stream's owner hears its end (on_done with -ENOTCONN or -ECONNRESET)
 * before the link goes, and must not keep the pointer past it. Open
 * streams while conn_up(), after the guest agreed in a request of the
 * service's own.
 */
struct vmic_link *vm_link(const struct vm *vm);

/* ---- requests to the guest: the one tracker ---- */

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
/*
 * Send `payload` as a request of `service` and call cb with its answers.
 * timeout_ms 0 waits until the session ends. Returns 0 and the id in
 * *id (never 0), -ENOTCONN without a session, -EBUSY when the service
 * has its max_requests waiting for this VM, -EMSGSIZE, or another
 * -errno; cb is never called when it fails. A request holds its slot
 * until its callback has run for the last time or it is cancelled.
 */
int request_send(struct vm *vm, uint8_t service, uint8_t type,
		 const void *payload, size_t len, unsigned timeout_ms,
		 request_cb cb, void *ud, uint32_t *id);
/* Stop waiting for request id (0 is fine); its callback is not called. */
void request_cancel(struct vm *vm, uint32_t id);
/* Requests of `service` waiting for answers of this VM now. */
unsigned requests_waiting(const struct vm *vm, uint8_t service);

/* ---- events ---- */

/*
 * Record one event: logged now, stored with the next batch, delivered to
 * `events --follow` clients. vm, service, from and to may be NULL. An
 * event of a registered VM passes its rate limit first, so a guest
 * cannot make the host store more than [events] vm-rate allows.
 */
void events_emit(struct hostd *h, const char *vm, const char *service,
		 const char *kind, const char *from, const char *to,
		 const char *fmt, ...) PRINTF_LIKE(7, 8);

/* ---- the store: the service's own data of a VM ---- */

/* Called on the loop when the writer is done with t; t is freed after. */
typedef void (*store_txn_done_fn)(struct hostd *h, struct store_txn *t,
				  void *ud);
/*
 * An empty transaction. A command's (command true) is retried while
 * another program holds the database (up to 5 s) and may use the disk
 * reserve; other writes (what a guest sent) are neither. NULL without
 * memory.
 */
struct store_txn *store_txn_new(bool command);
/*
 * A service's own data of a VM (the service_data table: space, key ->
 * value; value NULL deletes the row), copied into t; -ENOMEM. Rows go
 * with their VM; a VM already removed makes the transaction fail. At
 * start-up the service hears how much it stored (its data_sizes hook);
 * store_read_data reads the rows.
 */
int store_txn_data_set(struct store_txn *t, const char *vm, uint8_t service,
		       unsigned space, const char *key, const char *value);
/*
 * Commit t off the loop, after every transaction committed before it;
 * done runs on the loop with the result. Takes t.
 */
void store_commit(struct hostd *h, struct store_txn *t,
		  store_txn_done_fn done, void *ud);
/* 0 once committed; else -EBUSY (another program holds the database),
 * -ENOSPC (disk full), -EIO, -ENOMEM, with a sentence in *msg. */
int store_txn_result(const struct store_txn *t, const char **msg);
/* Free t (a transaction not handed to store_commit). */
void store_txn_free(struct store_txn *t);

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

/* ---- the control socket ---- */

/* Reply to a request (steals result); the request is finished. */
void ctl_reply_ok(struct ctl_request *rq, json_t *result);
/* Reply with a docs/control.md error code and a sentence; finished. */
void ctl_reply_error(struct ctl_request *rq, const char *code,
		     const char *fmt, ...) PRINTF_LIKE(3, 4);
/* Strict unpack of a command's remaining members (jansson format);
 * replies bad-request and returns false on error. */
bool ctl_args_unpack(struct ctl_request *rq, const char *cmd, json_t *args,
		     const char *fmt, ...);
/* The daemon a request belongs to. */
struct hostd *ctl_request_hostd(const struct ctl_request *rq);
/* Access: the request comes from root or the daemon's own user (not
 * merely a member of the socket group). Root configures; members use:
 * what a member may make the daemon keep is bounded. */
bool ctl_request_privileged(const struct ctl_request *rq);
/* The user the request comes from (SO_PEERCRED): the unit of the limits
 * a client meets, since connections are cheap to open again. */
uid_t ctl_request_uid(const struct ctl_request *rq);

/*
 * A client that watches something of a service (`kvp-watch`): rq is
 * answered with result (taken), then its connection carries the lines
 * the service sends with ctl_watch_send, and no further requests. gone
 * runs once the client leaves or is dropped, never after ctl_watch_end.
 * NULL, after replying, when the client is gone already or memory is
 * short: nothing to watch for.
 */
struct ctl_watch *ctl_watch_start(struct ctl_request *rq, json_t *result,
				  void (*gone)(void *ud), void *ud);
/*
 * A line of output made once and shared by every client it is sent to
 * (refcounted): a change that goes to many watchers costs one
 * serialization and its bytes once.
 */
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

/* ---- descriptors and long operations (ctl-fds.c, ctl-op.c; docs/control.md
 * "Descriptors" and "Operations") ---- */

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
 * Progress: {"id": ID, "progress": progress} (taken; an object, anything
 * else is dropped; docs/control.md names the members the CLI shows:
 * bytes, total, items, items_total).
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


#endif
