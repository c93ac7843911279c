/* SPDX-License-Identifier: MIT */
/*
 * JSON views of a VM for the control socket: the summary of `list`, the
 * details of `status` and the service entries (docs/control.md), each
 * service adding its own members through its hooks. Every string from
 * the guest was sanitised when it arrived.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "hostd.h"
#include "host/libvirt.h"
#include "proto/services.h"

static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

static json_t *int_or_null(int64_t v, bool known)
{
	return known ? json_integer(v) : json_null();
}

/* The guest's facts, while a session is up. */
static const struct guest_info *live_info(const struct vm *vm)
{
	return conn_up(vm) ? vm->info : NULL;
}

/* Seconds since the guest booted, -1 when unknown. */
static int64_t uptime_s(const struct vm *vm)
{
	const struct guest_info *gi = live_info(vm);

	if (!gi)
		return -1;
	return gi->boot_us ? (vmic_realtime_us() - gi->boot_us) / 1000000 : 0;
}

/* Every member of the summary but uptime_s, which changes each second. */
static json_t *summary_stable(const struct vm *vm)
{
	const struct guest_info *gi = live_info(vm);
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(vm->name));
	json_object_set_new(o, "channel", json_string(vm->channel_uri));
	json_object_set_new(o, "power_off", str_or_null(vm->power_off));
	/* Where the VM came from: `vmic add`, or a libvirt connection. */
	json_object_set_new(o, "source", json_string(libvirt_vm_uri(vm)
							     ? "libvirt"
							     : "manual"));
	json_object_set_new(o, "libvirt_uri", str_or_null(libvirt_vm_uri(vm)));
	json_object_set_new(o, "connection",
			    json_string(conn_state_name(vm->conn.state)));
	json_object_set_new(o, "agent",
			    str_or_null(vm->conn.contact ? vm->conn.agent
							 : NULL));
	json_object_set_new(o, "os", str_or_null(gi ? gi->os_name : NULL));
	json_object_set_new(o, "kernel", str_or_null(gi ? gi->kernel : NULL));
	services_summary_json(vm, o);
	return o;
}

json_t *vm_summary_json(const struct vm *vm)
{
	json_t *o = summary_stable(vm);
	int64_t up = uptime_s(vm);

	json_object_set_new(o, "uptime_s", int_or_null(up, up >= 0));
	return o;
}

/* Make the cached text (the stable members, without the closing brace)
 * when the VM changed since it was made. */
static void summary_refresh(struct vm *vm)
{
	json_t *o;
	char *text;
	size_t n;

	if (vm->summary && vm->summary_gen == vm->gen)
		return;
	o = summary_stable(vm);
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		return;
	n = strlen(text);
	text[n - 1] = '\0'; /* the closing brace: uptime_s follows */
	free(vm->summary);
	vm->summary = text;
	vm->summary_len = n - 1;
	vm->summary_gen = vm->gen;
}

void vm_summary_text(struct vm *vm, struct ctl_text *out)
{
	char live[48];
	int64_t up = uptime_s(vm);
	int n;

	summary_refresh(vm);
	if (!vm->summary) {
		out->err = -ENOMEM;
		return;
	}
	n = up >= 0 ? snprintf(live, sizeof(live), ",\"uptime_s\":%lld}",
			       (long long)up)
		    : snprintf(live, sizeof(live), ",\"uptime_s\":null}");
	ctl_text_append(out, vm->summary, vm->summary_len, true);
	ctl_text_append(out, live, (size_t)n, false);
}

static json_t *connection_detail(const struct vm *vm)
{
	const struct conn *c = &vm->conn;
	int64_t next = conn_next_retry_ms(vm);
	int64_t hold = conn_hold_ms(vm);
	uint64_t in = c->link ? c->link->bytes_in : c->bytes_in;
	uint64_t out = c->link ? c->link->bytes_out : c->bytes_out;
	char nonce[17] = "";
	json_t *o = json_object();

	if (c->session.peer_nonce)
		snprintf(nonce, sizeof(nonce), "%016llx",
			 (unsigned long long)c->session.peer_nonce);
	json_object_set_new(o, "state", json_string(conn_state_name(c->state)));
	json_object_set_new(o, "since_us", json_integer(c->since_us));
	json_object_set_new(o, "last_error", str_or_null(c->last_error));
	json_object_set_new(o, "attempts", json_integer(c->attempts));
	json_object_set_new(o, "next_retry_ms", int_or_null(next, next >= 0));
	json_object_set_new(o, "hold_ms", int_or_null(hold, hold >= 0));
	json_object_set_new(o, "sessions", json_integer((json_int_t)c->sessions));
	json_object_set_new(o, "agent_nonce",
			    str_or_null(c->link ? nonce : NULL));
	json_object_set_new(o, "bytes_in", json_integer((json_int_t)in));
	json_object_set_new(o, "bytes_out", json_integer((json_int_t)out));
	json_object_set_new(o, "stale_frames",
			    json_integer((json_int_t)c->stale_frames));
	json_object_set_new(o, "bad_frames",
			    json_integer((json_int_t)c->bad_frames));
	json_object_set_new(o, "unexpected_answers",
			    json_integer((json_int_t)c->unexpected_answers));
	json_object_set_new(o, "requests_waiting",
			    json_integer(vm->req.t.count));
	return o;
}

void svc_status_json(json_t *o, const struct svc_status *st)
{
	json_object_set_new(o, "enabled", json_boolean(st->enabled));
	json_object_set_new(o, "primary_status",
			    json_string(svc_primary_name(st->primary)));
	json_object_set_new(o, "secondary_status", json_string(st->secondary));
}

json_t *service_json(const struct vm *vm, uint8_t id)
{
	const struct vmic_service_desc *d = vmic_service_by_id(id);
	const struct host_service *s = host_service_get(id);
	json_t *o = json_object(), *settings, *inherited;
	struct svc_status st;

	service_status(vm, id, &st);
	json_object_set_new(o, "name", json_string(d->name));
	json_object_set_new(o, "display", json_string(d->display));
	svc_status_json(o, &st);
	json_object_set_new(o, "version",
			    int_or_null(st.version, st.version >= 0));
	json_object_set_new(o, "guest_enabled",
			    st.guest_enabled < 0
				    ? json_null()
				    : json_boolean(st.guest_enabled));
	settings = settings_json(vm, id, &inherited);
	if (settings) {
		json_object_set_new(o, "settings", settings);
		json_object_set_new(o, "inherited", inherited);
	}
	if (s && s->status_json)
		s->status_json(vm, o);
	return o;
}

/* Whether this VM's events are recorded in full (docs/control.md). */
static json_t *events_json(const struct vm *vm)
{
	return json_pack("{s:I, s:b}", "suppressed",
			 (json_int_t)vm->evlim.total, "storing",
			 !store_disk_full(vm->h));
}

json_t *vm_status_json(const struct vm *vm)
{
	const struct guest_info *gi = conn_up(vm) ? vm->info : NULL;
	json_t *o = vm_summary_json(vm);
	json_t *services = json_array();

	/* Guest facts beyond the summary's (not in docs/control.md yet). */
	json_object_set_new(o, "hostname", str_or_null(gi ? gi->hostname : NULL));
	json_object_set_new(o, "arch", str_or_null(gi ? gi->arch : NULL));

	json_object_set_new(o, "connection_detail", connection_detail(vm));
	json_object_set_new(o, "events", events_json(vm));
	for (size_t i = 0; i < vmic_service_count; i++)
		json_array_append_new(services,
				      service_json(vm, vmic_services[i]->id));
	json_object_set_new(o, "services", services);
	return o;
}
