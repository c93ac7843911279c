/* SPDX-License-Identifier: MIT */
/*
 * The File Copy service's message decoders (src/services/filecopy/
 * proto.c), with their round-trip checks, for fuzz-messages and
 * fuzz-frame (tests/fuzz/fuzz.h): whatever decodes must hold only what
 * the guest may act on (an absolute path, a plain name, known flags and
 * mode bits, a stream id) and encode back to the same bytes.
 */
#include <string.h>

#include "fuzz.h"

#include "services/filecopy/filecopy.h"

static int fc_put_kind(const uint8_t *p, size_t n)
{
	static struct vmic_fc_put m, again;
	static uint8_t enc[VMIC_FC_PUT_MAX_LEN];
	int len;

	memset(&m, 0, sizeof(m));
	if (vmic_fc_put_decode(p, n, &m) < 0)
		return 0;
	FUZZ_CHECK((m.flags & ~VMIC_FC_F_KNOWN) == 0);
	FUZZ_CHECK((m.mode & ~VMIC_FC_MODE_MASK) == 0 && m.stream_id != 0);
	FUZZ_CHECK(m.path[0] == '/' && !strchr(m.name, '/'));
	FUZZ_CHECK(strcmp(m.name, "..") != 0 && strcmp(m.name, ".") != 0);
	FUZZ_CHECK(fuzz_valid_text(m.path, VMIC_FC_PATH_MAX));
	FUZZ_CHECK(fuzz_valid_text(m.name, VMIC_FC_NAME_MAX));
	len = vmic_fc_put_encode(&m, enc, sizeof(enc));
	FUZZ_CHECK(len > 0 && (size_t)len == n && memcmp(enc, p, n) == 0);
	memset(&again, 0, sizeof(again));
	FUZZ_CHECK(vmic_fc_put_decode(enc, (size_t)len, &again) == 0);
	FUZZ_CHECK(memcmp(&again, &m, sizeof(m)) == 0);
	return 1;
}

static int fc_commit_kind(const uint8_t *p, size_t n)
{
	struct vmic_fc_commit m, again;
	uint8_t enc[VMIC_FC_COMMIT_LEN];
	int len;

	memset(&m, 0, sizeof(m));
	if (vmic_fc_commit_decode(p, n, &m) < 0)
		return 0;
	FUZZ_CHECK(m.stream_id != 0);
	len = vmic_fc_commit_encode(&m, enc, sizeof(enc));
	FUZZ_CHECK(len > 0 && (size_t)len == n && memcmp(enc, p, n) == 0);
	memset(&again, 0, sizeof(again));
	FUZZ_CHECK(vmic_fc_commit_decode(enc, (size_t)len, &again) == 0);
	FUZZ_CHECK(memcmp(&again, &m, sizeof(m)) == 0);
	return 1;
}

static int fc_get_kind(const uint8_t *p, size_t n)
{
	static struct vmic_fc_get m, again;
	static uint8_t enc[VMIC_FC_GET_MAX_LEN];
	int len;

	memset(&m, 0, sizeof(m));
	if (vmic_fc_get_decode(p, n, &m) < 0)
		return 0;
	FUZZ_CHECK(m.stream_id != 0 && m.path[0] == '/');
	FUZZ_CHECK(fuzz_valid_text(m.path, VMIC_FC_PATH_MAX));
	len = vmic_fc_get_encode(&m, enc, sizeof(enc));
	FUZZ_CHECK(len > 0 && (size_t)len == n && memcmp(enc, p, n) == 0);
	memset(&again, 0, sizeof(again));
	FUZZ_CHECK(vmic_fc_get_decode(enc, (size_t)len, &again) == 0);
	FUZZ_CHECK(memcmp(&again, &m, sizeof(m)) == 0);
	return 1;
}

static int fc_reply_kind(const uint8_t *p, size_t n)
{
	struct vmic_fc_reply m, again;
	uint8_t enc[VMIC_FC_REPLY_LEN];
	int len;

	memset(&m, 0, sizeof(m));
	if (vmic_fc_reply_decode(p, n, &m) < 0)
		return 0;
	FUZZ_CHECK(m.stage <= VMIC_FC_DONE);
	FUZZ_CHECK((m.flags & ~(VMIC_FC_F_SPARSE | VMIC_FC_F_EXISTS |
				VMIC_FC_F_OWNER)) == 0);
	FUZZ_CHECK((m.mode & ~VMIC_FC_MODE_MASK) == 0);
	len = vmic_fc_reply_encode(&m, enc, sizeof(enc));
	FUZZ_CHECK(len > 0 && (size_t)len == n && memcmp(enc, p, n) == 0);
	memset(&again, 0, sizeof(again));
	FUZZ_CHECK(vmic_fc_reply_decode(enc, (size_t)len, &again) == 0);
	FUZZ_CHECK(memcmp(&again, &m, sizeof(m)) == 0);
	return 1;
}

static int fc_mkdir_kind(const uint8_t *p, size_t n)
{
	static struct vmic_fc_mkdir m, again;
	static uint8_t enc[VMIC_FC_MKDIR_MAX_LEN];
	int len;

	memset(&m, 0, sizeof(m));
	if (vmic_fc_mkdir_decode(p, n, &m) < 0)
		return 0;
	FUZZ_CHECK(m.path[0] == '/' && (m.mode & ~VMIC_FC_MODE_MASK) == 0);
	FUZZ_CHECK(fuzz_valid_text(m.path, VMIC_FC_PATH_MAX));
	len = vmic_fc_mkdir_encode(&m, enc, sizeof(enc));
	FUZZ_CHECK(len > 0 && (size_t)len == n && memcmp(enc, p, n) == 0);
	memset(&again, 0, sizeof(again));
	FUZZ_CHECK(vmic_fc_mkdir_decode(enc, (size_t)len, &again) == 0);
	FUZZ_CHECK(memcmp(&again, &m, sizeof(m)) == 0);
	return 1;
}

static int fc_symlink_kind(const uint8_t *p, size_t n)
{
	static struct vmic_fc_symlink m, again;
	static uint8_t enc[VMIC_FC_SYMLINK_MAX_LEN];
	int len;

	memset(&m, 0, sizeof(m));
	if (vmic_fc_symlink_decode(p, n, &m) < 0)
		return 0;
	FUZZ_CHECK(m.path[0] == '/' && m.target[0]);
	FUZZ_CHECK(fuzz_valid_text(m.target, VMIC_FC_PATH_MAX));
	len = vmic_fc_symlink_encode(&m, enc, sizeof(enc));
	FUZZ_CHECK(len > 0 && (size_t)len == n && memcmp(enc, p, n) == 0);
	memset(&again, 0, sizeof(again));
	FUZZ_CHECK(vmic_fc_symlink_decode(enc, (size_t)len, &again) == 0);
	FUZZ_CHECK(memcmp(&again, &m, sizeof(m)) == 0);
	return 1;
}

static const struct fuzz_msg msgs[] = {
	{ "fc-put", VMIC_SVC_FILECOPY, VMIC_FC_PUT, fc_put_kind },
	{ "fc-commit", VMIC_SVC_FILECOPY, VMIC_FC_COMMIT, fc_commit_kind },
	{ "fc-get", VMIC_SVC_FILECOPY, VMIC_FC_GET, fc_get_kind },
	{ "fc-list", VMIC_SVC_FILECOPY, VMIC_FC_LIST, fc_get_kind },
	{ "fc-reply", VMIC_SVC_FILECOPY, VMIC_FC_REPLY, fc_reply_kind },
	{ "fc-mkdir", VMIC_SVC_FILECOPY, VMIC_FC_MKDIR, fc_mkdir_kind },
	{ "fc-symlink", VMIC_SVC_FILECOPY, VMIC_FC_SYMLINK, fc_symlink_kind },
};

const struct fuzz_msgs fuzz_msgs_filecopy = { msgs,
					      sizeof(msgs) / sizeof(msgs[0]) };
