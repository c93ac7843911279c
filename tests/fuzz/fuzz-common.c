/* SPDX-License-Identifier: MIT */
/* Message decoding with round-trip checks, shared by the fuzz targets. */
#include "fuzz.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/utf8.h"
#include "common/wire.h"
#include "proto/control.h"
#include "proto/frame.h"
#include "services/heartbeat/heartbeat.h"
#include "services/kvp/kvp.h"
#include "proto/hello.h"
#include "proto/services.h"
#include "services/shutdown/shutdown.h"

void fuzz_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
	abort();
}

/* The encoding of what was decoded is the input's leading bytes. */
static void check_prefix(const uint8_t *enc, int enclen, const uint8_t *p,
			 size_t n)
{
	FUZZ_CHECK(enclen >= 0);
	FUZZ_CHECK((size_t)enclen <= n);
	FUZZ_CHECK(memcmp(enc, p, (size_t)enclen) == 0);
}

static bool valid_text(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	return n <= max && vmic_utf8_valid(s, n);
}

static int hello_kind(const uint8_t *p, size_t n)
{
	static uint8_t enc[1024];
	struct vmic_hello h, again;
	int len;

	if (vmic_hello_decode(p, n, &h) < 0)
		return 0;
	FUZZ_CHECK(h.nonce != 0);
	FUZZ_CHECK(h.count <= VMIC_HELLO_MAX_OFFERS);
	FUZZ_CHECK(valid_text(h.software, VMIC_SOFTWARE_MAX));
	for (unsigned i = 0; i < h.count; i++) {
		const struct vmic_offer *o = &h.offers[i];

		FUZZ_CHECK(o->min_version >= 1);
		FUZZ_CHECK(o->min_version <= o->max_version);
		FUZZ_CHECK(vmic_hello_find(&h, o->service) == o);
	}
	len = vmic_hello_encode(&h, enc, sizeof(enc));
	check_prefix(enc, len, p, n);
	FUZZ_CHECK(vmic_hello_decode(enc, (size_t)len, &again) == 0);
	FUZZ_CHECK(again.nonce == h.nonce && again.echo == h.echo);
	FUZZ_CHECK(again.count == h.count);
	FUZZ_CHECK(strcmp(again.software, h.software) == 0);
	return 1;
}

static int info_kind(const uint8_t *p, size_t n)
{
	static struct vmic_info m, again;
	static uint8_t enc[VMIC_INFO_MAX_LEN];
	int len;

	memset(&m, 0, sizeof(m));
	if (vmic_info_decode(p, n, &m) < 0)
		return 0;
	FUZZ_CHECK(valid_text(m.hostname, VMIC_INFO_STR_MAX));
	FUZZ_CHECK(valid_text(m.arch, VMIC_INFO_STR_MAX));
	len = vmic_info_encode(&m, enc, sizeof(enc));
	check_prefix(enc, len, p, n);
	memset(&again, 0, sizeof(again));
	FUZZ_CHECK(vmic_info_decode(enc, (size_t)len, &again) == 0);
	FUZZ_CHECK(memcmp(&again, &m, sizeof(m)) == 0);
	return 1;
}

static int error_kind(const uint8_t *p, size_t n)
{
	static struct vmic_error m, again;
	static uint8_t enc[VMIC_ERROR_MAX_LEN];
	int len;

	memset(&m, 0, sizeof(m));
	if (vmic_error_decode(p, n, &m) < 0)
		return 0;
	FUZZ_CHECK(valid_text(m.message, VMIC_ERROR_MSG_MAX));
	len = vmic_error_encode(&m, enc, sizeof(enc));
	check_prefix(enc, len, p, n);
	memset(&again, 0, sizeof(again));
	FUZZ_CHECK(vmic_error_decode(enc, (size_t)len, &again) == 0);
	FUZZ_CHECK(memcmp(&again, &m, sizeof(m)) == 0);
	return 1;
}

static int hb_request_kind(const uint8_t *p, size_t n)
{
	uint8_t enc[8];
	uint64_t seq;
	int len;

	if (vmic_hb_request_decode(p, n, &seq) < 0)
		return 0;
	len = vmic_hb_request_encode(seq, enc, sizeof(enc));
	check_prefix(enc, len, p, n);
	return 1;
}

static int hb_reply_kind(const uint8_t *p, size_t n)
{
	static struct vmic_hb_reply m, again;
	static uint8_t enc[VMIC_HB_REPLY_MAX_LEN];
	int len;

	memset(&m, 0, sizeof(m));
	if (vmic_hb_reply_decode(p, n, &m) < 0)
		return 0;
	FUZZ_CHECK(m.health <= VMIC_HEALTH_CRITICAL);
	FUZZ_CHECK(valid_text(m.reason, VMIC_HB_REASON_MAX));
	len = vmic_hb_reply_encode(&m, enc, sizeof(enc));
	check_prefix(enc, len, p, n);
	memset(&again, 0, sizeof(again));
	FUZZ_CHECK(vmic_hb_reply_decode(enc, (size_t)len, &again) == 0);
	FUZZ_CHECK(memcmp(&again, &m, sizeof(m)) == 0);
	return 1;
}

static int sd_request_kind(const uint8_t *p, size_t n)
{
	static struct vmic_sd_request m, again;
	static uint8_t enc[VMIC_SD_REQUEST_MAX_LEN];
	int len;

	memset(&m, 0, sizeof(m));
	if (vmic_sd_request_decode(p, n, &m) < 0)
		return 0;
	FUZZ_CHECK(vmic_sd_action_name(m.action) != NULL);
	FUZZ_CHECK((m.flags & ~VMIC_SD_F_KNOWN) == 0);
	FUZZ_CHECK(valid_text(m.reason, VMIC_SD_REASON_MAX));
	len = vmic_sd_request_encode(&m, enc, sizeof(enc));
	check_prefix(enc, len, p, n);
	memset(&again, 0, sizeof(again));
	FUZZ_CHECK(vmic_sd_request_decode(enc, (size_t)len, &again) == 0);
	FUZZ_CHECK(memcmp(&again, &m, sizeof(m)) == 0);
	return 1;
}

static int sd_reply_kind(const uint8_t *p, size_t n)
{
	static struct vmic_sd_reply m, again;
	static uint8_t enc[VMIC_SD_REPLY_MAX_LEN];
	int len;

	memset(&m, 0, sizeof(m));
	if (vmic_sd_reply_decode(p, n, &m) < 0)
		return 0;
	FUZZ_CHECK(valid_text(m.message, VMIC_SD_MESSAGE_MAX));
	len = vmic_sd_reply_encode(&m, enc, sizeof(enc));
	check_prefix(enc, len, p, n);
	memset(&again, 0, sizeof(again));
	FUZZ_CHECK(vmic_sd_reply_decode(enc, (size_t)len, &again) == 0);
	FUZZ_CHECK(memcmp(&again, &m, sizeof(m)) == 0);
	return 1;
}

/* A u32 payload (service mask, stream credit). */
static int u32_kind(const uint8_t *p, size_t n)
{
	struct vmic_rd r;
	uint32_t v;

	vmic_rd_init(&r, p, n);
	v = vmic_rd_u32(&r);
	if (r.err)
		return 0;
	FUZZ_CHECK(v == vmic_get_le32(p));
	return 1;
}

static int sanitize_kind(const uint8_t *p, size_t n)
{
	char out[300];
	size_t cap = n ? (size_t)p[0] % sizeof(out) : 0, len;

	if (n)
		p++, n--;
	memset(out, 'Z', sizeof(out));
	len = vmic_utf8_sanitize(out, cap, (const char *)p, n);
	if (cap == 0) {
		FUZZ_CHECK(len == 0 && out[0] == 'Z');
		return 1;
	}
	FUZZ_CHECK(len < cap);
	FUZZ_CHECK(out[len] == '\0' && strlen(out) == len);
	FUZZ_CHECK(vmic_utf8_valid(out, len));
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)out[i];

		FUZZ_CHECK(c >= 0x20 && c != 0x7F);
		if (c == 0xC2)
			FUZZ_CHECK(i + 1 < len &&
				   (unsigned char)out[i + 1] >= 0xA0);
	}
	/* Valid text without controls comes through unchanged. */
	if (vmic_utf8_valid((const char *)p, n) && n < cap) {
		bool plain = true;

		for (size_t i = 0; i < n; i++)
			if (p[i] < 0x20 || p[i] == 0x7F ||
			    (p[i] == 0xC2 && i + 1 < n && p[i + 1] < 0xA0))
				plain = false;
		if (plain)
			FUZZ_CHECK(len == n && memcmp(out, p, n) == 0);
	}
	return 1;
}

/* Text as a NUL-terminated copy. */
static char *text_of(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static int error_frame_kind(const uint8_t *p, size_t n)
{
	static uint8_t buf[VMIC_HDR_SIZE + VMIC_ERROR_MAX_LEN];
	static struct vmic_error e;
	char *msg = text_of(p, n);
	struct vmic_frame f;
	size_t len;

	len = vmic_error_frame(buf, VMIC_SVC_HEARTBEAT, 7, VMIC_E_FAILED, msg);
	FUZZ_CHECK(len >= VMIC_HDR_SIZE + VMIC_ERROR_MIN_LEN);
	FUZZ_CHECK(vmic_frame_parse_header(buf, &f) == 0);
	FUZZ_CHECK(f.length == len - VMIC_HDR_SIZE);
	FUZZ_CHECK(vmic_msg_check(&f, VMIC_DIR_G2H) == 0);
	FUZZ_CHECK(vmic_error_decode(buf + VMIC_HDR_SIZE, f.length, &e) == 0);
	FUZZ_CHECK(e.code == VMIC_E_FAILED);
	FUZZ_CHECK(strlen(e.message) <= strlen(msg));
	free(msg);
	return 1;
}

static int duration_kind(const uint8_t *p, size_t n)
{
	char *s = text_of(p, n), out[32];
	uint64_t ms, again;
	int r = vmic_parse_duration_ms(s, &ms);

	if (r == 0) {
		FUZZ_CHECK(ms <= 0xFFFFFFFFull);
		vmic_format_duration_ms(ms, out, sizeof(out));
		FUZZ_CHECK(vmic_parse_duration_ms(out, &again) == 0);
		FUZZ_CHECK(again == ms);
	} else {
		FUZZ_CHECK(r == -EINVAL || r == -ERANGE);
	}
	free(s);
	return r == 0;
}

/* A SET or DELETE: every record checked, and the batch built again from
 * its records is the input, byte for byte. */
static int kvp_batch_kind(uint8_t type, const uint8_t *p, size_t n)
{
	static uint8_t enc[VMIC_KVP_BATCH_MAX];
	struct vmic_kvp_builder bd;
	struct vmic_kvp_batch b;
	struct vmic_kvp_item it;
	struct vmic_rd r;
	unsigned count = 0;

	if (vmic_kvp_batch_decode(type, p, n, &b) < 0)
		return 0;
	FUZZ_CHECK(b.pool < VMIC_KVP_POOLS);
	vmic_kvp_build_begin(&bd, enc, sizeof(enc), type, b.pool, b.flags);
	vmic_kvp_items_init(&b, &r);
	while (vmic_kvp_items_next(&b, &r, &it)) {
		FUZZ_CHECK(vmic_kvp_check(it.key, it.klen, it.value,
					  it.vlen) == NULL);
		FUZZ_CHECK((it.value != NULL) == (type == VMIC_KVP_SET));
		if (n <= VMIC_KVP_BATCH_MAX)
			FUZZ_CHECK(vmic_kvp_build_add(&bd, it.key, it.klen,
						      it.value, it.vlen) == 0);
		count++;
	}
	FUZZ_CHECK(!r.err);
	FUZZ_CHECK(count == b.count);
	if (n <= VMIC_KVP_BATCH_MAX) {
		FUZZ_CHECK(vmic_kvp_build_end(&bd) == n);
		FUZZ_CHECK(memcmp(enc, p, n) == 0);
	}
	return 1;
}

static int kvp_identity_kind(const uint8_t *p, size_t n)
{
	char id[VMIC_KVP_ID_MAX + 1];
	uint8_t enc[VMIC_KVP_IDENTITY_MAX_LEN];

	if (vmic_kvp_identity_decode(p, n, id) < 0)
		return 0;
	FUZZ_CHECK(valid_text(id, VMIC_KVP_ID_MAX));
	check_prefix(enc, vmic_kvp_identity_encode(id, enc, sizeof(enc)), p,
		     n);
	return 1;
}

static int kvp_ack_kind(const uint8_t *p, size_t n)
{
	static struct vmic_kvp_ack a;
	uint8_t enc[VMIC_KVP_ACK_MAX_LEN];

	if (vmic_kvp_ack_decode(p, n, &a) < 0)
		return 0;
	FUZZ_CHECK(a.status <= VMIC_KVP_CAP);
	FUZZ_CHECK(valid_text(a.note, VMIC_KVP_NOTE_MAX));
	check_prefix(enc, vmic_kvp_ack_encode(&a, enc, sizeof(enc)), p, n);
	return 1;
}

int fuzz_decode_kind(enum fuzz_msg kind, const uint8_t *p, size_t n)
{
	switch (kind) {
	case FUZZ_MSG_HELLO:
		return hello_kind(p, n);
	case FUZZ_MSG_INFO:
		return info_kind(p, n);
	case FUZZ_MSG_ERROR:
		return error_kind(p, n);
	case FUZZ_MSG_HB_REQUEST:
		return hb_request_kind(p, n);
	case FUZZ_MSG_HB_REPLY:
		return hb_reply_kind(p, n);
	case FUZZ_MSG_SD_REQUEST:
		return sd_request_kind(p, n);
	case FUZZ_MSG_SD_REPLY:
		return sd_reply_kind(p, n);
	case FUZZ_MSG_SERVICES:
	case FUZZ_MSG_CREDIT:
		return u32_kind(p, n);
	case FUZZ_MSG_SANITIZE:
		return sanitize_kind(p, n);
	case FUZZ_MSG_ERROR_FRAME:
		return error_frame_kind(p, n);
	case FUZZ_MSG_DURATION:
		return duration_kind(p, n);
	case FUZZ_MSG_KVP_SET:
		return kvp_batch_kind(VMIC_KVP_SET, p, n);
	case FUZZ_MSG_KVP_DELETE:
		return kvp_batch_kind(VMIC_KVP_DELETE, p, n);
	case FUZZ_MSG_KVP_IDENTITY:
		return kvp_identity_kind(p, n);
	case FUZZ_MSG_KVP_ACK:
		return kvp_ack_kind(p, n);
	case FUZZ_MSG_COUNT:
		break;
	}
	return 0;
}

int fuzz_kind_of(uint8_t service, uint8_t type)
{
	switch (type) {
	case VMIC_T_ERROR:
	case VMIC_T_STREAM_RESET:
		return FUZZ_MSG_ERROR;
	case VMIC_T_STREAM_CREDIT:
		return FUZZ_MSG_CREDIT;
	case VMIC_T_STREAM_DATA:
		return -1;
	}
	switch (service) {
	case VMIC_SVC_CONTROL:
		if (type == VMIC_CTL_HELLO)
			return FUZZ_MSG_HELLO;
		if (type == VMIC_CTL_INFO)
			return FUZZ_MSG_INFO;
		if (type == VMIC_CTL_SERVICES)
			return FUZZ_MSG_SERVICES;
		break;
	case VMIC_SVC_HEARTBEAT:
		if (type == VMIC_HB_REQUEST)
			return FUZZ_MSG_HB_REQUEST;
		if (type == VMIC_HB_REPLY)
			return FUZZ_MSG_HB_REPLY;
		break;
	case VMIC_SVC_SHUTDOWN:
		if (type == VMIC_SD_REQUEST)
			return FUZZ_MSG_SD_REQUEST;
		if (type == VMIC_SD_REPLY)
			return FUZZ_MSG_SD_REPLY;
		break;
	case VMIC_SVC_KVP:
		if (type == VMIC_KVP_SET)
			return FUZZ_MSG_KVP_SET;
		if (type == VMIC_KVP_DELETE)
			return FUZZ_MSG_KVP_DELETE;
		if (type == VMIC_KVP_IDENTITY)
			return FUZZ_MSG_KVP_IDENTITY;
		if (type == VMIC_KVP_ACK)
			return FUZZ_MSG_KVP_ACK;
		break;
	}
	return -1;
}
