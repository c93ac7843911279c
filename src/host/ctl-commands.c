/* SPDX-License-Identifier: MIT */
/*
 * The commands of the control socket, one handler each, and their table.
 * ctl.c has already taken "id" and "cmd" out of the request and, for
 * commands that name a registered VM, "vm" too; each handler unpacks the
 * rest strictly, so an unknown member is an error.
 *
 * A command that changes the registry or settings builds one transaction
 * of its change and its event and hands it to the writer thread; once it
 * is committed, the change is applied in memory and the reply is sent,
 * so what a reply reports survives a kill -9, and the loop never waits
 * for the disk. Such commands run one at a time (gate_enter).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "hostd.h"
#include "host/libvirt.h"
#include "proto/proto.h"
#include "proto/services.h"

#define EVENTS_LIMIT_DEFAULT 1000
#define EVENTS_LIMIT_MAX 100000

bool ctl_args_unpack(struct ctl_request *rq, const char *cmd, json_t *args,
		     const char *fmt, ...)
{
	const struct ctl_command *c = ctl_command_find(cmd);
	json_error_t err;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = json_vunpack_ex(args, &err, JSON_STRICT, fmt, ap);
	va_end(ap);
	if (r == 0)
		return true;
	ctl_reply_error(rq, "bad-request", "`%s`: %s; its members are %s", cmd,
			err.text, c && c->members[0] ? c->members : "none");
	return false;
}

/* ---- mutating commands: one at a time, each committed before it applies */

/* Handler of a mutating command: replies at once and returns false, or
 * hands a transaction to the writer and returns true (its commit
 * callback replies and opens the gate). */
typedef bool (*mutating_fn)(struct ctl_request *rq, struct vm *vm,
			    json_t *args);

struct ctl_parked {
	struct ctl_parked *next;
	struct ctl_request *rq;
	struct vm *vm; /* referenced; NULL for add */
	json_t *args;
	mutating_fn run;
};

/* A command waiting for its commit. */
struct cmd_commit {
	struct ctl_request *rq;
	struct vm *vm; /* referenced */
	void (*apply)(struct cmd_commit *cc); /* committed: change, reply */
	void (*undo)(struct cmd_commit *cc);  /* failed: free, NULL if none */
	/* what apply takes */
	char *power_off;
	char channel_uri[CHANNEL_URI_MAX];
	struct vmic_channel channel;
	void *settings;
	uint32_t mask;
	uint8_t service;
	bool enable;
};

static void gate_leave(struct hostd *h);

/*
 * Mutating commands (add, set, remove, enable, disable) run one at a
 * time: each one's checks, its commit and its change in memory happen
 * with no other in between, so memory and store never disagree and two
 * commands never decide on the same stale state. Others wait, in order,
 * without holding the loop; reads do not wait at all.
 */
static void gate_enter(struct ctl_request *rq, struct vm *vm, json_t *args,
		       mutating_fn run)
{
	struct hostd *h = ctl_request_hostd(rq);
	struct ctl_parked *p;

	if (!h->cmd_busy) {
		h->cmd_busy = true;
		if (!run(rq, vm, args))
			gate_leave(h);
		return;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	p->rq = rq;
	p->vm = vm;
	if (vm)
		vm_ref(vm);
	p->args = json_incref(args);
	p->run = run;
	if (h->cmd_parked_tail)
		h->cmd_parked_tail->next = p;
	else
		h->cmd_parked = p;
	h->cmd_parked_tail = p;
}

static void gate_leave(struct hostd *h)
{
	h->cmd_busy = false;
	while (!h->cmd_busy && h->cmd_parked) {
		struct ctl_parked *p = h->cmd_parked;

		h->cmd_parked = p->next;
		if (!h->cmd_parked)
			h->cmd_parked_tail = NULL;
		if (p->vm && p->vm->removed) {
			ctl_reply_error(p->rq, "unknown-vm",
					"no VM named '%s' any more: it was "
					"removed",
					p->vm->name);
		} else if (h->stopping) {
			ctl_reply_error(p->rq, "internal",
					"vmic-hostd is stopping");
		} else {
			h->cmd_busy = true;
			h->cmd_busy = p->run(p->rq, p->vm, p->args);
		}
		json_decref(p->args);
		if (p->vm)
			vm_unref(p->vm);
		free(p);
	}
}

static void on_commit_done(struct hostd *h, struct store_txn *t, void *ud)
{
	struct cmd_commit *cc = ud;
	const char *msg;
	int r = store_txn_result(t, &msg);

	events_txn_done(h, t);
	if (r == 0 && !h->stopping && !cc->vm->removed) {
		cc->apply(cc);
	} else {
		if (cc->undo)
			cc->undo(cc);
		if (r < 0)
			log_error("%s", msg);
		ctl_reply_error(cc->rq, "internal", "%s",
				r < 0 ? msg : "vmic-hostd is stopping");
	}
	vm_unref(cc->vm);
	free(cc->power_off);
	free(cc->settings);
	free(cc);
	gate_leave(h);
}

/*
 * Hand t (with the command's event e, which may be NULL) to the writer;
 * cc's apply replies once committed. False, after replying, without
 * memory.
 */
static bool commit(struct ctl_request *rq, struct store_txn *t,
		   struct event *e, struct cmd_commit *cc)
{
	struct hostd *h = ctl_request_hostd(rq);

	store_txn_add_events(t, e);
	cc->rq = rq;
	vm_ref(cc->vm);
	store_commit(h, t, on_commit_done, cc);
	return true;
}

/* A commit context and a command's transaction, or NULL after replying. */
static struct cmd_commit *commit_new(struct ctl_request *rq, struct vm *vm,
				     struct store_txn **t)
{
	struct cmd_commit *cc = calloc(1, sizeof(*cc));

	*t = cc ? store_txn_new(true) : NULL;
	if (!*t) {
		free(cc);
		ctl_reply_error(rq, "internal", "out of memory");
		return NULL;
	}
	cc->vm = vm;
	return cc;
}

/* Give up a command before its commit: free, reply. */
static bool commit_abandon(struct ctl_request *rq, struct cmd_commit *cc,
			   struct store_txn *t, struct event *e)
{
	event_unref(e);
	store_txn_free(t);
	free(cc->power_off);
	free(cc->settings);
	free(cc);
	ctl_reply_error(rq, "internal", "out of memory");
	return false;
}

/* The registered VM other than `self` that uses channel uri, or NULL. */
static const struct vm *channel_user(struct hostd *h, const char *uri,
				     const struct vm *self)
{
	for (size_t i = 0; i < h->nvms; i++)
		if (h->vms[i] != self &&
		    strcmp(h->vms[i]->channel_uri, uri) == 0)
			return h->vms[i];
	return NULL;
}

/* A valid channel this peer may name, used by no other VM than self. */
static bool check_channel(struct ctl_request *rq, const char *uri,
			  struct vmic_channel *ch, const struct vm *self)
{
	char err[512], canon[CHANNEL_URI_MAX];
	const struct vm *other;

	if (vm_channel_parse(uri, ch, err, sizeof(err)) < 0) {
		ctl_reply_error(rq, "invalid-argument", "channel: %s", err);
		return false;
	}
	vmic_channel_format(ch, canon, sizeof(canon));
	other = channel_user(ctl_request_hostd(rq), canon, self);
	if (other) {
		ctl_reply_error(rq, "exists",
				"channel %s is already the channel of VM '%s'; "
				"two VMs on one channel would take each other's "
				"session in turn",
				canon, other->name);
		return false;
	}
	return access_check_channel(rq, canon);
}

static bool check_power(struct ctl_request *rq, const char *vm,
			const char *uri)
{
	char err[256];

	if (uri && *uri && vm_power_uri_check(uri, err, sizeof(err)) < 0) {
		ctl_reply_error(rq, "invalid-argument", "power_off: %s", err);
		return false;
	}
	return access_check_power(rq, vm, uri);
}

static void cmd_version(struct ctl_request *rq, struct vm *vm UNUSED,
			json_t *args)
{
	if (!ctl_args_unpack(rq, "version", args, "{}"))
		return;
	ctl_reply_ok(rq, json_pack("{s:s, s:i}", "version", VMIC_VERSION,
				   "protocol", VMIC_FRAMEWORK_VERSION));
}

/* Where a streamed `list` is: the name of the last VM sent. */
struct list_cursor {
	struct hostd *h;
	bool started;
	char last[VM_NAME_MAX + 1];
};

static enum ctl_stream_next list_next(void *ud, struct ctl_text *out,
				      size_t max)
{
	struct list_cursor *lc = ud;
	struct hostd *h = lc->h;
	size_t i = lc->started ? vm_first_after(h, lc->last) : 0;

	lc->started = true;
	for (size_t n = 0; n < max && i < h->nvms; n++, i++) {
		vm_summary_text(h->vms[i], out);
		snprintf(lc->last, sizeof(lc->last), "%s", h->vms[i]->name);
	}
	return i < h->nvms ? CTL_STREAM_MORE : CTL_STREAM_DONE;
}

static void list_done(void *ud)
{
	free(ud);
}

static const struct ctl_stream_ops list_ops = { list_next, list_done };

/* The VMs in name order, streamed: 10,000 of them hold the loop only a
 * batch at a time, and a client that does not read holds little. */
static void cmd_list(struct ctl_request *rq, struct vm *vm UNUSED,
		     json_t *args)
{
	struct list_cursor *lc;

	if (!ctl_args_unpack(rq, "list", args, "{}"))
		return;
	lc = calloc(1, sizeof(*lc));
	if (!lc) {
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	lc->h = ctl_request_hostd(rq);
	ctl_reply_stream(rq, json_object(), "vms", &list_ops, lc);
}

/* ---- add ---- */

static void add_apply(struct cmd_commit *cc)
{
	struct hostd *h = ctl_request_hostd(cc->rq);
	struct vm *vm = cc->vm;
	struct store_txn *t;

	if (vm_register(h, vm) < 0) {
		/* Stored, but not in memory: take it out again. */
		t = store_txn_new(true);
		if (t && store_txn_vm_delete(t, vm->name) == 0)
			store_commit(h, t, NULL, NULL);
		else
			store_txn_free(t);
		vm_destroy(vm, DETACH_REMOVED);
		ctl_reply_error(cc->rq, "internal", "out of memory");
		return;
	}
	vm_fd_room(h);
	conn_start(vm);
	ctl_reply_ok(cc->rq, vm_summary_json(vm));
}

static void add_undo(struct cmd_commit *cc)
{
	vm_destroy(cc->vm, DETACH_REMOVED);
}

static bool add_run(struct ctl_request *rq, struct vm *unused UNUSED,
		    json_t *args)
{
	struct hostd *h = ctl_request_hostd(rq);
	const char *name, *channel, *power = NULL, *bad;
	struct vmic_channel ch;
	struct cmd_commit *cc;
	struct store_txn *t;
	struct event *e;
	struct vm *vm;

	if (!ctl_args_unpack(rq, "add", args, "{s:s, s:s, s?s}", "vm", &name,
			     "channel", &channel, "power_off", &power))
		return false;
	bad = vm_name_invalid(name);
	if (bad) {
		ctl_reply_error(rq, "invalid-argument", "'%.64s': %s", name,
				bad);
		return false;
	}
	if (vm_find(h, name)) {
		ctl_reply_error(rq, "exists", "a VM named '%s' is already "
					      "registered; `vmic set` changes "
					      "it",
				name);
		return false;
	}
	if (h->nvms >= h->cfg.max_vms) {
		ctl_reply_error(rq, "limit", "%zu VMs are registered, the most "
					     "[daemon] max-vms allows; remove "
					     "one or raise the limit",
				h->nvms);
		return false;
	}
	if (!access_check_vm_count(rq))
		return false;
	if (!check_channel(rq, channel, &ch, NULL) ||
	    !check_power(rq, name, power))
		return false;
	vm = vm_new(h, name);
	if (!vm) {
		ctl_reply_error(rq, "internal", "out of memory");
		return false;
	}
	vm->channel = ch;
	vmic_channel_format(&ch, vm->channel_uri, sizeof(vm->channel_uri));
	vm->power_off = power && *power ? strdup(power) : NULL;
	cc = commit_new(rq, vm, &t);
	if (!cc) {
		vm_destroy(vm, DETACH_REMOVED);
		return false;
	}
	cc->apply = add_apply;
	cc->undo = add_undo;
	e = events_prepare(h, vm->name, NULL, "vm-added", NULL, NULL,
			   "registered with channel %s", vm->channel_uri);
	if (!e || store_txn_vm_insert(t, vm) < 0) {
		vm_destroy(vm, DETACH_REMOVED);
		return commit_abandon(rq, cc, t, e);
	}
	return commit(rq, t, e, cc);
}

static void cmd_add(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	gate_enter(rq, vm, args, add_run);
}

/* ---- set ---- */

/* Append "what old -> new" to a change list. */
static void note_change(char *buf, size_t n, const char *what,
			const char *from, const char *to)
{
	size_t off = strlen(buf);

	snprintf(buf + off, n - off, "%s%s %s -> %s", off ? "; " : "", what,
		 from, to);
}

static void describe_changes(const struct vm *vm, const char *channel_uri,
			     const char *power_off, char *buf, size_t n)
{
	buf[0] = '\0';
	if (strcmp(vm->channel_uri, channel_uri) != 0)
		note_change(buf, n, "channel", vm->channel_uri, channel_uri);
	if ((vm->power_off == NULL) != (power_off == NULL) ||
	    (power_off && strcmp(vm->power_off, power_off) != 0))
		note_change(buf, n, "power_off",
			    vm->power_off ? vm->power_off : "none",
			    power_off ? power_off : "none");
}

static void set_vm_apply(struct cmd_commit *cc)
{
	struct vm *vm = cc->vm;
	bool reconnect = strcmp(vm->channel_uri, cc->channel_uri) != 0;
	char *old = vm->power_off;

	memcpy(vm->channel_uri, cc->channel_uri, sizeof(vm->channel_uri));
	vm->channel = cc->channel;
	vm->power_off = cc->power_off;
	cc->power_off = old; /* freed with cc */
	vm_touch(vm);
	if (reconnect)
		conn_restart(vm);
	ctl_reply_ok(cc->rq, vm_summary_json(vm));
}

/* set with channel and/or power_off: the VM's own settings. */
static bool set_vm(struct ctl_request *rq, struct vm *vm, const char *channel,
		   const char *power)
{
	struct hostd *h = ctl_request_hostd(rq);
	struct vmic_channel ch = vm->channel;
	struct event *e = NULL;
	struct cmd_commit *cc;
	struct store_txn *t;
	char changes[1500];

	if (channel && !check_channel(rq, channel, &ch, vm))
		return false;
	if (!check_power(rq, vm->name, power))
		return false;
	cc = commit_new(rq, vm, &t);
	if (!cc)
		return false;
	cc->apply = set_vm_apply;
	cc->channel = ch;
	if (channel)
		vmic_channel_format(&ch, cc->channel_uri,
				    sizeof(cc->channel_uri));
	else
		memcpy(cc->channel_uri, vm->channel_uri,
		       sizeof(cc->channel_uri));
	if (power)
		cc->power_off = *power ? strdup(power) : NULL;
	else
		cc->power_off = vm->power_off ? strdup(vm->power_off) : NULL;
	describe_changes(vm, cc->channel_uri, cc->power_off, changes,
			 sizeof(changes));
	if (changes[0] &&
	    !(e = events_prepare(h, vm->name, NULL, "vm-changed", NULL, NULL,
				 "%s", changes)))
		return commit_abandon(rq, cc, t, e);
	if (store_txn_vm_update(t, vm->name, cc->channel_uri, cc->power_off) <
	    0)
		return commit_abandon(rq, cc, t, e);
	return commit(rq, t, e, cc);
}

/* The service a request names, or NULL after replying unknown-service. */
static const struct vmic_service_desc *find_service(struct ctl_request *rq,
						    const char *name)
{
	const struct vmic_service_desc *d = vmic_service_by_name(name);

	if (!d)
		ctl_reply_error(rq, "unknown-service",
				"no service '%.64s'; valid services: %s", name,
				vmic_service_names());
	return d;
}

static void set_service_apply(struct cmd_commit *cc)
{
	struct vm *vm = cc->vm;
	const struct host_service *s = host_service_get(cc->service);
	void *old = vm->svc[cc->service].settings;

	vm->svc[cc->service].settings = cc->settings;
	vm->svc[cc->service].own_keys |= cc->mask;
	cc->settings = old; /* freed with cc */
	if (s && s->settings_changed)
		s->settings_changed(vm);
	ctl_reply_ok(cc->rq, service_json(vm, cc->service));
}

/* set with service and settings: keys of the service's table. */
static bool set_service(struct ctl_request *rq, struct vm *vm,
			const char *name, json_t *values)
{
	struct hostd *h = ctl_request_hostd(rq);
	const struct vmic_service_desc *d = find_service(rq, name);
	char err[768], changes[1500];
	struct cmd_commit *cc;
	struct store_txn *t;
	struct event *e;
	uint32_t mask;
	void *now;
	int r;

	if (!d)
		return false;
	r = settings_parse(vm, d->id, values, ctl_request_privileged(rq),
			   &now, &mask, err, sizeof(err));
	if (r < 0) {
		ctl_reply_error(rq, r == -EPERM ? "forbidden"
						: "invalid-argument",
				"%s", err);
		return false;
	}
	cc = commit_new(rq, vm, &t);
	if (!cc) {
		free(now);
		return false;
	}
	cc->apply = set_service_apply;
	cc->settings = now;
	cc->mask = mask;
	cc->service = d->id;
	settings_describe(d->id, vm->svc[d->id].settings, now, mask, changes,
			  sizeof(changes));
	e = events_prepare(h, vm->name, d->name, "service-setting", NULL, NULL,
			   "%s", changes);
	if (!e || store_txn_settings_set(t, vm->name, d->id, now, mask) < 0)
		return commit_abandon(rq, cc, t, e);
	return commit(rq, t, e, cc);
}

static bool set_run(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	const char *channel = NULL, *power = NULL, *service = NULL;
	json_t *values = NULL;

	if (!ctl_args_unpack(rq, "set", args, "{s?s, s?s, s?s, s?o}",
			     "channel", &channel, "power_off", &power,
			     "service", &service, "settings", &values))
		return false;
	if (!service && !values && !channel && !power) {
		ctl_reply_error(rq, "bad-request",
				"`set` needs channel or power_off, or service "
				"and settings");
		return false;
	}
	if ((service || values) && (channel || power)) {
		ctl_reply_error(rq, "bad-request",
				"`set` changes either the VM (channel, "
				"power_off) or one service (service, settings), "
				"not both at once");
		return false;
	}
	if (!service != !values) {
		ctl_reply_error(rq, "bad-request",
				"`set` of a service needs both \"service\" "
				"and \"settings\" ({\"KEY\": \"VALUE\"})");
		return false;
	}
	if (service)
		return set_service(rq, vm, service, values);
	return set_vm(rq, vm, channel, power);
}

static void cmd_set(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	gate_enter(rq, vm, args, set_run);
}

/* ---- remove ---- */

static void remove_apply(struct cmd_commit *cc)
{
	vm_destroy(cc->vm, DETACH_REMOVED);
	ctl_reply_ok(cc->rq, json_object());
}

static bool remove_run(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	struct hostd *h = ctl_request_hostd(rq);
	struct cmd_commit *cc;
	struct store_txn *t;
	struct event *e;

	if (!ctl_args_unpack(rq, "remove", args, "{}"))
		return false;
	cc = commit_new(rq, vm, &t);
	if (!cc)
		return false;
	cc->apply = remove_apply;
	/* What its limit held back is reported before it goes. */
	events_limit_flush(h, vm);
	e = events_prepare(h, vm->name, NULL, "vm-removed", NULL, NULL,
			   "unregistered (was on channel %s)", vm->channel_uri);
	if (!e || store_txn_vm_delete(t, vm->name) < 0)
		return commit_abandon(rq, cc, t, e);
	return commit(rq, t, e, cc);
}

static void cmd_remove(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	gate_enter(rq, vm, args, remove_run);
}

static void cmd_status(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	const struct vmic_service_desc *d;
	const char *service = NULL;

	if (!ctl_args_unpack(rq, "status", args, "{s?s}", "service",
			     &service))
		return;
	if (!service) {
		ctl_reply_ok(rq, vm_status_json(vm));
		return;
	}
	d = find_service(rq, service);
	if (d)
		ctl_reply_ok(rq, service_json(vm, d->id));
}

/* ---- enable, disable ---- */

static void switch_apply(struct cmd_commit *cc)
{
	service_switch(cc->vm, cc->service, cc->enable);
	ctl_reply_ok(cc->rq, service_json(cc->vm, cc->service));
}

static bool switch_run(struct ctl_request *rq, struct vm *vm, json_t *args,
		       const char *cmd, bool enable)
{
	struct hostd *h = ctl_request_hostd(rq);
	const struct vmic_service_desc *d;
	struct cmd_commit *cc;
	struct store_txn *t;
	struct event *e;
	const char *name;

	if (!ctl_args_unpack(rq, cmd, args, "{s:s}", "service", &name))
		return false;
	d = find_service(rq, name);
	if (!d)
		return false;
	if (vm_service_enabled(vm, d->id) == enable) {
		ctl_reply_ok(rq, service_json(vm, d->id));
		return false;
	}
	cc = commit_new(rq, vm, &t);
	if (!cc)
		return false;
	cc->apply = switch_apply;
	cc->service = d->id;
	cc->enable = enable;
	e = events_prepare(h, vm->name, d->name, "service-setting",
			   enable ? "disabled" : "enabled",
			   enable ? "enabled" : "disabled", "%s on the host",
			   enable ? "enabled" : "disabled");
	if (!e || store_txn_service_set(t, vm->name, d->id, enable) < 0)
		return commit_abandon(rq, cc, t, e);
	return commit(rq, t, e, cc);
}

static bool enable_run(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	return switch_run(rq, vm, args, "enable", true);
}

static bool disable_run(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	return switch_run(rq, vm, args, "disable", false);
}

static void cmd_enable(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	gate_enter(rq, vm, args, enable_run);
}

static void cmd_disable(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	gate_enter(rq, vm, args, disable_run);
}

/* ---- reads ---- */

static void cmd_events(struct ctl_request *rq, struct vm *unused UNUSED,
		       json_t *args)
{
	const char *vmname = NULL, *bad;
	json_int_t since = 0, limit = EVENTS_LIMIT_DEFAULT;
	int follow = 0;

	if (!ctl_args_unpack(rq, "events", args, "{s?s, s?I, s?I, s?b}", "vm",
			 &vmname, "since_us", &since, "limit", &limit,
			 "follow", &follow))
		return;
	/* Events of removed VMs stay: the name need not be registered. */
	if (vmname && (bad = vm_name_invalid(vmname))) {
		ctl_reply_error(rq, "invalid-argument", "vm: %s", bad);
		return;
	}
	if (limit < 1 || limit > EVENTS_LIMIT_MAX) {
		ctl_reply_error(rq, "invalid-argument",
				"limit must be 1..%d, not %lld",
				EVENTS_LIMIT_MAX, (long long)limit);
		return;
	}
	events_query(rq, vmname, since, (unsigned)limit, follow);
}

static void cmd_stats(struct ctl_request *rq, struct vm *vm UNUSED,
		      json_t *args)
{
	struct hostd *h = ctl_request_hostd(rq);
	size_t connected = 0;
	int reset = 0;
	json_t *res;

	if (!ctl_args_unpack(rq, "stats", args, "{s?b}", "reset", &reset))
		return;
	for (size_t i = 0; i < h->nvms; i++)
		connected += conn_up(h->vms[i]);
	res = json_pack("{s:I, s:I}", "vms", (json_int_t)h->nvms, "connected",
			(json_int_t)connected);
	ctl_stats_json(h, res);
	json_object_set_new(res, "events", events_stats_json(h));
	services_stats_json(h, res, reset);
	libvirt_stats_json(h, res);
	ctl_reply_ok(rq, res);
}

static const struct ctl_command commands[] = {
	{ "libvirt-setup", libvirt_cmd_setup, false,
	  "domain, path, uri, apply",
	  "the XML of a libvirt domain's vmic channel; apply adds it" },
	{ "version", cmd_version, false, "", "daemon and protocol version" },
	{ "list", cmd_list, false, "", "every VM with its state" },
	{ "add", cmd_add, false,
	  "vm (string), channel (string), power_off (string)",
	  "register a VM" },
	{ "set", cmd_set, true,
	  "vm (string), channel (string), power_off (string), service "
	  "(string), settings (object)",
	  "change a VM's or a service's settings" },
	{ "remove", cmd_remove, true, "vm (string)", "forget a VM" },
	{ "status", cmd_status, true, "vm (string), service (string)",
	  "a VM's connection and services, or one service" },
	{ "enable", cmd_enable, true, "vm (string), service (string)",
	  "turn a service on for a VM" },
	{ "disable", cmd_disable, true, "vm (string), service (string)",
	  "turn a service off for a VM" },
	{ "events", cmd_events, false,
	  "vm (string), since_us (integer), limit (integer), follow "
	  "(boolean)",
	  "the event log" },
	{ "stats", cmd_stats, false, "reset (boolean)",
	  "daemon-wide numbers" },
};

/* ctl_commands_extend's table. */
static const struct ctl_command *extra_commands;
static size_t extra_count;
static char command_names[768];

void ctl_commands_extend(const struct ctl_command *table, size_t n)
{
	extra_commands = table;
	extra_count = n;
	command_names[0] = '\0';
}

const struct ctl_command *ctl_command_find(const char *name)
{
	const struct ctl_command *c;

	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	c = services_command_find(name);
	for (size_t i = 0; !c && i < extra_count; i++)
		if (strcmp(extra_commands[i].name, name) == 0)
			c = &extra_commands[i];
	return c;
}

const char *ctl_command_names(void)
{
	char *names = command_names;
	size_t n = sizeof(command_names);

	if (names[0] == '\0') {
		size_t off = 0;

		for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
			off = vmic_appendf(names, n, off, "%s%s",
					   i ? ", " : "", commands[i].name);
		off = services_command_names(names, n, off);
		for (size_t i = 0; i < extra_count; i++)
			off = vmic_appendf(names, n, off, ", %s",
					   extra_commands[i].name);
	}
	return names;
}
