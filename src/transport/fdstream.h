/* SPDX-License-Identifier: MIT */
/*
 * Streams to and from descriptors: the one helper both daemons' services
 * use to move bytes between a stream of a link and a file, a pipe, a
 * socket or a terminal. A pump reads a descriptor into a SEND stream
 * until EOF, which finishes the stream; a sink writes a RECV stream into a
 * descriptor and returns credit only for bytes written out.
 *
 * How the descriptor is driven depends on what it is (fstat at the
 * start):
 *
 *   regular files, block devices: read and written on libuv's thread
 *     pool, one request at a time, at explicit offsets counted from the
 *     descriptor's position at the start (left after the last byte at
 *     the end, as read() and write() would). The pump reads into one
 *     buffer while the other is sent. Character devices that cannot be
 *     polled (/dev/null, /dev/zero) go this way too, without offsets.
 *   pipes, sockets, terminals and other character devices: polled on the
 *     loop and read or written without blocking: sockets with
 *     MSG_DONTWAIT, the others with O_NONBLOCK set on the open file
 *     description (see "Shared descriptions" below). A terminal read that
 *     fails with EIO (a pty master whose slave side closed) is EOF.
 *
 * The helper works on its own duplicate of the descriptor and closes only
 * that: the caller's descriptor stays the caller's (fsync, rename, close
 * it after on_done). Bytes are copied at most once in user space: the
 * pump hands its read buffer to the link, which writes from it; the sink
 * writes a pipe straight from the delivered bytes and copies only what
 * the pipe did not take, and copies file data once into the buffer the
 * thread pool writes from.
 *
 * Memory per helper: the pump's read buffers (two of opts.buf_size for
 * files, one for the rest), the sink's buffer of at most one window
 * (credit returns only for written bytes, so no more can arrive), and
 * the helper itself (under 2 KiB), and one descriptor (the duplicate).
 * vmic_fdstream_stats reports the buffers and their bound.
 *
 * Shared descriptions: O_NONBLOCK belongs to the open file description,
 * which a descriptor passed over a unix socket shares with the sender.
 * The helper sets it (sockets excepted) and clears it again when it ends,
 * unless another helper of the process still drives the same description
 * (a pty master pumped and sunk at once): the last one clears it. Until
 * then every holder of the description sees non-blocking reads and
 * writes; a client that hands over a terminal its shell also uses should
 * hand over a new description of it (open /dev/tty) instead.
 *
 * The process must ignore SIGPIPE (both daemons do): a pipe whose reader
 * is gone then fails the sink with EPIPE instead of killing it.
 */
#ifndef VMIC_FDSTREAM_H
#define VMIC_FDSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link.h"

/* A pump's read buffer unless told otherwise (two of them for files). */
#define VMIC_FDSTREAM_BUF_DEFAULT (256u * 1024)
/* Bounds of opts.buf_size. */
#define VMIC_FDSTREAM_BUF_MIN (4u * 1024)
#define VMIC_FDSTREAM_BUF_MAX (4u * 1024 * 1024)

struct vmic_fdstream;

struct vmic_fdstream_opts {
	/* sink: how far writing may lag behind receiving, the stream's
	 * window (0: VMIC_STREAM_WINDOW_DEFAULT; clamped as the link does) */
	uint32_t window;
	/* pump: bytes per read (0: VMIC_FDSTREAM_BUF_DEFAULT) */
	uint32_t buf_size;
};

struct vmic_fdstream_ops {
	/*
	 * The helper ended; exactly once, unless cancelled first. f is freed
	 * when this returns, and the helper no longer touches the descriptor.
	 * err 0: success (pump: every byte up to EOF and the END frame went
	 * to the link; whether the peer stored them is for the service's own
	 * reply to say. sink: END arrived and every byte is written). err < 0
	 * and message, a sentence for the user (never NULL, "" on success):
	 *   a local error: -EIO, -ENOSPC, -EPIPE, ... (vmic_fdstream_strerror
	 *     says it); the stream was reset toward the peer with code
	 *     (VMIC_E_FAILED) and message, unless it had already ended;
	 *   -ECONNABORTED: the peer reset the stream; code and message are
	 *     the peer's;
	 *   -ENOTCONN: the link closed; -ECONNRESET: the session restarted
	 *     (every stream of the link was dropped); -EPROTO: the peer broke
	 *     the stream's rules (the link reset it). code is 0 for these.
	 * It runs on the loop, from the link's callbacks or the helper's own
	 * (never inside a call into the helper); from inside the owner's
	 * vmic_link_close() or vmic_link_streams_reset() too, as the link's
	 * own on_closed does.
	 */
	void (*on_done)(void *ud, struct vmic_fdstream *f, int err,
			uint16_t code, const char *message);
	/*
	 * Optional tap: every byte of the stream, in order, exactly once, as
	 * it passes through (pump: when read, before the link takes it; sink:
	 * when delivered, before it is written out). On success the bytes
	 * seen are exactly the stream's. It may cancel f.
	 */
	void (*on_chunk)(void *ud, const uint8_t *p, size_t n);
};

struct vmic_fdstream_stats {
	uint64_t bytes;   /* pump: given to the stream; sink: written out */
	size_t buffered;  /* pump: read, not yet taken; sink: not yet written */
	size_t alloc;     /* buffer memory held now */
	size_t peak_alloc; /* highest alloc so far */
	size_t bound;     /* what alloc can never exceed (see the top) */
	uint64_t waits;   /* pump: the stream had no room; sink: fd was full */
	uint64_t loop_reads; /* pump: file reads done on the loop (cached) */
	bool pool;        /* driven on the thread pool (else polled) */
	bool eof;         /* pump: EOF read; sink: END received */
};

/*
 * Pump fd into a new SEND stream of l for `service`: id stream_id, or a
 * fresh id of this side for 0 (vmic_fdstream_id tells it). Reading starts
 * at once; EOF finishes the stream. fd must be open for reading. Returns
 * 0 with *out set, or -errno and no callback ever: -EBADF (not open for
 * reading, or O_PATH), -EISDIR, -EINVAL (a kind of file that carries no
 * stream, or opts out of bounds), -ENFILE (no descriptor left for the
 * duplicate), what vmic_link_stream_open returns (-EEXIST, -EMFILE,
 * -ENOTCONN, -EINVAL), -ENOMEM. vmic_fdstream_strerror(r, false) words
 * it. Data goes out at once: the peer's end must be open when it
 * arrives (its opening request handled first), or the peer resets it.
 */
int vmic_fdstream_pump(struct vmic_link *l, uint32_t stream_id,
		       uint8_t service, int fd,
		       const struct vmic_fdstream_opts *opts,
		       const struct vmic_fdstream_ops *ops, void *ud,
		       struct vmic_fdstream **out);

/*
 * Sink a new RECV stream of l for `service` (id as for the pump) into fd,
 * which must be open for writing. Errors as vmic_fdstream_pump's, -EBADF
 * meaning not open for writing (vmic_fdstream_strerror(r, true)).
 */
int vmic_fdstream_sink(struct vmic_link *l, uint32_t stream_id,
		       uint8_t service, int fd,
		       const struct vmic_fdstream_opts *opts,
		       const struct vmic_fdstream_ops *ops, void *ud,
		       struct vmic_fdstream **out);

/* The stream's id, for the request that asks the peer to open its end. */
uint32_t vmic_fdstream_id(const struct vmic_fdstream *f);

/*
 * Abort: the stream, if still open, is reset toward the peer with code
 * and message; neither on_done nor on_chunk is called after this, and f
 * is invalid on return. The caller may close its descriptor at once: a
 * read or write already running on the thread pool finishes on the
 * helper's duplicate, which is then closed (so after cancelling a sink,
 * remove a partial file rather than truncate it). Not from on_done.
 */
void vmic_fdstream_cancel(struct vmic_fdstream *f, uint16_t code,
			  const char *message);

/* Progress and memory of f (for progress events, tests, metrics). */
void vmic_fdstream_stats(const struct vmic_fdstream *f,
			 struct vmic_fdstream_stats *st);

/*
 * A sentence for an error of the helper: a -errno returned by pump or
 * sink (sink true for the sink's), or a local err of on_done. Static.
 */
const char *vmic_fdstream_strerror(int err, bool sink);

#endif
