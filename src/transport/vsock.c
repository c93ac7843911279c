/* SPDX-License-Identifier: MIT */
/* vsock: (host connects to CID:PORT) and vsock-listen: (guest). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/vm_sockets.h>

#include "common/log.h"
#include "transport-internal.h"

static void vsock_connected(struct vmic_connector *c)
{
	sockfd_hand_over(c, "connect");
}

int vsock_connect_start(struct vmic_connector *c)
{
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK,
		.svm_cid = c->ch.cid,
		.svm_port = c->ch.port,
	};

	c->on_connected = vsock_connected;
	return sockfd_connect_start(c, AF_VSOCK, (struct sockaddr *)&sa,
				    sizeof(sa));
}

/* The peer's CID against the listener's list; one line per refusal,
 * rate-limited, since a refused peer may well retry every 200 ms. */
static bool vsock_admit(struct vmic_listener *l, const struct sockaddr *sa,
			socklen_t salen)
{
	const struct sockaddr_vm *vm = (const struct sockaddr_vm *)sa;
	char allowed[VMIC_PEER_CIDS_MAX * 12], more[80] = "";
	uint64_t held;

	if (salen < sizeof(*vm) || sa->sa_family != AF_VSOCK) {
		log_warning("refused a vsock connection whose peer address "
			    "the kernel did not give");
		return false;
	}
	if (vmic_peer_cids_allow(&l->allowed, vm->svm_cid))
		return true;
	if (vmic_ratelimit_pass(&l->refused_log, uv_now(l->loop), &held)) {
		vmic_peer_cids_format(&l->allowed, allowed, sizeof(allowed));
		if (held)
			snprintf(more, sizeof(more),
				 "; %llu more refused since the last such line",
				 (unsigned long long)held);
		log_warning("refused a vsock connection from CID %u (port %u): "
			    "not in [agent] allowed-cids (%s)%s",
			    vm->svm_cid, vm->svm_port, allowed, more);
	}
	return false;
}

int vsock_listen_start(struct vmic_listener *l, char *err, size_t errsz)
{
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK,
		.svm_cid = VMADDR_CID_ANY,
		.svm_port = l->ch.port,
	};
	int r;

	l->admit = vsock_admit;
	r = sockfd_listen_start(l, AF_VSOCK, (struct sockaddr *)&sa,
				sizeof(sa), err, errsz);
	if (r == -EAFNOSUPPORT || r == -ENODEV)
		snprintf(err, errsz,
			 "vsock is not available in this guest (%s): give the "
			 "VM a vhost-vsock device and load the "
			 "vmw_vsock_virtio_transport module, or use "
			 "virtio-serial:%s",
			 strerror(-r), VMIC_VIRTIO_PORT_NAME);
	return r;
}
