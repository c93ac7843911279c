/* SPDX-License-Identifier: MIT */
/*
 * Where a copy may go in the guest. The agent runs as root, so a path the
 * host names is only used beneath a directory the guest's configuration
 * allows ([filecopy] write-dirs for copies in, read-dirs for copies
 * out), and the check is done by the kernel while it resolves the path
 * (openat2 with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS): a "..", an
 * absolute symlink or one that climbs out of the allowed directory fails
 * with EXDEV, whenever it was put there. The file is then created and
 * renamed relative to the directory descriptor resolved here, so a
 * symlink swapped in afterwards changes nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "services/filecopy/guest.h"

static int open_beneath(int root, const char *rel, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long r = syscall(SYS_openat2, root, rel, &how, sizeof(how));

	return r < 0 ? -errno : (int)r;
}

/*
 * The allowed directory that holds path (the longest that does): its
 * length in *dlen; false when none does. A directory "/" holds every
 * path.
 */
static bool find_dir(const char *dirs, const char *path, char *dir,
		     size_t cap, size_t *dlen)
{
	const char *p = dirs;
	bool found = false;

	*dlen = 0;
	while (*p) {
		size_t n, len;

		p += strspn(p, " \t");
		n = strcspn(p, " \t");
		if (!n)
			break;
		len = n;
		while (len > 1 && p[len - 1] == '/')
			len--;
		if (len < cap &&
		    (strncmp(path, p, len) == 0 &&
		     (path[len] == '/' || path[len] == '\0' || len == 1)) &&
		    (!found || len > *dlen)) {
			memcpy(dir, p, len);
			dir[len] = '\0';
			*dlen = len;
			found = true;
		}
		p += n;
	}
	return found;
}

/* The path's part below dir, without leading slashes: "" for dir itself. */
static const char *below(const char *path, size_t dlen)
{
	const char *rel = path + (dlen == 1 ? 0 : dlen);

	while (*rel == '/')
		rel++;
	return rel;
}

/* The allowed directory holding path, opened; -1 with the error said. */
static int open_root(const char *dirs, const char *key, const char *conf,
		     const char *path, const char **rel, uint16_t *code,
		     char *err, size_t n)
{
	char dir[FC_DIRS_MAX];
	size_t dlen;
	int fd;

	*code = VMIC_E_REFUSED;
	if (!dirs[0]) {
		snprintf(err, n,
			 "copies %s this guest are not allowed: set "
			 "[filecopy] %s = DIR... in %s",
			 strcmp(key, "write-dirs") == 0 ? "into" : "out of",
			 key, conf);
		return -1;
	}
	if (!find_dir(dirs, path, dir, sizeof(dir), &dlen)) {
		snprintf(err, n,
			 "%.512s is not beneath a directory of [filecopy] %s (%s) "
			 "in %s: not allowed",
			 path, key, dirs, conf);
		return -1;
	}
	fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		*code = VMIC_E_FAILED;
		snprintf(err, n, "cannot open %s, of [filecopy] %s: %s", dir,
			 key, strerror(errno));
		return -1;
	}
	*rel = below(path, dlen);
	return fd;
}

/* A sentence for an error of open_beneath on path. */
static void say(int r, const char *path, const char *key, char *err,
		size_t n)
{
	switch (r) {
	case -EXDEV:
		snprintf(err, n,
			 "%.512s resolves outside the directories of [filecopy] "
			 "%.512s (a '..' or a symlink leading out): not allowed",
			 path, key);
		break;
	case -ELOOP:
		snprintf(err, n, "%.512s: too many levels of symlinks, or a "
				 "/proc magic link: not allowed", path);
		break;
	case -EACCES:
	case -EPERM:
		snprintf(err, n, "%.512s: permission denied in the guest", path);
		break;
	case -ENAMETOOLONG:
		snprintf(err, n, "%.512s: file name too long in the guest", path);
		break;
	case -ENOTDIR:
		snprintf(err, n, "%.512s: a component of the path is not a "
				 "directory in the guest", path);
		break;
	case -ENOENT:
		snprintf(err, n, "%.512s: no such file or directory in the guest",
			 path);
		break;
	default:
		snprintf(err, n, "%.512s: %s", path, strerror(-r));
	}
}

/* mkdir -p of rel beneath root: the last directory, or -errno. */
static int make_dirs(int root, const char *rel)
{
	char comp[VMIC_FC_NAME_MAX + 1];
	int cur = root, next;

	while (*rel) {
		size_t len = strcspn(rel, "/");

		if (len > VMIC_FC_NAME_MAX) {
			next = -ENAMETOOLONG;
			goto fail;
		}
		memcpy(comp, rel, len);
		comp[len] = '\0';
		rel += len;
		rel += strspn(rel, "/");
		if (!len || strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			next = -EXDEV;
			goto fail;
		}
		if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST) {
			next = -errno;
			goto fail;
		}
		next = open_beneath(cur, comp, O_PATH | O_DIRECTORY);
		if (next < 0)
			goto fail;
		if (cur != root)
			close(cur);
		cur = next;
	}
	return cur == root ? open_beneath(root, ".", O_PATH | O_DIRECTORY)
			   : cur;
fail:
	if (cur != root)
		close(cur);
	return next;
}

static int set_leaf(struct fc_dest *d, const char *leaf, size_t len,
		    const char *path, char *err, size_t n)
{
	if (len > VMIC_FC_NAME_MAX) {
		snprintf(err, n, "%.512s: file name too long in the guest (%zu "
				 "bytes, at most %d)", path, len,
			 VMIC_FC_NAME_MAX);
		return VMIC_E_REFUSED;
	}
	if (!len || (len == 1 && leaf[0] == '.') ||
	    (len == 2 && leaf[0] == '.' && leaf[1] == '.')) {
		snprintf(err, n, "%.512s does not name a file", path);
		return VMIC_E_REFUSED;
	}
	memcpy(d->leaf, leaf, len);
	d->leaf[len] = '\0';
	return 0;
}

/* The destination is an existing directory (dfd): the name goes in it. */
static int into_dir(struct fc_dest *d, int dfd, const struct vmic_fc_put *m,
		    char *err, size_t n)
{
	if (!m->name[0]) {
		close(dfd);
		snprintf(err, n, "%.512s is a directory in the guest: name the "
				 "file to write", m->path);
		return VMIC_E_REFUSED;
	}
	d->dirfd = dfd;
	return set_leaf(d, m->name, strlen(m->name), m->path, err, n);
}

/* The directory rel (len bytes) beneath root, made when asked. */
static int open_parent(int root, const char *rel, size_t len, bool make,
		       const char *path, char *err, size_t n)
{
	char parent[VMIC_FC_PATH_MAX + 1];
	int fd;

	memcpy(parent, rel, len);
	parent[len] = '\0';
	fd = open_beneath(root, len ? parent : ".", O_PATH | O_DIRECTORY);
	if (fd == -ENOENT && make)
		fd = make_dirs(root, parent);
	if (fd == -ENOENT)
		snprintf(err, n, "the directory of %s does not exist in the "
				 "guest: create it, or copy with "
				 "--create-full-path", path);
	else if (fd < 0)
		say(fd, path, "write-dirs", err, n);
	return fd;
}

int fc_guest_resolve_put(const char *dirs, const char *conf_path,
			 const struct vmic_fc_put *m, struct fc_dest *d,
			 char *err, size_t n)
{
	char rel[VMIC_FC_PATH_MAX + 1];
	const char *r0, *slash;
	uint16_t code;
	bool dir_wanted = m->flags & VMIC_FC_F_INTO_DIR;
	size_t len;
	int root, fd, rc;

	d->dirfd = -1;
	root = open_root(dirs, "write-dirs", conf_path, m->path, &r0, &code,
			 err, n);
	if (root < 0)
		return code;
	snprintf(rel, sizeof(rel), "%s", r0);
	len = strlen(rel);
	if (len && rel[len - 1] == '/')
		dir_wanted = true;
	while (len && rel[len - 1] == '/')
		rel[--len] = '\0';
	fd = open_beneath(root, len ? rel : ".", O_PATH | O_DIRECTORY);
	if (fd >= 0) {
		close(root);
		return into_dir(d, fd, m, err, n);
	}
	if (fd != -ENOENT && fd != -ENOTDIR) {
		close(root);
		say(fd, m->path, "write-dirs", err, n);
		return fd == -EACCES ? VMIC_E_FAILED : VMIC_E_REFUSED;
	}
	if (dir_wanted) {
		fd = fd == -ENOENT && (m->flags & VMIC_FC_F_PARENTS)
			     ? make_dirs(root, rel)
			     : fd;
		if (fd >= 0) {
			close(root);
			return into_dir(d, fd, m, err, n);
		}
		close(root);
		snprintf(err, n, "%.512s is not a directory in the guest%s",
			 m->path, fd == -ENOENT ? " (it does not exist: "
						  "--create-full-path makes "
						  "it)" : "");
		return VMIC_E_REFUSED;
	}
	slash = strrchr(rel, '/');
	rc = set_leaf(d, slash ? slash + 1 : rel,
		      strlen(slash ? slash + 1 : rel), m->path, err, n);
	if (rc) {
		close(root);
		return rc;
	}
	fd = open_parent(root, rel, slash ? (size_t)(slash - rel) : 0,
			 m->flags & VMIC_FC_F_PARENTS, m->path, err, n);
	close(root);
	if (fd < 0)
		return VMIC_E_REFUSED;
	d->dirfd = fd;
	return 0;
}

int fc_guest_resolve_leaf(const char *dirs, const char *conf_path,
			  const char *path, bool parents, struct fc_dest *d,
			  char *err, size_t n)
{
	char rel[VMIC_FC_PATH_MAX + 1];
	const char *r0, *slash;
	uint16_t code;
	size_t len;
	int root, fd, rc;

	d->dirfd = -1;
	root = open_root(dirs, "write-dirs", conf_path, path, &r0, &code, err,
			 n);
	if (root < 0)
		return code;
	snprintf(rel, sizeof(rel), "%s", r0);
	len = strlen(rel);
	while (len && rel[len - 1] == '/')
		rel[--len] = '\0';
	if (!len) {
		close(root);
		snprintf(err, n, "%.512s is a directory of [filecopy] "
				 "write-dirs itself", path);
		return 1;
	}
	slash = strrchr(rel, '/');
	rc = set_leaf(d, slash ? slash + 1 : rel,
		      strlen(slash ? slash + 1 : rel), path, err, n);
	if (rc) {
		close(root);
		return rc;
	}
	fd = open_parent(root, rel, slash ? (size_t)(slash - rel) : 0, parents,
			 path, err, n);
	close(root);
	if (fd < 0)
		return VMIC_E_REFUSED;
	d->dirfd = fd;
	return 0;
}

int fc_guest_open_get(const char *dirs, const char *conf_path,
		      const char *path, bool dir, uint16_t *code, char *err,
		      size_t n)
{
	const char *rel;
	struct stat sb;
	int root, fd;

	root = open_root(dirs, "read-dirs", conf_path, path, &rel, code, err,
			 n);
	if (root < 0)
		return -1;
	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	fd = open_beneath(root, *rel ? rel : ".",
			  O_RDONLY | O_NONBLOCK | O_NOCTTY);
	close(root);
	*code = VMIC_E_REFUSED;
	if (fd < 0) {
		say(fd, path, "read-dirs", err, n);
		return -1;
	}
	if (dir && fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode))
		return fd;
	if (dir) {
		snprintf(err, n, "%.512s is not a directory in the guest", path);
		close(fd);
		return -1;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, n, "%.512s is %s in the guest", path,
			 S_ISDIR(sb.st_mode)
				 ? "a directory (copy it with -r)"
				 : "not a regular file");
		close(fd);
		return -1;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		snprintf(err, n, "%.512s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}
