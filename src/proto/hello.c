/* SPDX-License-Identifier: MIT */
#include "hello.h"

#include <errno.h>
#include <string.h>

#include "common/wire.h"

int vmic_hello_encode(const struct vmic_hello *h, uint8_t *buf, size_t cap)
{
	struct vmic_wr w;

	if (h->count > VMIC_HELLO_MAX_OFFERS)
		return -EMSGSIZE;
	vmic_wr_init(&w, buf, cap);
	vmic_wr_u16(&w, h->framework);
	vmic_wr_u8(&w, h->role);
	vmic_wr_u8(&w, h->flags);
	vmic_wr_u64(&w, h->nonce);
	vmic_wr_u64(&w, h->echo);
	vmic_wr_str(&w, h->software, VMIC_SOFTWARE_MAX);
	vmic_wr_u8(&w, h->count);
	for (unsigned i = 0; i < h->count; i++) {
		vmic_wr_u8(&w, h->offers[i].service);
		vmic_wr_u8(&w, h->offers[i].min_version);
		vmic_wr_u8(&w, h->offers[i].max_version);
		vmic_wr_u8(&w, h->offers[i].flags);
	}
	return w.err ? -EMSGSIZE : (int)w.off;
}

static bool offers_valid(const struct vmic_hello *h)
{
	uint64_t seen[4] = { 0 };

	for (unsigned i = 0; i < h->count; i++) {
		const struct vmic_offer *o = &h->offers[i];
		uint64_t bit = 1ull << (o->service % 64);

		if (o->min_version > o->max_version || o->min_version == 0)
			return false;
		if (seen[o->service / 64] & bit)
			return false;
		seen[o->service / 64] |= bit;
	}
	return true;
}

int vmic_hello_decode(const uint8_t *p, size_t n, struct vmic_hello *h)
{
	struct vmic_rd r;

	memset(h, 0, sizeof(*h));
	vmic_rd_init(&r, p, n);
	h->framework = vmic_rd_u16(&r);
	h->role = vmic_rd_u8(&r);
	h->flags = vmic_rd_u8(&r);
	h->nonce = vmic_rd_u64(&r);
	h->echo = vmic_rd_u64(&r);
	vmic_rd_strcpy(&r, VMIC_SOFTWARE_MAX, h->software,
		       sizeof(h->software));
	h->count = vmic_rd_u8(&r);
	if (h->count > VMIC_HELLO_MAX_OFFERS)
		return -EBADMSG;
	for (unsigned i = 0; i < h->count; i++) {
		h->offers[i].service = vmic_rd_u8(&r);
		h->offers[i].min_version = vmic_rd_u8(&r);
		h->offers[i].max_version = vmic_rd_u8(&r);
		h->offers[i].flags = vmic_rd_u8(&r);
	}
	/* Bytes after the offers belong to later framework versions. */
	if (r.err || h->framework == 0 || h->nonce == 0)
		return -EBADMSG;
	if (h->role != VMIC_ROLE_HOST && h->role != VMIC_ROLE_GUEST)
		return -EBADMSG;
	if (!offers_valid(h))
		return -EBADMSG;
	return 0;
}

const struct vmic_offer *vmic_hello_find(const struct vmic_hello *h,
					 uint8_t service)
{
	for (unsigned i = 0; i < h->count; i++)
		if (h->offers[i].service == service)
			return &h->offers[i];
	return NULL;
}

uint8_t vmic_negotiate(const struct vmic_offer *a, const struct vmic_offer *b)
{
	uint8_t lo, hi;

	if (!a || !b)
		return 0;
	lo = a->min_version > b->min_version ? a->min_version : b->min_version;
	hi = a->max_version < b->max_version ? a->max_version : b->max_version;
	return lo <= hi ? hi : 0;
}
