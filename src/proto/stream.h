/* SPDX-License-Identifier: MIT */
/*
 * Per-stream credit flow control (pure bookkeeping, no I/O).
 *
 * A stream (file data, command stdio) is identified by the stream id in
 * the frame header; the side that opens it picks the id (host-opened ids
 * have the top bit clear, guest-opened ids have it set, so they never
 * collide). The receiver starts by allowing VMIC_STREAM_INITIAL_CREDIT
 * bytes and sends STREAM_CREDIT frames as its consumer drains data; the
 * sender never has more than the granted bytes in flight. Data beyond the
 * credit is a protocol error answered with STREAM_RESET (VMIC_E_FLOW).
 */
#ifndef VMIC_STREAM_H
#define VMIC_STREAM_H

#include "proto.h"

#define VMIC_STREAM_GUEST_BIT 0x80000000u

struct vmic_stream_tx {
	uint64_t sent;    /* bytes sent so far */
	uint64_t allowed; /* bytes the receiver has granted in total */
};

struct vmic_stream_rx {
	uint64_t received; /* bytes received so far */
	uint64_t granted;  /* bytes we allowed in total */
	uint64_t consumed; /* bytes our consumer has taken */
	uint32_t window;   /* how far ahead of consumption we allow */
};

void vmic_stream_tx_init(struct vmic_stream_tx *tx);
/* Bytes that may be sent now (0 when blocked on credit). */
uint64_t vmic_stream_tx_room(const struct vmic_stream_tx *tx);
/* Record n bytes sent; -EPROTO when that exceeds the credit (a bug). */
int vmic_stream_tx_sent(struct vmic_stream_tx *tx, uint32_t n);
/* Apply a STREAM_CREDIT grant; -EOVERFLOW on a nonsensical grant. */
int vmic_stream_tx_credit(struct vmic_stream_tx *tx, uint32_t more);

void vmic_stream_rx_init(struct vmic_stream_rx *rx, uint32_t window);
/* Account n received bytes; -EPROTO when the sender passed its credit. */
int vmic_stream_rx_data(struct vmic_stream_rx *rx, uint32_t n);
/*
 * The consumer took n bytes. Returns how much credit to grant now (send a
 * STREAM_CREDIT with it), or 0 to wait: grants go out once half a window
 * has drained, so credit frames stay rare.
 */
uint32_t vmic_stream_rx_consumed(struct vmic_stream_rx *rx, uint32_t n);

#endif
