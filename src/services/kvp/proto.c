/* SPDX-License-Identifier: MIT */
/* The KVP service's descriptor, message table and codecs (pure). */
#include "services/kvp/kvp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/macro.h"
#include "common/utf8.h"
#include "proto/services.h"

static const struct vmic_msg_desc messages[] = {
	{ VMIC_KVP_SET, VMIC_DIR_BOTH, "kvp set", VMIC_KVP_BATCH_HDR,
	  VMIC_KVP_BATCH_MAX },
	{ VMIC_KVP_DELETE, VMIC_DIR_BOTH, "kvp delete", VMIC_KVP_BATCH_HDR,
	  VMIC_KVP_BATCH_MAX },
	{ VMIC_KVP_IDENTITY, VMIC_DIR_H2G, "kvp identity",
	  VMIC_KVP_IDENTITY_MIN_LEN, VMIC_KVP_IDENTITY_MAX_LEN },
	{ VMIC_KVP_ACK, VMIC_DIR_BOTH, "kvp ack", VMIC_KVP_ACK_MIN_LEN,
	  VMIC_KVP_ACK_MAX_LEN },
};

const struct vmic_service_desc vmic_kvp_service = {
	.id = VMIC_SVC_KVP,
	.name = "kvp",
	.display = "Key-Value Pair Exchange",
	.min_version = 1,
	.max_version = 1,
	.default_on = true,
	.messages = messages,
	.nmessages = ARRAY_SIZE(messages),
};

static const char *const pool_names[VMIC_KVP_POOLS] = {
	"external", "guest", "auto", "auto-external", "auto-internal",
};
static const char *const pool_display[VMIC_KVP_POOLS] = {
	"External", "Guest", "Auto", "AutoExternal", "AutoInternal",
};

const char *vmic_kvp_pool_name(unsigned pool)
{
	return pool < VMIC_KVP_POOLS ? pool_names[pool] : "unknown";
}

const char *vmic_kvp_pool_display(unsigned pool)
{
	return pool < VMIC_KVP_POOLS ? pool_display[pool] : "Unknown";
}

int vmic_kvp_pool_parse(const char *s)
{
	if (s[0] >= '0' && s[0] < '0' + VMIC_KVP_POOLS && s[1] == '\0')
		return s[0] - '0';
	for (int i = 0; i < VMIC_KVP_POOLS; i++)
		if (strcasecmp(s, pool_names[i]) == 0 ||
		    strcasecmp(s, pool_display[i]) == 0)
			return i;
	return -EINVAL;
}

bool vmic_kvp_pool_from_host(unsigned pool)
{
	return pool == VMIC_KVP_EXTERNAL || pool == VMIC_KVP_AUTO_EXTERNAL;
}

bool vmic_kvp_pool_exchanged(unsigned pool)
{
	return pool < VMIC_KVP_AUTO_INTERNAL;
}

/* The key's or the value's problem as a sentence in why, or NULL. */
static const char *check_part(const char *what, const char *s, size_t n,
			      size_t max, char *why, size_t whysz)
{
	if (n > max)
		snprintf(why, whysz,
			 "the %s is %zu bytes; a KVP %s holds at most %zu "
			 "bytes of UTF-8",
			 what, n, what, max);
	else if (memchr(s, '\0', n) || !vmic_utf8_valid(s, n))
		snprintf(why, whysz,
			 "the %s is not valid UTF-8 (or holds a NUL byte)",
			 what);
	else
		return NULL;
	return why;
}

const char *vmic_kvp_check(const char *key, size_t klen, const char *value,
			   size_t vlen)
{
	static char why[160];
	const char *bad;

	if (klen == 0)
		return "the key is empty";
	bad = check_part("key", key, klen, VMIC_KVP_KEY_MAX, why, sizeof(why));
	if (bad || !value)
		return bad;
	return check_part("value", value, vlen, VMIC_KVP_VALUE_MAX, why,
			  sizeof(why));
}

/* Read one record of a batch of `type`; false (and r->err) when bad. */
static bool read_item(struct vmic_rd *r, uint8_t type,
		      struct vmic_kvp_item *it)
{
	vmic_rd_str(r, VMIC_KVP_KEY_MAX, &it->key, &it->klen);
	it->value = NULL;
	it->vlen = 0;
	if (type == VMIC_KVP_SET)
		vmic_rd_str(r, VMIC_KVP_VALUE_MAX, &it->value, &it->vlen);
	if (!r->err && it->klen == 0)
		r->err = true;
	return !r->err;
}

int vmic_kvp_batch_decode(uint8_t type, const uint8_t *p, size_t n,
			  struct vmic_kvp_batch *b)
{
	struct vmic_kvp_item it;
	struct vmic_rd r;

	if (type != VMIC_KVP_SET && type != VMIC_KVP_DELETE)
		return -EBADMSG;
	vmic_rd_init(&r, p, n);
	b->type = type;
	b->pool = vmic_rd_u8(&r);
	b->flags = vmic_rd_u8(&r);
	b->count = vmic_rd_u16(&r);
	if (r.err || b->pool >= VMIC_KVP_POOLS ||
	    (type == VMIC_KVP_SET &&
	     (b->flags & ~(VMIC_KVP_F_BEGIN | VMIC_KVP_F_END))) ||
	    (type == VMIC_KVP_DELETE && b->flags))
		return -EBADMSG;
	b->records = p + r.off;
	b->len = n - r.off;
	for (unsigned i = 0; i < b->count; i++)
		if (!read_item(&r, type, &it))
			return -EBADMSG;
	return vmic_rd_left(&r) == 0 ? 0 : -EBADMSG;
}

void vmic_kvp_items_init(const struct vmic_kvp_batch *b, struct vmic_rd *r)
{
	vmic_rd_init(r, b->records, b->len);
}

bool vmic_kvp_items_next(const struct vmic_kvp_batch *b, struct vmic_rd *r,
			 struct vmic_kvp_item *it)
{
	if (vmic_rd_left(r) == 0)
		return false;
	return read_item(r, b->type, it);
}

void vmic_kvp_build_begin(struct vmic_kvp_builder *bd, uint8_t *buf,
			  size_t cap, uint8_t type, uint8_t pool,
			  uint8_t flags)
{
	vmic_wr_init(&bd->w, buf, MIN(cap, (size_t)VMIC_KVP_BATCH_MAX));
	bd->type = type;
	bd->count = 0;
	vmic_wr_u8(&bd->w, pool);
	vmic_wr_u8(&bd->w, flags);
	vmic_wr_u16(&bd->w, 0);
}

int vmic_kvp_build_add(struct vmic_kvp_builder *bd, const char *key,
		       size_t klen, const char *value, size_t vlen)
{
	size_t need = 2 + klen + (bd->type == VMIC_KVP_SET ? 2 + vlen : 0);

	if (klen > VMIC_KVP_KEY_MAX || vlen > VMIC_KVP_VALUE_MAX)
		return -EINVAL;
	if (bd->w.err || bd->count == UINT16_MAX ||
	    bd->w.cap - bd->w.off < need)
		return -ENOSPC;
	vmic_wr_strn(&bd->w, key, klen, VMIC_KVP_KEY_MAX);
	if (bd->type == VMIC_KVP_SET)
		vmic_wr_strn(&bd->w, value ? value : "", vlen,
			     VMIC_KVP_VALUE_MAX);
	bd->count++;
	return 0;
}

void vmic_kvp_build_flags(struct vmic_kvp_builder *bd, uint8_t flags)
{
	if (bd->w.cap >= 2)
		bd->w.p[1] = flags;
}

size_t vmic_kvp_build_end(struct vmic_kvp_builder *bd)
{
	if (bd->w.err || bd->w.cap < VMIC_KVP_BATCH_HDR)
		return 0;
	vmic_put_le16(bd->w.p + 2, bd->count);
	return bd->w.off;
}

int vmic_kvp_identity_encode(const char *vm_id, uint8_t *buf, size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_str(&w, vm_id, VMIC_KVP_ID_MAX);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_kvp_identity_decode(const uint8_t *p, size_t n, char *out)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	vmic_rd_strcpy(&r, VMIC_KVP_ID_MAX, out, VMIC_KVP_ID_MAX + 1);
	return r.err ? -EBADMSG : 0;
}

int vmic_kvp_ack_encode(const struct vmic_kvp_ack *m, uint8_t *buf,
			size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u8(&w, m->status);
	vmic_wr_u16(&w, m->refused);
	vmic_wr_str(&w, m->note, VMIC_KVP_NOTE_MAX);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_kvp_ack_decode(const uint8_t *p, size_t n, struct vmic_kvp_ack *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->status = vmic_rd_u8(&r);
	m->refused = vmic_rd_u16(&r);
	vmic_rd_strcpy(&r, VMIC_KVP_NOTE_MAX, m->note, sizeof(m->note));
	if (r.err || m->status > VMIC_KVP_CAP)
		return -EBADMSG;
	return 0;
}
