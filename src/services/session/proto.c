/* SPDX-License-Identifier: MIT */
/* The session service's message table and codecs (session.h). */
#include "services/session/session.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include "common/macro.h"
#include "common/wire.h"
#include "proto/services.h"

static const struct vmic_msg_desc messages[] = {
	{ VMIC_SS_OPEN, VMIC_DIR_H2G, "session open", VMIC_SS_OPEN_MIN_LEN,
	  VMIC_SS_OPEN_MAX_LEN },
	{ VMIC_SS_STARTED, VMIC_DIR_G2H, "session started",
	  VMIC_SS_STARTED_MIN_LEN, VMIC_SS_STARTED_MAX_LEN },
	{ VMIC_SS_SIGNAL, VMIC_DIR_H2G, "session signal", VMIC_SS_SIGNAL_LEN,
	  VMIC_SS_SIGNAL_LEN },
	{ VMIC_SS_WINSIZE, VMIC_DIR_H2G, "session window size",
	  VMIC_SS_WINSIZE_LEN, VMIC_SS_WINSIZE_LEN },
	{ VMIC_SS_CLOSE, VMIC_DIR_H2G, "session close", VMIC_SS_CLOSE_MIN_LEN,
	  VMIC_SS_CLOSE_MAX_LEN },
	{ VMIC_SS_EXIT, VMIC_DIR_G2H, "session exit", VMIC_SS_EXIT_LEN,
	  VMIC_SS_EXIT_LEN },
};

/* Off by default on both sides: a shell in the guest is granted, never
 * assumed (issue 16, "Security"). */
const struct vmic_service_desc vmic_session_service = {
	.id = VMIC_SVC_SESSION,
	.name = "session",
	.display = "Direct Session",
	.min_version = 1,
	.max_version = 1,
	.default_on = false,
	.messages = messages,
	.nmessages = ARRAY_SIZE(messages),
};

static void wr_strs(struct vmic_wr *w, const struct vmic_ss_str *s,
		    uint16_t count, size_t max)
{
	vmic_wr_u16(w, count);
	for (uint16_t i = 0; i < count; i++)
		vmic_wr_strn(w, s[i].p, s[i].n, max);
}

int vmic_ss_open_encode(const struct vmic_ss_open *m, uint8_t *buf,
			size_t cap)
{
	struct vmic_wr w;

	if (m->argc > VMIC_SS_ARGC_MAX || m->envc > VMIC_SS_ENVC_MAX)
		return -EMSGSIZE;
	vmic_wr_init(&w, buf, cap < VMIC_SS_OPEN_MAX_LEN ? cap
							: VMIC_SS_OPEN_MAX_LEN);
	vmic_wr_u32(&w, m->session);
	vmic_wr_u8(&w, m->flags);
	vmic_wr_u32(&w, m->in_stream);
	vmic_wr_u32(&w, m->out_stream);
	vmic_wr_u32(&w, m->err_stream);
	vmic_wr_u32(&w, m->timeout_s);
	vmic_wr_u16(&w, m->rows);
	vmic_wr_u16(&w, m->cols);
	vmic_wr_str(&w, m->user, VMIC_SS_USER_MAX);
	vmic_wr_str(&w, m->cwd, VMIC_SS_CWD_MAX);
	vmic_wr_str(&w, m->term, VMIC_SS_TERM_MAX);
	wr_strs(&w, m->argv, m->argc, VMIC_SS_ARG_MAX);
	wr_strs(&w, m->env, m->envc, VMIC_SS_ENV_MAX);
	return w.err ? -EMSGSIZE : (int)w.off;
}

/* count strings of at most max bytes each, into out[0..limit). */
static uint16_t rd_strs(struct vmic_rd *r, struct vmic_ss_str *out,
			uint16_t limit, size_t max)
{
	uint16_t count = vmic_rd_u16(r);

	if (count > limit) {
		r->err = true;
		return 0;
	}
	for (uint16_t i = 0; i < count && !r->err; i++) {
		size_t n = 0;

		vmic_rd_str(r, max, &out[i].p, &n);
		out[i].n = (uint16_t)n;
	}
	return r->err ? 0 : count;
}

/* An environment entry is NAME=VALUE with a non-empty NAME. */
static bool env_entry_ok(const struct vmic_ss_str *s)
{
	const char *eq = memchr(s->p, '=', s->n);

	return eq && eq != s->p;
}

int vmic_ss_open_decode(const uint8_t *p, size_t n, struct vmic_ss_open *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->session = vmic_rd_u32(&r);
	m->flags = vmic_rd_u8(&r);
	m->in_stream = vmic_rd_u32(&r);
	m->out_stream = vmic_rd_u32(&r);
	m->err_stream = vmic_rd_u32(&r);
	m->timeout_s = vmic_rd_u32(&r);
	m->rows = vmic_rd_u16(&r);
	m->cols = vmic_rd_u16(&r);
	vmic_rd_strcpy(&r, VMIC_SS_USER_MAX, m->user, sizeof(m->user));
	vmic_rd_strcpy(&r, VMIC_SS_CWD_MAX, m->cwd, sizeof(m->cwd));
	vmic_rd_strcpy(&r, VMIC_SS_TERM_MAX, m->term, sizeof(m->term));
	m->argc = rd_strs(&r, m->argv, VMIC_SS_ARGC_MAX, VMIC_SS_ARG_MAX);
	m->envc = rd_strs(&r, m->env, VMIC_SS_ENVC_MAX, VMIC_SS_ENV_MAX);
	if (r.err || vmic_rd_left(&r) || n > VMIC_SS_OPEN_MAX_LEN)
		return -EBADMSG;
	if (!m->session || (m->flags & ~VMIC_SS_F_KNOWN) || !m->in_stream ||
	    !m->out_stream || m->timeout_s > VMIC_SS_TIMEOUT_MAX)
		return -EBADMSG;
	if ((m->flags & VMIC_SS_F_SHELL) ? m->argc != 0 : m->argc == 0)
		return -EBADMSG;
	if (!(m->flags & (VMIC_SS_F_TTY | VMIC_SS_F_MERGE)) && !m->err_stream)
		return -EBADMSG;
	for (uint16_t i = 0; i < m->envc; i++)
		if (!env_entry_ok(&m->env[i]))
			return -EBADMSG;
	return 0;
}

int vmic_ss_started_encode(const struct vmic_ss_started *m, uint8_t *buf,
			   size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u32(&w, m->pid);
	vmic_wr_str(&w, m->user, VMIC_SS_USER_MAX);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_ss_started_decode(const uint8_t *p, size_t n,
			   struct vmic_ss_started *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->pid = vmic_rd_u32(&r);
	vmic_rd_strcpy(&r, VMIC_SS_USER_MAX, m->user, sizeof(m->user));
	return r.err || vmic_rd_left(&r) ? -EBADMSG : 0;
}

int vmic_ss_signal_encode(const struct vmic_ss_signal *m, uint8_t *buf,
			  size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u32(&w, m->session);
	vmic_wr_u8(&w, m->signo);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_ss_signal_decode(const uint8_t *p, size_t n,
			  struct vmic_ss_signal *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->session = vmic_rd_u32(&r);
	m->signo = vmic_rd_u8(&r);
	if (r.err || vmic_rd_left(&r) || !m->session ||
	    !vmic_ss_signal_name(m->signo))
		return -EBADMSG;
	return 0;
}

int vmic_ss_winsize_encode(const struct vmic_ss_winsize *m, uint8_t *buf,
			   size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u32(&w, m->session);
	vmic_wr_u16(&w, m->rows);
	vmic_wr_u16(&w, m->cols);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_ss_winsize_decode(const uint8_t *p, size_t n,
			   struct vmic_ss_winsize *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->session = vmic_rd_u32(&r);
	m->rows = vmic_rd_u16(&r);
	m->cols = vmic_rd_u16(&r);
	return r.err || vmic_rd_left(&r) || !m->session ? -EBADMSG : 0;
}

int vmic_ss_close_encode(const struct vmic_ss_close *m, uint8_t *buf,
			 size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u32(&w, m->session);
	vmic_wr_str(&w, m->reason, VMIC_SS_REASON_MAX);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_ss_close_decode(const uint8_t *p, size_t n, struct vmic_ss_close *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->session = vmic_rd_u32(&r);
	vmic_rd_strcpy(&r, VMIC_SS_REASON_MAX, m->reason, sizeof(m->reason));
	return r.err || vmic_rd_left(&r) || !m->session ? -EBADMSG : 0;
}

int vmic_ss_exit_encode(const struct vmic_ss_exit *m, uint8_t *buf,
			size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u32(&w, m->session);
	vmic_wr_u8(&w, m->how);
	vmic_wr_u8(&w, m->value);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_ss_exit_decode(const uint8_t *p, size_t n, struct vmic_ss_exit *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->session = vmic_rd_u32(&r);
	m->how = vmic_rd_u8(&r);
	m->value = vmic_rd_u8(&r);
	if (r.err || vmic_rd_left(&r) || !m->session ||
	    m->how > VMIC_SS_EXIT_CLOSED)
		return -EBADMSG;
	if (m->how == VMIC_SS_EXIT_SIGNAL && (m->value == 0 || m->value > 64))
		return -EBADMSG;
	return 0;
}

static const struct {
	int signo;
	const char *name;
} sigs[] = {
	{ SIGHUP, "HUP" },   { SIGINT, "INT" },   { SIGQUIT, "QUIT" },
	{ SIGKILL, "KILL" }, { SIGUSR1, "USR1" }, { SIGUSR2, "USR2" },
	{ SIGTERM, "TERM" }, { SIGCONT, "CONT" }, { SIGSTOP, "STOP" },
	{ SIGTSTP, "TSTP" }, { SIGWINCH, "WINCH" },
};

const char *vmic_ss_signal_name(int signo)
{
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		if (sigs[i].signo == signo)
			return sigs[i].name;
	return NULL;
}

int vmic_ss_signal_number(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		if (strcmp(sigs[i].name, name) == 0)
			return sigs[i].signo;
	return 0;
}
