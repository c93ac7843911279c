/* SPDX-License-Identifier: MIT */
/*
 * Control-service messages other than hello (guest info, service
 * switches) and the generic error and stream-credit payloads.
 */
#ifndef VMIC_CONTROL_H
#define VMIC_CONTROL_H

#include "proto.h"

#define VMIC_INFO_STR_MAX 255

/*
 * VMIC_CTL_INFO, guest -> host once the session is up:
 *   str hostname, str os_name (os-release PRETTY_NAME), str os_id,
 *   str os_version, str kernel_release, str kernel_version, str arch
 *   (each u16 length + UTF-8, <= 255 bytes), u64 uptime_ms.
 */
struct vmic_info {
	char hostname[VMIC_INFO_STR_MAX + 1];
	char os_name[VMIC_INFO_STR_MAX + 1];
	char os_id[VMIC_INFO_STR_MAX + 1];
	char os_version[VMIC_INFO_STR_MAX + 1];
	char kernel_release[VMIC_INFO_STR_MAX + 1];
	char kernel_version[VMIC_INFO_STR_MAX + 1];
	char arch[VMIC_INFO_STR_MAX + 1];
	uint64_t uptime_ms;
};
#define VMIC_INFO_MIN_LEN (7 * 2 + 8)
#define VMIC_INFO_MAX_LEN (7 * (2 + VMIC_INFO_STR_MAX) + 8)

int vmic_info_encode(const struct vmic_info *m, uint8_t *buf, size_t cap);
int vmic_info_decode(const uint8_t *p, size_t n, struct vmic_info *m);

/* VMIC_CTL_SERVICES, host -> guest: u32 mask of services the host enables. */
#define VMIC_SERVICES_LEN 4

/*
 * VMIC_T_ERROR and VMIC_T_STREAM_RESET: u16 code, str message (<= 1024).
 */
struct vmic_error {
	uint16_t code;
	char message[VMIC_ERROR_MSG_MAX + 1];
};
#define VMIC_ERROR_MIN_LEN 4
#define VMIC_ERROR_MAX_LEN (4 + VMIC_ERROR_MSG_MAX)

int vmic_error_encode(const struct vmic_error *m, uint8_t *buf, size_t cap);
int vmic_error_decode(const uint8_t *p, size_t n, struct vmic_error *m);

/* VMIC_T_STREAM_CREDIT: u32 additional bytes the receiver accepts. */
#define VMIC_CREDIT_LEN 4

/*
 * Build a whole frame whose payload an encoder writes: payload_len bytes
 * must already sit at buf + VMIC_HDR_SIZE. Returns the frame size.
 */
size_t vmic_frame_seal(uint8_t *buf, uint8_t service, uint8_t type,
		       uint16_t flags, uint32_t request_id, uint32_t stream_id,
		       size_t payload_len);

/*
 * Build an error frame answering request `request_id` of `service` into buf
 * (at least VMIC_HDR_SIZE + VMIC_ERROR_MAX_LEN bytes). The message is cut
 * at VMIC_ERROR_MSG_MAX bytes on a character boundary. Returns the size.
 */
size_t vmic_error_frame(uint8_t *buf, uint8_t service, uint32_t request_id,
			uint16_t code, const char *message);

#endif
