/* SPDX-License-Identifier: MIT */
/*
 * Shared by the libFuzzer targets in this directory: the entry points
 * (declared here for -Wmissing-prototypes), the message decoders with
 * their round-trip checks, and the seed generator's selector values.
 */
#ifndef VMIC_FUZZ_H
#define VMIC_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* fuzz-messages: the first input byte (modulo the count) picks one. */
enum fuzz_msg {
	FUZZ_MSG_HELLO,
	FUZZ_MSG_INFO,
	FUZZ_MSG_ERROR,
	FUZZ_MSG_HB_REQUEST,
	FUZZ_MSG_HB_REPLY,
	FUZZ_MSG_SD_REQUEST,
	FUZZ_MSG_SD_REPLY,
	FUZZ_MSG_SERVICES,
	FUZZ_MSG_CREDIT,
	FUZZ_MSG_SANITIZE,    /* vmic_utf8_sanitize, byte 1 = capacity */
	FUZZ_MSG_ERROR_FRAME, /* vmic_error_frame with the bytes as text */
	FUZZ_MSG_DURATION,    /* vmic_parse_duration_ms on the text */
	FUZZ_MSG_KVP_SET,     /* kvp batches, identity, ack */
	FUZZ_MSG_KVP_DELETE,
	FUZZ_MSG_KVP_IDENTITY,
	FUZZ_MSG_KVP_ACK,
	FUZZ_MSG_COUNT
};

/* Abort with a message: what a check found is a bug, not a bad input. */
void fuzz_fail(const char *what, const char *file, int line)
	__attribute__((noreturn));
#define FUZZ_CHECK(cond)                                         \
	do {                                                     \
		if (!(cond))                                     \
			fuzz_fail(#cond, __FILE__, __LINE__);    \
	} while (0)

/*
 * Decode payload p[0..n) as message `kind`. Whatever decodes must encode
 * back to the same leading bytes (the codecs are canonical) and decode
 * again to the same value. Returns 1 when it decoded, 0 when refused.
 */
int fuzz_decode_kind(enum fuzz_msg kind, const uint8_t *p, size_t n);

/*
 * The kind a receiver would decode a (service, type) payload as, or -1
 * when no message decoder applies (stream data, unknown types).
 */
int fuzz_kind_of(uint8_t service, uint8_t type);

#endif
