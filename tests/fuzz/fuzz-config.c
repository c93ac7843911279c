/* SPDX-License-Identifier: MIT */
/*
 * vmic_conf_load on arbitrary file contents, through a table with every
 * key type. A file that loads prints (vmic_conf_dump, what
 * --check-config shows) as a file that loads back to the same values.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fuzz.h"

#include "common/config.h"
#include "common/log.h"

struct conf {
	bool flag;
	unsigned small;
	unsigned any;
	unsigned interval;
	char name[24];
	int level;
};

static const char *const levels[] = { "low", "mid", "high" };

static int parse_level(const char *v, void *field, char *err, size_t errsz)
{
	for (int i = 0; i < 3; i++)
		if (strcasecmp(v, levels[i]) == 0) {
			*(int *)field = i;
			return 0;
		}
	snprintf(err, errsz, "'%s' is not a level", v);
	return -EINVAL;
}

static void format_level(const void *field, char *buf, size_t n)
{
	snprintf(buf, n, "%s", levels[*(const int *)field]);
}

static const struct vmic_conf_key keys[] = {
	{ "main", "flag", VMIC_CONF_BOOL, offsetof(struct conf, flag), 0, 0,
	  0, NULL, NULL, "a switch" },
	{ "main", "small", VMIC_CONF_UINT, offsetof(struct conf, small), 0, 2,
	  50, NULL, NULL, NULL },
	{ "main", "any", VMIC_CONF_UINT, offsetof(struct conf, any), 0, 0, 0,
	  NULL, NULL, NULL },
	{ "timing", "interval", VMIC_CONF_DURATION,
	  offsetof(struct conf, interval), 0, 10, 86400000, NULL, NULL,
	  NULL },
	{ "timing", "name", VMIC_CONF_STRING, offsetof(struct conf, name),
	  sizeof(((struct conf *)0)->name), 0, 0, NULL, NULL, NULL },
	{ "other", "level", VMIC_CONF_CUSTOM, offsetof(struct conf, level), 0,
	  0, 0, parse_level, format_level, NULL },
};
static const struct vmic_conf_table table = { keys, 6 };

static const struct conf defaults = { false, 5, 0, 1000, "x", 1 };

static char dir[] = "/tmp/vmic-fuzz-config-XXXXXX";
static char path[sizeof(dir) + 16];

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/f.conf", dir);
	atexit(cleanup);
	log_set_max_level(-1); /* every bad line would be logged */
	return 0;
}

static void write_file(const void *p, size_t n)
{
	FILE *f = fopen(path, "we");

	if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0)
		abort();
}

static bool same(const struct conf *a, const struct conf *b)
{
	return a->flag == b->flag && a->small == b->small &&
	       a->any == b->any && a->interval == b->interval &&
	       strcmp(a->name, b->name) == 0 && a->level == b->level;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf c = defaults, back = defaults;
	char *dump = NULL;
	size_t dumplen = 0;
	FILE *m;
	int r;

	write_file(data, size);
	r = vmic_conf_load(&table, &c, path, false);
	FUZZ_CHECK(r == 0 || r == -EINVAL);
	/* Whatever happened, each value is one its key allows. */
	FUZZ_CHECK(c.small >= 2 && c.small <= 50);
	FUZZ_CHECK(c.interval >= 10 && c.interval <= 86400000);
	FUZZ_CHECK(strlen(c.name) < sizeof(c.name));
	FUZZ_CHECK(c.level >= 0 && c.level < 3);
	if (r != 0)
		return 0;

	m = open_memstream(&dump, &dumplen);
	if (!m)
		abort();
	vmic_conf_dump(&table, &c, m);
	fclose(m);
	write_file(dump, dumplen);
	r = vmic_conf_load(&table, &back, path, false);
	if (r != 0 || !same(&c, &back))
		fuzz_fail(dump, __FILE__, __LINE__);
	free(dump);
	return 0;
}
