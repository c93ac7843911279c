/* SPDX-License-Identifier: MIT */
/*
 * Between hostd's libvirt worker thread (libvirt-worker.c), which makes
 * every libvirt call and runs libvirt's event loop, and the loop side
 * (libvirt.c), which changes the registry. They share struct lv and two
 * queues under one mutex: messages to the loop (bounded: the worker waits
 * for room, never the loop) and commands to the worker.
 */
#ifndef VMIC_HOST_LIBVIRT_INTERNAL_H
#define VMIC_HOST_LIBVIRT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "host/libvirt-xml.h"
#include "host/service-api.h"

#define LV_URIS_MAX 16
#define LV_URI_MAX 512
#define LV_QUEUE_MAX 256   /* messages waiting for the loop */
#define LV_TEXT_MAX 256
#define LV_RETRY_MIN_MS 1000
#define LV_RETRY_MAX_MS 60000
/* A libvirt call this long in progress reads as libvirtd not answering. */
#define LV_HUNG_MS 5000

enum lv_msg_kind {
	LV_MSG_STATE,      /* a connection's state changed: text */
	LV_MSG_LIST_BEGIN, /* a full listing of uri follows */
	LV_MSG_DOMAIN,     /* a domain with a vmic channel: dom, active */
	LV_MSG_LIST_END,   /* the listing is complete */
	LV_MSG_STOPPED,    /* dom.name/uuid shut off */
	LV_MSG_UNDEFINED,  /* dom.name/uuid is gone from libvirt */
	LV_MSG_LEFT,       /* dom migrated away: it runs elsewhere */
	LV_MSG_RESUMED,    /* dom runs again after gap_us paused */
	LV_MSG_CALL_DONE,  /* a command finished: token, status, text */
};

struct lv_msg {
	struct lv_msg *next;
	enum lv_msg_kind kind;
	unsigned uri;
	bool active;
	int status;
	uint64_t token;
	uint64_t gap_us;
	struct lvx_domain dom;
	char text[LV_TEXT_MAX];
};

enum lv_cmd_kind {
	LV_CMD_DESTROY, /* virDomainDestroy of uuid */
	LV_CMD_ATTACH,  /* add xml to the persistent definition of name */
};

struct lv_cmd {
	struct lv_cmd *next;
	enum lv_cmd_kind kind;
	unsigned uri;
	char name[LVX_NAME_MAX + 1];
	char xml[1024];
	char uuid[LVX_UUID_LEN + 1];
	uint64_t token;
};

struct lv_paused {
	char uuid[LVX_UUID_LEN + 1];
	uint64_t since_us; /* monotonic */
};

struct lv_uri {
	char uri[LV_URI_MAX];
	/* worker only */
	void *conn;         /* virConnectPtr */
	int cb_id;          /* lifecycle callback, -1 when none */
	int retry_timer;    /* libvirt timeout id, -1 when none */
	unsigned retry_ms;
	struct lv_paused paused[32];
	/* shared: monotonic start of the libvirt call in progress, 0 */
	_Atomic uint64_t busy_since_us;
	/* loop only */
	char state[32];
	char error[LV_TEXT_MAX];
	bool listing;
	uint64_t skip_logged_us; /* domains we cannot read: logged at most */
	uint64_t skips_held;     /* every 10 s, with how many were held */
	char **seen; /* names seen during a listing */
	size_t nseen, seen_cap;
};

/* A command waiting for the worker: a destroy (power backend) or a
 * libvirt-setup (rq set: answered with "cancelled" if hostd stops). */
struct lv_call {
	struct lv_call *next;
	uint64_t token;
	vm_libvirt_cb cb;
	void *ud;
	struct ctl_request *rq;
};


struct lv {
	struct hostd *h;
	uv_thread_t thread;
	bool thread_started;
	uv_async_t async;
	pthread_mutex_t mu;
	pthread_cond_t room;
	struct lv_msg *msgs, *msgs_tail;
	size_t nmsgs;
	struct lv_cmd *cmds, *cmds_tail;
	int wake_fd; /* eventfd: commands or stop for the worker */
	atomic_bool stop;
	struct lv_uri uris[LV_URIS_MAX];
	size_t nuris;
	struct lv_call *calls; /* loop: commands awaiting their answer */
	uint64_t next_token;
};

/* Worker thread body: connects every URI, runs libvirt's event loop
 * until lv->stop, closes the connections. */
void lv_worker_main(void *arg);
/* Worker: queue m for the loop (waits while the queue is full; frees m
 * and returns when stopping). */
void lv_post(struct lv *lv, struct lv_msg *m);
/* Loop: act on one message (takes it). */
void lv_handle(struct lv *lv, struct lv_msg *m);
/* Loop: the index of vm's URI among ours, or -1 (by hand, or another
 * URI). */
int lv_vm_uri_index(struct lv *lv, const struct vm *vm);
/* Loop: the worker answered a command (libvirt-calls.c). */
void lv_call_done(struct lv *lv, const struct lv_msg *m);
/* Monotonic microseconds (both sides). */
uint64_t lv_now_us(void);

#endif
