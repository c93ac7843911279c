/* SPDX-License-Identifier: MIT */
/*
 * The commands of the control socket, one handler each, and their table.
 * ctl.c has already taken "id" and "cmd" out of the request and, for
 * commands that name a registered VM, "vm" too; each handler unpacks the
 * rest strictly, so an unknown member is an error. A command that changes
 * the registry or settings commits before it replies, and so do the
 * events it caused: what a reply reports survives a kill -9.
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

/* Report a store failure to the client; the store has logged it. */
static void reply_store_error(struct ctl_request *rq)
{
	ctl_reply_error(rq, "internal", "%s", ctl_request_hostd(rq)->store.errmsg);
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

static bool list_next(void *ud, struct ctl_text *out, size_t max)
{
	struct list_cursor *lc = ud;
	struct hostd *h = lc->h;
	size_t i = lc->started ? vm_first_after(h, lc->last) : 0;

	lc->started = true;
	for (size_t n = 0; n < max && i < h->nvms; n++, i++) {
		vm_summary_text(h->vms[i], out);
		snprintf(lc->last, sizeof(lc->last), "%s", h->vms[i]->name);
	}
	return i < h->nvms;
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

static void cmd_add(struct ctl_request *rq, struct vm *unused UNUSED,
		    json_t *args)
{
	struct hostd *h = ctl_request_hostd(rq);
	const char *name, *channel, *power = NULL, *bad;
	struct vmic_channel ch;
	struct vm *vm;

	if (!ctl_args_unpack(rq, "add", args, "{s:s, s:s, s?s}", "vm", &name,
			     "channel", &channel, "power_off", &power))
		return;
	bad = vm_name_invalid(name);
	if (bad) {
		ctl_reply_error(rq, "invalid-argument", "'%.64s': %s", name,
				bad);
		return;
	}
	if (vm_find(h, name)) {
		ctl_reply_error(rq, "exists", "a VM named '%s' is already "
					      "registered; `vmic set` changes "
					      "it",
				name);
		return;
	}
	if (h->nvms >= h->cfg.max_vms) {
		ctl_reply_error(rq, "limit", "%zu VMs are registered, the most "
					     "[daemon] max-vms allows; remove "
					     "one or raise the limit",
				h->nvms);
		return;
	}
	if (!check_channel(rq, channel, &ch, NULL) ||
	    !check_power(rq, name, power))
		return;
	vm = vm_new(h, name);
	if (!vm) {
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	vm->channel = ch;
	vmic_channel_format(&ch, vm->channel_uri, sizeof(vm->channel_uri));
	vm->power_off = power && *power ? strdup(power) : NULL;
	if (store_vm_insert(h, vm) < 0) {
		vm_destroy(vm, DETACH_REMOVED);
		reply_store_error(rq);
		return;
	}
	if (vm_register(h, vm) < 0) {
		store_vm_delete(h, name);
		vm_destroy(vm, DETACH_REMOVED);
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	events_emit(h, vm->name, NULL, "vm-added", NULL, NULL,
		    "registered with channel %s", vm->channel_uri);
	vm_fd_room(h);
	conn_start(vm);
	events_flush(h);
	ctl_reply_ok(rq, vm_summary_json(vm));
}

/* Append "what old -> new" to a change list. */
static void note_change(char *buf, size_t n, const char *what,
			const char *from, const char *to)
{
	size_t off = strlen(buf);

	snprintf(buf + off, n - off, "%s%s %s -> %s", off ? "; " : "", what,
		 from, to);
}

/* The VM settings `set` may change, to apply all at once or not at all. */
struct vm_settings {
	char channel_uri[CHANNEL_URI_MAX];
	struct vmic_channel channel;
	char *power_off;
};

static void settings_swap(struct vm *vm, struct vm_settings *s)
{
	struct vm_settings tmp;

	memcpy(tmp.channel_uri, vm->channel_uri, sizeof(tmp.channel_uri));
	tmp.channel = vm->channel;
	tmp.power_off = vm->power_off;
	memcpy(vm->channel_uri, s->channel_uri, sizeof(vm->channel_uri));
	vm->channel = s->channel;
	vm->power_off = s->power_off;
	*s = tmp;
}

static void describe_changes(const struct vm *vm,
			     const struct vm_settings *old, char *buf,
			     size_t n)
{
	buf[0] = '\0';
	if (strcmp(old->channel_uri, vm->channel_uri) != 0)
		note_change(buf, n, "channel", old->channel_uri,
			    vm->channel_uri);
	if ((old->power_off == NULL) != (vm->power_off == NULL) ||
	    (old->power_off && strcmp(old->power_off, vm->power_off) != 0))
		note_change(buf, n, "power_off",
			    old->power_off ? old->power_off : "none",
			    vm->power_off ? vm->power_off : "none");
}

/* set with channel and/or power_off: the VM's own settings. */
static void set_vm(struct ctl_request *rq, struct vm *vm, const char *channel,
		   const char *power)
{
	struct hostd *h = ctl_request_hostd(rq);
	struct vm_settings s = { 0 };
	char changes[1500];

	s.channel = vm->channel;
	memcpy(s.channel_uri, vm->channel_uri, sizeof(s.channel_uri));
	if (channel) {
		if (!check_channel(rq, channel, &s.channel, vm))
			return;
		vmic_channel_format(&s.channel, s.channel_uri,
				    sizeof(s.channel_uri));
	}
	if (!check_power(rq, vm->name, power))
		return;
	if (power)
		s.power_off = *power ? strdup(power) : NULL;
	else
		s.power_off = vm->power_off ? strdup(vm->power_off) : NULL;
	settings_swap(vm, &s); /* s now holds the old settings */
	vm_touch(vm);
	if (store_vm_update(h, vm) < 0) {
		settings_swap(vm, &s);
		free(s.power_off);
		reply_store_error(rq);
		return;
	}
	describe_changes(vm, &s, changes, sizeof(changes));
	if (changes[0])
		events_emit(h, vm->name, NULL, "vm-changed", NULL, NULL, "%s",
			    changes);
	if (strcmp(s.channel_uri, vm->channel_uri) != 0)
		conn_restart(vm);
	free(s.power_off);
	events_flush(h);
	ctl_reply_ok(rq, vm_summary_json(vm));
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

/* set with service and settings: keys of the service's table. */
static void set_service(struct ctl_request *rq, struct vm *vm,
			const char *name, json_t *values)
{
	struct hostd *h = ctl_request_hostd(rq);
	const struct vmic_service_desc *d = find_service(rq, name);
	const struct host_service *s;
	char err[768], changes[1500];
	uint32_t mask;
	void *now, *old;

	if (!d)
		return;
	s = host_service_get(d->id);
	if (settings_parse(vm, d->id, values, &now, &mask, err,
			   sizeof(err)) < 0) {
		ctl_reply_error(rq, "invalid-argument", "%s", err);
		return;
	}
	if (store_settings_set(h, vm, d->id, now, mask) < 0) {
		free(now);
		reply_store_error(rq);
		return;
	}
	old = vm->svc[d->id].settings;
	vm->svc[d->id].settings = now;
	vm->svc[d->id].own_keys |= mask;
	settings_describe(d->id, old, now, mask, changes, sizeof(changes));
	events_emit(h, vm->name, d->name, "service-setting", NULL, NULL, "%s",
		    changes);
	free(old);
	if (s && s->settings_changed)
		s->settings_changed(vm);
	events_flush(h);
	ctl_reply_ok(rq, service_json(vm, d->id));
}

static void cmd_set(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	const char *channel = NULL, *power = NULL, *service = NULL;
	json_t *values = NULL;

	if (!ctl_args_unpack(rq, "set", args, "{s?s, s?s, s?s, s?o}",
			     "channel", &channel, "power_off", &power,
			     "service", &service, "settings", &values))
		return;
	if (!service && !values && !channel && !power) {
		ctl_reply_error(rq, "bad-request",
				"`set` needs channel or power_off, or service "
				"and settings");
		return;
	}
	if ((service || values) && (channel || power)) {
		ctl_reply_error(rq, "bad-request",
				"`set` changes either the VM (channel, "
				"power_off) or one service (service, settings), "
				"not both at once");
		return;
	}
	if (!service != !values) {
		ctl_reply_error(rq, "bad-request",
				"`set` of a service needs both \"service\" "
				"and \"settings\" ({\"KEY\": \"VALUE\"})");
		return;
	}
	if (service)
		set_service(rq, vm, service, values);
	else
		set_vm(rq, vm, channel, power);
}

static void cmd_remove(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	struct hostd *h = ctl_request_hostd(rq);

	if (!ctl_args_unpack(rq, "remove", args, "{}"))
		return;
	if (store_vm_delete(h, vm->name) < 0) {
		reply_store_error(rq);
		return;
	}
	events_emit(h, vm->name, NULL, "vm-removed", NULL, NULL,
		    "unregistered (was on channel %s)", vm->channel_uri);
	vm_destroy(vm, DETACH_REMOVED);
	events_flush(h);
	ctl_reply_ok(rq, json_object());
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

static void service_setting(struct ctl_request *rq, struct vm *vm,
			    json_t *args, const char *cmd, bool enable)
{
	struct hostd *h = ctl_request_hostd(rq);
	const struct vmic_service_desc *d;
	const char *name;

	if (!ctl_args_unpack(rq, cmd, args, "{s:s}", "service", &name))
		return;
	d = find_service(rq, name);
	if (!d)
		return;
	if (vm_service_enabled(vm, d->id) != enable) {
		if (store_service_set(h, vm, d->id, enable) < 0) {
			reply_store_error(rq);
			return;
		}
		events_emit(h, vm->name, d->name, "service-setting",
			    enable ? "disabled" : "enabled",
			    enable ? "enabled" : "disabled", "%s on the host",
			    enable ? "enabled" : "disabled");
		service_switch(vm, d->id, enable);
		events_flush(h);
	}
	ctl_reply_ok(rq, service_json(vm, d->id));
}

static void cmd_enable(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	service_setting(rq, vm, args, "enable", true);
}

static void cmd_disable(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	service_setting(rq, vm, args, "disable", false);
}

static void cmd_events(struct ctl_request *rq, struct vm *unused UNUSED,
		       json_t *args)
{
	struct hostd *h = ctl_request_hostd(rq);
	const char *vmname = NULL, *bad;
	json_int_t since = 0, limit = EVENTS_LIMIT_DEFAULT;
	int follow = 0;
	json_t *arr;

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
	events_flush(h);
	arr = json_array();
	if (store_events_query(h, vmname, since, (unsigned)limit, arr) < 0) {
		json_decref(arr);
		reply_store_error(rq);
		return;
	}
	if (follow)
		ctl_request_follow(rq);
	ctl_reply_ok(rq, json_pack("{s:o}", "events", arr));
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
	services_stats_json(h, res, reset);
	ctl_reply_ok(rq, res);
}

static const struct ctl_command commands[] = {
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

const struct ctl_command *ctl_command_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return services_command_find(name);
}

const char *ctl_command_names(void)
{
	static char names[512];

	if (names[0] == '\0') {
		size_t off = 0;

		for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
			off = vmic_appendf(names, sizeof(names), off, "%s%s",
					   i ? ", " : "", commands[i].name);
		services_command_names(names, sizeof(names), off);
	}
	return names;
}
