/* SPDX-License-Identifier: MIT */
/*
 * Between the parts of the descriptor helper: fdstream.c (set-up, the
 * end, errors), fdstream-pump.c and fdstream-sink.c (the two
 * directions), fdstream-nonblock.c (O_NONBLOCK on shared descriptions).
 */
#ifndef VMIC_FDSTREAM_INTERNAL_H
#define VMIC_FDSTREAM_INTERNAL_H

#include "fdstream.h"

struct fds_buf {
	uint8_t *p;
	size_t len; /* bytes read into it */
	size_t off; /* of which the stream took this many */
};

struct vmic_fdstream {
	struct vmic_link *link;
	uv_loop_t *loop;
	struct vmic_stream *s; /* NULL once it ended or was reset */
	uint32_t id;
	const struct vmic_fdstream_ops *ops;
	void *ud;
	int fd;       /* the helper's duplicate of the caller's */
	bool sink;
	bool pool;    /* driven on the thread pool, else polled */
	bool sock;    /* polled socket: MSG_DONTWAIT, flags untouched */
	bool tty;     /* EIO on read is EOF */
	bool seek;    /* pool at explicit offsets (file, block device) */
	bool append;  /* O_APPEND: the kernel appends whatever the offset */
	int64_t pos;  /* seek: the next offset */
	/* one thread-pool request at a time */
	uv_fs_t req;
	bool req_busy;
	/* polling */
	uv_poll_t poll;
	int poll_events; /* what is polled for now, 0 when stopped */
	/* O_NONBLOCK (fdstream-nonblock.c) */
	bool nonblock_owed; /* clear it again at the end */
	bool registered;
	struct vmic_fdstream *nb_next;
	/* the end */
	unsigned busy;  /* helper code running on f, nested */
	bool ended;     /* the outcome is set: no more I/O */
	bool cancelled; /* the owner is gone: no callbacks */
	bool released;  /* tearing down */
	int err;
	uint16_t code;
	char message[VMIC_ERROR_MSG_MAX + 1];
	/* pump: buffers filled in turn, sent in the same order */
	struct fds_buf buf[2];
	unsigned nbufs, fill, send, nready;
	size_t buf_size;
	bool reading;  /* a read is in flight */
	bool nowait_off; /* pump: the file refuses RWF_NOWAIT reads */
	bool opening;    /* pump: inside vmic_fdstream_pump, no callbacks */
	uint64_t loop_reads; /* pump: reads served from the page cache */
	bool eof;      /* pump: EOF read; sink: END received */
	bool finished; /* pump: END queued */
	/* sink: a ring of one window */
	uint8_t *ring;
	size_t cap, head, held;
	/* counters */
	uint64_t bytes, waits;
	size_t alloc, peak_alloc, bound;
};

/* fdstream.c */

/* Helper code starts or stops running on f (nested); leaving may end f. */
void fds_enter(struct vmic_fdstream *f);
void fds_leave(struct vmic_fdstream *f);

/*
 * Set f's outcome, first one wins, and stop its I/O. A stream still open
 * is reset toward the peer with code and message.
 */
void fds_end(struct vmic_fdstream *f, int err, uint16_t code,
	     const char *message);

/* A local I/O error: a sentence for it, and the stream reset with it. */
void fds_fail(struct vmic_fdstream *f, int err);

/* The link refused a call with err (its closing is reported apart). */
void fds_link_failed(struct vmic_fdstream *f, int err);

/* Poll fd for these UV_* events (0: stop); false when it failed. */
bool fds_poll(struct vmic_fdstream *f, int events);

/* Count buffer memory taken (n > 0) or given back (n < 0). */
void fds_account(struct vmic_fdstream *f, ssize_t n);

/* The stream's on_closed, for both directions. */
void fds_stream_closed(void *ud, struct vmic_stream *s, int reason);

/* fdstream-pump.c */
extern const struct vmic_stream_ops fds_pump_ops;
/* Buffers for the pump; -ENOMEM. */
int fds_pump_setup(struct vmic_fdstream *f);
/* Read, send, finish as far as things allow. */
void fds_pump_kick(struct vmic_fdstream *f);
void fds_pump_polled(struct vmic_fdstream *f, int status);

/* fdstream-sink.c */
extern const struct vmic_stream_ops fds_sink_ops;
/* Write out what is held, or end once all is written after END. */
void fds_sink_kick(struct vmic_fdstream *f);
void fds_sink_polled(struct vmic_fdstream *f, int status);

/* fdstream-nonblock.c */

/*
 * f is polled and not a socket: note whether libuv's uv_poll_init just
 * set O_NONBLOCK on its description (flags are those from before).
 */
void fds_nonblock_track(struct vmic_fdstream *f, int flags_before);
/* f ends: clear O_NONBLOCK unless another helper shares the description. */
void fds_nonblock_release(struct vmic_fdstream *f);

#endif
