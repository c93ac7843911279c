/* SPDX-License-Identifier: MIT */
/*
 * Backup, guest half: freeze and thaw this guest's filesystems for a host
 * snapshot, and never stay frozen.
 *
 * One job at a time runs on libuv's thread pool (hooks, sync, FIFREEZE,
 * FITHAW block; the loop and its heartbeat answers never wait for them):
 * IDLE -> FREEZING -> FROZEN -> THAWING -> IDLE. While anything may be
 * frozen (from the start of a freeze to the end of its thaw) the agent's
 * log lines are held in memory (log_hold_begin) and agent_frozen() tells
 * the other services to start no disk writes.
 *
 * The guest thaws by itself: when the auto-thaw timer fires (the host's
 * timeout, at most [backup] max-timeout), when the host's session ends,
 * and when the agent is asked to exit. A thaw wanted during a freeze runs
 * as soon as the freeze is done. The host hears why in a THAWED message:
 * the reply to its THAW, or an unasked report (kept for the next session
 * when the session is gone).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "guest/service-api.h"
#include "proto/control.h"
#include "proto/services.h"
#include "services/backup/backup.h"
#include "services/backup/freezer.h"
#include "services/backup/mounts.h"
#include "services/backup/sysfreezer.h"

#define ID VMIC_SVC_BACKUP
#define LIST_MAX 4096
/* Log text held while frozen; past it lines are counted, not kept. */
#define LOG_HOLD_BYTES (64 * 1024)
#define MOUNTS_FILE "/proc/self/mounts"

/* [backup] keys. */
struct bk_guest_conf {
	char include[LIST_MAX];
	char exclude[LIST_MAX];
	unsigned timeout_ms;
	unsigned max_timeout_ms;
	char hooks_dir[VMIC_BK_PATH_MAX + 1];
	unsigned hook_timeout_ms;
};

#define STR(f)                                       \
	.type = VMIC_CONF_STRING,                    \
	.offset = offsetof(struct bk_guest_conf, f), \
	.size = sizeof(((struct bk_guest_conf *)0)->f)
#define DUR(f, lo, hi)                               \
	.type = VMIC_CONF_DURATION,                  \
	.offset = offsetof(struct bk_guest_conf, f), \
	.min = (lo), .max = (hi)

static const struct vmic_conf_key keys[] = {
	{ .section = "backup", .key = "include", STR(include),
	  .help = "comma-separated mount points: freeze only these (empty: "
		  "every local filesystem)" },
	{ .section = "backup", .key = "exclude", STR(exclude),
	  .help = "comma-separated mount points never frozen" },
	{ .section = "backup", .key = "timeout", DUR(timeout_ms, 1000, 3600000),
	  .help = "thaw by itself this long after a freeze when the host "
		  "names no timeout (1s..1h)" },
	{ .section = "backup", .key = "max-timeout",
	  DUR(max_timeout_ms, 1000, 3600000),
	  .help = "the longest auto-thaw timeout a host may ask for "
		  "(1s..1h)" },
	{ .section = "backup", .key = "hooks-dir", STR(hooks_dir),
	  .help = "scripts run with freeze, thaw or freeze-fail, in name "
		  "order" },
	{ .section = "backup", .key = "hook-timeout",
	  DUR(hook_timeout_ms, 100, 600000),
	  .help = "a hook running longer is killed and counts as failed "
		  "(100ms..10m)" },
};

static const struct vmic_conf_table conf_table = { keys, ARRAY_SIZE(keys) };

static void bk_conf_defaults(void *p)
{
	struct bk_guest_conf *c = p;

	c->timeout_ms = 60000;
	c->max_timeout_ms = 15 * 60000;
	snprintf(c->hooks_dir, sizeof(c->hooks_dir), "/etc/vmic/hooks.d");
	c->hook_timeout_ms = 30000;
}

static const struct guest_option options[] = {
	{ "freeze-only", "PATH", "include",
	  "freeze only this mount point (repeatable; tests)", true },
};

enum bk_phase { BK_IDLE, BK_FREEZING, BK_FROZEN, BK_THAWING };

struct bk_guest;

/* Work for the thread pool: everything it reads and writes is here. */
struct bk_job {
	uv_work_t work;
	struct bk_guest *st;
	bool thaw;
	struct bk_sys sys;
	char include[LIST_MAX], exclude[LIST_MAX];
	struct bk_hooks hooks;        /* freeze: found; thaw: given */
	struct vmic_bk_mounts mounts; /* freeze: chosen; thaw: frozen */
	int plan_err;
	char plan_msg[512];
	struct bk_freeze_result fr;
	struct bk_thaw_result tr;
};

/* A host request waiting for its answer: its id and session. */
struct bk_asker {
	uint32_t id;
	uint64_t nonce;
};

struct bk_guest {
	struct guestd *g;
	enum bk_phase phase;
	struct bk_job *job;
	uv_timer_t timer;
	bool stopping;
	/* while frozen: what, since when, the hooks that ran */
	struct bk_hooks hooks;
	struct vmic_bk_mounts frozen;
	uint64_t first_freeze_us;
	uint32_t granted_ms;
	/* the host's FREEZE and THAW waiting for answers */
	struct bk_asker freeze_asker, thaw_asker;
	/* a thaw wanted while freezing (why) */
	bool thaw_wanted;
	uint8_t thaw_why;
	/* a THAWED report the host has not heard (no session then) */
	bool report_due;
	struct vmic_bk_thawed report;
};

static struct bk_guest *bk_of(struct guestd *g)
{
	return agent_state(g, ID);
}

/* The connection of asker's session, or NULL when that session ended. */
static struct guest_conn *asker_conn(struct bk_guest *st,
				     const struct bk_asker *a)
{
	struct guest_conn *c = agent_conn(st->g);

	if (!a->id || !c || !agent_session_up(c) ||
	    agent_session(c)->peer_nonce != a->nonce)
		return NULL;
	return c;
}

/* The kernel's mount table, whole, into *out (malloc'd); 0 or -errno
 * with a sentence in msg. */
static int read_mount_table(char **out, char *msg, size_t n)
{
	FILE *f = fopen(MOUNTS_FILE, "re");
	size_t cap = 0;
	ssize_t len;

	*out = NULL;
	if (!f) {
		snprintf(msg, n, "cannot read %s: %s", MOUNTS_FILE,
			 strerror(errno));
		return -errno;
	}
	len = getdelim(out, &cap, '\0', f);
	fclose(f);
	if (len < 0) {
		free(*out);
		*out = NULL;
		snprintf(msg, n, "cannot read %s", MOUNTS_FILE);
		return -EIO;
	}
	return 0;
}

/* On the thread pool: the freeze (find the hooks and mounts, then the
 * engine's sequence) or the thaw. */
static void work_run(uv_work_t *w)
{
	struct bk_job *job = w->data;
	char *table;

	if (job->thaw) {
		bk_engine_thaw(&bk_sys_ops, &job->sys, &job->hooks,
			       &job->mounts, &job->tr);
		return;
	}
	job->plan_err = bk_hooks_list(job->sys.hooks_dir, &job->hooks,
				      job->plan_msg, sizeof(job->plan_msg));
	if (job->plan_err < 0)
		return;
	job->plan_err = read_mount_table(&table, job->plan_msg,
					 sizeof(job->plan_msg));
	if (job->plan_err < 0)
		return;
	job->plan_err = bk_mounts_select(table, job->include, job->exclude,
					 &job->mounts, job->plan_msg,
					 sizeof(job->plan_msg));
	free(table);
	if (job->plan_err < 0)
		return;
	bk_engine_freeze(&bk_sys_ops, &job->sys, &job->hooks, &job->mounts,
			 &job->fr);
}

static void work_done(uv_work_t *w, int status);

static int job_start(struct bk_guest *st, bool thaw)
{
	const struct bk_guest_conf *conf = agent_conf(st->g, ID);
	struct bk_job *job = calloc(1, sizeof(*job));
	int r;

	if (!job)
		return -ENOMEM;
	job->st = st;
	job->thaw = thaw;
	job->work.data = job;
	snprintf(job->sys.hooks_dir, sizeof(job->sys.hooks_dir), "%s",
		 conf->hooks_dir);
	job->sys.hook_timeout_ms = conf->hook_timeout_ms;
	if (thaw) {
		job->hooks = st->hooks;
		job->mounts = st->frozen;
	} else {
		snprintf(job->include, sizeof(job->include), "%s",
			 conf->include);
		snprintf(job->exclude, sizeof(job->exclude), "%s",
			 conf->exclude);
	}
	r = uv_queue_work(agent_loop(st->g), &job->work, work_run, work_done);
	if (r < 0) {
		free(job);
		return r;
	}
	st->job = job;
	st->phase = thaw ? BK_THAWING : BK_FREEZING;
	return 0;
}

static void thaw_done(struct bk_guest *st, struct bk_job *job);

/* No worker could take the thaw (err): it runs here, since blocking the
 * loop is better than staying frozen. */
static void thaw_here(struct bk_guest *st, int err)
{
	const struct bk_guest_conf *conf = agent_conf(st->g, ID);
	struct bk_job *job = calloc(1, sizeof(*job));
	struct bk_sys sys = { .hook_timeout_ms = conf->hook_timeout_ms };

	snprintf(sys.hooks_dir, sizeof(sys.hooks_dir), "%s", conf->hooks_dir);
	if (!job) {
		struct bk_thaw_result tr;

		bk_engine_thaw(&bk_sys_ops, &sys, &st->hooks, &st->frozen,
			       &tr);
		st->frozen.count = 0;
		st->phase = BK_IDLE;
		agent_set_frozen(st->g, false);
		log_hold_end();
	} else {
		job->thaw = true;
		job->sys = sys;
		bk_engine_thaw(&bk_sys_ops, &sys, &st->hooks, &st->frozen,
			       &job->tr);
		thaw_done(st, job);
		free(job);
	}
	log_error("backup: thawed on the event loop: cannot queue the thaw "
		  "(%s)",
		  uv_strerror(err));
}

/* Start the thaw (why), or note it for when the freeze is done. */
static void thaw_begin(struct bk_guest *st, uint8_t why)
{
	int r;

	if (st->phase == BK_FREEZING || st->phase == BK_THAWING) {
		if (st->phase == BK_FREEZING && !st->thaw_wanted) {
			st->thaw_wanted = true;
			st->thaw_why = why;
		}
		return;
	}
	if (st->phase != BK_FROZEN)
		return;
	if (!st->stopping)
		uv_timer_stop(&st->timer);
	st->thaw_why = why;
	r = job_start(st, true);
	if (r < 0)
		thaw_here(st, r);
}

static void on_auto_thaw(uv_timer_t *t)
{
	thaw_begin(t->data, VMIC_BK_WHY_TIMEOUT);
}

/* Send THAWED to whoever asked, or as a report (now or next session). */
static void send_thawed(struct bk_guest *st, const struct vmic_bk_thawed *m)
{
	uint8_t *buf = malloc(VMIC_HDR_SIZE + VMIC_BK_THAWED_MAX_LEN);
	struct guest_conn *c = asker_conn(st, &st->thaw_asker);
	struct vmic_frame f = { .service = ID };
	int n;

	if (!buf)
		return;
	n = vmic_bk_thawed_encode(m, buf + VMIC_HDR_SIZE,
				  VMIC_BK_THAWED_MAX_LEN);
	if (n >= 0 && c) {
		f.request_id = st->thaw_asker.id;
		agent_reply(c, &f, VMIC_BK_THAWED, buf, (size_t)n);
	} else if (n >= 0 && (c = agent_conn(st->g)) && agent_session_up(c)) {
		agent_send(c, buf,
			   vmic_frame_seal(buf, ID, VMIC_BK_THAWED, 0,
					   agent_request_id(c), 0, (size_t)n));
	} else if (n >= 0) {
		st->report = *m;
		st->report_due = true;
	}
	st->thaw_asker.id = 0;
	free(buf);
}

static uint32_t ms_between(uint64_t a, uint64_t b)
{
	uint64_t d = b > a ? (b - a) / 1000 : 0;

	return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

static void thaw_done(struct bk_guest *st, struct bk_job *job)
{
	struct vmic_bk_thawed *m = calloc(1, sizeof(*m));
	uint64_t dropped;

	st->phase = BK_IDLE;
	agent_set_frozen(st->g, false);
	dropped = log_hold_end();
	if (m) {
		m->reason = st->thaw_why;
		m->frozen_ms = ms_between(st->first_freeze_us,
					  job->tr.last_thaw_us);
		m->thaw_ms = job->tr.thaw_ms;
		m->hooks_ms = job->tr.hooks_ms;
		m->mounts = st->frozen;
		snprintf(m->detail, sizeof(m->detail), "%s", job->tr.output);
		if (dropped)
			bk_output_add(m->detail, sizeof(m->detail),
				      "%llu log lines dropped while frozen",
				      (unsigned long long)dropped);
	}
	log_notice("backup: thawed %u filesystem(s) (%s) after %u ms "
		   "frozen%s%s",
		   st->frozen.count, vmic_bk_why_name(st->thaw_why),
		   m ? m->frozen_ms : 0, job->tr.err ? ": " : "",
		   job->tr.err ? job->tr.output : "");
	st->frozen.count = 0;
	if (m) {
		send_thawed(st, m);
		free(m);
	}
}

static void reply_frozen(struct bk_guest *st, struct bk_job *job)
{
	struct guest_conn *c = asker_conn(st, &st->freeze_asker);
	struct vmic_frame f = { .service = ID,
				.request_id = st->freeze_asker.id };
	struct vmic_bk_frozen *m;
	uint8_t *buf;
	int n;

	st->freeze_asker.id = 0;
	if (!c)
		return;
	m = calloc(1, sizeof(*m));
	buf = malloc(VMIC_HDR_SIZE + VMIC_BK_FROZEN_MAX_LEN);
	if (m && buf) {
		m->timeout_ms = st->granted_ms;
		m->hooks_ms = job->fr.hooks_ms;
		m->sync_ms = job->fr.sync_ms;
		m->freeze_ms = job->fr.freeze_ms;
		m->mounts = st->frozen;
		snprintf(m->output, sizeof(m->output), "%s", job->fr.output);
		n = vmic_bk_frozen_encode(m, buf + VMIC_HDR_SIZE,
					  VMIC_BK_FROZEN_MAX_LEN);
		if (n >= 0)
			agent_reply(c, &f, VMIC_BK_FROZEN, buf, (size_t)n);
	}
	free(m);
	free(buf);
}

static void freeze_failed(struct bk_guest *st, struct bk_job *job)
{
	struct guest_conn *c = asker_conn(st, &st->freeze_asker);
	struct vmic_frame f = { .service = ID,
				.request_id = st->freeze_asker.id };
	const char *why = job->plan_err < 0 ? job->plan_msg : job->fr.output;

	st->phase = BK_IDLE;
	st->freeze_asker.id = 0;
	agent_set_frozen(st->g, false);
	log_hold_end();
	log_error("backup: freeze failed, nothing is frozen: %s", why);
	if (c)
		agent_reply_error(c, &f, VMIC_E_FAILED,
				  "freeze failed, nothing is frozen: %s", why);
	/* Whoever wanted a thaw meanwhile: there is nothing to thaw. */
	st->thaw_wanted = false;
	if (asker_conn(st, &st->thaw_asker)) {
		struct vmic_bk_thawed m = { .reason = VMIC_BK_WHY_HOST };

		send_thawed(st, &m);
	}
}

static void freeze_done(struct bk_guest *st, struct bk_job *job)
{
	if (job->plan_err < 0 || job->fr.err < 0) {
		freeze_failed(st, job);
		return;
	}
	st->phase = BK_FROZEN;
	st->hooks = job->hooks;
	st->frozen = job->fr.frozen;
	st->first_freeze_us = job->fr.first_freeze_us;
	if (!st->stopping)
		uv_timer_start(&st->timer, on_auto_thaw, st->granted_ms, 0);
	reply_frozen(st, job);
	if (st->thaw_wanted || st->stopping) {
		st->thaw_wanted = false;
		thaw_begin(st, st->stopping ? VMIC_BK_WHY_AGENT_STOP
					    : st->thaw_why);
	}
}

static void work_done(uv_work_t *w, int status)
{
	struct bk_job *job = w->data;
	struct bk_guest *st = job->st;

	(void)status;
	st->job = NULL;
	if (job->thaw)
		thaw_done(st, job);
	else
		freeze_done(st, job);
	free(job);
}

static uint32_t grant(const struct bk_guest_conf *conf, uint32_t asked)
{
	if (!asked)
		asked = conf->timeout_ms;
	return asked > conf->max_timeout_ms ? conf->max_timeout_ms : asked;
}

static int on_freeze(struct bk_guest *st, struct guest_conn *c,
		     const struct vmic_frame *f)
{
	struct vmic_bk_freeze req;
	int r;

	if (vmic_bk_freeze_decode(f->payload, f->length, &req) < 0)
		return agent_reply_error(c, f, VMIC_E_MALFORMED,
					 "backup freeze does not decode "
					 "(unknown flags?)");
	if (st->stopping)
		return agent_reply_error(c, f, VMIC_E_NOT_READY,
					 "the agent is stopping");
	if (st->phase != BK_IDLE)
		return agent_reply_error(c, f, VMIC_E_BUSY,
					 "already %s; thaw first",
					 st->phase == BK_THAWING ? "thawing"
								 : "frozen");
	st->granted_ms = grant(agent_conf(st->g, ID), req.timeout_ms);
	/* From here until the thaw, nothing of ours reaches a disk. */
	log_notice("backup: freezing for at most %u ms (host request)",
		   st->granted_ms);
	log_hold_begin(LOG_HOLD_BYTES);
	agent_set_frozen(st->g, true);
	r = job_start(st, false);
	if (r < 0) {
		agent_set_frozen(st->g, false);
		log_hold_end();
		return agent_reply_error(c, f, VMIC_E_INTERNAL,
					 "cannot start the freeze: %s",
					 uv_strerror(r));
	}
	st->freeze_asker = (struct bk_asker){
		f->request_id, agent_session(c)->peer_nonce
	};
	return 0;
}

static int on_thaw_request(struct bk_guest *st, struct guest_conn *c,
			   const struct vmic_frame *f)
{
	struct vmic_bk_thawed none = { .reason = VMIC_BK_WHY_HOST };
	uint8_t flags;

	if (vmic_bk_thaw_decode(f->payload, f->length, &flags) < 0)
		return agent_reply_error(c, f, VMIC_E_MALFORMED,
					 "backup thaw does not decode "
					 "(unknown flags?)");
	if (st->thaw_asker.id && asker_conn(st, &st->thaw_asker))
		return agent_reply_error(c, f, VMIC_E_BUSY,
					 "a thaw is already under way");
	st->thaw_asker = (struct bk_asker){ f->request_id,
					    agent_session(c)->peer_nonce };
	if (st->phase == BK_IDLE) {
		send_thawed(st, &none);
		return 0;
	}
	thaw_begin(st, VMIC_BK_WHY_HOST);
	return 0;
}

static int bk_on_frame(struct guest_conn *c, const struct vmic_frame *f)
{
	struct bk_guest *st = bk_of(agent_of(c));

	if (f->type == VMIC_BK_FREEZE)
		return on_freeze(st, c, f);
	if (f->type == VMIC_BK_THAW)
		return on_thaw_request(st, c, f);
	return 0;
}

/* The host's session ended: it cannot own a thaw any more. */
static void bk_on_session(struct guest_conn *c, bool up)
{
	struct bk_guest *st = bk_of(agent_of(c));

	if (!st)
		return;
	if (!up) {
		thaw_begin(st, VMIC_BK_WHY_SESSION);
		return;
	}
	if (st->report_due) {
		st->report_due = false;
		send_thawed(st, &st->report);
	}
}

static int bk_start(struct guestd *g)
{
	struct bk_guest *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	st->g = g;
	uv_timer_init(agent_loop(g), &st->timer);
	st->timer.data = st;
	agent_set_state(g, ID, st);
	return 0;
}

static void timer_closed(uv_handle_t *h)
{
	(void)h;
}

/* The agent exits: thaw first (the loop runs until the job is done). */
static void bk_stop(struct guestd *g)
{
	struct bk_guest *st = bk_of(g);

	st->stopping = true;
	thaw_begin(st, VMIC_BK_WHY_AGENT_STOP);
	uv_close((uv_handle_t *)&st->timer, timer_closed);
}

static void bk_pending(struct guestd *g, char *buf, size_t n)
{
	struct bk_guest *st = bk_of(g);

	if (st->job)
		snprintf(buf, n, "backup: a %s job",
			 st->job->thaw ? "thaw" : "freeze");
	else
		buf[0] = '\0';
}

const struct guest_service backup_guest = {
	.desc = &vmic_backup_service,
	.enabled_help = "let the host freeze this guest's filesystems for "
			"a consistent snapshot",
	.conf = &conf_table,
	.conf_size = sizeof(struct bk_guest_conf),
	.conf_defaults = bk_conf_defaults,
	.start = bk_start,
	.stop = bk_stop,
	.pending = bk_pending,
	.on_session = bk_on_session,
	.on_frame = bk_on_frame,
	.options = options,
	.noptions = ARRAY_SIZE(options),
};
