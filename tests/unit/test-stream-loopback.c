/* SPDX-License-Identifier: MIT */
/*
 * Streams end to end: two links over a socketpair(AF_UNIX) on one libuv
 * loop, no daemon and no service, with the real link, queue and stream
 * code (src/transport/link*.c, src/proto/).
 *
 * The big scenario sends 8 streams of 1 GiB each (64 MiB each under
 * sanitizers, and VMIC_LOOPBACK_MIB overrides) to a consumer that drains
 * from a 1 ms timer, slower than the sender, while small requests are
 * echoed beside them. It asserts, deterministically:
 *
 *   - every byte arrives intact (XXH3 of both ends) and in order;
 *   - the consumer never holds more than its window per stream: credit
 *     comes back only for bytes it consumed;
 *   - the memory bound of docs/protocol.md ("Streams and flow control"):
 *     the sender's user-space output stays under the bulk budget plus the
 *     chunk being written plus urgent frames (OUT_BOUND), the receiver's
 *     held stream bytes under 8 windows, a link's carry under one frame,
 *     and the sender's unread kernel bytes under 3 * VMIC_LINK_SNDBUF_MAX;
 *   - every request is answered, in order.
 *
 * Round trips and ru_maxrss are printed, not asserted: speed targets live
 * in bench/stream. Then a session restart in mid-stream must free
 * everything, and smaller tests check resets, END, limits and refusals.
 */
#include <errno.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <signal.h>

#include "testutil.h"
#include "tu-loop.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "common/wire.h"
#include "proto/control.h"
#include "proto/frame.h"
#include "transport/link.h"
#include "transport/transport-internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define NSTREAMS 8
#define PATTERN (1u << 20)
#define WRITE_MAX (256u * 1024)
/*
 * What the consumer drains per stream per 1 ms tick: slower than the
 * sender (which a sanitizer build slows down, hence its smaller rate),
 * fast enough for 8 GiB in about ten seconds.
 */
#define DRAIN_PER_TICK ((SANITIZED ? 16u : 128u) * 1024)
#define DATA_SVC VMIC_SVC_FILECOPY
#define PING_SVC VMIC_SVC_HEARTBEAT
#define PING_LEN 32
#define MAX_RTTS 100000
/*
 * Linux lets a unix socket take writes while less than its send buffer
 * (twice SO_SNDBUF) is unread, one more piece of up to half of it going
 * over: at most 3 * SO_SNDBUF, counted with the kernel's overhead. The
 * link raises SO_SNDBUF up to VMIC_LINK_SNDBUF_MAX while the socket drains
 * fast, as it does here; test-transport checks a slow reader.
 */
#define KERNEL_BOUND ((int)(3 * VMIC_LINK_SNDBUF_MAX))
/*
 * The sender's user-space output: the bulk budget, the one chunk being
 * written, and 64 KiB for urgent frames and frame headers.
 */
#define OUT_BOUND (VMIC_LINK_BULK_BUDGET + VMIC_HDR_SIZE + \
		   VMIC_STREAM_CHUNK + 64 * 1024)

static uint8_t pattern[PATTERN];

/* ---- fixture: one loop, two linked ends ------------------------------ */

struct side;

struct txs { /* a sending stream and its producer */
	struct side *side;
	struct vmic_stream *s;
	uint64_t total, sent, shift;
	XXH3_state_t *h;
	bool finished, closed;
	int reason;
	unsigned blocked;
};

struct rxs { /* a receiving stream and its slow consumer */
	struct side *side;
	struct vmic_stream *s;
	uint8_t *ring;
	size_t cap, head, held, peak;
	uint64_t got, consumed;
	XXH3_state_t *h;
	bool closed;
	int reason;
};

struct side {
	struct vmic_link link;
	bool closed;
	int close_reason;
	bool echo;         /* answer ping requests */
	uint32_t pings_in; /* requests seen (echo side) */
	uint32_t next_ping, answered, out_of_order;
	uint64_t *rtt;
	size_t nrtt;
	unsigned other_frames;
	struct txs tx[NSTREAMS];
	struct rxs rx[NSTREAMS];
};

struct fx {
	uv_loop_t loop;
	uv_timer_t drain, ping;
	struct side a, b; /* a sends the streams, b consumes and echoes */
	int kernel_peak;
	bool draining, pinging;
};

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)vmic_get_le32(p) | (uint64_t)vmic_get_le32(p + 4) << 32;
}

static int side_on_frame(void *ud, const struct vmic_frame *f)
{
	struct side *s = ud;
	uint8_t buf[VMIC_HDR_SIZE + PING_LEN];

	if (f->service != PING_SVC || f->length != PING_LEN) {
		s->other_frames++;
		return 0;
	}
	if (s->echo) {
		s->pings_in++;
		memcpy(buf + VMIC_HDR_SIZE, f->payload, PING_LEN);
		vmic_link_send(&s->link, buf,
			       vmic_frame_seal(buf, PING_SVC, 2, VMIC_F_REPLY,
					       f->request_id, 0, PING_LEN),
			       0);
		return 0;
	}
	if (f->request_id != s->answered)
		s->out_of_order++;
	s->answered = f->request_id + 1;
	if (s->rtt && s->nrtt < MAX_RTTS)
		s->rtt[s->nrtt++] = uv_hrtime() - get_le64(f->payload);
	return 0;
}

static void side_on_close(void *ud, int reason)
{
	struct side *s = ud;

	s->closed = true;
	s->close_reason = reason;
}

static const struct vmic_link_ops side_ops = {
	.on_frame = side_on_frame,
	.on_close = side_on_close,
};

static uv_stream_t *wrap(uv_loop_t *loop, int fd)
{
	int err = 0;
	uv_stream_t *s = sockfd_wrap(loop, fd, &err);

	assert_int_equal(err, 0);
	assert_non_null(s);
	return s;
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	int sv[2];

	if (!fx || uv_loop_init(&fx->loop) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	assert_int_equal(vmic_link_open(&fx->a.link, wrap(&fx->loop, sv[0]),
					false, &side_ops, &fx->a),
			 0);
	assert_int_equal(vmic_link_open(&fx->b.link, wrap(&fx->loop, sv[1]),
					false, &side_ops, &fx->b),
			 0);
	assert_int_equal(vmic_link_streams_attach(&fx->a.link, false, 0), 0);
	assert_int_equal(vmic_link_streams_attach(&fx->b.link, true, 0), 0);
	assert_int_equal(vmic_link_streams_attach(&fx->b.link, true, 0),
			 -EALREADY);
	fx->b.echo = true;
	uv_timer_init(&fx->loop, &fx->drain);
	uv_timer_init(&fx->loop, &fx->ping);
	fx->drain.data = fx->ping.data = fx;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	if (!fx->a.closed)
		vmic_link_close(&fx->a.link, 0);
	if (!fx->b.closed)
		vmic_link_close(&fx->b.link, 0);
	uv_close((uv_handle_t *)&fx->drain, NULL);
	uv_close((uv_handle_t *)&fx->ping, NULL);
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	for (int i = 0; i < NSTREAMS; i++) {
		XXH3_freeState(fx->a.tx[i].h);
		XXH3_freeState(fx->b.rx[i].h);
		free(fx->b.rx[i].ring);
	}
	free(fx->a.rtt);
	assert_int_equal(uv_loop_close(&fx->loop), 0);
	free(fx);
	return 0;
}

/* ---- producer --------------------------------------------------------- */

/* Write what credit and budget allow; finish after the last byte. */
static void tx_pump(struct txs *t)
{
	struct vmic_link *l = &t->side->link;

	while (t->sent < t->total) {
		size_t off = (size_t)((t->sent + t->shift) % PATTERN);
		size_t n = (size_t)MIN((uint64_t)(PATTERN - off),
				       t->total - t->sent);
		ssize_t r;

		n = MIN(n, (size_t)WRITE_MAX);
		r = vmic_link_stream_write(l, t->s, pattern + off, n);
		if (r == -EAGAIN) {
			t->blocked++;
			return;
		}
		assert_true(r > 0);
		XXH3_64bits_update(t->h, pattern + off, (size_t)r);
		t->sent += (uint64_t)r;
		if ((size_t)r < n) {
			t->blocked++;
			return;
		}
	}
	if (!t->finished) {
		t->finished = true;
		assert_int_equal(vmic_link_stream_finish(l, t->s), 0);
		assert_int_equal(vmic_link_stream_finish(l, t->s), -EPIPE);
	}
}

static void tx_writable(void *ud, struct vmic_stream *s)
{
	struct txs *t = ud;

	assert_ptr_equal(s, t->s);
	tx_pump(t);
}

static void tx_closed(void *ud, struct vmic_stream *s, int reason)
{
	struct txs *t = ud;

	assert_ptr_equal(s, t->s);
	assert_false(t->closed);
	t->closed = true;
	t->reason = reason;
	t->s = NULL;
}

static const struct vmic_stream_ops tx_ops = {
	.on_writable = tx_writable,
	.on_closed = tx_closed,
};

/* ---- slow consumer ---------------------------------------------------- */

static void rx_data(void *ud, struct vmic_stream *s, const uint8_t *p,
		    size_t n)
{
	struct rxs *r = ud;
	size_t tail = (r->head + r->held) % r->cap, first;

	assert_ptr_equal(s, r->s);
	/* Credit is only given for consumed bytes: never more than the
	 * window can be outstanding, so the ring never overflows. */
	if (r->held + n > r->cap)
		fail_msg("consumer holds %zu + %zu > window %zu", r->held, n,
			 r->cap);
	first = MIN(n, r->cap - tail);
	memcpy(r->ring + tail, p, first);
	memcpy(r->ring, p + first, n - first);
	r->held += n;
	r->got += n;
	r->peak = MAX(r->peak, r->held);
}

static void rx_closed(void *ud, struct vmic_stream *s, int reason)
{
	struct rxs *r = ud;

	assert_ptr_equal(s, r->s);
	assert_false(r->closed);
	r->closed = true;
	r->reason = reason;
	r->s = NULL;
}

static const struct vmic_stream_ops rx_ops = {
	.on_data = rx_data,
	.on_closed = rx_closed,
};

/* "Write out" up to max bytes: hash them, then report them consumed. */
static void rx_drain(struct rxs *r, size_t max)
{
	size_t take = MIN(r->held, max), first;

	if (take == 0)
		return;
	first = MIN(take, r->cap - r->head);
	XXH3_64bits_update(r->h, r->ring + r->head, first);
	XXH3_64bits_update(r->h, r->ring, take - first);
	r->head = (r->head + take) % r->cap;
	r->held -= take;
	r->consumed += take;
	if (r->s)
		vmic_link_stream_consumed(&r->side->link, r->s, take);
}

static void on_drain_tick(uv_timer_t *t)
{
	struct fx *fx = t->data;

	for (int i = 0; i < NSTREAMS; i++)
		rx_drain(&fx->b.rx[i], DRAIN_PER_TICK);
}

static void on_ping_tick(uv_timer_t *t)
{
	struct fx *fx = t->data;
	uint8_t buf[VMIC_HDR_SIZE + PING_LEN] = { 0 };
	struct vmic_link_stats st;
	uint64_t t0 = uv_hrtime();

	vmic_put_le32(buf + VMIC_HDR_SIZE, (uint32_t)t0);
	vmic_put_le32(buf + VMIC_HDR_SIZE + 4, (uint32_t)(t0 >> 32));
	assert_int_equal(vmic_link_send(&fx->a.link, buf,
					vmic_frame_seal(buf, PING_SVC, 1, 0,
							fx->a.next_ping++, 0,
							PING_LEN),
					0),
			 0);
	vmic_link_stats(&fx->a.link, &st);
	fx->kernel_peak = MAX(fx->kernel_peak, st.kernel_unsent);
}

/* Open stream i on both ends, as a service's opening request would. */
static void open_pair(struct fx *fx, int i, uint64_t total)
{
	struct txs *t = &fx->a.tx[i];
	struct rxs *r = &fx->b.rx[i];

	memset(t, 0, sizeof(*t));
	memset(r, 0, sizeof(*r));
	t->side = &fx->a;
	r->side = &fx->b;
	t->total = total;
	t->shift = (uint64_t)i * 4099;
	t->h = XXH3_createState();
	r->h = XXH3_createState();
	assert_non_null(t->h);
	assert_non_null(r->h);
	XXH3_64bits_reset(t->h);
	XXH3_64bits_reset(r->h);
	r->cap = VMIC_STREAM_WINDOW_DEFAULT;
	r->ring = malloc(r->cap);
	assert_non_null(r->ring);
	assert_int_equal(vmic_link_stream_open(&fx->a.link, 0, DATA_SVC,
					       VMIC_STREAM_SEND, 0, &tx_ops, t,
					       &t->s),
			 0);
	assert_int_equal(t->s->id & VMIC_STREAM_GUEST_BIT, 0);
	assert_int_equal(vmic_link_stream_open(&fx->b.link, t->s->id,
					       DATA_SVC, VMIC_STREAM_RECV, 0,
					       &rx_ops, r, &r->s),
			 0);
}

static void free_pair(struct fx *fx, int i)
{
	XXH3_freeState(fx->a.tx[i].h);
	XXH3_freeState(fx->b.rx[i].h);
	free(fx->b.rx[i].ring);
	fx->a.tx[i].h = NULL;
	fx->b.rx[i].h = NULL;
	fx->b.rx[i].ring = NULL;
}

static bool all_done(const struct fx *fx)
{
	for (int i = 0; i < NSTREAMS; i++)
		if (!fx->a.tx[i].closed || !fx->b.rx[i].closed ||
		    fx->b.rx[i].held)
			return false;
	return true;
}

static uint64_t stream_size(void)
{
	const char *env = getenv("VMIC_LOOPBACK_MIB");

	if (env && *env)
		return strtoull(env, NULL, 10) << 20;
	return SANITIZED ? 64ull << 20 : 1ull << 30;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

static void print_rtts(uint64_t *v, size_t n)
{
	if (n == 0)
		return;
	qsort(v, n, sizeof(*v), cmp_u64);
	print_message("# request/reply beside the streams: %zu round trips, "
		      "p50 %.3f ms, p99 %.3f ms, max %.3f ms (not asserted; "
		      "bench/stream checks the target)\n",
		      n, (double)v[n / 2] / 1e6, (double)v[n * 99 / 100] / 1e6,
		      (double)v[n - 1] / 1e6);
}

/* (a) + (b): 8 concurrent streams, a slow consumer, pings beside. */
static void test_eight_streams_slow_consumer(void **state)
{
	struct fx *fx = *state;
	uint64_t size = stream_size(), t0 = tu_now_ms();
	struct vmic_link_stats sa, sb;
	struct rusage ru;
	unsigned blocked = 0;

	print_message("# %d streams of %llu MiB%s\n", NSTREAMS,
		      (unsigned long long)(size >> 20),
		      SANITIZED ? " (scaled down: sanitizer build)" : "");
	fx->a.rtt = calloc(MAX_RTTS, sizeof(*fx->a.rtt));
	assert_non_null(fx->a.rtt);
	for (int i = 0; i < NSTREAMS; i++)
		open_pair(fx, i, size);
	vmic_link_stats(&fx->a.link, &sa);
	assert_int_equal(sa.streams, NSTREAMS);
	uv_timer_start(&fx->drain, on_drain_tick, 1, 1);
	uv_timer_start(&fx->ping, on_ping_tick, 2, 2);
	for (int i = 0; i < NSTREAMS; i++)
		tx_pump(&fx->a.tx[i]);
	TU_SPIN_UNTIL(&fx->loop, all_done(fx), 600000);
	uv_timer_stop(&fx->ping);
	uv_timer_stop(&fx->drain);
	TU_SPIN_UNTIL(&fx->loop, fx->a.answered == fx->a.next_ping, 5000);

	for (int i = 0; i < NSTREAMS; i++) {
		struct txs *t = &fx->a.tx[i];
		struct rxs *r = &fx->b.rx[i];

		assert_int_equal(t->reason, 0);
		assert_int_equal(r->reason, 0);
		assert_true(t->sent == size);
		assert_true(r->got == size && r->consumed == size);
		assert_true(XXH3_64bits_digest(t->h) ==
			    XXH3_64bits_digest(r->h));
		/* The consumer was the slower side: it fell half a window
		 * behind, and only credit kept it from falling further. */
		assert_true(r->peak >= VMIC_STREAM_WINDOW_DEFAULT / 2);
		assert_true(r->peak <= VMIC_STREAM_WINDOW_DEFAULT);
		blocked += t->blocked;
		free_pair(fx, i);
	}
	vmic_link_stats(&fx->a.link, &sa);
	vmic_link_stats(&fx->b.link, &sb);
	assert_true(blocked > NSTREAMS);
	/* The memory bound (docs/protocol.md). */
	assert_true(sa.peak_out <= OUT_BOUND);
	assert_true(sb.peak_out <= 64 * 1024);
	assert_true(sb.peak_rx_held <=
		    (size_t)NSTREAMS * VMIC_STREAM_WINDOW_DEFAULT);
	assert_true(sa.rx_carry <= VMIC_MAX_FRAME);
	assert_true(sb.rx_carry <= VMIC_MAX_FRAME);
	assert_true(fx->kernel_peak <= KERNEL_BOUND);
	/* Everything is back to zero. */
	assert_int_equal(sa.streams + sb.streams, 0);
	assert_int_equal(sa.bulk_queued + sa.urgent_queued + sa.writing, 0);
	assert_int_equal(sb.rx_held, 0);
	assert_int_equal(sa.stream_refused + sb.stream_refused, 0);
	/* Every ping was answered, in order. */
	assert_int_equal(fx->a.out_of_order, 0);
	assert_int_equal(fx->b.pings_in, fx->a.next_ping);
	getrusage(RUSAGE_SELF, &ru);
	print_message("# %.1f s; peak user-space output %zu KiB (bound %u), "
		      "receiver held %zu KiB (bound %u), kernel unread %d "
		      "bytes (bound %u), producers blocked %u times, "
		      "ru_maxrss %ld KiB\n",
		      (double)(tu_now_ms() - t0) / 1000, sa.peak_out / 1024,
		      OUT_BOUND / 1024,
		      sb.peak_rx_held / 1024,
		      NSTREAMS * VMIC_STREAM_WINDOW_DEFAULT / 1024,
		      fx->kernel_peak, KERNEL_BOUND, blocked,
		      ru.ru_maxrss);
	print_rtts(fx->a.rtt, fx->a.nrtt);
}

/* (c) A new session in mid-stream frees everything on both ends. */
static void test_session_restart_mid_stream(void **state)
{
	struct fx *fx = *state;
	struct vmic_link_stats sa, sb;

	for (int i = 0; i < NSTREAMS; i++)
		open_pair(fx, i, 1ull << 40); /* would never end */
	uv_timer_start(&fx->drain, on_drain_tick, 1, 1);
	for (int i = 0; i < NSTREAMS; i++)
		tx_pump(&fx->a.tx[i]);
	TU_SPIN_UNTIL(&fx->loop, fx->b.rx[NSTREAMS - 1].consumed > (8u << 20),
		      60000);

	/* What both daemons do on a new session. */
	vmic_link_streams_reset(&fx->a.link);
	vmic_link_streams_reset(&fx->b.link);
	for (int i = 0; i < NSTREAMS; i++) {
		assert_true(fx->a.tx[i].closed && fx->b.rx[i].closed);
		assert_int_equal(fx->a.tx[i].reason, -ECONNRESET);
		assert_int_equal(fx->b.rx[i].reason, -ECONNRESET);
		fx->b.rx[i].held = 0; /* the consumer drops what it holds */
	}
	vmic_link_stats(&fx->a.link, &sa);
	vmic_link_stats(&fx->b.link, &sb);
	assert_int_equal(sa.streams + sb.streams, 0);
	assert_int_equal(sa.bulk_queued, 0);
	assert_int_equal(sb.rx_held, 0);
	assert_null(fx->a.link.streams.slots);
	assert_null(fx->b.link.streams.slots);

	/* Late data of the old streams is refused with resets, which the
	 * sender ignores, as it ignores late credits; nothing else happens. */
	TU_SPIN_UNTIL(&fx->loop, vmic_link_queued(&fx->a.link) == 0 &&
			       vmic_link_queued(&fx->b.link) == 0,
		   5000);
	tu_spin_for(&fx->loop, 20);
	assert_false(fx->a.closed || fx->b.closed);
	assert_int_equal(fx->a.link.stream_refused, 0);
	assert_true(fx->a.link.stream_ignored >= fx->b.link.stream_refused);
	print_message("# after the reset: %llu late data frames refused, "
		      "%llu late resets and credits ignored\n",
		      (unsigned long long)fx->b.link.stream_refused,
		      (unsigned long long)fx->a.link.stream_ignored);
	for (int i = 0; i < NSTREAMS; i++)
		free_pair(fx, i);

	/* The new session carries streams again, with fresh ids. */
	open_pair(fx, 0, 3u << 20);
	assert_true(fx->a.tx[0].s->id > NSTREAMS);
	tx_pump(&fx->a.tx[0]);
	TU_SPIN_UNTIL(&fx->loop, fx->a.tx[0].closed && fx->b.rx[0].closed &&
			       fx->b.rx[0].held == 0,
		   10000);
	assert_int_equal(fx->b.rx[0].reason, 0);
	assert_true(XXH3_64bits_digest(fx->a.tx[0].h) ==
		    XXH3_64bits_digest(fx->b.rx[0].h));
	uv_timer_stop(&fx->drain);
}

/* Reset by one side: the other owner hears the code; data is dropped. */
static void test_peer_reset(void **state)
{
	struct fx *fx = *state;

	open_pair(fx, 0, 1ull << 40);
	open_pair(fx, 1, 1ull << 40);
	tx_pump(&fx->a.tx[0]);
	tx_pump(&fx->a.tx[1]);
	TU_SPIN_UNTIL(&fx->loop, fx->b.rx[0].got > 0 && fx->b.rx[1].got > 0,
		      5000);
	/* Receiver aborts stream 0, sender aborts stream 1. */
	vmic_link_stream_reset(&fx->b.link, fx->b.rx[0].s, VMIC_E_REFUSED,
			       "no space left");
	fx->b.rx[0].s = NULL;
	vmic_link_stream_reset(&fx->a.link, fx->a.tx[1].s, VMIC_E_FAILED,
			       "read error");
	fx->a.tx[1].s = NULL;
	assert_false(fx->b.rx[0].closed); /* no callback for one's own */
	assert_false(fx->a.tx[1].closed);
	TU_SPIN_UNTIL(&fx->loop, fx->a.tx[0].closed && fx->b.rx[1].closed,
		      5000);
	assert_int_equal(fx->a.tx[0].reason, VMIC_E_REFUSED);
	assert_int_equal(fx->b.rx[1].reason, VMIC_E_FAILED);
	TU_SPIN_UNTIL(&fx->loop, vmic_link_queued(&fx->a.link) == 0, 5000);
	free_pair(fx, 0);
	free_pair(fx, 1);
}

/*
 * The receiver opens its end, with a window past the implicit credit,
 * before the sender opens its own (a service that answers a request by
 * opening the receiving end). A credit sent at once would reach the
 * sender before its stream exists and be dropped, while the receiver
 * counted it as given: the copy would stop at the implicit credit. The
 * rest of the window goes with the first data instead, and all arrives.
 */
static void test_window_before_sender(void **state)
{
	struct fx *fx = *state;
	struct txs *t = &fx->a.tx[0];
	struct rxs *r = &fx->b.rx[0];
	const uint32_t id = 1000;

	memset(t, 0, sizeof(*t));
	memset(r, 0, sizeof(*r));
	t->side = &fx->a;
	r->side = &fx->b;
	t->total = 8u << 20;
	t->h = XXH3_createState();
	r->h = XXH3_createState();
	XXH3_64bits_reset(t->h);
	XXH3_64bits_reset(r->h);
	r->cap = 4 * VMIC_STREAM_INITIAL_CREDIT;
	r->ring = malloc(r->cap);
	assert_non_null(r->ring);
	assert_int_equal(vmic_link_stream_open(&fx->b.link, id, DATA_SVC,
					       VMIC_STREAM_RECV, r->cap,
					       &rx_ops, r, &r->s),
			 0);
	for (int i = 0; i < 100; i++) /* what was sent has arrived */
		uv_run(&fx->loop, UV_RUN_NOWAIT);
	assert_int_equal(vmic_link_stream_open(&fx->a.link, id, DATA_SVC,
					       VMIC_STREAM_SEND, 0, &tx_ops, t,
					       &t->s),
			 0);
	uv_timer_start(&fx->drain, on_drain_tick, 1, 1);
	tx_pump(t);
	TU_SPIN_UNTIL(&fx->loop, t->closed && r->closed && r->held == 0,
		      20000);
	assert_int_equal(r->reason, 0);
	assert_true(r->got == t->total);
	assert_true(XXH3_64bits_digest(t->h) == XXH3_64bits_digest(r->h));
	uv_timer_stop(&fx->drain);
	free_pair(fx, 0);
}

/* Closing a link closes its streams: owners hear -EPIPE. */
static void test_link_close_closes_streams(void **state)
{
	struct fx *fx = *state;

	open_pair(fx, 0, 1ull << 40);
	tx_pump(&fx->a.tx[0]);
	vmic_link_close(&fx->a.link, 0);
	assert_true(fx->a.tx[0].closed);
	assert_int_equal(fx->a.tx[0].reason, -EPIPE);
	TU_SPIN_UNTIL(&fx->loop, fx->b.closed && fx->a.closed, 5000);
	assert_true(fx->b.rx[0].closed);
	assert_int_equal(fx->b.rx[0].reason, -EPIPE);
	free_pair(fx, 0);
}

static void ignore_data(void *ud, struct vmic_stream *s, const uint8_t *p,
			size_t n)
{
	(void)ud;
	(void)s;
	(void)p;
	(void)n;
}

static void test_limits_and_misuse(void **state)
{
	static const struct vmic_stream_ops bare_tx = { 0 };
	static const struct vmic_stream_ops bare_rx = {
		.on_data = ignore_data,
	};
	struct fx *fx = *state;
	struct vmic_stream *s[VMIC_STREAMS_MAX_DEFAULT + 1], *dup;
	struct vmic_link bare = { 0 };
	uint8_t byte = 0;

	for (unsigned i = 0; i < VMIC_STREAMS_MAX_DEFAULT; i++)
		assert_int_equal(vmic_link_stream_open(&fx->a.link, 0,
						       DATA_SVC,
						       VMIC_STREAM_SEND, 0,
						       &bare_tx, NULL, &s[i]),
				 0);
	assert_int_equal(vmic_link_stream_open(&fx->a.link, 0, DATA_SVC,
					       VMIC_STREAM_SEND, 0, &tx_ops,
					       NULL, &dup),
			 -EMFILE);
	assert_int_equal(vmic_link_stream_open(&fx->b.link, s[0]->id, DATA_SVC,
					       VMIC_STREAM_RECV, 0, &tx_ops,
					       NULL, &dup),
			 -EINVAL); /* a receiver needs on_data */
	assert_int_equal(vmic_link_stream_open(&fx->b.link, s[0]->id, DATA_SVC,
					       VMIC_STREAM_RECV, 0, &bare_rx,
					       NULL, &dup),
			 0);
	assert_int_equal(vmic_link_stream_open(&fx->b.link, s[0]->id, DATA_SVC,
					       VMIC_STREAM_RECV, 0, &bare_rx,
					       NULL, &dup),
			 -EEXIST);
	assert_int_equal(vmic_link_stream_write(&fx->b.link, dup, &byte, 1),
			 -EINVAL);
	assert_int_equal(vmic_link_stream_finish(&fx->b.link, dup), -EINVAL);
	assert_int_equal(vmic_link_stream_open(&bare, 1, DATA_SVC,
					       VMIC_STREAM_SEND, 0, &tx_ops,
					       NULL, &dup),
			 -EINVAL); /* no vmic_link_streams_attach() */
	/* The reset frees them; nothing is left for ASan to find. */
	vmic_link_streams_reset(&fx->a.link);
	vmic_link_streams_reset(&fx->b.link);
	assert_null(fx->a.link.streams.slots);
}

/* ---- one link against raw bytes ---------------------------------------- */

struct raw_fx {
	uv_loop_t loop;
	struct side side;
	int raw;
};

static void raw_open(struct raw_fx *r)
{
	int sv[2];

	memset(r, 0, sizeof(*r));
	assert_int_equal(uv_loop_init(&r->loop), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sv),
			 0);
	assert_int_equal(vmic_link_open(&r->side.link, wrap(&r->loop, sv[0]),
					false, &side_ops, &r->side),
			 0);
	r->raw = sv[1];
}

static void raw_close(struct raw_fx *r)
{
	vmic_link_close(&r->side.link, 0);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	assert_true(r->side.closed);
	close(r->raw);
	assert_int_equal(uv_loop_close(&r->loop), 0);
}

/* Write a frame from the raw end, running the loop while it blocks. */
static void raw_write(struct raw_fx *r, uint8_t type, uint32_t id,
		      uint16_t flags, const void *payload, uint32_t len)
{
	static uint8_t buf[VMIC_MAX_FRAME];
	size_t n, off = 0;

	memcpy(buf + VMIC_HDR_SIZE, payload, len);
	n = vmic_frame_seal(buf, DATA_SVC, type, flags, 0, id, len);
	while (off < n) {
		ssize_t w = send(r->raw, buf + off, n - off, MSG_DONTWAIT);

		if (w > 0)
			off += (size_t)w;
		else
			uv_run(&r->loop, UV_RUN_NOWAIT);
	}
}

/* Run the loop until a whole frame can be read from the raw end. */
static void raw_read(struct raw_fx *r, struct vmic_frame *f,
		     struct vmic_error *e)
{
	uint8_t hdr[VMIC_HDR_SIZE], payload[VMIC_ERROR_MAX_LEN];
	uint64_t end = tu_now_ms() + 5000;

	while (recv(r->raw, hdr, sizeof(hdr), MSG_PEEK | MSG_DONTWAIT) <
	       (ssize_t)sizeof(hdr)) {
		assert_true(tu_now_ms() < end);
		uv_run(&r->loop, UV_RUN_NOWAIT);
	}
	assert_true(recv(r->raw, hdr, sizeof(hdr), 0) == sizeof(hdr));
	assert_int_equal(vmic_frame_parse_header(hdr, f), 0);
	assert_true(f->length <= sizeof(payload));
	assert_true(recv(r->raw, payload, f->length, MSG_WAITALL) ==
		    (ssize_t)f->length);
	if (f->type == VMIC_T_STREAM_RESET)
		assert_int_equal(vmic_error_decode(payload, f->length, e), 0);
}

/*
 * Unknown streams and broken rules are answered with resets, never a
 * crash; a reset is never answered; the link stays up.
 */
static void test_refusals_on_the_wire(void **state)
{
	static uint8_t big[VMIC_STREAM_CHUNK];
	struct raw_fx r;
	struct rxs rx = { 0 };
	struct vmic_frame f;
	struct vmic_error e;
	struct vmic_stream *s;

	(void)state;
	raw_open(&r);
	assert_int_equal(vmic_link_streams_attach(&r.side.link, true, 0), 0);
	raw_write(&r, VMIC_T_STREAM_DATA, 42, 0, "abc", 3);
	raw_read(&r, &f, &e);
	assert_int_equal(f.type, VMIC_T_STREAM_RESET);
	assert_int_equal(f.stream_id, 42);
	assert_int_equal(e.code, VMIC_E_NO_STREAM);
	/* Neither a credit nor a reset for an unknown stream is answered. */
	raw_write(&r, VMIC_T_STREAM_CREDIT, 43, 0, "\x00\x10\x00\x00", 4);
	raw_write(&r, VMIC_T_STREAM_RESET, 44, 0, "\x06\x00\x00\x00", 4);

	/* A receiving stream with a 1 MiB window: the rest is granted with
	 * the first data (before it the sender's end may not exist yet, and
	 * a credit for an unknown stream is dropped); data past the window
	 * is a flow violation. */
	rx.side = &r.side;
	rx.cap = 1 << 20;
	rx.ring = malloc(rx.cap);
	rx.h = XXH3_createState();
	assert_int_equal(vmic_link_stream_open(&r.side.link, 7, DATA_SVC,
					       VMIC_STREAM_RECV, 1 << 20,
					       &rx_ops, &rx, &s),
			 0);
	rx.s = s;
	for (int i = 0; i < 100; i++)
		uv_run(&r.loop, UV_RUN_NOWAIT);
	assert_true(recv(r.raw, &f, 1, MSG_PEEK | MSG_DONTWAIT) < 0);
	raw_write(&r, VMIC_T_STREAM_DATA, 7, 0, big, sizeof(big));
	raw_read(&r, &f, &e);
	assert_int_equal(f.type, VMIC_T_STREAM_CREDIT);
	for (int i = 1; i < 16; i++)
		raw_write(&r, VMIC_T_STREAM_DATA, 7, 0, big, sizeof(big));
	raw_write(&r, VMIC_T_STREAM_DATA, 7, 0, big, 1);
	raw_read(&r, &f, &e);
	assert_int_equal(f.type, VMIC_T_STREAM_RESET);
	assert_int_equal(f.stream_id, 7);
	assert_int_equal(e.code, VMIC_E_FLOW);
	assert_true(rx.closed);
	assert_int_equal(rx.reason, -EPROTO);
	assert_true(rx.got == 1 << 20);
	assert_int_equal(r.side.link.stream_refused, 2);
	assert_int_equal(r.side.link.stream_ignored, 2);
	assert_int_equal(r.side.other_frames, 0); /* none reached on_frame */
	assert_false(r.side.closed);
	XXH3_freeState(rx.h);
	free(rx.ring);
	raw_close(&r);
}

/* Without vmic_link_streams_attach, stream frames reach on_frame. */
static void test_no_streams_pass_through(void **state)
{
	struct raw_fx r;

	(void)state;
	raw_open(&r);
	raw_write(&r, VMIC_T_STREAM_DATA, 42, 0, "abc", 3);
	raw_write(&r, VMIC_T_STREAM_CREDIT, 42, 0, "\x00\x10\x00\x00", 4);
	while (r.side.other_frames < 2)
		uv_run(&r.loop, UV_RUN_ONCE);
	assert_int_equal(r.side.link.stream_refused, 0);
	raw_close(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_eight_streams_slow_consumer, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_session_restart_mid_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_reset, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_link_close_closes_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_window_before_sender,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits_and_misuse, setup,
						teardown),
		cmocka_unit_test(test_refusals_on_the_wire),
		cmocka_unit_test(test_no_streams_pass_through),
	};
	uint64_t seed = 0x5EED;

	/* As in the daemons: a write to a peer that closed is EPIPE. */
	signal(SIGPIPE, SIG_IGN);
	tu_fill(&seed, pattern, sizeof(pattern));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
