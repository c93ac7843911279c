/* SPDX-License-Identifier: MIT */
/*
 * src/transport: connect, listen and links over real unix sockets in a
 * temporary directory, driven by a real libuv loop. The vsock code path
 * (sockfd.c) runs over AF_UNIX addresses; hvsock runs against a small
 * Firecracker-style proxy on a thread of this test.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "testutil.h"
#include "tu-loop.h"

#include "common/wire.h"
#include "proto/control.h"
#include "proto/frame.h"
#include "proto/session.h"
#include "transport/link.h"
#include "transport/transport-internal.h"
#include "transport/transport.h"

/* ---- loop fixture ---------------------------------------------------- */

struct fx {
	uv_loop_t loop;
	uv_timer_t tick; /* keeps UV_RUN_ONCE from blocking for long */
	char *dir;
};

static void on_tick(uv_timer_t *t)
{
	(void)t;
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (!fx || uv_loop_init(&fx->loop) < 0)
		return -1;
	uv_timer_init(&fx->loop, &fx->tick);
	uv_timer_start(&fx->tick, on_tick, 10, 10);
	fx->dir = tu_mkdtemp();
	*state = fx;
	return 0;
}

static void count_open(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h)) {
		fprintf(stderr, "handle left open: %s\n",
			uv_handle_type_name(uv_handle_get_type(h)));
		(*(int *)arg)++;
	}
}

static void close_any(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Every test must leave nothing open but the tick timer. */
static int teardown(void **state)
{
	struct fx *fx = *state;
	int open = 0, r;

	uv_close((uv_handle_t *)&fx->tick, NULL);
	uv_walk(&fx->loop, count_open, &open);
	if (open)
		uv_walk(&fx->loop, close_any, NULL);
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	r = uv_loop_close(&fx->loop);
	tu_rmtree(fx->dir);
	free(fx);
	if (open || r) {
		fprintf(stderr, "teardown: %d handles open, loop close %d\n",
			open, r);
		return -1;
	}
	return 0;
}

static char *path_in(struct fx *fx, const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", fx->dir, name) > 0);
	return p;
}

/* Parse "<scheme><path><suffix>". */
static struct vmic_channel channel(const char *scheme, const char *path,
				   const char *suffix)
{
	struct vmic_channel ch;
	char uri[256], err[256];

	snprintf(uri, sizeof(uri), "%s%s%s", scheme, path, suffix);
	if (vmic_channel_parse(uri, &ch, err, sizeof(err)) < 0)
		fail_msg("%s: %s", uri, err);
	return ch;
}

/* ---- connect / accept results --------------------------------------- */

struct conn_result {
	bool called;
	int calls;
	int status;
	uv_stream_t *stream;
	char what[256];
};

static void on_connected(void *ud, int status, uv_stream_t *stream,
			 const char *what)
{
	struct conn_result *r = ud;

	r->called = true;
	r->calls++;
	r->status = status;
	r->stream = stream;
	snprintf(r->what, sizeof(r->what), "%s", what ? what : "");
}

struct accept_result {
	int count;
	uv_stream_t *stream;
};

static void on_accept(void *ud, uv_stream_t *stream)
{
	struct accept_result *a = ud;

	a->count++;
	if (a->stream) /* keep the first; a test wants only one */
		vmic_stream_free(stream);
	else
		a->stream = stream;
}

/* ---- link endpoints -------------------------------------------------- */

/*
 * Test data frames are stream data of the file copy service; their
 * payload is a u32 sequence number and then bytes (seq + i). Other
 * frames are recorded as they are.
 */
#define DATA_SVC VMIC_SVC_FILECOPY
#define DATA_TYPE VMIC_T_STREAM_DATA

struct peer {
	struct vmic_link link;
	unsigned data_frames, other_frames, bad;
	uint32_t next_seq;
	uint64_t data_bytes;
	struct vmic_frame last; /* last non-data frame, payload copied */
	uint8_t last_payload[512];
	int fail_with;
	bool closed;
	int close_reason;
	unsigned drained;
};

static int peer_on_frame(void *ud, const struct vmic_frame *f)
{
	struct peer *p = ud;

	if (f->service == DATA_SVC && f->type == DATA_TYPE) {
		uint32_t seq = f->length >= 4 ? vmic_get_le32(f->payload) : ~0u;

		if (seq != p->next_seq || f->request_id != seq)
			p->bad++;
		for (uint32_t i = 4; i < f->length; i++)
			if (f->payload[i] != (uint8_t)(seq + i)) {
				p->bad++;
				break;
			}
		p->next_seq = seq + 1;
		p->data_frames++;
		p->data_bytes += f->length;
	} else {
		p->other_frames++;
		p->last = *f;
		memcpy(p->last_payload, f->payload,
		       MIN(f->length, sizeof(p->last_payload)));
		p->last.payload = p->last_payload;
	}
	return p->fail_with;
}

static void peer_on_close(void *ud, int reason)
{
	struct peer *p = ud;

	assert_false(p->closed); /* exactly once */
	p->closed = true;
	p->close_reason = reason;
}

static void peer_on_drained(void *ud)
{
	struct peer *p = ud;

	p->drained++;
}

static const struct vmic_link_ops peer_ops = {
	.on_frame = peer_on_frame,
	.on_close = peer_on_close,
	.on_drained = peer_on_drained,
};

static void peer_open(struct peer *p, uv_stream_t *s, bool resync)
{
	memset(p, 0, sizeof(*p));
	assert_non_null(s);
	assert_int_equal(vmic_link_open(&p->link, s, resync, &peer_ops, p), 0);
}

static uint8_t *data_frame(uint32_t seq, uint32_t len, size_t *size)
{
	uint8_t *buf = malloc(VMIC_HDR_SIZE + len);

	assert_non_null(buf);
	assert_true(len >= 4);
	vmic_put_le32(buf + VMIC_HDR_SIZE, seq);
	for (uint32_t i = 4; i < len; i++)
		buf[VMIC_HDR_SIZE + i] = (uint8_t)(seq + i);
	*size = vmic_frame_seal(buf, DATA_SVC, DATA_TYPE, 0, seq, 1, len);
	return buf;
}

static uint64_t send_data(struct peer *p, uint32_t seq, uint32_t len)
{
	size_t size;
	uint8_t *buf = data_frame(seq, len, &size);

	assert_int_equal(vmic_link_send(&p->link, buf, size, 0), 0);
	free(buf);
	return size;
}

/* A hello frame of a guest session, as an agent sends it. */
static size_t guest_hello(uint8_t *buf, size_t cap, uint64_t nonce)
{
	static const struct vmic_offer offers[VMIC_SVC_COUNT] = {
		[VMIC_SVC_HEARTBEAT] = { VMIC_SVC_HEARTBEAT, 1, 1,
					 VMIC_OFFER_ENABLED },
	};
	struct vmic_session s;
	int n;

	vmic_session_start(&s, VMIC_ROLE_GUEST, nonce, "test-guest 1.0",
			   offers);
	n = vmic_session_hello_frame(&s, buf, cap);
	assert_true(n > VMIC_HDR_SIZE);
	return (size_t)n;
}

/* A connected socket pair: one end a libuv stream, the other raw. */
static uv_stream_t *socket_pair(struct fx *fx, int *raw)
{
	int sv[2], err = 0;
	uv_stream_t *s;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sv),
			 0);
	s = sockfd_wrap(&fx->loop, sv[0], &err);
	assert_int_equal(err, 0);
	assert_non_null(s);
	*raw = sv[1];
	return s;
}

static void write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = write(fd, b, n);

		assert_true(w > 0);
		b += w;
		n -= (size_t)w;
	}
}

/* ---- unix: and unix-listen: ----------------------------------------- */

static void exchange(struct fx *fx, struct peer *a, struct peer *b)
{
	uint64_t a_out = 0, b_out = 0;
	uint32_t seq_a = 0, seq_b = 0;

	/* a -> b: a small frame, the largest frame, then many small. */
	a_out += send_data(a, seq_a++, 8);
	a_out += send_data(a, seq_a++, VMIC_MAX_PAYLOAD);
	for (int i = 0; i < 1000; i++)
		a_out += send_data(a, seq_a++, 4 + (uint32_t)(i % 61));
	/* b -> a at the same time. */
	for (int i = 0; i < 300; i++)
		b_out += send_data(b, seq_b++, 4 + (uint32_t)(i % 200));
	b_out += send_data(b, seq_b++, VMIC_MAX_PAYLOAD);
	b_out += send_data(b, seq_b++, 5);

	TU_SPIN_UNTIL(&fx->loop,
		      b->data_frames == seq_a && a->data_frames == seq_b,
		   20000);
	assert_int_equal(a->bad, 0);
	assert_int_equal(b->bad, 0);
	assert_true(a->link.bytes_out == a_out);
	assert_true(b->link.bytes_in == a_out);
	TU_SPIN_UNTIL(&fx->loop, b->link.bytes_out == b_out, 5000);
	assert_true(a->link.bytes_in == b_out);
	assert_int_equal(vmic_link_queued(&a->link), 0);
	assert_int_equal(vmic_link_queued(&b->link), 0);
}

static void test_unix_connect_accept_link(void **state)
{
	struct fx *fx = *state;
	char *path = path_in(fx, "guest.sock");
	struct vmic_channel lch = channel("unix-listen:", path, "");
	struct vmic_channel cch = channel("unix:", path, "");
	struct accept_result acc = { 0 };
	struct conn_result cr = { 0 };
	struct vmic_listener *l = NULL;
	struct vmic_connector *c = NULL;
	struct peer host, guest;
	char err[256] = "";
	struct stat st;
	uint8_t small[VMIC_HDR_SIZE + 8];
	size_t n;

	assert_int_equal(vmic_listen(&fx->loop, &lch, NULL, on_accept, &acc,
				     &l, err, sizeof(err)),
			 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);

	assert_int_equal(vmic_connect(&fx->loop, &cch, 5000, on_connected, &cr,
				      &c),
			 0);
	TU_SPIN_UNTIL(&fx->loop, cr.called && acc.stream, 5000);
	assert_int_equal(cr.status, 0);
	assert_non_null(cr.stream);
	assert_int_equal(cr.calls, 1);
	assert_int_equal(acc.count, 1);

	peer_open(&host, cr.stream, false);
	peer_open(&guest, acc.stream, false);
	exchange(fx, &host, &guest);

	/* A local close reports 0; the peer sees the end of the stream. */
	vmic_link_close(&host.link, 0);
	n = vmic_frame_seal(small, 1, 1, 0, 0, 0, 8);
	assert_int_equal(vmic_link_send(&host.link, small, n, 0), -ENOTCONN);
	TU_SPIN_UNTIL(&fx->loop, host.closed && guest.closed, 5000);
	assert_int_equal(host.close_reason, 0);
	assert_int_equal(guest.close_reason, -EPIPE);
	/* Closing again is harmless. */
	vmic_link_close(&host.link, 0);

	/* The listener keeps accepting. */
	memset(&cr, 0, sizeof(cr));
	acc.stream = NULL;
	assert_int_equal(vmic_connect(&fx->loop, &cch, 5000, on_connected, &cr,
				      &c),
			 0);
	TU_SPIN_UNTIL(&fx->loop, cr.called && acc.stream, 5000);
	assert_int_equal(cr.status, 0);
	vmic_stream_free(cr.stream);
	vmic_stream_free(acc.stream);
	vmic_listener_close(l);
	tu_spin_for(&fx->loop, 20);
	free(path);
}

static void test_connect_failures(void **state)
{
	struct fx *fx = *state;
	char *missing = path_in(fx, "missing.sock");
	char *dead = path_in(fx, "dead.sock");
	struct vmic_channel ch = channel("unix:", missing, "");
	struct vmic_channel guest_side = channel("unix-listen:", missing, "");
	struct conn_result cr = { 0 };
	struct vmic_connector *c = NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	/* Nobody there: the callback reports it, from the loop. */
	assert_int_equal(vmic_connect(&fx->loop, &ch, 5000, on_connected, &cr,
				      &c),
			 0);
	assert_false(cr.called);
	TU_SPIN_UNTIL(&fx->loop, cr.called, 5000);
	assert_int_equal(cr.status, -ENOENT);
	assert_null(cr.stream);
	assert_non_null(strstr(cr.what, "connect"));

	/* A socket that exists but does not listen. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", dead);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ch = channel("unix:", dead, "");
	memset(&cr, 0, sizeof(cr));
	assert_int_equal(vmic_connect(&fx->loop, &ch, 5000, on_connected, &cr,
				      &c),
			 0);
	TU_SPIN_UNTIL(&fx->loop, cr.called, 5000);
	assert_int_equal(cr.status, -ECONNREFUSED);
	assert_null(cr.stream);
	close(fd);

	/* A guest-side channel is not something to connect to. */
	memset(&cr, 0, sizeof(cr));
	assert_int_equal(vmic_connect(&fx->loop, &guest_side, 5000,
				      on_connected, &cr, &c),
			 -EINVAL);
	tu_spin_for(&fx->loop, 30);
	assert_false(cr.called);
	tu_spin_for(&fx->loop, 20);
	free(missing);
	free(dead);
}

static void test_connect_cancel(void **state)
{
	struct fx *fx = *state;
	char *path = path_in(fx, "g.sock");
	char *missing = path_in(fx, "nope.sock");
	struct vmic_channel lch = channel("unix-listen:", path, "");
	struct vmic_channel cch = channel("unix:", path, "");
	struct vmic_channel mch = channel("unix:", missing, "");
	struct accept_result acc = { 0 };
	struct conn_result cr = { 0 };
	struct vmic_listener *l = NULL;
	struct vmic_connector *c = NULL;
	char err[256];

	assert_int_equal(vmic_listen(&fx->loop, &lch, NULL, on_accept, &acc,
				     &l, err, sizeof(err)),
			 0);
	/* Cancelled before the loop ran: no callback, nothing leaks. */
	assert_int_equal(vmic_connect(&fx->loop, &cch, 5000, on_connected, &cr,
				      &c),
			 0);
	vmic_connect_cancel(c);
	assert_int_equal(vmic_connect(&fx->loop, &mch, 5000, on_connected, &cr,
				      &c),
			 0);
	vmic_connect_cancel(c);
	vmic_connect_cancel(NULL);
	tu_spin_for(&fx->loop, 200);
	assert_false(cr.called);
	/* The kernel may have completed the first connect: the listener
	 * then accepted a stream that is simply closed again. */
	if (acc.stream)
		vmic_stream_free(acc.stream);
	vmic_listener_close(l);
	tu_spin_for(&fx->loop, 20);
	free(path);
	free(missing);
}

static void test_listen_errors(void **state)
{
	struct fx *fx = *state;
	char *file = path_in(fx, "file.sock");
	char *stale = path_in(fx, "stale.sock");
	char *nodir = path_in(fx, "no/such/dir.sock");
	struct vmic_channel ch;
	struct vmic_listener *l = NULL;
	struct accept_result acc = { 0 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char err[256];
	struct stat st;
	int fd;

	/* A regular file in the way is not removed. */
	free(tu_write_file(fx->dir, "file.sock", "keep", 4));
	ch = channel("unix-listen:", file, "");
	err[0] = '\0';
	assert_true(vmic_listen(&fx->loop, &ch, NULL, on_accept, &acc, &l,
				err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "cannot listen on"));
	assert_non_null(strstr(err, file));
	assert_int_equal(stat(file, &st), 0);
	assert_true(S_ISREG(st.st_mode));

	/* A stale socket from an earlier run is replaced. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", stale);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	ch = channel("unix-listen:", stale, "");
	assert_int_equal(vmic_listen(&fx->loop, &ch, NULL, on_accept, &acc,
				     &l, err, sizeof(err)),
			 0);
	vmic_listener_close(l);

	ch = channel("unix-listen:", nodir, "");
	err[0] = '\0';
	assert_true(vmic_listen(&fx->loop, &ch, NULL, on_accept, &acc, &l,
				err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "cannot listen on"));

	/* A host-side channel is refused with an explanation. */
	ch = channel("unix:", stale, "");
	err[0] = '\0';
	assert_int_equal(vmic_listen(&fx->loop, &ch, NULL, on_accept, &acc,
				     &l, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "host-side"));
	tu_spin_for(&fx->loop, 20);
	assert_int_equal(acc.count, 0);
	free(file);
	free(stale);
	free(nodir);
}

/* ---- link close reasons ---------------------------------------------- */

static void test_link_peer_eof(void **state)
{
	struct fx *fx = *state;
	struct peer p;
	int raw;
	size_t size;
	uint8_t *frame;

	peer_open(&p, socket_pair(fx, &raw), false);
	/* A frame written by the peer arrives, then its end. */
	frame = data_frame(0, 100, &size);
	write_all(raw, frame, size);
	free(frame);
	close(raw);
	TU_SPIN_UNTIL(&fx->loop, p.closed, 5000);
	assert_int_equal(p.data_frames, 1);
	assert_int_equal(p.close_reason, -EPIPE);
	assert_null(p.link.stream);
}

static void test_link_corrupt_strict(void **state)
{
	struct fx *fx = *state;
	struct vmic_frame big = { .service = 1, .type = 1,
				  .length = VMIC_MAX_PAYLOAD + 1 };
	uint8_t hdr[VMIC_HDR_SIZE];
	struct peer p;
	int raw;

	peer_open(&p, socket_pair(fx, &raw), false);
	write_all(raw, "this is not a vmic frame, not at all", 36);
	TU_SPIN_UNTIL(&fx->loop, p.closed, 5000);
	assert_int_equal(p.close_reason, -EBADMSG);
	close(raw);

	peer_open(&p, socket_pair(fx, &raw), false);
	vmic_frame_put_header(hdr, &big);
	write_all(raw, hdr, sizeof(hdr));
	TU_SPIN_UNTIL(&fx->loop, p.closed, 5000);
	assert_int_equal(p.close_reason, -EMSGSIZE);
	close(raw);
}

static void test_link_resync_recovers(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[4096];
	size_t n = 0, garbage, size;
	uint8_t *frame;
	struct peer p;
	int raw;

	peer_open(&p, socket_pair(fx, &raw), true);
	/* What an earlier agent left: noise, the tail of a frame, a whole
	 * frame that is not a hello. */
	memcpy(buf, "VMIC stale bytes V VM", 21);
	n = 21;
	frame = data_frame(99, 40, &size);
	memcpy(buf + n, frame + 7, size - 7);
	n += size - 7;
	memcpy(buf + n, frame, size);
	n += size;
	free(frame);
	garbage = n;
	n += guest_hello(buf + n, sizeof(buf) - n, 0x5EED);
	write_all(raw, buf, n);
	frame = data_frame(0, 64, &size);
	write_all(raw, frame, size);
	free(frame);

	TU_SPIN_UNTIL(&fx->loop, p.data_frames == 1, 5000);
	assert_false(p.closed);
	assert_int_equal(p.other_frames, 1);
	assert_int_equal(p.last.service, VMIC_SVC_CONTROL);
	assert_int_equal(p.last.type, VMIC_CTL_HELLO);
	assert_int_equal(p.bad, 0);
	assert_true(p.link.rx.dropped == garbage);

	close(raw);
	TU_SPIN_UNTIL(&fx->loop, p.closed, 5000);
	assert_int_equal(p.close_reason, -EPIPE);
}

static void test_link_handler_error_closes(void **state)
{
	struct fx *fx = *state;
	size_t size;
	uint8_t *frame;
	struct peer p;
	int raw;

	peer_open(&p, socket_pair(fx, &raw), false);
	p.fail_with = -EPROTO;
	frame = data_frame(0, 10, &size);
	/* Two frames in one write: the second is not delivered. */
	write_all(raw, frame, size);
	write_all(raw, frame, size);
	free(frame);
	TU_SPIN_UNTIL(&fx->loop, p.closed, 5000);
	assert_int_equal(p.close_reason, -EPROTO);
	assert_int_equal(p.data_frames, 1);
	close(raw);
}

/* What a link sends arrives on the other end byte for byte. */
static void test_link_send_raw(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[VMIC_HDR_SIZE + 200];
	uint64_t sent = 0;
	struct vmic_frame f;
	struct peer p;
	int raw;
	ssize_t r;
	size_t got = 0;

	peer_open(&p, socket_pair(fx, &raw), false);
	sent += send_data(&p, 0, 100);
	sent += send_data(&p, 1, 200);
	assert_int_equal(sent, 2 * VMIC_HDR_SIZE + 300);
	TU_SPIN_UNTIL(&fx->loop, p.link.bytes_out == sent, 5000);
	while (got < sizeof(buf) &&
	       (r = recv(raw, buf + got, sizeof(buf) - got, MSG_DONTWAIT)) > 0)
		got += (size_t)r;
	assert_true(got >= VMIC_HDR_SIZE + 100);
	assert_int_equal(vmic_frame_parse_header(buf, &f), 0);
	assert_int_equal(f.length, 100);
	assert_int_equal(vmic_get_le32(buf + VMIC_HDR_SIZE), 0);
	vmic_link_close(&p.link, 0);
	TU_SPIN_UNTIL(&fx->loop, p.closed, 5000);
	assert_int_equal(p.close_reason, 0);
	close(raw);
}

/*
 * A bulk copy has queued many chunks when a heartbeat is sent: on the
 * wire it comes after what was already written plus at most the one
 * chunk in flight, not after the whole copy. What the kernel took ahead
 * of it is capped too (VMIC_LINK_SNDBUF): about 1.5 chunks, not 228 KiB.
 */
static void test_link_heartbeat_overtakes_bulk(void **state)
{
	enum { CHUNKS = 15 }; /* within the bulk budget */
	struct vmic_link_stats st;
	struct fx *fx = *state;
	size_t size, total, got = 0, off = 0, hb_frames, written;
	uint8_t *frame = data_frame(0, VMIC_STREAM_CHUNK, &size);
	uint8_t *wire, hb[VMIC_HDR_SIZE + 8];
	unsigned before = 0, seen = 0;
	bool hb_seen = false;
	struct peer p;
	int raw;

	peer_open(&p, socket_pair(fx, &raw), false);
	for (uint32_t i = 0; i < CHUNKS; i++) {
		vmic_put_le32(frame + VMIC_HDR_SIZE, i);
		vmic_frame_seal(frame, DATA_SVC, DATA_TYPE, 0, i, 9,
				VMIC_STREAM_CHUNK);
		assert_int_equal(vmic_link_send(&p.link, frame, size, 9), 0);
	}
	free(frame);
	written = p.link.bytes_out;
	assert_true(written < (size_t)CHUNKS * size / 2);
	assert_true(written <= 2 * size);
	vmic_link_stats(&p.link, &st);
	assert_true(st.kernel_unsent >= 0);
	assert_true((size_t)st.kernel_unsent <= 2 * size + 8192);
	memset(hb + VMIC_HDR_SIZE, 0, 8);
	hb_frames = vmic_frame_seal(hb, VMIC_SVC_HEARTBEAT, 1, 0, 77, 0, 8);
	assert_int_equal(vmic_link_send(&p.link, hb, hb_frames, 0), 0);

	total = (size_t)CHUNKS * size + hb_frames;
	wire = malloc(total);
	while (got < total) {
		ssize_t r = recv(raw, wire + got, total - got, MSG_DONTWAIT);

		if (r > 0)
			got += (size_t)r;
		else
			uv_run(&fx->loop, UV_RUN_NOWAIT);
		assert_false(p.closed);
	}
	/* Walk the frames as they came. */
	while (off < total) {
		struct vmic_frame f;

		assert_int_equal(vmic_frame_parse_header(wire + off, &f), 0);
		if (f.service == VMIC_SVC_HEARTBEAT) {
			hb_seen = true;
			assert_int_equal(f.request_id, 77);
		} else {
			assert_int_equal(f.request_id, seen); /* in order */
			seen++;
			if (!hb_seen)
				before++;
		}
		off += VMIC_HDR_SIZE + f.length;
	}
	assert_true(hb_seen);
	assert_int_equal(seen, CHUNKS);
	if (before > written / size + 2)
		fail_msg("heartbeat behind %u chunks, %zu bytes were written "
			 "when it was sent",
			 before, written);
	free(wire);
	vmic_link_close(&p.link, 0);
	TU_SPIN_UNTIL(&fx->loop, p.closed, 5000);
	close(raw);
}

/*
 * A peer that stops reading. Stream data fills the bulk budget and is
 * then refused with -EAGAIN, the link staying up; once the peer reads
 * again, on_drained says there is room.
 */
static void test_link_bulk_budget(void **state)
{
	struct fx *fx = *state;
	size_t size, got = 0;
	uint8_t *frame = data_frame(0, VMIC_STREAM_CHUNK, &size);
	uint8_t *sink = malloc(1 << 20);
	struct peer p;
	int raw, r = 0, sends = 0;

	peer_open(&p, socket_pair(fx, &raw), false);
	while (sends < 1000) {
		r = vmic_link_send(&p.link, frame, size, 7);
		if (r < 0)
			break;
		sends++;
		uv_run(&fx->loop, UV_RUN_NOWAIT);
	}
	assert_int_equal(r, -EAGAIN);
	assert_true(p.link.outq.bulk_bytes <= VMIC_LINK_BULK_BUDGET);
	assert_true(vmic_link_queued(&p.link) >
		    VMIC_LINK_BULK_BUDGET - 2 * size);
	/* An urgent frame still goes: bulk never fails it. */
	assert_int_equal(vmic_link_send(&p.link, frame, VMIC_HDR_SIZE + 8, 0),
			 0);
	assert_false(p.closed);
	assert_int_equal(p.drained, 0);
	while (p.drained == 0) {
		ssize_t n = recv(raw, sink, 1 << 20, MSG_DONTWAIT);

		if (n > 0)
			got += (size_t)n;
		uv_run(&fx->loop, UV_RUN_NOWAIT);
	}
	assert_true(got > 0);
	assert_true(p.link.outq.bulk_bytes <= VMIC_LINK_BULK_BUDGET / 2);
	assert_int_equal(vmic_link_send(&p.link, frame, size, 7), 0);
	free(frame);
	free(sink);
	vmic_link_close(&p.link, 0);
	TU_SPIN_UNTIL(&fx->loop, p.closed, 5000);
	close(raw);
}

/*
 * A peer that reads slowly (16 KiB every 20 ms, as a slow channel would):
 * the link keeps its small send buffer, so what waits in the kernel ahead
 * of a heartbeat stays about 1.5 chunks, never the 228 KiB of the default.
 */
static void test_link_kernel_cap_slow_reader(void **state)
{
	struct fx *fx = *state;
	struct peer p;
	size_t size;
	uint8_t *frame = data_frame(0, VMIC_STREAM_CHUNK, &size);
	uint8_t sink[16 * 1024];
	struct vmic_link_stats st;
	uint64_t end = tu_now_ms() + 400, next_read = 0;
	int raw, peak = 0;

	peer_open(&p, socket_pair(fx, &raw), false);
	while (tu_now_ms() < end) {
		while (vmic_link_send(&p.link, frame, size, 7) == 0)
			;
		if (tu_now_ms() >= next_read) {
			assert_true(recv(raw, sink, sizeof(sink),
					 MSG_DONTWAIT) > 0);
			next_read = tu_now_ms() + 20;
		}
		vmic_link_stats(&p.link, &st);
		peak = MAX(peak, st.kernel_unsent);
		uv_run(&fx->loop, UV_RUN_NOWAIT);
	}
	vmic_link_stats(&p.link, &st);
	assert_int_equal(st.sndbuf, VMIC_LINK_SNDBUF);
	assert_true(peak > 0);
	assert_true(peak <= (int)(3 * VMIC_LINK_SNDBUF));
	free(frame);
	vmic_link_close(&p.link, 0);
	TU_SPIN_UNTIL(&fx->loop, p.closed, 5000);
	close(raw);
}

/*
 * A peer that stops reading while we send only urgent frames: past the
 * control budget the send fails with -ENOBUFS and the link closes by
 * itself, whichever daemon holds it.
 */
static void test_link_control_budget(void **state)
{
	struct fx *fx = *state;
	uint8_t frame[VMIC_HDR_SIZE + 1000];
	size_t size;
	struct peer p;
	int raw, r = 0, sends = 0;

	memset(frame + VMIC_HDR_SIZE, 0, 1000);
	size = vmic_frame_seal(frame, VMIC_SVC_HEARTBEAT, 1, 0, 1, 0, 1000);
	peer_open(&p, socket_pair(fx, &raw), false);
	while (sends < 10000) {
		r = vmic_link_send(&p.link, frame, size, 0);
		if (r < 0)
			break;
		sends++;
	}
	assert_int_equal(r, -ENOBUFS);
	assert_true(p.link.closing);
	/* Within the budget plus what the (capped) socket buffer holds. */
	assert_true((size_t)sends * size <
		    VMIC_LINK_CONTROL_BUDGET + 512u * 1024);
	assert_int_equal(vmic_link_send(&p.link, frame, size, 0), -ENOTCONN);
	TU_SPIN_UNTIL(&fx->loop, p.closed, 5000);
	assert_int_equal(p.close_reason, -ENOBUFS);
	close(raw);
}

/* ---- the vsock code path over AF_UNIX -------------------------------- */

/* What vsock.c does once the socket is connected. */
static void sockfd_test_connected(struct vmic_connector *c)
{
	sockfd_hand_over(c, "connect");
}

static struct vmic_listener *sockfd_listener(struct fx *fx,
					     const struct sockaddr_un *sa,
					     struct accept_result *acc,
					     int *r, char *err, size_t errsz)
{
	struct vmic_listener *l = calloc(1, sizeof(*l));

	assert_non_null(l);
	l->loop = &fx->loop;
	l->ch.kind = VMIC_CH_VSOCK_LISTEN;
	l->cb = on_accept;
	l->ud = acc;
	l->fd = -1;
	*r = sockfd_listen_start(l, AF_UNIX, (const struct sockaddr *)sa,
				 sizeof(*sa), err, errsz);
	return l;
}

static struct vmic_connector *sockfd_connector(struct fx *fx,
					       const struct sockaddr_un *sa,
					       struct conn_result *cr, int *r)
{
	struct vmic_channel ch = { .kind = VMIC_CH_VSOCK, .cid = 3,
				   .port = VMIC_VSOCK_PORT };
	struct vmic_connector *c =
		connector_new(&fx->loop, &ch, on_connected, cr);

	assert_non_null(c);
	c->on_connected = sockfd_test_connected;
	*r = sockfd_connect_start(c, AF_UNIX, (const struct sockaddr *)sa,
				  sizeof(*sa));
	return c;
}

static void test_sockfd_connect_listen(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct accept_result acc = { 0 };
	struct conn_result cr = { 0 };
	struct vmic_listener *l;
	struct peer host, guest;
	char err[256] = "";
	int r;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/vsock.sock", fx->dir);
	l = sockfd_listener(fx, &sa, &acc, &r, err, sizeof(err));
	assert_int_equal(r, 0);
	assert_true(l->have_poll);
	sockfd_connector(fx, &sa, &cr, &r);
	assert_int_equal(r, 0);
	assert_false(cr.called); /* completion goes through the poll */
	TU_SPIN_UNTIL(&fx->loop, cr.called && acc.stream, 5000);
	assert_int_equal(cr.status, 0);
	assert_string_equal(cr.what, "connect");

	peer_open(&host, cr.stream, false);
	peer_open(&guest, acc.stream, true);
	exchange(fx, &host, &guest);
	vmic_link_close(&guest.link, 0);
	TU_SPIN_UNTIL(&fx->loop, host.closed && guest.closed, 5000);
	assert_int_equal(host.close_reason, -EPIPE);
	assert_int_equal(guest.close_reason, 0);

	/* A second connection on the same listener. */
	memset(&cr, 0, sizeof(cr));
	acc.stream = NULL;
	sockfd_connector(fx, &sa, &cr, &r);
	assert_int_equal(r, 0);
	TU_SPIN_UNTIL(&fx->loop, cr.called && acc.stream, 5000);
	assert_int_equal(acc.count, 2);
	vmic_stream_free(cr.stream);
	vmic_stream_free(acc.stream);

	/* The address is taken while the listener lives. */
	{
		struct accept_result acc2 = { 0 };
		struct vmic_listener *l2;

		err[0] = '\0';
		l2 = sockfd_listener(fx, &sa, &acc2, &r, err, sizeof(err));
		assert_int_equal(r, -EADDRINUSE);
		assert_non_null(strstr(err, "cannot listen"));
		vmic_listener_close(l2);
	}
	vmic_listener_close(l);
	tu_spin_for(&fx->loop, 20);
}

/* The admit hook (vsock.c's CID check) sees the peer's address before
 * the caller does; a refused peer is closed and never reaches cb. */
static int admit_calls;
static sa_family_t admit_family;

static bool admit_every_other(struct vmic_listener *l,
			      const struct sockaddr *sa, socklen_t salen)
{
	(void)l;
	assert_true(salen >= sizeof(sa_family_t));
	admit_family = sa->sa_family;
	return admit_calls++ % 2 == 1;
}

static void test_sockfd_admit(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct accept_result acc = { 0 };
	struct vmic_listener *l;
	char err[256] = "", byte;
	int r, refused, admitted;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/admit.sock", fx->dir);
	admit_calls = 0;
	l = sockfd_listener(fx, &sa, &acc, &r, err, sizeof(err));
	assert_int_equal(r, 0);
	l->admit = admit_every_other;

	refused = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(refused, (struct sockaddr *)&sa, sizeof(sa)),
			 0);
	TU_SPIN_UNTIL(&fx->loop, admit_calls == 1, 5000);
	assert_int_equal(admit_family, AF_UNIX);
	/* Closed by the listener: the peer reads the end at once. */
	assert_int_equal(recv(refused, &byte, 1, 0), 0);
	assert_int_equal(acc.count, 0);

	admitted = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(admitted, (struct sockaddr *)&sa, sizeof(sa)),
			 0);
	TU_SPIN_UNTIL(&fx->loop, acc.stream, 5000);
	assert_int_equal(admit_calls, 2);
	assert_int_equal(acc.count, 1);
	vmic_stream_free(acc.stream);
	close(refused);
	close(admitted);
	vmic_listener_close(l);
	tu_spin_for(&fx->loop, 20);
}

static void test_sockfd_failures(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct conn_result cr = { 0 };
	struct vmic_connector *c;
	uv_stream_t *s;
	int r, fd, err = 0;

	/* Nothing at the address: refused synchronously, then undone. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/none.sock", fx->dir);
	c = sockfd_connector(fx, &sa, &cr, &r);
	assert_int_equal(r, -ENOENT);
	vmic_connect_cancel(c);

	/* Bound, not listening. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	c = sockfd_connector(fx, &sa, &cr, &r);
	assert_int_equal(r, -ECONNREFUSED);
	vmic_connect_cancel(c);
	close(fd);
	tu_spin_for(&fx->loop, 30);
	assert_false(cr.called);

	/* Wrapping a descriptor that cannot be open (above any limit the
	 * kernel allows) fails cleanly. */
	s = sockfd_wrap(&fx->loop, INT_MAX - 1, &err);
	assert_null(s);
	assert_true(err < 0);
	tu_spin_for(&fx->loop, 20);
}

/* ---- hvsock against a Firecracker-style proxy ------------------------- */

enum proxy_mode {
	PX_OK,      /* "OK 1073741824\n" + the start of a hello, in one write */
	PX_REFUSE,  /* an error line */
	PX_CLOSE,   /* hang up after the CONNECT line */
	PX_SILENT,  /* never answer */
	PX_LONG,    /* a long answer without a newline */
	PX_SLOW,    /* the OK line in two pieces, 300 ms apart */
};

struct proxy {
	enum proxy_mode mode;
	int lfd;
	pthread_t thread;
	char line[128];       /* what the host sent first */
	uint8_t out[1024];    /* frames to send after the OK line */
	size_t outlen;
	uint8_t got[4096];    /* bytes the host sent after its line */
	size_t gotlen;
	const char *problem;  /* set when the proxy saw something wrong */
};

/* Read until the peer closes (or 5 s pass), keeping what fits. */
static void proxy_drain(struct proxy *px, int fd)
{
	ssize_t n;

	while ((n = recv(fd, px->got + px->gotlen,
			 sizeof(px->got) - px->gotlen, 0)) > 0) {
		px->gotlen += (size_t)n;
		if (px->gotlen == sizeof(px->got))
			px->gotlen = 0; /* only the start matters */
	}
}

static void *proxy_main(void *arg)
{
	struct proxy *px = arg;
	struct pollfd pfd = { .fd = px->lfd, .events = POLLIN };
	struct timeval tv = { .tv_sec = 5 };
	char reply[1200];
	size_t len = 0;
	int fd;

	if (poll(&pfd, 1, 5000) != 1) {
		px->problem = "no connection";
		return NULL;
	}
	fd = accept4(px->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		px->problem = "accept failed";
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* Byte by byte, so nothing after the line is consumed here. */
	while (len + 1 < sizeof(px->line)) {
		if (recv(fd, px->line + len, 1, 0) != 1)
			break;
		if (px->line[len++] == '\n')
			break;
	}
	px->line[len] = '\0';
	switch (px->mode) {
	case PX_OK:
		/* The OK line and the first 10 bytes of the stream in the
		 * same write: the transport must not swallow them. */
		len = (size_t)snprintf(reply, sizeof(reply), "OK 1073741824\n");
		memcpy(reply + len, px->out, 10);
		if (send(fd, reply, len + 10, MSG_NOSIGNAL) != (ssize_t)len + 10)
			px->problem = "send failed";
		usleep(30 * 1000);
		if (send(fd, px->out + 10, px->outlen - 10, MSG_NOSIGNAL) !=
		    (ssize_t)(px->outlen - 10))
			px->problem = "send failed";
		proxy_drain(px, fd);
		break;
	case PX_REFUSE:
		send(fd, "NO such port\n", 13, MSG_NOSIGNAL);
		proxy_drain(px, fd);
		break;
	case PX_CLOSE:
		break;
	case PX_SILENT:
		proxy_drain(px, fd);
		break;
	case PX_SLOW:
		send(fd, "OK 10", 5, MSG_NOSIGNAL);
		usleep(300 * 1000);
		memcpy(reply, "73741824\n", 9);
		memcpy(reply + 9, px->out, px->outlen);
		if (send(fd, reply, 9 + px->outlen, MSG_NOSIGNAL) !=
		    (ssize_t)(9 + px->outlen))
			px->problem = "send failed";
		proxy_drain(px, fd);
		break;
	case PX_LONG:
		memset(reply, 'x', 100);
		send(fd, reply, 100, MSG_NOSIGNAL);
		proxy_drain(px, fd);
		break;
	}
	close(fd);
	return NULL;
}

static void proxy_start(struct fx *fx, struct proxy *px, enum proxy_mode m,
			char **path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(px, 0, sizeof(*px));
	px->mode = m;
	*path = path_in(fx, "fc.vsock");
	unlink(*path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", *path);
	px->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(px->lfd >= 0);
	assert_int_equal(bind(px->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(px->lfd, 4), 0);
	assert_int_equal(pthread_create(&px->thread, NULL, proxy_main, px), 0);
}

static void proxy_join(struct proxy *px)
{
	pthread_join(px->thread, NULL);
	close(px->lfd);
	if (px->problem)
		fail_msg("proxy: %s", px->problem);
}

static void test_hvsock_handshake(void **state)
{
	struct fx *fx = *state;
	struct conn_result cr = { 0 };
	struct vmic_connector *c;
	struct vmic_channel ch;
	struct vmic_hello h;
	struct proxy px;
	struct peer p;
	uint8_t reply[VMIC_HDR_SIZE + 8];
	size_t size;
	uint8_t *frame;
	char *path;

	proxy_start(fx, &px, PX_OK, &path);
	px.outlen = guest_hello(px.out, sizeof(px.out), 0xF1C4);
	frame = data_frame(0, 33, &size);
	memcpy(px.out + px.outlen, frame, size);
	px.outlen += size;
	free(frame);

	ch = channel("hvsock:", path, ":1234");
	assert_int_equal(vmic_connect(&fx->loop, &ch, 5000, on_connected, &cr,
				      &c),
			 0);
	TU_SPIN_UNTIL(&fx->loop, cr.called, 5000);
	if (cr.status != 0)
		fail_msg("hvsock connect: %d %s", cr.status, cr.what);
	peer_open(&p, cr.stream, false);
	TU_SPIN_UNTIL(&fx->loop, p.data_frames == 1, 5000);
	/* The hello that came in the OK line's packet is intact. */
	assert_int_equal(p.other_frames, 1);
	assert_int_equal(p.last.type, VMIC_CTL_HELLO);
	assert_int_equal(vmic_hello_decode(p.last.payload, p.last.length, &h),
			 0);
	assert_string_equal(h.software, "test-guest 1.0");
	assert_true(h.nonce == 0xF1C4);
	assert_int_equal(p.bad, 0);
	assert_true(p.link.rx.dropped == 0);

	/* The other way through the proxy. */
	memset(reply + VMIC_HDR_SIZE, 0xAB, 8);
	size = vmic_frame_seal(reply, VMIC_SVC_HEARTBEAT, 1, 0, 5, 0, 8);
	assert_int_equal(vmic_link_send(&p.link, reply, size, 0), 0);
	TU_SPIN_UNTIL(&fx->loop, p.link.bytes_out == size, 5000);
	vmic_link_close(&p.link, 0);
	TU_SPIN_UNTIL(&fx->loop, p.closed, 5000);
	proxy_join(&px);
	assert_string_equal(px.line, "CONNECT 1234\n");
	assert_int_equal(px.gotlen, size);
	assert_memory_equal(px.got, reply, size);
	free(path);
}

static uint64_t thread_cpu_ms(void)
{
	struct rusage ru;

	assert_int_equal(getrusage(RUSAGE_THREAD, &ru), 0);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/*
 * A VMM that answers in pieces: the host waits for the rest of the line
 * without burning CPU, then gets the stream intact.
 */
static void test_hvsock_slow_reply(void **state)
{
	struct fx *fx = *state;
	struct conn_result cr = { 0 };
	struct vmic_connector *c;
	struct vmic_channel ch;
	struct proxy px;
	struct peer p;
	uint64_t cpu;
	char *path;

	proxy_start(fx, &px, PX_SLOW, &path);
	px.outlen = guest_hello(px.out, sizeof(px.out), 0x510);
	ch = channel("hvsock:", path, "");
	cpu = thread_cpu_ms();
	assert_int_equal(vmic_connect(&fx->loop, &ch, 5000, on_connected, &cr,
				      &c),
			 0);
	TU_SPIN_UNTIL(&fx->loop, cr.called, 5000);
	cpu = thread_cpu_ms() - cpu;
	if (cr.status != 0)
		fail_msg("hvsock connect: %d %s", cr.status, cr.what);
	/* Waiting 300 ms for the newline costs next to nothing. */
	if (cpu > 100)
		fail_msg("%llu ms of CPU spent waiting for the reply",
			 (unsigned long long)cpu);
	peer_open(&p, cr.stream, false);
	TU_SPIN_UNTIL(&fx->loop, p.other_frames == 1, 5000);
	assert_int_equal(p.last.type, VMIC_CTL_HELLO);
	vmic_link_close(&p.link, 0);
	TU_SPIN_UNTIL(&fx->loop, p.closed, 5000);
	proxy_join(&px);
	free(path);
}

/*
 * Out of descriptors: accept fails with EMFILE while the peer stays
 * queued. The listener pauses instead of spinning on the readable socket,
 * and accepts the peer once descriptors are free again.
 */
static void test_sockfd_accept_emfile(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct accept_result acc = { 0 };
	struct vmic_listener *l;
	struct rlimit saved, low;
	char err[256] = "";
	int client, r, filler[64], nfill = 0;
	uint64_t cpu;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/emfile.sock", fx->dir);
	l = sockfd_listener(fx, &sa, &acc, &r, err, sizeof(err));
	assert_int_equal(r, 0);
	client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(client >= 0);

	/* Use up every descriptor under a low limit. */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	low = saved;
	low.rlim_cur = (rlim_t)client + 8;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (nfill < 64) {
		int fd = dup(client);

		if (fd < 0)
			break;
		filler[nfill++] = fd;
	}
	assert_true(nfill > 0 && nfill < 64);
	assert_int_equal(connect(client, (struct sockaddr *)&sa, sizeof(sa)),
			 0);

	cpu = thread_cpu_ms();
	tu_spin_for(&fx->loop, 300);
	cpu = thread_cpu_ms() - cpu;
	assert_null(acc.stream);
	if (cpu > 100)
		fail_msg("%llu ms of CPU spent while accept failed with EMFILE",
			 (unsigned long long)cpu);

	for (int i = 0; i < nfill; i++)
		close(filler[i]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
	TU_SPIN_UNTIL(&fx->loop, acc.stream, 3000);
	vmic_stream_free(acc.stream);
	close(client);
	vmic_listener_close(l);
	tu_spin_for(&fx->loop, 20);
}

static void hvsock_expect_failure(struct fx *fx, enum proxy_mode mode,
				  unsigned timeout_ms, int status,
				  const char *mention)
{
	struct conn_result cr = { 0 };
	struct vmic_connector *c;
	struct vmic_channel ch;
	struct proxy px;
	char *path;

	proxy_start(fx, &px, mode, &path);
	ch = channel("hvsock:", path, "");
	assert_int_equal(vmic_connect(&fx->loop, &ch, timeout_ms, on_connected,
				      &cr, &c),
			 0);
	TU_SPIN_UNTIL(&fx->loop, cr.called, 5000);
	proxy_join(&px);
	if (cr.status != status || !strstr(cr.what, mention))
		fail_msg("mode %d: status %d '%s', expected %d '%s'", mode,
			 cr.status, cr.what, status, mention);
	assert_null(cr.stream);
	/* The default port was asked for. */
	assert_string_equal(px.line, "CONNECT 5657\n");
	tu_spin_for(&fx->loop, 20);
	assert_int_equal(cr.calls, 1);
	free(path);
}

static void test_hvsock_refused(void **state)
{
	struct fx *fx = *state;

	hvsock_expect_failure(fx, PX_REFUSE, 5000, -ECONNREFUSED,
			      "hvsock CONNECT 5657 refused: 'NO such port'");
	hvsock_expect_failure(fx, PX_CLOSE, 5000, -ECONNRESET,
			      "closed the connection");
	hvsock_expect_failure(fx, PX_LONG, 5000, -ECONNREFUSED,
			      "refused: 'xxxxxxxx");
	hvsock_expect_failure(fx, PX_SILENT, 300, -ETIMEDOUT, "timed out");
}

static void test_hvsock_cancel(void **state)
{
	struct fx *fx = *state;
	struct conn_result cr = { 0 };
	struct vmic_connector *c;
	struct vmic_channel ch;
	struct proxy px;
	char *path;

	proxy_start(fx, &px, PX_SILENT, &path);
	ch = channel("hvsock:", path, "");
	assert_int_equal(vmic_connect(&fx->loop, &ch, 0, on_connected, &cr, &c),
			 0);
	/* Connected and waiting for the answer, then abandoned. */
	tu_spin_for(&fx->loop, 100);
	assert_false(cr.called);
	vmic_connect_cancel(c);
	tu_spin_for(&fx->loop, 50);
	proxy_join(&px);
	assert_string_equal(px.line, "CONNECT 5657\n");
	assert_false(cr.called);
	free(path);
}

static void test_hvsock_parse_reply(void **state)
{
	uint32_t port = 0;

	(void)state;
	assert_int_equal(hvsock_parse_reply("OK 1073741824", 13, &port), 0);
	assert_int_equal(port, 1073741824u);
	assert_int_equal(hvsock_parse_reply("OK 4294967295", 13, &port), 0);
	assert_int_equal(port, 4294967295u);
	assert_int_equal(hvsock_parse_reply("ok 7", 4, &port), 0);
	assert_int_equal(port, 7);
	/* Only the n bytes given count. */
	assert_int_equal(hvsock_parse_reply("OK 12junk", 5, &port), 0);
	assert_int_equal(port, 12);

	port = 99;
	assert_int_equal(hvsock_parse_reply("OK ", 3, &port), -EPROTO);
	assert_int_equal(hvsock_parse_reply("OK", 2, &port), -EPROTO);
	assert_int_equal(hvsock_parse_reply("", 0, &port), -EPROTO);
	assert_int_equal(hvsock_parse_reply("OK 4294967296", 13, &port),
			 -EPROTO);
	assert_int_equal(hvsock_parse_reply("OK 99999999999", 14, &port),
			 -EPROTO);
	assert_int_equal(hvsock_parse_reply("OK 1234567890123", 16, &port),
			 -EPROTO);
	assert_int_equal(hvsock_parse_reply("OK -1", 5, &port), -EPROTO);
	assert_int_equal(hvsock_parse_reply("OK 12 ", 6, &port), -EPROTO);
	assert_int_equal(hvsock_parse_reply("OK 1\r", 5, &port), -EPROTO);
	assert_int_equal(hvsock_parse_reply("OKAY 1", 6, &port), -EPROTO);
	assert_int_equal(hvsock_parse_reply("ERR 1", 5, &port), -EPROTO);
	assert_int_equal(hvsock_parse_reply("OK 1\0002", 6, &port), -EPROTO);
	assert_int_equal(port, 99); /* untouched on failure */
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_unix_connect_accept_link),
		T(test_connect_failures),
		T(test_connect_cancel),
		T(test_listen_errors),
		T(test_link_peer_eof),
		T(test_link_corrupt_strict),
		T(test_link_resync_recovers),
		T(test_link_handler_error_closes),
		T(test_link_send_raw),
		T(test_link_heartbeat_overtakes_bulk),
		T(test_link_bulk_budget),
		T(test_link_control_budget),
		T(test_link_kernel_cap_slow_reader),
		T(test_sockfd_connect_listen),
		T(test_sockfd_admit),
		T(test_sockfd_failures),
		T(test_sockfd_accept_emfile),
		T(test_hvsock_handshake),
		T(test_hvsock_refused),
		T(test_hvsock_slow_reply),
		T(test_hvsock_cancel),
		cmocka_unit_test(test_hvsock_parse_reply),
	};

	/* A peer that goes away must be a read error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
