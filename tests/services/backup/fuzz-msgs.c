/* SPDX-License-Identifier: MIT */
/*
 * The backup service's message decoders (src/services/backup/proto.c),
 * with their round-trip checks, for fuzz-messages and fuzz-frame
 * (tests/fuzz/fuzz.h).
 */
#include <string.h>

#include "fuzz.h"

#include "services/backup/backup.h"

static void check_mounts(const struct vmic_bk_mounts *m)
{
	FUZZ_CHECK(m->count <= VMIC_BK_MOUNTS_MAX);
	for (unsigned i = 0; i < m->count; i++)
		FUZZ_CHECK(m->path[i][0] &&
			   fuzz_valid_text(m->path[i], VMIC_BK_PATH_MAX));
}

static int bk_freeze_kind(const uint8_t *p, size_t n)
{
	struct vmic_bk_freeze m, again;
	uint8_t enc[VMIC_BK_FREEZE_LEN];
	int len;

	if (vmic_bk_freeze_decode(p, n, &m) < 0)
		return 0;
	FUZZ_CHECK(m.flags == 0);
	len = vmic_bk_freeze_encode(&m, enc, sizeof(enc));
	fuzz_check_prefix(enc, len, p, n);
	FUZZ_CHECK((size_t)len == n);
	FUZZ_CHECK(vmic_bk_freeze_decode(enc, (size_t)len, &again) == 0);
	FUZZ_CHECK(again.timeout_ms == m.timeout_ms);
	return 1;
}

static int bk_frozen_kind(const uint8_t *p, size_t n)
{
	static struct vmic_bk_frozen m, again;
	static uint8_t enc[VMIC_BK_FROZEN_MAX_LEN];
	int len;

	memset(&m, 0, sizeof(m));
	if (vmic_bk_frozen_decode(p, n, &m) < 0)
		return 0;
	check_mounts(&m.mounts);
	FUZZ_CHECK(fuzz_valid_text(m.output, VMIC_BK_OUTPUT_MAX));
	len = vmic_bk_frozen_encode(&m, enc, sizeof(enc));
	fuzz_check_prefix(enc, len, p, n);
	FUZZ_CHECK((size_t)len == n);
	memset(&again, 0, sizeof(again));
	FUZZ_CHECK(vmic_bk_frozen_decode(enc, (size_t)len, &again) == 0);
	FUZZ_CHECK(memcmp(&again, &m, sizeof(m)) == 0);
	return 1;
}

static int bk_thaw_kind(const uint8_t *p, size_t n)
{
	uint8_t flags, enc[VMIC_BK_THAW_LEN];
	int len;

	if (vmic_bk_thaw_decode(p, n, &flags) < 0)
		return 0;
	FUZZ_CHECK(flags == 0);
	len = vmic_bk_thaw_encode(flags, enc, sizeof(enc));
	fuzz_check_prefix(enc, len, p, n);
	return 1;
}

static int bk_thawed_kind(const uint8_t *p, size_t n)
{
	static struct vmic_bk_thawed m, again;
	static uint8_t enc[VMIC_BK_THAWED_MAX_LEN];
	int len;

	memset(&m, 0, sizeof(m));
	if (vmic_bk_thawed_decode(p, n, &m) < 0)
		return 0;
	FUZZ_CHECK(vmic_bk_why_name(m.reason) != NULL);
	check_mounts(&m.mounts);
	FUZZ_CHECK(fuzz_valid_text(m.detail, VMIC_BK_OUTPUT_MAX));
	len = vmic_bk_thawed_encode(&m, enc, sizeof(enc));
	fuzz_check_prefix(enc, len, p, n);
	FUZZ_CHECK((size_t)len == n);
	memset(&again, 0, sizeof(again));
	FUZZ_CHECK(vmic_bk_thawed_decode(enc, (size_t)len, &again) == 0);
	FUZZ_CHECK(memcmp(&again, &m, sizeof(m)) == 0);
	return 1;
}

static const struct fuzz_msg msgs[] = {
	{ "bk-freeze", VMIC_SVC_BACKUP, VMIC_BK_FREEZE, bk_freeze_kind },
	{ "bk-frozen", VMIC_SVC_BACKUP, VMIC_BK_FROZEN, bk_frozen_kind },
	{ "bk-thaw", VMIC_SVC_BACKUP, VMIC_BK_THAW, bk_thaw_kind },
	{ "bk-thawed", VMIC_SVC_BACKUP, VMIC_BK_THAWED, bk_thawed_kind },
};

const struct fuzz_msgs fuzz_msgs_backup = { msgs,
					    sizeof(msgs) / sizeof(msgs[0]) };
