/* SPDX-License-Identifier: MIT */
/* src/transport/channel.c: channel URIs. */
#include <errno.h>

#include "testutil.h"

#include "transport/channel.h"

/* Parse, check the canonical form, and that it parses to the same. */
static struct vmic_channel parse_ok(const char *uri, const char *canonical)
{
	struct vmic_channel c, again;
	char err[256] = "", out[256];

	if (vmic_channel_parse(uri, &c, err, sizeof(err)) != 0)
		fail_msg("'%s' rejected: %s", uri, err);
	vmic_channel_format(&c, out, sizeof(out));
	assert_string_equal(out, canonical);
	assert_int_equal(vmic_channel_parse(out, &again, err, sizeof(err)), 0);
	assert_int_equal(again.kind, c.kind);
	assert_string_equal(again.path, c.path);
	assert_int_equal(again.cid, c.cid);
	assert_int_equal(again.port, c.port);
	return c;
}

/* Parse must fail with -EINVAL and a message containing `mention`. */
static void parse_fails(const char *uri, const char *mention)
{
	struct vmic_channel c;
	char err[512];

	memset(err, 0, sizeof(err));
	if (vmic_channel_parse(uri, &c, err, sizeof(err)) != -EINVAL)
		fail_msg("'%s' accepted", uri);
	assert_true(strlen(err) > 10);
	if (!strstr(err, mention))
		fail_msg("error for '%s' is '%s', should mention '%s'", uri,
			 err, mention);
}

static void test_host_kinds(void **state)
{
	struct vmic_channel c;

	(void)state;
	c = parse_ok("unix:/run/vmic/vm1.sock", "unix:/run/vmic/vm1.sock");
	assert_int_equal(c.kind, VMIC_CH_UNIX);
	assert_string_equal(c.path, "/run/vmic/vm1.sock");
	assert_true(vmic_channel_is_host_side(&c));
	/* Relative paths are the user's business. */
	c = parse_ok("unix:vm.sock", "unix:vm.sock");

	c = parse_ok("vsock:3", "vsock:3:5657");
	assert_int_equal(c.kind, VMIC_CH_VSOCK);
	assert_int_equal(c.cid, 3);
	assert_int_equal(c.port, VMIC_VSOCK_PORT);
	assert_int_equal(VMIC_VSOCK_PORT, 5657);
	assert_true(vmic_channel_is_host_side(&c));
	c = parse_ok("vsock:4294967294:1", "vsock:4294967294:1");
	assert_int_equal(c.cid, 4294967294u);
	assert_int_equal(c.port, 1);
	c = parse_ok("vsock:42:4294967294", "vsock:42:4294967294");

	c = parse_ok("hvsock:/run/fc/vm1.vsock", "hvsock:/run/fc/vm1.vsock:5657");
	assert_int_equal(c.kind, VMIC_CH_HVSOCK);
	assert_string_equal(c.path, "/run/fc/vm1.vsock");
	assert_int_equal(c.port, VMIC_VSOCK_PORT);
	assert_true(vmic_channel_is_host_side(&c));
	c = parse_ok("hvsock:/run/fc/v.sock:1024", "hvsock:/run/fc/v.sock:1024");
	assert_int_equal(c.port, 1024);
	assert_string_equal(c.path, "/run/fc/v.sock");
	/* A colon inside the path: the port is after the last one. */
	c = parse_ok("hvsock:/tmp/a:b/v.sock", "hvsock:/tmp/a:b/v.sock:5657");
	assert_string_equal(c.path, "/tmp/a:b/v.sock");
	c = parse_ok("hvsock:/tmp/a:b/v.sock:77", "hvsock:/tmp/a:b/v.sock:77");
	assert_string_equal(c.path, "/tmp/a:b/v.sock");
}

static void test_guest_kinds(void **state)
{
	struct vmic_channel c;

	(void)state;
	c = parse_ok("unix-listen:/tmp/g.sock", "unix-listen:/tmp/g.sock");
	assert_int_equal(c.kind, VMIC_CH_UNIX_LISTEN);
	assert_false(vmic_channel_is_host_side(&c));
	c = parse_ok("vsock-listen:", "vsock-listen:5657");
	assert_int_equal(c.kind, VMIC_CH_VSOCK_LISTEN);
	assert_int_equal(c.port, VMIC_VSOCK_PORT);
	assert_false(vmic_channel_is_host_side(&c));
	c = parse_ok("vsock-listen:9999", "vsock-listen:9999");
	assert_int_equal(c.port, 9999);
	c = parse_ok("virtio-serial:org.vmic.0", "virtio-serial:org.vmic.0");
	assert_int_equal(c.kind, VMIC_CH_VIRTIO_SERIAL);
	assert_string_equal(c.path, "org.vmic.0");
	assert_false(vmic_channel_is_host_side(&c));
	c = parse_ok("auto", "auto");
	assert_int_equal(c.kind, VMIC_CH_AUTO);
	assert_string_equal(c.path, VMIC_VIRTIO_PORT_NAME);
	assert_int_equal(c.port, VMIC_VSOCK_PORT);
	assert_false(vmic_channel_is_host_side(&c));
}

static void test_path_limits(void **state)
{
	char uri[300], path[200];

	(void)state;
	/* 107 bytes is the most sun_path holds with its terminator. */
	memset(path, 'p', sizeof(path));
	path[0] = '/';
	path[VMIC_PATH_MAX] = '\0';
	snprintf(uri, sizeof(uri), "unix:%s", path);
	parse_ok(uri, uri);
	snprintf(uri, sizeof(uri), "hvsock:%s:9", path);
	parse_ok(uri, uri);
	snprintf(uri, sizeof(uri), "unix-listen:%s", path);
	parse_ok(uri, uri);

	path[VMIC_PATH_MAX] = 'p';
	path[VMIC_PATH_MAX + 1] = '\0';
	snprintf(uri, sizeof(uri), "unix:%s", path);
	parse_fails(uri, "108 bytes");
	parse_fails(uri, "107");
	snprintf(uri, sizeof(uri), "unix-listen:%s", path);
	parse_fails(uri, "108 bytes");
	snprintf(uri, sizeof(uri), "hvsock:%s", path);
	parse_fails(uri, "108 bytes");
	snprintf(uri, sizeof(uri), "hvsock:%s:5657", path);
	parse_fails(uri, "108 bytes");

	parse_fails("unix:", "empty");
	parse_fails("unix-listen:", "empty");
	parse_fails("hvsock:", "empty");
	parse_fails("hvsock::5657", "empty");
}

static void test_vsock_errors(void **state)
{
	(void)state;
	parse_fails("vsock:0", "CID 0 is reserved");
	parse_fails("vsock:1", "CID 1 is reserved");
	parse_fails("vsock:2", "CID 2 is reserved");
	parse_fails("vsock:2:5657", "reserved");
	parse_fails("vsock:4294967295", "reserved");
	parse_fails("vsock:abc", "'abc' is not a vsock CID");
	parse_fails("vsock:", "is not a vsock CID");
	parse_fails("vsock:-3", "not a vsock CID");
	parse_fails("vsock: 3", "not a vsock CID");
	parse_fails("vsock:3x", "not a vsock CID");
	parse_fails("vsock:4294967296", "not a vsock CID");
	parse_fails("vsock:99999999999999999999", "not a vsock CID");
	/* Ports. */
	parse_fails("vsock:3:0", "'0' is not a vsock port");
	parse_fails("vsock:3:", "is not a vsock port");
	parse_fails("vsock:3:x", "'x' is not a vsock port");
	parse_fails("vsock:3:4294967295", "not a vsock port");
	parse_fails("vsock:3:4294967296", "not a vsock port");
	parse_fails("vsock:3:5657:1", "not a vsock port");
	parse_fails("vsock-listen:0", "not a vsock port");
	parse_fails("vsock-listen:port", "not a vsock port");
	parse_fails("vsock-listen:-1", "not a vsock port");
	parse_fails("hvsock:/tmp/x.sock:0", "not a vsock port");
	parse_fails("hvsock:/tmp/x.sock:4294967295", "not a vsock port");
}

static void test_other_errors(void **state)
{
	char uri[100];

	(void)state;
	parse_fails("", "unknown channel");
	parse_fails("tcp:1.2.3.4:5", "unknown channel 'tcp:1.2.3.4:5'");
	parse_fails("UNIX:/x", "unknown channel");
	parse_fails("unix", "unknown channel");
	parse_fails("/run/vmic.sock", "unix:PATH");
	parse_fails("autox", "unknown channel");
	parse_fails("virtio-serial:", "not a virtio-serial port name");
	parse_fails("virtio-serial:../../dev/sda",
		    "not a virtio-serial port name");
	parse_fails("virtio-serial:a/b", "not a virtio-serial port name");
	parse_fails("virtio-serial:.", "not a virtio-serial port name");
	parse_fails("virtio-serial:..", "not a virtio-serial port name");
	memset(uri, 0, sizeof(uri));
	strcpy(uri, "virtio-serial:");
	memset(uri + 14, 'n', 65);
	parse_fails(uri, "not a virtio-serial port name");
	uri[14 + 64] = '\0';
	parse_ok(uri, uri);
}

/* The error text is cut, never overflowed, with a small buffer. */
static void test_small_error_buffer(void **state)
{
	struct vmic_channel c;
	char err[8];

	(void)state;
	memset(err, 'Z', sizeof(err));
	assert_int_equal(vmic_channel_parse("bogus:thing", &c, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(err[7], '\0');
	assert_int_equal(strlen(err), 7);
}

static void test_format_invalid(void **state)
{
	struct vmic_channel c = { .kind = 0 };
	char out[32];

	(void)state;
	vmic_channel_format(&c, out, sizeof(out));
	assert_string_equal(out, "invalid");
	c.kind = VMIC_CH_VSOCK;
	c.cid = 4294967294u;
	c.port = 4294967294u;
	vmic_channel_format(&c, out, 10);
	assert_string_equal(out, "vsock:429");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_kinds),
		cmocka_unit_test(test_guest_kinds),
		cmocka_unit_test(test_path_limits),
		cmocka_unit_test(test_vsock_errors),
		cmocka_unit_test(test_other_errors),
		cmocka_unit_test(test_small_error_buffer),
		cmocka_unit_test(test_format_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
