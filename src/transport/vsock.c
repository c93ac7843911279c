/* SPDX-License-Identifier: MIT */
/* vsock: (host connects to CID:PORT) and vsock-listen: (guest). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/vm_sockets.h>

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

int vsock_listen_start(struct vmic_listener *l, char *err, size_t errsz)
{
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK,
		.svm_cid = VMADDR_CID_ANY,
		.svm_port = l->ch.port,
	};
	int r;

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
