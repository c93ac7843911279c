/* SPDX-License-Identifier: MIT */
/* The backup service's seeds for fuzz-messages (tests/fuzz/corpus.h). */
#include <stdio.h>
#include <stdlib.h>

#include "corpus.h"

#include "services/backup/backup.h"

static void seed(const char *name, uint8_t type, const uint8_t *p, int n)
{
	if (n < 0)
		abort();
	save_message(name, VMIC_SVC_BACKUP, type, p, (size_t)n);
}

void gen_corpus_backup(void)
{
	static struct vmic_bk_frozen fz = { .timeout_ms = 60000, .hooks_ms = 12,
					    .sync_ms = 3, .freeze_ms = 1 };
	static struct vmic_bk_thawed th = { .reason = VMIC_BK_WHY_TIMEOUT,
					    .frozen_ms = 60001, .thaw_ms = 1 };
	static uint8_t p[VMIC_BK_THAWED_MAX_LEN];
	struct vmic_bk_freeze fr = { .timeout_ms = 30000 };

	seed("bk-freeze", VMIC_BK_FREEZE, p,
	     vmic_bk_freeze_encode(&fr, p, sizeof(p)));
	fz.mounts.count = 3;
	snprintf(fz.mounts.path[0], sizeof(fz.mounts.path[0]), "/srv/db");
	snprintf(fz.mounts.path[1], sizeof(fz.mounts.path[1]),
		 "/mnt/caf\xC3\xA9 data");
	snprintf(fz.mounts.path[2], sizeof(fz.mounts.path[2]), "/");
	snprintf(fz.output, sizeof(fz.output),
		 "hook 10-db freeze: flushed tables");
	seed("bk-frozen", VMIC_BK_FROZEN, p,
	     vmic_bk_frozen_encode(&fz, p, sizeof(p)));
	seed("bk-thaw", VMIC_BK_THAW, p, vmic_bk_thaw_encode(0, p, sizeof(p)));
	th.mounts = fz.mounts;
	snprintf(th.detail, sizeof(th.detail),
		 "hook 10-db thaw: exit status 1");
	seed("bk-thawed", VMIC_BK_THAWED, p,
	     vmic_bk_thawed_encode(&th, p, sizeof(p)));
}
