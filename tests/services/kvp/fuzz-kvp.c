/* SPDX-License-Identifier: MIT */
/*
 * The KVP exchange on peer bytes: the input is a run of batches (byte 0
 * picks the bounds, then each batch is a type byte, a u16 length and
 * that many payload bytes), applied to one pool as a receiver would,
 * through the inbox and its bounds. Afterwards the table must be in
 * strict key order with its byte count right and within twice the
 * bounds, and a full copy of it through an outbox must rebuild it
 * exactly on another side.
 */
#include <string.h>

#include "common/wire.h"
#include "fuzz.h"
#include "services/kvp/kvp.h"
#include "services/kvp/sync.h"
#include "services/kvp/table.h"

static void check_table(const struct kvp_table *t)
{
	uint64_t bytes = 0;

	for (size_t i = 0; i < t->n; i++) {
		const struct kvp_rec *r = t->recs[i];

		FUZZ_CHECK(r->klen >= 1 && r->klen <= VMIC_KVP_KEY_MAX);
		FUZZ_CHECK(r->vlen <= VMIC_KVP_VALUE_MAX);
		FUZZ_CHECK(kvp_rec_key(r)[r->klen] == '\0');
		FUZZ_CHECK(kvp_rec_value(r)[r->vlen] == '\0');
		if (i)
			FUZZ_CHECK(kvp_key_cmp(kvp_rec_key(t->recs[i - 1]),
					       t->recs[i - 1]->klen,
					       kvp_rec_key(r), r->klen) < 0);
		bytes += kvp_rec_size(r);
	}
	FUZZ_CHECK(bytes == t->bytes);
}

/* A full copy of src through an outbox and an inbox gives src again. */
static void check_copy(const struct kvp_table *src)
{
	static uint8_t buf[VMIC_KVP_BATCH_MAX];
	struct kvp_outbox ob;
	struct kvp_inbox in;
	struct kvp_table dst;

	kvp_outbox_init(&ob, VMIC_KVP_GUEST);
	kvp_inbox_init(&in);
	kvp_table_init(&dst);
	kvp_table_set(&dst, "stale", 5, "x", 1, 0, NULL, NULL);
	kvp_outbox_restart(&ob);
	while (kvp_outbox_pending(&ob)) {
		struct vmic_kvp_batch b;
		uint8_t type;
		size_t n, refused, len = kvp_outbox_next(&ob, src, buf,
							 sizeof(buf), &type,
							 &n);

		FUZZ_CHECK(len > 0 && len <= VMIC_KVP_BATCH_MAX);
		FUZZ_CHECK(vmic_kvp_batch_decode(type, buf, len, &b) == 0);
		FUZZ_CHECK(kvp_inbox_apply(&in, &dst, &b, NULL, NULL, NULL,
					   &refused) == 0);
	}
	FUZZ_CHECK(dst.n == src->n && dst.bytes == src->bytes);
	for (size_t i = 0; i < src->n; i++)
		FUZZ_CHECK(strcmp(kvp_rec_key(dst.recs[i]),
				  kvp_rec_key(src->recs[i])) == 0 &&
			   strcmp(kvp_rec_value(dst.recs[i]),
				  kvp_rec_value(src->recs[i])) == 0);
	kvp_table_clear(&dst);
	kvp_outbox_free(&ob);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvp_limits lim;
	struct kvp_inbox in;
	struct kvp_table t;
	struct vmic_rd r;

	if (size < 1)
		return 0;
	/* A nibble each; 15: no bound. */
	lim.max_keys = (data[0] & 0x0f) == 0x0f ? SIZE_MAX : data[0] & 0x0f;
	lim.max_bytes = (data[0] >> 4) == 0x0f ? UINT64_MAX
					       : (uint64_t)(data[0] >> 4) * 256;
	kvp_inbox_init(&in);
	kvp_table_init(&t);
	vmic_rd_init(&r, data + 1, size - 1);
	while (vmic_rd_left(&r) >= 3) {
		struct vmic_kvp_batch b;
		uint8_t type = vmic_rd_u8(&r) & 1 ? VMIC_KVP_SET
						   : VMIC_KVP_DELETE;
		size_t len = vmic_rd_u16(&r), refused = 0;
		const uint8_t *p = r.p + r.off;

		if (len > vmic_rd_left(&r))
			len = vmic_rd_left(&r);
		vmic_rd_skip(&r, len);
		if (vmic_kvp_batch_decode(type, p, len, &b) < 0)
			continue;
		FUZZ_CHECK(kvp_inbox_apply(&in, &t, &b, &lim, NULL, NULL,
					   &refused) == 0);
		FUZZ_CHECK(refused <= b.count);
		check_table(&t);
		FUZZ_CHECK(kvp_inbox_keys(&in, &t) <= t.n);
		FUZZ_CHECK(kvp_inbox_keys(&in, &t) <= lim.max_keys);
		FUZZ_CHECK(kvp_inbox_bytes(&in, &t) <= lim.max_bytes);
		if (lim.max_keys != SIZE_MAX)
			FUZZ_CHECK(t.n <= 2 * lim.max_keys);
	}
	check_copy(&t);
	kvp_table_clear(&t);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}
