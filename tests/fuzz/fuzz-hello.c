/* SPDX-License-Identifier: MIT */
/*
 * vmic_hello_decode and the session state machine. The input is decoded
 * whole as one hello payload, and also read as a sequence of records
 * (u8 length + payload) that a host and a guest session receive in
 * order, the way a reconnecting or restarted peer would send them.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"

#include "proto/frame.h"
#include "proto/hello.h"
#include "proto/session.h"

static const struct vmic_offer host_offers[VMIC_SVC_COUNT] = {
	[VMIC_SVC_CONTROL] = { VMIC_SVC_CONTROL, 1, 1, VMIC_OFFER_ENABLED },
	[VMIC_SVC_HEARTBEAT] = { VMIC_SVC_HEARTBEAT, 1, 2, VMIC_OFFER_ENABLED },
	[VMIC_SVC_SHUTDOWN] = { VMIC_SVC_SHUTDOWN, 2, 4, VMIC_OFFER_ENABLED },
	[VMIC_SVC_KVP] = { VMIC_SVC_KVP, 1, 1, 0 },
};
static const struct vmic_offer guest_offers[VMIC_SVC_COUNT] = {
	[VMIC_SVC_CONTROL] = { VMIC_SVC_CONTROL, 1, 1, VMIC_OFFER_ENABLED },
	[VMIC_SVC_HEARTBEAT] = { VMIC_SVC_HEARTBEAT, 1, 1, VMIC_OFFER_ENABLED },
	[VMIC_SVC_BACKUP] = { VMIC_SVC_BACKUP, 3, 9, VMIC_OFFER_ENABLED },
};

static void check_negotiation(const struct vmic_offer *a,
			      const struct vmic_offer *b)
{
	uint8_t v = vmic_negotiate(a, b);
	uint8_t lo, hi;

	if (!a || !b) {
		FUZZ_CHECK(v == 0);
		return;
	}
	lo = a->min_version > b->min_version ? a->min_version : b->min_version;
	hi = a->max_version < b->max_version ? a->max_version : b->max_version;
	if (lo <= hi)
		FUZZ_CHECK(v == hi);
	else
		FUZZ_CHECK(v == 0);
	FUZZ_CHECK(v == vmic_negotiate(b, a));
}

static void apply(struct vmic_session *s, const struct vmic_hello *h)
{
	static uint8_t frame[VMIC_HDR_SIZE + 1024];
	struct vmic_hello mine;
	uint64_t old_peer = s->peer_nonce;
	bool was_up = s->established;
	int r = vmic_session_on_hello(s, h), n;

	if (h->role == s->role) {
		FUZZ_CHECK(r == -EPROTO);
		FUZZ_CHECK(s->peer_nonce == old_peer);
		return;
	}
	FUZZ_CHECK(r >= 0);
	FUZZ_CHECK(((r & VMIC_HELLO_NEW_PEER) != 0) == (h->nonce != old_peer));
	/* Up once per peer: again only after a restart of the peer. */
	FUZZ_CHECK(!(r & VMIC_HELLO_UP) || !was_up ||
		   (r & VMIC_HELLO_NEW_PEER));
	if (h->echo == s->nonce)
		FUZZ_CHECK(s->established);
	if (!s->established)
		for (uint8_t i = 0; i < VMIC_SVC_COUNT; i++)
			FUZZ_CHECK(vmic_session_version(s, i) == 0);
	for (uint8_t i = 0; i < VMIC_SVC_COUNT; i++) {
		const struct vmic_offer *o = vmic_hello_find(h, i);

		check_negotiation(s->local[i].max_version ? &s->local[i] : NULL,
				  o);
		FUZZ_CHECK(s->version[i] ==
			   vmic_negotiate(s->local[i].max_version ? &s->local[i]
								  : NULL,
					  o));
		FUZZ_CHECK(vmic_session_peer_enabled(s, i) ==
			   (o && (o->flags & VMIC_OFFER_ENABLED)));
	}
	/* The same hello again changes nothing but may ask for a reply. */
	r = vmic_session_on_hello(s, h);
	FUZZ_CHECK(r >= 0 && !(r & (VMIC_HELLO_NEW_PEER | VMIC_HELLO_UP)));
	/* Whatever we were told, our own hello stays decodable. */
	n = vmic_session_hello_frame(s, frame, sizeof(frame));
	FUZZ_CHECK(n > VMIC_HDR_SIZE);
	FUZZ_CHECK(vmic_hello_decode(frame + VMIC_HDR_SIZE,
				     (size_t)n - VMIC_HDR_SIZE, &mine) == 0);
	FUZZ_CHECK(mine.echo == h->nonce);
	FUZZ_CHECK(mine.nonce == s->nonce);
	FUZZ_CHECK(((mine.flags & VMIC_HELLO_ESTABLISHED) != 0) ==
		   s->established);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct fuzz_msg *hello =
		fuzz_msg_find(VMIC_SVC_CONTROL, VMIC_CTL_HELLO);
	struct vmic_session host, guest;
	struct vmic_hello h;
	size_t off = 0;

	if (hello->decode(data, size)) {
		vmic_hello_decode(data, size, &h);
		for (unsigned i = 0; i < h.count; i++)
			for (unsigned j = 0; j < h.count; j++)
				check_negotiation(&h.offers[i], &h.offers[j]);
	}

	vmic_session_start(&host, VMIC_ROLE_HOST, 0xA5A5, "fuzz-host 1",
			   host_offers);
	vmic_session_start(&guest, VMIC_ROLE_GUEST, 0x5A5A, "fuzz-guest 1",
			   guest_offers);
	while (off < size) {
		size_t len = data[off++];

		if (len > size - off)
			len = size - off;
		if (vmic_hello_decode(data + off, len, &h) == 0) {
			apply(&host, &h);
			apply(&guest, &h);
		}
		off += len;
	}
	return 0;
}
