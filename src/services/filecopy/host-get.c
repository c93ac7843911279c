/* SPDX-License-Identifier: MIT */
/*
 * File Copy, host half: a file out of the guest. GET asks the guest to
 * pump the file into a stream of the host's id; the guest answers once
 * with the file's size, mode and mtime before it sends any data, and the
 * host opens its end (a sink into the CLI's descriptor, written on the
 * thread pool for a file) on that answer, so the credit it grants finds
 * the guest's end open and the data finds the host's. The guest answers
 * again at the end with the XXH3-128 of what it read, which must equal
 * the hash of what arrived. The CLI renames its temporary into place
 * only after this operation's success.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "services/filecopy/hash.h"
#include "services/filecopy/host.h"

/* Both the data and the guest's DONE are in: compare, end. */
static void maybe_finish(struct fc_xfer *x)
{
	uint8_t mine[VMIC_FC_HASH_LEN];
	json_t *res;

	if (!x->data_done || !x->guest_done)
		return;
	vmic_fc_hasher_digest(x->hash, mine);
	if (x->guest_bytes != vmic_fc_hasher_bytes(x->hash) ||
	    memcmp(mine, x->guest_hash, VMIC_FC_HASH_LEN) != 0) {
		fc_host_fail(x, "failed",
			     "%s was damaged on the way (%llu bytes arrived "
			     "of %llu, or their XXH3-128 differs): discard "
			     "what was written",
			     x->path,
			     (unsigned long long)vmic_fc_hasher_bytes(x->hash),
			     (unsigned long long)x->guest_bytes);
		return;
	}
	res = fc_host_result(x, x->guest_bytes, mine);
	if (res) {
		json_object_set_new(res, "mode", json_integer(x->mode));
		json_object_set_new(res, "mtime_ns", json_integer(x->mtime_ns));
		json_object_set_new(res, "sparse", json_boolean(x->sparse));
		if (x->owned) {
			json_object_set_new(res, "uid", json_integer(x->uid));
			json_object_set_new(res, "gid", json_integer(x->gid));
		}
	}
	ctl_op_end(x->op, res);
	x->op = NULL;
	fc_host_xfer_free(x);
}

static const struct vmic_fdstream_ops sink_ops;
static const struct vmic_fdstream_opts sink_opts = {
	.window = FC_HOST_SINK_WINDOW,
};

static bool on_get(struct vm *vm, void *ud, const struct vmic_frame *f,
		   int err)
{
	struct fc_xfer *x = ud;
	struct vmic_fc_reply rep;

	if (!f) {
		x->rid = 0;
		fc_host_fail(x,
			     err == -ECANCELED ? "cancelled" : "not-connected",
			     "the channel to the guest closed during the copy "
			     "of %s: discard what was written",
			     x->path);
		return false;
	}
	if (f->type == VMIC_T_ERROR) {
		x->rid = 0;
		fc_host_fail_frame(x, f);
		return false;
	}
	if (vmic_fc_reply_decode(f->payload, f->length, &rep) < 0) {
		x->rid = 0;
		vm_bad_frame(vm);
		fc_host_fail(x, "refused",
			     "the guest's answer to the copy does not decode");
		return false;
	}
	if (rep.stage == VMIC_FC_ACCEPTED) {
		int r = x->accepted ? -EPROTO
				    : vmic_fdstream_sink(vm_link(vm),
							 x->stream_id,
							 FC_HOST_ID, x->fd,
							 &sink_opts, &sink_ops,
							 x, &x->fs);
		char msg[256];

		x->accepted = true;
		if (r < 0) {
			x->rid = 0;
			fc_host_fail(x, conn_stream_error(vm, r, msg,
							  sizeof(msg)),
				     "%s", msg);
			return false;
		}
		x->size = rep.size;
		x->mode = rep.mode;
		x->mtime_ns = rep.mtime_ns;
		x->sparse = rep.flags & VMIC_FC_F_SPARSE;
		x->owned = rep.flags & VMIC_FC_F_OWNER;
		x->uid = rep.uid;
		x->gid = rep.gid;
		fc_host_progress(x, vmic_fc_hasher_bytes(x->hash), true);
		return true; /* DONE follows */
	}
	x->rid = 0;
	x->guest_done = true;
	x->guest_bytes = rep.size;
	memcpy(x->guest_hash, rep.hash, VMIC_FC_HASH_LEN);
	maybe_finish(x);
	return false;
}

static void sink_done(void *ud, struct vmic_fdstream *f, int err,
		      uint16_t code, const char *message)
{
	struct fc_xfer *x = ud;

	(void)f;
	(void)code;
	x->fs = NULL;
	if (err == -ECONNABORTED) {
		fc_host_fail(x, "failed", "the guest, reading %s: %s", x->path,
			     message);
		return;
	}
	if (err == -ENOTCONN || err == -ECONNRESET) {
		fc_host_fail(x, "not-connected",
			     "the channel to the guest closed during the copy "
			     "of %s: discard what was written", x->path);
		return;
	}
	if (err < 0) {
		fc_host_fail(x, "failed", "writing the destination: %s",
			     message);
		return;
	}
	x->data_done = true;
	fc_host_progress(x, vmic_fc_hasher_bytes(x->hash), true);
	maybe_finish(x);
}

static void sink_chunk(void *ud, const uint8_t *p, size_t n)
{
	struct fc_xfer *x = ud;

	vmic_fc_hasher_update(x->hash, p, n);
	fc_host_progress(x, vmic_fc_hasher_bytes(x->hash), false);
}

static const struct vmic_fdstream_ops sink_ops = {
	.on_done = sink_done,
	.on_chunk = sink_chunk,
};

void fc_host_get_start(struct ctl_request *rq, struct vm *vm,
		       const char *path, uint8_t type)
{
	struct vmic_fc_get m = { 0 };
	uint8_t buf[VMIC_FC_GET_MAX_LEN];
	struct fc_xfer *x = fc_host_xfer_new(vm, false);
	int n, r;

	if (!x) {
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	snprintf(x->path, sizeof(x->path), "%s", path);
	x->stream_id = fc_host_stream_id(vm);
	x->op = ctl_op_start(rq, vm, &fc_host_op_ops, x);
	if (!x->op) {
		fc_host_xfer_free(x);
		return;
	}
	x->fd = ctl_op_take_fd(x->op, 0);
	m.stream_id = x->stream_id;
	snprintf(m.path, sizeof(m.path), "%s", path);
	n = vmic_fc_get_encode(&m, buf, sizeof(buf));
	r = n < 0 ? n
		  : request_send(vm, FC_HOST_ID, type, buf, (size_t)n,
				 0, on_get, x, &x->rid);
	if (r < 0)
		fc_host_fail(x, r == -EBUSY ? "limit" : "not-connected",
			     "cannot ask the guest for %s: %s", path,
			     strerror(-r));
}
