/* SPDX-License-Identifier: MIT */
#include "services.h"

#include <stdio.h>
#include <strings.h>

#include "common/macro.h"
#include "common/strbuf.h"
#include "control.h"
#include "hello.h"

/* Made from services/list.h: one line there adds a service here. */
const struct vmic_service_desc *const vmic_services[] = {
#define VMIC_SERVICE(name) &vmic_##name##_service,
#include "services/list.h"
#undef VMIC_SERVICE
};
const size_t vmic_service_count = ARRAY_SIZE(vmic_services);

/* Hello payload bounds: fixed part + software string + offers. */
#define HELLO_MIN_LEN (2 + 1 + 1 + 8 + 8 + 2 + 1)
#define HELLO_MAX_LEN \
	(HELLO_MIN_LEN + VMIC_SOFTWARE_MAX + 4 * VMIC_HELLO_MAX_OFFERS + 256)

/* The framework's own messages (service 0). */
static const struct vmic_msg_desc control_messages[] = {
	{ VMIC_CTL_HELLO, VMIC_DIR_BOTH, "hello", HELLO_MIN_LEN,
	  HELLO_MAX_LEN },
	{ VMIC_CTL_INFO, VMIC_DIR_G2H, "info", VMIC_INFO_MIN_LEN,
	  VMIC_INFO_MAX_LEN },
	{ VMIC_CTL_SERVICES, VMIC_DIR_H2G, "services", VMIC_SERVICES_LEN,
	  VMIC_SERVICES_LEN },
};

/* Valid in every service of vmic_services[] (and control for errors). */
static const struct vmic_msg_desc generic[] = {
	{ VMIC_T_ERROR, VMIC_DIR_BOTH, "error", VMIC_ERROR_MIN_LEN,
	  VMIC_ERROR_MAX_LEN },
	{ VMIC_T_STREAM_DATA, VMIC_DIR_BOTH, "stream data", 0,
	  VMIC_STREAM_CHUNK },
	{ VMIC_T_STREAM_CREDIT, VMIC_DIR_BOTH, "stream credit",
	  VMIC_CREDIT_LEN, VMIC_CREDIT_LEN },
	{ VMIC_T_STREAM_RESET, VMIC_DIR_BOTH, "stream reset",
	  VMIC_ERROR_MIN_LEN, VMIC_ERROR_MAX_LEN },
};

const struct vmic_service_desc *vmic_service_by_id(unsigned id)
{
	for (size_t i = 0; i < vmic_service_count; i++)
		if (vmic_services[i]->id == id)
			return vmic_services[i];
	return NULL;
}

const struct vmic_service_desc *vmic_service_by_name(const char *name)
{
	for (size_t i = 0; i < vmic_service_count; i++)
		if (strcasecmp(vmic_services[i]->name, name) == 0)
			return vmic_services[i];
	return NULL;
}

const char *vmic_service_names(void)
{
	static char names[256];

	if (names[0] == '\0') {
		size_t off = 0;

		for (size_t i = 0; i < vmic_service_count; i++)
			off = vmic_appendf(names, sizeof(names), off, "%s%s",
					   i ? ", " : "",
					   vmic_services[i]->name);
	}
	return names;
}

static const struct vmic_msg_desc *find_in(const struct vmic_msg_desc *m,
					   size_t n, uint8_t type)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].type == type)
			return &m[i];
	return NULL;
}

const struct vmic_msg_desc *vmic_msg_find(uint8_t service, uint8_t type)
{
	const struct vmic_service_desc *d = vmic_service_by_id(service);
	const struct vmic_msg_desc *m;

	if (service == VMIC_SVC_CONTROL)
		m = find_in(control_messages, ARRAY_SIZE(control_messages),
			    type);
	else if (d)
		m = find_in(d->messages, d->nmessages, type);
	else
		return NULL;
	return m ? m : find_in(generic, ARRAY_SIZE(generic), type);
}

int vmic_msg_check(const struct vmic_frame *f, uint8_t my_dir)
{
	const struct vmic_msg_desc *d;

	if (f->service != VMIC_SVC_CONTROL && !vmic_service_by_id(f->service))
		return VMIC_E_UNKNOWN_SERVICE;
	d = vmic_msg_find(f->service, f->type);
	if (!d || !(d->dir & my_dir))
		return VMIC_E_UNKNOWN_TYPE;
	if (f->length < d->min_len || f->length > d->max_len)
		return VMIC_E_BAD_LENGTH;
	return 0;
}

const char *vmic_error_name(int code)
{
	static const char *const names[] = {
		[VMIC_E_UNKNOWN_SERVICE] = "unknown service",
		[VMIC_E_UNKNOWN_TYPE] = "unknown message type",
		[VMIC_E_BAD_LENGTH] = "bad length",
		[VMIC_E_MALFORMED] = "malformed message",
		[VMIC_E_DISABLED] = "disabled",
		[VMIC_E_REFUSED] = "refused",
		[VMIC_E_TOO_LARGE] = "too large",
		[VMIC_E_VERSION] = "no common version",
		[VMIC_E_BUSY] = "busy",
		[VMIC_E_FAILED] = "failed",
		[VMIC_E_FLOW] = "flow control violated",
		[VMIC_E_NOT_READY] = "not ready",
		[VMIC_E_INTERNAL] = "internal error",
		[VMIC_E_NO_STREAM] = "no such stream",
	};

	if (code > 0 && (size_t)code < ARRAY_SIZE(names) && names[code])
		return names[code];
	return "unknown error";
}
