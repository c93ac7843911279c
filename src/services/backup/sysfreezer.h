/* SPDX-License-Identifier: MIT */
/*
 * The real freezer (sysfreezer.c): FIFREEZE/FITHAW ioctls, syncfs, and
 * hook processes from the hooks directory, for engine.c. Blocking: thread
 * pool only.
 */
#ifndef VMIC_SERVICES_BACKUP_SYSFREEZER_H
#define VMIC_SERVICES_BACKUP_SYSFREEZER_H

#include <stddef.h>

#include "services/backup/freezer.h"

struct bk_sys {
	char hooks_dir[VMIC_BK_PATH_MAX + 1];
	unsigned hook_timeout_ms;
};

extern const struct bk_freezer_ops bk_sys_ops; /* ud: struct bk_sys */

/*
 * The hooks in dir: executable regular files whose names do not start
 * with '.' or end with '~', in name order (strcmp). A missing directory
 * has none. 0, or -errno / -E2BIG with a sentence in err.
 */
int bk_hooks_list(const char *dir, struct bk_hooks *out, char *err,
		  size_t n);

#endif
