/* SPDX-License-Identifier: MIT */
/*
 * src/proto/hello.c and session.c: the hello codec, version negotiation,
 * and handshakes between a host and a guest session whose frames travel
 * through real receive decoders (struct vmic_rx), as in the daemons.
 */
#include <errno.h>

#include "testutil.h"

#include "common/wire.h"
#include "proto/frame.h"
#include "services/heartbeat/heartbeat.h"
#include "proto/session.h"

static struct vmic_hello sample_hello(void)
{
	struct vmic_hello h = {
		.framework = VMIC_FRAMEWORK_VERSION,
		.role = VMIC_ROLE_GUEST,
		.flags = VMIC_HELLO_ESTABLISHED,
		.nonce = 0x1122334455667788ull,
		.echo = 0x99AABBCCDDEEFF00ull,
		.software = "vmic-guestd 0.1.0 \xC3\xA9",
		.count = 3,
		.offers = {
			{ VMIC_SVC_CONTROL, 1, 1, VMIC_OFFER_ENABLED },
			{ VMIC_SVC_HEARTBEAT, 1, 3, VMIC_OFFER_ENABLED },
			{ VMIC_SVC_SHUTDOWN, 2, 2, 0 },
		},
	};
	return h;
}

static void assert_hello_equal(const struct vmic_hello *a,
			       const struct vmic_hello *b)
{
	assert_int_equal(a->framework, b->framework);
	assert_int_equal(a->role, b->role);
	assert_int_equal(a->flags, b->flags);
	assert_true(a->nonce == b->nonce);
	assert_true(a->echo == b->echo);
	assert_string_equal(a->software, b->software);
	assert_int_equal(a->count, b->count);
	assert_memory_equal(a->offers, b->offers,
			    a->count * sizeof(a->offers[0]));
}

static void test_hello_roundtrip(void **state)
{
	struct vmic_hello in = sample_hello(), out;
	uint8_t buf[512];
	int n;

	(void)state;
	n = vmic_hello_encode(&in, buf, sizeof(buf));
	assert_int_equal(n, 2 + 1 + 1 + 8 + 8 + 2 + 20 + 1 + 3 * 4);
	assert_int_equal(vmic_hello_decode(buf, (size_t)n, &out), 0);
	assert_hello_equal(&in, &out);
	assert_ptr_equal(vmic_hello_find(&out, VMIC_SVC_SHUTDOWN),
			 &out.offers[2]);
	assert_null(vmic_hello_find(&out, VMIC_SVC_KVP));

	/* Zero offers and an empty software string are fine. */
	in.count = 0;
	in.software[0] = '\0';
	n = vmic_hello_encode(&in, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(vmic_hello_decode(buf, (size_t)n, &out), 0);
	assert_hello_equal(&in, &out);

	/* Encoder limits. */
	in = sample_hello();
	assert_int_equal(vmic_hello_encode(&in, buf, 20), -EMSGSIZE);
	in.count = VMIC_HELLO_MAX_OFFERS + 1;
	assert_int_equal(vmic_hello_encode(&in, buf, sizeof(buf)), -EMSGSIZE);
}

static void test_hello_trailing_bytes(void **state)
{
	struct vmic_hello in = sample_hello(), out;
	uint8_t buf[512];
	int n;

	(void)state;
	/* A later framework version appends fields: they are ignored. */
	n = vmic_hello_encode(&in, buf, sizeof(buf));
	memcpy(buf + n, "\x01\x02\x03future fields", 16);
	assert_int_equal(vmic_hello_decode(buf, (size_t)n + 16, &out), 0);
	assert_hello_equal(&in, &out);
}

static int decode_modified(const struct vmic_hello *h)
{
	uint8_t buf[512];
	struct vmic_hello out;
	int n = vmic_hello_encode(h, buf, sizeof(buf));

	assert_true(n > 0);
	return vmic_hello_decode(buf, (size_t)n, &out);
}

static void test_hello_rejects(void **state)
{
	struct vmic_hello in = sample_hello(), h, out;
	uint8_t buf[512];
	int n;

	(void)state;
	/* Every truncation fails. */
	n = vmic_hello_encode(&in, buf, sizeof(buf));
	for (int len = 0; len < n; len++)
		if (vmic_hello_decode(buf, (size_t)len, &out) != -EBADMSG)
			fail_msg("hello cut at %d bytes accepted", len);

	h = in;
	h.role = 0;
	assert_int_equal(decode_modified(&h), -EBADMSG);
	h.role = 3;
	assert_int_equal(decode_modified(&h), -EBADMSG);
	h = in;
	h.nonce = 0;
	assert_int_equal(decode_modified(&h), -EBADMSG);
	h = in;
	h.framework = 0;
	assert_int_equal(decode_modified(&h), -EBADMSG);
	h = in;
	h.offers[2].service = VMIC_SVC_HEARTBEAT; /* offered twice */
	assert_int_equal(decode_modified(&h), -EBADMSG);
	h = in;
	h.offers[1].min_version = 4; /* 4 > 3 */
	assert_int_equal(decode_modified(&h), -EBADMSG);
	h = in;
	h.offers[1].min_version = 0;
	assert_int_equal(decode_modified(&h), -EBADMSG);
	/* Duplicates far apart in the service id space still count. */
	h = in;
	h.offers[0].service = 200;
	h.offers[2].service = 200;
	assert_int_equal(decode_modified(&h), -EBADMSG);
	/* Distinct services whose ids share a bit modulo 64 are fine. */
	h = in;
	h.offers[0].service = 1 + 64;
	h.offers[2].service = 1 + 128;
	assert_int_equal(decode_modified(&h), 0);

	/* Non-UTF-8 software string, and one with a NUL. */
	h = in;
	memcpy(h.software, "bad \xC0\xAF", 7);
	assert_int_equal(decode_modified(&h), -EBADMSG);
	n = vmic_hello_encode(&in, buf, sizeof(buf));
	buf[2 + 1 + 1 + 8 + 8 + 2 + 3] = '\0';
	assert_int_equal(vmic_hello_decode(buf, (size_t)n, &out), -EBADMSG);

	/* Software string over VMIC_SOFTWARE_MAX, written by hand. */
	{
		struct vmic_wr w;

		vmic_wr_init(&w, buf, sizeof(buf));
		vmic_wr_u16(&w, 1);
		vmic_wr_u8(&w, VMIC_ROLE_HOST);
		vmic_wr_u8(&w, 0);
		vmic_wr_u64(&w, 5);
		vmic_wr_u64(&w, 0);
		vmic_wr_u16(&w, VMIC_SOFTWARE_MAX + 1);
		for (int i = 0; i <= VMIC_SOFTWARE_MAX; i++)
			vmic_wr_u8(&w, 'a');
		vmic_wr_u8(&w, 0);
		assert_false(w.err);
		assert_int_equal(vmic_hello_decode(buf, w.off, &out),
				 -EBADMSG);
		/* Exactly the maximum is accepted. */
		vmic_wr_init(&w, buf, sizeof(buf));
		vmic_wr_u16(&w, 1);
		vmic_wr_u8(&w, VMIC_ROLE_HOST);
		vmic_wr_u8(&w, 0);
		vmic_wr_u64(&w, 5);
		vmic_wr_u64(&w, 0);
		vmic_wr_u16(&w, VMIC_SOFTWARE_MAX);
		for (int i = 0; i < VMIC_SOFTWARE_MAX; i++)
			vmic_wr_u8(&w, 'a');
		vmic_wr_u8(&w, 0);
		assert_int_equal(vmic_hello_decode(buf, w.off, &out), 0);
		assert_int_equal(strlen(out.software), VMIC_SOFTWARE_MAX);
	}

	/* count > 32, with enough bytes for all the offers. */
	{
		struct vmic_wr w;

		vmic_wr_init(&w, buf, sizeof(buf));
		vmic_wr_u16(&w, 1);
		vmic_wr_u8(&w, VMIC_ROLE_HOST);
		vmic_wr_u8(&w, 0);
		vmic_wr_u64(&w, 5);
		vmic_wr_u64(&w, 0);
		vmic_wr_str(&w, "x", 10);
		vmic_wr_u8(&w, VMIC_HELLO_MAX_OFFERS + 1);
		for (int i = 0; i <= VMIC_HELLO_MAX_OFFERS; i++) {
			vmic_wr_u8(&w, (uint8_t)i);
			vmic_wr_u8(&w, 1);
			vmic_wr_u8(&w, 1);
			vmic_wr_u8(&w, 0);
		}
		assert_false(w.err);
		assert_int_equal(vmic_hello_decode(buf, w.off, &out),
				 -EBADMSG);
		/* 32 of them are fine. */
		buf[2 + 1 + 1 + 8 + 8 + 3] = VMIC_HELLO_MAX_OFFERS;
		assert_int_equal(vmic_hello_decode(buf, w.off, &out), 0);
		assert_int_equal(out.count, VMIC_HELLO_MAX_OFFERS);
	}
}

static void test_negotiate(void **state)
{
	struct vmic_offer a = { 1, 1, 3, 0 }, b = { 1, 2, 5, 0 };
	struct vmic_offer c = { 1, 4, 6, 0 }, d = { 1, 3, 3, 0 };

	(void)state;
	assert_int_equal(vmic_negotiate(&a, &b), 3);
	assert_int_equal(vmic_negotiate(&b, &a), 3);
	assert_int_equal(vmic_negotiate(&b, &c), 5);
	assert_int_equal(vmic_negotiate(&a, &d), 3);
	assert_int_equal(vmic_negotiate(&a, &a), 3);
	/* Disjoint ranges, and ranges that only touch. */
	assert_int_equal(vmic_negotiate(&a, &c), 0);
	assert_int_equal(vmic_negotiate(&c, &a), 0);
	assert_int_equal(vmic_negotiate(&d, &c), 0);
	/* Not offered. */
	assert_int_equal(vmic_negotiate(&a, NULL), 0);
	assert_int_equal(vmic_negotiate(NULL, &a), 0);
	assert_int_equal(vmic_negotiate(NULL, NULL), 0);
}

/* ---- handshake simulations ------------------------------------------ */

/*
 * One side of a channel: a session, the decoder its bytes go through,
 * and the bytes it has written and the peer has not read yet. Hellos are
 * handled as a daemon handles them; any other frame counts as handled
 * only once the session is established.
 */
struct end {
	const char *name;
	struct vmic_session s;
	struct vmic_rx rx;
	uint8_t out[16384];
	size_t outlen;
	int hellos_sent;
	int ups, new_peers, ignored, handled, protos;
};

static void end_send_hello(struct end *e)
{
	int n = vmic_session_hello_frame(&e->s, e->out + e->outlen,
					 sizeof(e->out) - e->outlen);

	assert_true(n > 0);
	e->outlen += (size_t)n;
	e->hellos_sent++;
}

/* Queue an arbitrary frame (a heartbeat request, for instance). */
static void end_send_raw(struct end *e, uint8_t service, uint8_t type,
			 const uint8_t *payload, uint32_t len)
{
	struct vmic_frame f = { .service = service, .type = type,
				.length = len, .payload = payload };
	int n = vmic_frame_encode(e->out + e->outlen,
				  sizeof(e->out) - e->outlen, &f);

	assert_true(n > 0);
	e->outlen += (size_t)n;
}

static int end_on_frame(void *ud, const struct vmic_frame *f)
{
	struct end *e = ud;
	struct vmic_hello h;
	int r;

	if (f->service != VMIC_SVC_CONTROL || f->type != VMIC_CTL_HELLO) {
		if (e->s.established)
			e->handled++;
		else
			e->ignored++;
		return 0;
	}
	assert_int_equal(vmic_hello_decode(f->payload, f->length, &h), 0);
	r = vmic_session_on_hello(&e->s, &h);
	if (r < 0) {
		e->protos++;
		return 0;
	}
	if (r & VMIC_HELLO_UP)
		e->ups++;
	if (r & VMIC_HELLO_NEW_PEER)
		e->new_peers++;
	if (r & VMIC_HELLO_REPLY)
		end_send_hello(e);
	return 0;
}

/* Move what `from` wrote into `to`'s decoder, in two pieces. */
static void deliver(struct end *from, struct end *to)
{
	uint8_t copy[sizeof(from->out)];
	size_t n = from->outlen, half = n / 2 + 1;

	memcpy(copy, from->out, n);
	from->outlen = 0;
	half = MIN(half, n);
	assert_int_equal(vmic_rx_feed(&to->rx, copy, half, end_on_frame, to),
			 0);
	assert_int_equal(vmic_rx_feed(&to->rx, copy + half, n - half,
				      end_on_frame, to),
			 0);
}

/* Exchange until neither side has anything to say; returns rounds. */
static int run_until_quiet(struct end *a, struct end *b)
{
	int rounds = 0;

	while (a->outlen || b->outlen) {
		assert_true(++rounds < 20); /* a handshake must converge */
		deliver(a, b);
		deliver(b, a);
	}
	return rounds;
}

static void lose(struct end *e)
{
	e->outlen = 0;
}

static const struct vmic_offer host_offers[VMIC_SVC_COUNT] = {
	[VMIC_SVC_CONTROL] = { VMIC_SVC_CONTROL, 1, 1, VMIC_OFFER_ENABLED },
	[VMIC_SVC_HEARTBEAT] = { VMIC_SVC_HEARTBEAT, 1, 2, VMIC_OFFER_ENABLED },
	[VMIC_SVC_SHUTDOWN] = { VMIC_SVC_SHUTDOWN, 1, 1, VMIC_OFFER_ENABLED },
	[VMIC_SVC_KVP] = { VMIC_SVC_KVP, 2, 4, 0 },
};

static const struct vmic_offer guest_offers[VMIC_SVC_COUNT] = {
	[VMIC_SVC_CONTROL] = { VMIC_SVC_CONTROL, 1, 1, VMIC_OFFER_ENABLED },
	[VMIC_SVC_HEARTBEAT] = { VMIC_SVC_HEARTBEAT, 1, 3, VMIC_OFFER_ENABLED },
	/* Only a newer shutdown than the host knows: no common version. */
	[VMIC_SVC_SHUTDOWN] = { VMIC_SVC_SHUTDOWN, 2, 3, VMIC_OFFER_ENABLED },
	[VMIC_SVC_KVP] = { VMIC_SVC_KVP, 1, 3, VMIC_OFFER_ENABLED },
	/* Guest only: the host does not offer it. */
	[VMIC_SVC_BACKUP] = { VMIC_SVC_BACKUP, 1, 1, VMIC_OFFER_ENABLED },
};

static void end_init(struct end *e, const char *name, uint8_t role,
		     uint64_t nonce, bool resync)
{
	memset(e, 0, sizeof(*e));
	e->name = name;
	vmic_session_start(&e->s, role, nonce,
			   role == VMIC_ROLE_HOST ? "vmic-hostd 0.1.0"
						  : "vmic-guestd 0.1.0",
			   role == VMIC_ROLE_HOST ? host_offers : guest_offers);
	vmic_rx_init(&e->rx, resync);
}

/* Agent restart: new session and nonce, decoder hunting for a hello. */
static void end_restart(struct end *e, uint64_t nonce)
{
	struct vmic_offer local[VMIC_SVC_COUNT];

	memcpy(local, e->s.local, sizeof(local));
	vmic_session_start(&e->s, e->s.role, nonce, e->s.software, local);
	vmic_rx_reset(&e->rx, true);
	e->hellos_sent = e->ups = e->new_peers = e->ignored = e->handled = 0;
	e->outlen = 0;
}

static void end_free(struct end *e)
{
	vmic_rx_free(&e->rx);
}

static void assert_up(const struct end *host, const struct end *guest)
{
	assert_true(host->s.established);
	assert_true(guest->s.established);
	assert_true(host->s.peer_nonce == guest->s.nonce);
	assert_true(guest->s.peer_nonce == host->s.nonce);
	assert_string_equal(host->s.peer.software, "vmic-guestd 0.1.0");
	assert_string_equal(guest->s.peer.software, "vmic-hostd 0.1.0");
	/* Highest common versions, the same on both sides. */
	for (uint8_t i = 0; i < VMIC_SVC_COUNT; i++)
		assert_int_equal(vmic_session_version(&host->s, i),
				 vmic_session_version(&guest->s, i));
	assert_int_equal(vmic_session_version(&host->s, VMIC_SVC_CONTROL), 1);
	assert_int_equal(vmic_session_version(&host->s, VMIC_SVC_HEARTBEAT),
			 2);
	assert_int_equal(vmic_session_version(&host->s, VMIC_SVC_KVP), 3);
	/* No common version: stays off, the others work. */
	assert_int_equal(vmic_session_version(&host->s, VMIC_SVC_SHUTDOWN), 0);
	/* Offered by one side only. */
	assert_int_equal(vmic_session_version(&host->s, VMIC_SVC_BACKUP), 0);
	assert_int_equal(vmic_session_version(&host->s, VMIC_SVC_COUNT), 0);
}

static void test_handshake_host_first(void **state)
{
	struct end host, guest;

	(void)state;
	end_init(&host, "host", VMIC_ROLE_HOST, 0x1001, false);
	end_init(&guest, "guest", VMIC_ROLE_GUEST, 0x2001, true);
	/* Nothing negotiated before the session is up. */
	assert_int_equal(vmic_session_version(&host.s, VMIC_SVC_HEARTBEAT), 0);
	end_send_hello(&host);
	run_until_quiet(&host, &guest);
	assert_up(&host, &guest);
	assert_int_equal(host.hellos_sent + guest.hellos_sent, 3);
	assert_int_equal(host.ups, 1);
	assert_int_equal(guest.ups, 1);
	assert_int_equal(host.new_peers, 1);
	assert_int_equal(guest.new_peers, 1);
	end_free(&host);
	end_free(&guest);
}

static void test_handshake_guest_first(void **state)
{
	struct end host, guest;

	(void)state;
	end_init(&host, "host", VMIC_ROLE_HOST, 0x1002, false);
	end_init(&guest, "guest", VMIC_ROLE_GUEST, 0x2002, true);
	end_send_hello(&guest);
	run_until_quiet(&guest, &host);
	assert_up(&host, &guest);
	assert_int_equal(host.hellos_sent + guest.hellos_sent, 3);
	end_free(&host);
	end_free(&guest);
}

static void test_handshake_simultaneous(void **state)
{
	struct end host, guest;

	(void)state;
	end_init(&host, "host", VMIC_ROLE_HOST, 0x1003, false);
	end_init(&guest, "guest", VMIC_ROLE_GUEST, 0x2003, true);
	end_send_hello(&host);
	end_send_hello(&guest);
	run_until_quiet(&host, &guest);
	assert_up(&host, &guest);
	assert_true(host.hellos_sent <= 3);
	assert_true(guest.hellos_sent <= 3);
	assert_int_equal(host.ups, 1);
	assert_int_equal(guest.ups, 1);
	end_free(&host);
	end_free(&guest);
}

/* Frames other than hellos are not for an unestablished session. */
static void test_traffic_after_up(void **state)
{
	struct end host, guest;
	uint8_t seq[8];

	(void)state;
	end_init(&host, "host", VMIC_ROLE_HOST, 0x1004, false);
	end_init(&guest, "guest", VMIC_ROLE_GUEST, 0x2004, true);
	assert_int_equal(vmic_hb_request_encode(1, seq, sizeof(seq)), 8);
	end_send_raw(&host, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST, seq, 8);
	end_send_hello(&host);
	end_send_raw(&host, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST, seq, 8);
	run_until_quiet(&host, &guest);
	assert_up(&host, &guest);
	/* Both requests reached the guest before it was up. */
	assert_int_equal(guest.ignored, 2);
	assert_int_equal(guest.handled, 0);
	end_send_raw(&host, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST, seq, 8);
	run_until_quiet(&host, &guest);
	assert_int_equal(guest.handled, 1);
	end_free(&host);
	end_free(&guest);
}

static void test_guest_restart_is_new_peer(void **state)
{
	struct end host, guest;
	uint64_t old_guest_nonce;

	(void)state;
	end_init(&host, "host", VMIC_ROLE_HOST, 0x1005, false);
	end_init(&guest, "guest", VMIC_ROLE_GUEST, 0x2005, true);
	end_send_hello(&host);
	run_until_quiet(&host, &guest);
	assert_up(&host, &guest);
	old_guest_nonce = guest.s.nonce;

	end_restart(&guest, 0x2FFF);
	host.new_peers = host.ups = host.hellos_sent = 0;
	end_send_hello(&guest);
	run_until_quiet(&guest, &host);
	assert_int_equal(host.new_peers, 1);
	assert_int_equal(host.ups, 1);
	assert_true(host.s.peer_nonce != old_guest_nonce);
	assert_up(&host, &guest);
	assert_int_equal(host.hellos_sent + guest.hellos_sent, 3);
	end_free(&host);
	end_free(&guest);
}

/*
 * A new guest agent finds the bytes the host wrote for its predecessor
 * still in the virtio-serial port: the end of a frame, a host hello that
 * echoes the old guest's nonce, heartbeat requests. None of it may
 * establish the new session; the next exchange does.
 */
static void test_stale_frames_do_not_establish(void **state)
{
	struct end host, guest;
	uint8_t seq[8];

	(void)state;
	end_init(&host, "host", VMIC_ROLE_HOST, 0x1006, false);
	end_init(&guest, "guest", VMIC_ROLE_GUEST, 0x2006, true);
	end_send_hello(&host);
	run_until_quiet(&host, &guest);
	assert_up(&host, &guest);

	/* What the host wrote while the old agent was going away. */
	vmic_hb_request_encode(41, seq, sizeof(seq));
	end_send_raw(&host, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST, seq, 8);
	end_send_hello(&host); /* echo = old guest nonce, established */
	end_send_raw(&host, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST, seq, 8);
	/* The new agent starts reading in the middle of the first frame. */
	memmove(host.out, host.out + 10, host.outlen - 10);
	host.outlen -= 10;

	/* The new agent says hello, then reads what waits in the port. */
	end_restart(&guest, 0x2EEE);
	end_send_hello(&guest);
	deliver(&host, &guest);
	assert_false(guest.s.established);
	assert_int_equal(guest.ups, 0);
	assert_int_equal(guest.handled, 0);
	assert_int_equal(guest.ignored, 1); /* the request after the hello */
	assert_true(guest.rx.dropped > 0);  /* the cut frame and the first */

	run_until_quiet(&guest, &host);
	assert_up(&host, &guest);
	assert_int_equal(guest.ups, 1);
	end_free(&host);
	end_free(&guest);
}

/* The host restarts and finds old guest frames waiting for it. */
static void test_host_restart_stale_guest_hello(void **state)
{
	struct end host, guest;

	(void)state;
	end_init(&host, "host", VMIC_ROLE_HOST, 0x1007, true);
	end_init(&guest, "guest", VMIC_ROLE_GUEST, 0x2007, true);
	end_send_hello(&host);
	run_until_quiet(&host, &guest);
	assert_up(&host, &guest);

	/* Old guest hello, echoing the old host nonce, marked established. */
	end_send_hello(&guest);
	end_restart(&host, 0x1EEE);
	deliver(&guest, &host);
	assert_false(host.s.established);
	assert_int_equal(host.ups, 0);
	/* The host answered with its new nonce: the guest sees a new peer. */
	assert_int_equal(host.hellos_sent, 1);
	guest.new_peers = 0;
	run_until_quiet(&host, &guest);
	assert_int_equal(guest.new_peers, 1);
	assert_up(&host, &guest);
	end_free(&host);
	end_free(&guest);
}

static void test_lost_hello_resent(void **state)
{
	struct end host, guest;

	(void)state;
	end_init(&host, "host", VMIC_ROLE_HOST, 0x1008, false);
	end_init(&guest, "guest", VMIC_ROLE_GUEST, 0x2008, true);
	end_send_hello(&host);
	deliver(&host, &guest);
	/* The guest's answer is lost. */
	assert_true(guest.outlen > 0);
	lose(&guest);
	assert_false(host.s.established);
	assert_false(guest.s.established);

	/* VMIC_HELLO_RETRY_MS later the host, not up, repeats itself. */
	end_send_hello(&host);
	run_until_quiet(&host, &guest);
	assert_up(&host, &guest);

	/* Also when the very first hello is lost, and the guest retries. */
	end_free(&host);
	end_free(&guest);
	end_init(&host, "host", VMIC_ROLE_HOST, 0x1009, false);
	end_init(&guest, "guest", VMIC_ROLE_GUEST, 0x2009, true);
	end_send_hello(&guest);
	lose(&guest);
	end_send_hello(&guest);
	run_until_quiet(&guest, &host);
	assert_up(&host, &guest);
	end_free(&host);
	end_free(&guest);
}

static void test_same_role_is_eproto(void **state)
{
	struct end a, b;

	(void)state;
	end_init(&a, "a", VMIC_ROLE_HOST, 0x100A, false);
	end_init(&b, "b", VMIC_ROLE_HOST, 0x200A, false);
	end_send_hello(&a);
	deliver(&a, &b);
	assert_int_equal(b.protos, 1);
	assert_false(b.s.established);
	assert_true(b.s.peer_nonce == 0);
	assert_int_equal(b.outlen, 0);
	end_free(&a);
	end_free(&b);
}

static void test_enabled_flags(void **state)
{
	struct end host, guest;

	(void)state;
	end_init(&host, "host", VMIC_ROLE_HOST, 0x100B, false);
	end_init(&guest, "guest", VMIC_ROLE_GUEST, 0x200B, true);
	vmic_session_set_enabled(&guest.s, VMIC_SVC_HEARTBEAT, false);
	vmic_session_set_enabled(&guest.s, VMIC_SVC_COUNT, true); /* ignored */
	end_send_hello(&host);
	run_until_quiet(&host, &guest);
	assert_false(vmic_session_peer_enabled(&host.s, VMIC_SVC_HEARTBEAT));
	assert_true(vmic_session_peer_enabled(&host.s, VMIC_SVC_KVP));
	assert_false(vmic_session_peer_enabled(&host.s, VMIC_SVC_FILECOPY));
	assert_false(vmic_session_peer_enabled(&guest.s, VMIC_SVC_KVP));
	/* Still negotiated: enabling is a separate, run-time switch. */
	assert_int_equal(vmic_session_version(&host.s, VMIC_SVC_HEARTBEAT), 2);

	/* Switched on again, the next hello tells the host. */
	vmic_session_set_enabled(&guest.s, VMIC_SVC_HEARTBEAT, true);
	end_send_hello(&guest);
	run_until_quiet(&guest, &host);
	assert_true(vmic_session_peer_enabled(&host.s, VMIC_SVC_HEARTBEAT));
	assert_true(host.s.established);
	end_free(&host);
	end_free(&guest);
}

/* A software name longer than the hello allows is cut, still valid. */
static void test_long_software_name(void **state)
{
	struct vmic_session s;
	struct vmic_frame f;
	struct vmic_hello h;
	uint8_t buf[1024];
	char name[100] = "";
	int n;

	(void)state;
	for (int i = 0; i < 30; i++)
		strcat(name, "\xE2\x82\xAC"); /* 90 bytes of euro signs */
	vmic_session_start(&s, VMIC_ROLE_GUEST, 0, name, guest_offers);
	assert_true(s.nonce != 0);
	n = vmic_session_hello_frame(&s, buf, sizeof(buf));
	assert_true(n > VMIC_HDR_SIZE);
	assert_int_equal(vmic_frame_parse_header(buf, &f), 0);
	assert_int_equal(f.length, n - VMIC_HDR_SIZE);
	assert_int_equal(vmic_hello_decode(buf + VMIC_HDR_SIZE, f.length, &h),
			 0);
	assert_int_equal(strlen(h.software), 63);
	assert_memory_equal(h.software, name, 63);

	/* Too small a buffer is an error, not an overflow. */
	assert_true(vmic_session_hello_frame(&s, buf, 10) < 0);
	assert_true(vmic_session_hello_frame(&s, buf, 40) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_roundtrip),
		cmocka_unit_test(test_hello_trailing_bytes),
		cmocka_unit_test(test_hello_rejects),
		cmocka_unit_test(test_negotiate),
		cmocka_unit_test(test_handshake_host_first),
		cmocka_unit_test(test_handshake_guest_first),
		cmocka_unit_test(test_handshake_simultaneous),
		cmocka_unit_test(test_traffic_after_up),
		cmocka_unit_test(test_guest_restart_is_new_peer),
		cmocka_unit_test(test_stale_frames_do_not_establish),
		cmocka_unit_test(test_host_restart_stale_guest_hello),
		cmocka_unit_test(test_lost_hello_resent),
		cmocka_unit_test(test_same_role_is_eproto),
		cmocka_unit_test(test_enabled_flags),
		cmocka_unit_test(test_long_software_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
