/* SPDX-License-Identifier: MIT */
/*
 * `vmic copy`, the host's files: they are opened here, with the user's
 * own rights, and only their descriptors go to vmic-hostd. A file coming
 * from the guest is written to a temporary name in its destination
 * directory and put in place only once the daemon confirmed it whole
 * (the hashes matched): fsynced, given the guest file's mode and mtime,
 * renamed without replacing unless --force. Anything else removes the
 * temporary.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copy.h"
#include "services/filecopy/sparse.h"

/* The last component of path ("" for "/"), trailing slashes ignored. */
void cli_copy_basename(const char *path, char *out, size_t n)
{
	size_t len = strlen(path), start;

	while (len > 1 && path[len - 1] == '/')
		len--;
	start = len;
	while (start > 0 && path[start - 1] != '/')
		start--;
	snprintf(out, n, "%.*s", (int)(len - start),
		 len == 1 && path[0] == '/' ? "" : path + start);
}

int cli_copy_open_source(const char *path, struct cli_copy_src *s,
			 struct cli_error *e)
{
	struct stat sb;

	memset(s, 0, sizeof(*s));
	s->fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO)
				       : open(path, O_RDONLY | O_CLOEXEC |
							    O_NOCTTY);
	if (s->fd < 0) {
		cli_error_set(e, CLI_ERR_LOCAL, "cannot open %s: %s", path,
			      strerror(errno));
		return -errno;
	}
	if (fstat(s->fd, &sb) < 0 || S_ISDIR(sb.st_mode)) {
		cli_error_set(e, CLI_ERR_LOCAL,
			      S_ISDIR(sb.st_mode)
				      ? "%s is a directory: copy it with -r"
				      : "cannot stat %s",
			      path);
		close(s->fd);
		s->fd = -1;
		return -EISDIR;
	}
	s->mode = sb.st_mode & 01777;
	s->uid = sb.st_uid;
	s->gid = sb.st_gid;
	s->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 +
		      sb.st_mtim.tv_nsec;
	s->size = S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : -1;
	s->sparse = S_ISREG(sb.st_mode) &&
		    (int64_t)sb.st_blocks * 512 < (int64_t)sb.st_size;
	if (strcmp(path, "-") != 0)
		cli_copy_basename(path, s->name, sizeof(s->name));
	return 0;
}

/* mkdir -p of dir. */
static int make_dirs(const char *dir)
{
	char buf[PATH_MAX];
	size_t len = strlen(dir);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0777) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0777) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* O_TMPFILE in d->dir, when the file system and /proc allow linking it
 * in later. The descriptor, or -errno (-EOPNOTSUPP: use a name). */
static int open_unnamed(const struct cli_copy_dst *d)
{
	int fd;

	if (access("/proc/self/fd", X_OK) < 0)
		return -EOPNOTSUPP;
	fd = open(d->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	/* Kernels and file systems without it say so in several ways. */
	if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)
		return -EOPNOTSUPP;
	return -errno;
}

/* The temporary of d: unnamed when possible, else a named one. */
static int open_temporary(struct cli_copy_dst *d, const char *dst,
			  struct cli_error *e)
{
	int r = open_unnamed(d);

	if (r >= 0) {
		d->fd = r;
		d->unnamed = true;
		return 0;
	}
	if (r == -EOPNOTSUPP) {
		r = snprintf(d->tmp, sizeof(d->tmp),
			     "%s/.vmic-copy-XXXXXX.part", d->dir);
		if (r < 0 || (size_t)r >= sizeof(d->tmp)) {
			cli_error_set(e, CLI_ERR_LOCAL,
				      "%s: file name too long", dst);
			d->tmp[0] = '\0';
			return -ENAMETOOLONG;
		}
		d->fd = mkostemps(d->tmp, 5, O_CLOEXEC);
		r = d->fd < 0 ? -errno : 0;
		if (r < 0)
			d->tmp[0] = '\0';
	}
	if (r < 0)
		cli_error_set(e, CLI_ERR_LOCAL,
			      "cannot create a file in %s: %s%s", d->dir,
			      strerror(-r),
			      r == -ENOENT ? " (--create-full-path makes "
					     "the directory)"
					   : "");
	return r;
}

/* Give the unnamed temporary its name: linked in, which never replaces;
 * with force, an existing file is replaced by way of a short-lived name
 * renamed over it. 0 or -errno. */
static int link_unnamed(const struct cli_copy_dst *d, bool force)
{
	char proc[64], tmp[PATH_MAX];
	int r;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", d->fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, d->path, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != EEXIST || !force)
		return -errno;
	for (int i = 0;; i++) {
		r = snprintf(tmp, sizeof(tmp), "%s/.vmic-copy-%d-%d.part",
			     d->dir, (int)getpid(), i);
		if (r < 0 || (size_t)r >= sizeof(tmp))
			return -ENAMETOOLONG;
		if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0)
			break;
		if (errno != EEXIST || i == 99)
			return -errno;
	}
	if (rename(tmp, d->path) < 0) {
		r = -errno;
		unlink(tmp);
		return r;
	}
	return 0;
}

/* Put the finished temporary at d->path (no replacing unless force). */
static int put_in_place(const struct cli_copy_dst *d, bool force)
{
	if (d->unnamed)
		return link_unnamed(d, force);
	return renameat2(AT_FDCWD, d->tmp, AT_FDCWD, d->path,
			 force ? 0 : RENAME_NOREPLACE) < 0
		       ? -errno
		       : 0;
}

int cli_copy_open_dest(const char *dst, const char *src, bool many,
		       const struct cli_copy_opts *o, struct cli_copy_dst *d,
		       struct cli_error *e)
{
	char base[NAME_MAX + 1], dir[PATH_MAX];
	struct stat sb;
	int r;

	memset(d, 0, sizeof(*d));
	d->fd = -1;
	d->uid = d->gid = -1;
	if (strcmp(dst, "-") == 0) {
		d->fd = dup(STDOUT_FILENO);
		d->is_stdout = true;
		return d->fd < 0 ? -errno : 0;
	}
	cli_copy_basename(src, base, sizeof(base));
	if (stat(dst, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		r = snprintf(d->path, sizeof(d->path), "%s/%s", dst, base);
	} else if (many || (dst[0] && dst[strlen(dst) - 1] == '/')) {
		if (o->parents && make_dirs(dst) == 0) {
			r = snprintf(d->path, sizeof(d->path), "%s/%s", dst,
				     base);
		} else {
			cli_error_set(e, CLI_ERR_LOCAL,
				      "%s is not a directory%s", dst,
				      o->parents ? ""
						 : " (--create-full-path "
						   "makes it)");
			return -ENOTDIR;
		}
	} else {
		r = snprintf(d->path, sizeof(d->path), "%s", dst);
	}
	if (r < 0 || (size_t)r >= sizeof(d->path)) {
		cli_error_set(e, CLI_ERR_LOCAL, "%s: file name too long", dst);
		return -ENAMETOOLONG;
	}
	if (lstat(d->path, &sb) == 0 && (!o->force || S_ISDIR(sb.st_mode))) {
		cli_error_set(e, CLI_ERR_LOCAL, "%s exists%s", d->path,
			      S_ISDIR(sb.st_mode)
				      ? " and is a directory"
				      : ": copy with --force to replace it");
		return -EEXIST;
	}
	snprintf(dir, sizeof(dir), "%s", d->path);
	snprintf(d->dir, sizeof(d->dir), "%s", dirname(dir));
	if (stat(d->dir, &sb) < 0 && errno == ENOENT && o->parents &&
	    (r = make_dirs(d->dir)) < 0) {
		cli_error_set(e, CLI_ERR_LOCAL, "cannot make %s: %s", d->dir,
			      strerror(-r));
		return r;
	}
	return open_temporary(d, dst, e);
}

void cli_copy_discard(struct cli_copy_dst *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	if (d->tmp[0])
		unlink(d->tmp);
	d->tmp[0] = '\0';
}

/* --preserve: d's owner as the guest's file had it. Before the mode,
 * which chown would strip of set-id bits. Only root may give files
 * away: anyone else keeps them, as cp -p does (cmd_copy warned). */
static int give_owner(const struct cli_copy_dst *d)
{
	if (d->uid < 0 || d->gid < 0)
		return 0;
	if (fchown(d->fd, (uid_t)d->uid, (gid_t)d->gid) == 0)
		return 0;
	if (errno == EPERM && geteuid() != 0)
		return 0;
	return -errno;
}

int cli_copy_finish(struct cli_copy_dst *d, const struct cli_copy_opts *o,
		    uint32_t mode, int64_t mtime_ns, int64_t sparse_size,
		    struct cli_error *e)
{
	struct timespec ts[2] = {
		{ .tv_nsec = UTIME_OMIT },
		{ .tv_sec = mtime_ns / 1000000000,
		  .tv_nsec = mtime_ns % 1000000000 },
	};
	int dfd, r;

	if (d->is_stdout) {
		close(d->fd);
		d->fd = -1;
		return 0;
	}
	if (ts[1].tv_nsec < 0) {
		ts[1].tv_sec--;
		ts[1].tv_nsec += 1000000000;
	}
	if (sparse_size >= 0 && vmic_fc_make_sparse(d->fd, sparse_size) < 0) {
		cli_error_set(e, CLI_ERR_LOCAL, "%s: cannot make it sparse: %s",
			      d->path, strerror(errno));
		cli_copy_discard(d);
		return -EIO;
	}
	if ((r = give_owner(d)) < 0) {
		cli_error_set(e, CLI_ERR_LOCAL, "%s: cannot give it the owner "
			      "%lld:%lld: %s", d->path, (long long)d->uid,
			      (long long)d->gid, strerror(-r));
		cli_copy_discard(d);
		return r;
	}
	if (fchmod(d->fd, mode & ~cli_copy_umask()) < 0 ||
	    futimens(d->fd, ts) < 0 || fsync(d->fd) < 0)
		r = -errno;
	else
		r = put_in_place(d, o->force);
	if (r < 0) {
		cli_error_set(e, CLI_ERR_LOCAL, "%s: %s%s", d->path,
			      strerror(-r),
			      r == -EEXIST ? " (it appeared during the "
					     "copy; --force replaces it)"
					   : "");
		cli_copy_discard(d);
		return -EIO;
	}
	d->tmp[0] = '\0';
	close(d->fd);
	d->fd = -1;
	dfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

mode_t cli_copy_umask(void)
{
	mode_t m = umask(0);

	umask(m);
	return m;
}
