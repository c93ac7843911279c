/* SPDX-License-Identifier: MIT */
/*
 * Every message decoder, picked by the first input byte (enum fuzz_msg),
 * on the rest of the input; also the text helpers peer strings go
 * through. Decoded messages must re-encode to the bytes they came from.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	fuzz_decode_kind((enum fuzz_msg)(data[0] % FUZZ_MSG_COUNT), data + 1,
			 size - 1);
	return 0;
}
