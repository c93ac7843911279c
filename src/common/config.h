/* SPDX-License-Identifier: MIT */
/*
 * INI configuration through a table of keys.
 *
 * Each daemon describes its configuration as a table mapping
 * "[section] key" to a typed field of its config struct; inih reads the
 * file and this module parses every value through the table. The same
 * table prints the effective configuration (--check-config) and applies
 * command line overrides, so a key exists in exactly one place.
 *
 * Policy: an unknown section or key is a warning (it is ignored); a value
 * that does not parse is an error and the file is rejected, with
 * "FILE:LINE: [section] key: what is wrong (what is expected)".
 */
#ifndef VMIC_CONFIG_H
#define VMIC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum vmic_conf_type {
	VMIC_CONF_BOOL,     /* bool: yes/no, true/false, on/off, 1/0 */
	VMIC_CONF_UINT,     /* unsigned: decimal, within [min, max] */
	VMIC_CONF_DURATION, /* unsigned ms: "500ms", "2s", "1m" ... */
	VMIC_CONF_SIZE,     /* uint64_t bytes: "512K", "64M", "2G" (x1024) */
	VMIC_CONF_SECONDS,  /* uint64_t seconds: "90s", "12h", "30d", "2w" */
	VMIC_CONF_STRING,   /* char[size] */
	VMIC_CONF_CUSTOM,   /* parse/format callbacks */
};

/*
 * A key that bounds what something costs (the host's per-VM service
 * settings): which way a value costs the daemon more. Members of the
 * host's socket group may move such a key that way no further than the
 * daemon's configured value; root may (settings.c).
 */
enum vmic_conf_cost {
	VMIC_CONF_COST_NONE,
	VMIC_CONF_COST_UP,   /* larger costs more: a bound on keys, bytes */
	VMIC_CONF_COST_DOWN, /* smaller costs more: an interval */
};

struct vmic_conf_key {
	const char *section;
	const char *key;
	enum vmic_conf_type type;
	size_t offset; /* of the field in the config struct */
	size_t size;   /* VMIC_CONF_STRING: buffer size */
	uint64_t min, max;
	/* VMIC_CONF_CUSTOM: return 0 or -EINVAL with a reason in err. */
	int (*parse)(const char *value, void *field, char *err, size_t errsz);
	void (*format)(const void *field, char *buf, size_t n);
	const char *help; /* one line, printed by --check-config */
	enum vmic_conf_cost cost;
};

struct vmic_conf_table {
	const struct vmic_conf_key *keys;
	size_t count;
};

/* One table and the struct its offsets point into. */
struct vmic_conf_part {
	const struct vmic_conf_table *table; /* may be NULL: no keys */
	void *target;
};

/*
 * Read `path` into target. A missing file is fine when missing_ok (the
 * defaults stand). Diagnostics are logged; returns 0, -ENOENT when the file
 * is missing and required, -EINVAL when a value was rejected.
 */
int vmic_conf_load(const struct vmic_conf_table *t, void *target,
		   const char *path, bool missing_ok);

/*
 * The same for a file whose keys come from several tables, each with its
 * own target (a daemon's core keys, then each service's). A key belongs
 * to the first part that has it.
 */
int vmic_conf_load_parts(const struct vmic_conf_part *parts, size_t nparts,
			 const char *path, bool missing_ok);

/* The key [section] key of t (case-insensitive), or NULL. */
const struct vmic_conf_key *vmic_conf_find(const struct vmic_conf_table *t,
					   const char *section,
					   const char *key);

/* Parse value into k's field of target; -EINVAL with a reason in err. */
int vmic_conf_apply(const struct vmic_conf_key *k, void *target,
		    const char *value, char *err, size_t errsz);

/* k's field of target as the config file would spell it. */
void vmic_conf_format(const struct vmic_conf_key *k, const void *target,
		      char *buf, size_t n);

/* The value of a numeric key (UINT, DURATION, SIZE, SECONDS) of target
 * into *out; -EINVAL for a key of another type. */
int vmic_conf_number(const struct vmic_conf_key *k, const void *target,
		     uint64_t *out);

/* A numeric value of k's type as the config file would spell it. */
void vmic_conf_format_number(const struct vmic_conf_key *k, uint64_t v,
			     char *buf, size_t n);

/* A VMIC_CONF_SIZE or VMIC_CONF_SECONDS value as the file spells it. */
void vmic_conf_format_u64(enum vmic_conf_type type, uint64_t v, char *buf,
			  size_t n);

/* Set one key from a string (command line). -ENOENT for unknown keys. */
int vmic_conf_set(const struct vmic_conf_table *t, void *target,
		  const char *section, const char *key, const char *value,
		  char *err, size_t errsz);

/* Print every key with its effective value, grouped by section. */
void vmic_conf_dump(const struct vmic_conf_table *t, const void *target,
		    FILE *out);
/* The same over several parts, in order; a section spanning adjacent
 * parts gets one header. */
void vmic_conf_dump_parts(const struct vmic_conf_part *parts, size_t nparts,
			  FILE *out);

/* Parse a boolean word; -EINVAL when it is none of the accepted ones. */
int vmic_parse_bool(const char *s, bool *out);

/* VMIC_CONF_CUSTOM callbacks shared by both daemons: an int log level
 * field ("err" .. "debug"), and formatting a char[] field as is. */
int vmic_conf_parse_log_level(const char *value, void *field, char *err,
			      size_t errsz);
void vmic_conf_format_log_level(const void *field, char *buf, size_t n);
void vmic_conf_format_string(const void *field, char *buf, size_t n);

#endif
