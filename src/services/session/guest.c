/* SPDX-License-Identifier: MIT */
/*
 * Direct Session, guest half: the service entry, its [session] keys, and
 * the host's messages handed to the sessions (guest-session.c). Off by
 * default; runs sessions only as the users [session] users lists.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "proto/services.h"
#include "services/session/guest.h"

#define ID VMIC_SVC_SESSION
#define FIELD(f) offsetof(struct ss_guest_conf, f)

/* A PAM service is a file name in /etc/pam.d: letters, digits, '.',
 * '_', '-', not starting with '.' (no path, nothing hidden). */
static int parse_pam_service(const char *value, void *field, char *err,
			     size_t n)
{
	size_t len = strlen(value);

	if (len >= SS_PAM_SERVICE_MAX) {
		snprintf(err, n, "at most %d bytes", SS_PAM_SERVICE_MAX - 1);
		return -EINVAL;
	}
	if (value[0] == '.' ||
	    strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			  "0123456789._-") != len) {
		snprintf(err, n, "'%s' is not a PAM service name (a file name "
			 "in /etc/pam.d: letters, digits, '.', '_', '-', not "
			 "starting with '.'; empty: no PAM session)", value);
		return -EINVAL;
	}
	snprintf(field, SS_PAM_SERVICE_MAX, "%s", value);
	return 0;
}

static const struct vmic_conf_key keys[] = {
	{ .section = "session", .key = "users", .type = VMIC_CONF_STRING,
	  .offset = FIELD(users), .size = SS_GUEST_USERS_MAX,
	  .help = "users sessions may run as, separated by spaces or commas; "
		  "the first is the default (empty: none; root only if listed)" },
	{ .section = "session", .key = "max-sessions", .type = VMIC_CONF_UINT,
	  .offset = FIELD(max_sessions), .min = 1, .max = 1024,
	  .help = "sessions that may run at once (1..1024)" },
	{ .section = "session", .key = "kill-grace",
	  .type = VMIC_CONF_DURATION, .offset = FIELD(kill_grace_ms),
	  .min = 100, .max = 60000,
	  .help = "from SIGTERM to SIGKILL when a session's processes are "
		  "ended (100ms..1m)" },
	{ .section = "session", .key = "pam-service", .type = VMIC_CONF_CUSTOM,
	  .offset = FIELD(pam_service), .size = SS_PAM_SERVICE_MAX,
	  .parse = parse_pam_service, .format = vmic_conf_format_string,
	  .help = "PAM service of each session (/etc/pam.d/NAME; empty: no "
		  "PAM session; a missing file: none, with a warning)" },
	{ .section = "session", .key = "pam-confdir", .type = VMIC_CONF_STRING,
	  .offset = FIELD(pam_confdir), .size = SS_PAM_CONFDIR_MAX,
	  .help = "for tests only: read PAM services from this directory "
		  "instead of /etc/pam.d (empty: the system's)" },
};

static const struct vmic_conf_table conf_table = { keys, ARRAY_SIZE(keys) };

static void ss_conf_defaults(void *p)
{
	struct ss_guest_conf *c = p;

	c->users[0] = '\0';
	c->max_sessions = 32;
	c->kill_grace_ms = 2000;
	snprintf(c->pam_service, sizeof(c->pam_service), "vmic");
	c->pam_confdir[0] = '\0';
}

/* Walk the names of a list separated by spaces, tabs or commas. */
static const char *next_name(const char *p, size_t *len)
{
	static const char sep[] = " \t,";

	p += strspn(p, sep);
	*len = strcspn(p, sep);
	return *len ? p : NULL;
}

bool ss_guest_user_allowed(const char *list, const char *name)
{
	size_t len, nlen = strlen(name);

	for (const char *p = next_name(list, &len); p;
	     p = next_name(p + len, &len))
		if (len == nlen && memcmp(p, name, len) == 0)
			return true;
	return false;
}

void ss_guest_first_user(const char *list, char *out, size_t n)
{
	size_t len;
	const char *p = next_name(list, &len);

	snprintf(out, n, "%.*s", p ? (int)len : 0, p ? p : "");
}

static int ss_on_frame(struct guest_conn *c, const struct vmic_frame *f)
{
	struct ss_guest *sg = agent_state(agent_of(c), ID);
	union {
		struct vmic_ss_signal sig;
		struct vmic_ss_winsize ws;
		struct vmic_ss_close close;
	} m;

	switch (f->type) {
	case VMIC_SS_OPEN:
		return ss_guest_open(sg, c, f);
	case VMIC_SS_SIGNAL:
		if (vmic_ss_signal_decode(f->payload, f->length, &m.sig) == 0)
			ss_guest_signal(sg, &m.sig);
		else
			log_warning("session: a signal message does not "
				    "decode; ignored");
		return 0;
	case VMIC_SS_WINSIZE:
		if (vmic_ss_winsize_decode(f->payload, f->length, &m.ws) == 0)
			ss_guest_winsize(sg, &m.ws);
		return 0;
	case VMIC_SS_CLOSE:
		if (vmic_ss_close_decode(f->payload, f->length, &m.close) == 0)
			ss_guest_close(sg, m.close.session, m.close.reason);
		return 0;
	}
	return 0;
}

static void ss_on_session(struct guest_conn *c, bool up)
{
	struct ss_guest *sg = agent_state(agent_of(c), ID);

	if (!up && sg)
		ss_guest_host_gone(sg);
}

/* What PAM will do, said once at start (a missing service file is said
 * again at the first session that runs without it). */
static void pam_notice(const struct ss_guest_conf *conf)
{
	char path[SS_PAM_CONFDIR_MAX + SS_PAM_SERVICE_MAX + 32];

	if (!ss_pam_built()) {
		log_notice("session: PAM is not used: this vmic-guestd was "
			   "built without libpam (pam_limits, logind do not "
			   "see sessions)");
		return;
	}
	if (!conf->pam_service[0]) {
		log_notice("session: PAM is not used ([session] pam-service "
			   "is empty)");
		return;
	}
#ifndef VMIC_HAVE_PAM_CONFDIR
	if (conf->pam_confdir[0])
		log_warning("session: [session] pam-confdir needs Linux-PAM "
			    "1.4 or later; sessions will fail at pam_start");
#endif
	if (ss_pam_service_file(conf->pam_service, conf->pam_confdir, path,
				sizeof(path)) < 0)
		log_warning("session: %s does not exist: sessions run without "
			    "a PAM session until it does (create it, or set "
			    "[session] pam-service to an existing service or "
			    "to nothing)", path);
	else
		log_notice("session: each session opens a PAM session of "
			   "service '%s' (%s)", conf->pam_service, path);
}

static int ss_start(struct guestd *g)
{
	const struct ss_guest_conf *conf = agent_conf(g, ID);
	struct ss_guest *sg = ss_guest_new(g);

	if (!sg)
		return -ENOMEM;
	agent_set_state(g, ID, sg);
	/* Said once at start, so nobody relies on what this build lacks. */
	log_notice("session: sessions run as [session] users (%s)",
		   conf->users[0] ? conf->users
				  : "none listed: every session is refused");
	pam_notice(conf);
	return 0;
}

static void ss_stop(struct guestd *g)
{
	struct ss_guest *sg = agent_state(g, ID);

	if (sg)
		ss_guest_free(sg);
}

const struct guest_service session_guest = {
	.desc = &vmic_session_service,
	.enabled_help = "let the host run commands and shells in this guest "
			"(vmic exec, vmic shell) as the users listed below",
	.conf = &conf_table,
	.conf_size = sizeof(struct ss_guest_conf),
	.conf_defaults = ss_conf_defaults,
	.start = ss_start,
	.stop = ss_stop,
	.on_session = ss_on_session,
	.on_frame = ss_on_frame,
};
