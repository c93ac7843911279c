/* SPDX-License-Identifier: MIT */
/*
 * Files in places the agent does not own: chronyd's pid file (written by
 * the chrony user), the KVP pool directory (shared with hv_kvp_daemon,
 * cloud-init and whatever else writes pool files), anything a service
 * user or a mistaken admin can put a path of their choosing at.
 *
 * A plain open() trusts the path: a FIFO planted there blocks open() and
 * read() until someone writes to it (the thread that asked waits for
 * ever), a symbolic link sends a write wherever it points, and a sparse
 * file of 16 GB reads as 16 GB of zeros. So every open here is
 * O_NONBLOCK (a FIFO's open returns at once), O_NOFOLLOW (a final
 * symbolic link fails with ELOOP), O_CLOEXEC and O_NOCTTY, and the
 * descriptor is kept only when fstat() says it is a regular file no
 * larger than the caller's bound; reads are bounded by the caller's
 * buffer. O_NONBLOCK stays set: it changes nothing for a regular file.
 */
#ifndef VMIC_SAFE_FILE_H
#define VMIC_SAFE_FILE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The error for a path that is not a regular file (a FIFO, socket,
 * device or directory). Linux has no EFTYPE; vmic_file_strerror says
 * what it means here. */
#define VMIC_ENOTREG EMEDIUMTYPE

/*
 * Open path (flags: O_RDONLY, O_WRONLY or O_RDWR, and O_CREAT to create
 * it with mode) as described above. max_size: the largest size accepted,
 * 0 for any. The fd, or -errno: -ELOOP (a symbolic link), -VMIC_ENOTREG,
 * -EFBIG (larger than max_size), or what open() said.
 */
int vmic_file_open(const char *path, int flags, mode_t mode,
		   uint64_t max_size);

/*
 * The start of a small file (a pid file, a /proc or /sys attribute) into
 * buf, NUL-terminated: at most n - 1 bytes. A file whose size is over
 * max_size is refused (-EFBIG); /proc files say 0. Bytes read or -errno
 * as vmic_file_open.
 */
ssize_t vmic_file_read_small(const char *path, char *buf, size_t n,
			     uint64_t max_size);

/*
 * Create path afresh for writing (a temporary file renamed over the real
 * one later): whatever is at path (a FIFO, a symbolic link, a stale
 * file) is unlinked first, then the file is created with O_EXCL, so a
 * name planted in between fails with EEXIST rather than being opened.
 * The fd or -errno.
 */
int vmic_file_create_new(const char *path, mode_t mode);

/* A sentence for an error of the functions above (strerror otherwise). */
const char *vmic_file_strerror(int err);

#endif
