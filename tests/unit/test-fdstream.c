/* SPDX-License-Identifier: MIT */
/*
 * The descriptor helper (src/transport/fdstream*.c) end to end: two real
 * links over a socketpair(AF_UNIX) on one libuv loop, a pump on one and
 * a sink on the other, driving real files on tmpfs, pipes, sockets, a
 * pty and devices.
 *
 * One case puts the sink on a loop of its own in another thread, as two
 * processes would be, and some give link a a raw socket as its peer.
 *
 * It checks that every byte arrives, in order (XXH3-128 of the source,
 * of what the destination holds, and of what each side's tap saw), for
 * sizes around the buffer, the chunk and the window; that a slow reader
 * stalls the sender through credit while memory stays within the bounds
 * the helper reports; that local errors (ENOSPC halfway on a small tmpfs,
 * EFBIG, EPIPE) and resets from either side at every stage end both
 * helpers with the right code and sentence, and callbacks come exactly
 * once (never after a cancel); that descriptors are checked up front,
 * never leaked, and their O_NONBLOCK flag is given back.
 *
 * The test mounts its own tmpfs over /tmp in a private mount namespace
 * when it may (root), and a 1 MiB one for ENOSPC; the machine never sees
 * them. Otherwise files go to /dev/shm and the ENOSPC case is skipped,
 * saying why.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <linux/magic.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include <termios.h>

#include "testutil.h"
#include "tu-loop.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "common/macro.h"
#include "common/wire.h"
#include "proto/control.h"
#include "proto/frame.h"
#include "transport/fdstream.h"
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

#define SVC VMIC_SVC_FILECOPY
#define PATTERN (1u << 20)
#define WAIT_MS 60000
#define KIB 1024u
#define MIB (1024u * 1024)
#define WINDOW VMIC_STREAM_WINDOW_DEFAULT
#define BUF VMIC_FDSTREAM_BUF_DEFAULT
/* The small tmpfs that runs out of space. */
#define SMALL_FS (1 * MIB)

static uint8_t pattern[PATTERN];
/* Short paths, so that names below them always fit PATH_MAX. */
static char files_dir[256];  /* tmpfs for the files */
static char small_dir[256];  /* 1 MiB tmpfs, or "" */
static char no_small_why[160];

/* ---- fixture: one loop, two linked ends -------------------------------- */

struct side {
	struct vmic_link link;
	bool closed;
};

struct fx {
	uv_loop_t loop;
	uv_timer_t tick; /* wakes the loop, so waits can time out */
	struct side a, b; /* a: the pumps ("hostd"), b: the sinks */
	int fds_before;
};

static void side_on_close(void *ud, int reason)
{
	struct side *s = ud;

	(void)reason;
	s->closed = true;
}

static int side_on_frame(void *ud, const struct vmic_frame *f)
{
	(void)ud;
	(void)f;
	return 0;
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

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}

static void link_pair(struct fx *fx, int sv[2])
{
	assert_int_equal(vmic_link_open(&fx->a.link, wrap(&fx->loop, sv[0]),
					false, &side_ops, &fx->a),
			 0);
	assert_int_equal(vmic_link_open(&fx->b.link, wrap(&fx->loop, sv[1]),
					false, &side_ops, &fx->b),
			 0);
	assert_int_equal(vmic_link_streams_attach(&fx->a.link, false, 0), 0);
	assert_int_equal(vmic_link_streams_attach(&fx->b.link, true, 0), 0);
}

static void tick(uv_timer_t *t)
{
	(void)t;
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	int sv[2];

	if (!fx)
		return -1;
	fx->fds_before = count_fds();
	if (uv_loop_init(&fx->loop) < 0)
		return -1;
	uv_timer_init(&fx->loop, &fx->tick);
	uv_timer_start(&fx->tick, tick, 5, 5);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	link_pair(fx, sv);
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
	uv_close((uv_handle_t *)&fx->tick, NULL);
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&fx->loop), 0);
	/* Every duplicate the helpers made is closed again. */
	assert_int_equal(count_fds(), fx->fds_before);
	free(fx);
	return 0;
}

/* ---- one helper's outcome ---------------------------------------------- */

struct end {
	struct vmic_fdstream *f;
	int calls;
	int err;
	uint16_t code;
	char msg[VMIC_ERROR_MSG_MAX + 1];
	struct vmic_fdstream_stats st; /* at on_done */
	XXH3_state_t *h;               /* of what the tap saw */
	uint64_t tapped;
	/* cancel from the tap once this many bytes were seen (0: never) */
	uint64_t cancel_after;
	uint16_t cancel_code;
	const char *cancel_msg;
	struct side *side; /* for the window check of the tap */
};

static void end_init(struct end *e)
{
	XXH3_state_t *h = e->h;

	memset(e, 0, sizeof(*e));
	e->h = h ? h : XXH3_createState();
	assert_non_null(e->h);
	XXH3_128bits_reset(e->h);
}

static void end_free(struct end *e)
{
	XXH3_freeState(e->h);
	e->h = NULL;
}

static void on_done(void *ud, struct vmic_fdstream *f, int err,
		    uint16_t code, const char *message)
{
	struct end *e = ud;

	assert_ptr_equal(f, e->f);
	assert_non_null(message);
	e->calls++;
	e->err = err;
	e->code = code;
	snprintf(e->msg, sizeof(e->msg), "%s", message);
	vmic_fdstream_stats(f, &e->st);
	e->f = NULL;
}

static void on_chunk(void *ud, const uint8_t *p, size_t n)
{
	struct end *e = ud;

	assert_non_null(e->f);
	assert_true(n > 0);
	XXH3_128bits_update(e->h, p, n);
	e->tapped += n;
	if (e->cancel_after && e->tapped >= e->cancel_after) {
		vmic_fdstream_cancel(e->f, e->cancel_code, e->cancel_msg);
		e->f = NULL;
	}
}

static const struct vmic_fdstream_ops end_ops = {
	.on_done = on_done,
	.on_chunk = on_chunk,
};

static XXH128_hash_t end_hash(const struct end *e)
{
	return XXH3_128bits_digest(e->h);
}

static void open_pair(struct fx *fx, int src, int dst, struct end *pe,
		      struct end *se,
		      const struct vmic_fdstream_opts *popts,
		      const struct vmic_fdstream_opts *sopts)
{
	end_init(pe);
	end_init(se);
	assert_int_equal(vmic_fdstream_pump(&fx->a.link, 0, SVC, src, popts,
					    &end_ops, pe, &pe->f),
			 0);
	assert_int_equal(vmic_fdstream_id(pe->f) & VMIC_STREAM_GUEST_BIT, 0);
	assert_int_equal(vmic_fdstream_sink(&fx->b.link,
					    vmic_fdstream_id(pe->f), SVC, dst,
					    sopts, &end_ops, se, &se->f),
			 0);
}

/* ---- sources and destinations ------------------------------------------ */

/* The bytes [off, off + n) of the endless pattern. */
static void pattern_at(uint64_t off, uint8_t *p, size_t n)
{
	while (n) {
		size_t at = (size_t)(off % PATTERN);
		size_t k = MIN(n, PATTERN - at);

		memcpy(p, pattern + at, k);
		p += k;
		off += k;
		n -= k;
	}
}

static XXH128_hash_t pattern_hash(uint64_t size)
{
	XXH3_state_t *h = XXH3_createState();
	XXH128_hash_t r;

	XXH3_128bits_reset(h);
	for (uint64_t off = 0; off < size;) {
		size_t at = (size_t)(off % PATTERN);
		size_t k = (size_t)MIN((uint64_t)(PATTERN - at), size - off);

		XXH3_128bits_update(h, pattern + at, k);
		off += k;
	}
	r = XXH3_128bits_digest(h);
	XXH3_freeState(h);
	return r;
}

/* A new description of fd's file, open `how`; fd is closed. */
static int reopen(int fd, int how)
{
	char proc[64];
	int fd2;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	fd2 = open(proc, how | O_CLOEXEC);
	assert_true(fd2 >= 0);
	close(fd);
	return fd2;
}

/* A new file of `size` pattern bytes in dir; returns an fd open `how`. */
static int make_file(const char *dir, uint64_t size, int how)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/f-XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	assert_true(fd >= 0);
	unlink(path);
	for (uint64_t off = 0; off < size;) {
		size_t at = (size_t)(off % PATTERN);
		size_t k = (size_t)MIN((uint64_t)(PATTERN - at), size - off);
		ssize_t w = write(fd, pattern + at, k);

		assert_true(w > 0);
		off += (uint64_t)w;
	}
	if (how != O_RDWR)
		fd = reopen(fd, how);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* An empty destination file in dir (open for reading too, to check). */
static int make_dest(const char *dir)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/d-XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

/* Hash and size of what fd holds, read from offset 0. */
static XXH128_hash_t file_hash(int fd, uint64_t *size)
{
	XXH3_state_t *h = XXH3_createState();
	static uint8_t buf[256 * KIB];
	XXH128_hash_t r;
	off_t off = 0;
	ssize_t n;

	XXH3_128bits_reset(h);
	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		XXH3_128bits_update(h, buf, (size_t)n);
		off += n;
	}
	assert_true(n == 0);
	*size = (uint64_t)off;
	r = XXH3_128bits_digest(h);
	XXH3_freeState(h);
	return r;
}

static void assert_hash_eq(XXH128_hash_t a, XXH128_hash_t b)
{
	assert_true(XXH128_isEqual(a, b));
}

/* A pipe fed with `size` pattern bytes by a thread, then closed. */
struct feeder {
	pthread_t t;
	int fd;
	uint64_t size;
	int err;
};

static void *feed(void *arg)
{
	struct feeder *fd = arg;
	static __thread uint8_t buf[64 * KIB];

	for (uint64_t off = 0; off < fd->size;) {
		size_t k = (size_t)MIN((uint64_t)sizeof(buf), fd->size - off);
		ssize_t w;

		pattern_at(off, buf, k);
		w = write(fd->fd, buf, k);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fd->err = errno;
			break;
		}
		off += (uint64_t)w;
	}
	close(fd->fd);
	return NULL;
}

/* Returns the read end; the thread writes into the other. */
static int feeder_start(struct feeder *f, uint64_t size)
{
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	f->fd = p[1];
	f->size = size;
	f->err = 0;
	assert_int_equal(pthread_create(&f->t, NULL, feed, f), 0);
	return p[0];
}

static void feeder_join(struct feeder *f)
{
	pthread_join(f->t, NULL);
	assert_int_equal(f->err, 0);
}

/* A pipe read to its end by a thread, hashing what it reads. */
struct drainer {
	pthread_t t;
	int fd;
	uint64_t got;
	XXH128_hash_t hash;
};

static void *drain(void *arg)
{
	struct drainer *d = arg;
	XXH3_state_t *h = XXH3_createState();
	static __thread uint8_t buf[64 * KIB];
	ssize_t n;

	XXH3_128bits_reset(h);
	while ((n = read(d->fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		XXH3_128bits_update(h, buf, (size_t)n);
		d->got += (uint64_t)n;
	}
	d->hash = XXH3_128bits_digest(h);
	XXH3_freeState(h);
	close(d->fd);
	return NULL;
}

/* Returns the write end; the thread reads the other. */
static int drainer_start(struct drainer *d)
{
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	d->fd = p[0];
	d->got = 0;
	assert_int_equal(pthread_create(&d->t, NULL, drain, d), 0);
	return p[1];
}

static void wait_done(struct fx *fx, struct end *pe, struct end *se)
{
	TU_SPIN_UNTIL(&fx->loop, pe->calls && se->calls, WAIT_MS);
}

/* Both sides succeeded, moved `size` bytes, and kept to their bounds. */
static void assert_success(const struct end *pe, const struct end *se,
			   uint64_t size)
{
	XXH128_hash_t want = pattern_hash(size);

	if (pe->err || se->err)
		fail_msg("pump %d (%s), sink %d (%s)", pe->err, pe->msg,
			 se->err, se->msg);
	assert_int_equal(pe->calls, 1);
	assert_int_equal(se->calls, 1);
	assert_string_equal(pe->msg, "");
	assert_true(pe->st.bytes == size && se->st.bytes == size);
	assert_true(pe->tapped == size && se->tapped == size);
	assert_hash_eq(end_hash(pe), want);
	assert_hash_eq(end_hash(se), want);
	assert_true(pe->st.eof && se->st.eof);
	assert_int_equal(pe->st.buffered + se->st.buffered, 0);
	/* The memory bound, as reported and as promised. */
	assert_true(pe->st.peak_alloc <= pe->st.bound);
	assert_true(se->st.peak_alloc <= se->st.bound);
}

/* ---- file to file ------------------------------------------------------ */

static void copy_file(struct fx *fx, uint64_t size,
		      const struct vmic_fdstream_opts *po,
		      const struct vmic_fdstream_opts *so)
{
	int src = make_file(files_dir, size, O_RDONLY);
	int dst = make_dest(files_dir);
	struct end pe = { 0 }, se = { 0 };
	uint64_t got;
	uint32_t buf = po && po->buf_size ? po->buf_size : BUF;

	open_pair(fx, src, dst, &pe, &se, po, so);
	wait_done(fx, &pe, &se);
	assert_success(&pe, &se, size);
	assert_hash_eq(file_hash(dst, &got), pattern_hash(size));
	assert_true(got == size);
	assert_true(pe.st.pool && se.st.pool);
	assert_int_equal(pe.st.bound, 2 * buf);
	assert_int_equal(se.st.bound, so && so->window ? so->window : WINDOW);
	/* Both descriptors are left after the last byte. */
	assert_true(lseek(src, 0, SEEK_CUR) == (off_t)size);
	assert_true(lseek(dst, 0, SEEK_CUR) == (off_t)size);
	close(src);
	close(dst);
	end_free(&pe);
	end_free(&se);
}

static void test_file_sizes(void **state)
{
	static const uint64_t sizes[] = {
		0, 1, 64 * KIB - 1, 64 * KIB, 64 * KIB + 1, BUF - 1, BUF,
		BUF + 1, 2 * BUF + 1, WINDOW - 1, WINDOW, WINDOW + 1,
		3 * MIB + 7,
	};
	struct fx *fx = *state;

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
		copy_file(fx, sizes[i], NULL, NULL);
}

/* A big copy with small read buffers and the smallest window. */
static void test_file_small_buffers(void **state)
{
	struct fx *fx = *state;
	struct vmic_fdstream_opts po = { .buf_size = VMIC_FDSTREAM_BUF_MIN };
	struct vmic_fdstream_opts so = { .window = VMIC_STREAM_INITIAL_CREDIT };

	copy_file(fx, (SANITIZED ? 4 : 16) * MIB + 3, &po, &so);
	copy_file(fx, VMIC_STREAM_INITIAL_CREDIT + 1, &po, &so);
	copy_file(fx, VMIC_STREAM_INITIAL_CREDIT - 1, &po, &so);
}

/* The helper starts at the descriptor's position, not at 0. */
static void test_file_from_position(void **state)
{
	struct fx *fx = *state;
	int src = make_file(files_dir, 100 * KIB, O_RDONLY);
	int dst = make_dest(files_dir);
	struct end pe = { 0 }, se = { 0 };
	uint8_t head[10];
	uint64_t got;

	assert_int_equal(lseek(src, 1000, SEEK_SET), 1000);
	assert_int_equal(write(dst, "0123456789", 10), 10);
	open_pair(fx, src, dst, &pe, &se, NULL, NULL);
	wait_done(fx, &pe, &se);
	assert_int_equal(pe.err, 0);
	assert_int_equal(se.err, 0);
	assert_true(se.st.bytes == 100 * KIB - 1000);
	file_hash(dst, &got);
	assert_true(got == 100 * KIB - 1000 + 10);
	assert_int_equal(pread(dst, head, 10, 0), 10);
	assert_memory_equal(head, "0123456789", 10);
	assert_int_equal(pread(dst, head, 10, 10), 10);
	assert_memory_equal(head, pattern + 1000, 10);

	/* O_APPEND: behind what the file holds, wherever the position. */
	dst = reopen(dst, O_WRONLY | O_APPEND);
	assert_int_equal(lseek(dst, 0, SEEK_SET), 0);
	assert_int_equal(lseek(src, 0, SEEK_SET), 0);
	open_pair(fx, src, dst, &pe, &se, NULL, NULL);
	wait_done(fx, &pe, &se);
	assert_success(&pe, &se, 100 * KIB);
	dst = reopen(dst, O_RDONLY);
	file_hash(dst, &got);
	assert_true(got == 2 * 100 * KIB - 1000 + 10);
	assert_int_equal(pread(dst, head, 10, 100 * KIB - 1000 + 10), 10);
	assert_memory_equal(head, pattern, 10);
	close(src);
	close(dst);
	end_free(&pe);
	end_free(&se);
}

/*
 * A file on a disk file system: buffers the page cache holds are read on
 * the loop (RWF_NOWAIT), the others by the pool, and both give every byte
 * in order. Cold pages are made by dropping the file's cache first.
 */
static bool nowait_supported(int fd)
{
	char c;
	struct iovec iov = { &c, 1 };

	return preadv2(fd, &iov, 1, 0, RWF_NOWAIT) >= 0 || errno == EAGAIN;
}

static void copy_disk_file(struct fx *fx, int src, uint64_t size,
			   bool cached)
{
	int dst = make_dest(files_dir);
	struct end pe = { 0 }, se = { 0 };
	uint64_t got;

	assert_int_equal(lseek(src, 0, SEEK_SET), 0);
	if (!cached)
		assert_int_equal(posix_fadvise(src, 0, 0, POSIX_FADV_DONTNEED),
				 0);
	open_pair(fx, src, dst, &pe, &se, NULL, NULL);
	wait_done(fx, &pe, &se);
	assert_success(&pe, &se, size);
	assert_hash_eq(file_hash(dst, &got), pattern_hash(size));
	assert_true(got == size);
	assert_true(lseek(src, 0, SEEK_CUR) == (off_t)size);
	if (cached)
		assert_true(pe.st.loop_reads > 0);
	close(dst);
	end_free(&pe);
	end_free(&se);
}

static void test_file_from_page_cache(void **state)
{
	static const char *const dirs[] = { "/var/tmp", "/tmp" };
	struct fx *fx = *state;
	uint64_t size = 3 * MIB + 5;
	struct statfs sf;
	int src = -1;

	for (size_t i = 0; i < ARRAY_SIZE(dirs) && src < 0; i++) {
		if (statfs(dirs[i], &sf) < 0 || sf.f_type == TMPFS_MAGIC ||
		    access(dirs[i], W_OK) < 0)
			continue;
		src = make_file(dirs[i], size, O_RDWR);
		if (!nowait_supported(src)) {
			close(src);
			src = -1;
		}
	}
	if (src < 0) {
		print_message("skipped: no writable disk file system with "
			      "RWF_NOWAIT reads in /var/tmp or /tmp, so the "
			      "loop-read path is not tested\n");
		skip();
	}
	assert_int_equal(fsync(src), 0);
	copy_disk_file(fx, src, size, true);
	copy_disk_file(fx, src, size, false);
	close(src);
}

/* ---- pipes, sockets, a pty, devices ------------------------------------ */

static void copy_pipe_to_pipe(struct fx *fx, uint64_t size)
{
	struct feeder fe;
	struct drainer dr;
	int src = feeder_start(&fe, size);
	int dst = drainer_start(&dr);
	struct end pe = { 0 }, se = { 0 };

	open_pair(fx, src, dst, &pe, &se, NULL, NULL);
	wait_done(fx, &pe, &se);
	assert_success(&pe, &se, size);
	assert_false(pe.st.pool || se.st.pool);
	assert_int_equal(pe.st.bound, BUF); /* one buffer when polled */
	/* O_NONBLOCK is given back to both descriptions. */
	assert_int_equal(fcntl(src, F_GETFL) & O_NONBLOCK, 0);
	assert_int_equal(fcntl(dst, F_GETFL) & O_NONBLOCK, 0);
	close(src);
	close(dst); /* the drainer sees EOF now */
	feeder_join(&fe);
	pthread_join(dr.t, NULL);
	assert_true(dr.got == size);
	assert_hash_eq(dr.hash, pattern_hash(size));
	end_free(&pe);
	end_free(&se);
}

static void test_pipe_sizes(void **state)
{
	static const uint64_t sizes[] = {
		0, 1, 64 * KIB - 1, 64 * KIB + 1, WINDOW + 1, 5 * MIB + 3,
	};
	struct fx *fx = *state;

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
		copy_pipe_to_pipe(fx, sizes[i]);
}

/* A file into a pipe and a pipe into a file. */
static void test_file_pipe_mixed(void **state)
{
	struct fx *fx = *state;
	uint64_t size = 2 * MIB + 5, got;
	struct feeder fe;
	struct drainer dr;
	struct end pe = { 0 }, se = { 0 };
	int src = make_file(files_dir, size, O_RDONLY);
	int dst = drainer_start(&dr);

	open_pair(fx, src, dst, &pe, &se, NULL, NULL);
	wait_done(fx, &pe, &se);
	assert_success(&pe, &se, size);
	assert_true(pe.st.pool && !se.st.pool);
	close(src);
	close(dst);
	pthread_join(dr.t, NULL);
	assert_hash_eq(dr.hash, pattern_hash(size));

	src = feeder_start(&fe, size);
	dst = make_dest(files_dir);
	open_pair(fx, src, dst, &pe, &se, NULL, NULL);
	wait_done(fx, &pe, &se);
	assert_success(&pe, &se, size);
	assert_true(!pe.st.pool && se.st.pool);
	assert_hash_eq(file_hash(dst, &got), pattern_hash(size));
	close(src);
	close(dst);
	feeder_join(&fe);
	end_free(&pe);
	end_free(&se);
}

/* Sockets are read and written with MSG_DONTWAIT: flags stay as they were. */
static void test_sockets(void **state)
{
	struct fx *fx = *state;
	uint64_t size = 3 * MIB + 1;
	struct feeder fe;
	struct drainer dr;
	struct end pe = { 0 }, se = { 0 };
	int in[2], out[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    in),
			 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    out),
			 0);
	/* The threads use the far ends, the helpers the near ones. */
	fe.fd = in[1];
	fe.size = size;
	fe.err = 0;
	assert_int_equal(pthread_create(&fe.t, NULL, feed, &fe), 0);
	dr.fd = out[1];
	dr.got = 0;
	assert_int_equal(pthread_create(&dr.t, NULL, drain, &dr), 0);
	open_pair(fx, in[0], out[0], &pe, &se, NULL, NULL);
	TU_SPIN_UNTIL(&fx->loop, se.tapped > 0, WAIT_MS);
	assert_int_equal(fcntl(in[0], F_GETFL) & O_NONBLOCK, 0);
	assert_int_equal(fcntl(out[0], F_GETFL) & O_NONBLOCK, 0);
	wait_done(fx, &pe, &se);
	assert_success(&pe, &se, size);
	close(in[0]);
	close(out[0]);
	feeder_join(&fe);
	pthread_join(dr.t, NULL);
	assert_hash_eq(dr.hash, pattern_hash(size));
	end_free(&pe);
	end_free(&se);
}

/* A pty master: what the slave side wrote, then EIO, which is EOF. */
static void test_pty_master_eof(void **state)
{
	struct fx *fx = *state;
	uint64_t size = 300 * KIB + 11;
	struct termios t;
	struct feeder fe;
	struct drainer dr;
	struct end pe = { 0 }, se = { 0 };
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), slave, dst;

	if (master < 0)
		skip();
	assert_int_equal(grantpt(master), 0);
	assert_int_equal(unlockpt(master), 0);
	slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(slave >= 0);
	assert_int_equal(tcgetattr(slave, &t), 0);
	cfmakeraw(&t);
	assert_int_equal(tcsetattr(slave, TCSANOW, &t), 0);
	fe.fd = slave; /* the feeder closes it when done */
	fe.size = size;
	fe.err = 0;
	assert_int_equal(pthread_create(&fe.t, NULL, feed, &fe), 0);
	dst = drainer_start(&dr);
	open_pair(fx, master, dst, &pe, &se, NULL, NULL);
	wait_done(fx, &pe, &se);
	assert_success(&pe, &se, size);
	assert_false(pe.st.pool);
	assert_int_equal(fcntl(master, F_GETFL) & O_NONBLOCK, 0);
	close(master);
	feeder_join(&fe);
	close(dst);
	pthread_join(dr.t, NULL);
	assert_hash_eq(dr.hash, pattern_hash(size));
	end_free(&pe);
	end_free(&se);
}

/* Devices epoll cannot watch go to the pool: /dev/zero into /dev/null. */
static void test_unpollable_devices(void **state)
{
	struct fx *fx = *state;
	struct end pe = { 0 }, se = { 0 };
	int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

	assert_true(zero >= 0 && null >= 0);
	open_pair(fx, zero, null, &pe, &se, NULL, NULL);
	/* Endless: the pump's tap stops it after 3 MiB. */
	pe.cancel_after = 3 * MIB;
	pe.cancel_code = VMIC_E_FAILED;
	pe.cancel_msg = "enough zeros";
	TU_SPIN_UNTIL(&fx->loop, se.calls, WAIT_MS);
	assert_int_equal(pe.calls, 0); /* cancelled: no callback */
	assert_int_equal(se.err, -ECONNABORTED);
	assert_int_equal(se.code, VMIC_E_FAILED);
	assert_string_equal(se.msg, "enough zeros");
	assert_true(se.st.pool);
	assert_true(se.tapped > 0 && se.tapped <= pe.tapped);
	close(zero);
	close(null);
	end_free(&pe);
	end_free(&se);
}

/* ---- a slow reader: credit stalls the sender, memory stays bounded ------ */

struct slow {
	struct fx *fx;
	struct end *pe, *se;
	int fd;         /* the pipe's read end, non-blocking */
	size_t per_tick;
	uint64_t got;
	XXH3_state_t *h;
	uint64_t max_ahead; /* pump's bytes beyond what the sink wrote */
	size_t max_rx_held;
	bool eof;
};

static void slow_tick(uv_timer_t *t)
{
	struct slow *s = t->data;
	static uint8_t buf[64 * KIB];
	struct vmic_fdstream_stats ps, ss;
	struct vmic_link_stats ls;
	size_t want = s->per_tick;

	if (s->pe->f && s->se->f) {
		vmic_fdstream_stats(s->pe->f, &ps);
		vmic_fdstream_stats(s->se->f, &ss);
		s->max_ahead = MAX(s->max_ahead, ps.bytes - ss.bytes);
		/* The sink never holds more than its window. */
		assert_true(ss.alloc <= ss.bound);
		assert_true(ss.buffered <= ss.bound);
	}
	vmic_link_stats(&s->fx->b.link, &ls);
	s->max_rx_held = MAX(s->max_rx_held, ls.rx_held);
	while (want && !s->eof) {
		ssize_t n = read(s->fd, buf, MIN(want, sizeof(buf)));

		if (n < 0 && errno == EAGAIN)
			break;
		assert_true(n >= 0);
		if (n == 0) {
			s->eof = true;
			break;
		}
		XXH3_128bits_update(s->h, buf, (size_t)n);
		s->got += (uint64_t)n;
		want -= (size_t)n;
	}
}

static void test_slow_reader(void **state)
{
	struct fx *fx = *state;
	uint64_t size = (SANITIZED ? 4 : 8) * MIB + 1;
	struct end pe = { 0 }, se = { 0 };
	struct slow s = { .fx = fx, .pe = &pe, .se = &se };
	uv_timer_t timer;
	int p[2], src = make_file(files_dir, size, O_RDONLY);

	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	/* The writer's end blocks; the helper's O_NONBLOCK must not stay. */
	assert_int_equal(fcntl(p[1], F_SETFL, 0), 0);
	s.fd = p[0];
	s.per_tick = 32 * KIB; /* 32 MB/s: far slower than the sender */
	s.h = XXH3_createState();
	XXH3_128bits_reset(s.h);
	uv_timer_init(&fx->loop, &timer);
	timer.data = &s;
	uv_timer_start(&timer, slow_tick, 1, 1);
	open_pair(fx, src, p[1], &pe, &se, NULL, NULL);
	TU_SPIN_UNTIL(&fx->loop, pe.calls && se.calls, WAIT_MS * 2);
	assert_success(&pe, &se, size);
	close(p[1]); /* the reader sees EOF after the rest */
	TU_SPIN_UNTIL(&fx->loop, s.eof, WAIT_MS);
	uv_close((uv_handle_t *)&timer, NULL);
	close(p[0]);
	assert_true(s.got == size);
	assert_hash_eq(XXH3_128bits_digest(s.h), pattern_hash(size));
	/* The sender was held back by credit: it waited, and never ran more
	 * than a window ahead of what the reader had taken. */
	assert_true(pe.st.waits > 0);
	assert_true(se.st.waits > 0);
	assert_true(s.max_ahead <= WINDOW);
	assert_true(s.max_ahead >= WINDOW / 2);
	assert_true(s.max_rx_held <= WINDOW);
	assert_true(se.st.peak_alloc <= WINDOW);
	assert_true(pe.st.peak_alloc <= 2 * BUF);
	print_message("# slow reader: %llu MiB, sender ahead by at most %llu "
		      "KiB (window %u KiB), sink buffer peak %zu KiB, pump "
		      "waited %llu times\n",
		      (unsigned long long)(size >> 20),
		      (unsigned long long)(s.max_ahead / KIB), WINDOW / KIB,
		      se.st.peak_alloc / KIB,
		      (unsigned long long)pe.st.waits);
	XXH3_freeState(s.h);
	close(src);
	end_free(&pe);
	end_free(&se);
}

/* ---- two loops, two threads ------------------------------------------- */

struct far_side {
	uv_loop_t loop;
	struct side side;
	struct end se;
	pthread_t t;
};

static void far_done(void *ud, struct vmic_fdstream *f, int err,
		     uint16_t code, const char *message)
{
	struct far_side *fs = ud;

	(void)f;
	fs->se.calls++;
	fs->se.err = err;
	fs->se.code = code;
	snprintf(fs->se.msg, sizeof(fs->se.msg), "%s", message);
	vmic_fdstream_stats(f, &fs->se.st);
	vmic_link_close(&fs->side.link, 0);
}

static void far_chunk(void *ud, const uint8_t *p, size_t n)
{
	struct far_side *fs = ud;

	XXH3_128bits_update(fs->se.h, p, n);
	fs->se.tapped += n;
}

static const struct vmic_fdstream_ops far_ops = {
	.on_done = far_done,
	.on_chunk = far_chunk,
};

static void *far_run(void *arg)
{
	struct far_side *fs = arg;

	uv_run(&fs->loop, UV_RUN_DEFAULT);
	return NULL;
}

/*
 * The sink on a loop of its own in another thread, as in two processes:
 * the peer drains the socket while the pump is still inside its write.
 * Large reads make the pump stop at short writes and wait for
 * on_writable, which must come even when the socket that was full
 * drained within the call.
 */
static void test_sink_on_another_thread(void **state)
{
	struct fx *fx = *state;
	struct vmic_fdstream_opts po = { .buf_size = VMIC_FDSTREAM_BUF_MAX };
	uint64_t size = (SANITIZED ? 64 : 128) * MIB + 3, got, end;
	struct far_side *fs = calloc(1, sizeof(*fs));
	struct end pe = { 0 };
	int sv[2], src = make_file(files_dir, size, O_RDONLY);
	int dst = make_dest(files_dir);
	bool stalled;

	assert_non_null(fs);
	/* Link a of the fixture gets a new peer, on the far loop. */
	vmic_link_close(&fx->a.link, 0);
	vmic_link_close(&fx->b.link, 0);
	TU_SPIN_UNTIL(&fx->loop, fx->a.closed && fx->b.closed, WAIT_MS);
	memset(&fx->a, 0, sizeof(fx->a));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sv),
			 0);
	assert_int_equal(vmic_link_open(&fx->a.link, wrap(&fx->loop, sv[0]),
					false, &side_ops, &fx->a),
			 0);
	assert_int_equal(vmic_link_streams_attach(&fx->a.link, false, 0), 0);
	assert_int_equal(uv_loop_init(&fs->loop), 0);
	assert_int_equal(vmic_link_open(&fs->side.link,
					wrap(&fs->loop, sv[1]), false,
					&side_ops, &fs->side),
			 0);
	assert_int_equal(vmic_link_streams_attach(&fs->side.link, true, 0), 0);
	end_init(&pe);
	end_init(&fs->se);
	assert_int_equal(vmic_fdstream_sink(&fs->side.link, 7, SVC, dst, NULL,
					    &far_ops, fs, &fs->se.f),
			 0);
	/* From here on, the far loop is its thread's alone. */
	assert_int_equal(pthread_create(&fs->t, NULL, far_run, fs), 0);
	assert_int_equal(vmic_fdstream_pump(&fx->a.link, 7, SVC, src, &po,
					    &end_ops, &pe, &pe.f),
			 0);
	end = tu_now_ms() + 2 * WAIT_MS;
	while (!(pe.calls && fx->a.closed) && tu_now_ms() < end)
		uv_run(&fx->loop, UV_RUN_ONCE);
	stalled = !pe.calls;
	if (stalled)
		vmic_link_close(&fx->a.link, 0); /* ends the far side too */
	pthread_join(fs->t, NULL);
	if (stalled)
		fail_msg("the pump stalled after reading %llu bytes",
			 (unsigned long long)pe.tapped);
	assert_int_equal(uv_loop_close(&fs->loop), 0);
	fs->se.f = NULL;
	assert_success(&pe, &fs->se, size);
	assert_hash_eq(file_hash(dst, &got), pattern_hash(size));
	assert_true(got == size);
	fx->b.closed = true;
	end_free(&pe);
	end_free(&fs->se);
	free(fs);
	close(src);
	close(dst);
}

/* ---- local errors ------------------------------------------------------ */

/* The sink fails with err; the pump hears the reset with its sentence. */
static void expect_sink_error(struct end *pe, struct end *se, int err,
			      const char *sentence)
{
	assert_int_equal(se->calls, 1);
	assert_int_equal(se->err, err);
	assert_int_equal(se->code, VMIC_E_FAILED);
	assert_string_equal(se->msg, sentence);
	assert_int_equal(pe->calls, 1);
	assert_int_equal(pe->err, -ECONNABORTED);
	assert_int_equal(pe->code, VMIC_E_FAILED);
	assert_string_equal(pe->msg, sentence);
}

static void test_enospc_halfway(void **state)
{
	struct fx *fx = *state;
	uint64_t size = 4 * SMALL_FS, got;
	struct end pe = { 0 }, se = { 0 };
	int src, dst;

	if (!small_dir[0]) {
		print_message("# skipped: %s\n", no_small_why);
		skip();
	}
	src = make_file(files_dir, size, O_RDONLY);
	dst = make_dest(small_dir);
	open_pair(fx, src, dst, &pe, &se, NULL, NULL);
	wait_done(fx, &pe, &se);
	expect_sink_error(&pe, &se, -ENOSPC,
			  "no space left on the destination's file system");
	/* Halfway: what fit is written, the rest was never asked for. */
	file_hash(dst, &got);
	assert_true(got > 0 && got <= SMALL_FS);
	assert_true(se.st.bytes == got);
	assert_true(pe.st.bytes < size);
	assert_true(pe.st.bytes <= got + WINDOW);
	close(src);
	close(dst);
	end_free(&pe);
	end_free(&se);
}

/* RLIMIT_FSIZE: EFBIG on any file system, as root or not. */
static void test_efbig(void **state)
{
	struct fx *fx = *state;
	struct rlimit old, small = { 512 * KIB, 0 };
	struct end pe = { 0 }, se = { 0 };
	uint64_t got;
	int src = make_file(files_dir, 2 * MIB, O_RDONLY);
	int dst = make_dest(files_dir);

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small.rlim_max = old.rlim_max;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	open_pair(fx, src, dst, &pe, &se, NULL, NULL);
	wait_done(fx, &pe, &se);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	expect_sink_error(&pe, &se, -EFBIG,
			  "the destination file would grow beyond its size "
			  "limit");
	file_hash(dst, &got);
	assert_true(got == 512 * KIB && se.st.bytes == got);
	close(src);
	close(dst);
	end_free(&pe);
	end_free(&se);
}

static void test_epipe(void **state)
{
	struct fx *fx = *state;
	struct end pe = { 0 }, se = { 0 };
	int p[2], src = make_file(files_dir, 2 * MIB, O_RDONLY);

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	close(p[0]); /* nobody reads */
	open_pair(fx, src, p[1], &pe, &se, NULL, NULL);
	wait_done(fx, &pe, &se);
	expect_sink_error(&pe, &se, -EPIPE, "the reader closed the pipe");
	assert_true(se.st.bytes == 0);
	close(p[1]);
	close(src);
	end_free(&pe);
	end_free(&se);
}

/* The reader goes away halfway, while the sink waits for room. */
static void test_epipe_halfway(void **state)
{
	struct fx *fx = *state;
	struct end pe = { 0 }, se = { 0 };
	static uint8_t buf[16 * KIB];
	int p[2], src = make_file(files_dir, 4 * MIB, O_RDONLY);

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	open_pair(fx, src, p[1], &pe, &se, NULL, NULL);
	TU_SPIN_UNTIL(&fx->loop, se.f && se.tapped >= WINDOW / 2, WAIT_MS);
	assert_int_equal(read(p[0], buf, sizeof(buf)), (ssize_t)sizeof(buf));
	close(p[0]);
	wait_done(fx, &pe, &se);
	expect_sink_error(&pe, &se, -EPIPE, "the reader closed the pipe");
	assert_true(se.st.bytes >= sizeof(buf));
	close(p[1]);
	close(src);
	end_free(&pe);
	end_free(&se);
}

/* ---- resets at every stage ----------------------------------------------- */

/* The sink refuses before any data arrived. */
static void test_sink_resets_before_data(void **state)
{
	struct fx *fx = *state;
	struct end pe = { 0 }, se = { 0 };
	int src = make_file(files_dir, 2 * MIB, O_RDONLY);
	int dst = make_dest(files_dir);
	uint64_t got;

	open_pair(fx, src, dst, &pe, &se, NULL, NULL);
	vmic_fdstream_cancel(se.f, VMIC_E_REFUSED, "the guest said no");
	se.f = NULL;
	TU_SPIN_UNTIL(&fx->loop, pe.calls, WAIT_MS);
	assert_int_equal(pe.err, -ECONNABORTED);
	assert_int_equal(pe.code, VMIC_E_REFUSED);
	assert_string_equal(pe.msg, "the guest said no");
	tu_spin_for(&fx->loop, 20);
	assert_int_equal(se.calls, 0);
	file_hash(dst, &got);
	assert_true(got == 0);
	close(src);
	close(dst);
	end_free(&pe);
	end_free(&se);
}

/* The pump gives up before it sent anything. */
static void test_pump_resets_before_data(void **state)
{
	struct fx *fx = *state;
	struct end pe = { 0 }, se = { 0 };
	struct feeder fe;
	int src = feeder_start(&fe, 0);
	int dst = make_dest(files_dir);

	feeder_join(&fe); /* an empty pipe: EOF, but not read yet */
	open_pair(fx, src, dst, &pe, &se, NULL, NULL);
	vmic_fdstream_cancel(pe.f, VMIC_E_FAILED, "the user pressed ^C");
	pe.f = NULL;
	/* The caller may close its descriptor at once. */
	close(src);
	TU_SPIN_UNTIL(&fx->loop, se.calls, WAIT_MS);
	assert_int_equal(se.err, -ECONNABORTED);
	assert_int_equal(se.code, VMIC_E_FAILED);
	assert_string_equal(se.msg, "the user pressed ^C");
	assert_true(se.tapped == 0);
	tu_spin_for(&fx->loop, 20);
	assert_int_equal(pe.calls, 0);
	close(dst);
	end_free(&pe);
	end_free(&se);
}

/* A file pump cancelled while its first read is on the thread pool. */
static void test_pump_cancel_read_in_flight(void **state)
{
	struct fx *fx = *state;
	struct end pe = { 0 }, se = { 0 };
	int src = make_file(files_dir, 4 * MIB, O_RDONLY);
	int dst = make_dest(files_dir);

	open_pair(fx, src, dst, &pe, &se, NULL, NULL);
	vmic_fdstream_cancel(pe.f, VMIC_E_FAILED, "stop");
	pe.f = NULL;
	close(src); /* the read in flight has the helper's own duplicate */
	TU_SPIN_UNTIL(&fx->loop, se.calls, WAIT_MS);
	assert_int_equal(se.err, -ECONNABORTED);
	assert_string_equal(se.msg, "stop");
	close(dst);
	end_free(&pe);
	end_free(&se);
}

/* The receiver resets mid-stream, from its tap. */
static void test_sink_resets_mid_stream(void **state)
{
	struct fx *fx = *state;
	struct end pe = { 0 }, se = { 0 };
	uint64_t got;
	int src = make_file(files_dir, 8 * MIB, O_RDONLY);
	int dst = make_dest(files_dir);

	open_pair(fx, src, dst, &pe, &se, NULL, NULL);
	se.cancel_after = 2 * MIB;
	se.cancel_code = VMIC_E_TOO_LARGE;
	se.cancel_msg = "the guest's quota is 2 MiB";
	TU_SPIN_UNTIL(&fx->loop, pe.calls, WAIT_MS);
	assert_int_equal(pe.err, -ECONNABORTED);
	assert_int_equal(pe.code, VMIC_E_TOO_LARGE);
	assert_string_equal(pe.msg, "the guest's quota is 2 MiB");
	assert_true(pe.st.bytes >= 2 * MIB && pe.st.bytes < 8 * MIB);
	tu_spin_for(&fx->loop, 20);
	assert_int_equal(se.calls, 0);
	file_hash(dst, &got);
	assert_true(got <= se.tapped);
	close(src);
	close(dst);
	end_free(&pe);
	end_free(&se);
}

/* The sender resets mid-stream: the sink ends after its write returns. */
static void test_pump_resets_mid_stream(void **state)
{
	struct fx *fx = *state;
	struct end pe = { 0 }, se = { 0 };
	uint64_t got;
	int src = make_file(files_dir, 8 * MIB, O_RDONLY);
	int dst = make_dest(files_dir);

	open_pair(fx, src, dst, &pe, &se, NULL, NULL);
	pe.cancel_after = 3 * MIB;
	pe.cancel_code = VMIC_E_FAILED;
	pe.cancel_msg = "the source file shrank";
	TU_SPIN_UNTIL(&fx->loop, se.calls, WAIT_MS);
	assert_int_equal(se.err, -ECONNABORTED);
	assert_int_equal(se.code, VMIC_E_FAILED);
	assert_string_equal(se.msg, "the source file shrank");
	/* The destination holds a prefix of what was sent, in order. */
	{
		XXH128_hash_t h = file_hash(dst, &got);

		assert_hash_eq(h, pattern_hash(got));
	}
	assert_true(got == se.st.bytes && got <= se.tapped);
	assert_true(se.tapped <= pe.tapped);
	tu_spin_for(&fx->loop, 20);
	assert_int_equal(pe.calls, 0);
	close(src);
	close(dst);
	end_free(&pe);
	end_free(&se);
}

/*
 * END went out and the link closed before the sink finished writing:
 * the data is all there, so the sink still succeeds.
 */
static void test_sink_after_end_link_closes(void **state)
{
	struct fx *fx = *state;
	uint64_t size = 200 * KIB;
	struct end pe = { 0 }, se = { 0 };
	int p[2], src = make_file(files_dir, size, O_RDONLY);
	struct drainer dr;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	open_pair(fx, src, p[1], &pe, &se, NULL, NULL);
	/* Nobody reads the pipe yet: END arrives with data still held. */
	TU_SPIN_UNTIL(&fx->loop, pe.calls && se.f, WAIT_MS);
	TU_SPIN_UNTIL(&fx->loop, ({
			      struct vmic_fdstream_stats st;

			      vmic_fdstream_stats(se.f, &st);
			      st.eof;
		      }),
		      WAIT_MS);
	assert_int_equal(pe.err, 0);
	assert_int_equal(se.calls, 0);
	vmic_link_close(&fx->a.link, 0);
	TU_SPIN_UNTIL(&fx->loop, fx->b.closed, WAIT_MS);
	assert_int_equal(se.calls, 0);
	/* Now the pipe is read: the rest goes out and the sink succeeds. */
	dr.fd = p[0];
	dr.got = 0;
	assert_int_equal(pthread_create(&dr.t, NULL, drain, &dr), 0);
	TU_SPIN_UNTIL(&fx->loop, se.calls, WAIT_MS);
	assert_success(&pe, &se, size);
	close(p[1]);
	pthread_join(dr.t, NULL);
	assert_true(dr.got == size);
	close(src);
	end_free(&pe);
	end_free(&se);
}

/* Give link a of the fixture a raw socket end as its peer; returns it. */
static int raw_peer(struct fx *fx)
{
	int sv[2];

	vmic_link_close(&fx->a.link, 0);
	vmic_link_close(&fx->b.link, 0);
	TU_SPIN_UNTIL(&fx->loop, fx->a.closed && fx->b.closed, WAIT_MS);
	memset(&fx->a, 0, sizeof(fx->a));
	fx->b.closed = true;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sv),
			 0);
	assert_int_equal(vmic_link_open(&fx->a.link, wrap(&fx->loop, sv[0]),
					false, &side_ops, &fx->a),
			 0);
	assert_int_equal(vmic_link_streams_attach(&fx->a.link, false, 0), 0);
	return sv[1];
}

/* Write a whole frame to a raw socket end. */
static void raw_send(int fd, uint8_t type, uint32_t id, const void *payload,
		     uint32_t len)
{
	static uint8_t buf[VMIC_MAX_FRAME];
	size_t n;

	memcpy(buf + VMIC_HDR_SIZE, payload, len);
	n = vmic_frame_seal(buf, SVC, type, 0, 0, id, len);
	assert_int_equal(send(fd, buf, n, 0), (ssize_t)n);
}

/*
 * The pump read EOF and queued END, but END has not left (the peer does
 * not read) when the peer's reset comes: the pump hears the reset.
 */
static void test_pump_reset_after_end(void **state)
{
	struct fx *fx = *state;
	static uint8_t filler[VMIC_HDR_SIZE + VMIC_STREAM_CHUNK];
	uint8_t reset[VMIC_STREAM_RESET_FRAME_MAX];
	struct vmic_fdstream_stats st;
	struct end pe = { 0 };
	int src = make_file(files_dir, 10 * KIB, O_RDONLY);
	int raw = raw_peer(fx); /* which reads nothing */
	size_t n;

	/* Fill the socket, so the link queues whatever comes next. */
	n = vmic_frame_seal(filler, VMIC_SVC_HEARTBEAT, 1, 0, 0, 0,
			    VMIC_STREAM_CHUNK);
	while (!fx->a.link.writing)
		assert_int_equal(vmic_link_send(&fx->a.link, filler, n, 0), 0);

	end_init(&pe);
	assert_int_equal(vmic_fdstream_pump(&fx->a.link, 0, SVC, src, NULL,
					    &end_ops, &pe, &pe.f),
			 0);
	TU_SPIN_UNTIL(&fx->loop, (vmic_fdstream_stats(pe.f, &st), st.eof),
		      WAIT_MS);
	assert_true(st.bytes == 10 * KIB);
	tu_spin_for(&fx->loop, 20);
	assert_int_equal(pe.calls, 0); /* END is queued, not sent */
	n = vmic_stream_reset_frame(reset, SVC, vmic_fdstream_id(pe.f),
				    VMIC_E_BUSY, "the guest restarted the copy");
	raw_send(raw, VMIC_T_STREAM_RESET, vmic_fdstream_id(pe.f),
		 reset + VMIC_HDR_SIZE, (uint32_t)(n - VMIC_HDR_SIZE));
	TU_SPIN_UNTIL(&fx->loop, pe.calls, WAIT_MS);
	assert_int_equal(pe.err, -ECONNABORTED);
	assert_int_equal(pe.code, VMIC_E_BUSY);
	assert_string_equal(pe.msg, "the guest restarted the copy");
	vmic_link_close(&fx->a.link, 0);
	close(raw);
	close(src);
	end_free(&pe);
}

/*
 * The pump writes END and, in the same turn of the loop, the link reads
 * the peer's EOF (a peer that got END may finish and close at once):
 * END left, so the pump succeeded, though the link closed before it
 * could say so.
 */
static void test_pump_end_then_link_closes(void **state)
{
	struct fx *fx = *state;
	struct end pe = { 0 };
	struct vmic_frame f;
	uint8_t hdr[VMIC_HDR_SIZE];
	int p[2], raw = raw_peer(fx);

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	end_init(&pe);
	assert_int_equal(vmic_fdstream_pump(&fx->a.link, 0, SVC, p[0], NULL,
					    &end_ops, &pe, &pe.f),
			 0);
	uv_run(&fx->loop, UV_RUN_NOWAIT); /* epoll watches the pipe now */
	/* Both become ready before the loop looks again: EOF on the pipe
	 * first (epoll reports in that order), then the peer's on the link. */
	close(p[1]);
	assert_int_equal(shutdown(raw, SHUT_WR), 0);
	TU_SPIN_UNTIL(&fx->loop, pe.calls, WAIT_MS);
	assert_true(fx->a.closed);
	assert_int_equal(pe.err, 0);
	assert_string_equal(pe.msg, "");
	/* And the END frame did reach the peer. */
	assert_int_equal(recv(raw, hdr, sizeof(hdr), MSG_WAITALL),
			 (ssize_t)sizeof(hdr));
	assert_int_equal(vmic_frame_parse_header(hdr, &f), 0);
	assert_int_equal(f.type, VMIC_T_STREAM_DATA);
	assert_true(f.flags & VMIC_F_END);
	assert_int_equal(f.length, 0);
	close(raw);
	close(p[0]);
	end_free(&pe);
}

/* The link closes mid-stream: both helpers end, -ENOTCONN. */
static void test_link_closes_mid_stream(void **state)
{
	struct fx *fx = *state;
	struct end pe = { 0 }, se = { 0 };
	int src = make_file(files_dir, 8 * MIB, O_RDONLY);
	int dst = make_dest(files_dir);

	open_pair(fx, src, dst, &pe, &se, NULL, NULL);
	TU_SPIN_UNTIL(&fx->loop, se.tapped >= MIB, WAIT_MS);
	vmic_link_close(&fx->a.link, 0);
	wait_done(fx, &pe, &se);
	assert_int_equal(pe.err, -ENOTCONN);
	assert_int_equal(se.err, -ENOTCONN);
	assert_int_equal(pe.code + se.code, 0);
	assert_string_equal(pe.msg, "the connection to the peer closed");
	close(src);
	close(dst);
	end_free(&pe);
	end_free(&se);
}

/* A new session drops every stream: both helpers end, -ECONNRESET. */
static void test_session_reset_mid_stream(void **state)
{
	struct fx *fx = *state;
	struct end pe = { 0 }, se = { 0 };
	struct feeder fe;
	struct drainer dr;
	int src = feeder_start(&fe, 64 * MIB);
	int dst = drainer_start(&dr);

	open_pair(fx, src, dst, &pe, &se, NULL, NULL);
	TU_SPIN_UNTIL(&fx->loop, se.tapped >= MIB, WAIT_MS);
	vmic_link_streams_reset(&fx->a.link);
	vmic_link_streams_reset(&fx->b.link);
	wait_done(fx, &pe, &se);
	assert_int_equal(pe.err, -ECONNRESET);
	assert_int_equal(se.err, -ECONNRESET);
	assert_string_equal(se.msg, "the session with the peer restarted");
	close(src); /* the feeder gets EPIPE and stops */
	pthread_join(fe.t, NULL);
	close(dst);
	pthread_join(dr.t, NULL);
	assert_true(dr.got == se.st.bytes);
	end_free(&pe);
	end_free(&se);
}

/* ---- descriptors checked up front; O_NONBLOCK shared ----------------- */

static void test_refusals(void **state)
{
	struct fx *fx = *state;
	struct vmic_fdstream_opts tiny = { .buf_size = 100 };
	struct vmic_fdstream_ops no_done = { 0 };
	struct vmic_fdstream *f = NULL, *f2 = NULL;
	struct end e = { 0 };
	int wr = reopen(make_dest(files_dir), O_WRONLY);
	int rd = make_file(files_dir, 10, O_RDONLY);
	int dir = open(files_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int path = open(files_dir, O_PATH | O_CLOEXEC);
	int before = count_fds();
	struct vmic_link bare = { 0 };

	end_init(&e);
	assert_int_equal(vmic_fdstream_pump(&fx->a.link, 0, SVC, wr, NULL,
					    &end_ops, &e, &f),
			 -EBADF);
	assert_string_equal(vmic_fdstream_strerror(-EBADF, false),
			    "the source is not open for reading");
	assert_int_equal(vmic_fdstream_sink(&fx->b.link, 0, SVC, rd, NULL,
					    &end_ops, &e, &f),
			 -EBADF);
	assert_string_equal(vmic_fdstream_strerror(-EBADF, true),
			    "the destination is not open for writing");
	assert_int_equal(vmic_fdstream_pump(&fx->a.link, 0, SVC, dir, NULL,
					    &end_ops, &e, &f),
			 -EISDIR);
	assert_int_equal(vmic_fdstream_pump(&fx->a.link, 0, SVC, path, NULL,
					    &end_ops, &e, &f),
			 -EBADF);
	assert_int_equal(vmic_fdstream_pump(&fx->a.link, 0, SVC, 999, NULL,
					    &end_ops, &e, &f),
			 -EBADF);
	assert_int_equal(vmic_fdstream_pump(&fx->a.link, 0, SVC, rd, &tiny,
					    &end_ops, &e, &f),
			 -EINVAL);
	assert_int_equal(vmic_fdstream_pump(&fx->a.link, 0, SVC, rd, NULL,
					    &no_done, &e, &f),
			 -EINVAL);
	/* Failures after the duplicate was made give it back. */
	assert_int_equal(vmic_fdstream_pump(&fx->a.link, 0x80000001u, SVC, rd,
					    NULL, &end_ops, &e, &f),
			 0);
	assert_int_equal(vmic_fdstream_pump(&fx->a.link, 0x80000001u, SVC, rd,
					    NULL, &end_ops, &e, &f2),
			 -EEXIST);
	assert_int_equal(vmic_fdstream_sink(&bare, 0, SVC, wr, NULL, &end_ops,
					    &e, &f2),
			 -ENOTCONN);
	vmic_fdstream_cancel(f, VMIC_E_FAILED, "done");
	TU_SPIN_UNTIL(&fx->loop, count_fds() == before, WAIT_MS);
	assert_int_equal(e.calls, 0);
	/* A closing link takes no new streams. */
	vmic_link_close(&fx->a.link, 0);
	assert_int_equal(vmic_fdstream_pump(&fx->a.link, 0, SVC, rd, NULL,
					    &end_ops, &e, &f),
			 -ENOTCONN);
	close(wr);
	close(rd);
	close(dir);
	close(path);
	end_free(&e);
}

/*
 * Two sinks on one pipe description (as a pty master pumped and sunk at
 * once): O_NONBLOCK stays while either runs and goes with the last, even
 * when the one that set it ends first.
 */
static void test_shared_description(void **state)
{
	struct fx *fx = *state;
	struct end p1 = { 0 }, s1 = { 0 }, p2 = { 0 }, s2 = { 0 };
	int p[2], held[2], empty = make_file(files_dir, 0, O_RDONLY);
	struct drainer dr;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(pipe2(held, O_CLOEXEC), 0);
	dr.fd = p[0];
	dr.got = 0;
	assert_int_equal(pthread_create(&dr.t, NULL, drain, &dr), 0);
	/* The first finds the flag clear and sets it; it ends at once. */
	open_pair(fx, empty, p[1], &p1, &s1, NULL, NULL);
	/* The second's source stays open and silent until we close it. */
	open_pair(fx, held[0], p[1], &p2, &s2, NULL, NULL);
	assert_int_not_equal(fcntl(p[1], F_GETFL) & O_NONBLOCK, 0);
	TU_SPIN_UNTIL(&fx->loop, p1.calls && s1.calls, WAIT_MS);
	assert_success(&p1, &s1, 0);
	assert_int_equal(s2.calls, 0);
	assert_int_not_equal(fcntl(p[1], F_GETFL) & O_NONBLOCK, 0);
	close(held[1]);
	TU_SPIN_UNTIL(&fx->loop, p2.calls && s2.calls, WAIT_MS);
	assert_success(&p2, &s2, 0);
	assert_int_equal(fcntl(p[1], F_GETFL) & O_NONBLOCK, 0);
	close(p[1]);
	pthread_join(dr.t, NULL);
	close(held[0]);
	close(empty);
	end_free(&p1);
	end_free(&s1);
	end_free(&p2);
	end_free(&s2);
}

/* ---- a private tmpfs ---------------------------------------------------- */

/*
 * In a mount namespace of our own, a tmpfs over /tmp for the files and a
 * 1 MiB one in it that fills up. Nothing of it is seen outside this
 * process, and it all goes with the process, however it ends: nothing
 * to clean up on the machine. Without the right to do so (not root),
 * the files go to /dev/shm and the ENOSPC case is skipped.
 */
static void mount_private_tmpfs(void)
{
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
		  "size=512m,mode=01777") < 0) {
		snprintf(no_small_why, sizeof(no_small_why),
			 "no private mount namespace for a small tmpfs (%s); "
			 "run as root for the ENOSPC case",
			 strerror(errno));
		snprintf(files_dir, sizeof(files_dir), "%s",
			 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
		return;
	}
	snprintf(files_dir, sizeof(files_dir), "/tmp");
	if (mkdir("/tmp/small", 0700) < 0 ||
	    mount("tmpfs", "/tmp/small", "tmpfs", MS_NOSUID | MS_NODEV,
		  "size=1m,mode=0700") < 0) {
		snprintf(no_small_why, sizeof(no_small_why),
			 "cannot mount a 1 MiB tmpfs: %s", strerror(errno));
		return;
	}
	snprintf(small_dir, sizeof(small_dir), "/tmp/small");
}

int main(int argc, char **argv)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_file_sizes),
		T(test_file_small_buffers),
		T(test_file_from_position),
		T(test_file_from_page_cache),
		T(test_pipe_sizes),
		T(test_file_pipe_mixed),
		T(test_sockets),
		T(test_pty_master_eof),
		T(test_unpollable_devices),
		T(test_slow_reader),
		T(test_sink_on_another_thread),
		T(test_enospc_halfway),
		T(test_efbig),
		T(test_epipe),
		T(test_epipe_halfway),
		T(test_sink_resets_before_data),
		T(test_pump_resets_before_data),
		T(test_pump_cancel_read_in_flight),
		T(test_sink_resets_mid_stream),
		T(test_pump_resets_mid_stream),
		T(test_sink_after_end_link_closes),
		T(test_pump_reset_after_end),
		T(test_pump_end_then_link_closes),
		T(test_link_closes_mid_stream),
		T(test_session_reset_mid_stream),
		T(test_refusals),
		T(test_shared_description),
	};
#undef T
	uint64_t seed = 0xF00D;
	uv_loop_t warm;

	if (argc > 1)
		cmocka_set_test_filter(argv[1]); /* one test, by name */
	signal(SIGPIPE, SIG_IGN);
	/* libuv's global descriptors (its signal lock pipe) come with the
	 * first loop: make them before any test counts descriptors. */
	uv_loop_init(&warm);
	uv_loop_close(&warm);
	tu_fill(&seed, pattern, sizeof(pattern));
	mount_private_tmpfs();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
