/* SPDX-License-Identifier: MIT */
/*
 * The agent's table of services, the gate every request passes, and the
 * lifecycle every service shares: its [NAME] config keys, start and stop
 * with the agent, session up and down. A service answers only when this
 * build has it, the guest configuration enables it, the host enables it,
 * and both sides share a version.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "guestd.h"
#include "proto/services.h"

/* Made from services/list.h: one line there adds a service here. */
static const struct guest_service *const services[] = {
#define VMIC_SERVICE(name) &name##_guest,
#include "services/list.h"
#undef VMIC_SERVICE
};

/* The generated [NAME] enabled keys, one table per service. */
static struct vmic_conf_key enabled_keys[ARRAY_SIZE(services)];
static struct vmic_conf_table enabled_tables[ARRAY_SIZE(services)];

const struct guest_service *guest_service_find(uint8_t id)
{
	for (size_t i = 0; i < ARRAY_SIZE(services); i++)
		if (services[i]->desc->id == id)
			return services[i];
	return NULL;
}

const struct guest_service *guest_service_command(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(services); i++)
		if (services[i]->command && strcmp(services[i]->command, name) == 0)
			return services[i];
	return NULL;
}

bool guest_service_option(size_t i, const struct guest_service **s,
			  const struct guest_option **o)
{
	for (size_t k = 0; k < ARRAY_SIZE(services); k++) {
		if (i < services[k]->noptions) {
			*s = services[k];
			*o = &services[k]->options[i];
			return true;
		}
		i -= services[k]->noptions;
	}
	return false;
}

int guest_services_init(struct guestd *g)
{
	for (size_t i = 0; i < ARRAY_SIZE(services); i++) {
		const struct guest_service *s = services[i];
		uint8_t id = s->desc->id;

		g->cfg.enabled[id] = s->desc->default_on;
		if (!s->conf_size)
			continue;
		g->svc[id].conf = calloc(1, s->conf_size);
		if (!g->svc[id].conf)
			return -ENOMEM;
		if (s->conf_defaults)
			s->conf_defaults(g->svc[id].conf);
	}
	return 0;
}

void guest_services_free(struct guestd *g)
{
	for (size_t i = 0; i < VMIC_SVC_COUNT; i++) {
		free(g->svc[i].conf);
		free(g->svc[i].state);
		g->svc[i].conf = g->svc[i].state = NULL;
	}
}

size_t guest_config_parts(struct guestd *g, struct vmic_conf_part *parts)
{
	size_t n = 0;

	parts[n++] = (struct vmic_conf_part){ &guest_config_table, &g->cfg };
	for (size_t i = 0; i < ARRAY_SIZE(services); i++) {
		const struct guest_service *s = services[i];

		enabled_keys[i] = (struct vmic_conf_key){
			.section = s->desc->name,
			.key = "enabled",
			.type = VMIC_CONF_BOOL,
			.offset = offsetof(struct guest_config,
					   enabled[s->desc->id]),
			.help = s->enabled_help,
		};
		enabled_tables[i] = (struct vmic_conf_table){
			&enabled_keys[i], 1
		};
		parts[n++] = (struct vmic_conf_part){ &enabled_tables[i],
						      &g->cfg };
		if (s->conf)
			parts[n++] = (struct vmic_conf_part){
				s->conf, g->svc[s->desc->id].conf
			};
	}
	return n;
}

int guest_services_start(struct guestd *g)
{
	for (size_t i = 0; i < ARRAY_SIZE(services); i++) {
		const struct guest_service *s = services[i];
		int r;

		if (!g->cfg.enabled[s->desc->id] || !s->start)
			continue;
		r = s->start(g);
		if (r < 0)
			return r;
	}
	return 0;
}

void guest_services_stop(struct guestd *g)
{
	for (size_t i = 0; i < ARRAY_SIZE(services); i++)
		if (services[i]->stop && g->svc[services[i]->desc->id].state)
			services[i]->stop(g);
}

void guest_services_pending(struct guestd *g, char *buf, size_t n)
{
	char one[256];
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(services); i++) {
		if (!services[i]->pending || !g->svc[services[i]->desc->id].state)
			continue;
		one[0] = '\0';
		services[i]->pending(g, one, sizeof(one));
		if (one[0] && off < n)
			off += (size_t)snprintf(buf + off, n - off, "%s%s",
						off ? "; " : "", one);
	}
}

void guest_services_session(struct guest_conn *c, bool up)
{
	for (size_t i = 0; i < ARRAY_SIZE(services); i++)
		if (services[i]->on_session &&
		    c->g->cfg.enabled[services[i]->desc->id])
			services[i]->on_session(c, up);
}

void guest_services_reload(struct guestd *g, const struct guestd *next)
{
	for (size_t i = 0; i < ARRAY_SIZE(services); i++) {
		const struct guest_service *s = services[i];
		uint8_t id = s->desc->id;

		if (g->cfg.enabled[id] != next->cfg.enabled[id])
			log_warning("reload: [%s] enabled changes when "
				    "vmic-guestd restarts (the host learns it "
				    "in a new session)",
				    s->desc->name);
		if (!s->conf_size ||
		    memcmp(g->svc[id].conf, next->svc[id].conf,
			   s->conf_size) == 0)
			continue;
		memcpy(g->svc[id].conf, next->svc[id].conf, s->conf_size);
		log_info("reload: [%s] settings applied", s->desc->name);
		if (s->reconfigure && g->svc[id].state)
			s->reconfigure(g);
	}
}

const char *guest_service_refusal(const struct guest_conn *c, uint8_t id,
				  uint16_t *code)
{
	static char why[256];
	const struct vmic_service_desc *d = vmic_service_by_id(id);
	const char *name = d ? d->name : "this service";

	if (!d || !guest_service_find(id)) {
		*code = VMIC_E_UNKNOWN_SERVICE;
		snprintf(why, sizeof(why), "this agent (vmic-guestd %s) does "
					   "not implement service %u",
			 VMIC_VERSION, id);
		return why;
	}
	if (!c->g->cfg.enabled[id]) {
		*code = VMIC_E_DISABLED;
		snprintf(why, sizeof(why),
			 "%s is disabled in the guest's configuration (set "
			 "[%s] enabled = yes in %s)",
			 name, name, c->g->config_path);
		return why;
	}
	if (id < 32 && !(c->host_mask & (1u << id))) {
		*code = VMIC_E_DISABLED;
		snprintf(why, sizeof(why), "%s is disabled by the host", name);
		return why;
	}
	if (!vmic_session_version(&c->session, id)) {
		*code = VMIC_E_VERSION;
		snprintf(why, sizeof(why),
			 "no common version of %s (this agent speaks %u..%u)",
			 name, c->g->offers[id].min_version,
			 c->g->offers[id].max_version);
		return why;
	}
	return NULL;
}
