/* SPDX-License-Identifier: MIT */
/*
 * vsock through the kernel: vmic_listen(vsock-listen:) and vmic_connect()
 * to VMADDR_CID_LOCAL, which works where the vsock_loopback transport is
 * loaded. Elsewhere (most machines, and guests whose only transport
 * leads to their host) the test reports why and exits 77, which meson
 * counts as a skip.
 */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <linux/vm_sockets.h>

#include "testutil.h"

#include "common/macro.h"
#include "common/wire.h"
#include "proto/control.h"
#include "proto/frame.h"
#include "transport/link.h"
#include "transport/transport.h"

#ifndef VMADDR_CID_LOCAL
#define VMADDR_CID_LOCAL 1
#endif

#define SKIP 77

static uint32_t test_port(unsigned offset)
{
	return 40000u + (uint32_t)(getpid() % 20000) + offset;
}

/*
 * Is loopback vsock usable? A listener, a non-blocking connect to
 * VMADDR_CID_LOCAL and an accept, with a short timeout. On failure
 * `why` says which step failed and how.
 */
static bool vsock_loopback_works(char *why, size_t n)
{
	struct sockaddr_vm la = { .svm_family = AF_VSOCK,
				  .svm_cid = VMADDR_CID_ANY,
				  .svm_port = test_port(0) };
	struct sockaddr_vm ca = { .svm_family = AF_VSOCK,
				  .svm_cid = VMADDR_CID_LOCAL,
				  .svm_port = test_port(0) };
	_cleanup_close_ int lfd = -1, cfd = -1, afd = -1;
	struct pollfd pfd;
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	lfd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0) {
		snprintf(why, n, "socket(AF_VSOCK): %s", strerror(errno));
		return false;
	}
	if (bind(lfd, (struct sockaddr *)&la, sizeof(la)) < 0 ||
	    listen(lfd, 1) < 0) {
		snprintf(why, n, "listen on port %u: %s", la.svm_port,
			 strerror(errno));
		return false;
	}
	cfd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (cfd < 0) {
		snprintf(why, n, "socket(AF_VSOCK): %s", strerror(errno));
		return false;
	}
	if (connect(cfd, (struct sockaddr *)&ca, sizeof(ca)) < 0 &&
	    errno != EINPROGRESS) {
		snprintf(why, n, "connect to CID %u: %s", VMADDR_CID_LOCAL,
			 strerror(errno));
		return false;
	}
	pfd = (struct pollfd){ .fd = cfd, .events = POLLOUT };
	if (poll(&pfd, 1, 1500) != 1) {
		snprintf(why, n, "connect to CID %u: no answer within 1.5 s",
			 VMADDR_CID_LOCAL);
		return false;
	}
	if (getsockopt(cfd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr) {
		snprintf(why, n, "connect to CID %u: %s", VMADDR_CID_LOCAL,
			 strerror(soerr ? soerr : errno));
		return false;
	}
	pfd = (struct pollfd){ .fd = lfd, .events = POLLIN };
	if (poll(&pfd, 1, 1500) != 1 ||
	    (afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
		snprintf(why, n, "accept: the connection never arrived");
		return false;
	}
	return true;
}

/* ---- the real test, where loopback exists ---------------------------- */

struct side {
	struct vmic_link link;
	unsigned frames;
	uint64_t bytes;
	bool closed;
	int reason;
};

static int side_frame(void *ud, const struct vmic_frame *f)
{
	struct side *s = ud;

	for (uint32_t i = 0; i < f->length; i++)
		if (f->payload[i] != (uint8_t)(f->request_id + i))
			return -EBADMSG;
	s->frames++;
	s->bytes += f->length;
	return 0;
}

static void side_close(void *ud, int reason)
{
	struct side *s = ud;

	s->closed = true;
	s->reason = reason;
}

static const struct vmic_link_ops side_ops = { side_frame, side_close };

struct state {
	uv_loop_t loop;
	uv_stream_t *accepted, *connected;
	int status;
	bool called;
};

static void on_accept(void *ud, uv_stream_t *s)
{
	struct state *st = ud;

	if (st->accepted)
		vmic_stream_free(s);
	else
		st->accepted = s;
}

static void on_connect(void *ud, int status, uv_stream_t *s, const char *w)
{
	struct state *st = ud;

	(void)w;
	st->called = true;
	st->status = status;
	st->connected = s;
}

static void run_until(struct state *st, bool *flag, bool *flag2)
{
	time_t end = time(NULL) + 10;

	while (!(*flag && (!flag2 || *flag2))) {
		assert_true(time(NULL) < end);
		uv_run(&st->loop, UV_RUN_ONCE);
	}
}

static void send_frame(struct side *s, uint32_t id, uint32_t len)
{
	uint8_t *buf = malloc(VMIC_HDR_SIZE + len);
	size_t n;

	for (uint32_t i = 0; i < len; i++)
		buf[VMIC_HDR_SIZE + i] = (uint8_t)(id + i);
	n = vmic_frame_seal(buf, VMIC_SVC_HEARTBEAT, 1, 0, id, 0, len);
	assert_int_equal(vmic_link_send(&s->link, buf, n, 0), 0);
	free(buf);
}

static void test_vsock_link(void **unused)
{
	struct state st = { 0 };
	struct vmic_channel lch = { .kind = VMIC_CH_VSOCK_LISTEN,
				    .port = test_port(1) };
	struct vmic_channel cch = { .kind = VMIC_CH_VSOCK,
				    .cid = VMADDR_CID_LOCAL,
				    .port = test_port(1) };
	/* The connection comes from this machine's loopback, CID 1. */
	struct vmic_peer_cids local = { .cid = { VMADDR_CID_LOCAL },
					.count = 1 };
	struct vmic_listener *l;
	struct vmic_connector *c;
	struct side host = { 0 }, guest = { 0 };
	char err[256];

	(void)unused;
	assert_int_equal(uv_loop_init(&st.loop), 0);
	assert_int_equal(vmic_listen(&st.loop, &lch, &local, on_accept, &st,
				     &l, err, sizeof(err)),
			 0);
	assert_int_equal(vmic_connect(&st.loop, &cch, 5000, on_connect, &st,
				      &c),
			 0);
	run_until(&st, &st.called, NULL);
	assert_int_equal(st.status, 0);
	while (!st.accepted)
		uv_run(&st.loop, UV_RUN_ONCE);
	assert_int_equal(vmic_link_open(&host.link, st.connected, false,
					&side_ops, &host),
			 0);
	assert_int_equal(vmic_link_open(&guest.link, st.accepted, false,
					&side_ops, &guest),
			 0);
	send_frame(&host, 1, 100);
	send_frame(&host, 2, VMIC_MAX_PAYLOAD);
	send_frame(&guest, 3, 10);
	{
		time_t end = time(NULL) + 10;

		while (guest.frames < 2 || host.frames < 1) {
			assert_true(time(NULL) < end);
			uv_run(&st.loop, UV_RUN_ONCE);
		}
	}
	assert_true(guest.bytes == 100 + VMIC_MAX_PAYLOAD);
	vmic_link_close(&host.link, 0);
	run_until(&st, &host.closed, &guest.closed);
	assert_int_equal(guest.reason, -EPIPE);
	vmic_listener_close(l);
	uv_run(&st.loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&st.loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vsock_link),
	};
	char why[256];

	if (!vsock_loopback_works(why, sizeof(why))) {
		printf("SKIP: vsock loopback is not available here (%s); "
		       "load the vsock_loopback module to run this test\n",
		       why);
		return SKIP;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
