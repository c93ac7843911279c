/* SPDX-License-Identifier: MIT */
/*
 * hvsock_parse_reply: the line a VMM answers "CONNECT <port>" with. What
 * it accepts must be "OK " (any case) and a decimal u32, and the port it
 * returns must be that number.
 */
#include <string.h>
#include <strings.h>

#include "fuzz.h"

#include "transport/transport-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	uint32_t port = 0xDEADBEEF;
	uint64_t v = 0;

	if (hvsock_parse_reply(line, size, &port) < 0) {
		FUZZ_CHECK(port == 0xDEADBEEF);
		return 0;
	}
	FUZZ_CHECK(size >= 4 && size <= 3 + 11);
	FUZZ_CHECK(strncasecmp(line, "OK ", 3) == 0);
	for (size_t i = 3; i < size; i++) {
		FUZZ_CHECK(line[i] >= '0' && line[i] <= '9');
		v = v * 10 + (uint64_t)(line[i] - '0');
	}
	FUZZ_CHECK(v <= 0xFFFFFFFFull);
	FUZZ_CHECK(port == v);
	return 0;
}
