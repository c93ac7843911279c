/* SPDX-License-Identifier: MIT */
/*
 * The seed generator's helpers (gen-corpus.c), for its own part and for
 * each service's (gen_corpus_NAME in tests/services/NAME/corpus.c): the
 * seeds are made with the real encoders, so they stay valid as the wire
 * formats change (run gen-corpus again when one does).
 */
#ifndef VMIC_FUZZ_CORPUS_H
#define VMIC_FUZZ_CORPUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes being put together for one seed. */
struct buf {
	uint8_t p[8192];
	size_t n;
};

/* Append n bytes (abort when the buffer is full). */
void put(struct buf *b, const void *p, size_t n);
/* Write a seed of `target` named `name` into the corpus being made:
 * tests/fuzz/corpus/TARGET/ for the generator's own, tests/services/
 * NAME/corpus/TARGET/ for a service's. */
void save(const char *target, const char *name, const void *p, size_t n);
void save_text(const char *target, const char *name, const char *s);
/* A frame with an encoded payload appended to b. */
void frame(struct buf *b, uint8_t service, uint8_t type, uint16_t flags,
	   uint32_t req, uint32_t stream, const uint8_t *payload, size_t len);
/* A hello frame of role (three offers) appended to b. */
void hello_frame(struct buf *b, uint8_t role, uint64_t nonce, uint64_t echo,
		 bool up);
/* A fuzz-messages seed: the message's (service, type), then payload. */
void save_message(const char *name, uint8_t service, uint8_t type,
		  const uint8_t *p, size_t n);

/* Each service's part, NULL when it has none (weak). */
#define VMIC_SERVICE(name) void gen_corpus_##name(void) __attribute__((weak));
#include "services/list.h"
#undef VMIC_SERVICE

#endif
