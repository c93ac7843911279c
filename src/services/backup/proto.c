/* SPDX-License-Identifier: MIT */
/* The backup service's message table and codecs (backup.h): pure. */
#include "services/backup/backup.h"

#include <errno.h>
#include <string.h>

#include "common/macro.h"
#include "common/wire.h"
#include "proto/services.h"

static const struct vmic_msg_desc messages[] = {
	{ VMIC_BK_FREEZE, VMIC_DIR_H2G, "backup freeze", VMIC_BK_FREEZE_LEN,
	  VMIC_BK_FREEZE_LEN },
	{ VMIC_BK_FROZEN, VMIC_DIR_G2H, "backup frozen",
	  VMIC_BK_FROZEN_MIN_LEN, VMIC_BK_FROZEN_MAX_LEN },
	{ VMIC_BK_THAW, VMIC_DIR_H2G, "backup thaw", VMIC_BK_THAW_LEN,
	  VMIC_BK_THAW_LEN },
	{ VMIC_BK_THAWED, VMIC_DIR_G2H, "backup thawed",
	  VMIC_BK_THAWED_MIN_LEN, VMIC_BK_THAWED_MAX_LEN },
};

const struct vmic_service_desc vmic_backup_service = {
	.id = VMIC_SVC_BACKUP,
	.name = "backup",
	.display = "Backup (fsfreeze)",
	.min_version = 1,
	.max_version = 1,
	.default_on = true,
	.messages = messages,
	.nmessages = ARRAY_SIZE(messages),
};

int vmic_bk_freeze_encode(const struct vmic_bk_freeze *m, uint8_t *buf,
			  size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u32(&w, m->timeout_ms);
	vmic_wr_u8(&w, m->flags);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_bk_freeze_decode(const uint8_t *p, size_t n,
			  struct vmic_bk_freeze *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->timeout_ms = vmic_rd_u32(&r);
	m->flags = vmic_rd_u8(&r);
	return r.err || vmic_rd_left(&r) || m->flags ? -EBADMSG : 0;
}

static void write_mounts(struct vmic_wr *w, const struct vmic_bk_mounts *m)
{
	if (m->count > VMIC_BK_MOUNTS_MAX) {
		w->err = true;
		return;
	}
	vmic_wr_u16(w, m->count);
	for (unsigned i = 0; i < m->count; i++)
		vmic_wr_str(w, m->path[i], VMIC_BK_PATH_MAX);
}

/* A mount point is never empty: that would say nothing to the host. */
static void read_mounts(struct vmic_rd *r, struct vmic_bk_mounts *m)
{
	m->count = vmic_rd_u16(r);
	if (m->count > VMIC_BK_MOUNTS_MAX) {
		r->err = true;
		m->count = 0;
		return;
	}
	for (unsigned i = 0; i < m->count && !r->err; i++) {
		vmic_rd_strcpy(r, VMIC_BK_PATH_MAX, m->path[i],
			       sizeof(m->path[i]));
		if (!r->err && !m->path[i][0])
			r->err = true;
	}
}

int vmic_bk_frozen_encode(const struct vmic_bk_frozen *m, uint8_t *buf,
			  size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u32(&w, m->timeout_ms);
	vmic_wr_u32(&w, m->hooks_ms);
	vmic_wr_u32(&w, m->sync_ms);
	vmic_wr_u32(&w, m->freeze_ms);
	write_mounts(&w, &m->mounts);
	vmic_wr_str(&w, m->output, VMIC_BK_OUTPUT_MAX);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_bk_frozen_decode(const uint8_t *p, size_t n,
			  struct vmic_bk_frozen *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->timeout_ms = vmic_rd_u32(&r);
	m->hooks_ms = vmic_rd_u32(&r);
	m->sync_ms = vmic_rd_u32(&r);
	m->freeze_ms = vmic_rd_u32(&r);
	read_mounts(&r, &m->mounts);
	vmic_rd_strcpy(&r, VMIC_BK_OUTPUT_MAX, m->output, sizeof(m->output));
	return r.err || vmic_rd_left(&r) ? -EBADMSG : 0;
}

int vmic_bk_thaw_encode(uint8_t flags, uint8_t *buf, size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u8(&w, flags);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_bk_thaw_decode(const uint8_t *p, size_t n, uint8_t *flags)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	*flags = vmic_rd_u8(&r);
	return r.err || vmic_rd_left(&r) || *flags ? -EBADMSG : 0;
}

int vmic_bk_thawed_encode(const struct vmic_bk_thawed *m, uint8_t *buf,
			  size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u8(&w, m->reason);
	vmic_wr_u32(&w, m->frozen_ms);
	vmic_wr_u32(&w, m->thaw_ms);
	vmic_wr_u32(&w, m->hooks_ms);
	write_mounts(&w, &m->mounts);
	vmic_wr_str(&w, m->detail, VMIC_BK_OUTPUT_MAX);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_bk_thawed_decode(const uint8_t *p, size_t n,
			  struct vmic_bk_thawed *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->reason = vmic_rd_u8(&r);
	m->frozen_ms = vmic_rd_u32(&r);
	m->thaw_ms = vmic_rd_u32(&r);
	m->hooks_ms = vmic_rd_u32(&r);
	read_mounts(&r, &m->mounts);
	vmic_rd_strcpy(&r, VMIC_BK_OUTPUT_MAX, m->detail, sizeof(m->detail));
	if (r.err || vmic_rd_left(&r) || !vmic_bk_why_name(m->reason))
		return -EBADMSG;
	return 0;
}

const char *vmic_bk_why_name(uint8_t why)
{
	static const char *const names[VMIC_BK_WHY_COUNT] = {
		"host", "timeout", "session-end", "agent-stop",
	};

	return why < VMIC_BK_WHY_COUNT ? names[why] : NULL;
}
