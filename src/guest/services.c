/* SPDX-License-Identifier: MIT */
/*
 * The agent's table of services, and the gate every request passes: a
 * service answers only when this build has it, the guest configuration
 * enables it, the host enables it, and both sides share a version.
 */
#include <stdio.h>

#include "common/macro.h"
#include "guestd.h"
#include "proto/services.h"

static const struct guest_service services[] = {
	{ VMIC_SVC_HEARTBEAT, heartbeat_on_frame },
	{ VMIC_SVC_SHUTDOWN, shutdown_on_frame },
};

const struct guest_service *guest_service_find(uint8_t id)
{
	for (size_t i = 0; i < ARRAY_SIZE(services); i++)
		if (services[i].id == id)
			return &services[i];
	return NULL;
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
