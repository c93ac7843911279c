/* SPDX-License-Identifier: MIT */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "common/macro.h"
#include "common/wire.h"

/* Keep a carry buffer this small between frames; larger ones are freed. */
#define RX_KEEP_CAP 4096u

_Static_assert(VMIC_HDR_SIZE == 24, "header layout is part of the protocol");

static uint32_t header_check(const uint8_t *hdr)
{
	return XXH32(hdr, 20, VMIC_HDR_SEED);
}

void vmic_frame_put_header(uint8_t *hdr, const struct vmic_frame *f)
{
	vmic_put_le32(hdr, VMIC_MAGIC);
	vmic_put_le32(hdr + 4, f->length);
	hdr[8] = f->service;
	hdr[9] = f->type;
	vmic_put_le16(hdr + 10, f->flags);
	vmic_put_le32(hdr + 12, f->request_id);
	vmic_put_le32(hdr + 16, f->stream_id);
	vmic_put_le32(hdr + 20, header_check(hdr));
}

int vmic_frame_parse_header(const uint8_t *p, struct vmic_frame *f)
{
	if (vmic_get_le32(p) != VMIC_MAGIC ||
	    vmic_get_le32(p + 20) != header_check(p))
		return -EBADMSG;
	f->length = vmic_get_le32(p + 4);
	f->service = p[8];
	f->type = p[9];
	f->flags = vmic_get_le16(p + 10);
	f->request_id = vmic_get_le32(p + 12);
	f->stream_id = vmic_get_le32(p + 16);
	f->payload = NULL;
	if (f->length > VMIC_MAX_PAYLOAD)
		return -EMSGSIZE;
	return 0;
}

int vmic_frame_encode(uint8_t *buf, size_t cap, const struct vmic_frame *f)
{
	if (f->length > VMIC_MAX_PAYLOAD || cap < VMIC_HDR_SIZE + f->length)
		return -EMSGSIZE;
	vmic_frame_put_header(buf, f);
	if (f->length)
		memcpy(buf + VMIC_HDR_SIZE, f->payload, f->length);
	return (int)(VMIC_HDR_SIZE + f->length);
}

void vmic_rx_init(struct vmic_rx *rx, bool resync_on_error)
{
	memset(rx, 0, sizeof(*rx));
	rx->resync_on_error = resync_on_error;
}

void vmic_rx_free(struct vmic_rx *rx)
{
	free(rx->buf);
	rx->buf = NULL;
	rx->len = rx->cap = 0;
}

void vmic_rx_reset(struct vmic_rx *rx, bool resync)
{
	rx->len = 0;
	if (rx->cap > RX_KEEP_CAP)
		vmic_rx_free(rx);
	rx->resyncing = resync;
}

static bool is_hello(const struct vmic_frame *f)
{
	return f->service == VMIC_SVC_CONTROL && f->type == VMIC_CTL_HELLO;
}

/*
 * Check a header for the current mode: in resync mode only a hello ends
 * the scan. Returns 0 when the bytes at p start a frame to accept.
 */
static int rx_check(struct vmic_rx *rx, const uint8_t *p, struct vmic_frame *f)
{
	int r = vmic_frame_parse_header(p, f);

	if (r == 0 && rx->resyncing && !is_hello(f))
		r = -EBADMSG;
	if (r == 0)
		rx->resyncing = false;
	return r;
}

/* Offset of the next possible magic start in p[1..n), or n when none. */
static size_t next_magic(const uint8_t *p, size_t n)
{
	const uint8_t *q = n > 1 ? memchr(p + 1, 'V', n - 1) : NULL;

	return q ? (size_t)(q - p) : n;
}

static int rx_reserve(struct vmic_rx *rx, uint32_t need)
{
	uint8_t *nb;

	if (rx->cap >= need)
		return 0;
	nb = realloc(rx->buf, need);
	if (!nb)
		return -ENOMEM;
	rx->buf = nb;
	rx->cap = need;
	return 0;
}

/* Bytes the carry buffer needs before it can be examined again. */
static uint32_t rx_carry_need(const struct vmic_rx *rx)
{
	struct vmic_frame f;

	if (rx->len < VMIC_HDR_SIZE)
		return VMIC_HDR_SIZE - rx->len;
	/* The header was accepted when it completed; just read its length. */
	vmic_frame_parse_header(rx->buf, &f);
	return VMIC_HDR_SIZE + f.length - rx->len;
}

/* Drop bytes of the carry buffer up to its next possible frame start. */
static void rx_carry_skip(struct vmic_rx *rx)
{
	size_t skip = next_magic(rx->buf, rx->len);

	rx->dropped += skip;
	memmove(rx->buf, rx->buf + skip, rx->len - skip);
	rx->len -= (uint32_t)skip;
}

/*
 * Complete the frame started in the carry buffer from data. Consumes what
 * it uses (*used) and emits the frame when it is whole.
 */
static int rx_feed_carry(struct vmic_rx *rx, const uint8_t *data, size_t n,
			 size_t *used, vmic_rx_cb cb, void *ud)
{
	struct vmic_frame f;
	int r;

	*used = 0;
	while (rx->len > 0 && *used < n) {
		uint32_t need = rx_carry_need(rx);
		size_t take = MIN((size_t)need, n - *used);
		bool header_done = rx->len >= VMIC_HDR_SIZE;

		r = rx_reserve(rx, rx->len + (uint32_t)take);
		if (r < 0)
			return r;
		memcpy(rx->buf + rx->len, data + *used, take);
		rx->len += (uint32_t)take;
		*used += take;
		if (rx->len < VMIC_HDR_SIZE)
			continue;
		if (!header_done) {
			r = rx_check(rx, rx->buf, &f);
			if (r < 0) {
				if (!rx->resync_on_error && !rx->resyncing)
					return r;
				rx->resyncing = true;
				rx_carry_skip(rx);
				continue;
			}
			r = rx_reserve(rx, VMIC_HDR_SIZE + f.length);
			if (r < 0)
				return r;
		}
		vmic_frame_parse_header(rx->buf, &f);
		if (rx->len < VMIC_HDR_SIZE + f.length)
			continue;
		f.payload = rx->buf + VMIC_HDR_SIZE;
		rx->len = 0;
		r = cb(ud, &f);
		if (rx->cap > RX_KEEP_CAP)
			vmic_rx_free(rx);
		if (r < 0)
			return r;
	}
	return 0;
}

ssize_t vmic_rx_feed_keep(struct vmic_rx *rx, const void *data, size_t n,
			  vmic_rx_cb cb, void *ud)
{
	const uint8_t *p = data;
	struct vmic_frame f;
	size_t used;
	int r;

	r = rx_feed_carry(rx, p, n, &used, cb, ud);
	if (r < 0)
		return r;
	p += used;
	n -= used;

	/* Whole frames straight from the caller's buffer, no copy. */
	while (n >= VMIC_HDR_SIZE) {
		r = rx_check(rx, p, &f);
		if (r < 0) {
			size_t skip;

			if (!rx->resync_on_error && !rx->resyncing)
				return r;
			rx->resyncing = true;
			skip = next_magic(p, n);
			rx->dropped += skip;
			p += skip;
			n -= skip;
			continue;
		}
		if (n < VMIC_HDR_SIZE + f.length)
			break;
		f.payload = p + VMIC_HDR_SIZE;
		p += VMIC_HDR_SIZE + f.length;
		n -= VMIC_HDR_SIZE + f.length;
		r = cb(ud, &f);
		if (r < 0)
			return r;
	}
	if (n > 0 && rx->resyncing) {
		/* Hunting: keep the tail only from a possible magic on, as
		 * a scan of the same bytes in one piece would. */
		const uint8_t *v = memchr(p, 'V', n);
		size_t skip = v ? (size_t)(v - p) : n;

		rx->dropped += skip;
		p += skip;
	}
	return p - (const uint8_t *)data;
}

int vmic_rx_stash(struct vmic_rx *rx, const void *data, size_t n)
{
	int r;

	if (n == 0)
		return 0;
	/* Room for the whole frame now, so completing it never reallocs. */
	r = rx_reserve(rx, MAX((uint32_t)n, vmic_rx_frame_size(data, n)));
	if (r < 0)
		return r;
	memcpy(rx->buf, data, n);
	rx->len = (uint32_t)n;
	return 0;
}

int vmic_rx_feed(struct vmic_rx *rx, const void *data, size_t n,
		 vmic_rx_cb cb, void *ud)
{
	ssize_t used = vmic_rx_feed_keep(rx, data, n, cb, ud);

	if (used < 0)
		return (int)used;
	/* A short tail in resync mode may still start a hello. */
	return vmic_rx_stash(rx, (const uint8_t *)data + used,
			     n - (size_t)used);
}

uint32_t vmic_rx_frame_size(const uint8_t *p, size_t n)
{
	return n >= VMIC_HDR_SIZE && vmic_get_le32(p + 4) <= VMIC_MAX_PAYLOAD
		       ? VMIC_HDR_SIZE + vmic_get_le32(p + 4)
		       : VMIC_HDR_SIZE;
}
