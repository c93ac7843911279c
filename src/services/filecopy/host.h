/* SPDX-License-Identifier: MIT */
/*
 * File Copy, host half: what its files share. host.c holds the entry,
 * the per-VM list of copies and the two commands' checks; host-put.c
 * runs a copy into the guest, host-get.c one out of it. Each copy is a
 * long operation of the control socket (ctl_op_*) whose descriptor the
 * CLI opened with the user's own rights.
 */
#ifndef VMIC_SERVICES_FILECOPY_HOST_H
#define VMIC_SERVICES_FILECOPY_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include "host/service-api.h"
#include "services/filecopy/filecopy.h"

#define FC_HOST_ID VMIC_SVC_FILECOPY
/* The guest answers a PUT or GET once its end is open: this long. */
#define FC_ACCEPT_TIMEOUT_MS 30000
/* The host has memory to spare, the agent does not (4 MiB in all): the
 * host reads in larger pieces and lets more arrive ahead of its writes,
 * so the guest's side sets the pace. */
#define FC_HOST_PUMP_BUF (1024u * 1024)
#define FC_HOST_SINK_WINDOW (4u * 1024 * 1024)
/* Progress lines at most this often. */
#define FC_PROGRESS_US 200000

struct vmic_fc_hasher;

/* One copy, either way. */
struct fc_xfer {
	struct fc_xfer *next;
	struct vm *vm;        /* referenced */
	struct ctl_op *op;    /* NULL once ended (a leftover waits for the
				 guest's answer to close its end) */
	bool put;             /* into the guest */
	int fd;               /* the CLI's descriptor, taken */
	uint32_t stream_id;
	uint32_t rid;         /* the request waiting, 0 when none */
	struct vmic_fdstream *fs; /* the pump or sink, NULL once ended */
	struct vmic_fc_hasher *hash;
	uint64_t size;        /* expected, VMIC_FC_SIZE_UNKNOWN */
	uint32_t mode;
	int64_t mtime_ns;
	bool sparse;          /* GET: the guest's file has holes */
	bool owned;           /* GET: the guest told the owner */
	uint32_t uid, gid;    /* GET: with owned */
	uint64_t start_us, last_progress_us;
	bool accepted;        /* the guest opened its end */
	bool data_done;       /* the pump or sink ended well */
	int aborted;          /* PUT: the pump was reset before the answer
				 came (the answer says why), 0 */
	char abort_msg[256];
	bool guest_done;      /* GET: the guest's DONE came */
	uint8_t guest_hash[VMIC_FC_HASH_LEN];
	uint64_t guest_bytes;
	char path[VMIC_FC_PATH_MAX + 1];
	struct vmic_fc_put msg; /* PUT: what was asked */
};

/* host.c */
/* The service can serve vm now; else the error is answered (false). */
bool fc_host_usable(struct ctl_request *rq, struct vm *vm);
/* uid and gid (-1: not given) as an owner to give: both or neither,
 * each 0..2^32-2; sets VMIC_FC_F_OWNER in *flags. False after answering
 * invalid-argument. */
bool fc_host_owner(struct ctl_request *rq, json_int_t uid, json_int_t gid,
		   uint8_t *flags, uint32_t *u, uint32_t *g);
/* path is an absolute guest path that fits; else invalid-argument. */
bool fc_host_path_ok(struct ctl_request *rq, const char *path);
/* A new copy of vm (referenced), in its list; NULL without memory. */
struct fc_xfer *fc_host_xfer_new(struct vm *vm, bool put);
/* Cancel its stream and request, close its descriptor, free it. */
void fc_host_xfer_free(struct fc_xfer *x);
/* End the operation with an error (code of docs/control.md) and free
 * the copy, unless free_later (a leftover keeps waiting). */
void fc_host_fail(struct fc_xfer *x, const char *code, const char *fmt, ...)
	PRINTF_LIKE(3, 4);
/* The guest answered with an error frame: end the operation with it. */
void fc_host_fail_frame(struct fc_xfer *x, const struct vmic_frame *f);
/* A fresh stream id of the host's side for vm. */
uint32_t fc_host_stream_id(struct vm *vm);
/* Progress now and then ({"bytes", "total"}). */
void fc_host_progress(struct fc_xfer *x, uint64_t bytes, bool force);
/* The result's common members: path, bytes, hash, seconds. */
json_t *fc_host_result(struct fc_xfer *x, uint64_t bytes,
		       const uint8_t hash[VMIC_FC_HASH_LEN]);
extern const struct ctl_op_ops fc_host_op_ops;

/* host-put.c */
void fc_host_put_start(struct ctl_request *rq, struct vm *vm,
		       const struct vmic_fc_put *m);
/* host-tree.c: the directories and links of vmic copy -r */
void fc_host_cmd_mkdir(struct ctl_request *rq, struct vm *vm, json_t *args);
void fc_host_cmd_symlink(struct ctl_request *rq, struct vm *vm,
			 json_t *args);
/* host-get.c */
/* type: VMIC_FC_GET (a file) or VMIC_FC_LIST (a directory's listing). */
void fc_host_get_start(struct ctl_request *rq, struct vm *vm,
		       const char *path, uint8_t type);

#endif
