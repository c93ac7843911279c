/* SPDX-License-Identifier: MIT */
#include "safe-file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SAFE_FLAGS (O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY)

/* Keep fd only when it is a regular file of at most max_size bytes. */
static int check_regular(int fd, uint64_t max_size)
{
	struct stat st;
	int r = 0;

	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = -VMIC_ENOTREG;
	else if (max_size && (uint64_t)st.st_size > max_size)
		r = -EFBIG;
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int vmic_file_open(const char *path, int flags, mode_t mode,
		   uint64_t max_size)
{
	int fd = open(path, flags | SAFE_FLAGS, mode);

	if (fd < 0)
		return -errno;
	return check_regular(fd, max_size);
}

ssize_t vmic_file_read_small(const char *path, char *buf, size_t n,
			     uint64_t max_size)
{
	size_t got = 0;
	int fd;

	if (n == 0)
		return -EINVAL;
	fd = vmic_file_open(path, O_RDONLY, 0, max_size);
	if (fd < 0)
		return fd;
	while (got + 1 < n) {
		ssize_t r = read(fd, buf + got, n - 1 - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = -errno;

			close(fd);
			return e;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

int vmic_file_create_new(const char *path, mode_t mode)
{
	int fd;

	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | SAFE_FLAGS, mode);
	return fd < 0 ? -errno : fd;
}

const char *vmic_file_strerror(int err)
{
	switch (-err) {
	case ELOOP:
		return "it is a symbolic link, which is not followed";
	case VMIC_ENOTREG:
		return "it is not a regular file (a FIFO, socket, device or "
		       "directory)";
	case EFBIG:
		return "it is larger than such a file may be";
	default:
		return strerror(-err);
	}
}
