/* SPDX-License-Identifier: MIT */
/*
 * Direct Session, guest half: what its files share. guest.c is the
 * service entry and its configuration, guest-spawn.c starts a session's
 * process as its user, guest-session.c runs one session (streams, exit,
 * timeout, the end of its process group).
 */
#ifndef VMIC_SERVICES_SESSION_GUEST_H
#define VMIC_SERVICES_SESSION_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "guest/service-api.h"
#include "services/session/session.h"

#define SS_GUEST_USERS_MAX 1024

/* [session] keys of vmic-guestd.conf. */
struct ss_guest_conf {
	char users[SS_GUEST_USERS_MAX]; /* names sessions may run as */
	unsigned max_sessions;
	unsigned kill_grace_ms; /* SIGTERM to SIGKILL */
};

/* What a session's process was given (guest-spawn.c). */
struct ss_child {
	pid_t pid;     /* also its process group and session */
	int in_fd;     /* write end of its stdin, or the pty master */
	int out_fd;    /* read end of its stdout, or the pty master */
	int err_fd;    /* read end of its stderr; -1 with a pty */
	int master;    /* the pty master (== in_fd), -1 without */
};

/*
 * Start m's command (or login shell) as `user` (already allowed): look
 * the user up, set groups (initgroups' list), gid, uid, a clean
 * environment (HOME, SHELL, USER, LOGNAME, PATH, TERM with a TTY, then
 * m's entries), the directory, a new session and process group, and
 * pipes or a pty. 0 with *c filled, or -errno with a sentence in err
 * (-ENOENT: no such user or command, -EACCES: not executable, the
 * directory ...).
 */
int ss_guest_spawn(const struct vmic_ss_open *m, const char *user,
		   struct ss_child *c, char *err, size_t n);

/* The agent's sessions (guest-session.c). */
struct ss_guest;

/* Service state: every live session, the SIGCHLD watch. */
struct ss_guest *ss_guest_new(struct guestd *g);
void ss_guest_free(struct ss_guest *s);
/* Requests of the host (already gated and checked by the table). */
int ss_guest_open(struct ss_guest *s, struct guest_conn *c,
		  const struct vmic_frame *f);
void ss_guest_signal(struct ss_guest *s, const struct vmic_ss_signal *m);
void ss_guest_winsize(struct ss_guest *s, const struct vmic_ss_winsize *m);
void ss_guest_close(struct ss_guest *s, uint32_t id, const char *reason);
/* The session with the host ended: end every session's processes. */
void ss_guest_host_gone(struct ss_guest *s);
/* Is `name` in the space- or comma-separated list? The first one in
 * first (empty when the list is). */
bool ss_guest_user_allowed(const char *list, const char *name);
void ss_guest_first_user(const char *list, char *out, size_t n);

#endif
