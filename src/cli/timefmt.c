/* SPDX-License-Identifier: MIT */
/*
 * Times and durations for people: parsing `--since WHEN` and formatting
 * the daemon's microsecond timestamps, uptimes and round-trip times.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/duration.h"
#include "vmic.h"

/* Read exactly n digits at *p into *v and advance; -EINVAL otherwise. */
static int read_digits(const char **p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -EINVAL;
		*v = *v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	return 0;
}

/* "[.fraction]": microseconds, extra digits ignored. */
static int read_fraction(const char **p, int *us)
{
	int scale = 100000;

	*us = 0;
	if (**p != '.' && **p != ',')
		return 0;
	(*p)++;
	if (**p < '0' || **p > '9')
		return -EINVAL;
	for (; **p >= '0' && **p <= '9'; (*p)++) {
		*us += (**p - '0') * scale;
		scale /= 10;
	}
	return 0;
}

/* "Z", "+HH:MM", "+HHMM", "+HH" or nothing (*has_zone false). */
static int read_zone(const char **p, bool *has_zone, int *offset_s)
{
	int sign, hh, mm = 0;

	*has_zone = false;
	*offset_s = 0;
	if (**p == '\0')
		return 0;
	*has_zone = true;
	if (**p == 'Z' || **p == 'z') {
		(*p)++;
		return 0;
	}
	if (**p != '+' && **p != '-')
		return -EINVAL;
	sign = **p == '-' ? -1 : 1;
	(*p)++;
	if (read_digits(p, 2, &hh) < 0)
		return -EINVAL;
	if (**p == ':')
		(*p)++;
	if (**p && read_digits(p, 2, &mm) < 0)
		return -EINVAL;
	if (hh > 23 || mm > 59)
		return -EINVAL;
	*offset_s = sign * (hh * 3600 + mm * 60);
	return 0;
}

/* True when tm names a real calendar day (timegm would roll Feb 30). */
static bool calendar_day_valid(const struct tm *tm)
{
	struct tm copy = *tm, back;
	time_t t = timegm(&copy);

	return gmtime_r(&t, &back) && back.tm_mday == tm->tm_mday &&
	       back.tm_mon == tm->tm_mon && back.tm_year == tm->tm_year;
}

/*
 * ISO 8601 "YYYY-MM-DD[(T| )HH:MM[:SS[.frac]]][Z|±HH[:MM]]" into
 * microseconds since the epoch; without a zone it is local time.
 */
static int parse_iso8601(const char *s, int64_t *us)
{
	struct tm tm = { 0 };
	int year, mon, day, frac_us = 0, offset_s;
	bool has_zone;
	time_t t;

	if (read_digits(&s, 4, &year) < 0 || *s++ != '-' ||
	    read_digits(&s, 2, &mon) < 0 || *s++ != '-' ||
	    read_digits(&s, 2, &day) < 0)
		return -EINVAL;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	if (*s == 'T' || *s == 't' || *s == ' ') {
		s++;
		if (read_digits(&s, 2, &tm.tm_hour) < 0 || *s++ != ':' ||
		    read_digits(&s, 2, &tm.tm_min) < 0)
			return -EINVAL;
		if (*s == ':') {
			s++;
			if (read_digits(&s, 2, &tm.tm_sec) < 0 ||
			    read_fraction(&s, &frac_us) < 0)
				return -EINVAL;
		}
	}
	if (read_zone(&s, &has_zone, &offset_s) < 0 || *s != '\0')
		return -EINVAL;
	if (mon < 1 || mon > 12 || day < 1 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60 || !calendar_day_valid(&tm))
		return -EINVAL;
	if (has_zone) {
		t = timegm(&tm) - offset_s;
	} else {
		tm.tm_isdst = -1; /* let the zone rules decide */
		t = mktime(&tm);
	}
	*us = (int64_t)t * 1000000 + frac_us;
	return 0;
}

/*
 * Parse WHEN for --since: a duration ago ("10m", "2h", "1d") or an ISO
 * 8601 timestamp, local unless it carries Z or an offset. Returns 0 with
 * *us in microseconds since the epoch; -ERANGE for a duration too long to
 * hold (the message suggests a timestamp), -EINVAL for anything else.
 */
int cli_parse_when(const char *s, int64_t now_us, int64_t *us)
{
	uint64_t ms;
	int r = vmic_parse_duration_ms(s, &ms);

	if (r == 0) {
		*us = now_us - (int64_t)ms * 1000;
		return 0;
	}
	if (parse_iso8601(s, us) == 0)
		return 0;
	return r == -ERANGE ? -ERANGE : -EINVAL;
}

/* Local time with milliseconds: "2025-11-22 10:00:00.123". */
void cli_format_local_time(int64_t us, char *buf, size_t n)
{
	time_t t = (time_t)(us / 1000000);
	int64_t rem = us % 1000000;
	struct tm tm;
	size_t len;

	if (rem < 0) {
		rem += 1000000;
		t--;
	}
	if (!localtime_r(&t, &tm) ||
	    (len = strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm)) == 0) {
		snprintf(buf, n, "@%lld", (long long)us);
		return;
	}
	snprintf(buf + len, n - len, ".%03d", (int)(rem / 1000));
}

/*
 * An uptime the way people say it: "1d 2h 3m", "2h 3m", "3m 5s", "45s";
 * "-" when unknown (negative).
 */
void cli_format_uptime(int64_t s, char *buf, size_t n)
{
	int64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;

	if (s < 0)
		snprintf(buf, n, "-");
	else if (d > 0)
		snprintf(buf, n, "%lldd %lldh %lldm", (long long)d,
			 (long long)h, (long long)m);
	else if (h > 0)
		snprintf(buf, n, "%lldh %lldm", (long long)h, (long long)m);
	else if (m > 0)
		snprintf(buf, n, "%lldm %llds", (long long)m,
			 (long long)(s % 60));
	else
		snprintf(buf, n, "%llds", (long long)s);
}

/* A round-trip time: "240 us", "1.2 ms", "1.50 s"; "-" when unknown. */
void cli_format_rtt(int64_t us, char *buf, size_t n)
{
	if (us < 0)
		snprintf(buf, n, "-");
	else if (us < 1000)
		snprintf(buf, n, "%lld us", (long long)us);
	else if (us < 1000000)
		snprintf(buf, n, "%.1f ms", (double)us / 1e3);
	else
		snprintf(buf, n, "%.2f s", (double)us / 1e6);
}

/* A span in ms for waits and elapsed times: "250 ms", "4.2 s", "2m 3s". */
void cli_format_span_ms(int64_t ms, char *buf, size_t n)
{
	if (ms < 0)
		snprintf(buf, n, "-");
	else if (ms < 1000)
		snprintf(buf, n, "%lld ms", (long long)ms);
	else if (ms < 60000)
		snprintf(buf, n, "%.1f s", (double)ms / 1e3);
	else
		cli_format_uptime(ms / 1000, buf, n);
}
