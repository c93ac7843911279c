/* SPDX-License-Identifier: MIT */
/*
 * Direct Session, guest half: the PAM session of a session's process.
 * These calls run in the session's helper process (guest-spawn.c), never
 * in the agent: PAM modules change the calling process (pam_limits sets
 * its limits, pam_systemd moves it into a logind scope), so that process
 * must be the one that becomes the session, as with login(1) and su(1).
 * Built only where libpam is (VMIC_HAVE_PAM); elsewhere every call says
 * PAM is not in this build.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "services/session/guest.h"

bool ss_pam_built(void)
{
#ifdef VMIC_HAVE_PAM
	return true;
#else
	return false;
#endif
}

int ss_pam_service_file(const char *service, const char *confdir,
			char *path, size_t n)
{
	/* Linux-PAM reads /etc/pam.d first, then the vendor directory. */
	static const char *const dirs[] = { "/etc/pam.d", "/usr/lib/pam.d" };
	struct stat st;

	if (!path || !n)
		return -EINVAL;
	if (confdir && confdir[0]) {
		snprintf(path, n, "%s/%s", confdir, service);
		return stat(path, &st) == 0 ? 0 : -ENOENT;
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, n, "%s/%s", dirs[i], service);
		if (stat(path, &st) == 0)
			return 0;
	}
	snprintf(path, n, "/etc/pam.d/%s", service);
	return -ENOENT;
}

#ifdef VMIC_HAVE_PAM
#include <security/pam_appl.h>

struct ss_pam {
	pam_handle_t *h;
	bool cred, open;
};

/* Nobody answers prompts: a stack that asks for a password fails (the
 * host's user is already authorized); its messages go to stderr, which
 * is the session's. */
static int conv(int num, const struct pam_message **msg,
		struct pam_response **resp, void *ud)
{
	(void)ud;
	*resp = NULL;
	for (int i = 0; i < num; i++) {
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF ||
		    msg[i]->msg_style == PAM_PROMPT_ECHO_ON)
			return PAM_CONV_ERR;
	}
	for (int i = 0; i < num; i++)
		if (msg[i]->msg)
			dprintf(2, "%s\n", msg[i]->msg);
	*resp = calloc((size_t)num, sizeof(**resp));
	return *resp ? PAM_SUCCESS : PAM_BUF_ERR;
}

static const struct pam_conv the_conv = { conv, NULL };

static int start(const char *service, const char *confdir, const char *user,
		 pam_handle_t **h)
{
	if (confdir && confdir[0]) {
#ifdef VMIC_HAVE_PAM_CONFDIR
		return pam_start_confdir(service, user, &the_conv, confdir, h);
#else
		return PAM_SYSTEM_ERR; /* caught at start: see guest.c */
#endif
	}
	return pam_start(service, user, &the_conv, h);
}

int ss_pam_open(const char *service, const char *confdir, const char *user,
		const char *tty, struct ss_pam **out, int *step)
{
	struct ss_pam *p = calloc(1, sizeof(*p));
	int r;

	*step = SS_PAM_START;
	if (!p)
		return PAM_BUF_ERR;
	r = start(service, confdir, user, &p->h);
	if (r == PAM_SUCCESS && tty && tty[0])
		r = pam_set_item(p->h, PAM_TTY, tty);
	if (r == PAM_SUCCESS) {
		*step = SS_PAM_ACCOUNT;
		r = pam_acct_mgmt(p->h, PAM_SILENT);
	}
	if (r == PAM_SUCCESS) {
		*step = SS_PAM_CRED;
		r = pam_setcred(p->h, PAM_ESTABLISH_CRED);
		p->cred = r == PAM_SUCCESS;
	}
	if (r == PAM_SUCCESS) {
		*step = SS_PAM_SESSION;
		r = pam_open_session(p->h, 0);
		p->open = r == PAM_SUCCESS;
	}
	if (r != PAM_SUCCESS) {
		ss_pam_close(p);
		return r;
	}
	*out = p;
	return 0;
}

char **ss_pam_env(struct ss_pam *p)
{
	return pam_getenvlist(p->h);
}

void ss_pam_close(struct ss_pam *p)
{
	if (!p)
		return;
	if (p->h) {
		int r = PAM_SUCCESS;

		if (p->open)
			r = pam_close_session(p->h, 0);
		if (p->cred)
			pam_setcred(p->h, PAM_DELETE_CRED);
		pam_end(p->h, r);
	}
	free(p);
}

const char *ss_pam_strerror(int code)
{
	return pam_strerror(NULL, code);
}

#else /* !VMIC_HAVE_PAM */

int ss_pam_open(const char *service, const char *confdir, const char *user,
		const char *tty, struct ss_pam **out, int *step)
{
	(void)service, (void)confdir, (void)user, (void)tty;
	*out = NULL;
	*step = SS_PAM_START;
	return 1;
}

char **ss_pam_env(struct ss_pam *p)
{
	(void)p;
	return NULL;
}

void ss_pam_close(struct ss_pam *p)
{
	(void)p;
}

const char *ss_pam_strerror(int code)
{
	(void)code;
	return "this vmic-guestd was built without libpam";
}

#endif
