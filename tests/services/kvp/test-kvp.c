/* SPDX-License-Identifier: MIT */
/* src/services/kvp: the KVP codecs, tables, and the outbox and inbox. */
#include <errno.h>

#include "testutil.h"

#include "services/kvp/kvp.h"
#include "services/kvp/sync.h"
#include "services/kvp/table.h"

/* A string of n bytes: 'a'..'z' repeated (the caller frees). */
static char *make_str(size_t n)
{
	char *s = malloc(n + 1);

	for (size_t i = 0; i < n; i++)
		s[i] = (char)('a' + i % 26);
	s[n] = '\0';
	return s;
}

static void set(struct kvp_table *t, const char *k, const char *v)
{
	assert_true(kvp_table_set(t, k, strlen(k), v, strlen(v), 0, NULL,
				  NULL) >= 0);
}

static const char *get(const struct kvp_table *t, const char *k)
{
	const struct kvp_rec *r = kvp_table_get(t, k, strlen(k));

	return r ? kvp_rec_value(r) : NULL;
}

/* ---- names and limits ---- */

static void test_pool_names(void **state)
{
	(void)state;
	assert_int_equal(vmic_kvp_pool_parse("0"), VMIC_KVP_EXTERNAL);
	assert_int_equal(vmic_kvp_pool_parse("4"), VMIC_KVP_AUTO_INTERNAL);
	assert_int_equal(vmic_kvp_pool_parse("guest"), VMIC_KVP_GUEST);
	assert_int_equal(vmic_kvp_pool_parse("AutoExternal"),
			 VMIC_KVP_AUTO_EXTERNAL);
	assert_int_equal(vmic_kvp_pool_parse("auto-external"),
			 VMIC_KVP_AUTO_EXTERNAL);
	assert_int_equal(vmic_kvp_pool_parse("EXTERNAL"), VMIC_KVP_EXTERNAL);
	assert_int_equal(vmic_kvp_pool_parse("5"), -EINVAL);
	assert_int_equal(vmic_kvp_pool_parse("01"), -EINVAL);
	assert_int_equal(vmic_kvp_pool_parse(""), -EINVAL);
	assert_string_equal(vmic_kvp_pool_name(3), "auto-external");
	assert_string_equal(vmic_kvp_pool_display(1), "Guest");
	assert_string_equal(vmic_kvp_pool_name(7), "unknown");
	assert_true(vmic_kvp_pool_from_host(0) && vmic_kvp_pool_from_host(3));
	assert_false(vmic_kvp_pool_from_host(1) || vmic_kvp_pool_from_host(2));
	assert_false(vmic_kvp_pool_exchanged(VMIC_KVP_AUTO_INTERNAL));
}

static void test_check_limits(void **state)
{
	char *k511 = make_str(511), *k512 = make_str(512);
	char *v2047 = make_str(2047), *v2048 = make_str(2048);
	const char *why;

	(void)state;
	assert_null(vmic_kvp_check(k511, 511, v2047, 2047));
	assert_null(vmic_kvp_check("k", 1, "", 0));
	assert_null(vmic_kvp_check("k", 1, NULL, 0));
	why = vmic_kvp_check(k512, 512, "v", 1);
	assert_non_null(strstr(why, "512 bytes"));
	assert_non_null(strstr(why, "at most 511"));
	why = vmic_kvp_check("k", 1, v2048, 2048);
	assert_non_null(strstr(why, "2048 bytes"));
	assert_non_null(strstr(why, "at most 2047"));
	assert_non_null(strstr(vmic_kvp_check("", 0, "v", 1), "empty"));
	assert_non_null(strstr(vmic_kvp_check("k\xff", 2, "v", 1), "UTF-8"));
	assert_non_null(strstr(vmic_kvp_check("k", 1, "v\xc0\x80", 3),
			       "UTF-8"));
	assert_non_null(strstr(vmic_kvp_check("k\0k", 3, "v", 1), "NUL"));
	free(k511);
	free(k512);
	free(v2047);
	free(v2048);
}

/* ---- codecs ---- */

static void test_batch_roundtrip(void **state)
{
	uint8_t buf[VMIC_KVP_BATCH_MAX];
	char *k = make_str(VMIC_KVP_KEY_MAX), *v = make_str(VMIC_KVP_VALUE_MAX);
	struct vmic_kvp_builder bd;
	struct vmic_kvp_batch b;
	struct vmic_kvp_item it;
	struct vmic_rd r;
	size_t n;

	(void)state;
	vmic_kvp_build_begin(&bd, buf, sizeof(buf), VMIC_KVP_SET,
			     VMIC_KVP_GUEST, VMIC_KVP_F_BEGIN);
	assert_int_equal(vmic_kvp_build_add(&bd, "a", 1, "1", 1), 0);
	assert_int_equal(vmic_kvp_build_add(&bd, "empty", 5, "", 0), 0);
	assert_int_equal(vmic_kvp_build_add(&bd, k, VMIC_KVP_KEY_MAX, v,
					    VMIC_KVP_VALUE_MAX),
			 0);
	assert_int_equal(vmic_kvp_build_add(&bd, k, VMIC_KVP_KEY_MAX + 1, "v",
					    1),
			 -EINVAL);
	vmic_kvp_build_flags(&bd, VMIC_KVP_F_BEGIN | VMIC_KVP_F_END);
	n = vmic_kvp_build_end(&bd);
	assert_int_equal(vmic_kvp_batch_decode(VMIC_KVP_SET, buf, n, &b), 0);
	assert_int_equal(b.pool, VMIC_KVP_GUEST);
	assert_int_equal(b.flags, VMIC_KVP_F_BEGIN | VMIC_KVP_F_END);
	assert_int_equal(b.count, 3);
	vmic_kvp_items_init(&b, &r);
	assert_true(vmic_kvp_items_next(&b, &r, &it));
	assert_true(it.klen == 1 && memcmp(it.key, "a", 1) == 0);
	assert_true(it.vlen == 1 && memcmp(it.value, "1", 1) == 0);
	assert_true(vmic_kvp_items_next(&b, &r, &it));
	assert_true(it.vlen == 0);
	assert_true(vmic_kvp_items_next(&b, &r, &it));
	assert_true(it.klen == VMIC_KVP_KEY_MAX &&
		    it.vlen == VMIC_KVP_VALUE_MAX);
	assert_false(vmic_kvp_items_next(&b, &r, &it));

	/* DELETE: keys only. */
	vmic_kvp_build_begin(&bd, buf, sizeof(buf), VMIC_KVP_DELETE,
			     VMIC_KVP_EXTERNAL, 0);
	assert_int_equal(vmic_kvp_build_add(&bd, "x", 1, NULL, 0), 0);
	n = vmic_kvp_build_end(&bd);
	assert_int_equal(n, 4 + 2 + 1);
	assert_int_equal(vmic_kvp_batch_decode(VMIC_KVP_DELETE, buf, n, &b),
			 0);
	vmic_kvp_items_init(&b, &r);
	assert_true(vmic_kvp_items_next(&b, &r, &it));
	assert_null(it.value);
	free(k);
	free(v);
}

/* A batch is filled to at most 64 KiB, whatever is added. */
static void test_batch_fills_to_bound(void **state)
{
	uint8_t buf[VMIC_KVP_BATCH_MAX + 4096];
	char *v = make_str(VMIC_KVP_VALUE_MAX);
	struct vmic_kvp_builder bd;
	struct vmic_kvp_batch b;
	char key[16];
	int added = 0;
	size_t n;

	(void)state;
	vmic_kvp_build_begin(&bd, buf, sizeof(buf), VMIC_KVP_SET, 0, 0);
	for (;;) {
		snprintf(key, sizeof(key), "k%05d", added);
		if (vmic_kvp_build_add(&bd, key, strlen(key), v,
				       VMIC_KVP_VALUE_MAX) == -ENOSPC)
			break;
		added++;
	}
	n = vmic_kvp_build_end(&bd);
	assert_true(n <= VMIC_KVP_BATCH_MAX);
	assert_true(n > VMIC_KVP_BATCH_MAX - (2 + 6 + 2 + VMIC_KVP_VALUE_MAX));
	assert_int_equal(vmic_kvp_batch_decode(VMIC_KVP_SET, buf, n, &b), 0);
	assert_int_equal(b.count, added);
	free(v);
}

static void test_batch_decode_refuses(void **state)
{
	uint8_t buf[4096];
	struct vmic_kvp_builder bd;
	struct vmic_kvp_batch b;
	size_t n;

	(void)state;
	vmic_kvp_build_begin(&bd, buf, sizeof(buf), VMIC_KVP_SET, 1, 0);
	assert_int_equal(vmic_kvp_build_add(&bd, "key", 3, "value", 5), 0);
	n = vmic_kvp_build_end(&bd);
	assert_int_equal(vmic_kvp_batch_decode(VMIC_KVP_SET, buf, n, &b), 0);
	/* Short, trailing bytes, wrong type. */
	for (size_t i = 0; i < n; i++)
		assert_int_equal(vmic_kvp_batch_decode(VMIC_KVP_SET, buf, i,
						       &b),
				 -EBADMSG);
	buf[n] = 'x';
	assert_int_equal(vmic_kvp_batch_decode(VMIC_KVP_SET, buf, n + 1, &b),
			 -EBADMSG);
	assert_int_equal(vmic_kvp_batch_decode(VMIC_KVP_ACK, buf, n, &b),
			 -EBADMSG);
	/* A count that says more or fewer records than there are. */
	buf[2] = 2;
	assert_int_equal(vmic_kvp_batch_decode(VMIC_KVP_SET, buf, n, &b),
			 -EBADMSG);
	buf[2] = 0;
	assert_int_equal(vmic_kvp_batch_decode(VMIC_KVP_SET, buf, n, &b),
			 -EBADMSG);
	buf[2] = 1;
	/* Unknown flags, flags on a DELETE, pool 5. */
	buf[1] = 0x04;
	assert_int_equal(vmic_kvp_batch_decode(VMIC_KVP_SET, buf, n, &b),
			 -EBADMSG);
	buf[1] = 0;
	buf[0] = 5;
	assert_int_equal(vmic_kvp_batch_decode(VMIC_KVP_SET, buf, n, &b),
			 -EBADMSG);
	buf[0] = 1;
	/* Not UTF-8, a NUL, an empty key. */
	buf[6] = 0xff;
	assert_int_equal(vmic_kvp_batch_decode(VMIC_KVP_SET, buf, n, &b),
			 -EBADMSG);
	buf[6] = 0;
	assert_int_equal(vmic_kvp_batch_decode(VMIC_KVP_SET, buf, n, &b),
			 -EBADMSG);
	buf[6] = 'k';
	vmic_kvp_build_begin(&bd, buf, sizeof(buf), VMIC_KVP_DELETE, 1,
			     VMIC_KVP_F_END);
	vmic_kvp_build_add(&bd, "k", 1, NULL, 0);
	n = vmic_kvp_build_end(&bd);
	assert_int_equal(vmic_kvp_batch_decode(VMIC_KVP_DELETE, buf, n, &b),
			 -EBADMSG);
	/* A key length over 511 in the bytes. */
	vmic_put_le16(buf + 4, 512);
	buf[1] = 0;
	assert_int_equal(vmic_kvp_batch_decode(VMIC_KVP_DELETE, buf, n, &b),
			 -EBADMSG);
	/* An empty key. */
	memcpy(buf, "\x01\x00\x01\x00\x00\x00", 6);
	assert_int_equal(vmic_kvp_batch_decode(VMIC_KVP_DELETE, buf, 6, &b),
			 -EBADMSG);
}

static void test_identity_and_ack(void **state)
{
	uint8_t buf[512];
	char id[VMIC_KVP_ID_MAX + 1];
	struct vmic_kvp_ack a = { .status = VMIC_KVP_CAP, .refused = 7 }, b;
	int n;

	(void)state;
	n = vmic_kvp_identity_encode("6f19c883-439c-8332-aeaa-3ce23255e6a3",
				     buf, sizeof(buf));
	assert_int_equal(n, 2 + 36);
	assert_int_equal(vmic_kvp_identity_decode(buf, (size_t)n, id), 0);
	assert_string_equal(id, "6f19c883-439c-8332-aeaa-3ce23255e6a3");
	assert_int_equal(vmic_kvp_identity_decode(buf, 1, id), -EBADMSG);
	vmic_put_le16(buf, VMIC_KVP_ID_MAX + 1);
	assert_int_equal(vmic_kvp_identity_decode(buf, sizeof(buf), id),
			 -EBADMSG);

	snprintf(a.note, sizeof(a.note), "guest-max-keys");
	n = vmic_kvp_ack_encode(&a, buf, sizeof(buf));
	assert_int_equal(n, 5 + 14);
	assert_int_equal(vmic_kvp_ack_decode(buf, (size_t)n, &b), 0);
	assert_int_equal(b.status, VMIC_KVP_CAP);
	assert_int_equal(b.refused, 7);
	assert_string_equal(b.note, "guest-max-keys");
	buf[0] = 2;
	assert_int_equal(vmic_kvp_ack_decode(buf, (size_t)n, &b), -EBADMSG);
	assert_int_equal(vmic_kvp_ack_decode(buf, 4, &b), -EBADMSG);
}

/* ---- tables ---- */

static void test_table_order_and_bytes(void **state)
{
	struct kvp_table t;
	uint32_t gen;
	uint64_t size;

	(void)state;
	kvp_table_init(&t);
	set(&t, "b", "2");
	set(&t, "aa", "11");
	set(&t, "a", "1");
	assert_int_equal(t.n, 3);
	assert_string_equal(kvp_rec_key(t.recs[0]), "a");
	assert_string_equal(kvp_rec_key(t.recs[1]), "aa");
	assert_string_equal(kvp_rec_key(t.recs[2]), "b");
	assert_int_equal(t.bytes, 2 + 4 + 2);
	assert_int_equal(kvp_table_set(&t, "a", 1, "1", 1, 5, &gen, &size),
			 KVP_SAME);
	assert_int_equal(t.recs[0]->gen, 5);
	assert_int_equal(size, 2);
	assert_int_equal(kvp_table_set(&t, "a", 1, "one", 3, 6, &gen, &size),
			 KVP_REPLACED);
	assert_int_equal(gen, 5);
	assert_int_equal(t.bytes, 4 + 4 + 2);
	assert_string_equal(get(&t, "a"), "one");
	assert_int_equal(kvp_table_after(&t, "a", 1), 1);
	assert_int_equal(kvp_table_after(&t, "ab", 2), 2);
	assert_true(kvp_table_delete(&t, "aa", 2));
	assert_false(kvp_table_delete(&t, "aa", 2));
	assert_int_equal(t.bytes, 4 + 2);
	kvp_table_drop_front(&t, 1);
	assert_int_equal(t.n, 1);
	assert_string_equal(kvp_rec_key(t.recs[0]), "b");
	kvp_table_clear(&t);
	assert_int_equal(t.n, 0);
	assert_int_equal(t.bytes, 0);
}

static void count_drop(void *ud, const struct kvp_rec *r)
{
	(void)r;
	(*(int *)ud)++;
}

static void test_table_keep_gen(void **state)
{
	struct kvp_table t;
	int dropped = 0;

	(void)state;
	kvp_table_init(&t);
	for (int i = 0; i < 100; i++) {
		char k[8];

		snprintf(k, sizeof(k), "k%03d", i);
		kvp_table_set(&t, k, strlen(k), "v", 1, (uint32_t)(i % 3),
			      NULL, NULL);
	}
	assert_int_equal(kvp_table_keep_gen(&t, 1, count_drop, &dropped), 67);
	assert_int_equal(dropped, 67);
	assert_int_equal(t.n, 33);
	assert_int_equal(t.bytes, 33 * 5);
	for (size_t i = 0; i < t.n; i++)
		assert_int_equal(t.recs[i]->gen, 1);
	kvp_table_clear(&t);
}

/* A snapshot keeps the records as they were while the table moves on. */
static void test_table_snapshot(void **state)
{
	struct kvp_table t, snap;

	(void)state;
	kvp_table_init(&t);
	set(&t, "a", "1");
	set(&t, "b", "2");
	assert_int_equal(kvp_table_snapshot(&t, &snap), 0);
	set(&t, "a", "changed");
	kvp_table_delete(&t, "b", 1);
	set(&t, "c", "3");
	assert_int_equal(snap.n, 2);
	assert_string_equal(get(&snap, "a"), "1");
	assert_string_equal(get(&snap, "b"), "2");
	kvp_table_clear(&t);
	assert_string_equal(get(&snap, "a"), "1");
	kvp_table_clear(&snap);
}

struct diffs {
	char keys[16][8];
	bool gone[16];
	int n;
};

static void on_diff(void *ud, const char *key, size_t klen,
		    const struct kvp_rec *now)
{
	struct diffs *d = ud;

	snprintf(d->keys[d->n], sizeof(d->keys[0]), "%.*s", (int)klen, key);
	d->gone[d->n++] = now == NULL;
}

static void test_table_diff(void **state)
{
	struct kvp_table a, b;
	struct diffs d = { 0 };

	(void)state;
	kvp_table_init(&a);
	kvp_table_init(&b);
	set(&a, "same", "1");
	set(&a, "gone", "1");
	set(&a, "changed", "1");
	set(&b, "same", "1");
	set(&b, "changed", "2");
	set(&b, "new", "1");
	assert_int_equal(kvp_table_diff(&a, &b, on_diff, &d), 3);
	assert_string_equal(d.keys[0], "changed");
	assert_false(d.gone[0]);
	assert_string_equal(d.keys[1], "gone");
	assert_true(d.gone[1]);
	assert_string_equal(d.keys[2], "new");
	assert_false(d.gone[2]);
	kvp_table_clear(&a);
	kvp_table_clear(&b);
}

/* ---- outbox and inbox ---- */

/* Move every pending batch of ob (source src) into dst through in:
 * encoded, decoded, applied. Returns the batches; checks the window
 * size bound of every one. */
static int deliver(struct kvp_outbox *ob, const struct kvp_table *src,
		   struct kvp_inbox *in, struct kvp_table *dst,
		   const struct kvp_limits *lim, size_t *refused)
{
	static uint8_t buf[VMIC_KVP_BATCH_MAX];
	int batches = 0;

	*refused = 0;
	while (kvp_outbox_pending(ob)) {
		struct vmic_kvp_batch b;
		uint8_t type;
		size_t n, len, r = 0;

		len = kvp_outbox_next(ob, src, buf, sizeof(buf), &type, &n);
		assert_true(len > 0 && len <= VMIC_KVP_BATCH_MAX);
		assert_int_equal(vmic_kvp_batch_decode(type, buf, len, &b), 0);
		assert_int_equal(b.count, n);
		assert_int_equal(kvp_inbox_apply(in, dst, &b, lim, NULL, NULL,
						 &r),
				 0);
		*refused += r;
		batches++;
	}
	return batches;
}

static void assert_same(const struct kvp_table *a, const struct kvp_table *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		assert_string_equal(kvp_rec_key(a->recs[i]),
				    kvp_rec_key(b->recs[i]));
		assert_string_equal(kvp_rec_value(a->recs[i]),
				    kvp_rec_value(b->recs[i]));
	}
}

/* 10,000 records of 2 KiB: a copy in batches of at most 64 KiB, BEGIN on
 * the first, END on the last, every record once, in order. */
static void test_outbox_full_copy(void **state)
{
	static uint8_t buf[VMIC_KVP_BATCH_MAX];
	char *v = make_str(2000);
	struct kvp_outbox ob;
	struct kvp_table src, dst;
	struct kvp_inbox in;
	size_t total = 0, n, refused;
	int batches = 0;
	uint8_t type;

	(void)state;
	kvp_table_init(&src);
	kvp_table_init(&dst);
	kvp_inbox_init(&in);
	kvp_outbox_init(&ob, VMIC_KVP_EXTERNAL);
	for (int i = 0; i < 10000; i++) {
		char k[16];

		snprintf(k, sizeof(k), "key-%05d", i);
		kvp_table_set(&src, k, strlen(k), v, 2000, 0, NULL, NULL);
	}
	kvp_outbox_restart(&ob);
	while (kvp_outbox_pending(&ob)) {
		struct vmic_kvp_batch b;
		size_t len = kvp_outbox_next(&ob, &src, buf, sizeof(buf), &type,
					     &n);

		assert_int_equal(vmic_kvp_batch_decode(type, buf, len, &b), 0);
		assert_int_equal(type, VMIC_KVP_SET);
		assert_int_equal(!!(b.flags & VMIC_KVP_F_BEGIN), batches == 0);
		assert_int_equal(!!(b.flags & VMIC_KVP_F_END),
				 !kvp_outbox_pending(&ob));
		assert_int_equal(kvp_inbox_apply(&in, &dst, &b, NULL, NULL,
						 NULL, &refused),
				 0);
		total += n;
		batches++;
	}
	assert_int_equal(total, 10000);
	assert_true(batches >= (int)(10000 * 2000 / VMIC_KVP_BATCH_MAX));
	assert_same(&src, &dst);

	/* An empty pool: one batch, BEGIN and END, no records; it empties
	 * the other side. */
	kvp_table_clear(&src);
	kvp_outbox_restart(&ob);
	assert_int_equal(deliver(&ob, &src, &in, &dst, NULL, &refused), 1);
	assert_int_equal(dst.n, 0);
	kvp_outbox_free(&ob);
	kvp_table_clear(&dst);
	free(v);
}

/* Changes during a copy: ahead of the cursor they ride with the copy,
 * behind it they follow it; a key changed many times goes once. */
static void test_outbox_changes_during_copy(void **state)
{
	static uint8_t buf[VMIC_KVP_BATCH_MAX];
	char *v = make_str(2000);
	struct kvp_outbox ob;
	struct kvp_table src, dst;
	struct kvp_inbox in;
	size_t n, refused;
	uint8_t type;
	struct vmic_kvp_batch b;
	size_t len;

	(void)state;
	kvp_table_init(&src);
	kvp_table_init(&dst);
	kvp_inbox_init(&in);
	kvp_outbox_init(&ob, VMIC_KVP_EXTERNAL);
	for (int i = 0; i < 100; i++) {
		char k[16];

		snprintf(k, sizeof(k), "key-%03d", i);
		kvp_table_set(&src, k, strlen(k), v, 2000, 0, NULL, NULL);
	}
	/* The other side has a key the host deleted while it was away. */
	set(&dst, "deleted-meanwhile", "x");
	kvp_outbox_restart(&ob);
	len = kvp_outbox_next(&ob, &src, buf, sizeof(buf), &type, &n);
	assert_int_equal(vmic_kvp_batch_decode(type, buf, len, &b), 0);
	assert_int_equal(kvp_inbox_apply(&in, &dst, &b, NULL, NULL, NULL,
					 &refused),
			 0);
	/* key-000 went out: its change is dirty; key-099 has not. */
	set(&src, "key-000", "new 0");
	assert_int_equal(kvp_outbox_changed(&ob, "key-000", 7), 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(kvp_outbox_changed(&ob, "key-000", 7), 0);
	set(&src, "key-099", "new 99");
	assert_int_equal(kvp_outbox_changed(&ob, "key-099", 7), 0);
	kvp_table_delete(&src, "key-001", 7);
	assert_int_equal(kvp_outbox_changed(&ob, "key-001", 7), 0);
	kvp_table_delete(&src, "key-098", 7);
	assert_int_equal(kvp_outbox_changed(&ob, "key-098", 7), 0);
	assert_int_equal(ob.dirty.n, 2); /* key-000 and key-001 */
	deliver(&ob, &src, &in, &dst, NULL, &refused);
	assert_same(&src, &dst);
	assert_null(get(&dst, "deleted-meanwhile"));

	/* After the copy: every change is dirty, a SET or a DELETE. */
	set(&src, "late", "1");
	kvp_outbox_changed(&ob, "late", 4);
	kvp_table_delete(&src, "key-050", 7);
	kvp_outbox_changed(&ob, "key-050", 7);
	assert_int_equal(deliver(&ob, &src, &in, &dst, NULL, &refused), 2);
	assert_same(&src, &dst);
	/* Stopped: nothing is due, and a restart forgets the dirty keys. */
	kvp_outbox_changed(&ob, "late", 4);
	kvp_outbox_stop(&ob);
	assert_false(kvp_outbox_pending(&ob));
	kvp_outbox_free(&ob);
	kvp_table_clear(&src);
	kvp_table_clear(&dst);
	free(v);
}

/* Bounds count the records of the copy under way, not an earlier one. */
static void test_inbox_limits(void **state)
{
	const struct kvp_limits lim = { 3, 100 };
	struct kvp_outbox ob;
	struct kvp_table src, dst;
	struct kvp_inbox in;
	size_t refused;

	(void)state;
	kvp_table_init(&src);
	kvp_table_init(&dst);
	kvp_inbox_init(&in);
	kvp_outbox_init(&ob, VMIC_KVP_GUEST);
	set(&src, "a", "1");
	set(&src, "b", "2");
	set(&src, "c", "3");
	set(&src, "d", "4");
	kvp_outbox_restart(&ob);
	deliver(&ob, &src, &in, &dst, &lim, &refused);
	assert_int_equal(refused, 1);
	assert_int_equal(dst.n, 3);
	/* Replacing a kept key is fine at the bound. */
	set(&src, "a", "one");
	kvp_outbox_changed(&ob, "a", 1);
	deliver(&ob, &src, &in, &dst, &lim, &refused);
	assert_int_equal(refused, 0);
	assert_string_equal(get(&dst, "a"), "one");
	/* A value that passes the byte bound is kept out. */
	{
		char *big = make_str(120);

		set(&src, "b", big);
		kvp_outbox_changed(&ob, "b", 1);
		deliver(&ob, &src, &in, &dst, &lim, &refused);
		assert_int_equal(refused, 1);
		assert_string_equal(get(&dst, "b"), "2");
		free(big);
	}
	/* A whole new pool of three other keys replaces the old three. */
	kvp_table_clear(&src);
	set(&src, "x", "1");
	set(&src, "y", "2");
	set(&src, "z", "3");
	kvp_outbox_restart(&ob);
	deliver(&ob, &src, &in, &dst, &lim, &refused);
	assert_int_equal(refused, 0);
	assert_same(&src, &dst);
	assert_int_equal(kvp_inbox_keys(&in, &dst), 3);
	/* BEGINs that never END (a hostile sender) do not pile up earlier
	 * copies: at most twice the bound is ever held. */
	for (int i = 0; i < 50; i++) {
		uint8_t buf[256];
		struct vmic_kvp_builder bd;
		struct vmic_kvp_batch b;
		char k[16];
		size_t len;

		vmic_kvp_build_begin(&bd, buf, sizeof(buf), VMIC_KVP_SET, 1,
				     VMIC_KVP_F_BEGIN);
		for (int j = 0; j < 3; j++) {
			snprintf(k, sizeof(k), "r%d-%d", i, j);
			vmic_kvp_build_add(&bd, k, strlen(k), "v", 1);
		}
		len = vmic_kvp_build_end(&bd);
		assert_int_equal(vmic_kvp_batch_decode(VMIC_KVP_SET, buf, len,
						       &b),
				 0);
		assert_int_equal(kvp_inbox_apply(&in, &dst, &b, &lim, NULL,
						 NULL, &refused),
				 0);
		assert_true(dst.n <= 2 * lim.max_keys);
	}
	kvp_outbox_free(&ob);
	kvp_table_clear(&src);
	kvp_table_clear(&dst);
}

/* Random changes, copies and sessions: the receiver always ends equal. */
static void test_sync_random(void **state)
{
	struct kvp_outbox ob;
	struct kvp_table src, dst;
	struct kvp_inbox in;
	uint32_t x = 12345;
	size_t refused;

	(void)state;
	kvp_table_init(&src);
	kvp_table_init(&dst);
	kvp_inbox_init(&in);
	kvp_outbox_init(&ob, VMIC_KVP_EXTERNAL);
	kvp_outbox_restart(&ob);
	for (int round = 0; round < 200; round++) {
		for (int i = 0; i < 50; i++) {
			char k[16], v[16];

			x = x * 1103515245 + 12345;
			snprintf(k, sizeof(k), "k%u", (x >> 16) % 300);
			if ((x >> 8) % 4 == 0) {
				kvp_table_delete(&src, k, strlen(k));
			} else {
				snprintf(v, sizeof(v), "%u", x % 1000);
				set(&src, k, v);
			}
			assert_int_equal(kvp_outbox_changed(&ob, k, strlen(k)),
					 0);
		}
		if (round % 17 == 0)
			kvp_outbox_restart(&ob); /* a new session */
		/* Part of what is due, then more changes, then the rest. */
		if (round % 2)
			deliver(&ob, &src, &in, &dst, NULL, &refused);
		else if (kvp_outbox_pending(&ob)) {
			static uint8_t buf[VMIC_KVP_BATCH_MAX];
			struct vmic_kvp_batch b;
			uint8_t type;
			size_t n, len = kvp_outbox_next(&ob, &src, buf,
						       sizeof(buf), &type, &n);

			assert_int_equal(vmic_kvp_batch_decode(type, buf, len,
							       &b),
					 0);
			kvp_inbox_apply(&in, &dst, &b, NULL, NULL, NULL,
					&refused);
		}
	}
	deliver(&ob, &src, &in, &dst, NULL, &refused);
	assert_same(&src, &dst);
	kvp_outbox_free(&ob);
	kvp_table_clear(&src);
	kvp_table_clear(&dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_names),
		cmocka_unit_test(test_check_limits),
		cmocka_unit_test(test_batch_roundtrip),
		cmocka_unit_test(test_batch_fills_to_bound),
		cmocka_unit_test(test_batch_decode_refuses),
		cmocka_unit_test(test_identity_and_ack),
		cmocka_unit_test(test_table_order_and_bytes),
		cmocka_unit_test(test_table_keep_gen),
		cmocka_unit_test(test_table_snapshot),
		cmocka_unit_test(test_table_diff),
		cmocka_unit_test(test_outbox_full_copy),
		cmocka_unit_test(test_outbox_changes_during_copy),
		cmocka_unit_test(test_inbox_limits),
		cmocka_unit_test(test_sync_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
