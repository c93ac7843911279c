/* SPDX-License-Identifier: MIT */
/*
 * The host's table of services and what the core does with it: the
 * lifecycle every service shares (daemon start and stop, attach and
 * detach per VM, session up and down, notices), the routing of frames,
 * and the Get-VMIntegrationService status rules of docs/control.md.
 * Nothing here knows a particular service.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/strbuf.h"
#include "hostd.h"
#include "proto/hello.h"
#include "proto/services.h"

/* Made from services/list.h: one line there adds a service here. */
static const struct host_service *const host_services[] = {
#define VMIC_SERVICE(name) &name##_host,
#include "services/list.h"
#undef VMIC_SERVICE
};

#define FOR_EACH_SERVICE(s)                                              \
	for (const struct host_service *const *s##_it = host_services, *s; \
	     s##_it < host_services + ARRAY_SIZE(host_services) &&        \
	     (s = *s##_it, 1);                                            \
	     s##_it++)

static const char *const primary_names[] = {
	[SVC_NONE] = "",
	[SVC_OK] = "OK",
	[SVC_NO_CONTACT] = "No Contact",
	[SVC_LOST] = "Lost Communication",
	[SVC_MISMATCH] = "Protocol Mismatch",
	[SVC_DEGRADED] = "Degraded",
};

const char *svc_primary_name(enum svc_primary p)
{
	return p < ARRAY_SIZE(primary_names) ? primary_names[p] : "";
}

const struct host_service *host_service_get(uint8_t id)
{
	FOR_EACH_SERVICE(s)
		if (s->desc->id == id)
			return s;
	return NULL;
}

int services_daemon_start(struct hostd *h)
{
	FOR_EACH_SERVICE(s) {
		int r = s->daemon_start ? s->daemon_start(h) : 0;

		if (r < 0)
			return log_error_errno(r, "cannot start the %s service",
					       s->desc->name);
	}
	return 0;
}

void services_daemon_stop(struct hostd *h)
{
	FOR_EACH_SERVICE(s)
		if (s->daemon_stop)
			s->daemon_stop(h);
}

int services_attach(struct vm *vm)
{
	const struct hostd_config *cfg = &vm->h->cfg;

	FOR_EACH_SERVICE(s) {
		struct vm_service *slot = &vm->svc[s->desc->id];
		int r;

		if (s->settings_size) {
			slot->settings = malloc(s->settings_size);
			if (!slot->settings)
				return -ENOMEM;
			memcpy(slot->settings, cfg->svc_defaults[s->desc->id],
			       s->settings_size);
		}
		r = s->attach ? s->attach(vm) : 0;
		if (r < 0)
			return r;
	}
	return 0;
}

void services_detach(struct vm *vm, enum detach_reason why)
{
	FOR_EACH_SERVICE(s)
		if (s->detach)
			s->detach(vm, why);
}

void services_release(struct vm *vm)
{
	FOR_EACH_SERVICE(s) {
		if (s->release)
			s->release(vm);
		free(vm->svc[s->desc->id].settings);
		vm->svc[s->desc->id].settings = NULL;
	}
}

void services_up(struct vm *vm)
{
	FOR_EACH_SERVICE(s)
		if (vm_service_enabled(vm, s->desc->id) && s->on_up)
			s->on_up(vm);
}

void services_down(struct vm *vm)
{
	FOR_EACH_SERVICE(s)
		if (vm_service_enabled(vm, s->desc->id) && s->on_down)
			s->on_down(vm);
}

void services_notify(struct vm *vm, struct notice *n)
{
	FOR_EACH_SERVICE(s)
		if (s->on_notice)
			s->on_notice(vm, n);
}

bool service_usable(const struct vm *vm, uint8_t id)
{
	return vm_service_enabled(vm, id) && conn_up(vm) &&
	       vmic_session_version(&vm->conn.session, id) > 0 &&
	       vmic_session_peer_enabled(&vm->conn.session, id);
}

int services_dispatch(struct vm *vm, const struct vmic_frame *f)
{
	const struct host_service *s = host_service_get(f->service);
	bool request = vmic_frame_is_request(f);
	char msg[160];

	if (!s || !s->on_frame) {
		if (request)
			conn_send_error(vm, f, VMIC_E_UNKNOWN_TYPE,
					"vmic-hostd takes no requests of this "
					"service");
		return 0;
	}
	if (!vm_service_enabled(vm, f->service)) {
		snprintf(msg, sizeof(msg),
			 "the %s service is disabled for this VM on the host "
			 "(`vmic enable %s %s` turns it on)",
			 s->desc->name, vm->name, s->desc->name);
		if (request)
			conn_send_error(vm, f, VMIC_E_DISABLED, msg);
		else
			log_debug("%s: dropping a frame of disabled service "
				  "%s",
				  vm->name, s->desc->name);
		return 0;
	}
	return s->on_frame(vm, f);
}

/* "guest offers 2..3, host supports 1..1", or that it offers none. */
static void mismatch_text(const struct vm *vm, uint8_t id, char *buf,
			  size_t n)
{
	const struct vmic_offer *o =
		vmic_hello_find(&vm->conn.session.peer, id);
	const struct vmic_service_desc *d = vmic_service_by_id(id);

	if (!o)
		snprintf(buf, n, "the guest agent does not offer this service "
				 "(host supports %u..%u)",
			 d->min_version, d->max_version);
	else
		snprintf(buf, n, "guest offers %u..%u, host supports %u..%u",
			 o->min_version, o->max_version, d->min_version,
			 d->max_version);
}

void service_status(const struct vm *vm, uint8_t id, struct svc_status *st)
{
	const struct host_service *s = host_service_get(id);
	const struct vmic_session *ss = &vm->conn.session;

	memset(st, 0, sizeof(*st));
	st->enabled = vm_service_enabled(vm, id);
	st->version = -1;
	st->guest_enabled = -1;
	if (conn_up(vm)) {
		st->version = vmic_session_version(ss, id);
		st->guest_enabled = vmic_session_peer_enabled(ss, id);
	}
	if (!st->enabled) {
		st->primary = SVC_NONE;
		return;
	}
	if (!conn_up(vm)) {
		/* Silence after contact is a loss, unless a stop explains it. */
		st->primary = vm->conn.contact && !vm->quiet ? SVC_LOST
							    : SVC_NO_CONTACT;
		if (s && s->status)
			s->status(vm, st);
		return;
	}
	if (st->version == 0) {
		st->primary = SVC_MISMATCH;
		mismatch_text(vm, id, st->secondary, sizeof(st->secondary));
		return;
	}
	if (!st->guest_enabled) {
		st->primary = SVC_NO_CONTACT;
		snprintf(st->secondary, sizeof(st->secondary),
			 "disabled in the guest's configuration");
		return;
	}
	st->primary = SVC_OK;
	if (s && s->status)
		s->status(vm, st);
}

/* Event text for a status: "" (host setting off) reads "disabled". */
static const char *primary_event_name(enum svc_primary p)
{
	return p == SVC_NONE ? "disabled" : svc_primary_name(p);
}

void services_init_status(struct vm *vm)
{
	struct svc_status st;

	FOR_EACH_SERVICE(s) {
		if (s->loaded)
			s->loaded(vm);
		service_status(vm, s->desc->id, &st);
		vm->svc[s->desc->id].primary = (uint8_t)st.primary;
	}
}

void services_refresh(struct vm *vm)
{
	FOR_EACH_SERVICE(s) {
		uint8_t id = s->desc->id;
		struct svc_status st;

		if (s->own_status_events)
			continue;
		service_status(vm, id, &st);
		if (vm->svc[id].primary == st.primary)
			continue;
		events_emit(vm->h, vm->name, s->desc->name, "service-status",
			    primary_event_name(vm->svc[id].primary),
			    primary_event_name(st.primary), "%s",
			    st.secondary[0] ? st.secondary
			    : st.primary == SVC_NONE ? "disabled on the host"
						     : svc_primary_name(st.primary));
		vm->svc[id].primary = (uint8_t)st.primary;
	}
}

void service_switch(struct vm *vm, uint8_t id, bool enabled)
{
	const struct host_service *s = host_service_get(id);

	if (vm_service_enabled(vm, id) == enabled)
		return;
	if (enabled)
		vm->enabled_mask |= 1u << id;
	else
		vm->enabled_mask &= ~(1u << id);
	vm_touch(vm);
	vmic_session_set_enabled(&vm->conn.session, id, enabled);
	if (conn_up(vm))
		conn_send_services(vm);
	/* Offline, a service's state still moves at once (to disabled, or
	 * back to No Contact / Lost Communication): on_down tells it. */
	if (s && conn_up(vm) && enabled && s->on_up)
		s->on_up(vm);
	else if (s && s->on_down)
		s->on_down(vm);
	services_refresh(vm);
}

const struct ctl_command *services_command_find(const char *name)
{
	FOR_EACH_SERVICE(s)
		for (size_t i = 0; i < s->ncommands; i++)
			if (strcmp(s->commands[i].name, name) == 0)
				return &s->commands[i];
	return NULL;
}

size_t services_command_names(char *buf, size_t n, size_t off)
{
	FOR_EACH_SERVICE(s)
		for (size_t i = 0; i < s->ncommands; i++)
			off = vmic_appendf(buf, n, off, "%s%s",
					   off ? ", " : "",
					   s->commands[i].name);
	return off;
}

void services_summary_json(const struct vm *vm, json_t *summary)
{
	FOR_EACH_SERVICE(s)
		if (s->summary_json)
			s->summary_json(vm, summary);
}

void services_stats_json(struct hostd *h, json_t *stats, bool reset)
{
	FOR_EACH_SERVICE(s)
		if (s->stats_json)
			s->stats_json(h, stats, reset);
}
