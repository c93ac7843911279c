/* SPDX-License-Identifier: MIT */
/*
 * pingpong: the floor under a heartbeat's round trip. Two processes on
 * one AF_UNIX socketpair, each on a libuv loop like vmic-hostd and
 * vmic-guestd: every interval the pinger sends 32 bytes, the ponger sends
 * them back, the pinger notes the time from its write to the echo's read.
 * No protocol, no bookkeeping: what is left is the kernel and the two
 * wake-ups, which is what a heartbeat pays on top of.
 *
 *   pingpong COUNT INTERVAL_MS
 *
 * prints "p50_us P p99_us Q samples N".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define MSG 32

static uv_loop_t *loop;
static uv_pipe_t pipe_h;
static uv_timer_t timer;
static unsigned count, interval_ms, done;
static uint64_t *rtt, sent_ns;
static char msg[MSG], got[MSG];
static size_t have;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
	(void)h;
	(void)s;
	*b = uv_buf_init(got + have, (unsigned)(MSG - have));
}

static void on_tick(uv_timer_t *t)
{
	uv_buf_t b = uv_buf_init(msg, MSG);

	(void)t;
	sent_ns = now_ns();
	uv_try_write((uv_stream_t *)&pipe_h, &b, 1);
}

static void ping_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	(void)b;
	if (n < 0) {
		uv_stop(loop);
		return;
	}
	have += (size_t)n;
	if (have < MSG)
		return;
	have = 0;
	rtt[done++] = (now_ns() - sent_ns) / 1000;
	if (done == count) {
		uv_read_stop(s);
		uv_timer_stop(&timer);
		uv_close((uv_handle_t *)&pipe_h, NULL);
		uv_close((uv_handle_t *)&timer, NULL);
	}
}

static void pong_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	uv_buf_t out;

	(void)b;
	if (n < 0) {
		uv_close((uv_handle_t *)s, NULL);
		return;
	}
	have += (size_t)n;
	if (have < MSG)
		return;
	have = 0;
	out = uv_buf_init(got, MSG);
	uv_try_write(s, &out, 1);
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int sv[2];
	pid_t pid;

	if (argc != 3) {
		fprintf(stderr, "usage: pingpong COUNT INTERVAL_MS\n");
		return 2;
	}
	count = (unsigned)strtoul(argv[1], NULL, 10);
	interval_ms = (unsigned)strtoul(argv[2], NULL, 10);
	if (!count || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 1;
	memset(msg, 'p', sizeof(msg));
	pid = fork();
	loop = uv_default_loop();
	uv_pipe_init(loop, &pipe_h, 0);
	if (pid == 0) {
		close(sv[0]);
		uv_pipe_open(&pipe_h, sv[1]);
		uv_read_start((uv_stream_t *)&pipe_h, on_alloc, pong_read);
		uv_run(loop, UV_RUN_DEFAULT);
		return 0;
	}
	close(sv[1]);
	rtt = calloc(count, sizeof(*rtt));
	uv_pipe_open(&pipe_h, sv[0]);
	uv_read_start((uv_stream_t *)&pipe_h, on_alloc, ping_read);
	uv_timer_init(loop, &timer);
	uv_timer_start(&timer, on_tick, interval_ms, interval_ms);
	uv_run(loop, UV_RUN_DEFAULT);
	waitpid(pid, NULL, 0);
	qsort(rtt, done, sizeof(*rtt), cmp);
	printf("p50_us %llu p99_us %llu samples %u\n",
	       (unsigned long long)(done ? rtt[done / 2] : 0),
	       (unsigned long long)(done ? rtt[(done * 99) / 100] : 0), done);
	free(rtt);
	return done == count ? 0 : 1;
}
