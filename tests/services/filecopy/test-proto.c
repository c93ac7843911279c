/* SPDX-License-Identifier: MIT */
/* src/services/filecopy/proto.c and hash.c: the codecs, their limits and
 * the streaming hash. */
#include <errno.h>

#include "testutil.h"

#include "common/wire.h"
#include "services/filecopy/filecopy.h"
#include "services/filecopy/hash.h"

static void test_put(void **state)
{
	static struct vmic_fc_put in = { .flags = VMIC_FC_F_PARENTS,
					 .stream_id = 7, .mode = 0755,
					 .mtime_ns = -5, .size = 1 },
				  out;
	static uint8_t buf[VMIC_FC_PUT_MAX_LEN + 8];
	int n;

	(void)state;
	snprintf(in.path, sizeof(in.path), "/srv/in/a\nb");
	snprintf(in.name, sizeof(in.name), "n\xC3\xA9");
	n = vmic_fc_put_encode(&in, buf, sizeof(buf));
	assert_int_equal(n, VMIC_FC_PUT_MIN_LEN - 1 + 11 + 3);
	assert_int_equal(vmic_fc_put_decode(buf, (size_t)n, &out), 0);
	assert_string_equal(out.path, "/srv/in/a\nb");
	assert_string_equal(out.name, "n\xC3\xA9");
	assert_int_equal(out.mode, 0755);
	assert_true(out.mtime_ns == -5);
	/* A trailing byte, a short payload. */
	assert_int_equal(vmic_fc_put_decode(buf, (size_t)n + 1, &out),
			 -EBADMSG);
	assert_int_equal(vmic_fc_put_decode(buf, (size_t)n - 1, &out),
			 -EBADMSG);
	/* What the guest must never act on. */
	in.flags = 0x80;
	n = vmic_fc_put_encode(&in, buf, sizeof(buf));
	assert_int_equal(vmic_fc_put_decode(buf, (size_t)n, &out), -EBADMSG);
	in.flags = 0;
	in.mode = 04755; /* set-uid does not travel */
	n = vmic_fc_put_encode(&in, buf, sizeof(buf));
	assert_int_equal(vmic_fc_put_decode(buf, (size_t)n, &out), -EBADMSG);
	in.mode = 0644;
	snprintf(in.path, sizeof(in.path), "srv/relative");
	n = vmic_fc_put_encode(&in, buf, sizeof(buf));
	assert_int_equal(vmic_fc_put_decode(buf, (size_t)n, &out), -EBADMSG);
	snprintf(in.path, sizeof(in.path), "/srv");
	snprintf(in.name, sizeof(in.name), "..");
	n = vmic_fc_put_encode(&in, buf, sizeof(buf));
	assert_int_equal(vmic_fc_put_decode(buf, (size_t)n, &out), -EBADMSG);
	snprintf(in.name, sizeof(in.name), "a/b");
	n = vmic_fc_put_encode(&in, buf, sizeof(buf));
	assert_int_equal(vmic_fc_put_decode(buf, (size_t)n, &out), -EBADMSG);
	snprintf(in.name, sizeof(in.name), "ok");
	in.stream_id = 0;
	n = vmic_fc_put_encode(&in, buf, sizeof(buf));
	assert_int_equal(vmic_fc_put_decode(buf, (size_t)n, &out), -EBADMSG);
	/* The longest path and name fit the table's maximum exactly. */
	in.stream_id = 1;
	memset(in.path, 'p', VMIC_FC_PATH_MAX);
	in.path[0] = '/';
	in.path[VMIC_FC_PATH_MAX] = '\0';
	memset(in.name, 'n', VMIC_FC_NAME_MAX);
	in.name[VMIC_FC_NAME_MAX] = '\0';
	n = vmic_fc_put_encode(&in, buf, sizeof(buf));
	assert_int_equal(n, VMIC_FC_PUT_MAX_LEN);
	assert_int_equal(vmic_fc_put_decode(buf, (size_t)n, &out), 0);
	/* A length field one over the limit. */
	vmic_put_le16(buf + 33, VMIC_FC_PATH_MAX + 1);
	assert_int_equal(vmic_fc_put_decode(buf, sizeof(buf), &out), -EBADMSG);
}

static void test_others(void **state)
{
	struct vmic_fc_commit c = { .stream_id = 3, .bytes = 99,
				    .hash = { 1, 2, 3 } },
			      c2;
	struct vmic_fc_get g = { .stream_id = 4 }, g2;
	struct vmic_fc_reply r = { .stage = VMIC_FC_DONE, .size = 5,
				   .mode = 0600, .mtime_ns = 12,
				   .hash = { 0xff } },
			     r2;
	uint8_t buf[VMIC_FC_GET_MAX_LEN];
	int n;

	(void)state;
	n = vmic_fc_commit_encode(&c, buf, sizeof(buf));
	assert_int_equal(n, VMIC_FC_COMMIT_LEN);
	assert_int_equal(vmic_fc_commit_decode(buf, (size_t)n, &c2), 0);
	assert_memory_equal(&c, &c2, sizeof(c));
	assert_int_equal(vmic_fc_commit_decode(buf, (size_t)n - 1, &c2),
			 -EBADMSG);
	snprintf(g.path, sizeof(g.path), "/srv/out/x");
	n = vmic_fc_get_encode(&g, buf, sizeof(buf));
	assert_int_equal(vmic_fc_get_decode(buf, (size_t)n, &g2), 0);
	assert_string_equal(g2.path, "/srv/out/x");
	n = vmic_fc_reply_encode(&r, buf, sizeof(buf));
	assert_int_equal(n, VMIC_FC_REPLY_LEN);
	assert_int_equal(vmic_fc_reply_decode(buf, (size_t)n, &r2), 0);
	assert_memory_equal(r.hash, r2.hash, VMIC_FC_HASH_LEN);
	assert_true(r2.size == 5 && r2.mode == 0600 && r2.mtime_ns == 12);
	buf[0] = 2; /* unknown stage */
	assert_int_equal(vmic_fc_reply_decode(buf, (size_t)n, &r2), -EBADMSG);
	buf[0] = VMIC_FC_ACCEPTED;
	buf[1] = VMIC_FC_F_SPARSE;
	assert_int_equal(vmic_fc_reply_decode(buf, (size_t)n, &r2), 0);
	assert_int_equal(r2.flags, VMIC_FC_F_SPARSE);
	buf[1] = VMIC_FC_F_FORCE; /* no flag of a reply */
	assert_int_equal(vmic_fc_reply_decode(buf, (size_t)n, &r2), -EBADMSG);
}

/* The ACCEPTED of a GET carries the owner where DONE has the hash. */
static void test_reply_owner(void **state)
{
	struct vmic_fc_reply r = { .stage = VMIC_FC_ACCEPTED,
				   .flags = VMIC_FC_F_OWNER,
				   .uid = 1234,
				   .gid = 0x89abcdef },
			     r2;
	uint8_t buf[VMIC_FC_REPLY_LEN];
	int n;

	(void)state;
	memset(r.hash, 0xee, sizeof(r.hash)); /* not sent with OWNER */
	n = vmic_fc_reply_encode(&r, buf, sizeof(buf));
	assert_int_equal(n, VMIC_FC_REPLY_LEN);
	assert_int_equal(buf[22 + 4], 0xef); /* gid, little-endian */
	assert_int_equal(vmic_fc_reply_decode(buf, (size_t)n, &r2), 0);
	assert_true(r2.uid == 1234 && r2.gid == 0x89abcdef);
	assert_int_equal(r2.flags, VMIC_FC_F_OWNER);
	buf[n - 1] = 1; /* the unused rest must be zero */
	assert_int_equal(vmic_fc_reply_decode(buf, (size_t)n, &r2), -EBADMSG);
	buf[n - 1] = 0;
	buf[0] = VMIC_FC_DONE; /* a DONE has no owner */
	assert_int_equal(vmic_fc_reply_decode(buf, (size_t)n, &r2), -EBADMSG);
}

static void test_tree_msgs(void **state)
{
	static struct vmic_fc_mkdir d = { .flags = VMIC_FC_F_PARENTS |
						   VMIC_FC_F_EXISTS,
					  .mode = 0750,
					  .mtime_ns = VMIC_FC_MTIME_NONE },
				    d2;
	static struct vmic_fc_symlink l = { .flags = VMIC_FC_F_FORCE,
					    .mtime_ns = 5 },
				      l2;
	static uint8_t buf[VMIC_FC_SYMLINK_MAX_LEN + 8];
	int n;

	(void)state;
	snprintf(d.path, sizeof(d.path), "/srv/in/d");
	n = vmic_fc_mkdir_encode(&d, buf, sizeof(buf));
	assert_int_equal(vmic_fc_mkdir_decode(buf, (size_t)n, &d2), 0);
	assert_memory_equal(&d, &d2, sizeof(d));
	d.flags = VMIC_FC_F_FORCE; /* no flag of MKDIR */
	n = vmic_fc_mkdir_encode(&d, buf, sizeof(buf));
	assert_int_equal(vmic_fc_mkdir_decode(buf, (size_t)n, &d2), -EBADMSG);
	snprintf(l.path, sizeof(l.path), "/srv/in/link");
	snprintf(l.target, sizeof(l.target), "../elsewhere");
	n = vmic_fc_symlink_encode(&l, buf, sizeof(buf));
	assert_int_equal(vmic_fc_symlink_decode(buf, (size_t)n, &l2), 0);
	assert_memory_equal(&l, &l2, sizeof(l));
	l.target[0] = '\0'; /* a link to nothing */
	n = vmic_fc_symlink_encode(&l, buf, sizeof(buf));
	assert_int_equal(vmic_fc_symlink_decode(buf, (size_t)n, &l2), -EBADMSG);
}

/* The hash of bytes fed in pieces is the hash of them at once, and
 * XXH3-128 of "" is its published value. */
static void test_hash(void **state)
{
	struct vmic_fc_hasher *a = vmic_fc_hasher_new();
	struct vmic_fc_hasher *b = vmic_fc_hasher_new();
	uint8_t ha[VMIC_FC_HASH_LEN], hb[VMIC_FC_HASH_LEN];
	static uint8_t data[300000];
	char hex[33];

	(void)state;
	vmic_fc_hasher_digest(a, ha);
	vmic_fc_hash_hex(ha, hex);
	assert_string_equal(hex, "99aa06d3014798d86001c324468d497f");
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 31 + 7);
	vmic_fc_hasher_update(a, data, sizeof(data));
	for (size_t off = 0; off < sizeof(data); off += 65537) {
		size_t n = sizeof(data) - off < 65537 ? sizeof(data) - off
						       : 65537;

		vmic_fc_hasher_update(b, data + off, n);
	}
	vmic_fc_hasher_digest(a, ha);
	vmic_fc_hasher_digest(b, hb);
	assert_memory_equal(ha, hb, VMIC_FC_HASH_LEN);
	assert_true(vmic_fc_hasher_bytes(b) == sizeof(data));
	vmic_fc_hasher_free(a);
	vmic_fc_hasher_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put),
		cmocka_unit_test(test_others),
		cmocka_unit_test(test_tree_msgs),
		cmocka_unit_test(test_reply_owner),
		cmocka_unit_test(test_hash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
