/* SPDX-License-Identifier: MIT */
/*
 * KVP's seeds (tests/fuzz/corpus.h): its messages for fuzz-messages, a
 * session's KVP frames for fuzz-frame, batches for fuzz-kvp and pool
 * files for fuzz-kvp-poolfile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"

#include "proto/control.h"
#include "proto/hello.h"
#include "services/kvp/kvp.h"
#include "services/kvp/poolfile.h"

/* A batch of `pool` with n records key-I = value-I (keys only for a
 * DELETE) into p; its length. */
static size_t kvp_batch(uint8_t *p, size_t cap, uint8_t type, uint8_t pool,
			uint8_t flags, int first, int n, size_t vlen)
{
	struct vmic_kvp_builder bd;
	char key[32], value[VMIC_KVP_VALUE_MAX + 1];

	vmic_kvp_build_begin(&bd, p, cap, type, pool, flags);
	for (int i = first; i < first + n; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		memset(value, 'a' + i % 26, vlen);
		value[vlen] = '\0';
		if (vmic_kvp_build_add(&bd, key, strlen(key), value, vlen) < 0)
			abort();
	}
	return vmic_kvp_build_end(&bd);
}

/* fuzz-kvp's input: a bounds byte, then (type, u16 length, payload). */
static void kvp_run_put(struct buf *b, uint8_t type, const uint8_t *p,
			size_t n)
{
	uint8_t hdr[3] = { type == VMIC_KVP_SET, (uint8_t)n,
			   (uint8_t)(n >> 8) };

	put(b, hdr, 3);
	put(b, p, n);
}

void gen_corpus_kvp(void)
{
	static uint8_t p[4096];
	static struct buf b;
	uint8_t rec[VMIC_KVP_RECORD];
	size_t n;

	/* messages */
	n = kvp_batch(p, sizeof(p), VMIC_KVP_SET, VMIC_KVP_GUEST,
		      VMIC_KVP_F_BEGIN | VMIC_KVP_F_END, 0, 3, 20);
	save_message("kvp-set", VMIC_SVC_KVP, VMIC_KVP_SET, p, n);
	n = kvp_batch(p, sizeof(p), VMIC_KVP_DELETE, VMIC_KVP_EXTERNAL, 0, 0, 2,
		      0);
	save_message("kvp-delete", VMIC_SVC_KVP, VMIC_KVP_DELETE, p, n);
	n = (size_t)vmic_kvp_identity_encode(
		"6f19c883-439c-8332-aeaa-3ce23255e6a3", p, sizeof(p));
	save_message("kvp-identity", VMIC_SVC_KVP, VMIC_KVP_IDENTITY, p,
		     n);
	{
		struct vmic_kvp_ack a = { .status = VMIC_KVP_CAP,
					  .refused = 3 };

		snprintf(a.note, sizeof(a.note), "guest-max-keys 1024");
		n = (size_t)vmic_kvp_ack_encode(&a, p, sizeof(p));
		save_message("kvp-ack", VMIC_SVC_KVP, VMIC_KVP_ACK, p, n);
	}

	/* a session's kvp frames through the decoder */
	b.n = 0;
	put(&b, "\x04\x40", 2);
	hello_frame(&b, VMIC_ROLE_HOST, 0x4444, 0x5555, true);
	n = (size_t)vmic_kvp_identity_encode("id", p, sizeof(p));
	frame(&b, VMIC_SVC_KVP, VMIC_KVP_IDENTITY, 0, 1, 0, p, n);
	n = kvp_batch(p, sizeof(p), VMIC_KVP_SET, VMIC_KVP_EXTERNAL,
		      VMIC_KVP_F_BEGIN, 0, 4, 100);
	frame(&b, VMIC_SVC_KVP, VMIC_KVP_SET, 0, 2, 0, p, n);
	n = kvp_batch(p, sizeof(p), VMIC_KVP_DELETE, VMIC_KVP_EXTERNAL, 0, 1,
		      1, 0);
	frame(&b, VMIC_SVC_KVP, VMIC_KVP_DELETE, 0, 3, 0, p, n);
	save("fuzz-frame", "kvp", b.p, b.n);

	/* fuzz-kvp: copies, changes, deletes, under bounds */
	b.n = 0;
	put(&b, "\x00", 1); /* no bounds */
	n = kvp_batch(p, sizeof(p), VMIC_KVP_SET, 1, VMIC_KVP_F_BEGIN, 0, 5,
		      30);
	kvp_run_put(&b, VMIC_KVP_SET, p, n);
	n = kvp_batch(p, sizeof(p), VMIC_KVP_SET, 1, VMIC_KVP_F_END, 5, 5, 30);
	kvp_run_put(&b, VMIC_KVP_SET, p, n);
	n = kvp_batch(p, sizeof(p), VMIC_KVP_DELETE, 1, 0, 2, 3, 0);
	kvp_run_put(&b, VMIC_KVP_DELETE, p, n);
	save("fuzz-kvp", "copy-then-delete", b.p, b.n);
	b.n = 0;
	put(&b, "\x43", 1); /* 3 keys, 1 KiB */
	n = kvp_batch(p, sizeof(p), VMIC_KVP_SET, 1, 0, 0, 6, 200);
	kvp_run_put(&b, VMIC_KVP_SET, p, n);
	n = kvp_batch(p, sizeof(p), VMIC_KVP_SET, 1,
		      VMIC_KVP_F_BEGIN | VMIC_KVP_F_END, 10, 3, 10);
	kvp_run_put(&b, VMIC_KVP_SET, p, n);
	save("fuzz-kvp", "bounded", b.p, b.n);

	/* fuzz-kvp-poolfile: what writers leave */
	b.n = 0;
	kvp_file_record(rec, "IntegrationServicesVersion", 26, "0.1.0", 5);
	put(&b, rec, sizeof(rec));
	kvp_file_record(rec, "NetworkAddressIPv4", 18, "192.0.2.10;10.0.0.2",
			19);
	put(&b, rec, sizeof(rec));
	save("fuzz-kvp-poolfile", "two-records", b.p, b.n);
	b.n = 0;
	kvp_file_record(rec, "dup", 3, "old", 3);
	put(&b, rec, sizeof(rec));
	kvp_file_record(rec, "dup", 3, "new", 3);
	put(&b, rec, sizeof(rec));
	kvp_file_record(rec, "half", 4, "written", 7);
	put(&b, rec, 700);
	save("fuzz-kvp-poolfile", "dup-partial", b.p, b.n);
	b.n = 0;
	memset(rec, 'x', sizeof(rec)); /* no NUL in either field */
	put(&b, rec, sizeof(rec));
	kvp_file_record(rec, "bad", 3, "\xff\xfe", 2); /* not UTF-8 */
	put(&b, rec, sizeof(rec));
	save("fuzz-kvp-poolfile", "invalid", b.p, b.n);
}
