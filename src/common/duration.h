/* SPDX-License-Identifier: MIT */
/* Durations as people write them ("500ms", "2s", "1m30s") and clocks. */
#ifndef VMIC_DURATION_H
#define VMIC_DURATION_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse a duration into milliseconds: a sequence of <number><unit> with
 * units ms, s, m, h, d; a bare number means seconds. -EINVAL when it is
 * not one, -ERANGE past about 49 days (what a u32 of ms holds).
 */
int vmic_parse_duration_ms(const char *s, uint64_t *ms);

/* Shortest exact form: "1500ms", "2s", "1m", "0". */
void vmic_format_duration_ms(uint64_t ms, char *buf, size_t n);

/* CLOCK_MONOTONIC and CLOCK_REALTIME in microseconds. */
uint64_t vmic_mono_us(void);
int64_t vmic_realtime_us(void);

#endif
