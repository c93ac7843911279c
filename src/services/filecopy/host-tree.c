/* SPDX-License-Identifier: MIT */
/*
 * File Copy, host half: `mkdir-in-guest` and `symlink-in-guest`, the
 * directories and symbolic links of a tree `vmic copy -r` copies into the
 * guest (its files are `copy-to-guest` operations). Each is one request
 * to the guest, answered when the guest has answered.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "services/filecopy/host.h"

/* A command waiting for the guest. */
struct fc_call {
	struct ctl_request *rq;
	struct vm *vm;
};

static bool on_answer(struct vm *vm, void *ud, const struct vmic_frame *f,
		      int err)
{
	struct fc_call *call = ud;
	char text[VMIC_ERROR_MSG_MAX + 1];
	struct vmic_fc_reply rep;
	uint16_t code;

	if (!f) {
		ctl_reply_error(call->rq,
				err == -ETIMEDOUT   ? "timeout"
				: err == -ECANCELED ? "cancelled"
						    : "not-connected",
				"the guest did not answer: %s", strerror(-err));
	} else if (f->type == VMIC_T_ERROR) {
		code = conn_peer_error(f, text, sizeof(text));
		ctl_reply_error(call->rq,
				code == VMIC_E_DISABLED ? "service-unavailable"
				: code == VMIC_E_FAILED ? "failed"
							: "refused",
				"the guest: %s", text);
	} else if (vmic_fc_reply_decode(f->payload, f->length, &rep) < 0 ||
		   rep.stage != VMIC_FC_DONE) {
		vm_bad_frame(vm);
		ctl_reply_error(call->rq, "refused",
				"the guest's answer does not decode");
	} else {
		ctl_reply_ok(call->rq,
			     json_pack("{s:b}", "existed",
				       (rep.flags & VMIC_FC_F_EXISTS) != 0));
	}
	vm_unref(call->vm);
	free(call);
	return false;
}

static void ask(struct ctl_request *rq, struct vm *vm, uint8_t type,
		const uint8_t *buf, int n)
{
	struct fc_call *call = calloc(1, sizeof(*call));
	uint32_t id;
	int r;

	if (!call || n < 0) {
		free(call);
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	call->rq = rq;
	call->vm = vm;
	vm_ref(vm);
	r = request_send(vm, FC_HOST_ID, type, buf, (size_t)n,
			 FC_ACCEPT_TIMEOUT_MS, on_answer, call, &id);
	if (r < 0) {
		vm_unref(vm);
		free(call);
		ctl_reply_error(rq, r == -EBUSY ? "limit" : "not-connected",
				"cannot ask the guest: %s", strerror(-r));
	}
}

void fc_host_cmd_mkdir(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	static struct vmic_fc_mkdir m;
	uint8_t buf[VMIC_FC_MKDIR_MAX_LEN];
	json_int_t mode = 0755, mtime = -1, uid = -1, gid = -1;
	int parents = 0, exist_ok = 0;
	const char *path;

	if (!ctl_args_unpack(rq, "mkdir-in-guest", args,
			     "{s:s, s?I, s?I, s?b, s?b, s?I, s?I}", "path", &path,
			     "mode", &mode, "mtime_ns", &mtime, "parents",
			     &parents, "exist_ok", &exist_ok, "uid", &uid,
			     "gid", &gid) ||
	    !fc_host_path_ok(rq, path))
		return;
	if (mode < 0 || (mode & ~(json_int_t)VMIC_FC_MODE_MASK)) {
		ctl_reply_error(rq, "invalid-argument",
				"mode must be permission bits (0..01777)");
		return;
	}
	if (!fc_host_usable(rq, vm))
		return;
	memset(&m, 0, sizeof(m));
	m.flags = (parents ? VMIC_FC_F_PARENTS : 0) |
		  (exist_ok ? VMIC_FC_F_EXISTS : 0);
	if (!fc_host_owner(rq, uid, gid, &m.flags, &m.uid, &m.gid))
		return;
	m.mode = (uint32_t)mode;
	m.mtime_ns = mtime >= 0 ? mtime : VMIC_FC_MTIME_NONE;
	snprintf(m.path, sizeof(m.path), "%s", path);
	ask(rq, vm, VMIC_FC_MKDIR, buf,
	    vmic_fc_mkdir_encode(&m, buf, sizeof(buf)));
}

void fc_host_cmd_symlink(struct ctl_request *rq, struct vm *vm,
			 json_t *args)
{
	static struct vmic_fc_symlink m;
	static uint8_t buf[VMIC_FC_SYMLINK_MAX_LEN];
	const char *path, *target;
	json_int_t mtime = -1, uid = -1, gid = -1;
	int force = 0;

	if (!ctl_args_unpack(rq, "symlink-in-guest", args,
			     "{s:s, s:s, s?I, s?b, s?I, s?I}", "path", &path,
			     "target", &target, "mtime_ns", &mtime, "force",
			     &force, "uid", &uid, "gid", &gid) ||
	    !fc_host_path_ok(rq, path))
		return;
	if (!target[0] || strlen(target) > VMIC_FC_PATH_MAX) {
		ctl_reply_error(rq, "invalid-argument",
				"target must be 1 to %d bytes",
				VMIC_FC_PATH_MAX);
		return;
	}
	if (!fc_host_usable(rq, vm))
		return;
	memset(&m, 0, sizeof(m));
	m.flags = force ? VMIC_FC_F_FORCE : 0;
	if (!fc_host_owner(rq, uid, gid, &m.flags, &m.uid, &m.gid))
		return;
	m.mtime_ns = mtime >= 0 ? mtime : VMIC_FC_MTIME_NONE;
	snprintf(m.path, sizeof(m.path), "%s", path);
	snprintf(m.target, sizeof(m.target), "%s", target);
	ask(rq, vm, VMIC_FC_SYMLINK, buf,
	    vmic_fc_symlink_encode(&m, buf, sizeof(buf)));
}
