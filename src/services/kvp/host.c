/* SPDX-License-Identifier: MIT */
/*
 * KVP, host half: the service entry, its settings and state, its status,
 * and the host's facts about each VM (pool 3, AutoExternal), under the
 * names a Hyper-V guest finds there: VirtualMachineName,
 * VirtualMachineId, HostName, PhysicalHostName and
 * PhysicalHostNameFullyQualified.
 *
 * The VM id is a UUID derived from the VM's name and the time it was
 * registered, so it is the same across restarts of the daemon without
 * being stored, and a VM removed and added again under the same name is
 * a new VM (its guest clears what the old one was given).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/strbuf.h"
#include "proto/services.h"
#include "services/kvp/host.h"

#define FIELD(f) offsetof(struct kvp_settings, f)

/* Each bounds what a VM makes the host keep: members of the socket
 * group may raise none above hostd.conf's value (settings.c). */
static const struct vmic_conf_key keys[] = {
	{ .section = "kvp", .key = "external-max-keys", .type = VMIC_CONF_UINT,
	  .offset = FIELD(external_max_keys), .min = 1, .max = 100000,
	  .cost = VMIC_CONF_COST_UP,
	  .help = "keys the host may give a VM in its External pool "
		  "(1..100000)" },
	{ .section = "kvp", .key = "guest-max-keys", .type = VMIC_CONF_UINT,
	  .offset = FIELD(guest_max_keys), .min = 1, .max = 100000,
	  .cost = VMIC_CONF_COST_UP,
	  .help = "keys of the guest's Guest pool the host keeps "
		  "(1..100000)" },
	{ .section = "kvp", .key = "guest-max-bytes", .type = VMIC_CONF_SIZE,
	  .offset = FIELD(guest_max_bytes), .min = 4096,
	  .max = 256ull << 20, .cost = VMIC_CONF_COST_UP,
	  .help = "bytes of keys and values of the guest's Guest pool the "
		  "host keeps (4K..256M)" },
};

static const struct vmic_conf_table settings_table = { keys,
						       ARRAY_SIZE(keys) };

#define DFIELD(f) offsetof(struct kvp_daemon_conf, f)

/* [kvp] keys for the whole daemon (hostd.conf only). */
static const struct vmic_conf_key daemon_keys[] = {
	{ .section = "kvp", .key = "max-total-bytes", .type = VMIC_CONF_SIZE,
	  .offset = DFIELD(max_total_bytes), .min = 1ull << 20,
	  .max = 1ull << 40,
	  .help = "bytes of keys and values the host keeps for all VMs "
		  "together, External and guests' pools (1M..1T)" },
	{ .section = "kvp", .key = "client-write-rate", .type = VMIC_CONF_UINT,
	  .offset = DFIELD(client_write_rate), .min = 1, .max = 1000000,
	  .help = "records a client user other than root may set or delete "
		  "a second, 10 s of them at once (1..1000000)" },
	{ .section = "kvp", .key = "client-write-bytes",
	  .type = VMIC_CONF_SIZE, .offset = DFIELD(client_write_bytes),
	  .min = 1024, .max = 1ull << 30,
	  .help = "bytes of keys and values a client user other than root "
		  "may write a second, 10 s of them at once (1K..1G)" },
};

static const struct vmic_conf_table daemon_table = { daemon_keys,
						     ARRAY_SIZE(daemon_keys) };

static void kvp_daemon_defaults(void *p)
{
	struct kvp_daemon_conf *c = p;

	c->max_total_bytes = 256ull << 20;
	c->client_write_rate = 1000;
	c->client_write_bytes = 1ull << 20;
}

const struct kvp_daemon_conf *kvp_conf(const struct hostd *h)
{
	return svc_daemon_settings(h, KVP_ID);
}

static void kvp_settings_defaults(void *p)
{
	struct kvp_settings *s = p;

	s->external_max_keys = 16384;
	s->guest_max_keys = 1024;
	s->guest_max_bytes = 1 << 20;
}

struct kvp_vm *kvp_of(const struct vm *vm)
{
	return vm_state(vm, KVP_ID);
}

const struct kvp_settings *kvp_settings_of(const struct vm *vm)
{
	return vm_settings(vm, KVP_ID);
}

struct kvp_daemon *kvp_daemon_of(const struct vm *vm)
{
	return hostd_state(vm_hostd(vm), KVP_ID);
}

static int kvp_daemon_start(struct hostd *h)
{
	struct kvp_daemon *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	if (gethostname(d->host, sizeof(d->host)) < 0)
		snprintf(d->host, sizeof(d->host), "localhost");
	d->host[sizeof(d->host) - 1] = '\0';
	hostd_set_state(h, KVP_ID, d);
	return 0;
}

static void kvp_daemon_stop(struct hostd *h)
{
	struct kvp_daemon *d = hostd_state(h, KVP_ID);

	if (d)
		kvp_rate_free(d);
	free(d);
	hostd_set_state(h, KVP_ID, NULL);
}

static void fact(struct kvp_table *t, const char *key, const char *value)
{
	kvp_table_set(t, key, strlen(key), value, strlen(value), 0, NULL,
		      NULL);
}

void kvp_facts_refresh(struct kvp_vm *kv)
{
	const struct kvp_daemon *d = kvp_daemon_of(kv->vm);
	struct kvp_table *t = &kv->pools[VMIC_KVP_AUTO_EXTERNAL];
	char id[VM_UUID_LEN + 1], shortname[256];

	vm_uuid(kv->vm, id);
	snprintf(shortname, sizeof(shortname), "%.*s",
		 (int)strcspn(d->host, "."), d->host);
	kvp_table_clear(t);
	fact(t, "HostName", d->host);
	fact(t, "PhysicalHostName", shortname);
	fact(t, "PhysicalHostNameFullyQualified", d->host);
	fact(t, "VirtualMachineId", id);
	fact(t, "VirtualMachineName", vm_name(kv->vm));
}

static int kvp_attach(struct vm *vm)
{
	struct kvp_vm *kv = calloc(1, sizeof(*kv));

	if (!kv)
		return -ENOMEM;
	kv->vm = vm;
	kv->copy_ms = -1;
	for (unsigned p = 0; p < VMIC_KVP_POOLS; p++) {
		kvp_table_init(&kv->pools[p]);
		kvp_outbox_init(&kv->out[p], (uint8_t)p);
		kvp_inbox_init(&kv->in[p]);
	}
	kvp_store_init(kv);
	kvp_pools_init(kv);
	kvp_sync_init(kv);
	vm_set_state(vm, KVP_ID, kv);
	kvp_facts_refresh(kv);
	return 0;
}

static void kvp_detach(struct vm *vm, enum detach_reason why)
{
	struct kvp_vm *kv = kvp_of(vm);

	if (!kv)
		return;
	kvp_sync_down(kv);
	kvp_sync_close(kv);
	kvp_watch_end_all(kv, why == DETACH_REMOVED
				      ? "the VM was removed"
				      : "vmic-hostd is stopping");
	kvp_store_close(kv);
	kvp_pools_close(kv);
}

static void kvp_release(struct vm *vm)
{
	struct kvp_vm *kv = kvp_of(vm);

	if (!kv)
		return;
	for (unsigned p = 0; p < VMIC_KVP_POOLS; p++) {
		kvp_table_clear(&kv->pools[p]);
		kvp_outbox_free(&kv->out[p]);
	}
	kvp_store_free(kv);
	free(kv);
	vm_set_state(vm, KVP_ID, NULL);
}

/* The registration is loaded now: its time of `add` makes the id. */
static void kvp_loaded(struct vm *vm)
{
	kvp_facts_refresh(kvp_of(vm));
}

/* Start-up: what the store holds of a pool (pool 3 is made, not
 * stored); the records stay there until needed (host-pools.c). */
static void kvp_data_sizes(struct vm *vm, unsigned space, uint64_t rows,
			   uint64_t bytes)
{
	kvp_pools_sizes(kvp_of(vm), space, rows, bytes);
}

static void kvp_on_up(struct vm *vm)
{
	kvp_pools_session_up(kvp_of(vm));
}

static void kvp_on_down(struct vm *vm)
{
	kvp_pools_session_down(kvp_of(vm));
}

static int kvp_on_frame(struct vm *vm, const struct vmic_frame *f)
{
	return kvp_sync_on_frame(kvp_of(vm), f);
}

/* Secondary status: why records are not going through. */
static void kvp_status(const struct vm *vm, struct svc_status *st)
{
	const struct kvp_vm *kv = kvp_of(vm);
	const struct kvp_settings *s = kvp_settings_of(vm);

	if (st->primary != SVC_OK)
		return;
	if (kv->guest_refused)
		snprintf(st->secondary, sizeof(st->secondary),
			 "the guest refused the host's records: %s",
			 kv->refusal);
	else if (kv->cap_noted)
		snprintf(st->secondary, sizeof(st->secondary),
			 "the guest's pools are at their limit (guest-max-keys "
			 "%u, guest-max-bytes %llu): %llu records kept out",
			 s->guest_max_keys,
			 (unsigned long long)s->guest_max_bytes,
			 (unsigned long long)kv->refused);
}

/* "auto_external_keys": a pool's name and what, as a JSON member. */
static void member_name(unsigned pool, const char *what, char *buf, size_t n)
{
	snprintf(buf, n, "%s_%s", vmic_kvp_pool_name(pool), what);
	for (char *c = buf; *c; c++)
		if (*c == '-')
			*c = '_';
}

static void kvp_status_json(const struct vm *vm, json_t *o)
{
	const struct kvp_vm *kv = kvp_of(vm);
	char id[VM_UUID_LEN + 1], name[40];
	bool stale = !kv->active;

	for (unsigned p = 0; p < VMIC_KVP_AUTO_INTERNAL; p++) {
		member_name(p, "keys", name, sizeof(name));
		json_object_set_new(o, name,
				    json_integer((json_int_t)kvp_pool_keys(kv,
									   p)));
		member_name(p, "bytes", name, sizeof(name));
		json_object_set_new(o, name,
				    json_integer((json_int_t)kvp_pool_bytes(kv,
									    p)));
	}
	json_object_set_new(o, "pools_in_memory",
			    json_boolean(kvp_pools_in_memory(kv)));
	json_object_set_new(o, "stale", json_boolean(stale));
	json_object_set_new(o, "external_synced",
			    json_boolean(kv->active &&
					 !kvp_outbox_copying(
						 &kv->out[VMIC_KVP_EXTERNAL]) &&
					 kv->ninflight == 0));
	json_object_set_new(o, "external_copy_ms",
			    kv->copy_ms >= 0 ? json_integer(kv->copy_ms)
					     : json_null());
	json_object_set_new(o, "guest_copy_us",
			    kv->guest_copy_us ? json_integer(kv->guest_copy_us)
					      : json_null());
	json_object_set_new(o, "refused",
			    json_integer((json_int_t)kv->refused));
	vm_uuid(vm, id);
	json_object_set_new(o, "vm_id", json_string(id));
}

/* New bounds: a guest whose records were kept out this session sends its
 * pools again (a new IDENTITY starts its copies over), so what fits now
 * arrives without waiting for its next session. */
static void kvp_settings_changed(struct vm *vm)
{
	struct kvp_vm *kv = kvp_of(vm);

	if (kv->active && kv->cap_noted)
		kvp_sync_up(kv);
}

static void kvp_stats_json(struct hostd *h, json_t *o, bool reset UNUSED)
{
	const struct kvp_daemon *d = hostd_state(h, KVP_ID);

	json_object_set_new(
		o, "kvp",
		json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			  "records_sent", (json_int_t)d->sent,
			  "records_received", (json_int_t)d->received,
			  "refused", (json_int_t)d->refused, "stored_bytes",
			  (json_int_t)d->total, "total_refused",
			  (json_int_t)d->total_refused, "rate_refused",
			  (json_int_t)d->rate_refused, "pools_in_memory",
			  (json_int_t)kvp_pools_resident(h)));
}

const struct host_service kvp_host = {
	.desc = &vmic_kvp_service,
	.settings = &settings_table,
	.settings_size = sizeof(struct kvp_settings),
	.settings_defaults = kvp_settings_defaults,
	.daemon_settings = &daemon_table,
	.daemon_settings_size = sizeof(struct kvp_daemon_conf),
	.daemon_settings_defaults = kvp_daemon_defaults,
	/* The window of batches, and those of a session's start that are
	 * still answered after the next began. */
	.max_requests = 2 * VMIC_KVP_WINDOW,
	.daemon_start = kvp_daemon_start,
	.daemon_stop = kvp_daemon_stop,
	.attach = kvp_attach,
	.detach = kvp_detach,
	.release = kvp_release,
	.loaded = kvp_loaded,
	.data_sizes = kvp_data_sizes,
	.on_up = kvp_on_up,
	.on_down = kvp_on_down,
	.on_frame = kvp_on_frame,
	.settings_changed = kvp_settings_changed,
	.status = kvp_status,
	.status_json = kvp_status_json,
	.stats_json = kvp_stats_json,
	.commands = kvp_commands,
	.ncommands = KVP_NCOMMANDS,
};
