/* SPDX-License-Identifier: MIT */
#include "utf8.h"

#include <stdint.h>

/*
 * Length of the well-formed sequence at s (at most n bytes), or 0 when the
 * bytes there do not start one. Follows the table of Unicode 15, ch. 3.9.
 */
static size_t utf8_seq_len(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];
	size_t len;
	uint8_t lo = 0x80, hi = 0xBF;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (n < len)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return len;
}

bool vmic_utf8_valid(const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0;

	while (i < n) {
		size_t l = utf8_seq_len(p + i, n - i);
		if (l == 0)
			return false;
		i += l;
	}
	return true;
}

size_t vmic_utf8_decode(const char *s, size_t n, uint32_t *cp)
{
	static const uint8_t lead_mask[] = { 0x7F, 0x1F, 0x0F, 0x07 };
	const uint8_t *p = (const uint8_t *)s;
	size_t l = n ? utf8_seq_len(p, n) : 0;
	uint32_t c;

	if (l == 0)
		return 0;
	c = p[0] & lead_mask[l - 1];
	for (size_t i = 1; i < l; i++)
		c = c << 6 | (p[i] & 0x3F);
	*cp = c;
	return l;
}

static bool is_control(const uint8_t *p, size_t l)
{
	if (l == 1)
		return p[0] < 0x20 || p[0] == 0x7F;
	/* C1 controls U+0080..U+009F are encoded C2 80..C2 9F. */
	return l == 2 && p[0] == 0xC2 && p[1] < 0xA0;
}

size_t vmic_utf8_sanitize(char *dst, size_t dstsz, const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0, o = 0;

	if (dstsz == 0)
		return 0;
	while (i < n) {
		size_t l = utf8_seq_len(p + i, n - i);
		if (l == 0 || is_control(p + i, l)) {
			if (o + 1 >= dstsz)
				break;
			dst[o++] = '?';
			i += l ? l : 1;
			continue;
		}
		if (o + l >= dstsz)
			break;
		for (size_t k = 0; k < l; k++)
			dst[o++] = (char)p[i + k];
		i += l;
	}
	dst[o] = '\0';
	return o;
}
