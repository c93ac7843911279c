/* SPDX-License-Identifier: MIT */
/* UTF-8 checks for strings that came from a peer. */
#ifndef VMIC_UTF8_H
#define VMIC_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
bool vmic_utf8_valid(const char *s, size_t n);

/*
 * The character at s (n >= 1 bytes available): its length in bytes with
 * its code point in *cp, or 0 when the bytes there do not start a
 * well-formed sequence.
 */
size_t vmic_utf8_decode(const char *s, size_t n, uint32_t *cp);

/*
 * Copy s[0..n) into dst (size dstsz >= 1), always terminated, replacing
 * every byte of an invalid sequence and every control character (C0, DEL,
 * C1) with '?', so the result is safe for logs, JSON and metric labels.
 * Truncates on a character boundary. Returns the length written.
 */
size_t vmic_utf8_sanitize(char *dst, size_t dstsz, const char *s, size_t n);

#endif
