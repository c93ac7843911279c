/* SPDX-License-Identifier: MIT */
#include "duration.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "macro.h"

#define DURATION_MAX_MS 0xFFFFFFFFull

static const struct {
	const char *suffix;
	uint64_t ms;
} units[] = {
	/* Longer suffixes first so "ms" is not read as "m". */
	{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
	{ "d", 86400000 },
};

int vmic_parse_duration_ms(const char *s, uint64_t *ms)
{
	const char *begin = s;
	uint64_t total = 0;

	if (!*s)
		return -EINVAL;
	while (*s) {
		const char *num = s;
		uint64_t v = 0, mult = 0;
		int digits = 0;

		while (*s >= '0' && *s <= '9') {
			if (++digits > 10)
				return -ERANGE;
			v = v * 10 + (uint64_t)(*s++ - '0');
		}
		if (digits == 0)
			return -EINVAL;
		if (*s == '\0' && num == begin) {
			mult = 1000; /* the whole string a number: seconds */
		} else {
			for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
				size_t n = strlen(units[i].suffix);

				if (strncmp(s, units[i].suffix, n) == 0) {
					mult = units[i].ms;
					s += n;
					break;
				}
			}
			if (!mult)
				return -EINVAL;
		}
		total += v * mult;
		if (total > DURATION_MAX_MS)
			return -ERANGE;
	}
	*ms = total;
	return 0;
}

void vmic_format_duration_ms(uint64_t ms, char *buf, size_t n)
{
	if (ms == 0)
		snprintf(buf, n, "0");
	else if (ms % 3600000 == 0)
		snprintf(buf, n, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms % 60000 == 0)
		snprintf(buf, n, "%llum", (unsigned long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, n, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, n, "%llums", (unsigned long long)ms);
}

uint64_t vmic_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t vmic_realtime_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
