/* SPDX-License-Identifier: MIT */
/*
 * Every message decoder, picked by the first two input bytes (a service
 * and a type: fuzz_msg_pick), on the rest of the input; also the text
 * helpers peer strings go through (service FUZZ_TEXT). Decoded messages
 * must re-encode to the bytes they came from. Each service's decoders
 * are in tests/services/NAME/fuzz-msgs.c, its seeds in
 * tests/services/NAME/corpus/fuzz-messages/.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct fuzz_msg *m;

	if (size < 2)
		return 0;
	m = fuzz_msg_pick(data[0], data[1]);
	FUZZ_CHECK(m != NULL);
	m->decode(data + 2, size - 2);
	return 0;
}
