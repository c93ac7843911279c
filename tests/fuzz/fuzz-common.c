/* SPDX-License-Identifier: MIT */
/*
 * Message decoding with round-trip checks, shared by the fuzz targets:
 * the control service's messages and the text helpers here, each
 * service's in tests/services/NAME/fuzz-msgs.c, all found by (service,
 * type) through one table made from src/services/list.h.
 */
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
#include "proto/hello.h"
#include "proto/services.h"

void fuzz_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
	abort();
}

void fuzz_check_prefix(const uint8_t *enc, int enclen, const uint8_t *p,
		       size_t n)
{
	FUZZ_CHECK(enclen >= 0);
	FUZZ_CHECK((size_t)enclen <= n);
	FUZZ_CHECK(memcmp(enc, p, (size_t)enclen) == 0);
}

bool fuzz_valid_text(const char *s, size_t max)
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
	FUZZ_CHECK(fuzz_valid_text(h.software, VMIC_SOFTWARE_MAX));
	for (unsigned i = 0; i < h.count; i++) {
		const struct vmic_offer *o = &h.offers[i];

		FUZZ_CHECK(o->min_version >= 1);
		FUZZ_CHECK(o->min_version <= o->max_version);
		FUZZ_CHECK(vmic_hello_find(&h, o->service) == o);
	}
	len = vmic_hello_encode(&h, enc, sizeof(enc));
	fuzz_check_prefix(enc, len, p, n);
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
	FUZZ_CHECK(fuzz_valid_text(m.hostname, VMIC_INFO_STR_MAX));
	FUZZ_CHECK(fuzz_valid_text(m.arch, VMIC_INFO_STR_MAX));
	len = vmic_info_encode(&m, enc, sizeof(enc));
	fuzz_check_prefix(enc, len, p, n);
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
	FUZZ_CHECK(fuzz_valid_text(m.message, VMIC_ERROR_MSG_MAX));
	len = vmic_error_encode(&m, enc, sizeof(enc));
	fuzz_check_prefix(enc, len, p, n);
	memset(&again, 0, sizeof(again));
	FUZZ_CHECK(vmic_error_decode(enc, (size_t)len, &again) == 0);
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

static const struct fuzz_msg core_msgs[] = {
	{ "hello", VMIC_SVC_CONTROL, VMIC_CTL_HELLO, hello_kind },
	{ "info", VMIC_SVC_CONTROL, VMIC_CTL_INFO, info_kind },
	{ "services", VMIC_SVC_CONTROL, VMIC_CTL_SERVICES, u32_kind },
	{ "error", VMIC_SVC_CONTROL, VMIC_T_ERROR, error_kind },
	{ "credit", VMIC_SVC_CONTROL, VMIC_T_STREAM_CREDIT, u32_kind },
	/* vmic_utf8_sanitize, its first byte the capacity */
	{ "sanitize", FUZZ_TEXT, 0, sanitize_kind },
	/* vmic_error_frame with the bytes as text */
	{ "error-frame", FUZZ_TEXT, 1, error_frame_kind },
	/* vmic_parse_duration_ms on the text */
	{ "duration", FUZZ_TEXT, 2, duration_kind },
};

const struct fuzz_msgs fuzz_msgs_core = { core_msgs,
					  sizeof(core_msgs) /
						  sizeof(core_msgs[0]) };

/* Made from services/list.h; a service without decoders is NULL. */
static const struct fuzz_msgs *const tables[] = {
	&fuzz_msgs_core,
#define VMIC_SERVICE(name) &fuzz_msgs_##name,
#include "services/list.h"
#undef VMIC_SERVICE
};

#define NTABLES (sizeof(tables) / sizeof(tables[0]))

static const struct fuzz_msg *lookup(uint8_t service, uint8_t type)
{
	for (size_t t = 0; t < NTABLES; t++) {
		if (!tables[t])
			continue;
		for (size_t i = 0; i < tables[t]->n; i++)
			if (tables[t]->msgs[i].service == service &&
			    tables[t]->msgs[i].type == type)
				return &tables[t]->msgs[i];
	}
	return NULL;
}

const struct fuzz_msg *fuzz_msg_find(uint8_t service, uint8_t type)
{
	switch (type) {
	case VMIC_T_ERROR:
	case VMIC_T_STREAM_RESET:
		return lookup(VMIC_SVC_CONTROL, VMIC_T_ERROR);
	case VMIC_T_STREAM_CREDIT:
		return lookup(VMIC_SVC_CONTROL, VMIC_T_STREAM_CREDIT);
	case VMIC_T_STREAM_DATA:
		return NULL;
	}
	return service == FUZZ_TEXT ? NULL : lookup(service, type);
}

const struct fuzz_msg *fuzz_msg_pick(uint8_t s0, uint8_t s1)
{
	const struct fuzz_msg *m = lookup(s0, s1);
	size_t total = 0, k;

	if (m)
		return m;
	for (size_t t = 0; t < NTABLES; t++)
		total += tables[t] ? tables[t]->n : 0;
	k = ((size_t)s0 << 8 | s1) % total;
	for (size_t t = 0; t < NTABLES; t++) {
		if (!tables[t])
			continue;
		if (k < tables[t]->n)
			return &tables[t]->msgs[k];
		k -= tables[t]->n;
	}
	return NULL;
}
