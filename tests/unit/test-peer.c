/* SPDX-License-Identifier: MIT */
/* src/transport/peer.c: the CIDs a vsock listener admits. */
#include <errno.h>

#include "testutil.h"

#include "transport/peer.h"

static struct vmic_peer_cids parse_ok(const char *s)
{
	struct vmic_peer_cids p;
	char err[256] = "";

	if (vmic_peer_cids_parse(s, &p, err, sizeof(err)) != 0)
		fail_msg("'%s' should parse: %s", s, err);
	return p;
}

static void parse_fails(const char *s, const char *want)
{
	struct vmic_peer_cids p = { .cid = { 77 }, .count = 1 };
	char err[256] = "";

	assert_int_equal(vmic_peer_cids_parse(s, &p, err, sizeof(err)),
			 -EINVAL);
	if (!strstr(err, want))
		fail_msg("'%s': error '%s' lacks '%s'", s, err, want);
	/* The output is left alone on failure. */
	assert_int_equal(p.count, 1);
	assert_int_equal(p.cid[0], 77);
}

static void test_parse(void **state)
{
	struct vmic_peer_cids p;

	(void)state;
	p = parse_ok("2");
	assert_int_equal(p.count, 1);
	assert_int_equal(p.cid[0], 2);
	p = parse_ok(" 1, 2 ,3\t4294967294 ");
	assert_int_equal(p.count, 4);
	assert_int_equal(p.cid[0], 1);
	assert_int_equal(p.cid[3], 4294967294u);
	p = parse_ok("0");
	assert_int_equal(p.cid[0], 0);
	/* Listed twice counts once. */
	p = parse_ok("2,2, 2");
	assert_int_equal(p.count, 1);
	p = parse_ok("1,,2,");
	assert_int_equal(p.count, 2);
}

static void test_parse_errors(void **state)
{
	(void)state;
	parse_fails("", "no CID given");
	parse_fails(" , ", "no CID given");
	parse_fails("host", "'host' is not a CID");
	parse_fails("2, -1", "'-1' is not a CID");
	parse_fails("4294967295", "means any CID");
	parse_fails("99999999999", "is not a CID");
	parse_fails("1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17",
		    "more than 16 CIDs");
}

static void test_format(void **state)
{
	struct vmic_peer_cids p = { .count = 0 };
	char buf[64];

	(void)state;
	vmic_peer_cids_format(&p, buf, sizeof(buf));
	assert_string_equal(buf, "2");
	p = parse_ok("1 2 3");
	vmic_peer_cids_format(&p, buf, sizeof(buf));
	assert_string_equal(buf, "1, 2, 3");
	/* What it prints parses back to the same list. */
	p = parse_ok(buf);
	assert_int_equal(p.count, 3);
	vmic_peer_cids_format(&p, buf, 6);
	assert_string_equal(buf, "1, 2,");
}

static void test_allow(void **state)
{
	struct vmic_peer_cids none = { .count = 0 };
	struct vmic_peer_cids p = parse_ok("1, 3");

	(void)state;
	/* An empty list is the default: the host only. */
	assert_true(vmic_peer_cids_allow(&none, VMIC_CID_HOST));
	assert_false(vmic_peer_cids_allow(&none, VMIC_CID_LOCAL));
	assert_false(vmic_peer_cids_allow(&none, 3));
	assert_true(vmic_peer_cids_allow(&p, 1));
	assert_true(vmic_peer_cids_allow(&p, 3));
	assert_false(vmic_peer_cids_allow(&p, 2));
	assert_false(vmic_peer_cids_allow(&p, 4294967295u));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_allow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
