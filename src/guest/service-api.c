/* SPDX-License-Identifier: MIT */
/*
 * What services read and set of the agent's structs (service-api.h):
 * the accessors that let struct guestd and struct guest_conn stay
 * incomplete types for them.
 */
#include "guestd.h"

uv_loop_t *agent_loop(const struct guestd *g)
{
	return g->loop;
}

void *agent_conf(const struct guestd *g, uint8_t service)
{
	return service < VMIC_SVC_COUNT ? g->svc[service].conf : NULL;
}

void *agent_state(const struct guestd *g, uint8_t service)
{
	return service < VMIC_SVC_COUNT ? g->svc[service].state : NULL;
}

void agent_set_state(struct guestd *g, uint8_t service, void *state)
{
	if (service < VMIC_SVC_COUNT)
		g->svc[service].state = state;
}

bool agent_enabled(const struct guestd *g, uint8_t service)
{
	return service < VMIC_SVC_COUNT && g->cfg.enabled[service];
}

const char *agent_config_path(const struct guestd *g)
{
	return g->config_path;
}

struct guest_clock *agent_clock(struct guestd *g)
{
	return &g->clock;
}

struct guest_conn *agent_conn(const struct guestd *g)
{
	return g->conn;
}

struct guestd *agent_of(const struct guest_conn *c)
{
	return c->g;
}

bool agent_session_up(const struct guest_conn *c)
{
	return c->up;
}

const struct vmic_session *agent_session(const struct guest_conn *c)
{
	return &c->session;
}

struct vmic_link *agent_link(struct guest_conn *c)
{
	return c->closing ? NULL : &c->link;
}

bool agent_frozen(const struct guestd *g)
{
	return g->frozen;
}

void agent_set_frozen(struct guestd *g, bool frozen)
{
	const struct guest_service *s;

	g->frozen = frozen;
	if (frozen)
		return;
	for (uint8_t id = 0; id < VMIC_SVC_COUNT; id++) {
		s = guest_service_find(id);
		if (s && s->on_thaw && g->svc[id].state)
			s->on_thaw(g);
	}
}
