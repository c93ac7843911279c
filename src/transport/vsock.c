/* SPDX-License-Identifier: MIT */
/* vsock: (host connects to CID:PORT) and vsock-listen: (guest). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/vm_sockets.h>

#include "transport-internal.h"

/*
 * Hand the connected socket to libuv. A dup is wrapped because closing
 * the poll handle later unregisters the original fd number from epoll.
 */
static void vsock_connected(struct vmic_connector *c)
{
	int fd = dup(c->fd), err = 0;

	if (fd < 0) {
		connector_finish(c, -errno, "dup");
		return;
	}
	c->pipe = (uv_pipe_t *)sockfd_wrap(c->loop, fd, &err);
	connector_finish(c, err, "connect");
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
