/* SPDX-License-Identifier: MIT */
/* src/proto/frame.c: header codec and the receive decoder. */
#include <errno.h>

#include "testutil.h"

#include "common/wire.h"
#include "proto/frame.h"

/* What the decoder delivered, with the payload reduced to a hash. */
struct seen {
	struct vmic_frame f;
	uint64_t hash;
};

struct collector {
	struct seen *v;
	size_t n, cap;
	int stop_at;  /* return stop_ret for the frame with this index */
	int stop_ret;
};

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xCBF29CE484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001B3ull;
	return h;
}

static int collect(void *ud, const struct vmic_frame *f)
{
	struct collector *c = ud;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 16;
		c->v = realloc(c->v, c->cap * sizeof(*c->v));
		assert_non_null(c->v);
	}
	assert_true(f->length == 0 || f->payload != NULL);
	c->v[c->n].f = *f;
	c->v[c->n].f.payload = NULL;
	c->v[c->n].hash = fnv1a(f->payload, f->length);
	c->n++;
	if (c->stop_at >= 0 && (size_t)c->stop_at == c->n - 1)
		return c->stop_ret;
	return 0;
}

static void collector_init(struct collector *c)
{
	memset(c, 0, sizeof(*c));
	c->stop_at = -1;
}

static void collector_free(struct collector *c)
{
	free(c->v);
	memset(c, 0, sizeof(*c));
}

static void assert_same_frames(const struct collector *a,
			       const struct collector *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		const struct vmic_frame *x = &a->v[i].f, *y = &b->v[i].f;

		assert_int_equal(x->service, y->service);
		assert_int_equal(x->type, y->type);
		assert_int_equal(x->flags, y->flags);
		assert_int_equal(x->request_id, y->request_id);
		assert_int_equal(x->stream_id, y->stream_id);
		assert_int_equal(x->length, y->length);
		assert_true(a->v[i].hash == b->v[i].hash);
	}
}

/* Append a frame with a patterned payload of len bytes to buf. */
static size_t put_frame(uint8_t *buf, size_t cap, uint8_t service,
			uint8_t type, uint32_t req, uint32_t stream,
			uint32_t len, uint8_t fill)
{
	uint8_t *payload = malloc(len ? len : 1);
	struct vmic_frame f = {
		.service = service,
		.type = type,
		.flags = VMIC_F_REPLY,
		.request_id = req,
		.stream_id = stream,
		.length = len,
		.payload = payload,
	};
	int n;

	for (uint32_t i = 0; i < len; i++)
		payload[i] = (uint8_t)(fill + i * 7);
	n = vmic_frame_encode(buf, cap, &f);
	free(payload);
	assert_int_equal(n, (int)(VMIC_HDR_SIZE + len));
	return (size_t)n;
}

static size_t put_hello(uint8_t *buf, size_t cap, uint32_t req)
{
	return put_frame(buf, cap, VMIC_SVC_CONTROL, VMIC_CTL_HELLO, req, 0,
			 40, 'h');
}

/* Feed buf in chunks whose sizes come from `sizes` (cycled). */
static int feed_chunks(struct vmic_rx *rx, const uint8_t *buf, size_t n,
		       const size_t *sizes, size_t nsizes,
		       struct collector *c)
{
	size_t off = 0, k = 0;
	int r = 0;

	while (off < n && r >= 0) {
		size_t take = MIN(sizes[k++ % nsizes], n - off);

		r = vmic_rx_feed(rx, buf + off, take, collect, c);
		off += take;
	}
	return r;
}

static int feed_random(struct vmic_rx *rx, const uint8_t *buf, size_t n,
		       uint64_t seed, size_t maxchunk, struct collector *c)
{
	size_t off = 0;
	int r = 0;

	while (off < n && r >= 0) {
		size_t take = 1 + (size_t)(tu_rand(&seed) % maxchunk);

		take = MIN(take, n - off);
		r = vmic_rx_feed(rx, buf + off, take, collect, c);
		off += take;
	}
	return r;
}

/*
 * What a link does with vmic_rx_feed_keep: keep the undecoded tail in its
 * own buffer and read the next bytes behind it; now and then (when another
 * link needs the buffer) hand the tail to the decoder with vmic_rx_stash.
 * At the end the tail is stashed, so the decoder holds what vmic_rx_feed
 * would have kept.
 */
static int feed_keep_random(struct vmic_rx *rx, const uint8_t *buf, size_t n,
			    uint64_t seed, size_t maxchunk,
			    struct collector *c)
{
	/* The bytes kept are always the last ones read, so a copy of the
	 * whole input serves as the reader's buffer: [off - kept, off). */
	uint8_t *mine = malloc(n + 1);
	size_t kept = 0, off = 0;
	int r = 0;

	assert_non_null(mine);
	memcpy(mine, buf, n);
	while (off < n) {
		size_t take = 1 + (size_t)(tu_rand(&seed) % maxchunk);
		ssize_t used;

		take = MIN(take, n - off);
		off += take;
		used = vmic_rx_feed_keep(rx, mine + off - take - kept,
					 kept + take, collect, c);
		if (used < 0) {
			r = (int)used;
			break;
		}
		assert_true((size_t)used <= kept + take);
		kept = kept + take - (size_t)used;
		if (kept && tu_rand(&seed) % 4 == 0) {
			assert_int_equal(vmic_rx_stash(rx, mine + off - kept,
						       kept),
					 0);
			kept = 0;
		}
	}
	if (r == 0)
		r = vmic_rx_stash(rx, mine + off - kept, kept);
	free(mine);
	return r;
}

static void test_header_roundtrip(void **state)
{
	uint64_t seed = 7;
	uint8_t hdr[VMIC_HDR_SIZE];

	(void)state;
	for (int i = 0; i < 1000; i++) {
		struct vmic_frame in = {
			.service = (uint8_t)tu_rand(&seed),
			.type = (uint8_t)tu_rand(&seed),
			.flags = (uint16_t)tu_rand(&seed),
			.request_id = (uint32_t)tu_rand(&seed),
			.stream_id = (uint32_t)tu_rand(&seed),
			.length = (uint32_t)(tu_rand(&seed) %
					     (VMIC_MAX_PAYLOAD + 1)),
		};
		struct vmic_frame out;

		memset(&out, 0xAA, sizeof(out));
		vmic_frame_put_header(hdr, &in);
		assert_int_equal(vmic_get_le32(hdr), VMIC_MAGIC);
		assert_memory_equal(hdr, "VMIC", 4);
		assert_int_equal(vmic_get_le32(hdr + 4), in.length);
		assert_int_equal(vmic_frame_parse_header(hdr, &out), 0);
		assert_int_equal(out.service, in.service);
		assert_int_equal(out.type, in.type);
		/* Unknown flag bits are carried, not refused. */
		assert_int_equal(out.flags, in.flags);
		assert_int_equal(out.request_id, in.request_id);
		assert_int_equal(out.stream_id, in.stream_id);
		assert_int_equal(out.length, in.length);
		assert_null(out.payload);
	}
}

static void test_header_corruption(void **state)
{
	struct vmic_frame f = { .service = 1, .type = 2, .request_id = 3,
				.length = 10 };
	uint8_t hdr[VMIC_HDR_SIZE], bad[VMIC_HDR_SIZE];
	struct vmic_frame out;

	(void)state;
	vmic_frame_put_header(hdr, &f);
	/* Any single flipped bit anywhere in the header is caught. */
	for (size_t i = 0; i < VMIC_HDR_SIZE; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(bad, hdr, sizeof(hdr));
			bad[i] ^= (uint8_t)(1u << bit);
			if (vmic_frame_parse_header(bad, &out) != -EBADMSG)
				fail_msg("bit %d of byte %zu not detected",
					 bit, i);
		}
	}
	/* Wrong magic, even with a check computed over it, is refused. */
	memcpy(bad, hdr, sizeof(hdr));
	memcpy(bad, "VMIX", 4);
	assert_int_equal(vmic_frame_parse_header(bad, &out), -EBADMSG);
}

static void test_header_length_limit(void **state)
{
	struct vmic_frame f = { .service = 1, .type = 1 };
	uint8_t hdr[VMIC_HDR_SIZE], small[VMIC_HDR_SIZE + 4];
	struct vmic_frame out;

	(void)state;
	f.length = VMIC_MAX_PAYLOAD;
	vmic_frame_put_header(hdr, &f);
	assert_int_equal(vmic_frame_parse_header(hdr, &out), 0);
	f.length = VMIC_MAX_PAYLOAD + 1;
	vmic_frame_put_header(hdr, &f);
	assert_int_equal(vmic_frame_parse_header(hdr, &out), -EMSGSIZE);
	f.length = 0xFFFFFFFFu;
	vmic_frame_put_header(hdr, &f);
	assert_int_equal(vmic_frame_parse_header(hdr, &out), -EMSGSIZE);

	/* The encoder refuses what the decoder would refuse. */
	f.length = VMIC_MAX_PAYLOAD + 1;
	assert_int_equal(vmic_frame_encode(small, sizeof(small), &f),
			 -EMSGSIZE);
	f.length = 5;
	f.payload = (const uint8_t *)"abcde";
	assert_int_equal(vmic_frame_encode(small, sizeof(small), &f),
			 -EMSGSIZE);
	f.length = 4;
	assert_int_equal(vmic_frame_encode(small, sizeof(small), &f),
			 VMIC_HDR_SIZE + 4);
	assert_memory_equal(small + VMIC_HDR_SIZE, "abcd", 4);
}

/* A reference stream: assorted frames, including empty payloads. */
static size_t make_stream(uint8_t *buf, size_t cap)
{
	size_t n = 0;

	n += put_frame(buf + n, cap - n, 1, 1, 1, 0, 8, 'a');
	n += put_frame(buf + n, cap - n, 0, 0xFD, 2, 5, 0, 0);
	n += put_frame(buf + n, cap - n, 2, 2, 3, 0, 1, 'V');
	n += put_frame(buf + n, cap - n, 6, 0xFE, 0, 9, 100, 'V');
	n += put_hello(buf + n, cap - n, 4);
	n += put_frame(buf + n, cap - n, 1, 2, 5, 0, 23, 'x');
	return n;
}

static void test_feed_whole(void **state)
{
	uint8_t buf[1024];
	size_t n = make_stream(buf, sizeof(buf));
	struct collector c;
	struct vmic_rx rx;

	(void)state;
	collector_init(&c);
	vmic_rx_init(&rx, false);
	assert_int_equal(vmic_rx_feed(&rx, buf, n, collect, &c), 0);
	assert_int_equal(c.n, 6);
	assert_int_equal(c.v[0].f.service, 1);
	assert_int_equal(c.v[0].f.length, 8);
	assert_int_equal(c.v[1].f.type, 0xFD);
	assert_int_equal(c.v[1].f.stream_id, 5);
	assert_int_equal(c.v[1].f.length, 0);
	assert_int_equal(c.v[3].f.length, 100);
	assert_int_equal(c.v[4].f.type, VMIC_CTL_HELLO);
	assert_int_equal(c.v[5].f.request_id, 5);
	assert_int_equal(rx.len, 0);
	assert_int_equal(rx.dropped, 0);
	vmic_rx_free(&rx);
	collector_free(&c);
}

/* Splitting the stream anywhere, once or twice, changes nothing. */
static void test_feed_every_split(void **state)
{
	uint8_t buf[1024];
	size_t n = make_stream(buf, sizeof(buf));
	struct collector ref, c;
	struct vmic_rx rx;

	(void)state;
	collector_init(&ref);
	vmic_rx_init(&rx, false);
	assert_int_equal(vmic_rx_feed(&rx, buf, n, collect, &ref), 0);
	vmic_rx_free(&rx);

	for (size_t i = 0; i <= n; i++) {
		for (size_t j = i; j <= n; j += (i % 7 == 0 ? 1 : 13)) {
			collector_init(&c);
			vmic_rx_init(&rx, false);
			assert_int_equal(vmic_rx_feed(&rx, buf, i, collect, &c),
					 0);
			assert_int_equal(
				vmic_rx_feed(&rx, buf + i, j - i, collect, &c),
				0);
			assert_int_equal(vmic_rx_feed(&rx, buf + j, n - j,
						      collect, &c),
					 0);
			assert_same_frames(&ref, &c);
			assert_int_equal(rx.len, 0);
			vmic_rx_free(&rx);
			collector_free(&c);
		}
	}

	/* One byte at a time. */
	collector_init(&c);
	vmic_rx_init(&rx, false);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(vmic_rx_feed(&rx, buf + i, 1, collect, &c), 0);
	assert_same_frames(&ref, &c);
	vmic_rx_free(&rx);
	collector_free(&c);
	collector_free(&ref);
}

static void test_feed_many_frames(void **state)
{
	enum { COUNT = 2000 };
	uint8_t *buf = malloc(COUNT * (VMIC_HDR_SIZE + 16));
	size_t n = 0;
	struct collector c;
	struct vmic_rx rx;

	(void)state;
	for (uint32_t i = 0; i < COUNT; i++)
		n += put_frame(buf + n, COUNT * (VMIC_HDR_SIZE + 16) - n, 1,
			       1, i, 0, i % 17, (uint8_t)i);
	collector_init(&c);
	vmic_rx_init(&rx, false);
	assert_int_equal(vmic_rx_feed(&rx, buf, n, collect, &c), 0);
	assert_int_equal(c.n, COUNT);
	for (uint32_t i = 0; i < COUNT; i++) {
		assert_int_equal(c.v[i].f.request_id, i);
		assert_int_equal(c.v[i].f.length, i % 17);
	}
	/* Whole frames straight from the caller's buffer: nothing kept. */
	assert_null(rx.buf);
	vmic_rx_free(&rx);
	collector_free(&c);
	free(buf);
}

static void test_feed_max_payload(void **state)
{
	size_t cap = 2 * VMIC_MAX_FRAME + 64;
	uint8_t *buf = malloc(cap);
	size_t n = 0, big;
	struct collector ref, c;
	struct vmic_rx rx;

	(void)state;
	big = put_frame(buf, cap, 6, 0xFE, 1, 3, VMIC_MAX_PAYLOAD, 'B');
	assert_int_equal(big, VMIC_MAX_FRAME);
	n = big;
	n += put_frame(buf + n, cap - n, 1, 1, 2, 0, 8, 's');

	collector_init(&ref);
	vmic_rx_init(&rx, false);
	assert_int_equal(vmic_rx_feed(&rx, buf, n, collect, &ref), 0);
	assert_int_equal(ref.n, 2);
	assert_int_equal(ref.v[0].f.length, VMIC_MAX_PAYLOAD);
	vmic_rx_free(&rx);

	for (uint64_t seed = 1; seed <= 4; seed++) {
		collector_init(&c);
		vmic_rx_init(&rx, false);
		assert_int_equal(feed_random(&rx, buf, n, seed,
					     seed == 1 ? 100 : 70000, &c),
				 0);
		assert_same_frames(&ref, &c);
		/* The carry buffer of the big frame is gone. */
		assert_true(rx.cap <= 4096);
		vmic_rx_free(&rx);
		collector_free(&c);
	}
	collector_free(&ref);
	free(buf);
}

static void test_feed_keeps_truncated_input(void **state)
{
	uint8_t buf[256];
	size_t n = put_frame(buf, sizeof(buf), 2, 1, 77, 0, 50, 'q');
	struct collector c;
	struct vmic_rx rx;

	(void)state;
	collector_init(&c);
	vmic_rx_init(&rx, false);
	/* Half a header. */
	assert_int_equal(vmic_rx_feed(&rx, buf, 10, collect, &c), 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(rx.len, 10);
	/* The header and part of the payload. */
	assert_int_equal(vmic_rx_feed(&rx, buf + 10, 30, collect, &c), 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(rx.len, 40);
	/* The rest. */
	assert_int_equal(vmic_rx_feed(&rx, buf + 40, n - 40, collect, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.v[0].f.request_id, 77);
	assert_int_equal(c.v[0].f.length, 50);
	assert_true(c.v[0].hash == fnv1a(buf + VMIC_HDR_SIZE, 50));
	assert_int_equal(rx.len, 0);
	/* A feed of nothing is harmless. */
	assert_int_equal(vmic_rx_feed(&rx, buf, 0, collect, &c), 0);
	assert_int_equal(c.n, 1);
	vmic_rx_free(&rx);
	collector_free(&c);
}

static void test_strict_mode_errors(void **state)
{
	uint8_t buf[512];
	size_t n;
	struct collector c;
	struct vmic_rx rx;
	struct vmic_frame f = { .service = 1, .type = 1,
				.length = VMIC_MAX_PAYLOAD + 1 };

	(void)state;
	/* A good frame, then garbage: the frame arrives, then -EBADMSG. */
	n = put_frame(buf, sizeof(buf), 1, 1, 1, 0, 4, 'g');
	memcpy(buf + n, "garbage garbage garbage garbage", 31);
	collector_init(&c);
	vmic_rx_init(&rx, false);
	assert_int_equal(vmic_rx_feed(&rx, buf, n + 31, collect, &c),
			 -EBADMSG);
	assert_int_equal(c.n, 1);
	vmic_rx_free(&rx);
	collector_free(&c);

	/* The same when the garbage arrives byte by byte. */
	collector_init(&c);
	vmic_rx_init(&rx, false);
	{
		size_t one = 1;

		assert_int_equal(feed_chunks(&rx, buf, n + 31, &one, 1, &c),
				 -EBADMSG);
	}
	assert_int_equal(c.n, 1);
	vmic_rx_free(&rx);
	collector_free(&c);

	/* A well-formed header announcing too much: -EMSGSIZE. */
	vmic_frame_put_header(buf, &f);
	collector_init(&c);
	vmic_rx_init(&rx, false);
	assert_int_equal(vmic_rx_feed(&rx, buf, VMIC_HDR_SIZE, collect, &c),
			 -EMSGSIZE);
	vmic_rx_free(&rx);
	vmic_rx_init(&rx, false);
	assert_int_equal(vmic_rx_feed(&rx, buf, 5, collect, &c), 0);
	assert_int_equal(vmic_rx_feed(&rx, buf + 5, 19, collect, &c),
			 -EMSGSIZE);
	assert_int_equal(c.n, 0);
	vmic_rx_free(&rx);
	collector_free(&c);
}

/*
 * Bytes an agent restart leaves in a virtio-serial port: noise full of
 * 'V's, partial magics, a header with a good check but an absurd length,
 * and whole frames that are not hellos. Returns their length.
 */
static size_t make_garbage(uint8_t *buf, size_t cap)
{
	struct vmic_frame absurd = { .service = 0, .type = VMIC_CTL_HELLO,
				     .length = 0x7FFFFFF0u };
	size_t n = 0;

	memcpy(buf + n, "VVVV xx V VM VMI VMIC", 21);
	n += 21;
	memcpy(buf + n, "VMIC\x10\x00\x00\x00", 8); /* magic, no check */
	n += 8;
	vmic_frame_put_header(buf + n, &absurd);
	n += VMIC_HDR_SIZE;
	n += put_frame(buf + n, cap - n, 1, 1, 9, 0, 8, 'V');
	n += put_frame(buf + n, cap - n, 1, 1, 10, 0, 30, 'V');
	/* A hello header with one bad byte. */
	n += put_hello(buf + n, cap - n, 11);
	buf[n - 40 - 3] ^= 0x40;
	memcpy(buf + n, "..VMI", 5);
	n += 5;
	return n;
}

static void test_resync_skips_to_hello(void **state)
{
	uint8_t buf[1024];
	size_t g, n;
	struct collector ref, c;
	struct vmic_rx rx;

	(void)state;
	g = make_garbage(buf, sizeof(buf));
	n = g + put_hello(buf + g, sizeof(buf) - g, 42);
	n += put_frame(buf + n, sizeof(buf) - n, 1, 2, 43, 0, 11, 'r');

	collector_init(&ref);
	vmic_rx_init(&rx, true);
	assert_int_equal(vmic_rx_feed(&rx, buf, n, collect, &ref), 0);
	assert_int_equal(ref.n, 2);
	assert_int_equal(ref.v[0].f.type, VMIC_CTL_HELLO);
	assert_int_equal(ref.v[0].f.request_id, 42);
	/* After the hello, ordinary frames pass again. */
	assert_int_equal(ref.v[1].f.request_id, 43);
	assert_int_equal(rx.dropped, g);
	assert_false(rx.resyncing);
	vmic_rx_free(&rx);

	/* Same result and count however the bytes are cut. */
	for (size_t i = 0; i <= n; i++) {
		collector_init(&c);
		vmic_rx_init(&rx, true);
		assert_int_equal(vmic_rx_feed(&rx, buf, i, collect, &c), 0);
		assert_int_equal(vmic_rx_feed(&rx, buf + i, n - i, collect,
					      &c),
				 0);
		assert_same_frames(&ref, &c);
		assert_int_equal(rx.dropped, g);
		vmic_rx_free(&rx);
		collector_free(&c);
	}
	for (uint64_t seed = 1; seed < 50; seed++) {
		collector_init(&c);
		vmic_rx_init(&rx, true);
		assert_int_equal(feed_random(&rx, buf, n, seed, 1 + seed, &c),
				 0);
		assert_same_frames(&ref, &c);
		assert_int_equal(rx.dropped, g);
		vmic_rx_free(&rx);
		collector_free(&c);
	}
	collector_free(&ref);
}

/* With resync on, a good stream is not disturbed; errors start a hunt. */
static void test_resync_mode_normal_traffic(void **state)
{
	uint8_t buf[1024];
	size_t n = make_stream(buf, sizeof(buf)), m;
	struct collector c;
	struct vmic_rx rx;

	(void)state;
	collector_init(&c);
	vmic_rx_init(&rx, true);
	assert_int_equal(vmic_rx_feed(&rx, buf, n, collect, &c), 0);
	assert_int_equal(c.n, 6);
	assert_int_equal(rx.dropped, 0);

	/* Noise mid-stream, then non-hello frames: all dropped. */
	m = 0;
	memcpy(buf, "noise", 5);
	m = 5;
	m += put_frame(buf + m, sizeof(buf) - m, 1, 1, 100, 0, 3, 'z');
	assert_int_equal(vmic_rx_feed(&rx, buf, m, collect, &c), 0);
	assert_int_equal(c.n, 6);
	assert_true(rx.resyncing);
	assert_int_equal(rx.dropped + rx.len, m);
	m = put_hello(buf, sizeof(buf), 101);
	assert_int_equal(vmic_rx_feed(&rx, buf, m, collect, &c), 0);
	assert_int_equal(c.n, 7);
	assert_int_equal(c.v[6].f.request_id, 101);
	vmic_rx_free(&rx);
	collector_free(&c);
}

/*
 * While hunting, bytes that cannot start a frame are dropped as they
 * arrive, however the input is cut: the count does not depend on it.
 */
static void test_resync_drops_noise_promptly(void **state)
{
	uint8_t buf[256];
	size_t n;
	struct collector c;
	struct vmic_rx rx;

	(void)state;
	collector_init(&c);
	vmic_rx_init(&rx, true);
	memset(buf, 'x', 30);
	assert_int_equal(vmic_rx_feed(&rx, buf, 30, collect, &c), 0);
	assert_true(rx.resyncing);
	assert_int_equal(rx.dropped, 30);
	/* A short piece of noise: nothing in it is worth keeping. */
	assert_int_equal(vmic_rx_feed(&rx, "abc", 3, collect, &c), 0);
	assert_int_equal(rx.dropped, 33);
	assert_int_equal(rx.len, 0);
	/* Noise, then what may be the start of a magic: keep from 'V'. */
	assert_int_equal(vmic_rx_feed(&rx, "zzVMI", 5, collect, &c), 0);
	assert_int_equal(rx.dropped, 35);
	assert_int_equal(rx.len, 3);
	/* It was not; the hello that follows is found all the same. */
	n = put_hello(buf, sizeof(buf), 9);
	assert_int_equal(vmic_rx_feed(&rx, buf, n, collect, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.v[0].f.request_id, 9);
	assert_int_equal(rx.dropped, 38);
	assert_false(rx.resyncing);

	/* The carry empties mid-feed and leaves a short noisy tail. */
	vmic_rx_reset(&rx, true);
	rx.dropped = 0;
	memset(buf, 'y', 26);
	assert_int_equal(vmic_rx_feed(&rx, buf, 22, collect, &c), 0);
	assert_int_equal(vmic_rx_feed(&rx, buf, 4, collect, &c), 0);
	assert_int_equal(rx.dropped, 26);
	assert_int_equal(rx.len, 0);
	vmic_rx_free(&rx);
	collector_free(&c);
}

/* vmic_rx_reset(rx, true) hunts for a hello even in strict mode. */
static void test_reset_resync(void **state)
{
	uint8_t buf[512];
	size_t n = 0, g;
	struct collector c;
	struct vmic_rx rx;

	(void)state;
	n += put_frame(buf, sizeof(buf), 1, 1, 1, 0, 20, 'a');
	collector_init(&c);
	vmic_rx_init(&rx, false);
	/* Half a frame is pending when the reset comes. */
	assert_int_equal(vmic_rx_feed(&rx, buf, 30, collect, &c), 0);
	vmic_rx_reset(&rx, true);
	assert_int_equal(rx.len, 0);
	g = make_garbage(buf, sizeof(buf));
	n = g + put_hello(buf + g, sizeof(buf) - g, 5);
	n += put_frame(buf + n, sizeof(buf) - n, 1, 1, 6, 0, 2, 'b');
	assert_int_equal(vmic_rx_feed(&rx, buf, n, collect, &c), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.v[0].f.request_id, 5);
	assert_int_equal(c.v[1].f.request_id, 6);
	assert_int_equal(rx.dropped, g);
	/* Back in strict mode: garbage is an error again. */
	assert_int_equal(vmic_rx_feed(&rx, "xxxxxxxxxxxxxxxxxxxxxxxxxxxx", 28,
				      collect, &c),
			 -EBADMSG);
	vmic_rx_free(&rx);
	collector_free(&c);
}

static void test_callback_stops_feed(void **state)
{
	uint8_t buf[1024];
	size_t n = make_stream(buf, sizeof(buf));
	struct collector c;
	struct vmic_rx rx;

	(void)state;
	/* Whole frames from the caller's buffer. */
	collector_init(&c);
	c.stop_at = 2;
	c.stop_ret = -1234;
	vmic_rx_init(&rx, false);
	assert_int_equal(vmic_rx_feed(&rx, buf, n, collect, &c), -1234);
	assert_int_equal(c.n, 3);
	vmic_rx_free(&rx);
	collector_free(&c);

	/* A frame completed from the carry buffer. */
	collector_init(&c);
	c.stop_at = 0;
	c.stop_ret = -ECANCELED;
	vmic_rx_init(&rx, false);
	assert_int_equal(vmic_rx_feed(&rx, buf, 20, collect, &c), 0);
	assert_int_equal(vmic_rx_feed(&rx, buf + 20, n - 20, collect, &c),
			 -ECANCELED);
	assert_int_equal(c.n, 1);
	vmic_rx_free(&rx);
	collector_free(&c);
}

static void test_carry_memory(void **state)
{
	size_t cap = VMIC_MAX_FRAME + 1024;
	uint8_t *buf = malloc(cap);
	size_t n, small;
	struct collector c;
	struct vmic_rx rx;

	(void)state;
	n = put_frame(buf, cap, 6, 0xFE, 1, 3, 200000, 'm');
	small = put_frame(buf + n, cap - n, 1, 1, 2, 0, 10, 's');
	collector_init(&c);
	vmic_rx_init(&rx, false);
	/* Most of the big frame: held in the carry buffer. */
	assert_int_equal(vmic_rx_feed(&rx, buf, n - 1, collect, &c), 0);
	assert_int_equal(rx.len, n - 1);
	assert_true(rx.cap >= n - 1);
	/* Its last byte plus half of a small frame. */
	assert_int_equal(vmic_rx_feed(&rx, buf + n - 1, 1 + small / 2,
				      collect, &c),
			 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.v[0].f.length, 200000);
	assert_true(rx.cap <= 4096);
	assert_int_equal(rx.len, small / 2);
	assert_int_equal(vmic_rx_feed(&rx, buf + n + small / 2,
				      small - small / 2, collect, &c),
			 0);
	assert_int_equal(c.n, 2);

	/* Big frame completing exactly at the end of a feed: all freed. */
	assert_int_equal(vmic_rx_feed(&rx, buf, 1000, collect, &c), 0);
	assert_int_equal(vmic_rx_feed(&rx, buf + 1000, n - 1000, collect, &c),
			 0);
	assert_int_equal(c.n, 3);
	assert_null(rx.buf);
	assert_int_equal(rx.cap, 0);

	/* vmic_rx_reset with a big partial frame frees it too. */
	assert_int_equal(vmic_rx_feed(&rx, buf, 100000, collect, &c), 0);
	vmic_rx_reset(&rx, false);
	assert_null(rx.buf);
	vmic_rx_free(&rx);
	vmic_rx_free(&rx); /* twice is harmless */
	collector_free(&c);
	free(buf);
}

/* Only requests may be answered with an error frame. */
/* Keeping the tail outside the decoder yields the same frames and drops. */
static void test_feed_keep(void **state)
{
	static uint8_t buf[3 * VMIC_MAX_FRAME];
	struct collector ref, c;
	struct vmic_rx rx, rref;
	size_t n = 0;

	(void)state;
	n += make_garbage(buf, sizeof(buf));
	n += put_hello(buf + n, sizeof(buf) - n, 1);
	n += make_stream(buf + n, sizeof(buf) - n);
	n += put_frame(buf + n, sizeof(buf) - n, 6, 0xFE, 0, 9,
		       VMIC_STREAM_CHUNK, 'c');
	n += put_frame(buf + n, sizeof(buf) - n, 6, 0xFE, 0, 9,
		       VMIC_MAX_PAYLOAD, 'm');
	n += put_frame(buf + n, sizeof(buf) - n, 1, 2, 5, 0, 23, 'x');
	n -= 7; /* end inside the last frame */
	for (int resync = 0; resync <= 1; resync++) {
		size_t start = resync ? 0 : make_garbage(buf, sizeof(buf));

		collector_init(&ref);
		vmic_rx_init(&rref, resync);
		assert_int_equal(vmic_rx_feed(&rref, buf + start, n - start,
					      collect, &ref),
				 0);
		assert_int_equal(ref.n, 9);
		for (uint64_t seed = 1; seed < 40; seed++) {
			size_t maxchunk = seed < 20 ? 1 + seed * 7 : 70000;

			collector_init(&c);
			vmic_rx_init(&rx, resync);
			assert_int_equal(feed_keep_random(&rx, buf + start,
							  n - start, seed,
							  maxchunk, &c),
					 0);
			assert_same_frames(&ref, &c);
			assert_true(rx.dropped == rref.dropped);
			assert_int_equal(rx.len, rref.len);
			assert_memory_equal(rx.buf, rref.buf, rx.len);
			vmic_rx_free(&rx);
			collector_free(&c);
		}
		vmic_rx_free(&rref);
		collector_free(&ref);
	}
	/* Strict mode: garbage is the same error either way. */
	collector_init(&c);
	vmic_rx_init(&rx, false);
	assert_int_equal(feed_keep_random(&rx, buf, n, 3, 50, &c), -EBADMSG);
	vmic_rx_free(&rx);
	collector_free(&c);
}

/* The size a reader must make room for, from the bytes it keeps. */
static void test_frame_size(void **state)
{
	uint8_t buf[VMIC_HDR_SIZE + 100];
	struct vmic_frame big = { .length = VMIC_MAX_PAYLOAD + 1 };

	(void)state;
	put_frame(buf, sizeof(buf), 1, 1, 1, 0, 100, 'a');
	assert_int_equal(vmic_rx_frame_size(buf, 3), VMIC_HDR_SIZE);
	assert_int_equal(vmic_rx_frame_size(buf, VMIC_HDR_SIZE),
			 VMIC_HDR_SIZE + 100);
	vmic_frame_put_header(buf, &big);
	assert_int_equal(vmic_rx_frame_size(buf, VMIC_HDR_SIZE), VMIC_HDR_SIZE);
}

static void test_frame_is_request(void **state)
{
	struct vmic_frame f = { .service = VMIC_SVC_HEARTBEAT, .type = 1 };

	(void)state;
	assert_true(vmic_frame_is_request(&f));
	f.flags = VMIC_F_REPLY;
	assert_false(vmic_frame_is_request(&f));
	f.flags = 0;
	f.type = VMIC_T_ERROR;
	assert_false(vmic_frame_is_request(&f));
	f.type = VMIC_T_STREAM_DATA;
	assert_false(vmic_frame_is_request(&f));
	f.type = VMIC_T_STREAM_CREDIT;
	assert_false(vmic_frame_is_request(&f));
	f.type = VMIC_T_STREAM_RESET;
	assert_false(vmic_frame_is_request(&f));
	f.type = VMIC_T_STREAM_RESET - 1;
	assert_true(vmic_frame_is_request(&f));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_is_request),
		cmocka_unit_test(test_header_roundtrip),
		cmocka_unit_test(test_header_corruption),
		cmocka_unit_test(test_header_length_limit),
		cmocka_unit_test(test_feed_whole),
		cmocka_unit_test(test_feed_every_split),
		cmocka_unit_test(test_feed_many_frames),
		cmocka_unit_test(test_feed_max_payload),
		cmocka_unit_test(test_feed_keeps_truncated_input),
		cmocka_unit_test(test_strict_mode_errors),
		cmocka_unit_test(test_resync_skips_to_hello),
		cmocka_unit_test(test_resync_mode_normal_traffic),
		cmocka_unit_test(test_resync_drops_noise_promptly),
		cmocka_unit_test(test_reset_resync),
		cmocka_unit_test(test_callback_stops_feed),
		cmocka_unit_test(test_carry_memory),
		cmocka_unit_test(test_feed_keep),
		cmocka_unit_test(test_frame_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
