/* SPDX-License-Identifier: MIT */
/*
 * The vmic wire protocol: frame header, limits, service and message ids,
 * error codes. docs/protocol.md describes the same bytes in prose; the
 * numbers here are never renumbered, only added to.
 *
 * Frame = 24-byte header + payload, all little-endian:
 *
 *   off size
 *     0    4  magic       "VMIC" (56 4D 49 43)
 *     4    4  length      payload bytes, <= VMIC_MAX_PAYLOAD
 *     8    1  service     enum vmic_service
 *     9    1  type        per-service message type (0xF0.. are generic)
 *    10    2  flags       VMIC_F_*
 *    12    4  request id  chosen by the requester, echoed in the reply
 *    16    4  stream id   0 unless the frame belongs to a data stream
 *    20    4  check       XXH32 of bytes 0..19, seed VMIC_HDR_SEED
 */
#ifndef VMIC_PROTO_H
#define VMIC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMIC_MAGIC 0x43494D56u /* "VMIC" read as a little-endian u32 */
#define VMIC_HDR_SIZE 24
#define VMIC_HDR_SEED 0x766D6963u /* "vmic" */
#define VMIC_MAX_PAYLOAD (256u * 1024u)
#define VMIC_MAX_FRAME (VMIC_HDR_SIZE + VMIC_MAX_PAYLOAD)
/* Stream data frames carry at most this much, so a small frame waits at
 * most one chunk behind bulk traffic. */
#define VMIC_STREAM_CHUNK (64u * 1024u)
/* Credit a receiver grants implicitly when a stream opens. */
#define VMIC_STREAM_INITIAL_CREDIT (256u * 1024u)
/* The framework (hello, errors, streams) version; hello layout is frozen. */
#define VMIC_FRAMEWORK_VERSION 1

/* flags */
#define VMIC_F_REPLY 0x0001u /* answers request_id of the peer */
#define VMIC_F_END 0x0002u   /* last frame of a stream */
#define VMIC_F_KNOWN (VMIC_F_REPLY | VMIC_F_END)

/* Services: also the bit index in service masks. Never renumber. */
enum vmic_service {
	VMIC_SVC_CONTROL = 0, /* hello, guest info, service switches */
	VMIC_SVC_HEARTBEAT = 1,
	VMIC_SVC_SHUTDOWN = 2,
	VMIC_SVC_TIMESYNC = 3,
	VMIC_SVC_KVP = 4,
	VMIC_SVC_BACKUP = 5,
	VMIC_SVC_FILECOPY = 6,
	VMIC_SVC_SESSION = 7,
	VMIC_SVC_COUNT
};

/* Generic message types, valid in every service. */
enum vmic_generic_type {
	VMIC_T_STREAM_RESET = 0xFC,  /* abort a stream: vmic_error payload */
	VMIC_T_STREAM_CREDIT = 0xFD, /* u32 more bytes the receiver accepts */
	VMIC_T_STREAM_DATA = 0xFE,   /* raw bytes of stream_id */
	VMIC_T_ERROR = 0xFF,         /* reply to a failed request */
};

/* Control service message types. */
enum vmic_control_type {
	VMIC_CTL_HELLO = 1,    /* both ways, see hello.h */
	VMIC_CTL_INFO = 2,     /* guest -> host: OS facts */
	VMIC_CTL_SERVICES = 3, /* host -> guest: u32 mask host enables */
};

/* Error codes carried by VMIC_T_ERROR and VMIC_T_STREAM_RESET. */
enum vmic_error_code {
	VMIC_E_UNKNOWN_SERVICE = 1,
	VMIC_E_UNKNOWN_TYPE = 2,
	VMIC_E_BAD_LENGTH = 3, /* payload size outside the message's range */
	VMIC_E_MALFORMED = 4,  /* fields do not decode */
	VMIC_E_DISABLED = 5,   /* service off on the answering side */
	VMIC_E_REFUSED = 6,    /* policy said no; message says why */
	VMIC_E_TOO_LARGE = 7,
	VMIC_E_VERSION = 8, /* no common version for this service */
	VMIC_E_BUSY = 9,
	VMIC_E_FAILED = 10, /* the action ran and failed */
	VMIC_E_FLOW = 11,   /* stream sent beyond its credit */
	VMIC_E_NOT_READY = 12,
	VMIC_E_INTERNAL = 13,
	VMIC_E_NO_STREAM = 14, /* stream frame for a stream id not open */
};

#define VMIC_ERROR_MSG_MAX 1024

/* A decoded frame. The payload points into the receiver's buffer. */
struct vmic_frame {
	uint8_t service;
	uint8_t type;
	uint16_t flags;
	uint32_t request_id;
	uint32_t stream_id;
	uint32_t length;
	const uint8_t *payload;
};

#endif
