/* SPDX-License-Identifier: MIT */
#include "wire.h"

#include <string.h>

#include "utf8.h"

/* Pointer to n readable bytes, advancing the reader; NULL and err if short. */
static const uint8_t *rd_take(struct vmic_rd *r, size_t n)
{
	const uint8_t *p;

	if (r->err || r->len - r->off < n) {
		r->err = true;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t vmic_rd_u8(struct vmic_rd *r)
{
	const uint8_t *p = rd_take(r, 1);
	return p ? p[0] : 0;
}

uint16_t vmic_rd_u16(struct vmic_rd *r)
{
	const uint8_t *p = rd_take(r, 2);
	return p ? vmic_get_le16(p) : 0;
}

uint32_t vmic_rd_u32(struct vmic_rd *r)
{
	const uint8_t *p = rd_take(r, 4);
	return p ? vmic_get_le32(p) : 0;
}

uint64_t vmic_rd_u64(struct vmic_rd *r)
{
	const uint8_t *p = rd_take(r, 8);
	return p ? (uint64_t)vmic_get_le32(p) |
			   (uint64_t)vmic_get_le32(p + 4) << 32
		 : 0;
}

int64_t vmic_rd_i64(struct vmic_rd *r)
{
	return (int64_t)vmic_rd_u64(r);
}

void vmic_rd_skip(struct vmic_rd *r, size_t n)
{
	rd_take(r, n);
}

void vmic_rd_str(struct vmic_rd *r, size_t max, const char **s, size_t *n)
{
	uint16_t len = vmic_rd_u16(r);
	const uint8_t *p;

	*s = "";
	*n = 0;
	if (r->err)
		return;
	if (len > max) {
		r->err = true;
		return;
	}
	p = rd_take(r, len);
	if (!p)
		return;
	if (memchr(p, '\0', len) || !vmic_utf8_valid((const char *)p, len)) {
		r->err = true;
		return;
	}
	*s = (const char *)p;
	*n = len;
}

void vmic_rd_strcpy(struct vmic_rd *r, size_t max, char *dst, size_t dstsz)
{
	const char *s;
	size_t n;

	dst[0] = '\0';
	if (dstsz <= max) {
		/* A caller bug, not peer input: refuse rather than truncate. */
		r->err = true;
		return;
	}
	vmic_rd_str(r, max, &s, &n);
	if (r->err)
		return;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

void vmic_rd_blob(struct vmic_rd *r, size_t max, const uint8_t **b, size_t *n)
{
	uint32_t len = vmic_rd_u32(r);

	*b = NULL;
	*n = 0;
	if (r->err)
		return;
	if (len > max) {
		r->err = true;
		return;
	}
	*b = rd_take(r, len);
	if (*b)
		*n = len;
}

static uint8_t *wr_take(struct vmic_wr *w, size_t n)
{
	uint8_t *p;

	if (w->err || w->cap - w->off < n) {
		w->err = true;
		return NULL;
	}
	p = w->p + w->off;
	w->off += n;
	return p;
}

void vmic_wr_u8(struct vmic_wr *w, uint8_t v)
{
	uint8_t *p = wr_take(w, 1);
	if (p)
		p[0] = v;
}

void vmic_wr_u16(struct vmic_wr *w, uint16_t v)
{
	uint8_t *p = wr_take(w, 2);
	if (p)
		vmic_put_le16(p, v);
}

void vmic_wr_u32(struct vmic_wr *w, uint32_t v)
{
	uint8_t *p = wr_take(w, 4);
	if (p)
		vmic_put_le32(p, v);
}

void vmic_wr_u64(struct vmic_wr *w, uint64_t v)
{
	uint8_t *p = wr_take(w, 8);
	if (p) {
		vmic_put_le32(p, (uint32_t)v);
		vmic_put_le32(p + 4, (uint32_t)(v >> 32));
	}
}

void vmic_wr_i64(struct vmic_wr *w, int64_t v)
{
	vmic_wr_u64(w, (uint64_t)v);
}

void vmic_wr_bytes(struct vmic_wr *w, const void *b, size_t n)
{
	uint8_t *p = wr_take(w, n);
	if (p && n)
		memcpy(p, b, n);
}

void vmic_wr_strn(struct vmic_wr *w, const char *s, size_t n, size_t max)
{
	if (n > max || n > UINT16_MAX) {
		w->err = true;
		return;
	}
	vmic_wr_u16(w, (uint16_t)n);
	vmic_wr_bytes(w, s, n);
}

void vmic_wr_str(struct vmic_wr *w, const char *s, size_t max)
{
	vmic_wr_strn(w, s, strlen(s), max);
}

void vmic_wr_blob(struct vmic_wr *w, const void *b, size_t n, size_t max)
{
	if (n > max || n > UINT32_MAX) {
		w->err = true;
		return;
	}
	vmic_wr_u32(w, (uint32_t)n);
	vmic_wr_bytes(w, b, n);
}
