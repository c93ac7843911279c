/* SPDX-License-Identifier: MIT */
#include "session.h"

#include <errno.h>
#include <string.h>

#include "common/utf8.h"
#include "frame.h"

void vmic_session_start(struct vmic_session *s, uint8_t role, uint64_t nonce,
			const char *software,
			const struct vmic_offer local[VMIC_SVC_COUNT])
{
	memset(s, 0, sizeof(*s));
	s->role = role;
	s->nonce = nonce ? nonce : 1;
	s->software = software;
	memcpy(s->local, local, sizeof(s->local));
}

void vmic_session_set_enabled(struct vmic_session *s, uint8_t service,
			      bool enabled)
{
	if (service >= VMIC_SVC_COUNT)
		return;
	if (enabled)
		s->local[service].flags |= VMIC_OFFER_ENABLED;
	else
		s->local[service].flags &= (uint8_t)~VMIC_OFFER_ENABLED;
}

int vmic_session_hello_frame(const struct vmic_session *s, uint8_t *buf,
			     size_t cap)
{
	struct vmic_hello h = {
		.framework = VMIC_FRAMEWORK_VERSION,
		.role = s->role,
		.flags = s->established ? VMIC_HELLO_ESTABLISHED : 0,
		.nonce = s->nonce,
		.echo = s->peer_nonce,
	};
	struct vmic_frame f = {
		.service = VMIC_SVC_CONTROL,
		.type = VMIC_CTL_HELLO,
	};
	int n;

	/* Cut on a character boundary: the peer rejects broken UTF-8. */
	vmic_utf8_sanitize(h.software, sizeof(h.software), s->software,
			   strlen(s->software));
	for (unsigned i = 0; i < VMIC_SVC_COUNT; i++)
		if (s->local[i].max_version)
			h.offers[h.count++] = s->local[i];
	if (cap < VMIC_HDR_SIZE)
		return -EMSGSIZE;
	n = vmic_hello_encode(&h, buf + VMIC_HDR_SIZE, cap - VMIC_HDR_SIZE);
	if (n < 0)
		return n;
	f.length = (uint32_t)n;
	vmic_frame_put_header(buf, &f);
	return VMIC_HDR_SIZE + n;
}

static void session_negotiate(struct vmic_session *s)
{
	for (unsigned i = 0; i < VMIC_SVC_COUNT; i++) {
		const struct vmic_offer *mine =
			s->local[i].max_version ? &s->local[i] : NULL;

		s->version[i] =
			vmic_negotiate(mine, vmic_hello_find(&s->peer, (uint8_t)i));
	}
}

int vmic_session_on_hello(struct vmic_session *s, const struct vmic_hello *h)
{
	int res = 0;

	if (h->role == s->role)
		return -EPROTO;
	if (h->nonce != s->peer_nonce) {
		s->peer_nonce = h->nonce;
		s->established = false;
		res |= VMIC_HELLO_NEW_PEER;
	}
	s->peer = *h;
	session_negotiate(s);
	if (h->echo == s->nonce && !s->established) {
		s->established = true;
		res |= VMIC_HELLO_UP;
	}
	if ((res & VMIC_HELLO_NEW_PEER) || h->echo != s->nonce ||
	    !(h->flags & VMIC_HELLO_ESTABLISHED))
		res |= VMIC_HELLO_REPLY;
	return res;
}

bool vmic_session_peer_enabled(const struct vmic_session *s, uint8_t service)
{
	const struct vmic_offer *o = vmic_hello_find(&s->peer, service);

	return o && (o->flags & VMIC_OFFER_ENABLED);
}
