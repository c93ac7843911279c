/* SPDX-License-Identifier: MIT */
/*
 * KVP's message decoders (src/services/kvp/proto.c): the batches, the
 * identity and the acknowledgement,
 * with their round-trip checks, for fuzz-messages and fuzz-frame
 * (tests/fuzz/fuzz.h).
 */
#include <string.h>

#include "fuzz.h"

#include "common/wire.h"
#include "services/kvp/kvp.h"

/* A SET or DELETE: every record checked, and the batch built again from
 * its records is the input, byte for byte. */
static int kvp_batch_kind(uint8_t type, const uint8_t *p, size_t n)
{
	static uint8_t enc[VMIC_KVP_BATCH_MAX];
	struct vmic_kvp_builder bd;
	struct vmic_kvp_batch b;
	struct vmic_kvp_item it;
	struct vmic_rd r;
	unsigned count = 0;

	if (vmic_kvp_batch_decode(type, p, n, &b) < 0)
		return 0;
	FUZZ_CHECK(b.pool < VMIC_KVP_POOLS);
	vmic_kvp_build_begin(&bd, enc, sizeof(enc), type, b.pool, b.flags);
	vmic_kvp_items_init(&b, &r);
	while (vmic_kvp_items_next(&b, &r, &it)) {
		FUZZ_CHECK(vmic_kvp_check(it.key, it.klen, it.value,
					  it.vlen) == NULL);
		FUZZ_CHECK((it.value != NULL) == (type == VMIC_KVP_SET));
		if (n <= VMIC_KVP_BATCH_MAX)
			FUZZ_CHECK(vmic_kvp_build_add(&bd, it.key, it.klen,
						      it.value, it.vlen) == 0);
		count++;
	}
	FUZZ_CHECK(!r.err);
	FUZZ_CHECK(count == b.count);
	if (n <= VMIC_KVP_BATCH_MAX) {
		FUZZ_CHECK(vmic_kvp_build_end(&bd) == n);
		FUZZ_CHECK(memcmp(enc, p, n) == 0);
	}
	return 1;
}

static int kvp_identity_kind(const uint8_t *p, size_t n)
{
	char id[VMIC_KVP_ID_MAX + 1];
	uint8_t enc[VMIC_KVP_IDENTITY_MAX_LEN];

	if (vmic_kvp_identity_decode(p, n, id) < 0)
		return 0;
	FUZZ_CHECK(fuzz_valid_text(id, VMIC_KVP_ID_MAX));
	fuzz_check_prefix(enc, vmic_kvp_identity_encode(id, enc, sizeof(enc)), p,
		     n);
	return 1;
}

static int kvp_ack_kind(const uint8_t *p, size_t n)
{
	static struct vmic_kvp_ack a;
	uint8_t enc[VMIC_KVP_ACK_MAX_LEN];

	if (vmic_kvp_ack_decode(p, n, &a) < 0)
		return 0;
	FUZZ_CHECK(a.status <= VMIC_KVP_CAP);
	FUZZ_CHECK(fuzz_valid_text(a.note, VMIC_KVP_NOTE_MAX));
	fuzz_check_prefix(enc, vmic_kvp_ack_encode(&a, enc, sizeof(enc)), p, n);
	return 1;
}

static int kvp_set_kind(const uint8_t *p, size_t n)
{
	return kvp_batch_kind(VMIC_KVP_SET, p, n);
}

static int kvp_delete_kind(const uint8_t *p, size_t n)
{
	return kvp_batch_kind(VMIC_KVP_DELETE, p, n);
}

static const struct fuzz_msg msgs[] = {
	{ "kvp-set", VMIC_SVC_KVP, VMIC_KVP_SET, kvp_set_kind },
	{ "kvp-delete", VMIC_SVC_KVP, VMIC_KVP_DELETE, kvp_delete_kind },
	{ "kvp-identity", VMIC_SVC_KVP, VMIC_KVP_IDENTITY, kvp_identity_kind },
	{ "kvp-ack", VMIC_SVC_KVP, VMIC_KVP_ACK, kvp_ack_kind },
};

const struct fuzz_msgs fuzz_msgs_kvp = { msgs,
					 sizeof(msgs) / sizeof(msgs[0]) };
