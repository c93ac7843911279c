/* SPDX-License-Identifier: MIT */
/*
 * vmic-vsock-probe: a host's side of the vmic hello, over AF_VSOCK, for
 * the real-VM tests. Run inside the test guest, it dials the agent's
 * vsock-listen port from VMADDR_CID_LOCAL (1) through the kernel's
 * vsock_loopback transport, which is what an unwanted local peer looks
 * like; the agent must refuse it unless [agent] allowed-cids lists 1.
 *
 *   vmic-vsock-probe [-c CID] [-p PORT] [-t SECONDS]
 *
 * Speaks the session rules with src/proto (vmic_session, vmic_rx) and
 * prints one line:
 *   "session established with vmic-guestd X"  exit 0
 *   "closed by the agent before a session"    exit 3
 *   "no session within N s"                   exit 4
 *   "cannot connect ...: reason"              exit 2
 * Linked statically like the agent, so it runs in the busybox initramfs.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "common/random.h"
#include "proto/frame.h"
#include "proto/hello.h"
#include "proto/services.h"
#include "proto/session.h"
#include "transport/channel.h"

#ifndef VMADDR_CID_LOCAL
#define VMADDR_CID_LOCAL 1
#endif

struct probe {
	int fd;
	struct vmic_session session;
	bool up;
};

static int send_hello(struct probe *p)
{
	uint8_t buf[512];
	int n = vmic_session_hello_frame(&p->session, buf, sizeof(buf));

	if (n < 0)
		return n;
	/* MSG_NOSIGNAL: an agent that refused us has closed the socket. */
	return send(p->fd, buf, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -EIO;
}

static int on_frame(void *ud, const struct vmic_frame *f)
{
	struct probe *p = ud;
	struct vmic_hello h;
	int r;

	if (f->service != VMIC_SVC_CONTROL || f->type != VMIC_CTL_HELLO ||
	    vmic_hello_decode(f->payload, f->length, &h) < 0)
		return 0;
	r = vmic_session_on_hello(&p->session, &h);
	if (r < 0)
		return r;
	if ((r & VMIC_HELLO_REPLY) && send_hello(p) < 0)
		return -EIO;
	if (p->session.established && !p->up) {
		p->up = true;
		printf("session established with %s\n", h.software);
	}
	return 0;
}

static int dial(uint32_t cid, uint32_t port)
{
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK,
		.svm_cid = cid,
		.svm_port = port,
	};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

static int run(struct probe *p, int timeout_s)
{
	struct timespec now, end;
	struct vmic_rx rx;
	uint8_t buf[65536];
	int r = 4;

	vmic_rx_init(&rx, false);
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += timeout_s;
	if (send_hello(p) < 0) {
		printf("closed by the agent before a session\n");
		vmic_rx_free(&rx);
		return 3;
	}
	while (!p->up) {
		struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
		long ms;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (end.tv_sec - now.tv_sec) * 1000 +
		     (end.tv_nsec - now.tv_nsec) / 1000000;
		if (ms <= 0 || poll(&pfd, 1, (int)ms) == 0) {
			printf("no session within %d s\n", timeout_s);
			break;
		}
		n = read(p->fd, buf, sizeof(buf));
		if (n <= 0) {
			printf("closed by the agent before a session\n");
			r = 3;
			break;
		}
		if (vmic_rx_feed(&rx, buf, (size_t)n, on_frame, p) < 0) {
			printf("bad bytes from the agent\n");
			r = 5;
			break;
		}
	}
	vmic_rx_free(&rx);
	return p->up ? 0 : r;
}

int main(int argc, char **argv)
{
	struct vmic_offer offers[VMIC_SVC_COUNT] = { 0 };
	struct probe p = { .fd = -1 };
	uint32_t cid = VMADDR_CID_LOCAL, port = VMIC_VSOCK_PORT;
	int timeout_s = 10, c, r;

	while ((c = getopt(argc, argv, "c:p:t:")) != -1) {
		switch (c) {
		case 'c':
			cid = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			port = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 't':
			timeout_s = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: vmic-vsock-probe [-c CID] "
					"[-p PORT] [-t SECONDS]\n");
			return 2;
		}
	}
	for (size_t i = 0; i < vmic_service_count; i++) {
		const struct vmic_service_desc *d = vmic_services[i];

		offers[d->id] = (struct vmic_offer){ d->id, d->min_version,
						     d->max_version, 0 };
	}
	vmic_session_start(&p.session, VMIC_ROLE_HOST, vmic_random_u64(),
			   "vmic-vsock-probe", offers);
	p.fd = dial(cid, port);
	if (p.fd < 0) {
		printf("cannot connect to CID %u port %u: %s\n", cid, port,
		       strerror(-p.fd));
		return 2;
	}
	r = run(&p, timeout_s);
	close(p.fd);
	return r;
}
