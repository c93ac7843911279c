/* SPDX-License-Identifier: MIT */
/*
 * The session service's messages (src/services/session/proto.c): the
 * first input byte picks the decoder (enum ss_kind), the rest is the
 * payload. Whatever decodes must keep every bound session.h promises,
 * encode back to the same bytes and decode again to the same value.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "services/session/session.h"

enum ss_kind {
	SS_KIND_OPEN,
	SS_KIND_STARTED,
	SS_KIND_SIGNAL,
	SS_KIND_WINSIZE,
	SS_KIND_CLOSE,
	SS_KIND_EXIT,
	SS_KIND_COUNT
};

static void same(const uint8_t *a, int n, const uint8_t *p, size_t len)
{
	FUZZ_CHECK(n >= 0 && (size_t)n == len);
	FUZZ_CHECK(memcmp(a, p, len) == 0);
}

static bool strs_equal(const struct vmic_ss_str *a,
		       const struct vmic_ss_str *b, uint16_t n)
{
	for (uint16_t i = 0; i < n; i++)
		if (a[i].n != b[i].n || memcmp(a[i].p, b[i].p, a[i].n) != 0)
			return false;
	return true;
}

static void fuzz_open(const uint8_t *p, size_t n)
{
	static struct vmic_ss_open m, again;
	static uint8_t out[VMIC_SS_OPEN_MAX_LEN];

	if (vmic_ss_open_decode(p, n, &m) < 0)
		return;
	FUZZ_CHECK(m.session && m.in_stream && m.out_stream);
	FUZZ_CHECK((m.flags & ~VMIC_SS_F_KNOWN) == 0);
	FUZZ_CHECK(m.argc <= VMIC_SS_ARGC_MAX && m.envc <= VMIC_SS_ENVC_MAX);
	FUZZ_CHECK((m.flags & VMIC_SS_F_SHELL) ? m.argc == 0 : m.argc > 0);
	for (uint16_t i = 0; i < m.argc; i++)
		FUZZ_CHECK(!memchr(m.argv[i].p, 0, m.argv[i].n));
	for (uint16_t i = 0; i < m.envc; i++)
		FUZZ_CHECK(memchr(m.env[i].p, '=', m.env[i].n) &&
			   m.env[i].p[0] != '=');
	same(out, vmic_ss_open_encode(&m, out, sizeof(out)), p, n);
	FUZZ_CHECK(vmic_ss_open_decode(out, n, &again) == 0);
	FUZZ_CHECK(again.session == m.session && again.flags == m.flags &&
		   again.timeout_s == m.timeout_s && again.argc == m.argc &&
		   again.envc == m.envc && strcmp(again.user, m.user) == 0 &&
		   strcmp(again.cwd, m.cwd) == 0 &&
		   strcmp(again.term, m.term) == 0);
	FUZZ_CHECK(strs_equal(again.argv, m.argv, m.argc) &&
		   strs_equal(again.env, m.env, m.envc));
}

#define ROUND_TRIP(type, dec, enc, maxlen)                              \
	do {                                                            \
		type m_, again_;                                        \
		uint8_t out_[maxlen];                                   \
		memset(&m_, 0, sizeof(m_));                             \
		memset(&again_, 0, sizeof(again_));                     \
		if (dec(p, n, &m_) < 0)                                 \
			break;                                          \
		same(out_, enc(&m_, out_, sizeof(out_)), p, n);         \
		FUZZ_CHECK(dec(out_, n, &again_) == 0);                 \
		FUZZ_CHECK(memcmp(&again_, &m_, sizeof(m_)) == 0);      \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data + 1;
	size_t n = size ? size - 1 : 0;

	if (size < 1)
		return 0;
	switch ((enum ss_kind)(data[0] % SS_KIND_COUNT)) {
	case SS_KIND_OPEN:
		fuzz_open(p, n);
		break;
	case SS_KIND_STARTED:
		ROUND_TRIP(struct vmic_ss_started, vmic_ss_started_decode,
			   vmic_ss_started_encode, VMIC_SS_STARTED_MAX_LEN);
		break;
	case SS_KIND_SIGNAL:
		ROUND_TRIP(struct vmic_ss_signal, vmic_ss_signal_decode,
			   vmic_ss_signal_encode, VMIC_SS_SIGNAL_LEN);
		break;
	case SS_KIND_WINSIZE:
		ROUND_TRIP(struct vmic_ss_winsize, vmic_ss_winsize_decode,
			   vmic_ss_winsize_encode, VMIC_SS_WINSIZE_LEN);
		break;
	case SS_KIND_CLOSE:
		ROUND_TRIP(struct vmic_ss_close, vmic_ss_close_decode,
			   vmic_ss_close_encode, VMIC_SS_CLOSE_MAX_LEN);
		break;
	case SS_KIND_EXIT:
		ROUND_TRIP(struct vmic_ss_exit, vmic_ss_exit_decode,
			   vmic_ss_exit_encode, VMIC_SS_EXIT_LEN);
		break;
	case SS_KIND_COUNT:
		break;
	}
	return 0;
}
