/* SPDX-License-Identifier: MIT */
/*
 * Per-VM service settings, validated by the key table each service
 * declares (the same struct vmic_conf_key that reads hostd.conf, so a
 * key's type, range and wording exist once).
 *
 * A VM's settings start as a copy of the daemon's defaults (hostd.conf
 * [NAME] sections, else the service's own). Keys set for the VM with
 * `vmic set VM NAME KEY=VALUE` are stored in the service_settings table
 * and marked in own_keys; the others follow the daemon's default.
 *
 * Keys that bound what a VM costs the daemon (marked with a cost in the
 * key table: a bound on stored keys and bytes, an interval) are given by
 * members of the socket group only within what hostd.conf allows: up to
 * the daemon's value (down to it, for an interval), or the VM's current
 * one when root gave it more. Root may use the key's whole range.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/strbuf.h"
#include "hostd.h"
#include "proto/services.h"

#define VALUE_MAX 1024

/* The service's key table, or NULL when it has no settings. */
static const struct vmic_conf_table *keys_of(uint8_t id)
{
	const struct host_service *s = host_service_get(id);

	return s && s->settings && s->settings->count ? s->settings : NULL;
}

json_t *settings_json(const struct vm *vm, uint8_t id, json_t **inherited)
{
	const struct vmic_conf_table *t = keys_of(id);
	char value[VALUE_MAX];
	json_t *o;

	*inherited = NULL;
	if (!t || !vm->svc[id].settings)
		return NULL;
	o = json_object();
	*inherited = json_array();
	for (size_t i = 0; i < t->count; i++) {
		vmic_conf_format(&t->keys[i], vm->svc[id].settings, value,
				 sizeof(value));
		json_object_set_new(o, t->keys[i].key, json_string(value));
		if (!(vm->svc[id].own_keys & (1u << i)))
			json_array_append_new(*inherited,
					      json_string(t->keys[i].key));
	}
	return o;
}

/* "interval, threshold" for messages that list a service's keys. */
static void key_names(const struct vmic_conf_table *t, char *buf, size_t n)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < t->count; i++)
		off = vmic_appendf(buf, n, off, "%s%s", i ? ", " : "",
				   t->keys[i].key);
}

/* A JSON value as the text the key table parses. */
static int value_text(json_t *v, char *buf, size_t n)
{
	if (json_is_string(v))
		snprintf(buf, n, "%s", json_string_value(v));
	else if (json_is_integer(v) && json_integer_value(v) >= 0)
		snprintf(buf, n, "%lld", (long long)json_integer_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, n, "%s", json_is_true(v) ? "yes" : "no");
	else
		return -EINVAL;
	return 0;
}

/*
 * May a member of the socket group give key k the value it has in now?
 * When not, a sentence in err saying the range it may use.
 */
static bool within_group_bound(const struct vm *vm, uint8_t id,
			       const struct vmic_conf_key *k, const void *now,
			       char *err, size_t errsz)
{
	const void *daemon = vm->h->cfg.svc_defaults[id];
	uint64_t want, conf, cur, edge;
	char lo[32], hi[32], root[32];
	bool up = k->cost == VMIC_CONF_COST_UP;

	if (k->cost == VMIC_CONF_COST_NONE || !daemon ||
	    vmic_conf_number(k, now, &want) < 0 ||
	    vmic_conf_number(k, daemon, &conf) < 0 ||
	    vmic_conf_number(k, vm->svc[id].settings, &cur) < 0)
		return true;
	edge = up ? MAX(conf, cur) : MIN(conf, cur);
	if (up ? want <= edge : want >= edge)
		return true;
	vmic_conf_format_number(k, up ? k->min : edge, lo, sizeof(lo));
	vmic_conf_format_number(k, up ? edge : k->max, hi, sizeof(hi));
	vmic_conf_format_number(k, up ? k->max : k->min, root, sizeof(root));
	snprintf(err, errsz,
		 "%s %s: members of the socket group may set %s..%s (%s the "
		 "daemon's value, [%s] %s in vmic-hostd.conf, or the VM's "
		 "current one); root may set it %s %s",
		 k->section, k->key, lo, hi, up ? "up to" : "down to",
		 k->section, k->key, up ? "up to" : "down to", root);
	return false;
}

int settings_parse(const struct vm *vm, uint8_t id, json_t *values,
		   bool privileged, void **out, uint32_t *mask, char *err,
		   size_t errsz)
{
	const struct host_service *s = host_service_get(id);
	const struct vmic_conf_table *t = keys_of(id);
	char names[256], text[VALUE_MAX], why[512];
	const char *key;
	json_t *v;
	void *copy;

	*out = NULL;
	*mask = 0;
	if (!t) {
		snprintf(err, errsz, "the %s service has no settings",
			 s ? s->desc->name : "unknown");
		return -EINVAL;
	}
	key_names(t, names, sizeof(names));
	if (!json_is_object(values) || json_object_size(values) == 0) {
		snprintf(err, errsz, "give at least one KEY=VALUE; the %s "
				     "settings are: %s",
			 s->desc->name, names);
		return -EINVAL;
	}
	copy = malloc(s->settings_size);
	if (!copy) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	memcpy(copy, vm->svc[id].settings, s->settings_size);
	json_object_foreach(values, key, v) {
		const struct vmic_conf_key *k =
			vmic_conf_find(t, s->desc->name, key);

		if (!k) {
			snprintf(err, errsz, "%s has no setting '%.64s'; its "
					     "settings are: %s",
				 s->desc->name, key, names);
			goto fail;
		}
		if (value_text(v, text, sizeof(text)) < 0) {
			snprintf(err, errsz, "%s %s: give the value as a "
					     "string",
				 s->desc->name, k->key);
			goto fail;
		}
		if (vmic_conf_apply(k, copy, text, why, sizeof(why)) < 0) {
			snprintf(err, errsz, "%s %s: %s", s->desc->name,
				 k->key, why);
			goto fail;
		}
		if (!privileged &&
		    !within_group_bound(vm, id, k, copy, err, errsz)) {
			free(copy);
			*mask = 0;
			return -EPERM;
		}
		*mask |= 1u << (k - t->keys);
	}
	*out = copy;
	return 0;
fail:
	free(copy);
	*mask = 0;
	return -EINVAL;
}

void settings_describe(uint8_t id, const void *old, const void *now,
		       uint32_t mask, char *buf, size_t n)
{
	const struct vmic_conf_table *t = keys_of(id);
	char a[VALUE_MAX], b[VALUE_MAX];
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; t && i < t->count; i++) {
		if (!(mask & (1u << i)))
			continue;
		vmic_conf_format(&t->keys[i], old, a, sizeof(a));
		vmic_conf_format(&t->keys[i], now, b, sizeof(b));
		off = vmic_appendf(buf, n, off, "%s%s %s -> %s",
				   off ? "; " : "", t->keys[i].key, a, b);
	}
}

bool settings_rebase(struct vm *vm, uint8_t id, const void *defaults)
{
	const struct vmic_conf_table *t = keys_of(id);
	char was[VALUE_MAX], now[VALUE_MAX], err[256];
	bool changed = false;

	for (size_t i = 0; t && i < t->count; i++) {
		const struct vmic_conf_key *k = &t->keys[i];

		if (vm->svc[id].own_keys & (1u << i))
			continue;
		vmic_conf_format(k, vm->svc[id].settings, was, sizeof(was));
		vmic_conf_format(k, defaults, now, sizeof(now));
		if (strcmp(was, now) == 0)
			continue;
		/* The default parsed once already: applying it cannot fail. */
		if (vmic_conf_apply(k, vm->svc[id].settings, now, err,
				    sizeof(err)) == 0)
			changed = true;
	}
	return changed;
}

void settings_load(struct vm *vm, const char *service, const char *key,
		   const char *value)
{
	const struct vmic_service_desc *d = vmic_service_by_name(service);
	const struct vmic_conf_table *t = d ? keys_of(d->id) : NULL;
	const struct vmic_conf_key *k;
	char err[512];

	/* A setting of a newer build's service or key waits for it. */
	k = t ? vmic_conf_find(t, d->name, key) : NULL;
	if (!k) {
		log_debug("database: VM '%s' has a setting %s %s this build "
			  "does not know; ignored",
			  vm->name, service, key);
		return;
	}
	if (vmic_conf_apply(k, vm->svc[d->id].settings, value, err,
			    sizeof(err)) < 0) {
		log_warning("database: VM '%s' setting %s %s: %s; using the "
			    "default (fix it with `vmic set %s %s %s=VALUE`)",
			    vm->name, d->name, k->key, err, vm->name, d->name,
			    k->key);
		return;
	}
	vm->svc[d->id].own_keys |= 1u << (k - t->keys);
}
