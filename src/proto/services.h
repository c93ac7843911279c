/* SPDX-License-Identifier: MIT */
/*
 * The table of services and their messages, shared by host and guest.
 *
 * Each service describes itself in its own folder (src/services/NAME/
 * proto.c): id, names, version range, default, and one entry per message
 * with the payload size range a receiver checks before any handler sees
 * the payload. vmic_services[] lists them (made from services/list.h);
 * the control service (hello, info, switches) is the framework's own and
 * not in that list.
 */
#ifndef VMIC_SERVICES_H
#define VMIC_SERVICES_H

#include "proto.h"

/* Who may send a message. */
#define VMIC_DIR_H2G 0x1
#define VMIC_DIR_G2H 0x2
#define VMIC_DIR_BOTH (VMIC_DIR_H2G | VMIC_DIR_G2H)

struct vmic_msg_desc {
	uint8_t type;
	uint8_t dir;
	const char *name;
	uint32_t min_len;
	uint32_t max_len;
};

struct vmic_service_desc {
	uint8_t id;
	const char *name;    /* CLI and config name: "heartbeat" */
	const char *display; /* Hyper-V style name: "Heartbeat" */
	uint8_t min_version;
	uint8_t max_version;
	bool default_on; /* host setting for a new VM, guest config default */
	const struct vmic_msg_desc *messages;
	size_t nmessages;
};

/* Each service's descriptor: vmic_NAME_service, from its proto.c. */
#define VMIC_SERVICE(name) extern const struct vmic_service_desc vmic_##name##_service;
#include "services/list.h"
#undef VMIC_SERVICE

/* Services this build implements, in id order. */
extern const struct vmic_service_desc *const vmic_services[];
extern const size_t vmic_service_count;

/* Lookup by id or by (case-insensitive) name; NULL when unknown. */
const struct vmic_service_desc *vmic_service_by_id(unsigned id);
const struct vmic_service_desc *vmic_service_by_name(const char *name);
/* "heartbeat, shutdown" for error messages that list the valid names. */
const char *vmic_service_names(void);

/*
 * The descriptor for (service, type): the service's own messages (the
 * control service's for id 0), then the generic ones (error, stream
 * data/credit/reset) valid in any known service. NULL when the pair is
 * unknown.
 */
const struct vmic_msg_desc *vmic_msg_find(uint8_t service, uint8_t type);

/*
 * Check a received frame against the tables, for a receiver of role
 * `my_dir` (VMIC_DIR_H2G when we are the guest). Returns 0 or the
 * vmic_error_code to answer with (unknown service/type, bad length).
 */
int vmic_msg_check(const struct vmic_frame *f, uint8_t my_dir);

/* Human name of an error code: "disabled", "unknown service" ... */
const char *vmic_error_name(int code);

#endif
