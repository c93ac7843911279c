/* SPDX-License-Identifier: MIT */
/*
 * `vmic copy -r --from-guest`: a directory tree of the guest to the host,
 * as cp -r does. The guest's listing (`list-in-guest`: every entry, each
 * directory before what it holds) arrives in a temporary file; then the
 * directories are made here, each file is a `copy-from-guest` operation
 * (whole and verified, or nothing), and the symbolic links are made last
 * with their targets as they are, so no file of the copy is written
 * through a link the guest named. The listing comes from the guest and
 * is checked like any input from it: every path must be relative, with
 * no empty, "." or ".." component, and lie inside the destination.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/wire.h"
#include "copy.h"
#include "services/filecopy/filecopy.h"

#define LISTING_MAX (64u * 1024 * 1024)

struct entry {
	uint8_t kind;
	uint32_t mode;
	int64_t mtime_ns;
	uint32_t uid, gid;
	const char *rel, *target;
	size_t rel_len, target_len;
};

/* A relative path whose every component is a name. */
static bool rel_ok(const char *rel, size_t n)
{
	size_t i = 0;

	if (!n || rel[0] == '/')
		return false;
	while (i < n) {
		size_t j = i;

		while (j < n && rel[j] != '/')
			j++;
		if (j == i || (j - i == 1 && rel[i] == '.') ||
		    (j - i == 2 && rel[i] == '.' && rel[i + 1] == '.') ||
		    j - i > NAME_MAX)
			return false;
		i = j + 1;
		if (j + 1 == n)
			return false; /* a trailing slash */
	}
	return true;
}

static int read_listing(int fd, uint8_t **buf, size_t *len)
{
	struct stat sb;
	size_t off = 0;

	if (fstat(fd, &sb) < 0)
		return -errno;
	if ((uint64_t)sb.st_size > LISTING_MAX)
		return -EFBIG;
	*buf = malloc((size_t)sb.st_size + 1);
	if (!*buf)
		return -ENOMEM;
	while (off < (size_t)sb.st_size) {
		ssize_t r = pread(fd, *buf + off, (size_t)sb.st_size - off,
				  (off_t)off);

		if (r <= 0) {
			free(*buf);
			return r < 0 ? -errno : -EIO;
		}
		off += (size_t)r;
	}
	*len = off;
	return 0;
}

static bool next_entry(struct vmic_rd *r, struct entry *e)
{
	e->kind = vmic_rd_u8(r);
	e->mode = vmic_rd_u32(r);
	e->mtime_ns = vmic_rd_i64(r);
	(void)vmic_rd_u64(r);
	e->uid = vmic_rd_u32(r);
	e->gid = vmic_rd_u32(r);
	vmic_rd_str(r, VMIC_FC_PATH_MAX, &e->rel, &e->rel_len);
	vmic_rd_str(r, VMIC_FC_PATH_MAX, &e->target, &e->target_len);
	return !r->err && e->kind <= VMIC_FC_ENTRY_OTHER;
}

static void set_times(const char *path, int64_t mtime_ns, int flags)
{
	struct timespec ts[2] = {
		{ .tv_nsec = UTIME_OMIT },
		{ .tv_sec = mtime_ns / 1000000000,
		  .tv_nsec = mtime_ns % 1000000000 },
	};

	if (ts[1].tv_nsec < 0) {
		ts[1].tv_sec--;
		ts[1].tv_nsec += 1000000000;
	}
	utimensat(AT_FDCWD, path, ts, flags);
}

/* --preserve: the entry's owner, as the guest listed it (a link's own).
 * Only root may give files away; anyone else keeps them, as cp -p does
 * (cmd_copy warned). The exit status. */
static int give_owner(const struct cli_copy_run *run, const char *path,
		      const struct entry *e)
{
	if (!run->o->preserve ||
	    lchown(path, (uid_t)e->uid, (gid_t)e->gid) == 0 ||
	    (errno == EPERM && geteuid() != 0))
		return 0;
	fprintf(stderr, "vmic: %s: cannot give it the owner %u:%u: %s\n",
		path, e->uid, e->gid, strerror(errno));
	return 1;
}

static int make_dir(const char *path, bool force)
{
	struct stat sb;

	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno == EEXIST && force && stat(path, &sb) == 0 &&
	    S_ISDIR(sb.st_mode))
		return 0;
	fprintf(stderr, "vmic: %s: %s%s\n", path, strerror(errno),
		errno == EEXIST ? " (--force merges into it)" : "");
	return 1;
}

/* Each entry after the top's; the exit status. */
static int apply(struct cli_copy_run *run, const char *src, const char *top,
		 struct vmic_rd *r, int pass)
{
	char path[PATH_MAX], gsrc[PATH_MAX];
	struct entry e;
	int status = 0;

	while (status == 0 && vmic_rd_left(r)) {
		if (!next_entry(r, &e) || !rel_ok(e.rel, e.rel_len) ||
		    (size_t)snprintf(path, sizeof(path), "%s/%.*s", top,
				     (int)e.rel_len, e.rel) >= sizeof(path) ||
		    (size_t)snprintf(gsrc, sizeof(gsrc), "%s/%.*s", src,
				     (int)e.rel_len, e.rel) >= sizeof(gsrc)) {
			fprintf(stderr, "vmic: the guest's listing of %s holds "
					"an entry that is not a path inside it; "
					"stopped\n", src);
			return 1;
		}
		if (pass == 0 && e.kind == VMIC_FC_ENTRY_DIR) {
			status = make_dir(path, run->o->force);
		} else if (pass == 0 && e.kind == VMIC_FC_ENTRY_FILE) {
			status = cli_copy_out_file(run, gsrc, path, false);
		} else if (pass == 0 && e.kind == VMIC_FC_ENTRY_OTHER) {
			fprintf(stderr, "vmic: warning: %s is a device, socket "
					"or FIFO in the guest: skipped\n", gsrc);
			run->skipped++;
		} else if (pass == 1 && e.kind == VMIC_FC_ENTRY_LINK) {
			char target[VMIC_FC_PATH_MAX + 1];

			snprintf(target, sizeof(target), "%.*s",
				 (int)e.target_len, e.target);
			if (symlink(target, path) < 0) {
				fprintf(stderr, "vmic: %s: %s\n", path,
					strerror(errno));
				status = 1;
			} else {
				status = give_owner(run, path, &e);
				set_times(path, e.mtime_ns,
					  AT_SYMLINK_NOFOLLOW);
			}
		} else if (pass == 2 && e.kind == VMIC_FC_ENTRY_DIR) {
			status = give_owner(run, path, &e);
			chmod(path, e.mode & ~cli_copy_umask());
			set_times(path, e.mtime_ns, 0);
		}
	}
	return status;
}

int cli_copy_tree_out(struct cli_copy_run *run, const char *src,
		      const char *dst)
{
	char top[PATH_MAX], base[NAME_MAX + 1];
	FILE *tmp = tmpfile();
	struct vmic_rd r;
	struct entry e;
	struct stat sb;
	uint8_t *buf = NULL;
	size_t len = 0;
	int status;

	if (src[0] != '/') {
		fprintf(stderr, "vmic: %s: name the guest's directory by its "
				"absolute path\n", src);
		return 1;
	}
	if (!tmp) {
		fprintf(stderr, "vmic: cannot hold the listing: %s\n",
			strerror(errno));
		return 1;
	}
	status = cli_copy_op(run->cli,
			     json_pack("{s:s, s:s, s:s}", "cmd", "list-in-guest",
				       "vm", run->vm, "path", src),
			     fileno(tmp));
	if (status == 0 && read_listing(fileno(tmp), &buf, &len) < 0) {
		fprintf(stderr, "vmic: cannot read the listing of %s\n", src);
		status = 1;
	}
	fclose(tmp);
	if (status)
		return status;
	cli_copy_basename(src, base, sizeof(base));
	if ((stat(dst, &sb) == 0 && S_ISDIR(sb.st_mode)
		     ? (size_t)snprintf(top, sizeof(top), "%s/%s", dst, base)
		     : (size_t)snprintf(top, sizeof(top), "%s", dst)) >=
	    sizeof(top)) {
		free(buf);
		fprintf(stderr, "vmic: %s: path too long\n", dst);
		return 1;
	}
	vmic_rd_init(&r, buf, len);
	if (!next_entry(&r, &e) || e.kind != VMIC_FC_ENTRY_DIR || e.rel_len) {
		free(buf);
		fprintf(stderr, "vmic: the guest's listing of %s does not start "
				"with the directory itself\n", src);
		return 1;
	}
	status = make_dir(top, run->o->force);
	/* Files and directories, then links, then the directories' modes
	 * and mtimes (writing inside changed them). */
	for (int pass = 0; pass < 3 && status == 0; pass++) {
		vmic_rd_init(&r, buf, len);
		next_entry(&r, &e);
		status = apply(run, src, top, &r, pass);
	}
	if (status == 0)
		status = give_owner(run, top, &e);
	if (status == 0) {
		chmod(top, e.mode & ~cli_copy_umask());
		set_times(top, e.mtime_ns, 0);
	}
	free(buf);
	return status;
}
