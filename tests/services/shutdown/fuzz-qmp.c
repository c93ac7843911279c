/* SPDX-License-Identifier: MIT */
/*
 * What a QMP socket says to the exec-free power backend (qmp:PATH): any
 * bytes as one line. The parser must classify without crashing, and an
 * error's description must come out as safe text: valid UTF-8 without
 * control characters, within its buffer.
 */
#include <stdint.h>
#include <string.h>

#include "common/utf8.h"
#include "fuzz.h"
#include "common/qmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[QMP_ERROR_MAX];
	enum qmp_kind kind;

	if (size > QMP_LINE_MAX)
		return 0;
	memset(err, 'x', sizeof(err));
	kind = qmp_parse_line((const char *)data, size, err, sizeof(err));
	FUZZ_CHECK(kind >= QMP_MALFORMED && kind <= QMP_OTHER);
	FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
	if (kind == QMP_ERROR) {
		FUZZ_CHECK(err[0] != '\0');
		FUZZ_CHECK(vmic_utf8_valid(err, strlen(err)));
		for (const char *p = err; *p; p++)
			FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
	} else {
		FUZZ_CHECK(err[0] == '\0');
	}
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}
