/* SPDX-License-Identifier: MIT */
/*
 * The guest's freeze and thaw sequences (engine.c) behind an interface of
 * primitive steps (struct bk_freezer_ops), so the ordering and failure
 * rules are tested with a fake (tests/services/backup/test-engine.c) and
 * run for real with sysfreezer.c (FIFREEZE, syncfs, hook processes).
 *
 * The sequences block: they run on libuv's thread pool (guest.c), never
 * on the agent's loop, and touch only the job they are handed.
 */
#ifndef VMIC_SERVICES_BACKUP_FREEZER_H
#define VMIC_SERVICES_BACKUP_FREEZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "services/backup/backup.h"

#define BK_HOOKS_MAX 32
#define BK_HOOK_NAME_MAX 255

/* Hook scripts, in the order `freeze` runs them (by name). */
struct bk_hooks {
	unsigned count;
	char name[BK_HOOKS_MAX][BK_HOOK_NAME_MAX + 1];
};

/* The primitive steps; every one returns 0 or -errno. */
struct bk_freezer_ops {
	/* Run hook `name` with its one argument ("freeze", "thaw",
	 * "freeze-fail"); its output (or why it failed) into out. */
	int (*hook)(void *ud, const char *name, const char *arg, char *out,
		    size_t n);
	/* Flush the filesystems about to be frozen. */
	int (*sync)(void *ud, const struct vmic_bk_mounts *m);
	/* FIFREEZE / FITHAW one mount point. The engine reads -EBUSY on
	 * freeze and -EINVAL on thaw as done already (the same filesystem
	 * mounted twice). */
	int (*freeze)(void *ud, const char *path);
	int (*thaw)(void *ud, const char *path);
	/* Monotonic microseconds, for the steps' durations. */
	uint64_t (*now_us)(void *ud);
};

/* What a freeze did. */
struct bk_freeze_result {
	int err;                      /* 0: everything in `frozen` is */
	struct vmic_bk_mounts frozen; /* in the order frozen */
	uint32_t hooks_ms, sync_ms, freeze_ms;
	uint64_t first_freeze_us;     /* now_us of the first FIFREEZE */
	uint64_t last_thaw_us;        /* a failed freeze's last FITHAW */
	char output[VMIC_BK_OUTPUT_MAX + 1]; /* hooks' output, errors */
};

/* What a thaw did. */
struct bk_thaw_result {
	int err; /* the first failure; the other steps ran anyway */
	uint32_t thaw_ms, hooks_ms;
	uint64_t last_thaw_us;
	char output[VMIC_BK_OUTPUT_MAX + 1];
};

/*
 * Freeze: the hooks with `freeze` in order, then sync, then FIFREEZE each
 * mount in order (the caller puts `/` last). On a failure, the mounts
 * frozen so far are thawed in reverse, the hooks that ran get
 * `freeze-fail` in reverse, and res->err says what failed (the output
 * names the step). res->frozen then lists nothing.
 */
void bk_engine_freeze(const struct bk_freezer_ops *ops, void *ud,
		      const struct bk_hooks *hooks,
		      const struct vmic_bk_mounts *mounts,
		      struct bk_freeze_result *res);

/*
 * Thaw what a freeze froze: FITHAW in reverse order, then the hooks with
 * `thaw` in reverse order. A step that fails does not stop the others:
 * nothing stays frozen because a hook failed.
 */
void bk_engine_thaw(const struct bk_freezer_ops *ops, void *ud,
		    const struct bk_hooks *hooks,
		    const struct vmic_bk_mounts *frozen,
		    struct bk_thaw_result *res);

/* Append a formatted line to a bounded output text (cut when full). */
void bk_output_add(char *out, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
