/* SPDX-License-Identifier: MIT */
/*
 * fanout: the floor under many heartbeats. One process keeps COUNT
 * connections to an echo process over AF_UNIX, each with its own libuv
 * timer ticking every second from a random phase; at every tick it writes
 * 32 bytes and reads them back. That is the system calls and wake-ups
 * vmic-hostd makes for COUNT VMs (one write, one read, one timer per VM
 * per second) and nothing else: no protocol, no state, no control socket.
 * heartbeat-scale runs it beside vmic-hostd in the same run, so the
 * daemon's CPU can be read against what this machine charges for the bare
 * traffic.
 *
 *   fanout [--slotted] DIR COUNT SECONDS [PINGER_CPU ECHO_CPU]
 *
 * --slotted: instead of one timer per connection, one timer for all of
 * them, waking at the end of every 4 ms slot and writing to each
 * connection whose phase falls in it, as vmic-hostd's timing wheel does
 * (src/host/clock.h, HCLOCK_SLOT_US). That is the floor for the same
 * traffic with one wake-up per slot rather than one per connection.
 *
 * The echo process listens on DIR/fanout.sock. After 5 s of warm-up the
 * pinger measures SECONDS and prints
 * "cpu_pct C p50_us P p99_us Q samples N" (C: its own user + system time
 * in % of one core). With the two CPUs given, each process is pinned to
 * its own, as heartbeat-scale pins vmic-hostd and the simulators.
 */
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define MSG 32
#define WARMUP_MS 5000

#define SLOT_MS 4
#define SLOTS (1000 / SLOT_MS)

struct link {
	struct link *next_in_slot;
	uv_pipe_t pipe;
	uv_timer_t tick;
	uint64_t due_ms; /* the next tick, on the loop's clock */
	uint64_t sent_ns;
	size_t have;
	char buf[MSG];
};

static uv_loop_t *loop;
static char msg[MSG];
static uint32_t *rtt;
static size_t nrtt, rtt_cap;
static bool measuring;
static bool slotted;
static struct link *slot_links[SLOTS];
static uv_timer_t slot_timer;
static uint64_t slot_due_ms, slot_index;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		perror("fanout: sched_setaffinity");
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
	struct link *l = h->data;

	(void)s;
	*b = uv_buf_init(l->buf + l->have, (unsigned)(MSG - l->have));
}

/* n more bytes read into l->buf: true once a whole message is there. */
static bool message_done(uv_stream_t *s, struct link *l, ssize_t n)
{
	if (n < 0) {
		uv_read_stop(s);
		return false;
	}
	l->have += (size_t)n;
	if (l->have < MSG)
		return false;
	l->have = 0;
	return true;
}

/* ---- the echo process ---- */

static void echo_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct link *l = s->data;
	uv_buf_t out = uv_buf_init(l->buf, MSG);

	(void)b;
	if (message_done(s, l, n))
		uv_try_write(s, &out, 1);
}

static void echo_accept(uv_stream_t *server, int status)
{
	struct link *l;

	if (status < 0)
		return;
	l = calloc(1, sizeof(*l));
	if (!l)
		abort();
	uv_pipe_init(loop, &l->pipe, 0);
	l->pipe.data = l;
	if (uv_accept(server, (uv_stream_t *)&l->pipe) == 0)
		uv_read_start((uv_stream_t *)&l->pipe, on_alloc, echo_read);
}

static void on_term(uv_signal_t *s, int signo)
{
	(void)signo;
	uv_stop(s->loop);
}

static int run_echo(const char *path, int ready_fd)
{
	uv_pipe_t server;
	uv_signal_t sig;

	uv_pipe_init(loop, &server, 0);
	unlink(path);
	if (uv_pipe_bind(&server, path) < 0 ||
	    uv_listen((uv_stream_t *)&server, 4096, echo_accept) < 0)
		return 1;
	uv_signal_init(loop, &sig);
	uv_signal_start(&sig, on_term, SIGTERM);
	if (write(ready_fd, "r", 1) != 1)
		return 1;
	close(ready_fd);
	uv_run(loop, UV_RUN_DEFAULT);
	return 0;
}

/* ---- the pinger ---- */

/*
 * Ticks at absolute deadlines, as vmic-hostd's: a repeating libuv timer
 * re-arms from the loop's time, so timers that fire in one iteration
 * share a phase from then on and the ticks bunch up within a minute.
 */
static void on_tick(uv_timer_t *t)
{
	struct link *l = t->data;
	uv_buf_t b = uv_buf_init(msg, MSG);
	uint64_t now = uv_now(loop);

	l->due_ms += 1000;
	if (l->due_ms <= now)
		l->due_ms = now + 1;
	uv_timer_start(&l->tick, on_tick, l->due_ms - now, 0);
	l->sent_ns = now_ns();
	uv_try_write((uv_stream_t *)&l->pipe, &b, 1);
}

/* The slotted schedule: one timer, every connection of the slot. */
static void on_slot(uv_timer_t *t)
{
	uv_buf_t b = uv_buf_init(msg, MSG);
	uint64_t now = uv_now(loop);

	(void)t;
	do {
		for (struct link *l = slot_links[slot_index % SLOTS]; l;
		     l = l->next_in_slot) {
			l->sent_ns = now_ns();
			uv_try_write((uv_stream_t *)&l->pipe, &b, 1);
		}
		slot_index++;
		slot_due_ms += SLOT_MS;
	} while (slot_due_ms <= now);
	uv_timer_start(&slot_timer, on_slot, slot_due_ms - now, 0);
}

static void ping_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct link *l = s->data;

	(void)b;
	if (message_done(s, l, n) && measuring && nrtt < rtt_cap)
		rtt[nrtt++] = (uint32_t)((now_ns() - l->sent_ns) / 1000);
}

/* A connected socket, or -1 (errno set). */
static int connect_to(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* COUNT connections, each with its first tick at a random phase. */
static int start_links(const char *path, unsigned count)
{
	struct link *links = calloc(count, sizeof(*links));

	if (!links)
		return -1;
	for (unsigned i = 0; i < count; i++) {
		struct link *l = &links[i];
		int fd = connect_to(path);

		if (fd < 0)
			return -1;
		uv_pipe_init(loop, &l->pipe, 0);
		uv_pipe_open(&l->pipe, fd);
		l->pipe.data = l;
		uv_read_start((uv_stream_t *)&l->pipe, on_alloc, ping_read);
		if (slotted) {
			unsigned k = (unsigned)rand() % SLOTS;

			l->next_in_slot = slot_links[k];
			slot_links[k] = l;
			continue;
		}
		uv_timer_init(loop, &l->tick);
		l->tick.data = l;
		l->due_ms = uv_now(loop) + 1 + (uint64_t)rand() % 1000;
		uv_timer_start(&l->tick, on_tick, l->due_ms - uv_now(loop), 0);
	}
	if (slotted) {
		uv_timer_init(loop, &slot_timer);
		slot_due_ms = uv_now(loop) + SLOT_MS;
		uv_timer_start(&slot_timer, on_slot, SLOT_MS, 0);
	}
	return 0;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static double cpu0, cpu_pct;
static uint64_t t0;

static void on_measure_start(uv_timer_t *t)
{
	(void)t;
	measuring = true;
	cpu0 = cpu_seconds();
	t0 = now_ns();
}

static void on_measure_end(uv_timer_t *t)
{
	(void)t;
	measuring = false;
	cpu_pct = 100.0 * (cpu_seconds() - cpu0) / ((double)(now_ns() - t0) / 1e9);
	uv_stop(loop);
}

static int cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	unsigned count, seconds;
	uv_timer_t start, end;
	struct rlimit rl;
	char path[108];
	int ready[2], cpu_ping = -1, cpu_echo = -1;
	pid_t pid;
	char c;

	if (argc > 1 && strcmp(argv[1], "--slotted") == 0) {
		slotted = true;
		argc--;
		argv++;
	}
	if (argc != 4 && argc != 6) {
		fprintf(stderr, "usage: fanout [--slotted] DIR COUNT SECONDS "
				"[PINGER_CPU ECHO_CPU]\n");
		return 2;
	}
	count = (unsigned)strtoul(argv[2], NULL, 10);
	seconds = (unsigned)strtoul(argv[3], NULL, 10);
	if (argc == 6) {
		cpu_ping = atoi(argv[4]);
		cpu_echo = atoi(argv[5]);
	}
	snprintf(path, sizeof(path), "%s/fanout.sock", argv[1]);
	if (!count || !seconds || pipe(ready) < 0)
		return 2;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	memset(msg, 'p', sizeof(msg));
	pid = fork();
	if (pid < 0)
		return 1;
	loop = uv_default_loop();
	if (pid == 0) {
		close(ready[0]);
		pin(cpu_echo);
		return run_echo(path, ready[1]);
	}
	close(ready[1]);
	pin(cpu_ping);
	if (read(ready[0], &c, 1) != 1) {
		fprintf(stderr, "fanout: the echo process did not start\n");
		return 1;
	}
	rtt_cap = (size_t)count * (seconds + 2);
	rtt = calloc(rtt_cap, sizeof(*rtt));
	if (!rtt)
		return 1;
	if (start_links(path, count) < 0) {
		perror("fanout: connecting to the echo process");
		kill(pid, SIGTERM);
		return 1;
	}
	uv_timer_init(loop, &start);
	uv_timer_init(loop, &end);
	uv_timer_start(&start, on_measure_start, WARMUP_MS, 0);
	uv_timer_start(&end, on_measure_end, WARMUP_MS + seconds * 1000ull, 0);
	uv_run(loop, UV_RUN_DEFAULT);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	unlink(path);
	qsort(rtt, nrtt, sizeof(*rtt), cmp);
	printf("cpu_pct %.2f p50_us %u p99_us %u samples %zu\n", cpu_pct,
	       nrtt ? rtt[nrtt / 2] : 0, nrtt ? rtt[nrtt * 99 / 100] : 0,
	       nrtt);
	return nrtt ? 0 : 1;
}
