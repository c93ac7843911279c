/* SPDX-License-Identifier: MIT */
/*
 * Key-Value Pair Exchange messages (service 4, version 1).
 *
 * Pools are those of Hyper-V's KVP (references.md): 0 External (written
 * by the host, read in the guest), 1 Guest (written in the guest, read by
 * the host), 2 Auto (the guest's intrinsic facts, written by the agent),
 * 3 AutoExternal (the host's facts about the VM), 4 AutoInternal (local
 * to the guest, never exchanged). A key is 1..511 bytes and a value
 * 0..2047 bytes of UTF-8 without NUL: each fits, with its terminating
 * NUL, in the 512- and 2048-byte fields of a pool file record.
 *
 * SET  (both ways, request): u8 pool, u8 flags, u16 count,
 *      count x { str key, str value }
 *      flags bit 0 BEGIN: a full copy of the pool starts with this batch;
 *            bit 1 END:   the full copy is complete: the receiver drops
 *                         every key of the pool not sent since BEGIN.
 * DELETE (both ways, request): u8 pool, u8 flags (0), u16 count,
 *      count x { str key }
 * IDENTITY (host -> guest, request): str vm_id (<= 64), the host's id of
 *      the VM; sent first in every session of the service. A guest whose
 *      pool directory was written for another VM id clears the host's
 *      pools (0 and 3) before the copies that follow.
 * ACK  (both ways, reply to SET, DELETE, IDENTITY): u8 status, u16
 *      refused, str note (<= 256). status 1 (CAP): `refused` records of
 *      the batch were not kept because the receiver's pool is full; note
 *      says which limit.
 *
 * Each side sends the pools it writes: the host 3 then 0, the guest 1
 * and 2; whole pools after IDENTITY, changes after that. A sender keeps
 * at most VMIC_KVP_WINDOW requests unanswered and fills a batch with at
 * most VMIC_KVP_BATCH_MAX payload bytes, so a copy of 10,000 records
 * never queues more than the window on the link and a heartbeat waits
 * behind at most that much.
 */
#ifndef VMIC_SERVICES_KVP_H
#define VMIC_SERVICES_KVP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/wire.h"
#include "proto/proto.h"

enum vmic_kvp_type {
	VMIC_KVP_SET = 1,
	VMIC_KVP_DELETE = 2,
	VMIC_KVP_IDENTITY = 3,
	VMIC_KVP_ACK = 4,
};

/* Pools: the numbers of Hyper-V's pool files (.kvp_pool_N). */
enum vmic_kvp_pool {
	VMIC_KVP_EXTERNAL = 0,
	VMIC_KVP_GUEST = 1,
	VMIC_KVP_AUTO = 2,
	VMIC_KVP_AUTO_EXTERNAL = 3,
	VMIC_KVP_AUTO_INTERNAL = 4,
	VMIC_KVP_POOLS
};

/* Bytes of text; the pool file's fields are one byte larger (NUL). */
#define VMIC_KVP_KEY_MAX 511
#define VMIC_KVP_VALUE_MAX 2047
#define VMIC_KVP_FILE_KEY 512
#define VMIC_KVP_FILE_VALUE 2048
#define VMIC_KVP_RECORD (VMIC_KVP_FILE_KEY + VMIC_KVP_FILE_VALUE)

#define VMIC_KVP_F_BEGIN 0x01
#define VMIC_KVP_F_END 0x02

#define VMIC_KVP_ID_MAX 64
#define VMIC_KVP_NOTE_MAX 256

/* A batch's payload, header included: what a sender fills at most and
 * a receiver accepts (the message table's bound). */
#define VMIC_KVP_BATCH_MAX 65536u
#define VMIC_KVP_BATCH_HDR 4
/* Requests a sender keeps unanswered. */
#define VMIC_KVP_WINDOW 8

#define VMIC_KVP_IDENTITY_MIN_LEN 2
#define VMIC_KVP_IDENTITY_MAX_LEN (2 + VMIC_KVP_ID_MAX)
#define VMIC_KVP_ACK_MIN_LEN (1 + 2 + 2)
#define VMIC_KVP_ACK_MAX_LEN (1 + 2 + 2 + VMIC_KVP_NOTE_MAX)

enum vmic_kvp_status {
	VMIC_KVP_OK = 0,
	VMIC_KVP_CAP = 1,
};

/* A decoded SET or DELETE: the header, and a reader on the records. */
struct vmic_kvp_batch {
	uint8_t type; /* VMIC_KVP_SET or VMIC_KVP_DELETE */
	uint8_t pool;
	uint8_t flags;
	uint16_t count;
	const uint8_t *records; /* count encoded records */
	size_t len;
};

/* One record of a batch; the strings point into the payload (not
 * terminated). value is NULL in a DELETE. */
struct vmic_kvp_item {
	const char *key;
	size_t klen;
	const char *value;
	size_t vlen;
};

struct vmic_kvp_ack {
	uint8_t status;
	uint16_t refused;
	char note[VMIC_KVP_NOTE_MAX + 1];
};

/* "external", "guest", "auto", "auto-external", "auto-internal". */
const char *vmic_kvp_pool_name(unsigned pool);
/* Hyper-V's spelling: "External", "Guest", "Auto", ... */
const char *vmic_kvp_pool_display(unsigned pool);
/* A pool by name (any of the spellings above, case-insensitive) or by
 * number 0..4; -EINVAL when none. */
int vmic_kvp_pool_parse(const char *s);
/* True when the host writes the pool (0, 3), false for the guest's. */
bool vmic_kvp_pool_from_host(unsigned pool);
/* True when the pool crosses the channel (0..3). */
bool vmic_kvp_pool_exchanged(unsigned pool);

/*
 * Why a key or value cannot be stored, as a sentence for a user ("the
 * key is 600 bytes; a KVP key holds at most 511"), or NULL when it can.
 * value may be NULL (a key alone). The text is static.
 */
const char *vmic_kvp_check(const char *key, size_t klen, const char *value,
			   size_t vlen);

/*
 * Decode a SET or DELETE payload of message `type` and check every
 * record (lengths, UTF-8, no NUL, no empty key, no bytes left over), so
 * a receiver never applies half a batch. -EBADMSG when malformed.
 */
int vmic_kvp_batch_decode(uint8_t type, const uint8_t *p, size_t n,
			  struct vmic_kvp_batch *b);
/* The records of a decoded batch, in order: init, then next until it
 * returns false. */
void vmic_kvp_items_init(const struct vmic_kvp_batch *b, struct vmic_rd *r);
bool vmic_kvp_items_next(const struct vmic_kvp_batch *b, struct vmic_rd *r,
			 struct vmic_kvp_item *it);

/*
 * Building a batch: begin writes the header into buf (cap bytes, at
 * most VMIC_KVP_BATCH_MAX are used), add appends a record (value NULL in
 * a DELETE) and returns -ENOSPC when it does not fit or the count is
 * full, -EINVAL when a length is over its limit (the batch is unchanged
 * either way), end fixes the count and returns the payload length.
 */
struct vmic_kvp_builder {
	struct vmic_wr w;
	uint8_t type;
	uint16_t count;
};
void vmic_kvp_build_begin(struct vmic_kvp_builder *bd, uint8_t *buf,
			  size_t cap, uint8_t type, uint8_t pool,
			  uint8_t flags);
int vmic_kvp_build_add(struct vmic_kvp_builder *bd, const char *key,
		       size_t klen, const char *value, size_t vlen);
size_t vmic_kvp_build_end(struct vmic_kvp_builder *bd);
/* Change the flags of a batch being built. */
void vmic_kvp_build_flags(struct vmic_kvp_builder *bd, uint8_t flags);

int vmic_kvp_identity_encode(const char *vm_id, uint8_t *buf, size_t cap);
/* out holds VMIC_KVP_ID_MAX + 1 bytes. -EBADMSG when malformed. */
int vmic_kvp_identity_decode(const uint8_t *p, size_t n, char *out);
int vmic_kvp_ack_encode(const struct vmic_kvp_ack *m, uint8_t *buf,
			size_t cap);
int vmic_kvp_ack_decode(const uint8_t *p, size_t n, struct vmic_kvp_ack *m);

#endif
