/* SPDX-License-Identifier: MIT */
/*
 * `vmic copy VM SRC... DST` (host to guest) and `vmic copy VM
 * --from-guest SRC... DST` (guest to host): one long operation of
 * vmic-hostd per file (docs/control.md, `copy-to-guest` and
 * `copy-from-guest`), each file whole or not at all. Several sources go
 * into a directory, as cp does. A bar on a terminal; --json prints one
 * summary: files, bytes, seconds, MB/s and each file's XXH3-128.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "copy.h"

enum {
	OPT_FROM_GUEST = 0x200,
	OPT_FORCE,
	OPT_PARENTS,
	OPT_PRESERVE,
};

/* One file's outcome, from the operation's result. */
struct copy_result {
	int64_t bytes, mtime_ns;
	int64_t mode;
	bool sparse;
	int64_t uid, gid; /* the guest file's owner, -1 when not told */
	char hash[33];
	bool got;
};

static int on_result(void *ud, json_t *result, bool json)
{
	struct copy_result *r = ud;
	const char *hash;
	json_t *m;

	(void)json;
	if (json_unpack(result, "{s:I, s:s}", "bytes", &r->bytes, "hash",
			&hash) < 0 ||
	    strlen(hash) != 32) {
		fprintf(stderr, "vmic: the copy's result lacks 'bytes' "
				"(integer) or 'hash' (32 hex digits)\n");
		return 1;
	}
	snprintf(r->hash, sizeof(r->hash), "%s", hash);
	m = json_object_get(result, "mode");
	r->mode = json_is_integer(m) ? json_integer_value(m) : 0644;
	m = json_object_get(result, "mtime_ns");
	r->mtime_ns = json_is_integer(m) ? json_integer_value(m) : -1;
	r->sparse = json_is_true(json_object_get(result, "sparse"));
	r->uid = r->gid = -1;
	m = json_object_get(result, "uid");
	if (json_is_integer(m) && json_integer_value(m) >= 0 &&
	    json_integer_value(m) <= UINT32_MAX &&
	    json_is_integer(json_object_get(result, "gid"))) {
		r->uid = json_integer_value(m);
		r->gid = json_integer_value(json_object_get(result, "gid"));
		if (r->gid < 0 || r->gid > UINT32_MAX)
			r->uid = r->gid = -1;
	}
	r->got = true;
	return 0;
}

/* Count a copied file in the run's summary. */
static void tally(struct cli_copy_run *run, const char *src, const char *dst,
		  const struct copy_result *r)
{
	run->bytes += r->bytes;
	json_array_append_new(run->items,
			      json_pack("{s:s, s:s, s:I, s:s}", "source", src,
					"destination", dst, "bytes",
					(json_int_t)r->bytes, "hash", r->hash));
}

/* Run one operation; its exit status, r filled on success. */
static int run_op(struct cli *cli, json_t *req, int fd,
		  struct copy_result *r)
{
	/* Results are collected here and printed as one summary. */
	struct cli quiet = *cli;
	struct cli_op_spec spec = {
		.fds = &fd,
		.nfds = 1,
		.winsize_fd = -1,
		.on_result = on_result,
		.ud = r,
	};

	quiet.json = false;
	memset(r, 0, sizeof(*r));
	return cli_op_run(&quiet, req, &spec);
}

int cli_copy_in_file(struct cli_copy_run *run, const char *src,
		     const char *dst, bool into_dir)
{
	const struct cli_copy_opts *o = run->o;
	struct copy_result r;
	struct cli_copy_src s;
	struct cli_error e = { 0 };
	char into[PATH_MAX + NAME_MAX + 2];
	json_t *req;
	int status;

	if (cli_copy_open_source(src, &s, &e) < 0)
		return cli_report(run->cli, &e);
	/* Where the guest puts it when dst is a directory, for the summary
	 * (a single source into an existing directory is named by dst). */
	snprintf(into, sizeof(into), "%s%s%s", dst,
		 dst[0] && dst[strlen(dst) - 1] == '/' ? "" : "/", s.name);
	req = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:i, s:I}",
			"cmd", "copy-to-guest", "vm", run->vm, "path", dst,
			"name", s.name, "force", o->force, "parents",
			o->parents, "into_dir", into_dir, "mode", (int)s.mode,
			"mtime_ns", (json_int_t)s.mtime_ns);
	if (req && s.size >= 0)
		json_object_set_new(req, "size", json_integer(s.size));
	if (req && s.sparse)
		json_object_set_new(req, "sparse", json_true());
	if (req && o->preserve) {
		json_object_set_new(req, "uid", json_integer(s.uid));
		json_object_set_new(req, "gid", json_integer(s.gid));
	}
	status = req ? run_op(run->cli, req, s.fd, &r) : 1;
	close(s.fd);
	if (status == 0)
		tally(run, src, into_dir ? into : dst, &r);
	return status;
}

int cli_copy_op(struct cli *cli, json_t *req, int fd)
{
	struct copy_result r;

	return run_op(cli, req, fd, &r);
}

int cli_copy_out_file(struct cli_copy_run *run, const char *src,
		      const char *dst, bool many)
{
	struct cli *cli = run->cli;
	const struct cli_copy_opts *o = run->o;
	struct copy_result res, *r = &res;
	struct cli_copy_dst d;
	struct cli_error e = { 0 };
	json_t *req;
	int status;

	if (src[0] != '/') {
		cli_error_set(&e, CLI_ERR_LOCAL,
			      "%s: name the guest's file by its absolute path",
			      src);
		return cli_report(cli, &e);
	}
	if (cli_copy_open_dest(dst, src, many, o, &d, &e) < 0)
		return cli_report(cli, &e);
	req = json_pack("{s:s, s:s, s:s}", "cmd", "copy-from-guest", "vm",
			run->vm, "path", src);
	status = req ? run_op(cli, req, d.fd, r) : 1;
	if (status == 0 && r->got && o->preserve && !d.is_stdout) {
		if (r->uid < 0)
			fprintf(stderr, "vmic: warning: the guest's agent did "
					"not tell %s's owner: kept yours\n", src);
		d.uid = r->uid;
		d.gid = r->gid;
	}
	if (status == 0 && r->got &&
	    cli_copy_finish(&d, o, (uint32_t)r->mode, r->mtime_ns,
			    r->sparse ? r->bytes : -1, &e) < 0)
		return cli_report(cli, &e);
	if (status != 0 || !r->got) {
		cli_copy_discard(&d);
		return status ? status : 1;
	}
	tally(run, src, d.is_stdout ? "-" : d.path, r);
	return 0;
}

static int parse(struct cli *cli, int argc, char **argv,
		 struct cli_copy_opts *o)
{
	static const struct option opts[] = {
		{ "from-guest", no_argument, NULL, OPT_FROM_GUEST },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "create-full-path", no_argument, NULL, OPT_PARENTS },
		{ "recursive", no_argument, NULL, 'r' },
		{ "preserve", no_argument, NULL, OPT_PRESERVE },
		CLI_COMMON_OPTIONS,
		{},
	};
	int c, r;

	while ((c = getopt_long(argc, argv, ":hr", opts, NULL)) != -1) {
		switch (c) {
		case OPT_FROM_GUEST:
			o->from_guest = true;
			break;
		case OPT_FORCE:
			o->force = true;
			break;
		case OPT_PARENTS:
			o->parents = true;
			break;
		case 'r':
			o->recursive = true;
			break;
		case OPT_PRESERVE:
			o->preserve = true;
			break;
		default:
			if ((r = cli_common_option(cli, c, argv)) != CLI_NEXT)
				return r;
		}
	}
	/* cp -p gives files away only as root; so does this, and says so. */
	if (o->from_guest && o->preserve && geteuid() != 0)
		fprintf(stderr, "vmic: warning: --preserve keeps the guest's "
				"owners only when run as root: the files will be "
				"yours\n");
	if (argc - optind < 3)
		return cli_usage_error(cli, "copy needs a VM, at least one "
					    "source and a destination");
	return CLI_NEXT;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --json: {"files", "bytes", "seconds", "mb_per_s", "complete",
 * "items": [...]}; printed after a failure too (complete false), so a
 * script learns which files did arrive. */
static int print_summary(json_t *items, int64_t bytes, double secs,
			 bool complete)
{
	json_t *o = json_pack("{s:I, s:I, s:f, s:f, s:b, s:O}", "files",
			      (json_int_t)json_array_size(items), "bytes",
			      (json_int_t)bytes, "seconds", secs, "mb_per_s",
			      secs > 0 ? (double)bytes / 1e6 / secs : 0.0,
			      "complete", complete, "items", items);
	int r = o ? cli_print_json(o, false) : -ENOMEM;

	json_decref(o);
	return r < 0 ? 1 : 0;
}

/* How many arrived files a failure names on standard error. */
#define ARRIVED_SHOWN 10

/* After a failure: which files did arrive (each whole and verified), the
 * first ARRIVED_SHOWN by name and the count of the rest. */
static void tell_arrived(json_t *items, bool several)
{
	size_t n = json_array_size(items), i;
	char safe[2 * PATH_MAX];
	json_t *it;

	if (n == 0) {
		/* One file that failed needs no second message. */
		if (several)
			fprintf(stderr, "vmic: no file was copied\n");
		return;
	}
	fprintf(stderr, "vmic: %zu file%s arrived whole before this error:\n",
		n, n == 1 ? "" : "s");
	json_array_foreach(items, i, it) {
		if (i == ARRIVED_SHOWN)
			break;
		cli_clean_text(json_string_value(json_object_get(it,
								 "destination")),
			       safe, sizeof(safe));
		fprintf(stderr, "vmic:   %s\n", safe);
	}
	if (n > ARRIVED_SHOWN)
		fprintf(stderr, "vmic:   and %zu more (--json lists them all)\n",
			n - ARRIVED_SHOWN);
}

static bool is_dir(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int cmd_copy(struct cli *cli, int argc, char **argv)
{
	struct cli_copy_opts o = { 0 };
	struct cli_copy_run run = { .cli = cli, .o = &o };
	const char *dst;
	int nsrc, r, status = 0;
	double t0;

	if ((r = parse(cli, argc, argv, &o)) != CLI_NEXT)
		return r;
	run.vm = argv[optind];
	dst = argv[argc - 1];
	nsrc = argc - optind - 2;
	for (int i = 0; i < nsrc; i++)
		if (nsrc > 1 && strcmp(argv[optind + 1 + i], "-") == 0)
			return cli_usage_error(cli, "'-' (standard %s) can "
						    "only be the one source",
					       o.from_guest ? "output"
							    : "input");
	if (nsrc > 1 && strcmp(dst, "-") == 0)
		return cli_usage_error(cli, "several sources cannot go to "
					    "standard output");
	run.items = json_array();
	t0 = now_s();
	for (int i = 0; i < nsrc && status == 0; i++) {
		const char *src = argv[optind + 1 + i];

		if (o.from_guest && o.recursive)
			status = cli_copy_tree_out(&run, src, dst);
		else if (o.from_guest)
			status = cli_copy_out_file(&run, src, dst, nsrc > 1);
		else if (o.recursive && is_dir(src))
			status = cli_copy_tree_in(&run, src, dst);
		else
			status = cli_copy_in_file(&run, src, dst, nsrc > 1);
	}
	if (status != 0)
		tell_arrived(run.items, nsrc > 1 || o.recursive);
	if (cli->json && print_summary(run.items, run.bytes, now_s() - t0,
				       status == 0) != 0 && status == 0)
		status = 1;
	json_decref(run.items);
	return status;
}
