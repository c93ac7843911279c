/* SPDX-License-Identifier: MIT */
/*
 * The XXH3-128 both sides compute over a copied file's bytes while they
 * pass (the host while reading or receiving, the guest while receiving or
 * reading): written as the canonical big-endian 16 bytes.
 */
#ifndef VMIC_SERVICES_FILECOPY_HASH_H
#define VMIC_SERVICES_FILECOPY_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "services/filecopy/filecopy.h"

struct vmic_fc_hasher;

/* A new hasher at the start; NULL without memory. */
struct vmic_fc_hasher *vmic_fc_hasher_new(void);
/* Add n bytes and count them. */
void vmic_fc_hasher_update(struct vmic_fc_hasher *h, const void *p, size_t n);
/* Bytes added so far. */
uint64_t vmic_fc_hasher_bytes(const struct vmic_fc_hasher *h);
/* The hash of the bytes so far (the hasher may go on). */
void vmic_fc_hasher_digest(const struct vmic_fc_hasher *h,
			   uint8_t out[VMIC_FC_HASH_LEN]);
/* NULL is fine. */
void vmic_fc_hasher_free(struct vmic_fc_hasher *h);

#endif
