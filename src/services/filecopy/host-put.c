/* SPDX-License-Identifier: MIT */
/*
 * File Copy, host half: a file into the guest. PUT asks the guest to open
 * a temporary and its end of the stream, and the CLI's descriptor is
 * pumped into the stream (read on the thread pool) and hashed as it is
 * read, at once: the PUT frame goes before any data frame, so the guest
 * opens its end before the data arrives, and the credit it grants finds
 * the host's end open. When the guest refuses, its link resets the data
 * of a stream it does not have, and the answer to PUT says why. COMMIT
 * then carries the hash and length (after the PUT was accepted), and
 * the guest's answer says whether the file is in place.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "services/filecopy/hash.h"
#include "services/filecopy/host.h"

static const char *lost_code(int err)
{
	return err == -ETIMEDOUT ? "timeout"
	       : err == -ECANCELED ? "cancelled"
				   : "not-connected";
}

static bool on_commit(struct vm *vm, void *ud, const struct vmic_frame *f,
		      int err)
{
	struct fc_xfer *x = ud;
	struct vmic_fc_reply rep;
	uint8_t mine[VMIC_FC_HASH_LEN];

	(void)vm;
	x->rid = 0;
	if (!f) {
		fc_host_fail(x, lost_code(err),
			     "the guest did not confirm %s (%s): it was "
			     "either completed whole or not at all",
			     x->path, strerror(-err));
		return false;
	}
	if (f->type == VMIC_T_ERROR) {
		fc_host_fail_frame(x, f);
		return false;
	}
	vmic_fc_hasher_digest(x->hash, mine);
	if (vmic_fc_reply_decode(f->payload, f->length, &rep) < 0 ||
	    rep.stage != VMIC_FC_DONE ||
	    memcmp(rep.hash, mine, VMIC_FC_HASH_LEN) != 0) {
		vm_bad_frame(x->vm);
		fc_host_fail(x, "refused",
			     "the guest's confirmation of %s does not decode "
			     "or names another hash", x->path);
		return false;
	}
	ctl_op_end(x->op, fc_host_result(x, rep.size, mine));
	x->op = NULL;
	fc_host_xfer_free(x);
	return false;
}

static int send_commit(struct fc_xfer *x)
{
	struct vmic_fc_commit m = { .stream_id = x->stream_id };
	uint8_t buf[VMIC_FC_COMMIT_LEN];
	int n;

	m.bytes = vmic_fc_hasher_bytes(x->hash);
	vmic_fc_hasher_digest(x->hash, m.hash);
	n = vmic_fc_commit_encode(&m, buf, sizeof(buf));
	if (n < 0)
		return n;
	/* No timeout: the guest fsyncs, which may take long. */
	return request_send(x->vm, FC_HOST_ID, VMIC_FC_COMMIT, buf, (size_t)n,
			    0, on_commit, x, &x->rid);
}

static void pump_done(void *ud, struct vmic_fdstream *f, int err,
		      uint16_t code, const char *message)
{
	struct fc_xfer *x = ud;
	int r;

	(void)f;
	(void)code;
	x->fs = NULL;
	if (err < 0 && !x->accepted && x->rid) {
		/* The answer to PUT tells the reason. */
		x->aborted = err;
		snprintf(x->abort_msg, sizeof(x->abort_msg), "%s", message);
		return;
	}
	if (err == -ECONNABORTED) {
		fc_host_fail(x, "failed", "the guest, writing %s: %s", x->path,
			     message);
		return;
	}
	if (err == -ENOTCONN || err == -ECONNRESET) {
		fc_host_fail(x, "not-connected",
			     "the channel to the guest closed during the copy "
			     "of %s; nothing was written there", x->path);
		return;
	}
	if (err < 0) {
		fc_host_fail(x, "failed", "reading the source: %s", message);
		return;
	}
	x->data_done = true;
	fc_host_progress(x, vmic_fc_hasher_bytes(x->hash), true);
	if (!x->accepted)
		return; /* COMMIT once the guest said yes */
	r = send_commit(x);
	if (r < 0)
		fc_host_fail(x, "not-connected",
			     "cannot confirm the copy of %s to the guest: %s",
			     x->path, strerror(-r));
}

static void pump_chunk(void *ud, const uint8_t *p, size_t n)
{
	struct fc_xfer *x = ud;

	vmic_fc_hasher_update(x->hash, p, n);
	fc_host_progress(x, vmic_fc_hasher_bytes(x->hash), false);
}

static const struct vmic_fdstream_ops pump_ops = {
	.on_done = pump_done,
	.on_chunk = pump_chunk,
};

static bool on_put(struct vm *vm, void *ud, const struct vmic_frame *f,
		   int err)
{
	struct fc_xfer *x = ud;
	struct vmic_fc_reply rep;
	int r;

	x->rid = 0;
	if (!f) {
		fc_host_fail(x, lost_code(err),
			     "the guest did not answer the copy of %s: %s",
			     x->path, strerror(-err));
		return false;
	}
	if (f->type == VMIC_T_ERROR) {
		fc_host_fail_frame(x, f);
		return false;
	}
	if (vmic_fc_reply_decode(f->payload, f->length, &rep) < 0 ||
	    rep.stage != VMIC_FC_ACCEPTED) {
		vm_bad_frame(vm);
		fc_host_fail(x, "refused",
			     "the guest's answer to the copy does not decode");
		return false;
	}
	x->accepted = true;
	if (x->aborted) {
		fc_host_fail(x, x->aborted == -ECONNABORTED ? "failed"
							     : "not-connected",
			     "%s", x->abort_msg);
		return false;
	}
	if (x->data_done) {
		r = send_commit(x);
		if (r < 0)
			fc_host_fail(x, "not-connected",
				     "cannot confirm the copy of %s to the "
				     "guest: %s", x->path, strerror(-r));
	}
	return false;
}

void fc_host_put_start(struct ctl_request *rq, struct vm *vm,
		       const struct vmic_fc_put *m)
{
	uint8_t buf[VMIC_FC_PUT_MAX_LEN];
	struct fc_xfer *x = fc_host_xfer_new(vm, true);
	char msg[256];
	int n, r;

	if (!x) {
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	x->msg = *m;
	x->size = m->size;
	x->stream_id = fc_host_stream_id(vm);
	x->msg.stream_id = x->stream_id;
	snprintf(x->path, sizeof(x->path), "%s", m->path);
	x->op = ctl_op_start(rq, vm, &fc_host_op_ops, x);
	if (!x->op) {
		fc_host_xfer_free(x);
		return;
	}
	x->fd = ctl_op_take_fd(x->op, 0);
	n = vmic_fc_put_encode(&x->msg, buf, sizeof(buf));
	r = n < 0 ? n
		  : request_send(vm, FC_HOST_ID, VMIC_FC_PUT, buf, (size_t)n,
				 FC_ACCEPT_TIMEOUT_MS, on_put, x, &x->rid);
	if (r < 0) {
		fc_host_fail(x, r == -EBUSY ? "limit" : "not-connected",
			     "%s: %s", r == -EBUSY ? "too many copies with this "
						     "VM at once; wait for one "
						     "to end"
						   : "cannot ask the guest",
			     strerror(-r));
		return;
	}
	r = vmic_fdstream_pump(vm_link(vm), x->stream_id, FC_HOST_ID, x->fd,
			       &(struct vmic_fdstream_opts){
				       .buf_size = FC_HOST_PUMP_BUF },
			       &pump_ops, x, &x->fs);
	if (r < 0) {
		const char *code = conn_stream_error(vm, r, msg, sizeof(msg));

		fc_host_fail(x, code, "%s", msg);
	}
}
