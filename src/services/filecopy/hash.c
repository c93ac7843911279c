/* SPDX-License-Identifier: MIT */
#include "services/filecopy/hash.h"

#include <stdlib.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

struct vmic_fc_hasher {
	XXH3_state_t *st;
	uint64_t bytes;
};

struct vmic_fc_hasher *vmic_fc_hasher_new(void)
{
	struct vmic_fc_hasher *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->st = XXH3_createState();
	if (!h->st || XXH3_128bits_reset(h->st) != XXH_OK) {
		vmic_fc_hasher_free(h);
		return NULL;
	}
	return h;
}

void vmic_fc_hasher_update(struct vmic_fc_hasher *h, const void *p, size_t n)
{
	XXH3_128bits_update(h->st, p, n);
	h->bytes += n;
}

uint64_t vmic_fc_hasher_bytes(const struct vmic_fc_hasher *h)
{
	return h->bytes;
}

void vmic_fc_hasher_digest(const struct vmic_fc_hasher *h,
			   uint8_t out[VMIC_FC_HASH_LEN])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h->st));
	for (size_t i = 0; i < VMIC_FC_HASH_LEN; i++)
		out[i] = c.digest[i];
}

void vmic_fc_hasher_free(struct vmic_fc_hasher *h)
{
	if (!h)
		return;
	XXH3_freeState(h->st);
	free(h);
}
