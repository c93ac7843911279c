/* SPDX-License-Identifier: MIT */
/*
 * The descriptor helper's common part: checking and duplicating the
 * descriptor, choosing how to drive it, opening the stream, and the end
 * (outcome, on_done, teardown), which is the same for both directions.
 *
 * Reentrancy: the link may close from inside a call the helper makes
 * into it (a failed write, a credit that overflows the urgent budget)
 * and then closes our stream at once; the owner may cancel from inside
 * the tap. So helper code running on f counts itself in f->busy, and f
 * ends (on_done, teardown) only when the outermost of it returns and no
 * thread-pool request is in flight.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "fdstream-internal.h"

const char *vmic_fdstream_strerror(int err, bool sink)
{
	switch (-err) {
	case 0:
		return "";
	case EBADF:
		return sink ? "the destination is not open for writing"
			    : "the source is not open for reading";
	case EISDIR:
		return sink ? "the destination is a directory"
			    : "the source is a directory";
	case EINVAL:
		return "the descriptor is neither a file, a pipe, a socket "
		       "nor a device, or the options are out of range";
	case ENFILE:
	case EMFILE:
		return "the daemon has no file descriptor left";
	case ENOMEM:
		return "the daemon is out of memory";
	case ENOTCONN:
		return "the connection to the peer closed";
	case ECONNRESET:
		return "the session with the peer restarted";
	case EPROTO:
		return "the peer broke the stream's flow-control rules";
	case ECONNABORTED:
		return "the peer reset the stream";
	case ECANCELED:
		return "the transfer was cancelled";
	case EEXIST:
		return "the stream id is already in use";
	case ENOSPC:
		return "no space left on the destination's file system";
	case EDQUOT:
		return "the disk quota on the destination's file system is "
		       "exhausted";
	case EFBIG:
		return "the destination file would grow beyond its size limit";
	case EROFS:
		return "the destination's file system is read-only";
	case EPIPE:
		return "the reader closed the pipe";
	case EIO:
		return sink ? "an I/O error occurred writing the destination"
			    : "an I/O error occurred reading the source";
	default:
		return sink ? "writing the destination failed"
			    : "reading the source failed";
	}
}

/* Sentences that already say what happened need no strerror after them. */
static bool strerror_specific(int err)
{
	switch (-err) {
	case EBADF:
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
	case EROFS:
	case EPIPE:
	case EIO:
	case ENOMEM:
		return true;
	default:
		return false;
	}
}

void fds_account(struct vmic_fdstream *f, ssize_t n)
{
	f->alloc += (size_t)n;
	if (f->alloc > f->peak_alloc)
		f->peak_alloc = f->alloc;
}

/* ---- the end ----------------------------------------------------------- */

static void fds_free(struct vmic_fdstream *f)
{
	for (unsigned i = 0; i < f->nbufs; i++)
		free(f->buf[i].p);
	free(f->ring);
	free(f);
}

static void fds_poll_closed(uv_handle_t *h)
{
	fds_free(h->data);
}

static void fds_fd_closed(uv_fs_t *req)
{
	uv_fs_req_cleanup(req);
	fds_free(req->data);
}

/*
 * Give everything back. A polled descriptor is closed at once (the poll
 * handle stopped watching it in uv_close); a file's on the thread pool,
 * since the last close of a file can block (NFS flushes there).
 */
static void fds_teardown(struct vmic_fdstream *f)
{
	if (!f->pool) {
		f->poll.data = f;
		uv_close((uv_handle_t *)&f->poll, fds_poll_closed);
		close(f->fd);
		return;
	}
	f->req.data = f;
	if (uv_fs_close(f->loop, &f->req, f->fd, fds_fd_closed) < 0) {
		close(f->fd);
		fds_free(f);
	}
}

/* End f if it may: outcome set, nothing running on it, no request out. */
static void fds_settle(struct vmic_fdstream *f)
{
	if (f->busy || !f->ended || f->req_busy || f->released)
		return;
	f->released = true;
	/* The descriptor's position after the last byte, as read() and
	 * write() leave it (O_APPEND: wherever the kernel put it). */
	if (f->err == 0 && f->seek && !f->append)
		lseek(f->fd, (off_t)f->pos, SEEK_SET);
	if (!f->pool)
		fds_nonblock_release(f);
	if (!f->cancelled)
		f->ops->on_done(f->ud, f, f->err, f->code, f->message);
	fds_teardown(f);
}

void fds_enter(struct vmic_fdstream *f)
{
	f->busy++;
}

void fds_leave(struct vmic_fdstream *f)
{
	f->busy--;
	fds_settle(f);
}

void fds_end(struct vmic_fdstream *f, int err, uint16_t code,
	     const char *message)
{
	struct vmic_stream *s = f->s;

	if (f->ended)
		return;
	f->ended = true;
	f->err = err;
	f->code = code;
	snprintf(f->message, sizeof(f->message), "%s", message);
	fds_poll(f, 0);
	if (s) {
		/* The link frees s here, without a callback. */
		f->s = NULL;
		vmic_link_stream_reset(f->link, s, code ? code : VMIC_E_FAILED,
				       f->message);
	}
}

void fds_fail(struct vmic_fdstream *f, int err)
{
	char msg[160];
	const char *what = vmic_fdstream_strerror(err, f->sink);

	if (strerror_specific(err))
		snprintf(msg, sizeof(msg), "%s", what);
	else
		snprintf(msg, sizeof(msg), "%s: %s", what, strerror(-err));
	fds_end(f, err, VMIC_E_FAILED, msg);
}

void fds_link_failed(struct vmic_fdstream *f, int err)
{
	/* A closing link closes our stream too, which tells the outcome. */
	if (!f->ended)
		fds_end(f, err, VMIC_E_INTERNAL,
			err == -ENOMEM ? "the daemon is out of memory"
				       : "the stream failed in the daemon");
}

void fds_stream_closed(void *ud, struct vmic_stream *s, int reason)
{
	struct vmic_fdstream *f = ud;
	const char *msg;

	fds_enter(f);
	f->s = NULL;
	if (reason == 0 && f->sink) {
		f->eof = true; /* END after all data: write out the rest */
		fds_sink_kick(f);
	} else if (reason == 0 || (reason < 0 && s->end_sent)) {
		/* END left for the peer; the link may have closed before it
		 * told us (a peer that got END can close at once) */
		fds_end(f, 0, 0, "");
	} else if (reason > 0) {
		msg = s->reset_message && *s->reset_message
			      ? s->reset_message
			      : "the peer reset the stream without saying why";
		fds_end(f, -ECONNABORTED, (uint16_t)reason, msg);
	} else {
		int err = reason == -ECONNRESET || reason == -EPROTO
				  ? reason
				  : -ENOTCONN;

		fds_end(f, err, 0, vmic_fdstream_strerror(err, f->sink));
	}
	fds_leave(f);
}

/* ---- polling ----------------------------------------------------------- */

static void fds_on_poll(uv_poll_t *h, int status, int events UNUSED)
{
	struct vmic_fdstream *f = h->data;

	if (status < 0)
		f->poll_events = 0; /* libuv stopped the handle */
	fds_enter(f);
	if (!f->ended && f->sink)
		fds_sink_polled(f, status);
	else if (!f->ended)
		fds_pump_polled(f, status);
	fds_leave(f);
}

bool fds_poll(struct vmic_fdstream *f, int events)
{
	int r;

	if (f->pool || f->poll_events == events)
		return true;
	r = events ? uv_poll_start(&f->poll, events, fds_on_poll)
		   : uv_poll_stop(&f->poll);
	f->poll_events = r < 0 ? 0 : events;
	if (r < 0)
		fds_fail(f, r);
	return r == 0;
}

/* ---- set-up ------------------------------------------------------------ */

/* What fd is, whether it is open the right way; *flags its status flags. */
static int fds_check(int fd, bool sink, struct stat *st, int *flags)
{
	int acc;

	*flags = fcntl(fd, F_GETFL);
	if (*flags < 0 || (*flags & O_PATH))
		return -EBADF;
	acc = *flags & O_ACCMODE;
	if (sink ? acc == O_RDONLY : acc == O_WRONLY)
		return -EBADF;
	if (fstat(fd, st) < 0)
		return -errno;
	if (S_ISDIR(st->st_mode))
		return -EISDIR;
	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode) &&
	    !S_ISFIFO(st->st_mode) && !S_ISCHR(st->st_mode) &&
	    !S_ISSOCK(st->st_mode))
		return -EINVAL;
	return 0;
}

/*
 * Decide how to drive f->fd: files and block devices on the pool at
 * offsets; what epoll can watch polled; what it cannot (/dev/null) on
 * the pool without offsets.
 */
static int fds_pick_mode(struct vmic_fdstream *f, const struct stat *st,
			 int flags)
{
	int r;

	if (S_ISREG(st->st_mode) || S_ISBLK(st->st_mode)) {
		off_t pos = lseek(f->fd, 0, SEEK_CUR);

		f->pool = true;
		f->seek = pos >= 0;
		f->pos = pos >= 0 ? (int64_t)pos : -1;
		f->append = (flags & O_APPEND) != 0;
		return 0;
	}
	/* uv_poll_init sets O_NONBLOCK on the description. */
	r = uv_poll_init(f->loop, &f->poll, f->fd);
	if (r == UV_EPERM) {
		f->pool = true;
		f->pos = -1;
		return 0;
	}
	if (r < 0)
		return r;
	f->poll.data = f;
	f->sock = S_ISSOCK(st->st_mode);
	f->tty = isatty(f->fd);
	if (f->sock)
		fcntl(f->fd, F_SETFL, flags); /* MSG_DONTWAIT does it */
	else
		fds_nonblock_track(f, flags);
	return 0;
}

static bool opts_valid(const struct vmic_fdstream_opts *o)
{
	return !o || o->buf_size == 0 ||
	       (o->buf_size >= VMIC_FDSTREAM_BUF_MIN &&
		o->buf_size <= VMIC_FDSTREAM_BUF_MAX);
}

/* Undo a set-up that got as far as a mode: no callback will come. */
static void fds_discard(struct vmic_fdstream *f)
{
	f->cancelled = true;
	f->ended = true;
	f->busy = 0;
	fds_settle(f);
}

static int fds_new(struct vmic_link *l, bool sink, int fd,
		   const struct vmic_fdstream_opts *opts,
		   const struct vmic_fdstream_ops *ops, void *ud,
		   struct vmic_fdstream **out)
{
	struct vmic_fdstream *f;
	struct stat st;
	int flags, r;

	if (!ops || !ops->on_done || !opts_valid(opts))
		return -EINVAL;
	if (l->closing || !l->stream)
		return -ENOTCONN;
	r = fds_check(fd, sink, &st, &flags);
	if (r < 0)
		return r;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->link = l;
	f->loop = l->stream->loop;
	f->ops = ops;
	f->ud = ud;
	f->sink = sink;
	f->buf_size = opts && opts->buf_size ? opts->buf_size
					     : VMIC_FDSTREAM_BUF_DEFAULT;
	f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (f->fd < 0) {
		r = errno == EMFILE || errno == ENFILE ? -ENFILE : -errno;
		free(f);
		return r;
	}
	r = fds_pick_mode(f, &st, flags);
	if (r < 0) {
		close(f->fd);
		free(f);
		return r;
	}
	*out = f;
	return 0;
}

static int fds_open_stream(struct vmic_fdstream *f, uint32_t id,
			   uint8_t service, uint32_t window)
{
	int r = vmic_link_stream_open(f->link, id, service,
				      f->sink ? VMIC_STREAM_RECV
					      : VMIC_STREAM_SEND,
				      window,
				      f->sink ? &fds_sink_ops : &fds_pump_ops,
				      f, &f->s);

	if (r == 0)
		f->id = f->s->id;
	return r;
}

int vmic_fdstream_pump(struct vmic_link *l, uint32_t stream_id,
		       uint8_t service, int fd,
		       const struct vmic_fdstream_opts *opts,
		       const struct vmic_fdstream_ops *ops, void *ud,
		       struct vmic_fdstream **out)
{
	struct vmic_fdstream *f;
	int r = fds_new(l, false, fd, opts, ops, ud, &f);

	if (r < 0)
		return r;
	r = fds_pump_setup(f);
	if (r == 0)
		r = fds_open_stream(f, stream_id, service, 0);
	if (r < 0) {
		fds_discard(f);
		return r;
	}
	/* The first read; a failure here is the caller's to hear now. It
	 * goes to the pool: no tap may run before the caller has f. */
	fds_enter(f);
	f->opening = true;
	fds_pump_kick(f);
	f->opening = false;
	if (f->ended) {
		r = f->err;
		fds_discard(f);
		return r;
	}
	f->busy--;
	*out = f;
	return 0;
}

int vmic_fdstream_sink(struct vmic_link *l, uint32_t stream_id,
		       uint8_t service, int fd,
		       const struct vmic_fdstream_opts *opts,
		       const struct vmic_fdstream_ops *ops, void *ud,
		       struct vmic_fdstream **out)
{
	struct vmic_fdstream *f;
	int r = fds_new(l, true, fd, opts, ops, ud, &f);

	if (r < 0)
		return r;
	r = fds_open_stream(f, stream_id, service, opts ? opts->window : 0);
	if (r < 0) {
		fds_discard(f);
		return r;
	}
	/* Credit bounds what is held to the window: the ring's size. */
	f->cap = f->s->rx.window;
	f->bound = f->cap;
	*out = f;
	return 0;
}

uint32_t vmic_fdstream_id(const struct vmic_fdstream *f)
{
	return f->id;
}

void vmic_fdstream_cancel(struct vmic_fdstream *f, uint16_t code,
			  const char *message)
{
	if (f->released)
		return; /* from on_done: f ends anyway */
	f->cancelled = true;
	fds_end(f, -ECANCELED, code ? code : VMIC_E_FAILED,
		message ? message : "the transfer was cancelled");
	fds_settle(f);
}

void vmic_fdstream_stats(const struct vmic_fdstream *f,
			 struct vmic_fdstream_stats *st)
{
	size_t buffered = f->held;

	for (unsigned i = 0, k = f->send; i < f->nready;
	     i++, k = (k + 1) % f->nbufs)
		buffered += f->buf[k].len - f->buf[k].off;
	*st = (struct vmic_fdstream_stats){
		.bytes = f->bytes,
		.buffered = buffered,
		.alloc = f->alloc,
		.peak_alloc = f->peak_alloc,
		.bound = f->bound,
		.waits = f->waits,
		.loop_reads = f->loop_reads,
		.pool = f->pool,
		.eof = f->eof,
	};
}
