/* SPDX-License-Identifier: MIT */
/*
 * The session handshake as a pure state machine (no I/O).
 *
 * Each side starts a session with a fresh random nonce and sends a hello.
 * A side is established once it has received a hello whose echo is its
 * own current nonce; until then it ignores every frame but hellos, which
 * is what discards stale bytes left in a virtio-serial port by an earlier
 * agent or host. A side answers a hello when the peer is new, when the
 * echo is not its nonce, or when the peer says it is not established yet;
 * an established side never sends a hello unprompted, so the exchange ends
 * after at most three messages. An unestablished side repeats its hello
 * (VMIC_HELLO_RETRY_MS) in case one was lost in garbage.
 */
#ifndef VMIC_SESSION_H
#define VMIC_SESSION_H

#include "hello.h"

#define VMIC_HELLO_RETRY_MS 1000

struct vmic_session {
	uint8_t role;
	bool established;
	uint64_t nonce;
	uint64_t peer_nonce; /* 0 until a peer hello arrived */
	const char *software;
	struct vmic_offer local[VMIC_SVC_COUNT]; /* indexed by service */
	struct vmic_hello peer;                 /* last hello received */
	uint8_t version[VMIC_SVC_COUNT];        /* negotiated, 0 = none */
};

/*
 * Start (or restart) a session: forget the peer, take a new nonce (never
 * 0). `local` holds one offer per service, indexed by service id; an offer
 * with max_version 0 is not sent.
 */
void vmic_session_start(struct vmic_session *s, uint8_t role, uint64_t nonce,
			const char *software,
			const struct vmic_offer local[VMIC_SVC_COUNT]);

/* Change the ENABLED flag we advertise for a service (next hello). */
void vmic_session_set_enabled(struct vmic_session *s, uint8_t service,
			      bool enabled);

/* Encode our hello as a whole frame into buf; returns its size or -errno. */
int vmic_session_hello_frame(const struct vmic_session *s, uint8_t *buf,
			     size_t cap);

enum vmic_hello_result {
	VMIC_HELLO_IGNORED = 0, /* nothing changed */
	VMIC_HELLO_REPLY = 1,   /* bit: send our hello now */
	VMIC_HELLO_NEW_PEER = 2, /* bit: peer restarted, drop its old state */
	VMIC_HELLO_UP = 4,      /* bit: the session just became established */
};

/*
 * Apply a received hello. Returns a mask of enum vmic_hello_result, or
 * -EPROTO when the hello comes from our own role (a looped channel).
 * Negotiated versions are recomputed on every accepted hello.
 */
int vmic_session_on_hello(struct vmic_session *s, const struct vmic_hello *h);

/* Negotiated version of a service, 0 when there is none (yet). */
static inline uint8_t vmic_session_version(const struct vmic_session *s,
					   uint8_t service)
{
	return service < VMIC_SVC_COUNT && s->established ? s->version[service]
							  : 0;
}

/* True when the peer's hello marks the service enabled on its side. */
bool vmic_session_peer_enabled(const struct vmic_session *s, uint8_t service);

#endif
