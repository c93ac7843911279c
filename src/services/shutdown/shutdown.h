/* SPDX-License-Identifier: MIT */
/*
 * Shutdown service messages (service 2, version 1).
 *
 * REQUEST host -> guest: u8 action (VMIC_SD_*), u8 flags (VMIC_SD_F_*),
 *   str reason (<= 2048 bytes, the limit of Hyper-V's display message).
 * REPLY guest -> host: u8 status (0 accepted), str message (<= 1024), for
 *   example the command the guest is about to run. The guest answers
 *   before it acts; a refusal is an error frame (disabled, refused).
 */
#ifndef VMIC_SERVICES_SHUTDOWN_H
#define VMIC_SERVICES_SHUTDOWN_H

#include "proto/proto.h"

enum vmic_shutdown_type {
	VMIC_SD_REQUEST = 1,
	VMIC_SD_REPLY = 2,
};

enum vmic_shutdown_action {
	VMIC_SD_POWEROFF = 0,
	VMIC_SD_REBOOT = 1,
	VMIC_SD_HALT = 2,
};

#define VMIC_SD_F_FORCE 0x01 /* skip the orderly path, act at once */
#define VMIC_SD_F_KNOWN VMIC_SD_F_FORCE

#define VMIC_SD_REASON_MAX 2048
#define VMIC_SD_MESSAGE_MAX 1024
#define VMIC_SD_REQUEST_MIN_LEN (1 + 1 + 2)
#define VMIC_SD_REQUEST_MAX_LEN (1 + 1 + 2 + VMIC_SD_REASON_MAX)
#define VMIC_SD_REPLY_MIN_LEN (1 + 2)
#define VMIC_SD_REPLY_MAX_LEN (1 + 2 + VMIC_SD_MESSAGE_MAX)

struct vmic_sd_request {
	uint8_t action;
	uint8_t flags;
	char reason[VMIC_SD_REASON_MAX + 1];
};

struct vmic_sd_reply {
	uint8_t status;
	char message[VMIC_SD_MESSAGE_MAX + 1];
};

int vmic_sd_request_encode(const struct vmic_sd_request *m, uint8_t *buf,
			   size_t cap);
/* -EBADMSG when short, not UTF-8, unknown action or unknown flag bits. */
int vmic_sd_request_decode(const uint8_t *p, size_t n,
			   struct vmic_sd_request *m);
int vmic_sd_reply_encode(const struct vmic_sd_reply *m, uint8_t *buf,
			 size_t cap);
int vmic_sd_reply_decode(const uint8_t *p, size_t n, struct vmic_sd_reply *m);
/* "poweroff", "reboot", "halt"; NULL for an unknown action. */
const char *vmic_sd_action_name(uint8_t action);

#endif
