/* SPDX-License-Identifier: MIT */
/*
 * Frame codec: header encode/check, and a receive decoder that splits a
 * byte stream into frames, with optional resynchronisation.
 */
#ifndef VMIC_FRAME_H
#define VMIC_FRAME_H

#include <sys/types.h>

#include "proto.h"

/*
 * Write the header for `f` (its length field included) into hdr[0..24).
 * f->payload is not touched.
 */
void vmic_frame_put_header(uint8_t *hdr, const struct vmic_frame *f);

/*
 * Check and decode the 24 header bytes at p into f (payload left NULL).
 * Returns 0, -EBADMSG (magic or check wrong) or -EMSGSIZE (length over
 * VMIC_MAX_PAYLOAD). Unknown flag bits are accepted and ignored.
 */
int vmic_frame_parse_header(const uint8_t *p, struct vmic_frame *f);

/*
 * Encode a whole frame (header + copy of payload) into buf. Returns the
 * frame size, or -EMSGSIZE when the payload is too large or buf too small.
 */
int vmic_frame_encode(uint8_t *buf, size_t cap, const struct vmic_frame *f);

/*
 * True when f asks for an answer, so a failure may be answered with an
 * error frame: not a reply, and not a generic type (errors, stream data,
 * credits and resets are never answered, or errors could ping-pong).
 */
static inline bool vmic_frame_is_request(const struct vmic_frame *f)
{
	return !(f->flags & VMIC_F_REPLY) && f->type < VMIC_T_STREAM_RESET;
}

/* Receive decoder. Zero-initialise, or use vmic_rx_init. */
struct vmic_rx {
	uint8_t *buf; /* partial frame carried between feeds */
	uint32_t len;
	uint32_t cap;
	bool resync_on_error; /* scan for a hello instead of failing */
	bool resyncing;
	uint64_t dropped; /* bytes skipped while resynchronising */
};

/* Called for each frame; return < 0 to stop the feed with that value. */
typedef int (*vmic_rx_cb)(void *ud, const struct vmic_frame *f);

void vmic_rx_init(struct vmic_rx *rx, bool resync_on_error);
void vmic_rx_free(struct vmic_rx *rx);
/* Forget buffered bytes; with `resync` drop everything until a hello. */
void vmic_rx_reset(struct vmic_rx *rx, bool resync);

/*
 * Feed n received bytes. Calls cb for every complete, well-formed frame in
 * order; the payload pointer is valid only during the call. A corrupt
 * header returns -EBADMSG or -EMSGSIZE, unless resync_on_error is set: then
 * the decoder skips bytes until a valid hello header and goes on. Memory
 * held between calls is at most one frame, freed when it completes.
 */
int vmic_rx_feed(struct vmic_rx *rx, const void *data, size_t n,
		 vmic_rx_cb cb, void *ud);

/*
 * vmic_rx_feed without the copy of an incomplete last frame: frames are
 * decoded as by vmic_rx_feed, and the return value says how many bytes of
 * data were used up (decoded, or dropped while resynchronising); the rest,
 * data[ret..n), is the start of a frame that the caller keeps and presents
 * again, followed by the bytes that come next. Errors as vmic_rx_feed.
 * Bytes carried from an earlier vmic_rx_feed or vmic_rx_stash are
 * completed first. Lets a reader keep a partial frame in its own buffer
 * and read the rest behind it, so large frames are never copied.
 */
ssize_t vmic_rx_feed_keep(struct vmic_rx *rx, const void *data, size_t n,
			  vmic_rx_cb cb, void *ud);

/*
 * Hand the decoder the kept tail of vmic_rx_feed_keep (copied into its
 * carry buffer; nothing may be carried yet): for a reader that cannot
 * keep the bytes any longer. Returns 0 or -ENOMEM.
 */
int vmic_rx_stash(struct vmic_rx *rx, const void *data, size_t n);

/*
 * Size of the frame whose first n bytes are at p: header plus payload
 * once the header is there (its length checked against the maximum), or
 * just the header size before. For a reader sizing its next read.
 */
uint32_t vmic_rx_frame_size(const uint8_t *p, size_t n);

#endif
