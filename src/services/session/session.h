/* SPDX-License-Identifier: MIT */
/*
 * Direct Session service messages (service 7, version 1): a command or a
 * login shell in the guest, its stdin, stdout and stderr carried as
 * streams of the link (docs/protocol.md, "Session").
 *
 * OPEN    host -> guest, request: run a command.
 *         u32 session (the host's id, != 0), u8 flags (VMIC_SS_F_*),
 *         u32 stdin stream, u32 stdout stream, u32 stderr stream (the
 *         host's stream ids; stderr 0 with a TTY or MERGE), u32 timeout (seconds,
 *         0 none), u16 rows, u16 cols (the TTY's size), str user (empty:
 *         the first allowed), str cwd (empty: the user's home), str term
 *         (TERM with a TTY), u16 argc, argc x str (empty with SHELL),
 *         u16 envc, envc x str "NAME=VALUE".
 * STARTED guest -> host, reply to OPEN: u32 pid, str user (who it runs
 *         as). An error frame instead when it cannot start.
 * SIGNAL  host -> guest: u32 session, u8 signal number (one of
 *         vmic_ss_signal_name's), for the session's process group.
 * WINSIZE host -> guest: u32 session, u16 rows, u16 cols.
 * CLOSE   host -> guest: u32 session, str reason: the host gave the
 *         session up; the guest ends its processes.
 * EXIT    guest -> host: u32 session, u8 how (VMIC_SS_EXIT_*), u8 value
 *         (the exit status or the signal): the command ended and its
 *         output streams were finished first (their END may still be in
 *         flight behind this frame).
 */
#ifndef VMIC_SERVICES_SESSION_H
#define VMIC_SERVICES_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

enum vmic_session_type {
	VMIC_SS_OPEN = 1,
	VMIC_SS_STARTED = 2,
	VMIC_SS_SIGNAL = 3,
	VMIC_SS_WINSIZE = 4,
	VMIC_SS_CLOSE = 5,
	VMIC_SS_EXIT = 6,
};

#define VMIC_SS_F_TTY 0x01   /* a pseudo-terminal, stdout and stderr one */
#define VMIC_SS_F_SHELL 0x02 /* the user's login shell, no argv */
#define VMIC_SS_F_MERGE 0x04 /* stderr goes where stdout goes (2>&1) */
#define VMIC_SS_F_KNOWN (VMIC_SS_F_TTY | VMIC_SS_F_SHELL | VMIC_SS_F_MERGE)

enum vmic_session_exit {
	VMIC_SS_EXIT_STATUS = 0,   /* exited with value */
	VMIC_SS_EXIT_SIGNAL = 1,   /* killed by signal value */
	VMIC_SS_EXIT_TIMEOUT = 2,  /* its timeout passed; the group killed */
	VMIC_SS_EXIT_CLOSED = 3,   /* ended by CLOSE or the session's end */
};

/* Bounds of OPEN (each checked by the decoder). */
#define VMIC_SS_USER_MAX 32
#define VMIC_SS_CWD_MAX 4096
#define VMIC_SS_TERM_MAX 64
#define VMIC_SS_ARGC_MAX 1024
#define VMIC_SS_ARG_MAX 32768
#define VMIC_SS_ENVC_MAX 128
#define VMIC_SS_ENV_MAX 4096
#define VMIC_SS_REASON_MAX 256
/* A timeout of at most 30 days. */
#define VMIC_SS_TIMEOUT_MAX (30u * 24 * 3600)
#define VMIC_SS_OPEN_MIN_LEN (4 + 1 + 4 * 4 + 2 + 2 + 2 * 3 + 2 + 2)
#define VMIC_SS_OPEN_MAX_LEN (64u * 1024)
#define VMIC_SS_STARTED_MIN_LEN (4 + 2)
#define VMIC_SS_STARTED_MAX_LEN (4 + 2 + VMIC_SS_USER_MAX)
#define VMIC_SS_SIGNAL_LEN (4 + 1)
#define VMIC_SS_WINSIZE_LEN (4 + 2 + 2)
#define VMIC_SS_CLOSE_MIN_LEN (4 + 2)
#define VMIC_SS_CLOSE_MAX_LEN (4 + 2 + VMIC_SS_REASON_MAX)
#define VMIC_SS_EXIT_LEN (4 + 1 + 1)

/* A string inside a received payload: not terminated. */
struct vmic_ss_str {
	const char *p;
	uint16_t n;
};

/* OPEN, decoded. The argv and env strings point into the payload. */
struct vmic_ss_open {
	uint32_t session;
	uint8_t flags;
	uint32_t in_stream, out_stream, err_stream;
	uint32_t timeout_s;
	uint16_t rows, cols;
	char user[VMIC_SS_USER_MAX + 1];
	char cwd[VMIC_SS_CWD_MAX + 1];
	char term[VMIC_SS_TERM_MAX + 1];
	uint16_t argc, envc;
	struct vmic_ss_str argv[VMIC_SS_ARGC_MAX];
	struct vmic_ss_str env[VMIC_SS_ENVC_MAX];
};

struct vmic_ss_started {
	uint32_t pid;
	char user[VMIC_SS_USER_MAX + 1];
};

struct vmic_ss_signal {
	uint32_t session;
	uint8_t signo;
};

struct vmic_ss_winsize {
	uint32_t session;
	uint16_t rows, cols;
};

struct vmic_ss_close {
	uint32_t session;
	char reason[VMIC_SS_REASON_MAX + 1];
};

struct vmic_ss_exit {
	uint32_t session;
	uint8_t how;
	uint8_t value;
};

/* Encoders: the payload's length, or -EMSGSIZE when it does not fit cap
 * or a field is over its bound. */
int vmic_ss_open_encode(const struct vmic_ss_open *m, uint8_t *buf,
			size_t cap);
int vmic_ss_started_encode(const struct vmic_ss_started *m, uint8_t *buf,
			   size_t cap);
int vmic_ss_signal_encode(const struct vmic_ss_signal *m, uint8_t *buf,
			  size_t cap);
int vmic_ss_winsize_encode(const struct vmic_ss_winsize *m, uint8_t *buf,
			   size_t cap);
int vmic_ss_close_encode(const struct vmic_ss_close *m, uint8_t *buf,
			 size_t cap);
int vmic_ss_exit_encode(const struct vmic_ss_exit *m, uint8_t *buf,
			size_t cap);

/* Decoders: 0, or -EBADMSG when short, long, not UTF-8, a string holds
 * a NUL, a count or bound is exceeded, a flag or value is unknown, or a
 * session id is 0. OPEN also refuses a SHELL with arguments, a command
 * without them, and a stdin or stdout stream id of 0. */
int vmic_ss_open_decode(const uint8_t *p, size_t n, struct vmic_ss_open *m);
int vmic_ss_started_decode(const uint8_t *p, size_t n,
			   struct vmic_ss_started *m);
int vmic_ss_signal_decode(const uint8_t *p, size_t n,
			  struct vmic_ss_signal *m);
int vmic_ss_winsize_decode(const uint8_t *p, size_t n,
			   struct vmic_ss_winsize *m);
int vmic_ss_close_decode(const uint8_t *p, size_t n, struct vmic_ss_close *m);
int vmic_ss_exit_decode(const uint8_t *p, size_t n, struct vmic_ss_exit *m);

/* "INT" for SIGINT: the signals a session may be sent; NULL for others. */
const char *vmic_ss_signal_name(int signo);
/* The number of a name vmic_ss_signal_name gives ("INT"), or 0. */
int vmic_ss_signal_number(const char *name);

#endif
