/* SPDX-License-Identifier: MIT */
/* Shared state of the transport files; not for use outside src/transport. */
#ifndef VMIC_TRANSPORT_INTERNAL_H
#define VMIC_TRANSPORT_INTERNAL_H

#include <sys/socket.h>

#include "common/ratelimit.h"
#include "transport.h"

/* A refused peer logs at most one line per this long (it may retry every
 * 200 ms); the next line says how many were refused in between. */
#define VMIC_REFUSED_LOG_INTERVAL_MS 10000

/* hvsock's answer is "OK <port>\n"; anything longer is not Firecracker. */
#define HVSOCK_LINE_MAX 64

struct vmic_connector {
	uv_loop_t *loop;
	struct vmic_channel ch;
	vmic_connect_cb cb;
	void *ud;
	uv_timer_t timer; /* overall timeout */
	uv_pipe_t *pipe;  /* the stream being set up */
	uv_connect_t req;
	uv_poll_t poll; /* sockets libuv cannot connect itself */
	int fd;
	bool poll_active;
	/* sockfd connects: what to do once the socket is connected */
	void (*on_connected)(struct vmic_connector *c);
	/* hvsock: the VMM's answer line read so far */
	char line[HVSOCK_LINE_MAX];
	size_t linelen;
	/* references: 1 until released, +1 per handle close or request
	 * whose callback has yet to run; freed at 0 */
	int pending;
	bool done; /* result delivered (or cancelled) */
};

/*
 * A new connector for ch holding its base reference, timer initialised,
 * nothing started; NULL when out of memory. vmic_connect() starts one
 * through the file of its kind; the unit tests start one with
 * sockfd_connect_start() over AF_UNIX. A start that fails synchronously
 * is undone with vmic_connect_cancel().
 */
struct vmic_connector *connector_new(uv_loop_t *loop,
				     const struct vmic_channel *ch,
				     vmic_connect_cb cb, void *ud);

/*
 * Deliver the result once: on success the pipe is handed to the caller,
 * otherwise it is closed. Then the connector frees itself.
 */
void connector_finish(struct vmic_connector *c, int status, const char *what);

/* Drop one reference; frees the connector at zero. */
void connector_unref(struct vmic_connector *c);

/* unix.c */
int unix_connect_start(struct vmic_connector *c);
int unix_listen_start(struct vmic_listener *l, char *err, size_t errsz);

/* sockfd.c: connect and accept for families libuv does not support. */
int sockfd_connect_start(struct vmic_connector *c, int family,
			 const struct sockaddr *sa, socklen_t salen);
int sockfd_listen_start(struct vmic_listener *l, int family,
			const struct sockaddr *sa, socklen_t salen, char *err,
			size_t errsz);
/*
 * Does the listener admit the peer at sa? Set by the transport file whose
 * addresses carry an identity (vsock's CID); logs a refusal itself. NULL
 * admits every peer.
 */
typedef bool (*sockfd_admit_fn)(struct vmic_listener *l,
				const struct sockaddr *sa, socklen_t salen);
/* Wrap a connected stream socket fd in a new uv_pipe_t (fd owned). */
uv_stream_t *sockfd_wrap(uv_loop_t *loop, int fd, int *err);
/*
 * The connector's socket is ready for the stream: hand a dup of it to
 * libuv and finish (`what` names the step for errors). A dup, because
 * closing the poll handle later unregisters the original fd from epoll.
 */
void sockfd_hand_over(struct vmic_connector *c, const char *what);

/* vsock.c */
int vsock_connect_start(struct vmic_connector *c);
int vsock_listen_start(struct vmic_listener *l, char *err, size_t errsz);

/* hvsock.c: unix connect, then the CONNECT/OK exchange on the raw fd. */
int hvsock_connect_start(struct vmic_connector *c);
/* Parse the VMM's answer line (without '\n'): 0 when it is "OK <port>". */
int hvsock_parse_reply(const char *line, size_t n, uint32_t *host_port);

/* virtio-serial.c */
int virtio_serial_open(struct vmic_listener *l, char *err, size_t errsz);
void virtio_serial_rearm(struct vmic_listener *l);
/* Path of the device node of a named port, or -ENOENT. */
int virtio_serial_find(const char *name, char *path, size_t n);

struct vmic_listener {
	uv_loop_t *loop;
	struct vmic_channel ch;
	vmic_accept_cb cb;
	void *ud;
	uv_pipe_t server;  /* unix-listen */
	uv_poll_t poll;    /* vsock-listen */
	int fd;
	uv_timer_t retry;  /* virtio-serial reopen, accept pause */
	uv_signal_t sigio; /* virtio-serial: the host side opened or closed */
	unsigned long long rdev; /* virtio-serial: the open port's device */
	unsigned retry_ms;       /* virtio-serial: pause before looking again */
	bool handed_out;         /* virtio-serial: a stream is with the caller */
	bool have_signal;
	sockfd_admit_fn admit;             /* sockfd listeners */
	struct vmic_peer_cids allowed;     /* vsock-listen */
	struct vmic_ratelimit refused_log; /* lines about refused peers */
	bool have_server, have_poll, have_timer;
	bool warned;       /* said once that the port is missing */
	int closing;       /* handles left to close before free */
};

#endif
