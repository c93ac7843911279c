/* SPDX-License-Identifier: MIT */
/*
 * Text from the daemon made safe for a terminal.
 *
 * Much of what the CLI prints came from a guest: KVP keys and values
 * (exact, as the guest wrote them), the agent's name, its OS, health
 * reasons, error texts. A terminal acts on some bytes instead of showing
 * them (ESC sequences: OSC 0 sets the window title, OSC 52 the
 * clipboard; C1 controls such as U+009B, which is CSI on its own), and
 * some characters change how a line reads without being seen
 * (bidirectional overrides and isolates, zero-width characters). None of
 * them reaches the terminal as it is; each is written as an escape, so
 * the output shows that it was there and what it was:
 *
 *   \\                 a backslash (so that every escape is unambiguous)
 *   \t \n \r           tab, newline, carriage return
 *   \xHH               any other C0 control or DEL, and each byte that is
 *                      not part of well-formed UTF-8
 *   \uHHHH \UHHHHHHHH  a C1 control, a format character (Unicode's
 *                      category Cf), U+2028, U+2029, or a letter that
 *                      shows nothing (Hangul fillers and the like)
 *
 * Everything else passes unchanged. `kvp get --raw` prints the exact
 * bytes instead, and `--json` the exact value: JSON's own escapes for
 * control characters, and \uXXXX for the rest of the characters above
 * (cli_safe_json), so JSON output is safe on a terminal too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "vmic.h"

/* Code points shown as escapes beyond C0, DEL and C1, in order. */
static const struct {
	uint32_t lo, hi;
} hidden[] = {
	{ 0x00AD, 0x00AD },   /* soft hyphen */
	{ 0x034F, 0x034F },   /* combining grapheme joiner */
	{ 0x0600, 0x0605 },   /* Arabic number signs */
	{ 0x061C, 0x061C },   /* Arabic letter mark */
	{ 0x06DD, 0x06DD },
	{ 0x070F, 0x070F },
	{ 0x0890, 0x0891 },
	{ 0x08E2, 0x08E2 },
	{ 0x115F, 0x1160 },   /* Hangul fillers */
	{ 0x17B4, 0x17B5 },   /* Khmer inherent vowels (invisible) */
	{ 0x180E, 0x180E },   /* Mongolian vowel separator */
	{ 0x200B, 0x200F },   /* zero-width space, (non-)joiner, LRM, RLM */
	{ 0x2028, 0x202E },   /* line/paragraph separators, bidi embeddings
				 and overrides (LRE RLE PDF LRO RLO) */
	{ 0x2060, 0x206F },   /* word joiner, invisible operators, bidi
				 isolates (LRI RLI FSI PDI), deprecated */
	{ 0x3164, 0x3164 },   /* Hangul filler */
	{ 0xFEFF, 0xFEFF },   /* zero-width no-break space, BOM */
	{ 0xFFA0, 0xFFA0 },   /* halfwidth Hangul filler */
	{ 0xFFF9, 0xFFFB },   /* interlinear annotation */
	{ 0x110BD, 0x110BD },
	{ 0x110CD, 0x110CD },
	{ 0x13430, 0x1343F }, /* Egyptian hieroglyph format controls */
	{ 0x1BCA0, 0x1BCA3 }, /* shorthand format controls */
	{ 0x1D173, 0x1D17A }, /* musical symbol format controls */
	{ 0xE0001, 0xE0001 }, /* language tag */
	{ 0xE0020, 0xE007F }, /* tag characters */
};

/* Is the code point one a terminal must not get as it is? */
static bool hidden_char(uint32_t cp)
{
	if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(hidden) && hidden[i].lo <= cp; i++)
		if (cp <= hidden[i].hi)
			return true;
	return false;
}

/* Where escaped text goes: buf while it fits, always counted. */
struct sink {
	char *buf;
	size_t cap;
	size_t used; /* written into buf */
	size_t need; /* the whole text */
	bool full;   /* a piece did not fit: nothing more is written */
};

/* Whole pieces only, so the text is never cut inside an escape. */
static void sink_put(struct sink *k, const char *s, size_t n)
{
	if (!k->full && k->used + n < k->cap) {
		memcpy(k->buf + k->used, s, n);
		k->used += n;
	} else {
		k->full = true;
	}
	k->need += n;
}

static void put_byte_escape(struct sink *k, uint8_t b)
{
	char esc[8];

	switch (b) {
	case '\t':
		sink_put(k, "\\t", 2);
		break;
	case '\n':
		sink_put(k, "\\n", 2);
		break;
	case '\r':
		sink_put(k, "\\r", 2);
		break;
	default:
		snprintf(esc, sizeof(esc), "\\x%02x", b);
		sink_put(k, esc, 4);
	}
}

static void put_char_escape(struct sink *k, uint32_t cp)
{
	char esc[16];
	int n = cp > 0xFFFF ? snprintf(esc, sizeof(esc), "\\U%08x", cp)
			    : snprintf(esc, sizeof(esc), "\\u%04x", cp);

	sink_put(k, esc, (size_t)n);
}

size_t cli_safe_text(const char *s, size_t len, char *buf, size_t cap)
{
	struct sink k = { .buf = buf, .cap = cap };
	size_t i = 0;

	while (i < len) {
		uint32_t cp = 0;
		size_t l = vmic_utf8_decode(s + i, len - i, &cp);

		if (l == 0 || cp < 0x80) {
			uint8_t b = (uint8_t)s[i];

			if (b == '\\')
				sink_put(&k, "\\\\", 2);
			else if (l == 0 || hidden_char(b))
				put_byte_escape(&k, b);
			else
				sink_put(&k, s + i, 1);
			i++;
			continue;
		}
		if (hidden_char(cp))
			put_char_escape(&k, cp);
		else
			sink_put(&k, s + i, l);
		i += l;
	}
	if (cap)
		buf[k.used] = '\0';
	return k.need;
}

char *cli_safe_dup(const char *s, size_t len)
{
	size_t n = cli_safe_text(s, len, NULL, 0) + 1;
	char *p = malloc(n);

	if (p)
		cli_safe_text(s, len, p, n);
	return p;
}

void cli_clean_text(const char *s, char *buf, size_t n)
{
	if (!s)
		s = "";
	cli_safe_text(s, strlen(s), buf, n);
}


/* A code point as JSON's \uXXXX (two, a surrogate pair, beyond the BMP). */
static void put_json_escape(struct sink *k, uint32_t cp)
{
	char esc[16];

	if (cp > 0xFFFF) {
		cp -= 0x10000;
		snprintf(esc, sizeof(esc), "\\u%04x\\u%04x",
			 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
		sink_put(k, esc, 12);
	} else {
		snprintf(esc, sizeof(esc), "\\u%04x", cp);
		sink_put(k, esc, 6);
	}
}

/* Copy JSON text, escaping what a terminal must not get as it is. */
static size_t safe_json(const char *s, size_t len, char *buf, size_t cap)
{
	struct sink k = { .buf = buf, .cap = cap };
	size_t i = 0;

	while (i < len) {
		uint32_t cp = 0;
		size_t l = vmic_utf8_decode(s + i, len - i, &cp);

		if (l == 0) {
			l = 1; /* not from jansson; shown as U+FFFD */
			sink_put(&k, "\\ufffd", 6);
		} else if (cp >= 0x7F && hidden_char(cp)) {
			put_json_escape(&k, cp);
		} else {
			sink_put(&k, s + i, l);
		}
		i += l;
	}
	if (cap)
		buf[k.used] = '\0';
	return k.need;
}

char *cli_safe_json(const char *json)
{
	size_t len = strlen(json);
	size_t n = safe_json(json, len, NULL, 0) + 1;
	char *p = malloc(n);

	if (p)
		safe_json(json, len, p, n);
	return p;
}
