/* SPDX-License-Identifier: MIT */
/*
 * The hello message and per-service version negotiation.
 *
 * Payload (frozen for every framework version; later fields are appended
 * and ignored by older readers):
 *   u16 framework   VMIC_FRAMEWORK_VERSION of the sender
 *   u8  role        VMIC_ROLE_HOST or VMIC_ROLE_GUEST
 *   u8  flags       VMIC_HELLO_ESTABLISHED
 *   u64 nonce       random per session of the sender
 *   u64 echo        the last nonce the sender received from us, or 0
 *   str software    u16 length + UTF-8, e.g. "vmic-guestd 0.1.0"
 *   u8  count       number of service offers that follow (<= 32)
 *   count x { u8 service, u8 min_version, u8 max_version, u8 flags }
 */
#ifndef VMIC_HELLO_H
#define VMIC_HELLO_H

#include "proto.h"

#define VMIC_ROLE_HOST 1
#define VMIC_ROLE_GUEST 2

/* hello flags */
#define VMIC_HELLO_ESTABLISHED 0x01 /* sender has a hello echoing its nonce */

/* service offer flags */
#define VMIC_OFFER_ENABLED 0x01 /* the sender's configuration allows it */

#define VMIC_HELLO_MAX_OFFERS 32
#define VMIC_SOFTWARE_MAX 64

struct vmic_offer {
	uint8_t service;
	uint8_t min_version;
	uint8_t max_version;
	uint8_t flags;
};

struct vmic_hello {
	uint16_t framework;
	uint8_t role;
	uint8_t flags;
	uint64_t nonce;
	uint64_t echo;
	char software[VMIC_SOFTWARE_MAX + 1];
	uint8_t count;
	struct vmic_offer offers[VMIC_HELLO_MAX_OFFERS];
};

/* Encode the payload into buf; returns its length or -EMSGSIZE. */
int vmic_hello_encode(const struct vmic_hello *h, uint8_t *buf, size_t cap);

/*
 * Decode a hello payload. Returns 0, or -EBADMSG when it is short, a string
 * is not UTF-8, the role is unknown, nonce is 0, or a service is offered
 * twice or with min > max.
 */
int vmic_hello_decode(const uint8_t *p, size_t n, struct vmic_hello *h);

/* The offer for `service` in h, or NULL. */
const struct vmic_offer *vmic_hello_find(const struct vmic_hello *h,
					 uint8_t service);

/*
 * Highest version both offers accept, or 0 when the ranges do not meet.
 * Either pointer may be NULL (not offered), which gives 0.
 */
uint8_t vmic_negotiate(const struct vmic_offer *a, const struct vmic_offer *b);

#endif
