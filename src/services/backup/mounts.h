/* SPDX-License-Identifier: MIT */
/*
 * Which filesystems a freeze covers (mounts.c), from the text of
 * /proc/self/mounts; pure, so unit tests feed it any table.
 */
#ifndef VMIC_SERVICES_BACKUP_MOUNTS_H
#define VMIC_SERVICES_BACKUP_MOUNTS_H

#include <stddef.h>

#include "services/backup/backup.h"

/*
 * The mount points to freeze, `/` last. With an include list (comma-
 * separated mount points; [backup] include, --freeze-only) exactly those,
 * each of which must be a mounted, writable filesystem. Without one,
 * every local filesystem on a /dev/ device that is not a loop device,
 * read-only or vfat, less the exclude list (comma-separated). A mount
 * point mounted twice counts once (the last mount is the visible one).
 * 0, or -EINVAL / -E2BIG with a sentence in err.
 */
int bk_mounts_select(const char *table, const char *include,
		     const char *exclude, struct vmic_bk_mounts *out,
		     char *err, size_t n);

#endif
