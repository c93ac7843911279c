/* SPDX-License-Identifier: MIT */
/*
 * Backup, host half: the service entry, the freeze and thaw requests
 * every command uses, `vmic freeze` / `vmic thaw`, and the status members
 * (frozen since when, what, the last thaw, backup and failure).
 *
 * The host never holds a guest frozen by itself: each freeze names an
 * auto-thaw timeout the guest enforces, the guest thaws when the session
 * ends, and the `backup` operation (host-backup.c) thaws whatever
 * happens to its command or its client.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/utf8.h"
#include "proto/control.h"
#include "proto/services.h"
#include "services/backup/host.h"

#define ID BK_ID

static const struct vmic_conf_key keys[] = {
	{ .section = "backup", .key = "timeout", .type = VMIC_CONF_DURATION,
	  .offset = offsetof(struct bk_settings, timeout_ms), .min = 1000,
	  .max = 3600000, .cost = VMIC_CONF_COST_UP,
	  .help = "how long a guest stays frozen at most without --timeout: "
		  "it thaws by itself then (1s..1h)" },
};

static const struct vmic_conf_table settings_table = { keys,
						       ARRAY_SIZE(keys) };

static void bk_settings_defaults(void *p)
{
	struct bk_settings *s = p;

	s->timeout_ms = 60000;
}

struct bk_vm *bk_vm_of(const struct vm *vm)
{
	return vm_state(vm, ID);
}

const struct bk_settings *bk_settings_of(const struct vm *vm)
{
	return vm_settings(vm, ID);
}

const char *bk_unavailable(const struct vm *vm, const char **code)
{
	*code = "service-unavailable";
	if (!vm_service_enabled(vm, ID))
		return "its backup service is disabled on the host (`vmic "
		       "enable VM backup`)";
	if (!conn_up(vm)) {
		*code = "not-connected";
		return "its guest agent is not connected";
	}
	if (vmic_session_version(vm_session(vm), ID) == 0)
		return "its guest agent has no common backup version";
	if (!vmic_session_peer_enabled(vm_session(vm), ID))
		return "backup is disabled in the guest's configuration";
	return NULL;
}

static int64_t now_realtime_us(const struct vm *vm)
{
	return hostd_realtime_ns(vm_hostd(vm)) / 1000;
}

json_t *bk_mounts_json(const struct vmic_bk_mounts *m)
{
	json_t *a = json_array();
	char clean[VMIC_BK_PATH_MAX * 4 + 1];

	for (unsigned i = 0; a && i < m->count; i++) {
		vmic_utf8_sanitize(clean, sizeof(clean), m->path[i],
				   strlen(m->path[i]));
		json_array_append_new(a, json_string(clean));
	}
	return a;
}

json_t *bk_thawed_json(const struct vm *vm, const struct vmic_bk_thawed *m)
{
	char clean[VMIC_BK_OUTPUT_MAX * 4 + 1];

	vmic_utf8_sanitize(clean, sizeof(clean), m->detail,
			   strlen(m->detail));
	return json_pack("{s:I, s:s, s:I, s:I, s:I, s:o, s:s}", "time_us",
			 (json_int_t)now_realtime_us(vm), "reason",
			 vmic_bk_why_name(m->reason), "frozen_ms",
			 (json_int_t)m->frozen_ms, "thaw_ms",
			 (json_int_t)m->thaw_ms, "hooks_ms",
			 (json_int_t)m->hooks_ms, "mounts",
			 bk_mounts_json(&m->mounts), "detail", clean);
}

void bk_note_failure(struct vm *vm, const char *fmt, ...)
{
	struct bk_vm *b = bk_vm_of(vm);
	char raw[2048], msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	vmic_utf8_sanitize(msg, sizeof(msg), raw, strlen(raw));
	events_emit(vm_hostd(vm), vm_name(vm), "backup", "backup", NULL,
		    "failed", "%s", msg);
	if (!b)
		return;
	json_decref(b->last_failure);
	b->last_failure = json_pack("{s:I, s:s}", "time_us",
				    (json_int_t)now_realtime_us(vm),
				    "message", msg);
}

/* The guest says it is frozen. */
static void note_frozen(struct vm *vm, const struct vmic_bk_frozen *m)
{
	struct bk_vm *b = bk_vm_of(vm);

	b->frozen = true;
	b->frozen_since_us = now_realtime_us(vm);
	b->auto_thaw_ms = m->timeout_ms;
	json_decref(b->mounts);
	b->mounts = bk_mounts_json(&m->mounts);
	events_emit(vm_hostd(vm), vm_name(vm), "backup", "backup", "thawed",
		    "frozen",
		    "froze %u filesystem(s) in %u ms (hooks %u ms, sync %u "
		    "ms, FIFREEZE %u ms); auto-thaw in %u ms",
		    m->mounts.count,
		    m->hooks_ms + m->sync_ms + m->freeze_ms, m->hooks_ms,
		    m->sync_ms, m->freeze_ms, m->timeout_ms);
	vm_touch(vm);
}

/* The guest says it thawed (asked or by itself). */
static void note_thawed(struct vm *vm, const struct vmic_bk_thawed *m)
{
	struct bk_vm *b = bk_vm_of(vm);

	b->frozen = false;
	json_decref(b->mounts);
	b->mounts = NULL;
	json_decref(b->last_thaw);
	b->last_thaw = bk_thawed_json(vm, m);
	events_emit(vm_hostd(vm), vm_name(vm), "backup", "backup", "frozen",
		    "thawed",
		    "thawed %u filesystem(s) (%s) after %u ms frozen (FITHAW "
		    "%u ms, hooks %u ms)%s%s",
		    m->mounts.count, vmic_bk_why_name(m->reason),
		    m->frozen_ms, m->thaw_ms, m->hooks_ms,
		    m->detail[0] ? ": " : "",
		    json_string_value(json_object_get(b->last_thaw,
						      "detail")));
	vm_touch(vm);
}

/* A request's answer that is not the expected message: code and text. */
static const char *answer_error(const struct vm *vm,
				const struct vmic_frame *f, int err,
				const char *what, char *msg, size_t n)
{
	char text[VMIC_ERROR_MSG_MAX + 1];
	uint16_t code;

	if (!f) {
		if (err == -ETIMEDOUT) {
			snprintf(msg, n, "'%s' did not answer the %s in time",
				 vm_name(vm), what);
			return "timeout";
		}
		if (err == -ECONNRESET) {
			snprintf(msg, n, "the session with '%s' ended before "
					 "it answered the %s (the guest thaws "
					 "by itself when its session ends)",
				 vm_name(vm), what);
			return "not-connected";
		}
		snprintf(msg, n, "the %s of '%s' was abandoned (%s)", what,
			 vm_name(vm),
			 hostd_stopping(vm_hostd(vm)) ? "vmic-hostd stops"
						      : "the VM was removed");
		return "cancelled";
	}
	code = conn_peer_error(f, text, sizeof(text));
	snprintf(msg, n, "the guest answered the %s with '%s': %s", what,
		 vmic_error_name(code), text);
	if (code == VMIC_E_DISABLED || code == VMIC_E_VERSION)
		return "service-unavailable";
	return code == VMIC_E_FAILED ? "failed" : "refused";
}

struct bk_wait {
	bk_freeze_cb freeze_cb;
	bk_thaw_cb thaw_cb;
	void *ud;
};

static bool on_freeze_answer(struct vm *vm, void *ud,
			     const struct vmic_frame *f, int err)
{
	struct bk_wait *w = ud;
	struct vmic_bk_frozen *m = NULL;
	const char *code = NULL;
	char msg[1400];

	if (f && f->type == VMIC_BK_FROZEN) {
		m = calloc(1, sizeof(*m));
		if (!m) {
			code = "internal";
			snprintf(msg, sizeof(msg), "out of memory");
		} else if (vmic_bk_frozen_decode(f->payload, f->length, m) <
			   0) {
			vm_bad_frame(vm);
			code = "refused";
			snprintf(msg, sizeof(msg),
				 "the guest's answer to the freeze does not "
				 "decode");
		} else {
			note_frozen(vm, m);
		}
	} else {
		code = answer_error(vm, f, err, "freeze", msg, sizeof(msg));
	}
	if (code && !vm_removed(vm))
		bk_note_failure(vm, "freeze failed: %s", msg);
	w->freeze_cb(vm, w->ud, code, code ? msg : NULL, code ? NULL : m);
	free(m);
	free(w);
	return false;
}

int bk_freeze(struct vm *vm, uint32_t timeout_ms, bk_freeze_cb cb, void *ud,
	      uint32_t *id)
{
	struct vmic_bk_freeze m = { .timeout_ms = timeout_ms };
	uint8_t payload[VMIC_BK_FREEZE_LEN];
	struct bk_wait *w = calloc(1, sizeof(*w));
	int n, r;

	if (!w)
		return -ENOMEM;
	w->freeze_cb = cb;
	w->ud = ud;
	n = vmic_bk_freeze_encode(&m, payload, sizeof(payload));
	r = n < 0 ? n
		  : request_send(vm, ID, VMIC_BK_FREEZE, payload, (size_t)n,
				 BK_FREEZE_WAIT_MS, on_freeze_answer, w, id);
	if (r < 0)
		free(w);
	return r;
}

static bool on_thaw_answer(struct vm *vm, void *ud,
			   const struct vmic_frame *f, int err)
{
	struct bk_wait *w = ud;
	struct vmic_bk_thawed *m = NULL;
	const char *code = NULL;
	char msg[1400];

	if (f && f->type == VMIC_BK_THAWED) {
		m = calloc(1, sizeof(*m));
		if (!m) {
			code = "internal";
			snprintf(msg, sizeof(msg), "out of memory");
		} else if (vmic_bk_thawed_decode(f->payload, f->length, m) <
			   0) {
			vm_bad_frame(vm);
			code = "refused";
			snprintf(msg, sizeof(msg),
				 "the guest's answer to the thaw does not "
				 "decode");
		} else if (m->mounts.count || bk_vm_of(vm)->frozen) {
			note_thawed(vm, m);
		}
	} else {
		code = answer_error(vm, f, err, "thaw", msg, sizeof(msg));
	}
	if (code && !vm_removed(vm))
		bk_note_failure(vm, "thaw failed: %s", msg);
	w->thaw_cb(vm, w->ud, code, code ? msg : NULL, code ? NULL : m);
	free(m);
	free(w);
	return false;
}

int bk_thaw(struct vm *vm, bk_thaw_cb cb, void *ud, uint32_t *id)
{
	uint8_t payload[VMIC_BK_THAW_LEN];
	struct bk_wait *w = calloc(1, sizeof(*w));
	int n, r;

	if (!w)
		return -ENOMEM;
	w->thaw_cb = cb;
	w->ud = ud;
	n = vmic_bk_thaw_encode(0, payload, sizeof(payload));
	r = n < 0 ? n
		  : request_send(vm, ID, VMIC_BK_THAW, payload, (size_t)n,
				 BK_THAW_WAIT_MS, on_thaw_answer, w, id);
	if (r < 0)
		free(w);
	return r;
}

/* ---- `freeze` and `thaw` ---- */

static void reply_unavailable(struct ctl_request *rq, struct vm *vm,
			      const char *verb)
{
	const char *code, *why = bk_unavailable(vm, &code);

	ctl_reply_error(rq, code, "cannot %s '%s': %s", verb, vm_name(vm),
			why);
}

static void reply_send_error(struct ctl_request *rq, struct vm *vm,
			     const char *verb, int r)
{
	ctl_reply_error(rq, r == -EBUSY ? "limit" : "not-connected",
			"cannot ask '%s' to %s: %s", vm_name(vm), verb,
			r == -EBUSY ? "too many backup requests wait for its "
				      "answers already"
				    : strerror(-r));
}

static void freeze_answered(struct vm *vm, void *ud, const char *code,
			    const char *msg, const struct vmic_bk_frozen *m)
{
	struct ctl_request *rq = ud;
	char out[VMIC_BK_OUTPUT_MAX * 4 + 1];

	if (code) {
		ctl_reply_error(rq, code, "%s", msg);
		return;
	}
	vmic_utf8_sanitize(out, sizeof(out), m->output, strlen(m->output));
	ctl_reply_ok(rq, json_pack("{s:s, s:o, s:I, s:I, s:I, s:I, s:s}",
				   "vm", vm_name(vm), "mounts",
				   bk_mounts_json(&m->mounts), "timeout_ms",
				   (json_int_t)m->timeout_ms, "hooks_ms",
				   (json_int_t)m->hooks_ms, "sync_ms",
				   (json_int_t)m->sync_ms, "freeze_ms",
				   (json_int_t)m->freeze_ms, "output", out));
}

static void cmd_freeze(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	json_int_t timeout = 0;
	uint32_t id;
	int r;

	if (!ctl_args_unpack(rq, "freeze", args, "{s?I}", "timeout_ms",
			     &timeout))
		return;
	if (timeout < 0 || (timeout > 0 && timeout < 1000) ||
	    timeout > 3600000) {
		ctl_reply_error(rq, "invalid-argument",
				"timeout_ms %lld is out of range (1 s .. 1 h; "
				"the guest may cut it to its max-timeout)",
				(long long)timeout);
		return;
	}
	if (bk_unavailable(vm, &(const char *){ NULL })) {
		reply_unavailable(rq, vm, "freeze");
		return;
	}
	if (bk_vm_of(vm)->op) {
		ctl_reply_error(rq, "refused", "a backup of '%s' is running; "
					       "it thaws the guest itself",
				vm_name(vm));
		return;
	}
	if (!timeout)
		timeout = bk_settings_of(vm)->timeout_ms;
	r = bk_freeze(vm, (uint32_t)timeout, freeze_answered, rq, &id);
	if (r < 0)
		reply_send_error(rq, vm, "freeze", r);
}

static void thaw_answered(struct vm *vm, void *ud, const char *code,
			  const char *msg, const struct vmic_bk_thawed *m)
{
	struct ctl_request *rq = ud;
	json_t *o;

	if (code) {
		ctl_reply_error(rq, code, "%s", msg);
		return;
	}
	o = bk_thawed_json(vm, m);
	json_object_set_new(o, "vm", json_string(vm_name(vm)));
	ctl_reply_ok(rq, o);
}

static void cmd_thaw(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	uint32_t id;
	int r;

	if (!ctl_args_unpack(rq, "thaw", args, "{}"))
		return;
	if (bk_unavailable(vm, &(const char *){ NULL })) {
		reply_unavailable(rq, vm, "thaw");
		return;
	}
	r = bk_thaw(vm, thaw_answered, rq, &id);
	if (r < 0)
		reply_send_error(rq, vm, "thaw", r);
}

/* ---- the service ---- */

/* An unasked THAWED: the guest thawed by itself. */
static int bk_on_frame(struct vm *vm, const struct vmic_frame *f)
{
	struct vmic_bk_thawed *m;

	if (f->type != VMIC_BK_THAWED)
		return 0;
	m = calloc(1, sizeof(*m));
	if (!m)
		return 0;
	if (vmic_bk_thawed_decode(f->payload, f->length, m) < 0) {
		vm_bad_frame(vm);
	} else {
		note_thawed(vm, m);
		bk_op_guest_thawed(vm, m);
	}
	free(m);
	return 0;
}

/* The session ended: the guest thaws by itself (its session ended too). */
static void bk_on_down(struct vm *vm)
{
	struct bk_vm *b = bk_vm_of(vm);

	if (b->frozen) {
		events_emit(vm_hostd(vm), vm_name(vm), "backup", "backup",
			    "frozen", "unknown",
			    "the session ended while the guest was frozen; "
			    "its agent thaws when it sees the session end, "
			    "or after its auto-thaw timeout (%u ms)",
			    b->auto_thaw_ms);
		b->frozen = false;
		json_decref(b->mounts);
		b->mounts = NULL;
	}
	bk_op_down(vm);
}

static int bk_attach(struct vm *vm)
{
	struct bk_vm *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	b->vm = vm;
	vm_set_state(vm, ID, b);
	return 0;
}

static void bk_release(struct vm *vm)
{
	struct bk_vm *b = bk_vm_of(vm);

	if (!b)
		return;
	json_decref(b->mounts);
	json_decref(b->last_thaw);
	json_decref(b->last_backup);
	json_decref(b->last_failure);
	free(b);
	vm_set_state(vm, ID, NULL);
}

static void bk_status(const struct vm *vm, struct svc_status *st)
{
	const struct bk_vm *b = bk_vm_of(vm);

	if (b && b->frozen)
		snprintf(st->secondary, sizeof(st->secondary),
			 "frozen: %zu filesystem(s)",
			 json_array_size(b->mounts));
}

/* A text of the mounts for `vmic status VM backup`, which prints scalars. */
static json_t *mounts_text(json_t *mounts)
{
	char buf[2048];
	size_t off = 0, i;
	json_t *v;

	buf[0] = '\0';
	json_array_foreach(mounts, i, v) {
		int n = snprintf(buf + off, sizeof(buf) - off, "%s%s",
				 i ? " " : "", json_string_value(v));

		if (n < 0 || (size_t)n >= sizeof(buf) - off)
			break;
		off += (size_t)n;
	}
	return json_string(buf);
}

/*
 * The members of the service's status entry: scalars (what `vmic status
 * VM backup` prints) and, for JSON readers, the whole last thaw, backup
 * and failure as objects.
 */
static void bk_status_json(const struct vm *vm, json_t *entry)
{
	const struct bk_vm *b = bk_vm_of(vm);
	json_t *o;

	if (!b)
		return;
	json_object_set_new(entry, "frozen", json_boolean(b->frozen));
	if (b->frozen) {
		json_object_set_new(entry, "frozen_since_us",
				    json_integer(b->frozen_since_us));
		json_object_set_new(entry, "frozen_ms",
				    json_integer((now_realtime_us(vm) -
						  b->frozen_since_us) /
						 1000));
		json_object_set_new(entry, "auto_thaw_ms",
				    json_integer(b->auto_thaw_ms));
		json_object_set(entry, "mounts", b->mounts);
		json_object_set_new(entry, "frozen_mounts",
				    mounts_text(b->mounts));
	}
	json_object_set_new(entry, "backup_running",
			    json_boolean(b->op != NULL));
	if ((o = b->last_thaw)) {
		json_object_set(entry, "last_thaw", o);
		json_object_set(entry, "last_thaw_reason",
				json_object_get(o, "reason"));
		json_object_set(entry, "last_frozen_ms",
				json_object_get(o, "frozen_ms"));
	}
	if ((o = b->last_backup)) {
		json_object_set(entry, "last_backup", o);
		json_object_set(entry, "last_backup_us",
				json_object_get(o, "time_us"));
		json_object_set(entry, "last_backup_ok",
				json_object_get(o, "ok"));
		json_object_set(entry, "last_backup_frozen_ms",
				json_object_get(o, "frozen_ms"));
	}
	if ((o = b->last_failure)) {
		json_object_set(entry, "last_failure", o);
		json_object_set(entry, "last_failure_us",
				json_object_get(o, "time_us"));
		json_object_set(entry, "last_failure_message",
				json_object_get(o, "message"));
	}
}

static const struct ctl_command commands[] = {
	{ "freeze", cmd_freeze, true, "vm (string), timeout_ms (integer)",
	  "freeze a guest's filesystems; it thaws by itself after the "
	  "timeout" },
	{ "thaw", cmd_thaw, true, "vm (string)",
	  "thaw a guest's filesystems now" },
	{ "backup", bk_cmd_backup, true,
	  "vm (string), argv (array of strings) or qmp_snapshot (string), "
	  "timeout_ms (integer)",
	  "freeze, run a snapshot command on the host, thaw whatever "
	  "happens (an operation)" },
};

const struct host_service backup_host = {
	.desc = &vmic_backup_service,
	.settings = &settings_table,
	.settings_size = sizeof(struct bk_settings),
	.settings_defaults = bk_settings_defaults,
	.attach = bk_attach,
	.release = bk_release,
	.on_down = bk_on_down,
	.on_frame = bk_on_frame,
	.status = bk_status,
	.status_json = bk_status_json,
	.commands = commands,
	.ncommands = ARRAY_SIZE(commands),
};
