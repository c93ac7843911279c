/* SPDX-License-Identifier: MIT */
/*
 * Direct Session, guest half: the sessions themselves. Each one is a
 * process in a new session and process group, its stdin sunk from the
 * host's stream and its stdout and stderr pumped into the host's streams
 * (transport/fdstream.h: flow control end to end, no cap).
 *
 * The end: when the process exits, whatever is left of its group gets
 * SIGTERM and, kill-grace later, SIGKILL, and output streams still open
 * then are cut; when stdout and stderr are finished, EXIT goes to the
 * host. A timeout, the host's CLOSE and the end of the host's session do
 * the same with SIGTERM first. Where the agent's cgroup (v2) is
 * writable, each session has a cgroup of its own (guest-cgroup.c),
 * killed whole with the SIGKILL and at the end, which reaches processes
 * that left the group with setsid(); elsewhere they are out of reach.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <termios.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "proto/services.h"
#include "services/session/guest.h"

#define ID VMIC_SVC_SESSION

struct ss_session {
	struct ss_session *next;
	struct ss_guest *owner;
	uint32_t id;          /* the host's */
	uint64_t peer_nonce;  /* the host session that opened it */
	struct ss_child child;
	struct vmic_fdstream *in, *out, *err;
	uv_timer_t *timeout;  /* its --timeout, NULL without */
	uv_timer_t *grace;    /* SIGTERM to SIGKILL, NULL until the end */
	bool exited;          /* reaped: status holds its wait status */
	int status;
	bool timed_out, closed, killed;
	bool helper_graced;   /* the PAM helper's own grace time began */
	char user[VMIC_SS_USER_MAX + 1];
	char cgroup[512]; /* its cgroup's directory, empty without */
};

struct ss_guest {
	struct guestd *g;
	uv_signal_t sigchld;
	struct ss_session *list;
	unsigned count;
	bool pam_missing_said; /* the service file's absence, logged once */
	unsigned cg_counter;   /* N of the last vmic-session-N */
	bool cg_said;          /* the fallback to process groups, logged */
};

/* Kill what is left in the session's cgroup and remove it. The killed
 * leave it within moments (an exited task leaves its cgroup before it
 * is reaped): a few short tries, then a warning naming what stays. */
static void cgroup_end(struct ss_session *s)
{
	const struct timespec ms = { 0, 1000000 };
	int r = 0;

	if (!s->cgroup[0])
		return;
	for (int i = 0; i < 50; i++) {
		ss_cg_kill(s->cgroup);
		r = ss_cg_remove(s->cgroup);
		if (r != -EBUSY)
			break;
		nanosleep(&ms, NULL);
	}
	if (r < 0)
		log_warning("session %u: cannot remove its cgroup %s: %s",
			    s->id, s->cgroup, strerror(-r));
	s->cgroup[0] = '\0';
}

static void timer_closed(uv_handle_t *h)
{
	free(h);
}

static void timer_drop(uv_timer_t **t)
{
	if (*t) {
		uv_close((uv_handle_t *)*t, timer_closed);
		*t = NULL;
	}
}

static uv_timer_t *timer_new(struct ss_session *s, uv_timer_cb cb,
			     uint64_t ms)
{
	uv_timer_t *t = malloc(sizeof(*t));

	if (!t)
		return NULL;
	uv_timer_init(agent_loop(s->owner->g), t);
	t->data = s;
	uv_timer_start(t, cb, ms, 0);
	return t;
}

static struct ss_session *find(struct ss_guest *sg, uint32_t id)
{
	for (struct ss_session *s = sg->list; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static void unlink_session(struct ss_session *s)
{
	struct ss_session **pp = &s->owner->list;

	while (*pp && *pp != s)
		pp = &(*pp)->next;
	if (*pp)
		*pp = s->next;
	s->owner->count--;
}

/* The host that opened it still listens: it hears the end. */
static struct guest_conn *host_of(struct ss_session *s)
{
	struct guest_conn *c = agent_conn(s->owner->g);

	if (!c || !agent_session_up(c) ||
	    agent_session(c)->peer_nonce != s->peer_nonce)
		return NULL;
	return c;
}

static void send_exit(struct ss_session *s)
{
	struct guest_conn *c = host_of(s);
	uint8_t buf[VMIC_HDR_SIZE + VMIC_SS_EXIT_LEN];
	struct vmic_ss_exit m = { .session = s->id };
	struct vmic_frame f = { .service = ID, .type = VMIC_SS_EXIT };
	int n;

	if (!c)
		return;
	f.request_id = agent_request_id(c);
	if (s->timed_out) {
		m.how = VMIC_SS_EXIT_TIMEOUT;
	} else if (s->closed) {
		m.how = VMIC_SS_EXIT_CLOSED;
	} else if (WIFSIGNALED(s->status)) {
		m.how = VMIC_SS_EXIT_SIGNAL;
		m.value = (uint8_t)WTERMSIG(s->status);
	} else {
		m.how = VMIC_SS_EXIT_STATUS;
		m.value = (uint8_t)WEXITSTATUS(s->status);
	}
	n = vmic_ss_exit_encode(&m, buf + VMIC_HDR_SIZE, VMIC_SS_EXIT_LEN);
	f.length = (uint32_t)n;
	f.payload = buf + VMIC_HDR_SIZE;
	vmic_frame_put_header(buf, &f);
	agent_send(c, buf, VMIC_HDR_SIZE + (size_t)n);
}

static void session_free(struct ss_session *s)
{
	const char *how = s->timed_out ? "timed out"
			  : s->closed  ? "closed by the host"
				       : "ended";

	if (s->in)
		vmic_fdstream_cancel(s->in, VMIC_E_FAILED, "session ended");
	timer_drop(&s->timeout);
	timer_drop(&s->grace);
	if (s->child.master >= 0)
		close(s->child.master);
	cgroup_end(s);
	log_info("session %u (pid %d, user %s) %s, wait status 0x%x", s->id,
		 (int)s->child.pid, s->user, how, (unsigned)s->status);
	unlink_session(s);
	free(s);
}

/* Exited and both output streams done: tell the host, forget it. */
static void maybe_finish(struct ss_session *s)
{
	if (!s->exited || s->out || s->err)
		return;
	send_exit(s);
	session_free(s);
}

static void group_kill(struct ss_session *s, int sig)
{
	if (kill(-s->child.pgid, sig) < 0 && errno != ESRCH)
		log_warning("session %u: kill(-%d, %d): %s", s->id,
			 (int)s->child.pgid, sig, strerror(errno));
}

static void on_grace(uv_timer_t *t);

/* A PAM helper (pid apart from the command's group) still running after
 * its command's SIGKILL is closing the PAM session: one more kill-grace
 * for that, then SIGKILL, so a PAM module that hangs cannot keep the
 * session (and the host) waiting for ever. */
static void helper_grace(struct ss_session *s)
{
	const struct ss_guest_conf *conf = agent_conf(s->owner->g, ID);

	if (s->child.pid == s->child.pgid)
		return;
	if (s->helper_graced) {
		log_warning("session %u: its PAM helper (pid %d) did not end "
			    "after its command; killed without closing the "
			    "PAM session", s->id, (int)s->child.pid);
		kill(s->child.pid, SIGKILL);
		return;
	}
	s->helper_graced = true;
	s->grace = timer_new(s, on_grace, conf->kill_grace_ms);
}

/* kill-grace after SIGTERM: SIGKILL what is left and stop waiting for
 * output that a process outside the group may hold open. */
static void on_grace(uv_timer_t *t)
{
	struct ss_session *s = t->data;

	group_kill(s, SIGKILL);
	/* Those that left the group too; not while a PAM helper (in the
	 * cgroup) still has the PAM session to close: the next grace
	 * after its exit comes here again. */
	if (s->exited)
		ss_cg_kill(s->cgroup);
	s->killed = true;
	timer_drop(&s->grace);
	if (!s->exited) {
		helper_grace(s);
		return; /* the leader's SIGCHLD comes next */
	}
	if (s->out) {
		vmic_fdstream_cancel(s->out, VMIC_E_FAILED, "session ended");
		s->out = NULL;
	}
	if (s->err) {
		vmic_fdstream_cancel(s->err, VMIC_E_FAILED, "session ended");
		s->err = NULL;
	}
	maybe_finish(s);
}

/* End the group: SIGHUP (for shells), SIGTERM and SIGCONT now, SIGKILL
 * after the grace time, which also bounds the wait for output held open
 * by processes outside the group. */
static void session_end_group(struct ss_session *s)
{
	const struct ss_guest_conf *conf = agent_conf(s->owner->g, ID);

	if (kill(-s->child.pgid, 0) == 0) {
		group_kill(s, SIGHUP);
		group_kill(s, SIGTERM);
		group_kill(s, SIGCONT);
	}
	if (!s->grace)
		s->grace = timer_new(s, on_grace, conf->kill_grace_ms);
}

static void on_timeout(uv_timer_t *t)
{
	struct ss_session *s = t->data;

	timer_drop(&s->timeout);
	if (s->exited)
		return;
	log_notice("session %u (pid %d): its timeout passed; ending its "
		   "process group", s->id, (int)s->child.pid);
	s->timed_out = true;
	session_end_group(s);
}

static void on_sigchld(uv_signal_t *h, int signum)
{
	struct ss_guest *sg = h->data;
	struct ss_session *s, *next;

	(void)signum;
	for (s = sg->list; s; s = next) {
		int status;
		pid_t r;

		next = s->next;
		if (s->exited)
			continue;
		r = waitpid(s->child.pid, &status, WNOHANG);
		if (r != s->child.pid)
			continue;
		s->exited = true;
		s->status = status;
		timer_drop(&s->timeout);
		/* No process of the session outlives it. */
		session_end_group(s);
		maybe_finish(s);
	}
}

/* ---- streams ---- */

static void on_in_done(void *ud, struct vmic_fdstream *f, int err,
		       uint16_t code, const char *message)
{
	struct ss_session *s = ud;

	(void)f;
	(void)code;
	/* The helper closed its duplicate: the command reads EOF. A pty's
	 * master stays open (the output pump holds it), so EOF is ^D. */
	if (err && err != -EPIPE)
		log_debug("session %u: stdin stream: %s", s->id, message);
	if (err == 0 && s->child.master >= 0) {
		static const char eof = 4;

		if (write(s->child.master, &eof, 1) < 0) {
			/* The terminal is gone already. */
		}
	}
	s->in = NULL;
}

static void on_out_done(void *ud, struct vmic_fdstream *f, int err,
			uint16_t code, const char *message)
{
	struct ss_session *s = ud;

	(void)code;
	if (err)
		log_debug("session %u: output stream: %s", s->id, message);
	if (f == s->out)
		s->out = NULL;
	else if (f == s->err)
		s->err = NULL;
	maybe_finish(s);
}

static const struct vmic_fdstream_ops in_ops = { .on_done = on_in_done };
static const struct vmic_fdstream_ops out_ops = { .on_done = on_out_done };

/* Open the three streams on the host's ids; the descriptors are the
 * helpers' from now on (each works on its own duplicate). */
static int open_streams(struct ss_session *s, struct guest_conn *c,
			const struct vmic_ss_open *m)
{
	struct vmic_link *l = agent_link(c);
	int r;

	r = vmic_fdstream_sink(l, m->in_stream, ID, s->child.in_fd, NULL,
			       &in_ops, s, &s->in);
	if (r == 0)
		r = vmic_fdstream_pump(l, m->out_stream, ID, s->child.out_fd,
				       NULL, &out_ops, s, &s->out);
	if (r == 0 && s->child.err_fd >= 0)
		r = vmic_fdstream_pump(l, m->err_stream, ID, s->child.err_fd,
				       NULL, &out_ops, s, &s->err);
	/* The pty master stays the session's (window size, ^D at EOF). */
	if (s->child.master < 0) {
		close(s->child.in_fd);
		close(s->child.out_fd);
	}
	if (s->child.err_fd >= 0)
		close(s->child.err_fd);
	s->child.in_fd = s->child.out_fd = s->child.err_fd = -1;
	return r;
}

/* ---- requests of the host ---- */

static int reply_started(struct guest_conn *c, const struct vmic_frame *f,
			 struct ss_session *s)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_SS_STARTED_MAX_LEN];
	struct vmic_ss_started m = { .pid = (uint32_t)s->child.pgid };
	int n;

	snprintf(m.user, sizeof(m.user), "%s", s->user);
	n = vmic_ss_started_encode(&m, buf + VMIC_HDR_SIZE,
				   VMIC_SS_STARTED_MAX_LEN);
	if (n < 0)
		return 0;
	return agent_reply(c, f, VMIC_SS_STARTED, buf, (size_t)n);
}

/* Policy: the session count, the id, the user. 0, or an error frame
 * was sent (its result in *r). */
static bool admit(struct ss_guest *sg, struct guest_conn *c,
		  const struct vmic_frame *f, const struct vmic_ss_open *m,
		  char *user, size_t usz, int *r)
{
	const struct ss_guest_conf *conf = agent_conf(sg->g, ID);

	if (sg->count >= conf->max_sessions) {
		*r = agent_reply_error(c, f, VMIC_E_BUSY,
				       "the guest runs %u sessions already, "
				       "its [session] max-sessions; end one "
				       "or raise it in %s",
				       sg->count, agent_config_path(sg->g));
		return false;
	}
	if (find(sg, m->session)) {
		*r = agent_reply_error(c, f, VMIC_E_MALFORMED,
				       "session %u is open already",
				       m->session);
		return false;
	}
	if (m->user[0])
		snprintf(user, usz, "%s", m->user);
	else
		ss_guest_first_user(conf->users, user, usz);
	if (!user[0] || !ss_guest_user_allowed(conf->users, user)) {
		*r = agent_reply_error(
			c, f, VMIC_E_REFUSED,
			"%s%s%s may not run sessions in this guest: [session] "
			"users of %s lists %s%s",
			user[0] ? "user '" : "no user", user,
			user[0] ? "'" : "", agent_config_path(sg->g),
			conf->users[0] ? conf->users : "nobody",
			conf->users[0] ? "" : " (add names to allow them)");
		return false;
	}
	return true;
}

/* The PAM session to open, NULL for none: no libpam, no service named,
 * or its file missing (then run without, said once: failing would make
 * every session fail on guests that never installed the file). */
static const struct ss_pam_use *pam_use(struct ss_guest *sg,
					struct ss_pam_use *use)
{
	const struct ss_guest_conf *conf = agent_conf(sg->g, ID);
	char path[SS_PAM_CONFDIR_MAX + SS_PAM_SERVICE_MAX + 32];

	if (!ss_pam_built() || !conf->pam_service[0])
		return NULL;
	if (ss_pam_service_file(conf->pam_service, conf->pam_confdir, path,
				sizeof(path)) < 0) {
		if (!sg->pam_missing_said)
			log_warning("session: %s does not exist: this session "
				    "and the next run without a PAM session",
				    path);
		sg->pam_missing_said = true;
		return NULL;
	}
	sg->pam_missing_said = false;
	use->service = conf->pam_service;
	use->confdir = conf->pam_confdir;
	return use;
}

/* The session's cgroup, or none (said once: the fallback is the
 * process group alone). */
static void make_cgroup(struct ss_guest *sg, struct ss_session *s)
{
	char why[640];

	if (ss_cg_make(&sg->cg_counter, s->cgroup, sizeof(s->cgroup), why,
		       sizeof(why)) == 0) {
		if (!sg->cg_said)
			log_notice("session: each session runs in a cgroup "
				   "of its own, e.g. %s", s->cgroup);
		sg->cg_said = true;
		return;
	}
	if (!sg->cg_said)
		log_notice("session: no cgroup per session (%s): a session "
			   "ends with its process group only, and a process "
			   "that left it with setsid outlives it", why);
	sg->cg_said = true;
}

static int start_session(struct ss_guest *sg, struct guest_conn *c,
			 const struct vmic_frame *f,
			 const struct vmic_ss_open *m, const char *user)
{
	struct ss_session *s = calloc(1, sizeof(*s));
	char err[512], text[256];
	struct ss_pam_use pam;
	int r;

	if (!s)
		return agent_reply_error(c, f, VMIC_E_INTERNAL,
					 "out of memory");
	s->owner = sg;
	s->id = m->session;
	s->peer_nonce = agent_session(c)->peer_nonce;
	snprintf(s->user, sizeof(s->user), "%s", user);
	make_cgroup(sg, s);
	r = ss_guest_spawn(m, user, pam_use(sg, &pam), s->cgroup, &s->child,
			   err, sizeof(err));
	if (r < 0) {
		cgroup_end(s);
		free(s);
		log_warning("session %u as %s: %s", m->session, user, err);
		return agent_reply_error(c, f, VMIC_E_FAILED, "%s", err);
	}
	s->next = sg->list;
	sg->list = s;
	sg->count++;
	r = open_streams(s, c, m);
	if (r < 0) {
		agent_stream_error_text(c, r, text, sizeof(text));
		s->closed = true;
		if (s->out)
			vmic_fdstream_cancel(s->out, VMIC_E_FAILED, text);
		if (s->err)
			vmic_fdstream_cancel(s->err, VMIC_E_FAILED, text);
		s->out = s->err = NULL;
		session_end_group(s);
		return agent_reply_error(c, f, r == -EMFILE ? VMIC_E_BUSY
							    : VMIC_E_FAILED,
					 "%s", text);
	}
	if (m->timeout_s)
		s->timeout = timer_new(s, on_timeout,
				       (uint64_t)m->timeout_s * 1000);
	log_info("session %u: pid %d runs as %s%s", s->id, (int)s->child.pid,
		 user, (m->flags & VMIC_SS_F_SHELL) ? " (login shell)" : "");
	return reply_started(c, f, s);
}

int ss_guest_open(struct ss_guest *sg, struct guest_conn *c,
		  const struct vmic_frame *f)
{
	struct vmic_ss_open *m = malloc(sizeof(*m));
	char user[VMIC_SS_USER_MAX + 1];
	int r = 0;

	if (!m)
		return agent_reply_error(c, f, VMIC_E_INTERNAL,
					 "out of memory");
	if (vmic_ss_open_decode(f->payload, f->length, m) < 0)
		r = agent_reply_error(c, f, VMIC_E_MALFORMED,
				      "session open does not decode");
	else if (admit(sg, c, f, m, user, sizeof(user), &r))
		r = start_session(sg, c, f, m, user);
	free(m);
	return r;
}

void ss_guest_signal(struct ss_guest *sg, const struct vmic_ss_signal *m)
{
	struct ss_session *s = find(sg, m->session);

	if (s && !s->exited)
		group_kill(s, m->signo);
}

void ss_guest_winsize(struct ss_guest *sg, const struct vmic_ss_winsize *m)
{
	struct ss_session *s = find(sg, m->session);
	struct winsize ws = { .ws_row = m->rows, .ws_col = m->cols };

	if (s && s->child.master >= 0)
		ioctl(s->child.master, TIOCSWINSZ, &ws);
}

static void close_one(struct ss_session *s)
{
	s->closed = true;
	if (s->in) {
		vmic_fdstream_cancel(s->in, VMIC_E_FAILED, "session closed");
		s->in = NULL;
	}
	session_end_group(s);
}

void ss_guest_close(struct ss_guest *sg, uint32_t id, const char *reason)
{
	struct ss_session *s = find(sg, id);

	if (!s)
		return;
	log_info("session %u closed by the host: %s", id, reason);
	close_one(s);
}

void ss_guest_host_gone(struct ss_guest *sg)
{
	for (struct ss_session *s = sg->list; s; s = s->next) {
		if (s->closed)
			continue;
		log_notice("session %u (pid %d): the host went away; ending "
			   "its process group", s->id, (int)s->child.pid);
		close_one(s);
	}
}

/* ---- the service's state ---- */

struct ss_guest *ss_guest_new(struct guestd *g)
{
	struct ss_guest *sg = calloc(1, sizeof(*sg));

	if (!sg)
		return NULL;
	sg->g = g;
	uv_signal_init(agent_loop(g), &sg->sigchld);
	sg->sigchld.data = sg;
	uv_signal_start(&sg->sigchld, on_sigchld, SIGCHLD);
	return sg;
}

/* The agent exits: every session's group is killed at once (nobody will
 * wait for a grace time), the leaders reaped. */
void ss_guest_free(struct ss_guest *sg)
{
	while (sg->list) {
		struct ss_session *s = sg->list;

		kill(-s->child.pgid, SIGKILL);
		if (!s->exited)
			waitpid(s->child.pid, NULL, 0);
		if (s->in)
			vmic_fdstream_cancel(s->in, VMIC_E_FAILED, "agent exits");
		if (s->out)
			vmic_fdstream_cancel(s->out, VMIC_E_FAILED,
					     "agent exits");
		if (s->err)
			vmic_fdstream_cancel(s->err, VMIC_E_FAILED,
					     "agent exits");
		s->in = s->out = s->err = NULL;
		s->exited = true;
		session_free(s);
	}
	uv_close((uv_handle_t *)&sg->sigchld, NULL);
}
