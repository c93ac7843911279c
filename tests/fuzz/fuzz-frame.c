/* SPDX-License-Identifier: MIT */
/*
 * What a daemon does with the bytes of its peer: the receive decoder in
 * strict and in resync mode, the table check of every frame that comes
 * out, and the decoder of its message, hellos going into a session and
 * stream frames into the flow-control bookkeeping.
 *
 * Input: byte 0 seeds the chunk sizes, byte 1 bounds them (low 6 bits)
 * and, with its top bit, asks for every "VMIC" header in the stream to
 * get a correct check before decoding, so mutated headers (lengths,
 * types, services) get past the checksum; the rest is the byte stream.
 * Each mode decodes the stream three times, whole, in chunks, and in
 * chunks the way the link reads (vmic_rx_feed_keep): all must yield the
 * same frames, error and dropped count.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#include "common/wire.h"
#include "proto/frame.h"
#include "proto/services.h"
#include "proto/session.h"
#include "proto/stream.h"

#define MAX_SEEN 4096

/* Everything a run observed, for comparing two runs. */
struct run {
	uint64_t hashes[MAX_SEEN];
	size_t frames;
	struct vmic_session host, guest;
	struct vmic_stream_tx tx;
	struct vmic_stream_rx rx;
	bool stream_broken;
};

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
	return h * 0x100000001B3ull;
}

static uint64_t frame_hash(const struct vmic_frame *f)
{
	uint64_t h = mix(0, f->service);

	h = mix(h, f->type);
	h = mix(h, f->flags);
	h = mix(h, f->request_id);
	h = mix(h, f->stream_id);
	h = mix(h, f->length);
	for (uint32_t i = 0; i < f->length; i++)
		h = mix(h, f->payload[i]);
	return h;
}

static const struct vmic_offer host_offers[VMIC_SVC_COUNT] = {
	[VMIC_SVC_HEARTBEAT] = { VMIC_SVC_HEARTBEAT, 1, 2, VMIC_OFFER_ENABLED },
	[VMIC_SVC_SHUTDOWN] = { VMIC_SVC_SHUTDOWN, 1, 1, VMIC_OFFER_ENABLED },
};
static const struct vmic_offer guest_offers[VMIC_SVC_COUNT] = {
	[VMIC_SVC_HEARTBEAT] = { VMIC_SVC_HEARTBEAT, 1, 1, VMIC_OFFER_ENABLED },
	[VMIC_SVC_SHUTDOWN] = { VMIC_SVC_SHUTDOWN, 1, 3, VMIC_OFFER_ENABLED },
};

/* A hello for the session of role `me`, as conn.c would apply it. */
static void apply_hello(struct vmic_session *s, const struct vmic_frame *f)
{
	static uint8_t frame[VMIC_HDR_SIZE + 1024];
	struct vmic_hello h;
	bool was_up = s->established;
	int r, n;

	if (vmic_hello_decode(f->payload, f->length, &h) < 0)
		return;
	r = vmic_session_on_hello(s, &h);
	if (h.role == s->role) {
		FUZZ_CHECK(r == -EPROTO);
		return;
	}
	FUZZ_CHECK(r >= 0);
	FUZZ_CHECK(s->peer_nonce == h.nonce);
	FUZZ_CHECK(!(r & VMIC_HELLO_UP) ||
		   (s->established && (!was_up || (r & VMIC_HELLO_NEW_PEER))));
	/* Up exactly when the peer echoes our nonce; a new peer must. */
	if (h.echo == s->nonce)
		FUZZ_CHECK(s->established);
	if (r & VMIC_HELLO_NEW_PEER)
		FUZZ_CHECK(s->established == (h.echo == s->nonce));
	/* Both up and in agreement: nothing more to say. */
	if (!(r & VMIC_HELLO_NEW_PEER) && h.echo == s->nonce &&
	    (h.flags & VMIC_HELLO_ESTABLISHED))
		FUZZ_CHECK(!(r & VMIC_HELLO_REPLY));
	for (uint8_t i = 0; i < VMIC_SVC_COUNT; i++) {
		uint8_t v = vmic_session_version(s, i);

		FUZZ_CHECK(v <= s->local[i].max_version);
		FUZZ_CHECK(v == 0 || v >= s->local[i].min_version);
	}
	/* Our answer is always a hello the peer can decode. */
	n = vmic_session_hello_frame(s, frame, sizeof(frame));
	FUZZ_CHECK(n > VMIC_HDR_SIZE);
	FUZZ_CHECK(vmic_hello_decode(frame + VMIC_HDR_SIZE,
				     (size_t)n - VMIC_HDR_SIZE, &h) == 0);
}

/* Stream frames through the credit bookkeeping of one stream. */
static void apply_stream(struct run *run, const struct vmic_frame *f)
{
	if (run->stream_broken)
		return;
	if (f->type == VMIC_T_STREAM_DATA) {
		if (vmic_stream_rx_data(&run->rx, f->length) < 0) {
			run->stream_broken = true; /* answered with a reset */
			return;
		}
		FUZZ_CHECK(run->rx.received <= run->rx.granted);
		vmic_stream_rx_consumed(&run->rx, f->length);
		FUZZ_CHECK(run->rx.granted >= run->rx.consumed);
	} else if (f->type == VMIC_T_STREAM_CREDIT) {
		uint64_t before = run->tx.allowed;

		if (vmic_stream_tx_credit(&run->tx,
					  vmic_get_le32(f->payload)) == 0)
			FUZZ_CHECK(run->tx.allowed > before);
		else
			FUZZ_CHECK(run->tx.allowed == before);
	}
}

/* One side's receive path for a well-framed frame. */
static void receive(struct run *run, const struct vmic_frame *f,
		    uint8_t my_dir)
{
	struct vmic_session *s =
		my_dir == VMIC_DIR_H2G ? &run->guest : &run->host;
	const struct vmic_msg_desc *d;
	const struct fuzz_msg *m;
	int code = vmic_msg_check(f, my_dir);

	if (code) {
		FUZZ_CHECK(code == VMIC_E_UNKNOWN_SERVICE ||
			   code == VMIC_E_UNKNOWN_TYPE ||
			   code == VMIC_E_BAD_LENGTH);
		return; /* answered with an error frame */
	}
	d = vmic_msg_find(f->service, f->type);
	FUZZ_CHECK(d && f->length >= d->min_len && f->length <= d->max_len);
	m = fuzz_msg_find(f->service, f->type);
	if (m)
		m->decode(f->payload, f->length);
	if (f->service == VMIC_SVC_CONTROL && f->type == VMIC_CTL_HELLO)
		apply_hello(s, f);
	else if (f->type == VMIC_T_STREAM_DATA ||
		 f->type == VMIC_T_STREAM_CREDIT)
		apply_stream(run, f);
}

static int on_frame(void *ud, const struct vmic_frame *f)
{
	struct run *run = ud;

	FUZZ_CHECK(f->length <= VMIC_MAX_PAYLOAD);
	if (run->frames < MAX_SEEN)
		run->hashes[run->frames] = frame_hash(f);
	run->frames++;
	receive(run, f, VMIC_DIR_H2G);
	receive(run, f, VMIC_DIR_G2H);
	return 0;
}

static void run_init(struct run *run)
{
	run->frames = 0;
	run->stream_broken = false;
	vmic_session_start(&run->host, VMIC_ROLE_HOST, 0x1111, "fuzz-host",
			   host_offers);
	vmic_session_start(&run->guest, VMIC_ROLE_GUEST, 0x2222, "fuzz-guest",
			   guest_offers);
	vmic_stream_tx_init(&run->tx);
	vmic_stream_rx_init(&run->rx, 0);
}

struct result {
	int ret;
	uint64_t dropped;
	uint32_t carried;
};

/* The next chunk size from seed, at most maxchunk (0: all of n). */
static size_t next_take(uint64_t *seed, size_t maxchunk, size_t n)
{
	size_t take;

	if (!maxchunk)
		return n;
	*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
	take = 1 + (size_t)((*seed >> 33) % maxchunk);
	return take < n ? take : n;
}

/*
 * Decode p[0..n) in chunks. keep: as the link reads, with
 * vmic_rx_feed_keep, the undecoded tail staying in the reader's buffer
 * and now and then handed to the decoder (vmic_rx_stash); otherwise with
 * vmic_rx_feed. Both must decode exactly what one whole feed does.
 */
static struct result feed(struct run *run, bool resync, const uint8_t *p,
			  size_t n, uint64_t seed, size_t maxchunk, bool keep)
{
	struct result res = { 0, 0, 0 };
	struct vmic_rx rx;
	size_t off = 0, kept = 0;

	run_init(run);
	vmic_rx_init(&rx, resync);
	while (off < n && res.ret == 0) {
		size_t take = next_take(&seed, maxchunk, n - off);
		ssize_t used;

		off += take;
		if (!keep) {
			res.ret = vmic_rx_feed(&rx, p + off - take, take,
					       on_frame, run);
			continue;
		}
		/* The kept bytes are the last ones read: [off-kept, off). */
		used = vmic_rx_feed_keep(&rx, p + off - take - kept,
					 kept + take, on_frame, run);
		if (used < 0) {
			res.ret = (int)used;
			break;
		}
		FUZZ_CHECK((size_t)used <= kept + take);
		kept = kept + take - (size_t)used;
		if (kept && (seed & 0x300) == 0) {
			res.ret = vmic_rx_stash(&rx, p + off - kept, kept);
			kept = 0;
		}
	}
	if (keep && res.ret == 0)
		res.ret = vmic_rx_stash(&rx, p + off - kept, kept);
	FUZZ_CHECK(res.ret == 0 || res.ret == -EBADMSG ||
		   res.ret == -EMSGSIZE);
	FUZZ_CHECK(!resync || res.ret == 0);
	/* Memory held between feeds is at most one frame. */
	FUZZ_CHECK(rx.len <= VMIC_MAX_FRAME);
	res.dropped = rx.dropped;
	res.carried = rx.len;
	vmic_rx_free(&rx);
	return res;
}

/*
 * Give each header found by walking the stream frame by frame a valid
 * check. Bytes between frames that do not start with the magic are
 * stepped over one at a time.
 */
static void seal_headers(uint8_t *p, size_t n)
{
	size_t off = 0;

	while (off + VMIC_HDR_SIZE <= n) {
		struct vmic_frame f;

		if (vmic_get_le32(p + off) != VMIC_MAGIC) {
			off++;
			continue;
		}
		f.length = vmic_get_le32(p + off + 4);
		f.service = p[off + 8];
		f.type = p[off + 9];
		f.flags = vmic_get_le16(p + off + 10);
		f.request_id = vmic_get_le32(p + off + 12);
		f.stream_id = vmic_get_le32(p + off + 16);
		vmic_frame_put_header(p + off, &f);
		off += VMIC_HDR_SIZE;
		if (f.length <= n - off)
			off += f.length;
	}
}

static struct run whole, chunked;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = NULL; /* exactly sized, so ASan sees overreads */
	uint64_t seed;
	size_t maxchunk;

	if (size < 2)
		return 0;
	seed = data[0];
	maxchunk = 1 + (size_t)(data[1] & 0x3F);
	if (data[1] & 0x80) {
		copy = malloc(size - 2 ? size - 2 : 1);
		if (!copy)
			return 0;
		memcpy(copy, data + 2, size - 2);
		seal_headers(copy, size - 2);
		data = copy;
	} else {
		data += 2;
	}
	size -= 2;
	for (int resync = 0; resync <= 1; resync++) {
		struct result a = feed(&whole, resync, data, size, 0, 0, false);

		for (int keep = 0; keep <= 1; keep++) {
			struct result b = feed(&chunked, resync, data, size,
					       seed, maxchunk, keep);

			FUZZ_CHECK(a.ret == b.ret);
			FUZZ_CHECK(whole.frames == chunked.frames);
			FUZZ_CHECK(memcmp(whole.hashes, chunked.hashes,
					  sizeof(whole.hashes[0]) *
						  (whole.frames < MAX_SEEN
							   ? whole.frames
							   : MAX_SEEN)) == 0);
			if (a.ret == 0) {
				FUZZ_CHECK(a.dropped == b.dropped);
				FUZZ_CHECK(a.carried == b.carried);
				FUZZ_CHECK(a.dropped + a.carried <= size);
			}
		}
	}
	free(copy);
	return 0;
}
