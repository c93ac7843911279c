/* SPDX-License-Identifier: MIT */
/*
 * The host's table of services: for each service id its handlers for
 * session up/down and frames, and how its status reads. Adding a service
 * is one line here plus its own file. The Get-VMIntegrationService rules
 * of docs/control.md live in service_status().
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "hostd.h"
#include "proto/hello.h"
#include "proto/services.h"

/*
 * The shutdown service keeps no state outside a stop, and a stop follows
 * the connection itself (conn.c tells shutdown.c), so these are empty.
 */
static void sd_on_up(struct vm *vm UNUSED)
{
}

static void sd_on_down(struct vm *vm UNUSED)
{
}

static const struct host_service host_services[] = {
	{ VMIC_SVC_HEARTBEAT, hb_on_up, hb_on_down, hb_on_frame, hb_status },
	{ VMIC_SVC_SHUTDOWN, sd_on_up, sd_on_down, shutdown_on_frame, NULL },
};

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
	for (size_t i = 0; i < ARRAY_SIZE(host_services); i++)
		if (host_services[i].id == id)
			return &host_services[i];
	return NULL;
}

void services_up(struct vm *vm)
{
	for (size_t i = 0; i < ARRAY_SIZE(host_services); i++)
		if (vm_service_enabled(vm, host_services[i].id))
			host_services[i].on_up(vm);
}

void services_down(struct vm *vm)
{
	for (size_t i = 0; i < ARRAY_SIZE(host_services); i++)
		if (vm_service_enabled(vm, host_services[i].id))
			host_services[i].on_down(vm);
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

	if (!s) {
		if (request)
			conn_send_error(vm, f, VMIC_E_UNKNOWN_SERVICE,
					"vmic-hostd has no handler for this "
					"service");
		return 0;
	}
	if (!vm_service_enabled(vm, f->service)) {
		const struct vmic_service_desc *d =
			vmic_service_by_id(f->service);
		char msg[160];

		snprintf(msg, sizeof(msg), "the %s service is disabled for "
					   "this VM on the host (`vmic enable "
					   "%s %s` turns it on)",
			 d->name, vm->name, d->name);
		if (request)
			conn_send_error(vm, f, VMIC_E_DISABLED, msg);
		else
			log_debug("%s: dropping a frame of disabled service "
				  "%s",
				  vm->name, d->name);
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
		st->primary = vm->conn.contact ? SVC_LOST : SVC_NO_CONTACT;
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

	for (size_t i = 0; i < vmic_service_count; i++) {
		service_status(vm, vmic_services[i].id, &st);
		vm->svc_primary[vmic_services[i].id] = (uint8_t)st.primary;
	}
	if (!vm_service_enabled(vm, VMIC_SVC_HEARTBEAT))
		vm->hb.state = HB_DISABLED;
}

void services_refresh(struct vm *vm)
{
	for (size_t i = 0; i < vmic_service_count; i++) {
		uint8_t id = vmic_services[i].id;
		struct svc_status st;

		/* The heartbeat service reports its own `heartbeat` events. */
		if (id == VMIC_SVC_HEARTBEAT)
			continue;
		service_status(vm, id, &st);
		if (vm->svc_primary[id] == st.primary)
			continue;
		events_emit(vm->h, vm->name, vmic_services[i].name,
			    "service-status",
			    primary_event_name(vm->svc_primary[id]),
			    primary_event_name(st.primary), "%s",
			    st.secondary[0] ? st.secondary
			    : st.primary == SVC_NONE ? "disabled on the host"
						     : svc_primary_name(st.primary));
		vm->svc_primary[id] = (uint8_t)st.primary;
	}
}

void service_switch(struct vm *vm, uint8_t id, bool enabled)
{
	const struct host_service *s = host_service_get(id);
	bool was = vm_service_enabled(vm, id);

	if (was == enabled)
		return;
	if (enabled)
		vm->enabled_mask |= 1u << id;
	else
		vm->enabled_mask &= ~(1u << id);
	vmic_session_set_enabled(&vm->conn.session, id, enabled);
	if (conn_up(vm)) {
		conn_send_services(vm);
		if (s && enabled)
			s->on_up(vm);
		else if (s)
			s->on_down(vm);
	} else if (id == VMIC_SVC_HEARTBEAT) {
		/* Offline, the heartbeat state still moves at once: to
		 * Disabled, or back to No Contact / Lost Communication. */
		hb_on_down(vm);
	}
	services_refresh(vm);
}
