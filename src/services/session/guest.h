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
#define SS_PAM_SERVICE_MAX 64
#define SS_PAM_CONFDIR_MAX 256

/* [session] keys of vmic-guestd.conf. */
struct ss_guest_conf {
	char users[SS_GUEST_USERS_MAX]; /* names sessions may run as */
	unsigned max_sessions;
	unsigned kill_grace_ms; /* SIGTERM to SIGKILL */
	char pam_service[SS_PAM_SERVICE_MAX]; /* empty: no PAM session */
	char pam_confdir[SS_PAM_CONFDIR_MAX]; /* tests: not /etc/pam.d */
};

/* The PAM session a process runs in, NULL-service when none. */
struct ss_pam_use {
	const char *service;
	const char *confdir; /* NULL or empty: the system's */
};

/* What a session's process was given (guest-spawn.c). */
struct ss_child {
	pid_t pid;     /* the process to wait for: the command, or its PAM
			  helper (guest-spawn.c) */
	pid_t pgid;    /* the command's process group, the one signalled */
	int in_fd;     /* write end of its stdin, or the pty master */
	int out_fd;    /* read end of its stdout, or the pty master */
	int err_fd;    /* read end of its stderr; -1 with a pty */
	int master;    /* the pty master (== in_fd), -1 without */
};

/*
 * Start m's command (or login shell) as `user` (already allowed), in
 * the cgroup directory `cgroup` when not NULL (its first process writes
 * itself into cgroup.procs before anything else): look
 * the user up, set groups (initgroups' list), gid, uid, a clean
 * environment (HOME, SHELL, USER, LOGNAME, PATH, TERM with a TTY, then
 * m's entries), the directory, a new session and process group, and
 * pipes or a pty. 0 with *c filled, or -errno with a sentence in err
 * (-ENOENT: no such user or command, -EACCES: not executable, the
 * directory ...).
 */
int ss_guest_spawn(const struct vmic_ss_open *m, const char *user,
		   const struct ss_pam_use *pam, const char *cgroup,
		   struct ss_child *c, char *err, size_t n);

/*
 * A cgroup v2 per session (guest-cgroup.c). Make the next free
 * vmic-session-N below the agent's own cgroup (*counter counts N): 0
 * with its directory in dir, or -errno with why it cannot (no cgroup v2,
 * not writable/delegated, ...) in why.
 */
int ss_cg_make(unsigned *counter, char *dir, size_t n, char *why,
	       size_t wn);
/* Kill every process in it: cgroup.kill, else SIGKILL each one listed. */
void ss_cg_kill(const char *dir);
/* rmdir: 0, or -EBUSY while killed processes are still being reaped. */
int ss_cg_remove(const char *dir);

/*
 * PAM (guest-pam.c), called only in a session's helper process. With a
 * PAM session the process spawned is a helper, leader of the session's
 * group, that opens the PAM session, starts the command as the user,
 * waits for it, closes the PAM session and exits as the command did.
 */
struct ss_pam;
enum ss_pam_step { SS_PAM_START = 1, SS_PAM_ACCOUNT, SS_PAM_CRED,
		   SS_PAM_SESSION };
/* Was this agent built with libpam? */
bool ss_pam_built(void);
/* The file PAM reads for `service` (in confdir when given) into path:
 * 0 when it exists, -ENOENT (path then names the expected file). */
int ss_pam_service_file(const char *service, const char *confdir,
			char *path, size_t n);
/* pam_start(_confdir), PAM_TTY, pam_acct_mgmt, pam_setcred(ESTABLISH),
 * pam_open_session: 0 with *out, or a PAM code with the step that
 * failed (everything done so far undone). */
int ss_pam_open(const char *service, const char *confdir, const char *user,
		const char *tty, struct ss_pam **out, int *step);
/* PAM's environment (pam_getenvlist: the caller owns it), or NULL. */
char **ss_pam_env(struct ss_pam *p);
/* pam_close_session, pam_setcred(DELETE), pam_end; frees p. */
void ss_pam_close(struct ss_pam *p);
const char *ss_pam_strerror(int code);

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
