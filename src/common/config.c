/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "duration.h"
#include "log.h"
#include "macro.h"
#include "utf8.h"

struct load_ctx {
	const struct vmic_conf_part *parts;
	size_t nparts;
	const char *path;
	FILE *f;
	int lineno; /* Debian's inih passes no line numbers: count here */
	int errors;
};

int vmic_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int vmic_conf_parse_log_level(const char *value, void *field, char *err,
			      size_t errsz)
{
	int level = log_level_from_string(value);

	if (level < 0) {
		snprintf(err, errsz, "'%s' is not a log level (err, warning, "
				     "notice, info or debug)",
			 value);
		return -EINVAL;
	}
	*(int *)field = level;
	return 0;
}

void vmic_conf_format_log_level(const void *field, char *buf, size_t n)
{
	snprintf(buf, n, "%s", log_level_to_string(*(const int *)field));
}

void vmic_conf_format_string(const void *field, char *buf, size_t n)
{
	snprintf(buf, n, "%s", (const char *)field);
}

static int parse_uint(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* A number with one optional unit from units[] (a bare number counts
 * as the first unit, of value 1); -EINVAL, -ERANGE on overflow. */
struct unit {
	const char *suffix;
	uint64_t mult;
};

static int parse_with_unit(const char *s, const struct unit *units,
			   size_t nunits, uint64_t *out)
{
	uint64_t v = 0, mult = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	for (size_t i = 0; i < nunits && !mult; i++)
		if (strcasecmp(p, units[i].suffix) == 0)
			mult = units[i].mult;
	if (!mult)
		return -EINVAL;
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

/* The largest unit that divides v exactly ("64M", "90d"). */
static void format_with_unit(uint64_t v, const struct unit *units,
			     size_t nunits, char *buf, size_t n)
{
	size_t best = 0;

	for (size_t i = 0; i < nunits; i++)
		if (v != 0 && v % units[i].mult == 0 &&
		    units[i].mult > units[best].mult && units[i].suffix[0])
			best = i;
	snprintf(buf, n, "%" PRIu64 "%s", v / units[best].mult,
		 units[best].suffix);
}

static const struct unit size_units[] = {
	{ "", 1 },
	{ "K", 1ull << 10 }, { "M", 1ull << 20 }, { "G", 1ull << 30 },
	{ "T", 1ull << 40 }, { "KiB", 1ull << 10 }, { "MiB", 1ull << 20 },
	{ "GiB", 1ull << 30 }, { "TiB", 1ull << 40 },
};

static const struct unit seconds_units[] = {
	{ "s", 1 }, { "", 1 }, { "m", 60 }, { "h", 3600 }, { "d", 86400 },
	{ "w", 7 * 86400 },
};

const struct vmic_conf_key *vmic_conf_find(const struct vmic_conf_table *t,
					   const char *section,
					   const char *key)
{
	for (size_t i = 0; t && i < t->count; i++)
		if (strcasecmp(t->keys[i].section, section) == 0 &&
		    strcasecmp(t->keys[i].key, key) == 0)
			return &t->keys[i];
	return NULL;
}

/* The part holding [section] key, or NULL; *k is set when found. */
static const struct vmic_conf_part *
find_part_key(const struct vmic_conf_part *parts, size_t n,
	      const char *section, const char *key,
	      const struct vmic_conf_key **k)
{
	for (size_t i = 0; i < n; i++) {
		*k = vmic_conf_find(parts[i].table, section, key);
		if (*k)
			return &parts[i];
	}
	return NULL;
}

static bool section_known(const struct vmic_conf_part *parts, size_t n,
			  const char *section)
{
	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; parts[p].table && i < parts[p].table->count;
		     i++)
			if (strcasecmp(parts[p].table->keys[i].section,
				       section) == 0)
				return true;
	return false;
}

static int check_range(const struct vmic_conf_key *k, uint64_t v, char *err,
		       size_t errsz)
{
	if (v < k->min || (k->max && v > k->max)) {
		snprintf(err, errsz, "%" PRIu64 " is out of range (%" PRIu64
				     "..%" PRIu64 ")",
			 v, k->min, k->max);
		return -EINVAL;
	}
	return 0;
}

int vmic_conf_apply(const struct vmic_conf_key *k, void *target,
		    const char *value, char *err, size_t errsz)
{
	void *field = (char *)target + k->offset;
	uint64_t v;
	bool b;

	switch (k->type) {
	case VMIC_CONF_BOOL:
		if (vmic_parse_bool(value, &b) < 0) {
			snprintf(err, errsz, "'%s' is not a boolean (yes or no)",
				 value);
			return -EINVAL;
		}
		*(bool *)field = b;
		return 0;
	case VMIC_CONF_UINT:
		if (parse_uint(value, &v) < 0) {
			snprintf(err, errsz, "'%s' is not a whole number", value);
			return -EINVAL;
		}
		if (check_range(k, v, err, errsz) < 0)
			return -EINVAL;
		/* Without a table maximum, the field's type still has one. */
		if (v > UINT_MAX) {
			snprintf(err, errsz, "%" PRIu64 " is out of range "
					     "(at most %u)",
				 v, UINT_MAX);
			return -EINVAL;
		}
		*(unsigned *)field = (unsigned)v;
		return 0;
	case VMIC_CONF_DURATION:
		if (vmic_parse_duration_ms(value, &v) < 0) {
			snprintf(err, errsz, "'%s' is not a duration (such as "
					     "500ms, 2s, 1m)",
				 value);
			return -EINVAL;
		}
		if (check_range(k, v, err, errsz) < 0) {
			char lo[32], hi[32];

			vmic_format_duration_ms(k->min, lo, sizeof(lo));
			vmic_format_duration_ms(k->max, hi, sizeof(hi));
			snprintf(err, errsz, "'%s' is out of range (%s..%s)",
				 value, lo, hi);
			return -EINVAL;
		}
		*(unsigned *)field = (unsigned)v;
		return 0;
	case VMIC_CONF_SIZE:
	case VMIC_CONF_SECONDS: {
		bool size = k->type == VMIC_CONF_SIZE;
		char lo[32], hi[32];

		if (parse_with_unit(value, size ? size_units : seconds_units,
				    size ? ARRAY_SIZE(size_units)
					 : ARRAY_SIZE(seconds_units),
				    &v) < 0) {
			snprintf(err, errsz,
				 size ? "'%s' is not a size (such as 512K, "
					"64M, 2G)"
				      : "'%s' is not a duration in seconds or "
					"more (such as 90s, 12h, 30d, 2w)",
				 value);
			return -EINVAL;
		}
		if (v < k->min || (k->max && v > k->max)) {
			vmic_conf_format_u64(k->type, k->min, lo, sizeof(lo));
			vmic_conf_format_u64(k->type, k->max, hi, sizeof(hi));
			snprintf(err, errsz, "'%s' is out of range (%s..%s)",
				 value, lo, hi);
			return -EINVAL;
		}
		*(uint64_t *)field = v;
		return 0;
	}
	case VMIC_CONF_STRING:
		/* "key =;x" reads as ";x", but "key = ;x" (how --check-config
		 * prints it) as a comment: refuse what cannot be written back. */
		if (value[0] == ';' || value[0] == '#') {
			snprintf(err, errsz,
				 "a value may not start with '%c', which starts "
				 "a comment after a space",
				 value[0]);
			return -EINVAL;
		}
		if (strlen(value) >= k->size) {
			snprintf(err, errsz, "the value is longer than %zu bytes",
				 k->size - 1);
			return -EINVAL;
		}
		memcpy(field, value, strlen(value) + 1);
		return 0;
	case VMIC_CONF_CUSTOM:
		return k->parse(value, field, err, errsz);
	}
	return -EINVAL;
}

/* Skip the rest of the current line. */
static void skip_line(FILE *f)
{
	int ch;

	while ((ch = fgetc(f)) != EOF && ch != '\n')
		;
}

/*
 * inih's line reader: counts lines, and refuses what inih would take
 * silently: a line longer than its buffer (it would split it) and a NUL
 * byte (it would end the line there). Either is an error of the file and
 * the line reads as empty.
 */
static char *read_line(char *str, int num, void *stream)
{
	struct load_ctx *c = stream;
	bool nul = false;
	int n = 0, ch = EOF;

	while (n < num - 1 && (ch = fgetc(c->f)) != EOF) {
		nul = nul || ch == '\0';
		str[n++] = (char)ch;
		if (ch == '\n')
			break;
	}
	if (n == 0)
		return NULL;
	str[n] = '\0';
	c->lineno++;
	if (ch != '\n' && ch != EOF && n == num - 1 &&
	    (ch = fgetc(c->f)) != EOF && ch != '\n') {
		log_error("%s:%d: line longer than %d bytes, the limit of the "
			  "INI reader (put a long command in a script)",
			  c->path, c->lineno, num - 2);
		c->errors++;
		skip_line(c->f);
		str[0] = '\0';
	} else if (nul) {
		log_error("%s:%d: the line contains a NUL byte; a configuration "
			  "file is text (is this the right file?)",
			  c->path, c->lineno);
		c->errors++;
		str[0] = '\0';
	}
	return str;
}

static int on_ini_entry(void *user, const char *section, const char *name,
			const char *value)
{
	struct load_ctx *c = user;
	const struct vmic_conf_part *part;
	const struct vmic_conf_key *k = NULL;
	int lineno = c->lineno;
	char err[512];

	if (!name)
		return 1; /* a section header alone */
	if (!vmic_utf8_valid(section, strlen(section)) ||
	    !vmic_utf8_valid(name, strlen(name)) ||
	    !vmic_utf8_valid(value, strlen(value))) {
		log_error("%s:%d: the line is not valid UTF-8; save the file "
			  "as UTF-8",
			  c->path, lineno);
		c->errors++;
		return 1;
	}
	part = find_part_key(c->parts, c->nparts, section, name, &k);
	if (!part) {
		if (!*section)
			log_warning("%s:%d: key '%s' outside of any [section], "
				    "ignored",
				    c->path, lineno, name);
		else if (!section_known(c->parts, c->nparts, section))
			log_warning("%s:%d: unknown section [%s], ignored",
				    c->path, lineno, section);
		else
			log_warning("%s:%d: unknown key '%s' in [%s], ignored",
				    c->path, lineno, name, section);
		return 1;
	}
	if (vmic_conf_apply(k, part->target, value, err, sizeof(err)) < 0) {
		log_error("%s:%d: [%s] %s: %s", c->path, lineno, k->section,
			  k->key, err);
		c->errors++;
	}
	return 1;
}

int vmic_conf_load(const struct vmic_conf_table *t, void *target,
		   const char *path, bool missing_ok)
{
	const struct vmic_conf_part part = { t, target };

	return vmic_conf_load_parts(&part, 1, path, missing_ok);
}

int vmic_conf_load_parts(const struct vmic_conf_part *parts, size_t nparts,
			 const char *path, bool missing_ok)
{
	struct load_ctx c = { .parts = parts, .nparts = nparts, .path = path };
	struct stat st;
	int r;

	c.f = fopen(path, "re");
	if (!c.f) {
		if (errno == ENOENT && missing_ok)
			return 0;
		return log_error_errno(errno, "cannot read %s", path);
	}
	if (fstat(fileno(c.f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(c.f);
		log_error("%s is a directory; give the path of the "
			  "configuration file itself",
			  path);
		return -EISDIR;
	}
	r = ini_parse_stream(read_line, &c, on_ini_entry, &c);
	fclose(c.f);
	if (r > 0) {
		log_error("%s:%d: cannot parse this line (expected "
			  "[section] or key = value)",
			  path, r);
		c.errors++;
	}
	if (c.errors)
		return -EINVAL;
	return 0;
}

int vmic_conf_set(const struct vmic_conf_table *t, void *target,
		  const char *section, const char *key, const char *value,
		  char *err, size_t errsz)
{
	const struct vmic_conf_key *k = vmic_conf_find(t, section, key);

	if (!k) {
		snprintf(err, errsz, "unknown key [%s] %s", section, key);
		return -ENOENT;
	}
	return vmic_conf_apply(k, target, value, err, errsz);
}

void vmic_conf_format_u64(enum vmic_conf_type type, uint64_t v, char *buf,
			  size_t n)
{
	if (type == VMIC_CONF_SIZE)
		format_with_unit(v, size_units, 5, buf, n);
	else
		format_with_unit(v, seconds_units, ARRAY_SIZE(seconds_units),
				 buf, n);
}

void vmic_conf_format(const struct vmic_conf_key *k, const void *target,
		      char *buf, size_t n)
{
	const void *field = (const char *)target + k->offset;

	switch (k->type) {
	case VMIC_CONF_BOOL:
		snprintf(buf, n, "%s", *(const bool *)field ? "yes" : "no");
		break;
	case VMIC_CONF_UINT:
		snprintf(buf, n, "%u", *(const unsigned *)field);
		break;
	case VMIC_CONF_DURATION:
		vmic_format_duration_ms(*(const unsigned *)field, buf, n);
		break;
	case VMIC_CONF_SIZE:
	case VMIC_CONF_SECONDS:
		vmic_conf_format_u64(k->type, *(const uint64_t *)field, buf, n);
		break;
	case VMIC_CONF_STRING:
		snprintf(buf, n, "%s", (const char *)field);
		break;
	case VMIC_CONF_CUSTOM:
		k->format(field, buf, n);
		break;
	}
}

int vmic_conf_number(const struct vmic_conf_key *k, const void *target,
		     uint64_t *out)
{
	const void *field = (const char *)target + k->offset;

	switch (k->type) {
	case VMIC_CONF_UINT:
	case VMIC_CONF_DURATION:
		*out = *(const unsigned *)field;
		return 0;
	case VMIC_CONF_SIZE:
	case VMIC_CONF_SECONDS:
		*out = *(const uint64_t *)field;
		return 0;
	default:
		return -EINVAL;
	}
}

void vmic_conf_format_number(const struct vmic_conf_key *k, uint64_t v,
			     char *buf, size_t n)
{
	switch (k->type) {
	case VMIC_CONF_DURATION:
		vmic_format_duration_ms(v, buf, n);
		break;
	case VMIC_CONF_SIZE:
	case VMIC_CONF_SECONDS:
		vmic_conf_format_u64(k->type, v, buf, n);
		break;
	default:
		snprintf(buf, n, "%" PRIu64, v);
		break;
	}
}

void vmic_conf_dump(const struct vmic_conf_table *t, const void *target,
		    FILE *out)
{
	const struct vmic_conf_part part = { t, (void *)target };

	vmic_conf_dump_parts(&part, 1, out);
}

void vmic_conf_dump_parts(const struct vmic_conf_part *parts, size_t nparts,
			  FILE *out)
{
	const char *section = NULL;
	char value[1024];

	for (size_t p = 0; p < nparts; p++) {
		const struct vmic_conf_table *t = parts[p].table;

		for (size_t i = 0; t && i < t->count; i++) {
			const struct vmic_conf_key *k = &t->keys[i];

			if (!section || strcmp(section, k->section) != 0) {
				fprintf(out, "%s[%s]\n", section ? "\n" : "",
					k->section);
				section = k->section;
			}
			vmic_conf_format(k, parts[p].target, value,
					 sizeof(value));
			if (k->help)
				fprintf(out, "# %s\n", k->help);
			fprintf(out, "%s =%s%s\n", k->key, value[0] ? " " : "",
				value);
		}
	}
}
