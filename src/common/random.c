/* SPDX-License-Identifier: MIT */
#include "random.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t vmic_random_u64(void)
{
	uint64_t v = 0;
	struct {
		struct timespec mono, real;
		pid_t pid;
	} seed;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v)) {
		clock_gettime(CLOCK_MONOTONIC, &seed.mono);
		clock_gettime(CLOCK_REALTIME, &seed.real);
		seed.pid = getpid();
		v = XXH3_64bits(&seed, sizeof(seed));
	}
	return v ? v : 1;
}
