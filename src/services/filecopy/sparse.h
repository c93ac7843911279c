/* SPDX-License-Identifier: MIT */
/*
 * Sparse files stay sparse: the stream carries a file's holes as zeros,
 * so the side that wrote a copy of a sparse source punches the zeros out
 * again before it fsyncs (the guest for a copy in, vmic for a copy out).
 * Only 4 KiB blocks that are entirely zero become holes; the size stays.
 * Static inline, so vmic-guestd and vmic each compile their own copy and
 * no name is defined in two binaries.
 */
#ifndef VMIC_SERVICES_FILECOPY_SPARSE_H
#define VMIC_SERVICES_FILECOPY_SPARSE_H

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define VMIC_FC_HOLE_BLOCK 4096u
#define VMIC_FC_HOLE_BUF (64u * 1024)

static inline bool vmic_fc_block_zero(const unsigned char *p, size_t n)
{
	return n && p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

/* Punch a run of zero blocks [start, end); 0 or -errno (-EOPNOTSUPP:
 * the file system keeps no holes, which is no failure of the copy). */
static inline int vmic_fc_punch(int fd, off_t start, off_t end)
{
	if (end <= start)
		return 0;
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, start,
		      end - start) < 0)
		return -errno;
	return 0;
}

/*
 * Turn every whole 4 KiB block of zeros in fd's first `size` bytes into a
 * hole. 0, or -errno of a read; a file system without holes is left as it
 * is (0). Reads the file once, 64 KiB at a time.
 */
static inline int vmic_fc_make_sparse(int fd, off_t size)
{
	unsigned char *buf = malloc(VMIC_FC_HOLE_BUF);
	off_t off = 0, run = -1;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	while (off + (off_t)VMIC_FC_HOLE_BLOCK <= size && r == 0) {
		size_t want = VMIC_FC_HOLE_BUF;
		ssize_t got;

		if ((off_t)want > size - off)
			want = (size_t)(size - off);
		got = pread(fd, buf, want, off);
		if (got <= 0) {
			r = got < 0 ? -errno : -EIO;
			break;
		}
		for (size_t i = 0; i + VMIC_FC_HOLE_BLOCK <= (size_t)got;
		     i += VMIC_FC_HOLE_BLOCK) {
			bool zero = vmic_fc_block_zero(buf + i,
						       VMIC_FC_HOLE_BLOCK);

			if (zero && run < 0)
				run = off + (off_t)i;
			if (!zero && run >= 0) {
				r = vmic_fc_punch(fd, run, off + (off_t)i);
				run = -1;
				if (r)
					break;
			}
		}
		off += got - got % VMIC_FC_HOLE_BLOCK;
		if (got % VMIC_FC_HOLE_BLOCK)
			break;
	}
	if (r == 0 && run >= 0)
		r = vmic_fc_punch(fd, run, off);
	free(buf);
	return r == -EOPNOTSUPP ? 0 : r;
}

#endif
