/* SPDX-License-Identifier: MIT */
/*
 * The KVP service's guest half, shared by its files:
 *
 *   guest.c        the service entry: config, session, the host's
 *                  batches into pools 0 and 3, pools 1 and 2 to the host
 *   guest-files.c  the pool files: one job at a time on a worker thread
 *                  (read, write, collect the Auto facts), the directory
 *                  watch (inotify through uv_fs_event)
 *   guest-auto.c   the Auto pool's facts, and what says they changed
 *                  (netlink address events, the kernel's host name)
 *   guest-cli.c    `vmic-guestd kvp ...`: the pools from the command line
 *
 * Everything here runs on the agent's loop but the jobs' work functions.
 */
#ifndef VMIC_SERVICES_KVP_GUEST_H
#define VMIC_SERVICES_KVP_GUEST_H

#include <stdbool.h>
#include <uv.h>

#include "common/ratelimit.h"
#include "guest/service-api.h"
#include "services/kvp/kvp.h"
#include "services/kvp/poolfile.h"
#include "services/kvp/sync.h"
#include "services/kvp/table.h"

#define KVP_DEFAULT_DIR "/var/lib/hyperv"
#define KVP_DIR_MAX 1024
/* The host's VM id, recorded beside the pool files. */
#define KVP_ID_FILE ".vmic_vm_id"
/* Records a pool of the guest takes from one file or from the host. */
#define KVP_GUEST_MAX_RECORDS 100000

/* [kvp] keys of vmic-guestd.conf. */
struct kvp_guest_conf {
	char dir[KVP_DIR_MAX];
};

enum kvp_job_kind {
	KVP_JOB_INIT,  /* make the directory and files, read id and pool 1 */
	KVP_JOB_ID,    /* record the host's VM id */
	KVP_JOB_WRITE, /* a snapshot of a pool into its file */
	KVP_JOB_APPLY, /* the keys of a pool that changed, into its file */
	KVP_JOB_READ,  /* pool 1's file into a table */
	KVP_JOB_AUTO,  /* collect the Auto facts into a table */
};

/* One job on the worker: its input and its result. */
struct kvp_job {
	uv_work_t work;
	struct kvp_guest *k;
	enum kvp_job_kind kind;
	unsigned pool;
	char dir[KVP_DIR_MAX];
	char vm_id[VMIC_KVP_ID_MAX + 1];
	struct kvp_table table;   /* WRITE: the pool; APPLY: the keys set */
	struct kvp_table deletes; /* APPLY: the keys deleted */
	struct kvp_file_stats st;
	size_t host_records; /* INIT: records in the files of pools 0, 3 */
	int err;           /* of the job's file (pool, or the id) */
	const char *doing; /* what failed, for the log */
	int create_err;    /* INIT: the first pool file not made, which */
	unsigned create_pool;
	int id_err;        /* INIT: the recorded id's file is not usable */
	uint64_t started_ms; /* loop time it was queued */
};

struct kvp_guest {
	struct guestd *g;
	const struct kvp_guest_conf *conf;
	struct kvp_table pools[VMIC_KVP_POOLS];
	struct kvp_inbox in[VMIC_KVP_POOLS];   /* pools 0 and 3 */
	struct kvp_outbox out[VMIC_KVP_POOLS]; /* pools 1 and 2 */
	/* the session */
	struct guest_conn *conn; /* while a session is up */
	bool identified;   /* the host's IDENTITY came this session */
	bool host_refused; /* the host answered an error: wait for IDENTITY */
	bool cap_logged;
	unsigned ninflight; /* our batches waiting in the tracker */
	uint8_t *buf;      /* a frame being built */
	char vm_id[VMIC_KVP_ID_MAX + 1]; /* as recorded beside the files */
	bool initialised;  /* the INIT job is done */
	size_t host_records; /* in the files of pools 0 and 3 at start */
	/* an IDENTITY that came before the INIT job was done, and the
	 * host's batches that followed it (the host does not wait for its
	 * answer): at most its window, answered once the IDENTITY is */
	bool identity_waiting;
	uint32_t identity_request;
	char identity[VMIC_KVP_ID_MAX + 1];
	struct kvp_held {
		uint8_t type;
		uint32_t request_id;
		uint32_t length;
		uint8_t *payload;
	} held[VMIC_KVP_WINDOW];
	unsigned nheld;
	/* guest-files.c */
	struct kvp_job *job; /* running, or NULL */
	bool write_due[VMIC_KVP_POOLS]; /* the whole file is to be written */
	/* keys of pools 0 and 3 changed outside a copy: their records are
	 * to be changed in the file (not the whole file written) */
	struct kvp_table file_dirty[VMIC_KVP_POOLS];
	bool read_due, auto_due, id_due;
	uv_fs_event_t watch;
	bool watching;
	struct vmic_ratelimit file_log;
	/* guest-auto.c */
	uv_poll_t nl_poll;
	int nl_fd;
	uv_poll_t host_poll;
	int host_fd;
	uv_timer_t auto_timer;
	int handles; /* open handles */
	bool stopping;
};

/* guest.c */
/* The INIT job is done: answer an IDENTITY that waited for it. */
void kvp_guest_initialised(struct kvp_guest *k);
/* Records of pool 1 or 2 changed (a file read, new facts): send them. */
void kvp_guest_pool_changed(struct kvp_guest *k, unsigned pool,
			    const char *key, size_t klen);
/* Send what is due while the window has room. */
void kvp_guest_pump(struct kvp_guest *k);

/* guest-files.c */
/* The first job (directory, files, id, pool 1), then the watch. */
void kvp_files_start(struct kvp_guest *k);
/* Stop watching; a running job finishes on its own. */
void kvp_files_stop(struct kvp_guest *k);
/* Start the next due job unless one runs. */
void kvp_files_kick(struct kvp_guest *k);
/* The job still running, for the agent's stop deadline ("" if none). */
void kvp_files_pending(struct kvp_guest *k, char *buf, size_t n);

/* guest-auto.c */
/*
 * The Auto pool's records (Hyper-V's keys, references.md) into t, which
 * is empty: host name, FQDN, agent version, addresses, OS and kernel,
 * architecture. Reads files and the interfaces: the worker's.
 */
void kvp_auto_collect(struct kvp_table *t);
/* Watch what changes the facts (addresses, host name); on a change,
 * auto_due is set and a job kicked. Failures only cost freshness. */
void kvp_auto_watch_start(struct kvp_guest *k);
void kvp_auto_watch_stop(struct kvp_guest *k);
/* A handle of k closed (uv_close callback for every handle of k). */
void kvp_guest_handle_closed(uv_handle_t *h);

/* guest-cli.c */
int kvp_cli_run(struct guestd *g, int argc, char **argv);

#endif
