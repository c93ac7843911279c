/* SPDX-License-Identifier: MIT */
/*
 * Shared by the libFuzzer targets (here and in tests/services/NAME/):
 * the entry points (declared here for -Wmissing-prototypes), the check
 * macro, and the message decoders with their round-trip checks, which
 * fuzz-messages and fuzz-frame pick by (service, type).
 */
#ifndef VMIC_FUZZ_H
#define VMIC_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Abort with a message: what a check found is a bug, not a bad input. */
void fuzz_fail(const char *what, const char *file, int line)
	__attribute__((noreturn));
#define FUZZ_CHECK(cond)                                         \
	do {                                                     \
		if (!(cond))                                     \
			fuzz_fail(#cond, __FILE__, __LINE__);    \
	} while (0)

/* The encoding of what was decoded is the input's leading bytes. */
void fuzz_check_prefix(const uint8_t *enc, int enclen, const uint8_t *p,
		       size_t n);
/* s is NUL-terminated within max + 1 bytes and valid UTF-8. */
bool fuzz_valid_text(const char *s, size_t max);

/*
 * Decode payload p[0..n) as one kind of message. Whatever decodes must
 * encode back to the same leading bytes (the codecs are canonical) and
 * decode again to the same value. 1 when it decoded, 0 when refused.
 */
typedef int (*fuzz_decode_fn)(const uint8_t *p, size_t n);

/* Not a service: the helpers peer text goes through (sanitising,
 * error frames, durations), as kinds of fuzz-messages. */
#define FUZZ_TEXT 0xFF

/* One kind of message: a wire message (service, type), or a text helper
 * (FUZZ_TEXT, a number). name is its seed's in the corpora. */
struct fuzz_msg {
	const char *name;
	uint8_t service;
	uint8_t type;
	fuzz_decode_fn decode;
};

struct fuzz_msgs {
	const struct fuzz_msg *msgs;
	size_t n;
};

/* The control service's messages, the generic types (error, stream
 * credit; under VMIC_SVC_CONTROL) and the text helpers: fuzz-common.c. */
extern const struct fuzz_msgs fuzz_msgs_core;
/* Each service's messages: fuzz_msgs_NAME in tests/services/NAME/
 * fuzz-msgs.c. Weak: a service without such a file has none. */
#define VMIC_SERVICE(name) \
	extern const struct fuzz_msgs fuzz_msgs_##name __attribute__((weak));
#include "services/list.h"
#undef VMIC_SERVICE

/* The decoder of (service, type) as a receiver would use it (error and
 * stream frames of any service by their generic type), NULL when none
 * applies (stream data, types without a payload to decode). */
const struct fuzz_msg *fuzz_msg_find(uint8_t service, uint8_t type);
/* The kind fuzz-messages runs for its two selector bytes: the decoder
 * of (s0, s1) when there is one, else one picked by their value. */
const struct fuzz_msg *fuzz_msg_pick(uint8_t s0, uint8_t s1);

#endif
