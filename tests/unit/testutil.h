/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the unit tests: temporary directories, captured
 * stderr, a deterministic byte generator. Header-only so each test stays
 * one executable built from one file plus the real modules.
 */
#ifndef VMIC_TESTUTIL_H
#define VMIC_TESTUTIL_H

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

/* A fresh directory under $TMPDIR (or /tmp); the caller frees the path. */
static inline char *tu_mkdtemp(void)
{
	const char *base = getenv("TMPDIR");
	char tmpl[PATH_MAX];
	char *dir;

	if (!base || !*base)
		base = "/tmp";
	snprintf(tmpl, sizeof(tmpl), "%s/vmic-unit-XXXXXX", base);
	dir = mkdtemp(tmpl);
	assert_non_null(dir);
	return strdup(dir);
}

static inline int tu_rm_one(const char *path, const struct stat *st,
			    int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove a directory made by tu_mkdtemp and everything below it. */
static inline void tu_rmtree(char *dir)
{
	if (!dir)
		return;
	nftw(dir, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

/* Write `text` to dir/name; returns the malloc'ed path. */
static inline char *tu_write_file(const char *dir, const char *name,
				  const void *data, size_t n)
{
	char *path;
	FILE *f;

	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	f = fopen(path, "we");
	assert_non_null(f);
	if (n)
		assert_int_equal(fwrite(data, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
	return path;
}

/*
 * Capture what the code under test writes to stderr (fd 2) between
 * tu_capture_begin and tu_capture_end, which returns it as a string the
 * caller frees.
 */
struct tu_capture {
	int saved_fd;
	FILE *tmp;
};

static inline void tu_capture_begin(struct tu_capture *c)
{
	fflush(stderr);
	c->tmp = tmpfile();
	assert_non_null(c->tmp);
	c->saved_fd = dup(STDERR_FILENO);
	assert_true(c->saved_fd >= 0);
	assert_true(dup2(fileno(c->tmp), STDERR_FILENO) >= 0);
}

static inline char *tu_capture_end(struct tu_capture *c)
{
	long n;
	char *s;

	fflush(stderr);
	assert_true(dup2(c->saved_fd, STDERR_FILENO) >= 0);
	close(c->saved_fd);
	n = ftell(c->tmp);
	assert_true(n >= 0);
	s = calloc(1, (size_t)n + 1);
	assert_non_null(s);
	rewind(c->tmp);
	if (n > 0)
		assert_int_equal(fread(s, 1, (size_t)n, c->tmp), (size_t)n);
	fclose(c->tmp);
	/* Echo it, so a failing test's log still shows the diagnostics. */
	fputs(s, stderr);
	return s;
}

/* xorshift64*: reproducible "random" sizes and bytes for a given seed. */
static inline uint64_t tu_rand(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static inline void tu_fill(uint64_t *state, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(tu_rand(state) >> 56);
}

#endif
