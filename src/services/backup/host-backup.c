/* SPDX-License-Identifier: MIT */
/*
 * The `backup` operation: freeze the guest, run the snapshot command on
 * the host while it is frozen, thaw it, whatever happens.
 *
 * vmic-hostd owns the thaw: the command failing or timing out, the
 * client leaving or cancelling, the VM being removed all end in a THAW
 * request before the operation ends. What the host cannot do (it exits,
 * the channel drops) the guest covers: it thaws when its session ends or
 * its auto-thaw timer (the freeze's timeout) fires. A guest that thawed
 * by itself before the command finished makes the backup fail, since
 * the snapshot may then not be consistent.
 *
 * Each step is a line of the result's "steps", an event, and for the
 * freeze a {"frozen": ...} line to the client.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qmp.h"
#include "common/run.h"
#include "common/utf8.h"
#include "services/backup/host.h"

#define ARGV_MAX 256
/* The shell line is one argument of /bin/sh: Linux takes 128 KiB. */
#define COMMAND_MAX (128 * 1024 - 1)
/* The argv's bytes: quoting at most quadruples a quote, and the
 * environment (VM name, mounts) takes its share of COMMAND_MAX. */
#define ARGV_BYTES (8 * 1024)

enum bk_step { OP_FREEZING, OP_RUNNING, OP_THAWING };

struct bk_op {
	struct vm *vm;
	struct ctl_op *op; /* NULL once the client left and nothing waits */
	enum bk_step step;
	char *command;     /* the shell line, or the QMP command */
	char *qmp_path;    /* --qmp-snapshot: the VM's QMP socket */
	struct qmp_call *qmp;
	uint32_t timeout_ms;
	struct vmic_run *run;
	uint64_t step_us;  /* monotonic start of the current step */
	uint64_t start_us;
	json_t *steps;
	json_t *mounts;
	/* the first failure, reported once the guest is thawed */
	const char *fail_code;
	char fail_msg[1500];
	bool cancelled;
	char cmd_detail[1400];
	int64_t cmd_status; /* -1 until the command exited */
};

static uint64_t now_us(const struct bk_op *o)
{
	return hostd_now_us(vm_hostd(o->vm));
}

static void add_step(struct bk_op *o, const char *name, const char *fmt, ...)
	PRINTF_LIKE(3, 4);
static void add_step(struct bk_op *o, const char *name, const char *fmt, ...)
{
	uint64_t ms = (now_us(o) - o->step_us) / 1000;
	char raw[1500], text[1500];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	vmic_utf8_sanitize(text, sizeof(text), raw, strlen(raw));
	json_array_append_new(o->steps,
			      json_pack("{s:s, s:I, s:s}", "step", name, "ms",
					(json_int_t)ms, "detail", text));
	events_emit(vm_hostd(o->vm), vm_name(o->vm), "backup", "backup", NULL,
		    NULL, "backup step %s (%llu ms): %s", name,
		    (unsigned long long)ms, text);
	o->step_us = now_us(o);
}

static void set_failure(struct bk_op *o, const char *code, const char *fmt,
			...) PRINTF_LIKE(3, 4);
static void set_failure(struct bk_op *o, const char *code, const char *fmt,
			...)
{
	va_list ap;

	if (o->fail_code)
		return;
	o->fail_code = code;
	va_start(ap, fmt);
	vsnprintf(o->fail_msg, sizeof(o->fail_msg), fmt, ap);
	va_end(ap);
}

static void op_free(struct bk_op *o)
{
	struct bk_vm *b = bk_vm_of(o->vm);

	if (b && b->op == o)
		b->op = NULL;
	json_decref(o->steps);
	json_decref(o->mounts);
	free(o->command);
	free(o->qmp_path);
	vm_unref(o->vm);
	free(o);
}

/* The end: the guest is thawed (or thaws by itself). */
static void op_finish(struct bk_op *o, uint32_t frozen_ms)
{
	struct bk_vm *b = bk_vm_of(o->vm);
	uint64_t total_ms = (now_us(o) - o->start_us) / 1000;
	json_t *summary;

	summary = json_pack("{s:I, s:b, s:I, s:I, s:O}", "time_us",
			    (json_int_t)(hostd_realtime_ns(vm_hostd(o->vm)) /
					 1000),
			    "ok", o->fail_code == NULL, "frozen_ms",
			    (json_int_t)frozen_ms, "elapsed_ms",
			    (json_int_t)total_ms, "steps", o->steps);
	if (o->fail_code) {
		json_object_set_new(summary, "message",
				    json_string(o->fail_msg));
		bk_note_failure(o->vm, "backup failed: %s", o->fail_msg);
	} else {
		events_emit(vm_hostd(o->vm), vm_name(o->vm), "backup",
			    "backup", NULL, "done",
			    "backup done in %llu ms, frozen %u ms",
			    (unsigned long long)total_ms, frozen_ms);
	}
	if (b) {
		json_decref(b->last_backup);
		b->last_backup = summary;
	} else {
		json_decref(summary);
	}
	if (o->op && o->fail_code)
		ctl_op_fail(o->op, o->fail_code, "%s", o->fail_msg);
	else if (o->op)
		ctl_op_end(o->op,
			   json_pack("{s:s, s:I, s:I, s:O, s:O, s:I}", "vm",
				     vm_name(o->vm), "frozen_ms",
				     (json_int_t)frozen_ms, "elapsed_ms",
				     (json_int_t)total_ms, "mounts",
				     o->mounts ? o->mounts : json_array(),
				     "steps", o->steps, "command_status",
				     (json_int_t)o->cmd_status));
	o->op = NULL;
	op_free(o);
}

static void on_thawed(struct vm *vm, void *ud, const char *code,
		      const char *msg, const struct vmic_bk_thawed *m)
{
	struct bk_op *o = ud;

	(void)vm;
	if (code) {
		add_step(o, "thaw", "failed: %s", msg);
		set_failure(o, code, "the thaw failed: %s; the guest thaws "
				     "by itself within its auto-thaw timeout "
				     "(%u ms)",
			    msg, o->timeout_ms);
		op_finish(o, 0);
		return;
	}
	add_step(o, "thaw", "thawed %u filesystem(s) after %u ms frozen "
			    "(FITHAW %u ms, hooks %u ms)",
		 m->mounts.count, m->frozen_ms, m->thaw_ms, m->hooks_ms);
	op_finish(o, m->frozen_ms);
}

static void op_thaw(struct bk_op *o)
{
	uint32_t id;
	int r;

	o->step = OP_THAWING;
	r = bk_thaw(o->vm, on_thawed, o, &id);
	if (r < 0) {
		add_step(o, "thaw", "cannot ask: %s", strerror(-r));
		set_failure(o, "not-connected",
			    "cannot ask the guest to thaw (%s); it thaws by "
			    "itself when its session ends or within %u ms",
			    strerror(-r), o->timeout_ms);
		op_finish(o, 0);
	}
}

/* Kill the snapshot command or abandon the QMP call; true when one ran. */
static bool snapshot_stop(struct bk_op *o)
{
	bool ran = o->run || o->qmp;

	if (o->run)
		vmic_run_cancel(o->run);
	qmp_call_cancel(o->qmp);
	o->run = NULL;
	o->qmp = NULL;
	return ran;
}

static void on_qmp_done(void *ud, int status, const char *detail)
{
	struct bk_op *o = ud;

	o->qmp = NULL;
	o->cmd_status = status < 0 ? -1 : 0;
	add_step(o, "snapshot", "%s", detail);
	if (status < 0)
		set_failure(o, "failed", "the QMP snapshot failed (%s); the "
					 "guest was thawed",
			    detail);
	op_thaw(o);
}

static void on_command_done(void *ud, const struct vmic_run_result *r)
{
	struct bk_op *o = ud;
	char what[128], line[512];

	o->run = NULL;
	vmic_run_describe(r, o->timeout_ms, what, sizeof(what));
	vmic_run_first_line(r, line, sizeof(line));
	o->cmd_status = r->spawn_error || r->timed_out || r->signo
				? -1
				: r->status;
	add_step(o, "snapshot", "%s%s%s", what, line[0] ? ": " : "", line);
	if (r->spawn_error || r->timed_out || r->signo || r->status)
		set_failure(o, "failed",
			    "the snapshot command failed (%s%s%s); the guest "
			    "was thawed",
			    what, line[0] ? ": " : "", line);
	op_thaw(o);
}

/* A growing text; err once an append failed or passed COMMAND_MAX. */
struct bk_text {
	char *p;
	size_t len, cap;
	bool err;
};

static void bk_text_init(struct bk_text *sb)
{
	memset(sb, 0, sizeof(*sb));
}

static void bk_text_free(struct bk_text *sb)
{
	free(sb->p);
	sb->p = NULL;
}

static void bk_text_append(struct bk_text *sb, const char *s, size_t n)
{
	char *p;

	if (sb->err)
		return;
	if (sb->len + n > COMMAND_MAX) {
		sb->err = true;
		return;
	}
	if (sb->len + n > sb->cap) {
		size_t cap = (sb->len + n) * 2;

		p = realloc(sb->p, cap);
		if (!p) {
			sb->err = true;
			return;
		}
		sb->p = p;
		sb->cap = cap;
	}
	memcpy(sb->p + sb->len, s, n);
	sb->len += n;
}

/* Single quotes for /bin/sh: ' becomes '\''. */
static void sh_quote(struct bk_text *sb, const char *s)
{
	bk_text_append(sb, "'", 1);
	for (; *s; s++) {
		if (*s == '\'')
			bk_text_append(sb, "'\\''", 4);
		else
			bk_text_append(sb, s, 1);
	}
	bk_text_append(sb, "'", 1);
}

/* The shell line: the environment, then exec of the argv as given. */
static char *build_command(const struct vm *vm, json_t *argv,
			   json_t *mounts)
{
	struct bk_text sb;
	json_t *v;
	size_t i;

	bk_text_init(&sb);
	bk_text_append(&sb, "VMIC_VM=", 8);
	sh_quote(&sb, vm_name(vm));
	bk_text_append(&sb, " VMIC_FROZEN_MOUNTS=", 20);
	{
		struct bk_text list;

		bk_text_init(&list);
		json_array_foreach(mounts, i, v) {
			if (i)
				bk_text_append(&list, "\n", 1);
			bk_text_append(&list, json_string_value(v),
				      strlen(json_string_value(v)));
		}
		bk_text_append(&list, "", 1);
		sh_quote(&sb, list.p ? list.p : "");
		bk_text_free(&list);
	}
	bk_text_append(&sb, " exec", 5);
	json_array_foreach(argv, i, v) {
		bk_text_append(&sb, " ", 1);
		sh_quote(&sb, json_string_value(v));
	}
	bk_text_append(&sb, "", 1);
	if (sb.err) {
		bk_text_free(&sb);
		return NULL;
	}
	return sb.p;
}

struct bk_start {
	struct bk_op *o;
	json_t *argv;
};

static void on_frozen(struct vm *vm, void *ud, const char *code,
		      const char *msg, const struct vmic_bk_frozen *m)
{
	struct bk_start *s = ud;
	struct bk_op *o = s->o;
	json_t *argv = s->argv;
	int r;

	free(s);
	if (code) {
		json_decref(argv);
		add_step(o, "freeze", "failed: %s", msg);
		set_failure(o, code, "%s", msg);
		op_finish(o, 0);
		return;
	}
	o->mounts = bk_mounts_json(&m->mounts);
	o->timeout_ms = m->timeout_ms;
	add_step(o, "freeze", "froze %u filesystem(s) (hooks %u ms, sync %u "
			      "ms, FIFREEZE %u ms)",
		 m->mounts.count, m->hooks_ms, m->sync_ms, m->freeze_ms);
	if (o->op)
		ctl_op_send(o->op, "frozen",
			    json_pack("{s:O, s:I}", "mounts", o->mounts,
				      "timeout_ms",
				      (json_int_t)m->timeout_ms));
	if (o->cancelled) {
		json_decref(argv);
		op_thaw(o);
		return;
	}
	if (!o->qmp_path)
		o->command = build_command(vm, argv, o->mounts);
	json_decref(argv);
	if (!o->command) {
		set_failure(o, "internal",
			    "cannot build the snapshot command: out of memory, "
			    "or with the frozen mount points in its "
			    "environment it passes 128 KiB");
		op_thaw(o);
		return;
	}
	o->step = OP_RUNNING;
	if (o->qmp_path)
		r = qmp_call_start(hostd_loop(vm_hostd(vm)), o->qmp_path,
				   o->command, "blockdev-snapshot-sync",
				   o->timeout_ms, false, on_qmp_done, o,
				   &o->qmp);
	else
		r = vmic_run_start(hostd_loop(vm_hostd(vm)), o->command,
				   o->timeout_ms, on_command_done, o, &o->run);
	if (r < 0) {
		set_failure(o, "internal", "cannot start the snapshot "
					   "command: %s",
			    strerror(-r));
		op_thaw(o);
	}
}

static void on_cancel(void *ud, struct ctl_op *op, enum ctl_op_cancel why)
{
	struct bk_op *o = ud;

	o->cancelled = true;
	set_failure(o, "cancelled", "%s; the guest was thawed",
		    ctl_op_cancel_text(why));
	if (why == CTL_OP_CLIENT_GONE) {
		/* Nobody hears the reply: end it now, the thaw goes on. */
		ctl_op_fail(op, "cancelled", "%s", ctl_op_cancel_text(why));
		o->op = NULL;
	}
	if (o->step == OP_RUNNING && snapshot_stop(o)) {
		add_step(o, "snapshot", "stopped: %s", ctl_op_cancel_text(why));
		op_thaw(o);
	}
	/* Freezing or thawing: the answer's callback goes on from there. */
}

void bk_op_guest_thawed(struct vm *vm, const struct vmic_bk_thawed *m)
{
	struct bk_vm *b = bk_vm_of(vm);
	struct bk_op *o = b ? b->op : NULL;

	if (!o || o->step != OP_RUNNING)
		return;
	snapshot_stop(o);
	add_step(o, "snapshot", "stopped: the guest thawed by itself (%s)",
		 vmic_bk_why_name(m->reason));
	set_failure(o, "failed", "the guest thawed by itself (%s) after %u ms "
				 "before the snapshot command finished: the "
				 "snapshot may not be consistent",
		    vmic_bk_why_name(m->reason), m->frozen_ms);
	op_finish(o, m->frozen_ms);
}

void bk_op_down(struct vm *vm)
{
	struct bk_vm *b = bk_vm_of(vm);
	struct bk_op *o = b ? b->op : NULL;

	if (!o || o->step != OP_RUNNING)
		return; /* freezing, thawing: the request hears it */
	snapshot_stop(o);
	add_step(o, "snapshot", "stopped: the channel to the guest dropped");
	set_failure(o, "not-connected",
		    "the channel to the guest dropped during the snapshot; "
		    "the guest thaws by itself when it sees its session end, "
		    "and the snapshot may not be consistent");
	op_finish(o, 0);
}

static const struct ctl_op_ops op_ops = {
	.on_cancel = on_cancel,
};

/* argv: 1..ARGV_MAX non-empty strings without NUL, ARGV_BYTES in all. */
static bool argv_ok(json_t *argv)
{
	size_t total = 0, i;
	json_t *v;

	if (!json_is_array(argv) || json_array_size(argv) == 0 ||
	    json_array_size(argv) > ARGV_MAX)
		return false;
	json_array_foreach(argv, i, v) {
		if (!json_is_string(v) || !json_string_length(v) ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return false;
		total += json_string_length(v);
	}
	return total <= ARGV_BYTES;
}

/* Checks before anything starts; false after replying. */
static bool backup_args(struct ctl_request *rq, struct vm *vm, json_t *argv,
			const char *qmp, json_int_t timeout)
{
	const char *code, *why, *backend = vm_power_off(vm);

	if (qmp && argv) {
		ctl_reply_error(rq, "bad-request",
				"give argv or qmp_snapshot, not both");
		return false;
	}
	if (qmp && (!qmp[0] || qmp[0] != '/' || strlen(qmp) > 4096)) {
		ctl_reply_error(rq, "invalid-argument",
				"qmp_snapshot must be an absolute path of at "
				"most 4096 bytes: the new overlay image QEMU "
				"creates");
		return false;
	}
	if (qmp && (!backend || strncmp(backend, "qmp:", 4) != 0)) {
		ctl_reply_error(rq, "unsupported",
				"'%s' has no QMP socket: give it one with "
				"`vmic set %s --power-off qmp:PATH`",
				vm_name(vm), vm_name(vm));
		return false;
	}
	if (!qmp && !argv_ok(argv)) {
		ctl_reply_error(rq, "bad-request",
				"argv must be an array of 1 to %d non-empty "
				"strings of %d bytes in all: the snapshot "
				"command and its arguments",
				ARGV_MAX, ARGV_BYTES);
		return false;
	}
	if (!ctl_request_privileged(rq)) {
		ctl_reply_error(rq, "permission-denied",
				"a snapshot runs as vmic-hostd's user (or "
				"QEMU's): only root or that user may ask "
				"for one");
		return false;
	}
	if (timeout < 0 || (timeout > 0 && timeout < 1000) ||
	    timeout > 3600000) {
		ctl_reply_error(rq, "invalid-argument",
				"timeout_ms %lld is out of range (1 s .. 1 h)",
				(long long)timeout);
		return false;
	}
	if ((why = bk_unavailable(vm, &code))) {
		ctl_reply_error(rq, code, "cannot back up '%s': %s",
				vm_name(vm), why);
		return false;
	}
	if (bk_vm_of(vm)->op || bk_vm_of(vm)->frozen) {
		ctl_reply_error(rq, "refused",
				"'%s' is %s; one backup at a time",
				vm_name(vm),
				bk_vm_of(vm)->op ? "being backed up"
						 : "frozen already");
		return false;
	}
	return true;
}

/* blockdev-snapshot-sync of device into a new qcow2 overlay at file; the
 * socket's path into *path. */
static char *qmp_snapshot_command(const char *device, const char *file,
				  char **path, const struct vm *vm)
{
	json_t *o = json_pack("{s:s, s:{s:s, s:s, s:s}}", "execute",
			      "blockdev-snapshot-sync", "arguments", "device",
			      device, "snapshot-file", file, "format",
			      "qcow2");
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	*path = text ? strdup(vm_power_off(vm) + 4) : NULL;
	if (!*path) {
		free(text);
		return NULL;
	}
	return text;
}

void bk_cmd_backup(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	json_t *argv = NULL;
	const char *qmp = NULL, *device = "virtio0";
	json_int_t timeout = 0;
	struct bk_start *s;
	struct bk_op *o;
	uint32_t id;
	int r;

	if (!ctl_args_unpack(rq, "backup", args, "{s?o, s?s, s?s, s?I}",
			     "argv", &argv, "qmp_snapshot", &qmp, "qmp_device",
			     &device, "timeout_ms", &timeout) ||
	    !backup_args(rq, vm, argv, qmp, timeout))
		return;
	if (!device[0] || strlen(device) > 128) {
		ctl_reply_error(rq, "invalid-argument",
				"qmp_device must name a QEMU block device in "
				"1 to 128 bytes (the drive's id)");
		return;
	}
	o = calloc(1, sizeof(*o));
	s = calloc(1, sizeof(*s));
	if (!o || !s || !(o->steps = json_array())) {
		free(o);
		free(s);
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	o->vm = vm;
	o->cmd_status = -1;
	if (qmp && !(o->command = qmp_snapshot_command(device, qmp,
						      &o->qmp_path, vm))) {
		json_decref(o->steps);
		free(o);
		free(s);
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	o->timeout_ms = timeout ? (uint32_t)timeout
				: bk_settings_of(vm)->timeout_ms;
	o->op = ctl_op_start(rq, vm, &op_ops, o);
	if (!o->op) {
		json_decref(o->steps);
		free(o->command);
		free(o->qmp_path);
		free(o);
		free(s);
		return;
	}
	vm_ref(vm);
	bk_vm_of(vm)->op = o;
	o->start_us = o->step_us = now_us(o);
	s->o = o;
	s->argv = json_incref(argv);
	r = bk_freeze(vm, o->timeout_ms, on_frozen, s, &id);
	if (r < 0) {
		json_decref(s->argv);
		free(s);
		set_failure(o, r == -EBUSY ? "limit" : "not-connected",
			    "cannot ask '%s' to freeze: %s", vm_name(vm),
			    strerror(-r));
		op_finish(o, 0);
	}
}
