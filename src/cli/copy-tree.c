/* SPDX-License-Identifier: MIT */
/*
 * `vmic copy -r`: a directory tree of the host into the guest, as cp -r
 * does. Directories are made in the guest (`mkdir-in-guest`) before what
 * they hold and given their mtime after it (writing inside changes it);
 * regular files are `copy-to-guest` operations, each whole or not at
 * all; symbolic links are made as they are (`symlink-in-guest`, never
 * followed); devices, sockets and FIFOs are skipped with a warning each.
 * Entries go in name order, so two runs do the same.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copy.h"

static int64_t mtime_of(const struct stat *sb)
{
	return (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
}

/* --preserve: the entry's owner goes with it. */
static void owner(struct cli_copy_run *run, json_t *req, const struct stat *sb)
{
	if (!req || !run->o->preserve)
		return;
	json_object_set_new(req, "uid", json_integer(sb->st_uid));
	json_object_set_new(req, "gid", json_integer(sb->st_gid));
}

/* A control request that waits for the guest; the exit status, and
 * *existed from its result when asked. */
static int call(struct cli_copy_run *run, json_t *req, bool *existed)
{
	struct cli_error e = { 0 };
	json_t *result = NULL;

	if (!req)
		return 1;
	if (cli_ctl_call(run->cli, req, CTL_DEFAULT_TIMEOUT_MS + 5000,
			 &result, &e) < 0)
		return cli_report(run->cli, &e);
	if (existed)
		*existed = json_is_true(json_object_get(result, "existed"));
	json_decref(result);
	return 0;
}

static int make_dir(struct cli_copy_run *run, const char *dst,
		    const struct stat *sb, bool exist_ok, bool times,
		    bool *existed)
{
	json_t *req = json_pack("{s:s, s:s, s:s, s:i, s:b, s:b}", "cmd",
				"mkdir-in-guest", "vm", run->vm, "path", dst,
				"mode", (int)(sb->st_mode & 01777), "parents",
				run->o->parents, "exist_ok", exist_ok);

	if (req && times)
		json_object_set_new(req, "mtime_ns", json_integer(mtime_of(sb)));
	owner(run, req, sb);
	return call(run, req, existed);
}

static int make_link(struct cli_copy_run *run, const char *src,
		     const char *dst, const struct stat *sb)
{
	char target[PATH_MAX + 1];
	ssize_t n = readlink(src, target, sizeof(target) - 1);
	struct cli_error e = { 0 };
	json_t *req;

	if (n < 0) {
		cli_error_set(&e, CLI_ERR_LOCAL, "cannot read the link %s: %s",
			      src, strerror(errno));
		return cli_report(run->cli, &e);
	}
	target[n] = '\0';
	req = json_pack("{s:s, s:s, s:s, s:s, s:I, s:b}", "cmd",
			"symlink-in-guest", "vm", run->vm, "path", dst,
			"target", target, "mtime_ns", (json_int_t)mtime_of(sb),
			"force", run->o->force);
	owner(run, req, sb);
	return call(run, req, NULL);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int copy_entry(struct cli_copy_run *run, const char *src,
		      const char *dst);

/* The directory src, made at dst (unless made already; one that exists
 * is merged into with --force only), then its entries, then its mtime. */
static int copy_dir(struct cli_copy_run *run, const char *src,
		    const char *dst, const struct stat *sb, bool made)
{
	struct dirent **names = NULL;
	char s[PATH_MAX], d[PATH_MAX];
	int n, status = 0;

	if (!made)
		status = make_dir(run, dst, sb, run->o->force, false, NULL);
	if (status)
		return status;
	n = scandir(src, &names, NULL, by_name);
	if (n < 0) {
		fprintf(stderr, "vmic: cannot read the directory %s: %s\n", src,
			strerror(errno));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;

		if (status == 0 && strcmp(name, ".") != 0 &&
		    strcmp(name, "..") != 0) {
			if ((size_t)snprintf(s, sizeof(s), "%s/%s", src, name) >=
				    sizeof(s) ||
			    (size_t)snprintf(d, sizeof(d), "%s/%s", dst, name) >=
				    sizeof(d)) {
				fprintf(stderr, "vmic: %s/%s: path too long\n",
					src, name);
				status = 1;
			} else {
				status = copy_entry(run, s, d);
			}
		}
		free(names[i]);
	}
	free(names);
	if (status)
		return status;
	return make_dir(run, dst, sb, true, true, NULL);
}

static int copy_entry(struct cli_copy_run *run, const char *src,
		      const char *dst)
{
	struct stat sb;

	if (lstat(src, &sb) < 0) {
		fprintf(stderr, "vmic: %s: %s\n", src, strerror(errno));
		return 1;
	}
	if (S_ISDIR(sb.st_mode))
		return copy_dir(run, src, dst, &sb, false);
	if (S_ISREG(sb.st_mode))
		return cli_copy_in_file(run, src, dst, false);
	if (S_ISLNK(sb.st_mode))
		return make_link(run, src, dst, &sb);
	fprintf(stderr, "vmic: warning: %s is a %s: skipped\n", src,
		S_ISFIFO(sb.st_mode)    ? "FIFO"
		: S_ISSOCK(sb.st_mode) ? "socket"
				       : "device");
	run->skipped++;
	return 0;
}

int cli_copy_tree_in(struct cli_copy_run *run, const char *src,
		     const char *dst)
{
	char base[NAME_MAX + 1], top[PATH_MAX];
	struct stat sb;
	bool existed = false;
	int status;

	if (stat(src, &sb) < 0) {
		fprintf(stderr, "vmic: %s: %s\n", src, strerror(errno));
		return 1;
	}
	/* As cp -r: into dst when it is a directory already, else dst. */
	status = make_dir(run, dst, &sb, true, false, &existed);
	if (status)
		return status;
	if (!existed)
		return copy_dir(run, src, dst, &sb, true);
	cli_copy_basename(src, base, sizeof(base));
	if ((size_t)snprintf(top, sizeof(top), "%s/%s", dst, base) >=
	    sizeof(top)) {
		fprintf(stderr, "vmic: %s/%s: path too long\n", dst, base);
		return 1;
	}
	return copy_dir(run, src, top, &sb, false);
}
