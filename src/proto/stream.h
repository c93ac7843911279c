/* SPDX-License-Identifier: MIT */
/*
 * One data stream: credit-based flow control and the stream frames (pure,
 * no I/O; src/transport/link-stream.c moves the bytes).
 *
 * A stream (file data, one of a command's stdio) carries bytes one way.
 * It is named by the stream id in the frame header; the side that opens
 * it picks the id (host ids have VMIC_STREAM_GUEST_BIT clear, guest ids
 * have it set, so they never collide) and the opening request, which is
 * service-specific, tells the peer to open its end with the same id.
 *
 * The receiver starts by allowing VMIC_STREAM_INITIAL_CREDIT bytes and
 * grants more with STREAM_CREDIT only as its consumer reports bytes
 * written out, so a slow consumer slows the sender and neither side ever
 * holds more than one window. Data beyond the credit is answered with
 * STREAM_RESET (VMIC_E_FLOW).
 */
#ifndef VMIC_STREAM_H
#define VMIC_STREAM_H

#include "outq.h"
#include "proto.h"

#define VMIC_STREAM_GUEST_BIT 0x80000000u
/*
 * A receiver's window when its owner asks for none: how far the consumer
 * may lag. Larger than the implicit initial credit, because the sender
 * must not run dry while a credit travels back: at 5 GB/s over a unix
 * socket one credit round trip (two thread wake-ups) costs about half a
 * MiB of sending, and a 256 KiB window held a stream to half the
 * socket's speed (docs/benchmarks.md).
 */
#define VMIC_STREAM_WINDOW_DEFAULT (1024u * 1024)
/* A receiver never lets more than this be in flight on one stream. */
#define VMIC_STREAM_MAX_WINDOW (64u * 1024 * 1024)

struct vmic_stream_tx {
	uint64_t sent;    /* bytes sent (queued) so far */
	uint64_t allowed; /* bytes the receiver has granted in total */
};

struct vmic_stream_rx {
	uint64_t received; /* bytes received so far */
	uint64_t granted;  /* bytes we allowed in total */
	uint64_t consumed; /* bytes our consumer has written out */
	uint32_t window;   /* how far ahead of consumption we allow */
};

void vmic_stream_tx_init(struct vmic_stream_tx *tx);
/* Bytes that may be sent now (0 when blocked on credit). */
uint64_t vmic_stream_tx_room(const struct vmic_stream_tx *tx);
/* Record n bytes sent; -EPROTO when that exceeds the credit (a bug). */
int vmic_stream_tx_sent(struct vmic_stream_tx *tx, uint32_t n);
/*
 * Apply a STREAM_CREDIT grant; -EOVERFLOW on a nonsensical grant (zero,
 * or more than VMIC_STREAM_MAX_WINDOW in flight).
 */
int vmic_stream_tx_credit(struct vmic_stream_tx *tx, uint32_t more);

/*
 * window: how many bytes the consumer may be behind; 0 for
 * VMIC_STREAM_WINDOW_DEFAULT, clamped to [VMIC_STREAM_INITIAL_CREDIT,
 * VMIC_STREAM_MAX_WINDOW].
 */
void vmic_stream_rx_init(struct vmic_stream_rx *rx, uint32_t window);
/* Account n received bytes; -EPROTO when the sender passed its credit. */
int vmic_stream_rx_data(struct vmic_stream_rx *rx, uint32_t n);
/*
 * The consumer wrote n more bytes out. Returns how much credit to grant
 * now (send a STREAM_CREDIT with it), or 0 to wait: grants go out once
 * half a window has drained, so credit frames stay rare. Called with 0
 * right after init it returns what a window larger than the implicit
 * initial credit grants at once.
 */
uint32_t vmic_stream_rx_consumed(struct vmic_stream_rx *rx, uint32_t n);
/* Bytes received and not yet reported consumed. */
static inline uint64_t vmic_stream_rx_held(const struct vmic_stream_rx *rx)
{
	return rx->received - rx->consumed;
}

enum vmic_stream_dir {
	VMIC_STREAM_SEND = 1, /* we write data, the peer grants credit */
	VMIC_STREAM_RECV = 2, /* the peer writes data, we grant credit */
};

struct vmic_stream;

/*
 * What the owner of a stream hears. Callbacks run on the loop thread, from
 * the link's read or write path; they may call any vmic_link_stream_*
 * function, on this or other streams.
 */
struct vmic_stream_ops {
	/*
	 * RECV: n > 0 bytes arrived, valid only during the call. Write them
	 * out (or copy them) and call vmic_link_stream_consumed() once they
	 * are written out: that, not this call, returns credit.
	 */
	void (*on_data)(void *ud, struct vmic_stream *s, const uint8_t *p,
			size_t n);
	/* SEND: a write was cut short earlier; now there is room again. */
	void (*on_writable)(void *ud, struct vmic_stream *s);
	/*
	 * The stream is finished and freed when this returns. reason 0: it
	 * ended normally (RECV: END arrived after all data; SEND: the END
	 * frame left the queue for the socket, all data before it). > 0:
	 * the peer reset it with that VMIC_E_* code, and s->reset_message
	 * holds its message during the call. < 0: -EPROTO the peer broke
	 * the stream's rules (we sent a reset), -ECONNRESET the stream
	 * table was reset (new session), -EPIPE the link closed. Not called
	 * for a stream the owner resets itself.
	 */
	void (*on_closed)(void *ud, struct vmic_stream *s, int reason);
};

struct vmic_stream {
	uint32_t id;
	uint8_t service;          /* service byte of its frames */
	uint8_t dir;              /* enum vmic_stream_dir */
	bool end;                 /* SEND: END queued; RECV: END received */
	bool closed;              /* on_closed is running or has run */
	bool want_writable;       /* SEND: owner waits for on_writable */
	bool window_granted;      /* RECV: the window past the implicit credit */
	struct vmic_stream_tx tx; /* SEND */
	struct vmic_stream_rx rx; /* RECV */
	struct vmic_lane lane;    /* SEND: its frames in the link's queue */
	const struct vmic_stream_ops *ops;
	void *ud;
	uint64_t bytes; /* data bytes queued (SEND) or delivered (RECV) */
	/* the link's bookkeeping */
	struct vmic_stream *notify_next; /* the link's callbacks due */
	bool notify_queued;
	bool end_sent; /* SEND: the END frame left the queue */
	bool dead;     /* freed once the callback running on it returns */
	/* during on_closed after a peer's reset: its message, maybe "" */
	const char *reset_message;
	uint8_t busy;  /* callbacks running on it */
};

/* A fresh stream (not in any table); window applies to RECV streams. */
void vmic_stream_init(struct vmic_stream *s, uint32_t id, uint8_t service,
		      enum vmic_stream_dir dir, uint32_t window,
		      const struct vmic_stream_ops *ops, void *ud);

/* VMIC_T_STREAM_CREDIT payload: u32 more bytes. */
#define VMIC_STREAM_CREDIT_FRAME (VMIC_HDR_SIZE + 4)
/* A STREAM_RESET frame is at most this big (code + a 1024-byte message). */
#define VMIC_STREAM_RESET_FRAME_MAX (VMIC_HDR_SIZE + 4 + VMIC_ERROR_MSG_MAX)

/* Write a STREAM_CREDIT frame granting `more` into buf; returns its size. */
size_t vmic_stream_credit_frame(uint8_t *buf, uint8_t service, uint32_t id,
				uint32_t more);

/*
 * Write a STREAM_RESET frame (code, message cut to VMIC_ERROR_MSG_MAX on a
 * character boundary) into buf of VMIC_STREAM_RESET_FRAME_MAX bytes.
 * Returns its size.
 */
size_t vmic_stream_reset_frame(uint8_t *buf, uint8_t service, uint32_t id,
			       uint16_t code, const char *message);

/* Header of a STREAM_DATA frame of s carrying len bytes (END when end). */
void vmic_stream_data_header(uint8_t *hdr, const struct vmic_stream *s,
			     uint32_t len, bool end);

#endif
