/* SPDX-License-Identifier: MIT */
/*
 * Room on the disk of the state directory.
 *
 * SQLite needs a few pages of WAL for any transaction, a DELETE too, so
 * on a full disk even `vmic remove` would fail. The daemon therefore
 * keeps a reserve file (vmic.reserve, a few MiB, allocated) next to the
 * database: when a write meets a full disk the writer removes it, which
 * gives the space back for the commands that free space or switch things
 * off, and stops storing events until the disk has room again; then it
 * allocates the reserve anew (store-writer.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "store-internal.h"

static void reserve_path(const char *dir, char *buf, size_t n)
{
	snprintf(buf, n, "%s/vmic.reserve", dir);
}

int store_reserve_make(const char *dir)
{
	char path[PATH_MAX];
	struct stat st;
	int fd, r;

	reserve_path(dir, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) == 0 && st.st_size >= STORE_RESERVE_BYTES &&
	    (uint64_t)st.st_blocks * 512 >= STORE_RESERVE_BYTES) {
		close(fd);
		return 0;
	}
	/* Allocated blocks, not a hole: the space must really be ours. */
	r = -posix_fallocate(fd, 0, STORE_RESERVE_BYTES);
	close(fd);
	if (r < 0)
		unlink(path); /* a part of it would only take space */
	return r;
}

bool store_reserve_release(const char *dir)
{
	char path[PATH_MAX];

	reserve_path(dir, path, sizeof(path));
	return unlink(path) == 0;
}

uint64_t store_space_free(const char *dir)
{
	struct statvfs sv;

	if (statvfs(dir, &sv) < 0)
		return 0;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}
