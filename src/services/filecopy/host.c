/* SPDX-License-Identifier: MIT */
/*
 * File Copy, host half: the entry, the copies of each VM, and the two
 * commands `copy-to-guest` and `copy-from-guest` (docs/control.md). The
 * commands check what they can before the operation starts (the service
 * on here and in the guest, the channel up, the path sane), so that the
 * common mistakes are answered with a sentence that says where to look.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/utf8.h"
#include "proto/services.h"
#include "services/filecopy/hash.h"
#include "services/filecopy/host.h"

/* The per-VM state: its copies running, and the last stream id used. */
struct fc_vm {
	struct fc_xfer *list;
	uint32_t last_id;
};

static struct fc_vm *fc_vm_of(struct vm *vm)
{
	return vm_state(vm, FC_HOST_ID);
}

/* Ids of the host's side the link's own counter reaches only after a
 * billion streams: no clash with the streams other services open. */
#define FC_ID_BASE 0x40000000u
#define FC_ID_MASK 0x3fffffffu

uint32_t fc_host_stream_id(struct vm *vm)
{
	struct fc_vm *fv = fc_vm_of(vm);

	fv->last_id = (fv->last_id + 1) & FC_ID_MASK;
	return FC_ID_BASE | fv->last_id;
}

struct fc_xfer *fc_host_xfer_new(struct vm *vm, bool put)
{
	struct fc_vm *fv = fc_vm_of(vm);
	struct fc_xfer *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->hash = vmic_fc_hasher_new();
	if (!x->hash) {
		free(x);
		return NULL;
	}
	x->vm = vm;
	vm_ref(vm);
	x->put = put;
	x->fd = -1;
	x->size = VMIC_FC_SIZE_UNKNOWN;
	x->start_us = hostd_now_us(vm_hostd(vm));
	x->next = fv->list;
	fv->list = x;
	return x;
}

void fc_host_xfer_free(struct fc_xfer *x)
{
	struct fc_vm *fv = fc_vm_of(x->vm);
	struct fc_xfer **pp = fv ? &fv->list : NULL;

	while (pp && *pp && *pp != x)
		pp = &(*pp)->next;
	if (pp && *pp)
		*pp = x->next;
	if (x->fs)
		vmic_fdstream_cancel(x->fs, VMIC_E_FAILED,
				     "the copy was abandoned on the host");
	if (x->rid)
		request_cancel(x->vm, x->rid);
	if (x->fd >= 0)
		close(x->fd);
	vmic_fc_hasher_free(x->hash);
	vm_unref(x->vm);
	free(x);
}

void fc_host_fail(struct fc_xfer *x, const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (x->op)
		ctl_op_fail(x->op, code, "%s", msg);
	x->op = NULL;
	fc_host_xfer_free(x);
}

void fc_host_fail_frame(struct fc_xfer *x, const struct vmic_frame *f)
{
	char text[VMIC_ERROR_MSG_MAX + 1];
	uint16_t code = conn_peer_error(f, text, sizeof(text));

	fc_host_fail(x,
		     code == VMIC_E_DISABLED || code == VMIC_E_VERSION
			     ? "service-unavailable"
		     : code == VMIC_E_BUSY ? "limit"
		     : code == VMIC_E_FAILED ? "failed"
					     : "refused",
		     "the guest: %s", text);
}

void fc_host_progress(struct fc_xfer *x, uint64_t bytes, bool force)
{
	uint64_t now = hostd_now_us(vm_hostd(x->vm));
	json_t *p;

	if (!x->op || (!force && now - x->last_progress_us < FC_PROGRESS_US))
		return;
	x->last_progress_us = now;
	p = json_pack("{s:I}", "bytes", (json_int_t)bytes);
	if (p && x->size != VMIC_FC_SIZE_UNKNOWN &&
	    x->size <= (uint64_t)INT64_MAX)
		json_object_set_new(p, "total", json_integer((json_int_t)x->size));
	if (p)
		ctl_op_progress(x->op, p);
}

json_t *fc_host_result(struct fc_xfer *x, uint64_t bytes,
		       const uint8_t hash[VMIC_FC_HASH_LEN])
{
	uint64_t spent = hostd_now_us(vm_hostd(x->vm)) - x->start_us;
	char hex[33];

	vmic_fc_hash_hex(hash, hex);
	return json_pack("{s:s, s:I, s:s, s:f}", "path", x->path, "bytes",
			 (json_int_t)bytes, "hash", hex, "seconds",
			 (double)spent / 1e6);
}

static void op_cancel(void *ud, struct ctl_op *op, enum ctl_op_cancel why)
{
	struct fc_xfer *x = ud;

	(void)op;
	fc_host_fail(x, "cancelled", "%s%s", ctl_op_cancel_text(why),
		     x->put && x->rid && !x->fs && x->data_done
			     ? " (the guest may still complete the file: "
			       "its data had all arrived)"
			     : "");
}

const struct ctl_op_ops fc_host_op_ops = {
	.on_cancel = op_cancel,
};

bool fc_host_usable(struct ctl_request *rq, struct vm *vm)
{
	struct svc_status st;

	if (!vm_service_enabled(vm, FC_HOST_ID)) {
		ctl_reply_error(rq, "service-unavailable",
				"File Copy is disabled for %s on the host: "
				"switch it on with `vmic enable %s filecopy`",
				vm_name(vm), vm_name(vm));
		return false;
	}
	if (!conn_up(vm)) {
		ctl_reply_error(rq, "not-connected",
				"%s is not connected (its channel is %s): "
				"is the VM running with vmic-guestd?",
				vm_name(vm), vm_connection_state(vm));
		return false;
	}
	service_status(vm, FC_HOST_ID, &st);
	if (st.guest_enabled == 0) {
		ctl_reply_error(rq, "service-unavailable",
				"File Copy is switched off in %s's agent: set "
				"[filecopy] enabled = yes (and write-dirs, "
				"read-dirs) in its vmic-guestd.conf",
				vm_name(vm));
		return false;
	}
	if (!service_usable(vm, FC_HOST_ID)) {
		ctl_reply_error(rq, "service-unavailable",
				"File Copy cannot run with %s: %s", vm_name(vm),
				st.secondary[0] ? st.secondary
						: "no common version");
		return false;
	}
	return true;
}

bool fc_host_owner(struct ctl_request *rq, json_int_t uid, json_int_t gid,
		   uint8_t *flags, uint32_t *u, uint32_t *g)
{
	if (uid == -1 && gid == -1)
		return true;
	if (uid < 0 || gid < 0 || uid >= UINT32_MAX || gid >= UINT32_MAX) {
		ctl_reply_error(rq, "invalid-argument",
				"uid and gid go together, each 0..%u",
				UINT32_MAX - 1);
		return false;
	}
	*flags |= VMIC_FC_F_OWNER;
	*u = (uint32_t)uid;
	*g = (uint32_t)gid;
	return true;
}

bool fc_host_path_ok(struct ctl_request *rq, const char *path)
{
	size_t n = strlen(path);

	if (path[0] != '/' || n > VMIC_FC_PATH_MAX) {
		ctl_reply_error(rq, "invalid-argument",
				"path must be an absolute path of the guest "
				"of at most %d bytes",
				VMIC_FC_PATH_MAX);
		return false;
	}
	return true;
}

static void cmd_copy_to(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	struct vmic_fc_put m = { .mode = 0644, .size = VMIC_FC_SIZE_UNKNOWN };
	const char *path, *name = "";
	int force = 0, parents = 0, into_dir = 0, sparse = 0;
	json_int_t mode = 0644, mtime = -1, size = -1, uid = -1, gid = -1;

	if (!ctl_args_unpack(rq, "copy-to-guest", args,
			     "{s:s, s?s, s?b, s?b, s?b, s?I, s?I, s?I, s?b, s?I, "
			     "s?I}",
			     "path", &path, "name", &name, "force", &force,
			     "parents", &parents, "into_dir", &into_dir, "mode",
			     &mode, "mtime_ns", &mtime, "size", &size, "sparse",
			     &sparse, "uid", &uid, "gid", &gid) ||
	    !fc_host_path_ok(rq, path))
		return;
	if (strlen(name) > VMIC_FC_NAME_MAX || strchr(name, '/') ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || mode < 0 ||
	    (mode & ~(json_int_t)VMIC_FC_MODE_MASK)) {
		ctl_reply_error(rq, "invalid-argument",
				"name must be one file name of at most %d "
				"bytes, and mode permission bits (0..01777)",
				VMIC_FC_NAME_MAX);
		return;
	}
	if (!fc_host_usable(rq, vm))
		return;
	snprintf(m.path, sizeof(m.path), "%s", path);
	snprintf(m.name, sizeof(m.name), "%s", name);
	m.flags = (force ? VMIC_FC_F_FORCE : 0) |
		  (parents ? VMIC_FC_F_PARENTS : 0) |
		  (into_dir ? VMIC_FC_F_INTO_DIR : 0) |
		  (sparse ? VMIC_FC_F_SPARSE : 0);
	if (!fc_host_owner(rq, uid, gid, &m.flags, &m.uid, &m.gid))
		return;
	m.mode = (uint32_t)mode;
	m.mtime_ns = mtime >= 0 ? mtime : hostd_realtime_ns(vm_hostd(vm));
	m.size = size >= 0 ? (uint64_t)size : VMIC_FC_SIZE_UNKNOWN;
	fc_host_put_start(rq, vm, &m);
}

static void cmd_copy_from(struct ctl_request *rq, struct vm *vm,
			  json_t *args)
{
	const char *path;

	if (!ctl_args_unpack(rq, "copy-from-guest", args, "{s:s}", "path",
			     &path) ||
	    !fc_host_path_ok(rq, path) || !fc_host_usable(rq, vm))
		return;
	fc_host_get_start(rq, vm, path, VMIC_FC_GET);
}

static void cmd_list(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	const char *path;

	if (!ctl_args_unpack(rq, "list-in-guest", args, "{s:s}", "path",
			     &path) ||
	    !fc_host_path_ok(rq, path) || !fc_host_usable(rq, vm))
		return;
	fc_host_get_start(rq, vm, path, VMIC_FC_LIST);
}

#define FD_ANY (CTL_FD_FILE | CTL_FD_PIPE | CTL_FD_SOCKET | CTL_FD_TTY | \
		CTL_FD_CHAR)

static const struct ctl_fd_spec to_fds[] = {
	{ "source", FD_ANY, CTL_FD_READ, false },
};
static const struct ctl_fd_spec from_fds[] = {
	{ "destination", FD_ANY, CTL_FD_WRITE, false },
};

static const struct ctl_command commands[] = {
	{ "copy-to-guest", cmd_copy_to, true,
	  "vm (string), path (string), name (string), force (boolean), "
	  "parents (boolean), into_dir (boolean), mode (integer), mtime_ns "
	  "(integer), size (integer), sparse (boolean), uid (integer), gid "
	  "(integer); descriptor: source",
	  "copy a file into the guest (a long operation)", to_fds, 1 },
	{ "copy-from-guest", cmd_copy_from, true,
	  "vm (string), path (string); descriptor: destination",
	  "copy a file out of the guest (a long operation)", from_fds, 1 },
	{ "list-in-guest", cmd_list, true,
	  "vm (string), path (string); descriptor: destination",
	  "a guest directory's listing (vmic copy -r --from-guest; a long "
	  "operation)", from_fds, 1 },
	{ "mkdir-in-guest", fc_host_cmd_mkdir, true,
	  "vm (string), path (string), mode (integer), mtime_ns (integer), "
	  "parents (boolean), exist_ok (boolean), uid (integer), gid "
	  "(integer)",
	  "make a directory in the guest (vmic copy -r)" },
	{ "symlink-in-guest", fc_host_cmd_symlink, true,
	  "vm (string), path (string), target (string), mtime_ns "
	  "(integer), force (boolean), uid (integer), gid (integer)",
	  "make a symbolic link in the guest (vmic copy -r)" },
};

static int fc_attach(struct vm *vm)
{
	struct fc_vm *fv = calloc(1, sizeof(*fv));

	if (!fv)
		return -ENOMEM;
	vm_set_state(vm, FC_HOST_ID, fv);
	return 0;
}

/* The VM goes (or the daemon stops): every copy ends now. */
static void fc_detach(struct vm *vm, enum detach_reason why)
{
	struct fc_vm *fv = fc_vm_of(vm);

	while (fv && fv->list)
		fc_host_fail(fv->list, "cancelled", "%s",
			     why == DETACH_REMOVED
				     ? "the VM was removed during the copy"
				     : "vmic-hostd is stopping");
}

static void fc_release(struct vm *vm)
{
	free(fc_vm_of(vm));
	vm_set_state(vm, FC_HOST_ID, NULL);
}

/* The guest sends the host no requests of this service. */
static int fc_on_frame(struct vm *vm, const struct vmic_frame *f)
{
	if (vmic_frame_is_request(f))
		conn_send_error(vm, f, VMIC_E_UNKNOWN_TYPE,
				"the host's filecopy service takes no "
				"requests");
	return 0;
}

const struct host_service filecopy_host = {
	.desc = &vmic_filecopy_service,
	/* A GET waits for its second answer while the file travels. */
	.max_requests = 16,
	.attach = fc_attach,
	.detach = fc_detach,
	.release = fc_release,
	.on_frame = fc_on_frame,
	.commands = commands,
	.ncommands = ARRAY_SIZE(commands),
};
