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

int cli_copy_open_dest(const char *dst, const char *src, bool many,
		       const struct cli_copy_opts *o, struct cli_copy_dst *d,
		       struct cli_error *e)
{
	char base[NAME_MAX + 1], dir[PATH_MAX];
	struct stat sb;
	int r;

	memset(d, 0, sizeof(*d));
	d->fd = -1;
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
	r = snprintf(d->tmp, sizeof(d->tmp), "%s/.vmic-copy-XXXXXX.part",
		     d->dir);
	if (r < 0 || (size_t)r >= sizeof(d->tmp)) {
		cli_error_set(e, CLI_ERR_LOCAL, "%s: file name too long", dst);
		return -ENAMETOOLONG;
	}
	d->fd = mkostemps(d->tmp, 5, O_CLOEXEC);
	if (d->fd < 0) {
		r = -errno;
		cli_error_set(e, CLI_ERR_LOCAL, "cannot create a file in %s: %s%s",
			      d->dir, strerror(errno),
			      errno == ENOENT ? " (--create-full-path makes "
						"the directory)"
					      : "");
		d->tmp[0] = '\0';
		return r;
	}
	return 0;
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

int cli_copy_finish(struct cli_copy_dst *d, const struct cli_copy_opts *o,
		    uint32_t mode, int64_t mtime_ns, int64_t sparse_size,
		    struct cli_error *e)
{
	struct timespec ts[2] = {
		{ .tv_nsec = UTIME_OMIT },
		{ .tv_sec = mtime_ns / 1000000000,
		  .tv_nsec = mtime_ns % 1000000000 },
	};
	int dfd;

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
	if (fchmod(d->fd, mode & ~cli_copy_umask()) < 0 ||
	    futimens(d->fd, ts) < 0 || fsync(d->fd) < 0 ||
	    renameat2(AT_FDCWD, d->tmp, AT_FDCWD, d->path,
		      o->force ? 0 : RENAME_NOREPLACE) < 0) {
		cli_error_set(e, CLI_ERR_LOCAL, "%s: %s%s", d->path,
			      strerror(errno),
			      errno == EEXIST ? " (it appeared during the "
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
