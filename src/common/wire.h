/* SPDX-License-Identifier: MIT */
/*
 * Bounded little-endian readers and writers over byte buffers.
 *
 * Every decoder of peer bytes goes through a struct vmic_rd: a read that
 * would pass the end sets `err` and returns zeroes, so a decoder can read
 * all its fields and check once at the end. Nothing here allocates.
 */
#ifndef VMIC_WIRE_H
#define VMIC_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmic_rd {
	const uint8_t *p;
	size_t len;
	size_t off;
	bool err;
};

struct vmic_wr {
	uint8_t *p;
	size_t cap;
	size_t off;
	bool err;
};

static inline void vmic_rd_init(struct vmic_rd *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->err = false;
}

static inline void vmic_wr_init(struct vmic_wr *w, void *p, size_t cap)
{
	w->p = p;
	w->cap = cap;
	w->off = 0;
	w->err = false;
}

static inline size_t vmic_rd_left(const struct vmic_rd *r)
{
	return r->err ? 0 : r->len - r->off;
}

uint8_t vmic_rd_u8(struct vmic_rd *r);
uint16_t vmic_rd_u16(struct vmic_rd *r);
uint32_t vmic_rd_u32(struct vmic_rd *r);
uint64_t vmic_rd_u64(struct vmic_rd *r);
int64_t vmic_rd_i64(struct vmic_rd *r);
/* Skip n bytes; error when fewer are left. */
void vmic_rd_skip(struct vmic_rd *r, size_t n);
/*
 * A u16 length followed by that many bytes, at most `max` of them, valid
 * UTF-8 without NUL. On success *s points into the buffer (not terminated)
 * and *n is its length; on failure the reader's err is set.
 */
void vmic_rd_str(struct vmic_rd *r, size_t max, const char **s, size_t *n);
/* Same as vmic_rd_str, copied into dst (size dstsz, > max) and terminated. */
void vmic_rd_strcpy(struct vmic_rd *r, size_t max, char *dst, size_t dstsz);
/* A u32 length followed by raw bytes, at most max. */
void vmic_rd_blob(struct vmic_rd *r, size_t max, const uint8_t **b, size_t *n);

void vmic_wr_u8(struct vmic_wr *w, uint8_t v);
void vmic_wr_u16(struct vmic_wr *w, uint16_t v);
void vmic_wr_u32(struct vmic_wr *w, uint32_t v);
void vmic_wr_u64(struct vmic_wr *w, uint64_t v);
void vmic_wr_i64(struct vmic_wr *w, int64_t v);
void vmic_wr_bytes(struct vmic_wr *w, const void *b, size_t n);
/* A u16 length and the bytes of s; error when strlen(s) > max. */
void vmic_wr_str(struct vmic_wr *w, const char *s, size_t max);
void vmic_wr_strn(struct vmic_wr *w, const char *s, size_t n, size_t max);
void vmic_wr_blob(struct vmic_wr *w, const void *b, size_t n, size_t max);

static inline void vmic_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void vmic_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t vmic_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t vmic_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

#endif
