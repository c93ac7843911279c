/* SPDX-License-Identifier: MIT */
/* `vmic copy`: what copy.c (the command) and copy-files.c (the host's
 * files) share. */
#ifndef VMIC_CLI_COPY_H
#define VMIC_CLI_COPY_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vmic.h"

struct cli_copy_opts {
	bool from_guest, force, parents, recursive, preserve;
};

/* A source on the host (a file, or standard input for "-"). */
struct cli_copy_src {
	int fd;
	uint32_t mode;
	int64_t mtime_ns;
	int64_t size; /* -1 when not a regular file */
	bool sparse;  /* a regular file with holes */
	uid_t uid;
	gid_t gid;
	char name[NAME_MAX + 1]; /* "" for standard input */
};

/* A destination on the host: a temporary in its directory until the
 * copy is confirmed, or standard output. The temporary has no name
 * (O_TMPFILE: nothing is left if vmic dies, even by SIGKILL) where the
 * file system allows it, else the name in tmp. */
struct cli_copy_dst {
	int fd;
	bool is_stdout;
	bool unnamed; /* an O_TMPFILE, linked in at the end */
	int64_t uid, gid; /* --preserve: the owner to give it, else -1 */
	char path[PATH_MAX];
	char dir[PATH_MAX];
	char tmp[PATH_MAX];
};

/* One `vmic copy`: its options and what it copied so far. */
struct cli_copy_run {
	struct cli *cli;
	const char *vm;
	const struct cli_copy_opts *o;
	json_t *items;  /* {"source", "destination", "bytes", "hash"} */
	int64_t bytes;
	unsigned skipped; /* devices, sockets, FIFOs of a tree */
};

/* copy.c: host file src to guest path dst (into_dir: dst is a directory
 * the file goes in by its name); counted in run. The exit status. */
int cli_copy_in_file(struct cli_copy_run *run, const char *src,
		     const char *dst, bool into_dir);
/* copy.c: guest file src to host path dst (a directory takes its name
 * when many), counted in run. The exit status. */
int cli_copy_out_file(struct cli_copy_run *run, const char *src,
		      const char *dst, bool many);
/* copy.c: run a long operation with one descriptor; the exit status. */
int cli_copy_op(struct cli *cli, json_t *req, int fd);
/* copy-tree-out.c: the guest's tree at src to host path dst, as cp -r
 * does (into dst when it is a directory). The exit status. */
int cli_copy_tree_out(struct cli_copy_run *run, const char *src,
		      const char *dst);
/* copy-tree.c: the tree at src (a directory) to guest path dst, as cp -r
 * does: into dst when it is a directory, else as dst. The exit status. */
int cli_copy_tree_in(struct cli_copy_run *run, const char *src,
		     const char *dst);

/* The last component of path into out ("" for "/"). */
void cli_copy_basename(const char *path, char *out, size_t n);
/* Open path ("-": standard input) for reading, with its mode, mtime and
 * size. 0, or -errno with e set (a directory: trees are not copied). */
int cli_copy_open_source(const char *path, struct cli_copy_src *s,
			 struct cli_error *e);
/* The destination of guest file src given DST (a directory takes the
 * base name; "-" is standard output): checked (exists? parent?) and its
 * temporary created. 0, or -errno with e set. */
int cli_copy_open_dest(const char *dst, const char *src, bool many,
		       const struct cli_copy_opts *o, struct cli_copy_dst *d,
		       struct cli_error *e);
/* The copy is confirmed: holes punched back (sparse_size >= 0: the
 * guest's file had holes), owner (d->uid/gid >= 0; not being allowed to
 * is ignored unless root, as cp -p does), mode, mtime, fsync, put into
 * place. 0, or
 * -errno with e set and the temporary removed. */
int cli_copy_finish(struct cli_copy_dst *d, const struct cli_copy_opts *o,
		    uint32_t mode, int64_t mtime_ns, int64_t sparse_size,
		    struct cli_error *e);
/* The copy failed: remove the temporary. */
void cli_copy_discard(struct cli_copy_dst *d);
/* The process's umask, unchanged. */
mode_t cli_copy_umask(void);

#endif
