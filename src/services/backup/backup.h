/* SPDX-License-Identifier: MIT */
/*
 * Backup service messages (service 5, version 1): freeze and thaw the
 * guest's filesystems around a host snapshot (docs/protocol.md).
 *
 * FREEZE host -> guest: u32 timeout_ms (auto-thaw after this long; 0:
 *   the guest's default; more than the guest's cap is cut to the cap),
 *   u8 flags (none defined, 0).
 * FROZEN guest -> host, the reply: u32 timeout_ms granted, u32 hooks_ms,
 *   u32 sync_ms, u32 freeze_ms (the steps' durations), u16 count, then
 *   count mount points (str, <= VMIC_BK_PATH_MAX) in the order frozen,
 *   str output (the hooks' captured output, <= VMIC_BK_OUTPUT_MAX).
 *   A freeze that fails is an error frame (VMIC_E_FAILED, the guest
 *   thawed what it froze); a freeze while frozen is VMIC_E_BUSY.
 * THAW host -> guest: u8 flags (none defined, 0).
 * THAWED guest -> host: the reply to THAW, and an unasked report (its
 *   own request id, no reply flag) when the guest thawed by itself:
 *   u8 reason (VMIC_BK_WHY_*), u32 frozen_ms (first FIFREEZE to last
 *   FITHAW), u32 thaw_ms, u32 hooks_ms, u16 count, count mount points,
 *   str detail (errors and hook output, <= VMIC_BK_OUTPUT_MAX). A thaw
 *   while nothing is frozen answers THAWED with count 0.
 */
#ifndef VMIC_SERVICES_BACKUP_H
#define VMIC_SERVICES_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

enum vmic_backup_type {
	VMIC_BK_FREEZE = 1,
	VMIC_BK_FROZEN = 2,
	VMIC_BK_THAW = 3,
	VMIC_BK_THAWED = 4,
};

/* Why the guest thawed. */
enum vmic_bk_why {
	VMIC_BK_WHY_HOST = 0,        /* the host asked (THAW) */
	VMIC_BK_WHY_TIMEOUT = 1,     /* the auto-thaw timer fired */
	VMIC_BK_WHY_SESSION = 2,     /* the host's session ended */
	VMIC_BK_WHY_AGENT_STOP = 3,  /* the agent was asked to exit */
	VMIC_BK_WHY_COUNT
};

#define VMIC_BK_MOUNTS_MAX 64
#define VMIC_BK_PATH_MAX 1024
#define VMIC_BK_OUTPUT_MAX 4096

#define VMIC_BK_FREEZE_LEN (4 + 1)
#define VMIC_BK_FROZEN_MIN_LEN (4 * 4 + 2 + 2)
#define VMIC_BK_LIST_MAX (VMIC_BK_MOUNTS_MAX * (2 + VMIC_BK_PATH_MAX))
#define VMIC_BK_FROZEN_MAX_LEN \
	(4 * 4 + 2 + VMIC_BK_LIST_MAX + 2 + VMIC_BK_OUTPUT_MAX)
#define VMIC_BK_THAW_LEN 1
#define VMIC_BK_THAWED_MIN_LEN (1 + 3 * 4 + 2 + 2)
#define VMIC_BK_THAWED_MAX_LEN \
	(1 + 3 * 4 + 2 + VMIC_BK_LIST_MAX + 2 + VMIC_BK_OUTPUT_MAX)

/* Mount points, in order. */
struct vmic_bk_mounts {
	uint16_t count;
	char path[VMIC_BK_MOUNTS_MAX][VMIC_BK_PATH_MAX + 1];
};

struct vmic_bk_freeze {
	uint32_t timeout_ms;
	uint8_t flags;
};

struct vmic_bk_frozen {
	uint32_t timeout_ms, hooks_ms, sync_ms, freeze_ms;
	struct vmic_bk_mounts mounts;
	char output[VMIC_BK_OUTPUT_MAX + 1];
};

struct vmic_bk_thawed {
	uint8_t reason;
	uint32_t frozen_ms, thaw_ms, hooks_ms;
	struct vmic_bk_mounts mounts;
	char detail[VMIC_BK_OUTPUT_MAX + 1];
};

/* Encoders: the payload's length, or -EMSGSIZE when cap is too small.
 * Decoders: 0, or -EBADMSG when short, long, not UTF-8, an unknown flag
 * or reason, too many mounts or an empty mount point. */
int vmic_bk_freeze_encode(const struct vmic_bk_freeze *m, uint8_t *buf,
			  size_t cap);
int vmic_bk_freeze_decode(const uint8_t *p, size_t n,
			  struct vmic_bk_freeze *m);
int vmic_bk_frozen_encode(const struct vmic_bk_frozen *m, uint8_t *buf,
			  size_t cap);
int vmic_bk_frozen_decode(const uint8_t *p, size_t n,
			  struct vmic_bk_frozen *m);
int vmic_bk_thaw_encode(uint8_t flags, uint8_t *buf, size_t cap);
int vmic_bk_thaw_decode(const uint8_t *p, size_t n, uint8_t *flags);
int vmic_bk_thawed_encode(const struct vmic_bk_thawed *m, uint8_t *buf,
			  size_t cap);
int vmic_bk_thawed_decode(const uint8_t *p, size_t n,
			  struct vmic_bk_thawed *m);
/* "host", "timeout", "session-end", "agent-stop"; NULL when unknown. */
const char *vmic_bk_why_name(uint8_t why);

#endif
