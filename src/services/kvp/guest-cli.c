/* SPDX-License-Identifier: MIT */
/*
 * `vmic-guestd kvp`: the pools from a shell inside the guest, straight
 * on the pool files (the agent need not run; when it runs, it sees the
 * change through inotify and sends it to the host).
 *
 *   vmic-guestd kvp list [--pool P]         POOL<TAB>KEY<TAB>VALUE lines
 *   vmic-guestd kvp get KEY [--pool P]      the value (first pool with it)
 *   vmic-guestd kvp set KEY VALUE           into pool 1 (Guest)
 *   vmic-guestd kvp delete KEY              from pool 1 (Guest)
 *
 * In `list`, a tab, newline, backslash or other control character of a
 * key or value is written as \t, \n, \\ or \xHH, so each record is one
 * line. Exit status: 0, 1 (not found, refused, an error), 2 (usage).
 *
 * `list` and `get` open the files read-only and never create one (a user
 * who may read 0644 files can run them; a missing pool reads as empty);
 * `set` and `delete` create the directory and pool 1 as the agent does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/safe-file.h"
#include "services/kvp/guest.h"

#define EXIT_USAGE 2

struct cli {
	const char *dir;
	int pool; /* -1: not given */
	const char *verb;
	const char *args[2];
	int nargs;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: vmic-guestd [--kvp-dir DIR] kvp list [--pool POOL]\n"
		"       vmic-guestd kvp get KEY [--pool POOL]\n"
		"       vmic-guestd kvp set KEY VALUE\n"
		"       vmic-guestd kvp delete KEY\n"
		"Pools: 0 external (from the host), 1 guest (this command "
		"writes it),\n"
		"2 auto (the agent's facts), 3 auto-external (the host's "
		"facts), 4 auto-internal.\n"
		"Options: --pool POOL (name or number), --kvp-dir DIR (default "
		"[kvp] dir\nof vmic-guestd.conf, " KVP_DEFAULT_DIR ").\n");
}

static int usage_error(const char *what)
{
	fprintf(stderr, "vmic-guestd kvp: %s\n", what);
	usage(stderr);
	return EXIT_USAGE;
}

/* An operand: the verb, then its arguments; 0 or an exit status. */
static int operand(struct cli *c, const char *a)
{
	if (!c->verb)
		c->verb = a;
	else if (c->nargs < 2)
		c->args[c->nargs++] = a;
	else
		return usage_error("too many arguments");
	return 0;
}

/* An option's value into c; 0 or an exit status. */
static int option(struct cli *c, const char *name, const char *v)
{
	if (strcmp(name, "--kvp-dir") == 0) {
		c->dir = v;
		return 0;
	}
	c->pool = vmic_kvp_pool_parse(v);
	if (c->pool >= 0)
		return 0;
	fprintf(stderr, "vmic-guestd kvp: no pool '%s'; pools are 0..4 or "
			"external, guest, auto, auto-external, auto-internal\n",
		v);
	return EXIT_USAGE;
}

/* Options anywhere after the verb (`--` ends them); 0, -1 after --help,
 * or an exit status. */
static int parse(struct cli *c, int argc, char **argv)
{
	bool operands_only = false;
	int r = 0;

	for (int i = 1; i < argc && r == 0; i++) {
		const char *a = argv[i];
		char name[16];
		const char *eq = strchr(a, '=');

		if (operands_only || a[0] != '-' || !a[1]) {
			r = operand(c, a);
		} else if (strcmp(a, "--") == 0) {
			operands_only = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return -1;
		} else if (eq && (size_t)(eq - a) < sizeof(name) &&
			   (strncmp(a, "--pool=", 7) == 0 ||
			    strncmp(a, "--kvp-dir=", 10) == 0)) {
			snprintf(name, sizeof(name), "%.*s", (int)(eq - a), a);
			r = option(c, name, eq + 1);
		} else if (strcmp(a, "--pool") == 0 || strcmp(a, "-p") == 0 ||
			   strcmp(a, "--kvp-dir") == 0) {
			if (i + 1 >= argc)
				return usage_error("an option lacks its value");
			r = option(c, strcmp(a, "-p") == 0 ? "--pool" : a,
				   argv[++i]);
		} else {
			fprintf(stderr, "vmic-guestd kvp: unknown option '%s'\n",
				a);
			return EXIT_USAGE;
		}
	}
	if (r == 0 && !c->verb)
		return usage_error("missing a command: list, get, set or "
				   "delete");
	return r;
}

/* Pool p's file, locked (exclusive to write, which creates it); the fd,
 * -ENOENT when a pool to read has no file, or -1 after saying why. */
static int open_pool(const struct cli *c, unsigned p, bool write)
{
	int fd, r;

	if (write && (r = kvp_dir_make(c->dir)) < 0) {
		fprintf(stderr, "vmic-guestd kvp: cannot create %s: %s\n",
			c->dir, strerror(-r));
		return -1;
	}
	fd = write ? kvp_file_open(c->dir, p) : kvp_file_open_read(c->dir, p);
	if (fd == -ENOENT && !write)
		return fd;
	if (fd < 0) {
		fprintf(stderr, "vmic-guestd kvp: cannot open %s/" KVP_FILE_PREFIX
				"%u: %s\n",
			c->dir, p, vmic_file_strerror(fd));
		return -1;
	}
	r = kvp_file_lock(fd, write);
	if (r < 0) {
		fprintf(stderr, "vmic-guestd kvp: cannot lock %s/" KVP_FILE_PREFIX
				"%u: %s\n",
			c->dir, p, strerror(-r));
		close(fd);
		return -1;
	}
	return fd;
}

/* Pool p into t (empty when it has no file); false after saying why. */
static bool read_pool(const struct cli *c, unsigned p, struct kvp_table *t)
{
	struct kvp_file_stats st;
	int fd = open_pool(c, p, false), r;

	kvp_table_clear(t);
	if (fd == -ENOENT)
		return true;
	if (fd < 0)
		return false;
	r = kvp_file_read(fd, t, 0, &st);
	kvp_file_unlock(fd);
	close(fd);
	if (r == -EFBIG) {
		fprintf(stderr, "vmic-guestd kvp: %s/" KVP_FILE_PREFIX "%u is "
				"larger than a pool file may be (%d records, "
				"%llu MiB); not read\n",
			c->dir, p, KVP_FILE_MAX_RECORDS,
			(unsigned long long)(KVP_FILE_MAX_BYTES >> 20));
		return false;
	}
	if (r < 0) {
		fprintf(stderr, "vmic-guestd kvp: reading %s/" KVP_FILE_PREFIX
				"%u: %s\n",
			c->dir, p, strerror(-r));
		return false;
	}
	if (st.skipped)
		fprintf(stderr, "vmic-guestd kvp: %s/" KVP_FILE_PREFIX "%u: %zu "
				"records are not valid and were skipped\n",
			c->dir, p, st.skipped);
	return true;
}

/* s[0..n) as one line: tab, newline, backslash, controls escaped. */
static void put_escaped(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '\t')
			fputs("\\t", stdout);
		else if (ch == '\n')
			fputs("\\n", stdout);
		else if (ch == '\\')
			fputs("\\\\", stdout);
		else if (ch < 0x20 || ch == 0x7f)
			printf("\\x%02x", ch);
		else
			putchar(ch);
	}
}

static int cmd_list(const struct cli *c)
{
	struct kvp_table t;
	int status = 0;

	if (c->nargs)
		return usage_error("list takes no arguments");
	kvp_table_init(&t);
	for (unsigned p = 0; p < VMIC_KVP_POOLS; p++) {
		if (c->pool >= 0 && (unsigned)c->pool != p)
			continue;
		if (!read_pool(c, p, &t)) {
			status = 1;
			continue;
		}
		for (size_t i = 0; i < t.n; i++) {
			const struct kvp_rec *r = t.recs[i];

			printf("%s\t", vmic_kvp_pool_name(p));
			put_escaped(kvp_rec_key(r), r->klen);
			putchar('\t');
			put_escaped(kvp_rec_value(r), r->vlen);
			putchar('\n');
		}
		kvp_table_clear(&t);
	}
	return status;
}

static int cmd_get(const struct cli *c)
{
	const char *key = c->args[0];
	struct kvp_table t;

	if (c->nargs != 1)
		return usage_error("get takes one KEY");
	kvp_table_init(&t);
	for (unsigned p = 0; p < VMIC_KVP_POOLS; p++) {
		const struct kvp_rec *r;

		if (c->pool >= 0 && (unsigned)c->pool != p)
			continue;
		if (!read_pool(c, p, &t))
			return 1;
		r = kvp_table_get(&t, key, strlen(key));
		if (r) {
			fwrite(kvp_rec_value(r), 1, r->vlen, stdout);
			putchar('\n');
			kvp_table_clear(&t);
			return 0;
		}
		kvp_table_clear(&t);
	}
	if (c->pool >= 0)
		fprintf(stderr, "vmic-guestd kvp: no key '%s' in pool %d (%s)\n",
			key, c->pool, vmic_kvp_pool_name((unsigned)c->pool));
	else
		fprintf(stderr, "vmic-guestd kvp: no key '%s' in any pool\n",
			key);
	return 1;
}

/* set and delete write pool 1 only; anything else is said why not. */
static bool writable(const struct cli *c)
{
	if (c->pool < 0 || c->pool == VMIC_KVP_GUEST)
		return true;
	if (vmic_kvp_pool_from_host((unsigned)c->pool))
		fprintf(stderr, "vmic-guestd kvp: pool %d (%s) is written by "
				"the host (`vmic kvp set` there); this command "
				"writes pool 1 (guest)\n",
			c->pool, vmic_kvp_pool_name((unsigned)c->pool));
	else
		fprintf(stderr, "vmic-guestd kvp: pool %d (%s) is the agent's "
				"own; this command writes pool 1 (guest)\n",
			c->pool, vmic_kvp_pool_name((unsigned)c->pool));
	return false;
}

static int cmd_write(const struct cli *c, bool set)
{
	const char *key = c->args[0], *value = set ? c->args[1] : NULL;
	const char *bad;
	int fd, r;

	if (c->nargs != (set ? 2 : 1))
		return usage_error(set ? "set takes KEY VALUE"
				       : "delete takes one KEY");
	if (!writable(c))
		return 1;
	bad = vmic_kvp_check(key, strlen(key), value,
			     value ? strlen(value) : 0);
	if (bad) {
		fprintf(stderr, "vmic-guestd kvp: %s\n", bad);
		return 1;
	}
	fd = open_pool(c, VMIC_KVP_GUEST, true);
	if (fd < 0)
		return 1;
	r = set ? kvp_file_set(fd, key, strlen(key), value, strlen(value))
		: kvp_file_delete(fd, key, strlen(key));
	kvp_file_unlock(fd);
	close(fd);
	if (r < 0) {
		fprintf(stderr, "vmic-guestd kvp: writing %s/" KVP_FILE_PREFIX
				"1: %s\n",
			c->dir, r == -EFBIG ? "it is larger than a pool file "
					      "may be"
					    : strerror(-r));
		return 1;
	}
	if (!set && r == 0) {
		fprintf(stderr, "vmic-guestd kvp: no key '%s' in pool 1 "
				"(guest)\n",
			key);
		return 1;
	}
	return 0;
}

int kvp_cli_run(struct guestd *g, int argc, char **argv)
{
	const struct kvp_guest_conf *conf = agent_conf(g, VMIC_SVC_KVP);
	struct cli c = { .dir = conf->dir, .pool = -1 };
	int r = parse(&c, argc, argv);

	if (r)
		return r < 0 ? 0 : r;
	if (!agent_enabled(g, VMIC_SVC_KVP) && strcmp(c.verb, "set") == 0)
		fprintf(stderr, "vmic-guestd kvp: note: [kvp] enabled = no in "
				"%s: the agent does not send pool 1 to the "
				"host\n",
			agent_config_path(g));
	if (strcmp(c.verb, "list") == 0)
		return cmd_list(&c);
	if (strcmp(c.verb, "get") == 0)
		return cmd_get(&c);
	if (strcmp(c.verb, "set") == 0)
		return cmd_write(&c, true);
	if (strcmp(c.verb, "delete") == 0)
		return cmd_write(&c, false);
	fprintf(stderr, "vmic-guestd kvp: unknown command '%s'; commands: "
			"list, get, set, delete\n",
		c.verb);
	return EXIT_USAGE;
}
