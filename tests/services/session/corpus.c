/* SPDX-License-Identifier: MIT */
/* The session service's seeds: each message for fuzz-messages, and the
 * same behind fuzz-session's selector byte (tests/fuzz/corpus.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"

#include "services/session/session.h"

static uint8_t buf[VMIC_SS_OPEN_MAX_LEN + 1];

/* A message both ways: fuzz-messages' seed and fuzz-session's. */
static void seed(const char *name, uint8_t type, uint8_t kind, int n)
{
	if (n < 0)
		abort();
	save_message(name, VMIC_SVC_SESSION, type, buf + 1, (size_t)n);
	buf[0] = kind;
	save("fuzz-session", name, buf, (size_t)n + 1);
}

static void gen_open(void)
{
	static struct vmic_ss_open m;
	static const char *const argv[] = { "sh", "-c", "echo \xC3\xA9t\xC3\xA9",
					    "" };
	static const char *const env[] = { "LANG=C.UTF-8", "EMPTY=" };

	m.session = 1;
	m.in_stream = 1;
	m.out_stream = 2;
	m.err_stream = 3;
	m.timeout_s = 30;
	snprintf(m.user, sizeof(m.user), "nobody");
	snprintf(m.cwd, sizeof(m.cwd), "/tmp");
	m.argc = 4;
	for (unsigned i = 0; i < 4; i++)
		m.argv[i] = (struct vmic_ss_str){ argv[i],
						  (uint16_t)strlen(argv[i]) };
	m.envc = 2;
	for (unsigned i = 0; i < 2; i++)
		m.env[i] = (struct vmic_ss_str){ env[i],
						 (uint16_t)strlen(env[i]) };
	seed("ss-open", VMIC_SS_OPEN, 0,
	     vmic_ss_open_encode(&m, buf + 1, sizeof(buf) - 1));
	memset(&m, 0, sizeof(m));
	m.session = 2;
	m.flags = VMIC_SS_F_SHELL | VMIC_SS_F_TTY;
	m.in_stream = 4;
	m.out_stream = 5;
	m.rows = 24;
	m.cols = 80;
	snprintf(m.term, sizeof(m.term), "xterm-256color");
	seed("ss-open-shell", VMIC_SS_OPEN, 0,
	     vmic_ss_open_encode(&m, buf + 1, sizeof(buf) - 1));
}

void gen_corpus_session(void)
{
	struct vmic_ss_started st = { .pid = 4242 };
	struct vmic_ss_signal sig = { .session = 1, .signo = 2 };
	struct vmic_ss_winsize ws = { .session = 2, .rows = 50, .cols = 132 };
	struct vmic_ss_close cl = { .session = 1 };
	struct vmic_ss_exit ex = { .session = 1, .how = VMIC_SS_EXIT_SIGNAL,
				   .value = 9 };

	gen_open();
	snprintf(st.user, sizeof(st.user), "root");
	seed("ss-started", VMIC_SS_STARTED, 1,
	     vmic_ss_started_encode(&st, buf + 1, sizeof(buf) - 1));
	seed("ss-signal", VMIC_SS_SIGNAL, 2,
	     vmic_ss_signal_encode(&sig, buf + 1, sizeof(buf) - 1));
	seed("ss-winsize", VMIC_SS_WINSIZE, 3,
	     vmic_ss_winsize_encode(&ws, buf + 1, sizeof(buf) - 1));
	snprintf(cl.reason, sizeof(cl.reason), "the client left");
	seed("ss-close", VMIC_SS_CLOSE, 4,
	     vmic_ss_close_encode(&cl, buf + 1, sizeof(buf) - 1));
	seed("ss-exit", VMIC_SS_EXIT, 5,
	     vmic_ss_exit_encode(&ex, buf + 1, sizeof(buf) - 1));
}
