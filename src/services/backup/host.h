/* SPDX-License-Identifier: MIT */
/*
 * Backup, host half: shared by host.c (the service, `freeze`, `thaw`,
 * status) and host-backup.c (the `backup` operation).
 */
#ifndef VMIC_SERVICES_BACKUP_HOST_H
#define VMIC_SERVICES_BACKUP_HOST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "host/service-api.h"
#include "services/backup/backup.h"

#define BK_ID VMIC_SVC_BACKUP
/* How long the host waits for FROZEN: the guest's hooks are bounded by
 * its hook-timeout each (references: a guest has 15 minutes). */
#define BK_FREEZE_WAIT_MS (15u * 60u * 1000u)
#define BK_THAW_WAIT_MS (5u * 60u * 1000u)

struct bk_op;

/* Per-VM settings ([backup] in hostd.conf, `vmic set VM backup`). */
struct bk_settings {
	unsigned timeout_ms; /* auto-thaw asked of the guest by default */
};

/* Per-VM state: what the host knows of the guest's freeze. */
struct bk_vm {
	struct vm *vm;
	bool frozen;
	int64_t frozen_since_us;  /* realtime, while frozen */
	uint32_t auto_thaw_ms;    /* the guest's granted timeout */
	json_t *mounts;           /* array, while frozen */
	json_t *last_thaw;        /* {time_us, reason, frozen_ms, ...} */
	json_t *last_backup;      /* the last backup's outcome */
	json_t *last_failure;     /* {time_us, message} */
	struct bk_op *op;         /* the backup running, or NULL */
};

struct bk_vm *bk_vm_of(const struct vm *vm);
const struct bk_settings *bk_settings_of(const struct vm *vm);

/* Why the guest cannot be asked now (with the ctl error code), NULL when
 * it can. */
const char *bk_unavailable(const struct vm *vm, const char **code);

/* The answer to a freeze or thaw: code NULL and m set on success; else a
 * docs/control.md code and a sentence. */
typedef void (*bk_freeze_cb)(struct vm *vm, void *ud, const char *code,
			     const char *msg, const struct vmic_bk_frozen *m);
typedef void (*bk_thaw_cb)(struct vm *vm, void *ud, const char *code,
			   const char *msg, const struct vmic_bk_thawed *m);

/* Ask the guest to freeze (auto-thaw after timeout_ms) or thaw; the
 * state and events follow its answer. 0 (cb will run) or -errno (it will
 * not). */
int bk_freeze(struct vm *vm, uint32_t timeout_ms, bk_freeze_cb cb, void *ud,
	      uint32_t *id);
int bk_thaw(struct vm *vm, bk_thaw_cb cb, void *ud, uint32_t *id);

/* Remember a failure for `status` (and an event). */
void bk_note_failure(struct vm *vm, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* The frozen mounts as one JSON array (new reference). */
json_t *bk_mounts_json(const struct vmic_bk_mounts *m);
/* A THAWED message as JSON (new reference). */
json_t *bk_thawed_json(const struct vm *vm, const struct vmic_bk_thawed *m);

/* host-backup.c: the `backup` command, and what it hears from host.c. */
void bk_cmd_backup(struct ctl_request *rq, struct vm *vm, json_t *args);
void bk_op_guest_thawed(struct vm *vm, const struct vmic_bk_thawed *m);
void bk_op_down(struct vm *vm);

#endif
