/* SPDX-License-Identifier: MIT */
/*
 * stream-bench: what a vmic stream costs against the socket it runs on.
 *
 * Each round runs, one after the other on the same machine:
 *
 *   raw     SIZE bytes through a socketpair(AF_UNIX, SOCK_STREAM) with
 *           default buffers, written in 64 KiB pieces by one thread and
 *           read by another into a buffer as large as the link's;
 *   stream  the same bytes as one vmic stream: a link per thread (each
 *           its own libuv loop, as host and guest are two processes), the
 *           producer writing 64 KiB pieces, the consumer reporting them
 *           consumed as they arrive, credit and all;
 *   8+ping  8 such streams of SIZE each at once, and a 32-byte request
 *           every millisecond beside them, echoed by the receiving side.
 *
 * Rounds are interleaved so that noise hits every case alike. It prints
 * min/median/max MB/s per case, the round trips of the requests, and last
 * `ratio R`: median(stream) / median(raw). Targets: R >= 0.8, request
 * p99 < 10 ms beside the streams; the exit status is 0 when both hold.
 *
 *   stream-bench [--size-mib N] [--runs N]      (defaults 1024, 5)
 *   stream-bench --only raw|stream|eight ...   one case, for profiling
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/wire.h"
#include "proto/control.h"
#include "transport/link.h"

#ifndef VMIC_BUILDTYPE
#define VMIC_BUILDTYPE "unknown"
#endif

#define PIECE (64u * 1024)
#define PATTERN (1u << 20)
#define READ_BUF (VMIC_MAX_FRAME + 64 * 1024) /* as the link's */
#define MAX_STREAMS 8
#define PING_LEN 32
#define MAX_RTTS 200000
#define TARGET_RATIO 0.8
#define TARGET_P99_MS 10.0

static uint8_t pattern[PATTERN];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "stream-bench: %s: %s\n", what, strerror(err));
	exit(2);
}

/* ---- raw AF_UNIX copy ---------------------------------------------- */

struct raw_run {
	int fd;
	uint64_t size, got;
};

static void *raw_reader(void *arg)
{
	struct raw_run *r = arg;
	uint8_t *buf = malloc(READ_BUF);

	if (!buf)
		die("malloc", ENOMEM);
	while (r->got < r->size) {
		ssize_t n = read(r->fd, buf, READ_BUF);

		if (n <= 0)
			die("raw read", n < 0 ? errno : EPIPE);
		r->got += (uint64_t)n;
	}
	free(buf);
	return NULL;
}

static double run_raw(uint64_t size)
{
	struct raw_run r = { .size = size };
	uint64_t sent = 0;
	pthread_t t;
	double t0;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair", errno);
	r.fd = sv[1];
	t0 = now_s();
	pthread_create(&t, NULL, raw_reader, &r);
	while (sent < size) {
		size_t off = (size_t)(sent % PATTERN);
		size_t n = (size_t)MIN((uint64_t)PIECE, size - sent);
		ssize_t w = write(sv[0], pattern + off, MIN(n, PATTERN - off));

		if (w <= 0)
			die("raw write", errno);
		sent += (uint64_t)w;
	}
	pthread_join(t, NULL);
	close(sv[0]);
	close(sv[1]);
	return (double)size / (now_s() - t0) / 1e6;
}

/* ---- streams through two links --------------------------------------- */

struct end;

struct bstream {
	struct end *end;
	struct vmic_stream *s;
	uint64_t done; /* bytes written (sender) or consumed (receiver) */
	bool closed;
	int reason;
};

struct end {
	uv_loop_t loop;
	struct vmic_link link;
	uv_timer_t ping;
	struct bstream st[MAX_STREAMS];
	struct run *run;
	bool sender;
	unsigned closed_streams;
	uint32_t next_ping;
	uint64_t *rtt;
	size_t nrtt;
};

struct run {
	int fds[2];
	unsigned nstreams;
	uint64_t size; /* per stream */
	bool ping;
	pthread_barrier_t ready;
	double t0, t1;
	struct end ends[2]; /* [0] sends, [1] receives */
};

static void pump(struct bstream *b)
{
	struct end *e = b->end;

	while (b->done < e->run->size) {
		size_t off = (size_t)(b->done % PATTERN);
		size_t n = (size_t)MIN((uint64_t)PIECE, e->run->size - b->done);
		ssize_t w = vmic_link_stream_write(&e->link, b->s,
						   pattern + off,
						   MIN(n, PATTERN - off));

		if (w < 0)
			return; /* -EAGAIN: on_writable comes */
		b->done += (uint64_t)w;
	}
	vmic_link_stream_finish(&e->link, b->s);
}

static void on_writable(void *ud, struct vmic_stream *s)
{
	(void)s;
	pump(ud);
}

static void on_data(void *ud, struct vmic_stream *s, const uint8_t *p,
		    size_t n)
{
	struct bstream *b = ud;

	(void)p;
	b->done += n;
	/* Written out at once: the fastest consumer there is. */
	vmic_link_stream_consumed(&b->end->link, s, n);
}

static void on_stream_closed(void *ud, struct vmic_stream *s, int reason)
{
	struct bstream *b = ud;
	struct end *e = b->end;

	(void)s;
	b->closed = true;
	b->reason = reason;
	b->s = NULL;
	if (++e->closed_streams < e->run->nstreams || e->sender)
		return;
	/* Receiver: all data is here. */
	e->run->t1 = now_s();
	vmic_link_close(&e->link, 0);
}

static const struct vmic_stream_ops stream_ops = {
	.on_data = on_data,
	.on_writable = on_writable,
	.on_closed = on_stream_closed,
};

static int on_frame(void *ud, const struct vmic_frame *f)
{
	struct end *e = ud;
	uint8_t buf[VMIC_HDR_SIZE + PING_LEN];

	if (f->service != VMIC_SVC_HEARTBEAT || f->length != PING_LEN)
		return 0;
	if (!e->sender) {
		memcpy(buf + VMIC_HDR_SIZE, f->payload, PING_LEN);
		vmic_link_send(&e->link, buf,
			       vmic_frame_seal(buf, f->service, 2,
					       VMIC_F_REPLY, f->request_id, 0,
					       PING_LEN),
			       0);
	} else if (e->nrtt < MAX_RTTS) {
		uint64_t sent = (uint64_t)vmic_get_le32(f->payload) |
				(uint64_t)vmic_get_le32(f->payload + 4) << 32;

		e->rtt[e->nrtt++] = uv_hrtime() - sent;
	}
	return 0;
}

/* The sender's SO_SNDBUF when its link closed (adapted, see link.h). */
static unsigned last_sndbuf;

static void on_link_close(void *ud, int reason)
{
	struct end *e = ud;
	struct vmic_link_stats st;

	(void)reason;
	vmic_link_stats(&e->link, &st);
	if (e->sender)
		last_sndbuf = st.sndbuf;
	if (e->sender && e->run->ping)
		uv_close((uv_handle_t *)&e->ping, NULL);
}

static const struct vmic_link_ops link_ops = {
	.on_frame = on_frame,
	.on_close = on_link_close,
};

static void on_ping(uv_timer_t *t)
{
	struct end *e = t->data;
	uint8_t buf[VMIC_HDR_SIZE + PING_LEN] = { 0 };
	uint64_t now = uv_hrtime();

	vmic_put_le32(buf + VMIC_HDR_SIZE, (uint32_t)now);
	vmic_put_le32(buf + VMIC_HDR_SIZE + 4, (uint32_t)(now >> 32));
	vmic_link_send(&e->link, buf,
		       vmic_frame_seal(buf, VMIC_SVC_HEARTBEAT, 1, 0,
				       e->next_ping++, 0, PING_LEN),
		       0);
}

static void end_open(struct end *e, int fd)
{
	uv_pipe_t *p = malloc(sizeof(*p));
	int r;

	if (!p)
		die("malloc", ENOMEM);
	uv_loop_init(&e->loop);
	uv_pipe_init(&e->loop, p, 0);
	r = uv_pipe_open(p, fd);
	if (r == 0)
		r = vmic_link_open(&e->link, (uv_stream_t *)p, false, &link_ops,
				   e);
	if (r == 0)
		r = vmic_link_streams_attach(&e->link, !e->sender, 0);
	for (unsigned i = 0; r == 0 && i < e->run->nstreams; i++) {
		e->st[i].end = e;
		r = vmic_link_stream_open(&e->link, i + 1, VMIC_SVC_FILECOPY,
					  e->sender ? VMIC_STREAM_SEND
						    : VMIC_STREAM_RECV,
					  0, &stream_ops, &e->st[i],
					  &e->st[i].s);
	}
	if (r < 0)
		die("link", -r);
}

static void *end_thread(void *arg)
{
	struct end *e = arg;

	if (e->sender) {
		pthread_barrier_wait(&e->run->ready); /* receiver is open */
		end_open(e, e->run->fds[0]);
		if (e->run->ping) {
			uv_timer_init(&e->loop, &e->ping);
			e->ping.data = e;
			uv_timer_start(&e->ping, on_ping, 1, 1);
		}
		e->run->t0 = now_s();
		for (unsigned i = 0; i < e->run->nstreams; i++)
			pump(&e->st[i]);
	} else {
		end_open(e, e->run->fds[1]);
		pthread_barrier_wait(&e->run->ready);
	}
	uv_run(&e->loop, UV_RUN_DEFAULT);
	uv_loop_close(&e->loop);
	return NULL;
}

/* One run: MB/s over all streams; the sender's round trips kept in rtt. */
static double run_streams(uint64_t size, unsigned nstreams, bool ping,
			  uint64_t *rtt, size_t *nrtt)
{
	struct run *run = calloc(1, sizeof(*run));
	pthread_t t[2];
	double mbs;

	if (!run)
		die("calloc", ENOMEM);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, run->fds) < 0)
		die("socketpair", errno);
	run->nstreams = nstreams;
	run->size = size;
	run->ping = ping;
	pthread_barrier_init(&run->ready, NULL, 2);
	run->ends[0].sender = true;
	run->ends[0].rtt = rtt;
	run->ends[0].nrtt = *nrtt;
	for (int i = 0; i < 2; i++) {
		run->ends[i].run = run;
		pthread_create(&t[i], NULL, end_thread, &run->ends[i]);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (unsigned i = 0; i < nstreams; i++)
		if (run->ends[1].st[i].done != size ||
		    run->ends[1].st[i].reason != 0)
			die("stream did not complete", EPROTO);
	*nrtt = run->ends[0].nrtt;
	mbs = (double)size * nstreams / (run->t1 - run->t0) / 1e6;
	pthread_barrier_destroy(&run->ready);
	free(run);
	return mbs;
}

/* ---- report ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sort v and print min, median, max; returns the median. */
static double row(const char *name, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	printf("%-32s %10.0f %10.0f %10.0f\n", name, v[0], v[n / 2],
	       v[n - 1]);
	return v[n / 2];
}

/* One run of a case by name: MB/s. */
static double run_case(const char *name, uint64_t size, uint64_t *rtt,
		       size_t *nrtt)
{
	if (!strcmp(name, "raw"))
		return run_raw(size);
	if (!strcmp(name, "stream"))
		return run_streams(size, 1, false, NULL, &(size_t){ 0 });
	return run_streams(size, MAX_STREAMS, true, rtt, nrtt);
}

static void usage(void)
{
	fprintf(stderr, "usage: stream-bench [--size-mib N] [--runs 3..64] "
			"[--only raw|stream|eight]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t size = 1ull << 30, seed = 0x9E3779B97F4A7C15ull;
	int runs = 5;
	double raw[64], one[64], eight[64], ratio, p50, p99;
	uint64_t *rtt = calloc(MAX_RTTS, sizeof(*rtt));
	const char *only = NULL;
	size_t nrtt = 0;
	bool ok;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--size-mib") && i + 1 < argc)
			size = strtoull(argv[++i], NULL, 10) << 20;
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else
			usage();
	}
	if (runs < 3 || runs > 64 || size == 0 || !rtt ||
	    (only && strcmp(only, "raw") && strcmp(only, "stream") &&
	     strcmp(only, "eight")))
		usage();
	for (size_t i = 0; i < PATTERN; i += 8) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		memcpy(pattern + i, &seed, 8);
	}
	if (only) {
		for (int i = 0; i < runs; i++)
			raw[i] = run_case(only, size, rtt, &nrtt);
		row(only, raw, runs);
		free(rtt);
		return 0;
	}
	for (int i = 0; i < runs; i++) {
		raw[i] = run_case("raw", size, rtt, &nrtt);
		one[i] = run_case("stream", size, rtt, &nrtt);
		eight[i] = run_case("eight", size, rtt, &nrtt);
		fprintf(stderr, "round %d: raw %.0f, stream %.0f, 8+ping %.0f "
				"MB/s\n",
			i + 1, raw[i], one[i], eight[i]);
	}

	printf("stream-bench: %llu MiB per stream, %d interleaved runs, "
	       "build type %s, AF_UNIX socketpair\n",
	       (unsigned long long)(size >> 20), runs, VMIC_BUILDTYPE);
	printf("%-32s %10s %10s %10s\n", "case (MB/s)", "min", "median",
	       "max");
	ratio = row("raw AF_UNIX copy", raw, runs);
	ratio = row("1 stream, two links", one, runs) / ratio;
	row("8 streams + ping, aggregate", eight, runs);
	qsort(rtt, nrtt, sizeof(*rtt), cmp_u64);
	p50 = nrtt ? (double)rtt[nrtt / 2] / 1e6 : 0;
	p99 = nrtt ? (double)rtt[nrtt * 99 / 100] / 1e6 : 0;
	printf("sender's SO_SNDBUF after the last run: %u KiB (starts at %u, "
	       "see link.h)\n",
	       last_sndbuf / 1024, VMIC_LINK_SNDBUF / 1024);
	printf("request/reply beside 8 streams: %zu round trips, p50 %.3f "
	       "ms, p99 %.3f ms (target p99 < %.0f ms): %s\n",
	       nrtt, p50, p99, TARGET_P99_MS,
	       nrtt && p99 < TARGET_P99_MS ? "PASS" : "FAIL");
	ok = nrtt && p99 < TARGET_P99_MS && ratio >= TARGET_RATIO;
	printf("stream / raw (target >= %.1f): %s\n", TARGET_RATIO,
	       ratio >= TARGET_RATIO ? "PASS" : "FAIL");
	printf("ratio %.2f\n", ratio);
	free(rtt);
	return ok ? 0 : 1;
}
