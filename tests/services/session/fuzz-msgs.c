/* SPDX-License-Identifier: MIT */
/*
 * The session service's message decoders (src/services/session/proto.c)
 * for fuzz-messages and fuzz-frame (tests/fuzz/fuzz.h): what decodes
 * encodes back to the same bytes.
 */
#include <string.h>

#include "fuzz.h"

#include "services/session/session.h"

static int ss_open_kind(const uint8_t *p, size_t n)
{
	static struct vmic_ss_open m;
	static uint8_t enc[VMIC_SS_OPEN_MAX_LEN];
	int len;

	if (vmic_ss_open_decode(p, n, &m) < 0)
		return 0;
	FUZZ_CHECK(fuzz_valid_text(m.user, VMIC_SS_USER_MAX));
	FUZZ_CHECK(fuzz_valid_text(m.cwd, VMIC_SS_CWD_MAX));
	len = vmic_ss_open_encode(&m, enc, sizeof(enc));
	FUZZ_CHECK(len >= 0 && (size_t)len == n && memcmp(enc, p, n) == 0);
	return 1;
}

#define SIMPLE_KIND(fn, type, dec, enc, max)                             \
	static int fn(const uint8_t *p, size_t n)                       \
	{                                                               \
		type m;                                                 \
		uint8_t out[max];                                       \
		int len;                                                \
		memset(&m, 0, sizeof(m));                               \
		if (dec(p, n, &m) < 0)                                  \
			return 0;                                       \
		len = enc(&m, out, sizeof(out));                        \
		FUZZ_CHECK(len >= 0 && (size_t)len == n &&              \
			   memcmp(out, p, n) == 0);                     \
		return 1;                                               \
	}

SIMPLE_KIND(ss_started_kind, struct vmic_ss_started, vmic_ss_started_decode,
	    vmic_ss_started_encode, VMIC_SS_STARTED_MAX_LEN)
SIMPLE_KIND(ss_signal_kind, struct vmic_ss_signal, vmic_ss_signal_decode,
	    vmic_ss_signal_encode, VMIC_SS_SIGNAL_LEN)
SIMPLE_KIND(ss_winsize_kind, struct vmic_ss_winsize, vmic_ss_winsize_decode,
	    vmic_ss_winsize_encode, VMIC_SS_WINSIZE_LEN)
SIMPLE_KIND(ss_close_kind, struct vmic_ss_close, vmic_ss_close_decode,
	    vmic_ss_close_encode, VMIC_SS_CLOSE_MAX_LEN)
SIMPLE_KIND(ss_exit_kind, struct vmic_ss_exit, vmic_ss_exit_decode,
	    vmic_ss_exit_encode, VMIC_SS_EXIT_LEN)

static const struct fuzz_msg msgs[] = {
	{ "ss-open", VMIC_SVC_SESSION, VMIC_SS_OPEN, ss_open_kind },
	{ "ss-started", VMIC_SVC_SESSION, VMIC_SS_STARTED, ss_started_kind },
	{ "ss-signal", VMIC_SVC_SESSION, VMIC_SS_SIGNAL, ss_signal_kind },
	{ "ss-winsize", VMIC_SVC_SESSION, VMIC_SS_WINSIZE, ss_winsize_kind },
	{ "ss-close", VMIC_SVC_SESSION, VMIC_SS_CLOSE, ss_close_kind },
	{ "ss-exit", VMIC_SVC_SESSION, VMIC_SS_EXIT, ss_exit_kind },
};

const struct fuzz_msgs fuzz_msgs_session = { msgs,
					     sizeof(msgs) / sizeof(msgs[0]) };
