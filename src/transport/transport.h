/* SPDX-License-Identifier: MIT */
/*
 * Transports: turn a channel URI into a connected libuv stream.
 *
 * Host side: vmic_connect() dials unix:, vsock: or hvsock: and reports a
 * uv_stream_t once the byte stream is ready (for hvsock, after the
 * CONNECT/OK handshake). Guest side: vmic_listen() waits on unix-listen:,
 * vsock-listen: or opens virtio-serial:, and reports each new stream.
 * Every file in src/transport/ implements one kind behind this interface;
 * what comes out is always a plain uv_stream_t for struct vmic_link.
 */
#ifndef VMIC_TRANSPORT_H
#define VMIC_TRANSPORT_H

#include <uv.h>

#include "channel.h"
#include "peer.h"

struct vmic_connector;
struct vmic_listener;

/*
 * Connect result: status 0 and a stream the caller now owns (close it with
 * uv_close, then free it in the close callback with free()), or a negative
 * errno (libuv UV_E* values are -errno on Linux) and stream NULL. `what`
 * names the step that failed ("connect", "CONNECT handshake: <reply>").
 */
typedef void (*vmic_connect_cb)(void *ud, int status, uv_stream_t *stream,
				const char *what);

/*
 * Start connecting to a host-side channel. The callback runs exactly once,
 * from the loop, unless vmic_connect_cancel() is called first. Returns 0
 * or -errno (the callback will not run then).
 */
int vmic_connect(uv_loop_t *loop, const struct vmic_channel *ch,
		 unsigned timeout_ms, vmic_connect_cb cb, void *ud,
		 struct vmic_connector **out);

/* Abandon a pending connect: no callback, resources released. */
void vmic_connect_cancel(struct vmic_connector *c);

/* A new peer stream on a guest-side channel; the caller owns it. */
typedef void (*vmic_accept_cb)(void *ud, uv_stream_t *stream);

/*
 * Start waiting for the host on a guest-side channel. vsock-listen admits
 * only peers whose CID is in `allowed` (NULL: the host, CID 2); others are
 * closed at once, with a rate-limited log line, and never reach cb. For
 * virtio-serial the "accept" is the port opening while a host is attached;
 * when that stream ends, call vmic_listener_rearm(). Returns 0 or -errno
 * with a sentence in err.
 */
int vmic_listen(uv_loop_t *loop, const struct vmic_channel *ch,
		const struct vmic_peer_cids *allowed, vmic_accept_cb cb,
		void *ud, struct vmic_listener **out, char *err, size_t errsz);

/* The channel actually used: `auto` resolved to virtio-serial or vsock. */
const struct vmic_channel *vmic_listener_channel(const struct vmic_listener *l);

/* The stream from the last accept has ended. */
void vmic_listener_rearm(struct vmic_listener *l);

/* Stop listening and free the listener (streams already handed out stay). */
void vmic_listener_close(struct vmic_listener *l);

/* Free a stream handed out by connect or accept: uv_close + free. */
void vmic_stream_free(uv_stream_t *s);

#endif
