/* SPDX-License-Identifier: MIT */
#ifndef VMIC_RANDOM_H
#define VMIC_RANDOM_H

#include <stdint.h>

/*
 * A random non-zero 64-bit value for session nonces. Uses getrandom();
 * early in boot, before the pool is ready, it falls back to a mix of
 * clocks and the pid: nonces need to differ, not to be secret.
 */
uint64_t vmic_random_u64(void);

#endif
