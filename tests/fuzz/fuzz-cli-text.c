/* SPDX-License-Identifier: MIT */
/*
 * What `vmic` prints of a reply's strings (src/cli/safe-text.c), on any
 * bytes: the escaped text is well-formed UTF-8 without a control
 * character, a C1 control or a bidi override; its length is the one
 * announced; a smaller buffer gets a prefix of it. As JSON (the input
 * made a JSON string by jansson, when it is UTF-8) the safe text parses
 * back to the same value and holds none of those characters either.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/vmic.h"
#include "common/utf8.h"
#include "fuzz.h"

/* No byte or character a terminal would act on or hide. */
static void check_safe(const char *s, size_t n)
{
	FUZZ_CHECK(vmic_utf8_valid(s, n));
	for (size_t i = 0; i < n;) {
		uint32_t cp = 0;
		size_t l = vmic_utf8_decode(s + i, n - i, &cp);

		FUZZ_CHECK(l > 0);
		FUZZ_CHECK(cp >= 0x20 && !(cp >= 0x7F && cp <= 0x9F));
		FUZZ_CHECK(!(cp >= 0x202A && cp <= 0x202E));
		FUZZ_CHECK(!(cp >= 0x2066 && cp <= 0x2069));
		i += l;
	}
}

static void check_json(const uint8_t *data, size_t size)
{
	json_t *v = json_stringn((const char *)data, size), *back;
	char *text, *safe;

	if (!v)
		return; /* not UTF-8: no JSON string holds it */
	text = json_dumps(v, JSON_ENCODE_ANY);
	safe = text ? cli_safe_json(text) : NULL;
	FUZZ_CHECK(safe);
	check_safe(safe, strlen(safe));
	back = json_loads(safe, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	FUZZ_CHECK(back && json_equal(v, back));
	json_decref(back);
	json_decref(v);
	free(text);
	free(safe);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	size_t need = cli_safe_text(s, size, NULL, 0);
	char *full = malloc(need + 1), *part;
	size_t cap = size ? (size_t)data[0] % (need + 2) : 1;

	FUZZ_CHECK(full);
	FUZZ_CHECK(cli_safe_text(s, size, full, need + 1) == need);
	FUZZ_CHECK(strlen(full) == need);
	check_safe(full, need);
	if (cap > 0) {
		part = malloc(cap);
		FUZZ_CHECK(part);
		FUZZ_CHECK(cli_safe_text(s, size, part, cap) == need);
		FUZZ_CHECK(strlen(part) < cap &&
			   memcmp(part, full, strlen(part)) == 0);
		check_safe(part, strlen(part));
		free(part);
	}
	free(full);
	check_json(data, size);
	return 0;
}
