/* SPDX-License-Identifier: MIT */
/*
 * Long operations on the control socket (docs/control.md, "Operations"):
 * a command whose handler turns its request into an operation goes on
 * for as long as its work takes, on its client's connection. Meanwhile
 * the connection carries the operation's progress and its owner's own
 * lines to the client, and the client's messages to the owner; the
 * owner's end is the request's reply, and then the connection takes
 * requests again.
 *
 * Operations live in a table of their own (h->ops), not in the VM's
 * request tracker, so hours of copying hold none of the slots heartbeat
 * and KVP need; they are bounded by [control] max-operations and
 * max-operations-per-vm instead.
 *
 * The owner hears on_cancel at most once: the client asked, left, the VM
 * is removed or the daemon stops. It must then stop its work and end the
 * operation; a client that left hears nothing of that end. on_cancel and
 * on_message run from the loop, never inside one of the owner's calls
 * into this file: a client that is dropped while a line is sent to it
 * has its cancel delivered on the next turn of the loop.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ctl-internal.h"

struct ctl_op {
	struct ctl_op *prev, *next;
	struct hostd *h;
	struct ctl_client *c; /* NULL once the client left */
	struct vm *vm;        /* referenced; NULL for none */
	const char *cmd;      /* the command's name (its table's string) */
	json_t *id;           /* the request's id, NULL when it had none */
	const struct ctl_op_ops *ops;
	void *ud;
	uid_t uid;
	int fds[CTL_FDS_MAX];
	unsigned nfds;
	struct ctl_line *progress; /* the last progress line (a reference) */
	bool cancelled;  /* on_cancel was called, or is due */
	bool cancel_due; /* its client left: on_cancel on the next turn */
	bool stop_seen;  /* ctl_ops_stop went past it */
};

/* Names of lines the protocol uses, which an owner's line may not take. */
static const char *const reserved[] = {
	"id",	 "ok",	"result",   "error",  "progress",
	"page",	 "end", "rejected", "cancel", "fds",
};

const char *ctl_op_cancel_text(enum ctl_op_cancel why)
{
	switch (why) {
	case CTL_OP_CANCEL_ASKED:
		return "the client cancelled the operation";
	case CTL_OP_CLIENT_GONE:
		return "the client closed its connection";
	case CTL_OP_VM_REMOVED:
		return "the VM was removed";
	case CTL_OP_DAEMON_STOPPING:
		return "vmic-hostd is stopping";
	}
	return "cancelled";
}

struct vm *ctl_op_vm(const struct ctl_op *op)
{
	return op->vm;
}

uid_t ctl_op_uid(const struct ctl_op *op)
{
	return op->uid;
}

bool ctl_op_privileged(const struct ctl_op *op)
{
	return op->uid == 0 || op->uid == geteuid();
}

unsigned ctl_op_nfds(const struct ctl_op *op)
{
	return op->nfds;
}

int ctl_op_fd(const struct ctl_op *op, unsigned i)
{
	return i < op->nfds ? op->fds[i] : -1;
}

int ctl_op_take_fd(struct ctl_op *op, unsigned i)
{
	int fd = ctl_op_fd(op, i);

	if (fd >= 0)
		op->fds[i] = -1;
	return fd;
}

bool ctl_op_attached(const struct ctl_op *op)
{
	return op->c != NULL;
}

/* ---- start ---- */

/* Room for one more operation on vm? False after replying `limit`. */
static bool ctl_op_admit(struct ctl_request *rq, struct vm *vm)
{
	const struct hostd *h = rq->h;

	if (vm && vm->nops >= h->cfg.max_ops_per_vm) {
		ctl_reply_error(rq, "limit",
				"VM '%s' has %u operations running, the most "
				"[control] max-operations-per-vm allows; wait "
				"for one to end, or raise the limit",
				vm->name, vm->nops);
		return false;
	}
	if (h->nops >= h->cfg.max_ops) {
		ctl_reply_error(rq, "limit",
				"vmic-hostd runs %u operations, the most "
				"[control] max-operations allows; wait for "
				"one to end, or raise the limit",
				h->nops);
		return false;
	}
	return true;
}

struct ctl_op *ctl_op_start(struct ctl_request *rq, struct vm *vm,
			    const struct ctl_op_ops *ops, void *ud)
{
	struct ctl_client *c = rq->c;
	struct hostd *h = rq->h;
	struct ctl_op *op;

	if (!c) {
		/* The client left while the handler worked: nobody waits. */
		ctl_reply_error(rq, "cancelled", "the client left");
		return NULL;
	}
	if (!ctl_op_admit(rq, vm))
		return NULL;
	op = calloc(1, sizeof(*op));
	if (!op) {
		ctl_reply_error(rq, "internal", "out of memory");
		return NULL;
	}
	op->h = h;
	op->c = c;
	op->vm = vm;
	op->cmd = rq->cmd ? rq->cmd : "the command";
	op->ops = ops;
	op->ud = ud;
	op->uid = rq->uid;
	op->id = rq->id;
	rq->id = NULL;
	memcpy(op->fds, rq->fds, sizeof(op->fds));
	op->nfds = rq->nfds;
	rq->nfds = 0;
	if (vm) {
		vm_ref(vm);
		vm->nops++;
	}
	h->nops++;
	op->next = h->ops;
	if (op->next)
		op->next->prev = op;
	h->ops = op;
	/* The request is over without a reply of its own: the operation's
	 * end is its reply. The client's next lines are its messages. */
	c->op = op;
	c->pending = NULL;
	if (rq->async)
		ctl_client_later(c); /* after the caller has op */
	ctl_request_free(rq);
	ctl_client_watch(c);
	return op;
}

/* ---- lines to the client ---- */

static json_t *op_line(const struct ctl_op *op, const char *name,
		       json_t *value)
{
	json_t *o = json_object();

	if (!o || json_object_set(o, "id", op->id ? op->id : json_null()) ||
	    json_object_set_new(o, name, value)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

void ctl_op_progress(struct ctl_op *op, json_t *progress)
{
	struct ctl_line *line = NULL;
	json_t *o;

	/* Clients read progress as an object (docs/control.md): anything
	 * else is the caller's mistake and is not sent. */
	if (!op->c || op->c->finish_after_write || !json_is_object(progress)) {
		json_decref(progress);
		return;
	}
	o = op_line(op, "progress", progress);
	if (o)
		line = ctl_line_json(o);
	json_decref(o);
	if (!line)
		return; /* the next one may fit */
	/* The previous one, if the client has not begun to read it, makes
	 * room for this one. A reference is kept to it, so its address is
	 * never that of a newer line. The client may be dropped meanwhile:
	 * op stays (its cancel comes on the next turn). */
	ctl_client_send_line(op->c, line, op->progress);
	ctl_line_unref(op->progress);
	op->progress = line;
}

void ctl_op_send(struct ctl_op *op, const char *name, json_t *value)
{
	json_t *o;

	for (size_t i = 0; i < ARRAY_SIZE(reserved); i++) {
		if (strcmp(name, reserved[i]) == 0) {
			log_error("%s: an operation's line may not be named "
				  "'%s'; not sent",
				  op->cmd, name);
			json_decref(value);
			return;
		}
	}
	if (!op->c || op->c->finish_after_write) {
		json_decref(value);
		return;
	}
	o = op_line(op, name, value);
	if (o)
		ctl_client_send_json(op->c, o);
	json_decref(o);
}

/* ---- end ---- */

static void ctl_op_free(struct ctl_op *op)
{
	struct hostd *h = op->h;

	if (op->prev)
		op->prev->next = op->next;
	else
		h->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	h->nops--;
	if (op->vm) {
		op->vm->nops--;
		vm_unref(op->vm);
	}
	ctl_fds_close(op->fds, op->nfds);
	ctl_line_unref(op->progress);
	json_decref(op->id);
	free(op);
}

/* The last line: the request's reply. The connection takes requests
 * again; messages that crossed the end are dropped (op_ended_id). */
static void ctl_op_finish(struct ctl_op *op, json_t *reply)
{
	struct ctl_client *c = op->c;

	if (c) {
		c->op = NULL;
		op->c = NULL;
		json_decref(c->op_ended_id);
		c->op_ended_id = json_incref(op->id ? op->id : json_null());
		if (reply)
			ctl_client_send_json(c, reply);
		else
			ctl_client_close(c); /* it would wait for ever */
		if (!c->closing) {
			ctl_client_watch(c);
			ctl_client_later(c);
		}
	}
	json_decref(reply);
	ctl_op_free(op);
}

void ctl_op_end(struct ctl_op *op, json_t *result)
{
	json_t *o = json_object();

	if (o && (json_object_set(o, "id", op->id ? op->id : json_null()) ||
		  json_object_set_new(o, "ok", json_true()) ||
		  json_object_set_new(o, "result",
				      result ? result : json_object()))) {
		json_decref(o);
		o = NULL;
	} else if (!o) {
		json_decref(result);
	}
	ctl_op_finish(op, o);
}

void ctl_op_fail(struct ctl_op *op, const char *code, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_message_sane(msg, sizeof(msg));
	ctl_op_finish(op, json_pack("{s:O?, s:b, s:{s:s, s:s}}", "id", op->id,
				    "ok", 0, "error", "code", code, "message",
				    msg));
}

/* ---- messages from the client ---- */

/* A message the operation does not take: one line says why, and the
 * operation goes on. */
static void ctl_op_reject(struct ctl_op *op, const char *code,
			  const char *fmt, ...) PRINTF_LIKE(3, 4);
static void ctl_op_reject(struct ctl_op *op, const char *code,
			  const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	json_t *o;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_message_sane(msg, sizeof(msg));
	o = op_line(op, "rejected",
		    json_pack("{s:s, s:s}", "code", code, "message", msg));
	if (o)
		ctl_client_send_json(op->c, o);
	json_decref(o);
}

/* "cancel, signal, winsize": what the operation takes. */
static void message_names(const struct ctl_op *op, char *buf, size_t n)
{
	size_t off = (size_t)snprintf(buf, n, "cancel");

	for (const char *const *m = op->ops->messages; m && *m && off < n;
	     m++)
		off += (size_t)snprintf(buf + off, n - off, ", %s", *m);
}

static bool takes_message(const struct ctl_op *op, const char *name)
{
	for (const char *const *m = op->ops->messages; m && *m; m++)
		if (strcmp(*m, name) == 0)
			return true;
	return false;
}

/*
 * The one member of a message besides "id" (and "fds"): *name and
 * *value, or false after rejecting the message.
 */
static bool message_member(struct ctl_op *op, json_t *msg, const char **name,
			   json_t **value)
{
	json_t *id = json_object_get(msg, "id");
	char names[512];
	const char *k;
	json_t *v;

	if (!json_equal(id ? id : json_null(), op->id ? op->id : json_null())) {
		ctl_op_reject(op, "bad-request",
			      "while `%s` runs, each line is a message to it "
			      "with its request's id",
			      op->cmd);
		return false;
	}
	*name = NULL;
	json_object_foreach(msg, k, v) {
		if (strcmp(k, "id") == 0)
			continue;
		if (*name) {
			*name = NULL;
			break;
		}
		*name = k;
		*value = v;
	}
	if (!*name) {
		message_names(op, names, sizeof(names));
		ctl_op_reject(op, "bad-request",
			      "a message to `%s` has \"id\" and one member "
			      "more: %s",
			      op->cmd, names);
		return false;
	}
	return true;
}

/* A message with a checked id and fds: hand it to the owner. */
static void ctl_op_deliver(struct ctl_op *op, const char *name,
			   json_t *value, int *fds, unsigned nfds)
{
	char names[512], why[1024], what[128];

	if (strcmp(name, "cancel") == 0) {
		if (!json_is_true(value) || nfds) {
			ctl_op_reject(op, "bad-request",
				      "cancel is {\"id\": ID, \"cancel\": "
				      "true}, without descriptors");
			return;
		}
		if (op->cancelled)
			return;
		op->cancelled = true;
		op->ops->on_cancel(op->ud, op, CTL_OP_CANCEL_ASKED);
		return;
	}
	if (!takes_message(op, name)) {
		message_names(op, names, sizeof(names));
		ctl_op_reject(op, "bad-request",
			      "`%s` takes no message '%.64s'; it takes %s",
			      op->cmd, name, names);
		return;
	}
	snprintf(what, sizeof(what), "a '%.32s' message of `%s`", name,
		 op->cmd);
	if (ctl_fds_check(what, op->ops->msg_fds, op->ops->msg_nfds, fds, nfds,
			  why, sizeof(why)) < 0) {
		ctl_op_reject(op, "bad-descriptor", "%s", why);
		return;
	}
	/* After a cancel the owner is stopping: nothing else reaches it. */
	if (op->cancelled || !op->ops->on_message)
		return;
	op->ops->on_message(op->ud, op, name, value, fds, nfds);
}

void ctl_op_line(struct ctl_client *c, json_t *msg, const char *jerr,
		 uint64_t end)
{
	struct ctl_op *op = c->op;
	int fds[CTL_FDS_MAX];
	json_t *declared = NULL, *value = NULL;
	const char *name;
	char why[512];
	json_int_t n = 0;

	if (json_is_object(msg))
		declared = json_object_get(msg, "fds");
	if (declared) {
		n = json_is_integer(declared) ? json_integer_value(declared)
					      : -1;
		if (n < 0 || n > CTL_FDS_MAX)
			snprintf(why, sizeof(why),
				 "\"fds\" must be the number of descriptors "
				 "sent with the line, 0 to %d",
				 CTL_FDS_MAX);
		else
			json_object_del(msg, "fds");
	}
	if (n < 0 ||
	    ctl_fds_claim(c, (unsigned)n, end, fds, why, sizeof(why)) < 0) {
		/* The framing is lost: say so, then close (which cancels). */
		ctl_op_reject(op, "bad-descriptor", "%s", why);
		ctl_fds_drop(c);
		ctl_client_finish(c);
		return;
	}
	if (!msg && !jerr) {
		/* An empty line: nothing to say. */
	} else if (!msg) {
		ctl_op_reject(op, "bad-request", "the message is not JSON: %s",
			      jerr);
	} else if (!json_is_object(msg)) {
		ctl_op_reject(op, "bad-request",
			      "a message is a JSON object such as {\"id\": "
			      "ID, \"cancel\": true}");
	} else if (message_member(op, msg, &name, &value)) {
		ctl_op_deliver(op, name, value, fds, (unsigned)n);
	}
	ctl_fds_close(fds, (unsigned)n);
}

/* ---- the client leaves, the VM goes, the daemon stops ---- */

/* Deliver the cancels of operations whose client left. */
static void on_cancels_due(uv_timer_t *t)
{
	struct hostd *h = t->data;
	struct ctl_op *op;

	for (;;) {
		for (op = h->ops; op && !op->cancel_due; op = op->next)
			;
		if (!op)
			return;
		op->cancel_due = false;
		op->ops->on_cancel(op->ud, op, CTL_OP_CLIENT_GONE);
	}
}

void ctl_op_client_gone(struct ctl_client *c)
{
	struct ctl_op *op = c->op;

	if (!op)
		return;
	c->op = NULL;
	op->c = NULL;
	if (op->cancelled)
		return;
	/* Not now: the client may be closed inside the owner's own call
	 * (a line it sent overran the client's bound). */
	op->cancelled = true;
	op->cancel_due = true;
	uv_timer_start(&c->ctl->ops_due, on_cancels_due, 0, 0);
}

void ctl_ops_vm_removed(struct vm *vm, enum detach_reason why)
{
	enum ctl_op_cancel reason = why == DETACH_STOPPING
					    ? CTL_OP_DAEMON_STOPPING
					    : CTL_OP_VM_REMOVED;
	struct ctl_op *op;

	for (;;) {
		for (op = vm->h->ops; op; op = op->next)
			if (op->vm == vm && !op->cancelled)
				break;
		if (!op)
			return;
		op->cancelled = true;
		op->ops->on_cancel(op->ud, op, reason);
	}
}

void ctl_ops_stop(struct hostd *h)
{
	struct ctl_op *op;

	for (;;) {
		struct ctl_client *c;
		enum ctl_op_cancel why = CTL_OP_DAEMON_STOPPING;
		bool call;

		for (op = h->ops; op && op->stop_seen; op = op->next)
			;
		if (!op)
			return;
		op->stop_seen = true;
		c = op->c;
		if (c) {
			json_t *o = json_pack(
				"{s:O?, s:b, s:{s:s, s:s}}", "id", op->id, "ok",
				0, "error", "code", "cancelled", "message",
				"vmic-hostd is stopping: the operation was "
				"cancelled");

			c->op = NULL;
			op->c = NULL;
			if (o)
				ctl_client_send_json(c, o);
			json_decref(o);
		}
		if (op->cancel_due) {
			why = CTL_OP_CLIENT_GONE;
			op->cancel_due = false;
			call = true;
		} else {
			call = !op->cancelled;
		}
		op->cancelled = true;
		if (call)
			op->ops->on_cancel(op->ud, op, why);
	}
}

