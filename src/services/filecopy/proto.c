/* SPDX-License-Identifier: MIT */
/* The File Copy service's message table and codecs (filecopy.h). */
#include "services/filecopy/filecopy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/macro.h"
#include "common/wire.h"
#include "proto/services.h"

static const struct vmic_msg_desc messages[] = {
	{ VMIC_FC_PUT, VMIC_DIR_H2G, "filecopy put", VMIC_FC_PUT_MIN_LEN,
	  VMIC_FC_PUT_MAX_LEN },
	{ VMIC_FC_COMMIT, VMIC_DIR_H2G, "filecopy commit",
	  VMIC_FC_COMMIT_LEN, VMIC_FC_COMMIT_LEN },
	{ VMIC_FC_GET, VMIC_DIR_H2G, "filecopy get", VMIC_FC_GET_MIN_LEN,
	  VMIC_FC_GET_MAX_LEN },
	{ VMIC_FC_REPLY, VMIC_DIR_G2H, "filecopy reply", VMIC_FC_REPLY_LEN,
	  VMIC_FC_REPLY_LEN },
	{ VMIC_FC_MKDIR, VMIC_DIR_H2G, "filecopy mkdir", VMIC_FC_MKDIR_MIN_LEN,
	  VMIC_FC_MKDIR_MAX_LEN },
	{ VMIC_FC_SYMLINK, VMIC_DIR_H2G, "filecopy symlink",
	  VMIC_FC_SYMLINK_MIN_LEN, VMIC_FC_SYMLINK_MAX_LEN },
	{ VMIC_FC_LIST, VMIC_DIR_H2G, "filecopy list", VMIC_FC_GET_MIN_LEN,
	  VMIC_FC_GET_MAX_LEN },
};

/* Off by default on both sides: a copy writes and reads guest files as
 * root, so the guest's owner switches it on and says where. */
const struct vmic_service_desc vmic_filecopy_service = {
	.id = VMIC_SVC_FILECOPY,
	.name = "filecopy",
	.display = "File Copy",
	.min_version = 1,
	.max_version = 1,
	.default_on = false,
	.messages = messages,
	.nmessages = ARRAY_SIZE(messages),
};

/* An absolute path without NUL (the reader checked UTF-8). */
static bool path_ok(const char *s)
{
	return s[0] == '/';
}

/* A single component, or empty. */
static bool name_ok(const char *s)
{
	return !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

int vmic_fc_put_encode(const struct vmic_fc_put *m, uint8_t *buf, size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u8(&w, m->flags);
	vmic_wr_u32(&w, m->stream_id);
	vmic_wr_u32(&w, m->mode);
	vmic_wr_i64(&w, m->mtime_ns);
	vmic_wr_u64(&w, m->size);
	vmic_wr_u32(&w, m->uid);
	vmic_wr_u32(&w, m->gid);
	vmic_wr_str(&w, m->path, VMIC_FC_PATH_MAX);
	vmic_wr_str(&w, m->name, VMIC_FC_NAME_MAX);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_fc_put_decode(const uint8_t *p, size_t n, struct vmic_fc_put *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->flags = vmic_rd_u8(&r);
	m->stream_id = vmic_rd_u32(&r);
	m->mode = vmic_rd_u32(&r);
	m->mtime_ns = vmic_rd_i64(&r);
	m->size = vmic_rd_u64(&r);
	m->uid = vmic_rd_u32(&r);
	m->gid = vmic_rd_u32(&r);
	vmic_rd_strcpy(&r, VMIC_FC_PATH_MAX, m->path, sizeof(m->path));
	vmic_rd_strcpy(&r, VMIC_FC_NAME_MAX, m->name, sizeof(m->name));
	if (r.err || vmic_rd_left(&r) || (m->flags & ~VMIC_FC_F_KNOWN) ||
	    !m->stream_id || (m->mode & ~VMIC_FC_MODE_MASK) ||
	    !path_ok(m->path) || !name_ok(m->name))
		return -EBADMSG;
	return 0;
}

int vmic_fc_commit_encode(const struct vmic_fc_commit *m, uint8_t *buf,
			  size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u32(&w, m->stream_id);
	vmic_wr_u64(&w, m->bytes);
	vmic_wr_bytes(&w, m->hash, VMIC_FC_HASH_LEN);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_fc_commit_decode(const uint8_t *p, size_t n,
			  struct vmic_fc_commit *m)
{
	struct vmic_rd r;

	if (n != VMIC_FC_COMMIT_LEN)
		return -EBADMSG;
	vmic_rd_init(&r, p, n);
	m->stream_id = vmic_rd_u32(&r);
	m->bytes = vmic_rd_u64(&r);
	memcpy(m->hash, p + 12, VMIC_FC_HASH_LEN);
	return r.err || !m->stream_id ? -EBADMSG : 0;
}

int vmic_fc_get_encode(const struct vmic_fc_get *m, uint8_t *buf, size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u32(&w, m->stream_id);
	vmic_wr_str(&w, m->path, VMIC_FC_PATH_MAX);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_fc_get_decode(const uint8_t *p, size_t n, struct vmic_fc_get *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->stream_id = vmic_rd_u32(&r);
	vmic_rd_strcpy(&r, VMIC_FC_PATH_MAX, m->path, sizeof(m->path));
	if (r.err || vmic_rd_left(&r) || !m->stream_id || !path_ok(m->path))
		return -EBADMSG;
	return 0;
}

/* An ACCEPTED that carries the file's owner where DONE has its hash. */
static bool owner_in_hash(const struct vmic_fc_reply *m)
{
	return m->stage == VMIC_FC_ACCEPTED && (m->flags & VMIC_FC_F_OWNER);
}

int vmic_fc_reply_encode(const struct vmic_fc_reply *m, uint8_t *buf,
			 size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u8(&w, m->stage);
	vmic_wr_u8(&w, m->flags);
	vmic_wr_u64(&w, m->size);
	vmic_wr_u32(&w, m->mode);
	vmic_wr_i64(&w, m->mtime_ns);
	if (owner_in_hash(m)) {
		static const uint8_t zero[VMIC_FC_HASH_LEN - 8];

		vmic_wr_u32(&w, m->uid);
		vmic_wr_u32(&w, m->gid);
		vmic_wr_bytes(&w, zero, sizeof(zero));
	} else {
		vmic_wr_bytes(&w, m->hash, VMIC_FC_HASH_LEN);
	}
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_fc_reply_decode(const uint8_t *p, size_t n, struct vmic_fc_reply *m)
{
	struct vmic_rd r;

	if (n != VMIC_FC_REPLY_LEN)
		return -EBADMSG;
	vmic_rd_init(&r, p, n);
	m->stage = vmic_rd_u8(&r);
	m->flags = vmic_rd_u8(&r);
	m->size = vmic_rd_u64(&r);
	m->mode = vmic_rd_u32(&r);
	m->mtime_ns = vmic_rd_i64(&r);
	m->uid = m->gid = 0;
	if (owner_in_hash(m)) {
		m->uid = vmic_rd_u32(&r);
		m->gid = vmic_rd_u32(&r);
		memset(m->hash, 0, VMIC_FC_HASH_LEN);
		/* The rest of the field is zero: one reply, one encoding. */
		for (size_t i = n - (VMIC_FC_HASH_LEN - 8); i < n; i++)
			if (p[i])
				return -EBADMSG;
	} else {
		memcpy(m->hash, p + n - VMIC_FC_HASH_LEN, VMIC_FC_HASH_LEN);
	}
	if (r.err || m->stage > VMIC_FC_DONE ||
	    (m->flags & ~(VMIC_FC_F_SPARSE | VMIC_FC_F_EXISTS |
			  VMIC_FC_F_OWNER)) ||
	    ((m->flags & VMIC_FC_F_OWNER) && m->stage != VMIC_FC_ACCEPTED) ||
	    (m->mode & ~VMIC_FC_MODE_MASK))
		return -EBADMSG;
	return 0;
}

int vmic_fc_mkdir_encode(const struct vmic_fc_mkdir *m, uint8_t *buf,
			 size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u8(&w, m->flags);
	vmic_wr_u32(&w, m->mode);
	vmic_wr_i64(&w, m->mtime_ns);
	vmic_wr_u32(&w, m->uid);
	vmic_wr_u32(&w, m->gid);
	vmic_wr_str(&w, m->path, VMIC_FC_PATH_MAX);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_fc_mkdir_decode(const uint8_t *p, size_t n, struct vmic_fc_mkdir *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->flags = vmic_rd_u8(&r);
	m->mode = vmic_rd_u32(&r);
	m->mtime_ns = vmic_rd_i64(&r);
	m->uid = vmic_rd_u32(&r);
	m->gid = vmic_rd_u32(&r);
	vmic_rd_strcpy(&r, VMIC_FC_PATH_MAX, m->path, sizeof(m->path));
	if (r.err || vmic_rd_left(&r) ||
	    (m->flags & ~(VMIC_FC_F_PARENTS | VMIC_FC_F_EXISTS |
			  VMIC_FC_F_OWNER)) ||
	    (m->mode & ~VMIC_FC_MODE_MASK) || !path_ok(m->path))
		return -EBADMSG;
	return 0;
}

int vmic_fc_symlink_encode(const struct vmic_fc_symlink *m, uint8_t *buf,
			   size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u8(&w, m->flags);
	vmic_wr_i64(&w, m->mtime_ns);
	vmic_wr_u32(&w, m->uid);
	vmic_wr_u32(&w, m->gid);
	vmic_wr_str(&w, m->path, VMIC_FC_PATH_MAX);
	vmic_wr_str(&w, m->target, VMIC_FC_PATH_MAX);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_fc_symlink_decode(const uint8_t *p, size_t n,
			   struct vmic_fc_symlink *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->flags = vmic_rd_u8(&r);
	m->mtime_ns = vmic_rd_i64(&r);
	m->uid = vmic_rd_u32(&r);
	m->gid = vmic_rd_u32(&r);
	vmic_rd_strcpy(&r, VMIC_FC_PATH_MAX, m->path, sizeof(m->path));
	vmic_rd_strcpy(&r, VMIC_FC_PATH_MAX, m->target, sizeof(m->target));
	if (r.err || vmic_rd_left(&r) ||
	    (m->flags & ~(VMIC_FC_F_FORCE | VMIC_FC_F_OWNER)) ||
	    !path_ok(m->path) || !m->target[0])
		return -EBADMSG;
	return 0;
}

void vmic_fc_hash_hex(const uint8_t hash[VMIC_FC_HASH_LEN], char out[33])
{
	for (size_t i = 0; i < VMIC_FC_HASH_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", hash[i]);
}
