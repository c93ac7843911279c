/* SPDX-License-Identifier: MIT */
/*
 * Output for people and for programs: aligned tables whose column widths
 * come from their content, status colours on a terminal, and JSON.
 *
 * Every cell goes through safe-text.c: much of what the daemon sends
 * came from a guest, and an escape sequence, a newline or a bidi
 * override in a cell would act on the terminal or break the table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmic.h"

#define COLUMN_GAP 2

struct table {
	size_t ncols, nrows, cap;
	char **cells;            /* nrows * ncols, owned */
	enum cli_color *colors;  /* nrows * ncols */
	size_t *width;           /* per column, in characters; only grows */
};

/* "-" for a value the daemon does not know yet. */
const char *cli_or_dash(const char *s)
{
	return s && *s ? s : "-";
}

/* Characters on screen: UTF-8 lead bytes (continuations do not count). */
static size_t text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

static char *clean_dup(const char *s)
{
	return cli_safe_dup(s ? s : "", s ? strlen(s) : 0);
}

/* A table of ncols columns; NULL when out of memory. */
struct table *table_new(size_t ncols)
{
	struct table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ncols = ncols;
	t->width = calloc(ncols, sizeof(*t->width));
	if (!t->width) {
		free(t);
		return NULL;
	}
	return t;
}

/* Drop the rows but keep the column widths (for a log that streams). */
void table_clear(struct table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	t->nrows = 0;
}

/* Free t and its cells; NULL is fine. */
void table_free(struct table *t)
{
	if (!t)
		return;
	table_clear(t);
	free(t->cells);
	free(t->colors);
	free(t->width);
	free(t);
}

static int table_reserve(struct table *t)
{
	size_t cap = t->cap ? t->cap * 2 : 16;
	char **cells;
	enum cli_color *colors;

	if (t->nrows < t->cap)
		return 0;
	cells = realloc(t->cells, cap * t->ncols * sizeof(*cells));
	if (!cells)
		return -ENOMEM;
	t->cells = cells;
	colors = realloc(t->colors, cap * t->ncols * sizeof(*colors));
	if (!colors)
		return -ENOMEM;
	t->colors = colors;
	t->cap = cap;
	return 0;
}

/*
 * Append a row of ncols cells (NULL prints as empty), each made safe
 * for a terminal (cli_safe_text); colors may be NULL. -ENOMEM on failure.
 */
int table_add(struct table *t, const char *const *cells,
	      const enum cli_color *colors)
{
	size_t base;

	if (table_reserve(t) < 0)
		return -ENOMEM;
	base = t->nrows * t->ncols;
	for (size_t c = 0; c < t->ncols; c++) {
		t->cells[base + c] = clean_dup(cells[c]);
		if (!t->cells[base + c]) {
			while (c-- > 0)
				free(t->cells[base + c]);
			return -ENOMEM;
		}
		t->colors[base + c] = colors ? colors[c] : COLOR_NONE;
		t->width[c] = MAX(t->width[c], text_width(t->cells[base + c]));
	}
	t->nrows++;
	return 0;
}

/* Let column col be at least w characters wide (for streamed rows). */
void table_min_width(struct table *t, size_t col, size_t w)
{
	if (col < t->ncols)
		t->width[col] = MAX(t->width[col], w);
}

static const char *const color_codes[] = {
	[COLOR_NONE] = "",
	[COLOR_GOOD] = "\033[32m",
	[COLOR_WARN] = "\033[33m",
	[COLOR_BAD] = "\033[1;31m",
};

/*
 * Print the rows, columns padded to the widest cell, two spaces apart,
 * no trailing blanks. Colours only when `color` (a terminal).
 */
void table_print(const struct table *t, bool color, FILE *out)
{
	for (size_t r = 0; r < t->nrows; r++) {
		size_t last = t->ncols;

		/* Trailing empty cells would only leave blanks behind. */
		while (last > 1 && !*t->cells[r * t->ncols + last - 1])
			last--;
		for (size_t c = 0; c < last; c++) {
			const char *s = t->cells[r * t->ncols + c];
			enum cli_color k = t->colors[r * t->ncols + c];
			bool paint = color && k != COLOR_NONE;

			fprintf(out, "%s%s%s", paint ? color_codes[k] : "", s,
				paint ? "\033[0m" : "");
			if (c + 1 < last)
				fprintf(out, "%*s",
					(int)(t->width[c] - text_width(s) +
					      COLUMN_GAP),
					"");
		}
		fputc('\n', out);
	}
}

/* The colour a status word deserves: OK green, trouble yellow or red. */
enum cli_color cli_status_color(const char *status)
{
	static const struct {
		const char *word;
		enum cli_color color;
	} map[] = {
		{ "OK", COLOR_GOOD },
		{ "connected", COLOR_GOOD },
		{ "OK (application critical)", COLOR_WARN },
		{ "No Contact", COLOR_WARN },
		{ "Degraded", COLOR_WARN },
		{ "connecting", COLOR_WARN },
		{ "handshake", COLOR_WARN },
		{ "Lost Communication", COLOR_BAD },
		{ "Protocol Mismatch", COLOR_BAD },
		{ "retrying", COLOR_BAD },
	};

	for (size_t i = 0; status && i < ARRAY_SIZE(map); i++)
		if (strcmp(status, map[i].word) == 0)
			return map[i].color;
	return COLOR_NONE;
}

/* Escape sequences around a coloured word outside tables. */
const char *cli_paint(const struct cli *cli, enum cli_color c)
{
	return cli->color ? color_codes[c] : "";
}

/* The reset sequence after a word painted with cli_paint. */
const char *cli_unpaint(const struct cli *cli, enum cli_color c)
{
	return cli->color && c != COLOR_NONE ? "\033[0m" : "";
}

/*
 * Print a JSON value on stdout: indented for people, or compact on one
 * line (one object per line for streams). The text is exact, and safe on
 * a terminal too: JSON escapes C0 controls, cli_safe_json the C1 and
 * invisible characters jansson leaves as they are. -EIO when stdout
 * fails, -ENOMEM.
 */
int cli_print_json(json_t *v, bool compact)
{
	size_t flags = compact ? JSON_COMPACT : JSON_INDENT(2);
	char *text = v ? json_dumps(v, flags) : NULL;
	char *safe = text ? cli_safe_json(text) : NULL;
	int r = 0;

	if (!safe)
		r = -ENOMEM;
	else if (fputs(safe, stdout) < 0 || fputc('\n', stdout) < 0 ||
		 fflush(stdout) != 0)
		r = -EIO;
	free(safe);
	free(text);
	return r;
}
