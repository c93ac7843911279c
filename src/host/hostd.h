/* SPDX-License-Identifier: MIT */
/*
 * vmic-hostd, the host daemon.
 *
 * One struct hostd owns the libuv loop and everything on it: the
 * configuration, the SQLite store, the VM registry, the pending event
 * batch and the control socket. Each registered VM is a struct vm holding
 * its settings, its one connection (struct conn) and the host half of
 * every service. Nothing blocks on one VM: connects, reads, writes and
 * timers all run on the loop, and a VM's trouble only ever closes that
 * VM's connection.
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
#define HB_INTERVAL_MIN_MS 100u
#define HB_INTERVAL_MAX_MS 3600000u
#define HB_THRESHOLD_MIN 1u
#define HB_THRESHOLD_MAX 100u
/* Heartbeat requests remembered for matching late replies. */
#define HB_RING 8
#define ERROR_TEXT_MAX 160
/* "application critical: " and the guest's reason (<= 512 bytes). */
#define SVC_SECONDARY_MAX 640

struct hostd_config {
	char state_dir[256];
	char socket[VMIC_PATH_MAX + 1];
	char socket_group[64];
	int log_level;
	bool syslog;
	unsigned hb_interval_ms;
	unsigned hb_threshold;
	unsigned connect_timeout_ms;
	unsigned retry_min_ms;
	unsigned retry_max_ms;
	unsigned events_keep;
};

/* docs/control.md connection states, in this order. */
enum conn_state {
	CONN_CONNECTING,
	CONN_HANDSHAKE,
	CONN_CONNECTED,
	CONN_RETRYING,
	CONN_CLOSED, /* the VM is being removed or the daemon exits */
};

enum hb_state {
	HB_NO_CONTACT,
	HB_OK,
	HB_CRITICAL, /* "OK (application critical)" */
	HB_LOST,
	HB_MISMATCH,
	HB_DISABLED,
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
	bool contact;          /* a session was up since add or start */
	bool bad_frame_reported;
	unsigned resyncs; /* decoder hunts since the last session */
};

struct hb {
	enum hb_state state;
	uv_timer_t timer;
	bool running;
	uint64_t seq; /* last sequence number sent */
	struct {
		uint64_t seq;
		uint64_t sent_us; /* monotonic; 0 once answered */
	} ring[HB_RING];
	unsigned missed;
	int64_t last_reply_us;
	int64_t rtt_us; /* -1 until the first reply */
	bool contact;   /* a reply since add or start */
	char *reason;   /* application-critical reason, sanitised */
};

struct guest_info {
	char hostname[256];
	char os_name[256];
	char kernel[256];
	char arch[64];
	int64_t boot_us; /* realtime, from the agent's uptime */
};

struct stop_op;
struct power_op;
struct ctl;
struct ctl_request;

/* One event; the strings live in the same allocation. */
struct event {
	struct event *next;
	int64_t id;
	int64_t time_us;
	const char *vm, *service, *kind, *from, *to; /* NULL when none */
	const char *message;
};

struct vm {
	struct hostd *h;
	char name[VM_NAME_MAX + 1];
	char channel_uri[CHANNEL_URI_MAX];
	struct vmic_channel channel;
	char *power_off; /* NULL when none */
	unsigned hb_interval_ms;
	unsigned hb_threshold;
	uint32_t enabled_mask; /* host settings, bit = service id */
	int64_t created_us;
	struct conn conn;
	struct hb hb;
	struct guest_info *info; /* NULL until the agent sent it */
	uint8_t svc_primary[VMIC_SVC_COUNT]; /* last reported, for events */
	struct stop_op *stop;
	int refs; /* registry + handles and operations still pending */
	bool removed;
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *vm_insert, *vm_update, *vm_delete;
	sqlite3_stmt *svc_set, *svc_delete;
	sqlite3_stmt *ev_insert, *ev_query, *ev_query_vm, *ev_prune;
	char errmsg[256]; /* last failure, for `internal` replies */
};

/* Log-scale RTT histogram: 8 buckets per power of two. */
#define RTT_BUCKETS 256
struct rtt_hist {
	uint64_t count[RTT_BUCKETS];
	uint64_t samples;
	uint64_t max;
};

struct hostd {
	uv_loop_t *loop;
	struct hostd_config cfg;
	uv_signal_t sig_term, sig_int;
	uv_timer_t prune_timer;
	struct store store;
	struct vm **vms; /* sorted by name */
	size_t nvms, vms_cap;
	struct ctl *ctl;
	/* events.c */
	struct event *ev_head, *ev_tail;
	size_t ev_pending;
	uint64_t ev_dropped;
	int64_t ev_next_id;
	uv_timer_t ev_timer;
	/* heartbeat counters for `stats` */
	uint64_t hb_sent, hb_replies;
	struct rtt_hist rtt;
	bool stopping;
};

/* hostd-config.c */
/* Every key at its documented default. */
void hostd_config_defaults(struct hostd_config *c);
/* "[section] key" -> field of struct hostd_config, for config.h. */
extern const struct vmic_conf_table hostd_conf_table;
/* Checks across keys; logs and returns -EINVAL when they conflict. */
int hostd_config_check(const struct hostd_config *c, const char *path);

/* store.c */
/* Open (creating when needed) state_dir/vmic.db; logs failures. */
int store_open(struct hostd *h);
/* Finalize statements and close; safe on a store never opened. */
void store_close(struct hostd *h);
/* Create a struct vm for every registered VM. */
int store_load_vms(struct hostd *h);
/* Durable before return; -EIO with store.errmsg set on failure. */
int store_vm_insert(struct hostd *h, const struct vm *vm);
int store_vm_update(struct hostd *h, const struct vm *vm);
int store_vm_delete(struct hostd *h, const char *name);
int store_service_set(struct hostd *h, const struct vm *vm, uint8_t service,
		      bool enabled);
/* Write a batch of events in one transaction. */
int store_events_write(struct hostd *h, const struct event *first);
/* Append the newest `limit` matching events to arr, oldest first. */
int store_events_query(struct hostd *h, const char *vm, int64_t since_us,
		       unsigned limit, json_t *arr);
/* Delete all but the newest `keep` events. */
int store_events_prune(struct hostd *h, unsigned keep);
/* Highest event id stored, 0 when none (ids continue from it). */
int64_t store_events_max_id(struct hostd *h);

/* vm.c */
/* A new VM with defaults from the config (not registered yet). */
struct vm *vm_new(struct hostd *h, const char *name);
/* Insert into the registry (sorted); -EEXIST, -ENOMEM. */
int vm_register(struct hostd *h, struct vm *vm);
/* Binary search by name; NULL when not registered. */
struct vm *vm_find(struct hostd *h, const char *name);
/* Unregister, stop everything, free once the last handle is closed. */
void vm_destroy(struct vm *vm);
/* Keep the memory alive across an asynchronous operation. */
void vm_ref(struct vm *vm);
/* Drop a reference; the last one frees the VM. */
void vm_unref(struct vm *vm);
/* uv_close a handle owned by the VM, holding a reference until closed. */
void vm_close_handle(struct vm *vm, uv_handle_t *handle);
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

/* guest-info.c */
/* VMIC_CTL_INFO from the guest; 0, or < 0 to close the link. */
int guest_info_on_frame(struct vm *vm, const struct vmic_frame *f);

/* host-services.c */
struct host_service {
	uint8_t id;
	void (*on_up)(struct vm *vm);   /* session up, service enabled */
	void (*on_down)(struct vm *vm); /* session down or service disabled */
	/* A checked frame of this service; < 0 closes the link. */
	int (*on_frame)(struct vm *vm, const struct vmic_frame *f);
	/* Service-specific status when up and negotiated; NULL = OK. */
	void (*status)(const struct vm *vm, struct svc_status *st);
};
/* The host half of a service, NULL when this build has none. */
const struct host_service *host_service_get(uint8_t id);
/* Session up: on_up of every enabled service. */
void services_up(struct vm *vm);
/* Session gone: on_down of every enabled service. */
void services_down(struct vm *vm);
/* Route a checked, non-control frame to its service. */
int services_dispatch(struct vm *vm, const struct vmic_frame *f);
/* The Get-VMIntegrationService view of one service. */
void service_status(const struct vm *vm, uint8_t id, struct svc_status *st);
/* True when enabled here, session up, version agreed, guest allows it. */
bool service_usable(const struct vm *vm, uint8_t id);
/* Take the current statuses as known, without events (start-up). */
void services_init_status(struct vm *vm);
/* Emit service-status events for services whose status changed. */
void services_refresh(struct vm *vm);
/* Switch a service at run time (after the store was updated). */
void service_switch(struct vm *vm, uint8_t id, bool enabled);
/* "OK", "No Contact", ...; "" for SVC_NONE. */
const char *svc_primary_name(enum svc_primary p);

/* heartbeat.c */
/* No Contact, timer ready (part of vm_new). */
void hb_init(struct vm *vm);
/* Session up: start sending, or read Protocol Mismatch / No Contact. */
void hb_on_up(struct vm *vm);
/* Session gone or host setting off: stop, read Lost / No Contact /
 * Disabled. */
void hb_on_down(struct vm *vm);
/* Replies and errors of the heartbeat service. */
int hb_on_frame(struct vm *vm, const struct vmic_frame *f);
/* Primary and secondary status from the heartbeat state. */
void hb_status(const struct vm *vm, struct svc_status *st);
/*
 * The VM was stopped on purpose: silence from now on is expected, so the
 * heartbeat reads No Contact (not Lost Communication) until the agent is
 * back.
 */
void hb_forget_contact(struct vm *vm, const char *why);
/* Interval or threshold changed: apply at once. */
void hb_settings_changed(struct vm *vm);
/* Free what the heartbeat holds (the timer is closed by vm_destroy). */
void hb_free(struct vm *vm);
/* "OK", "OK (application critical)", "Lost Communication", ... */
const char *hb_state_name(enum hb_state s);

/* rtt.c */
/* Count one round trip, O(1). */
void rtt_add(struct rtt_hist *r, uint64_t us);
/* Value at percentile p (0..100) as a bucket's upper bound; 0 if empty. */
uint64_t rtt_percentile(const struct rtt_hist *r, double p);
/* Start a new measuring period (`stats` with "reset"). */
void rtt_reset(struct rtt_hist *r);

/* shutdown.c */
/* The `stop` command; replies through rq when it is over. */
void shutdown_start(struct vm *vm, struct ctl_request *rq, uint8_t action,
		    const char *reason, unsigned timeout_ms, bool force,
		    bool turn_off);
/* Answers of the guest's shutdown service. */
int shutdown_on_frame(struct vm *vm, const struct vmic_frame *f);
/* Connection news for a stop in progress. */
void shutdown_on_session_up(struct vm *vm);
void shutdown_on_channel_closed(struct vm *vm);
void shutdown_on_connect_failed(struct vm *vm, int err);
void shutdown_on_heartbeat_ok(struct vm *vm);
/* The VM is being removed: fail the stop, release it. */
void shutdown_abort(struct vm *vm, const char *why);

/* power.c */
/* status 0 when the VM was powered off; detail says what happened. */
typedef void (*power_cb)(struct vm *vm, int status, const char *detail);
/* Power the VM off through vm->power_off; cb runs once, later. */
int power_off(struct vm *vm, unsigned timeout_ms, power_cb cb,
	      struct power_op **out);
/* Abandon an operation: no callback, resources released. */
void power_cancel(struct power_op *op);

/* events.c */
/* Batch timer; ids continue after the highest stored one. */
void events_init(struct hostd *h);
/*
 * Record one event: logged now, stored with the next batch, delivered to
 * `events --follow` clients. vm, service, from and to may be NULL.
 */
void events_emit(struct hostd *h, const char *vm, const char *service,
		 const char *kind, const char *from, const char *to,
		 const char *fmt, ...) PRINTF_LIKE(7, 8);
/* Commit pending events now (before a query, at exit). */
int events_flush(struct hostd *h);
/* Flush, free what could not be stored, close the timer. */
void events_close(struct hostd *h);

/* ctl.c */
/* Listen on cfg.socket; -errno after logging why. */
int ctl_open(struct hostd *h);
/* Drop every client, stop listening, remove the socket file. */
void ctl_close(struct hostd *h);
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
/* The daemon a request belongs to. */
struct hostd *ctl_request_hostd(const struct ctl_request *rq);

/* ctl-commands.c */
struct ctl_command {
	const char *name;
	/* Reply through rq now, or later for asynchronous commands. */
	void (*run)(struct ctl_request *rq, struct vm *vm, json_t *args);
	bool needs_vm; /* "vm" is required and must be registered */
	const char *members; /* for error messages */
	const char *summary;
};
/* The command named exactly `name`, or NULL. */
const struct ctl_command *ctl_command_find(const char *name);
/* "version, list, ..." for unknown-command messages. */
const char *ctl_command_names(void);

/* ctl-json.c (new references, owned by the caller) */
/* The VM summary of `list`. */
json_t *vm_summary_json(const struct vm *vm);
/* The summary plus connection, heartbeat and service details. */
json_t *vm_status_json(const struct vm *vm);
/* One Get-VMIntegrationService entry. */
json_t *service_json(const struct vm *vm, uint8_t id);

#endif
