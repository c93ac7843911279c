/* SPDX-License-Identifier: MIT */
/*
 * Time synchronisation, guest half.
 *
 * The agent runs one cycle per interval once the host has sent its
 * settings (and none before: a host that disabled the service, or no host
 * at all, means no timer). A cycle picks the mode (env.c: chronyd, a PTP
 * device, the host's policy), measures, acts, and reports:
 *
 * - measure: over the channel, a burst of `burst` SAMPLE exchanges sent
 *   back to back, keeping the one with the smallest round trip (the least
 *   queueing, so the most symmetric); or one reading of the PTP device;
 * - act: channel and ptp modes step or slew the clock (discipline.c);
 *   chrony-sock mode sends the sample to chronyd's refclock socket and
 *   leaves the clock alone; report and chrony-phc modes only measure;
 * - report: a REPORT to the host, as the answer to its SETTINGS or SYNC
 *   when the cycle ran for one of those.
 *
 * Wake-ups: one timer per cycle plus one read per sample of the burst
 * (a sample timer is armed while a sample is out, and fires only when
 * the host does not answer). The interval starts at min-interval and
 * doubles up to max-interval while the offsets stay calm; chrony-sock
 * mode keeps min-interval, the steady feed chronyd's filter wants.
 *
 * Someone else setting the clock (date -s, a restored snapshot's RTC
 * read) is noticed at once, without polling: a timerfd armed with
 * TFD_TIMER_CANCEL_ON_SET becomes readable when CLOCK_REALTIME is set, and
 * the agent runs a cycle then (reason clock-set), skipping the event its
 * own step caused.
 *
 * Every clock access goes through guest/clock.h, so with
 * --simulated-clock the same code runs without touching the machine.
 *
 * The host is not trusted with the clock beyond reason: no offset past
 * [timesync] max-step (or before the agent's build date) is acted on,
 * and steps spend at most max-step a day (discipline.h); the refusal is
 * the cycle's REPORT (action failed, the detail says why), so the host's
 * `vmic time` shows it. SYNC requests are taken at most SYNC_BURST at
 * once and one per SYNC_REFILL_MS after that; the others are answered
 * busy. Lines a host can provoke (steps, refusals, busy syncs) are
 * rate-limited.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/ratelimit.h"
#include "common/safe-file.h"
#include "common/saturate.h"
#include "guest/service-api.h"
#include "proto/control.h"
#include "proto/frame.h"
#include "proto/services.h"
#include "services/timesync/chrony.h"
#include "services/timesync/discipline.h"
#include "services/timesync/env.h"
#include "services/timesync/ptp.h"
#include "services/timesync/timesync.h"

#define ID VMIC_SVC_TIMESYNC
/* A sample the host does not answer in this time is lost. */
#define SAMPLE_TIMEOUT_MS 1000
#define BURST_MAX 16
/* SYNC requests: this many at once, then one per SYNC_REFILL_MS. */
#define SYNC_BURST 4
#define SYNC_REFILL_MS 15000
/* At most one line per interval about steps, and about refusals. */
#define STEP_LOG_EVERY_MS 10000
#define REFUSE_LOG_EVERY_MS 60000
#define ENV_LOG_EVERY_MS 600000
/* [timesync] max-step: default a year, at most a century. */
#define MAX_STEP_DEFAULT_S (365ull * 86400)
#define MAX_STEP_MAX_S (36500ull * 86400)
#define NSEC_PER_S 1000000000LL

/* [timesync] keys of vmic-guestd.conf. */
struct ts_conf {
	unsigned min_interval_ms;
	unsigned max_interval_ms;
	unsigned burst;
	uint64_t max_step_s;
	char chrony_socket[TS_PATH_MAX];
	char chrony_pid_file[TS_PATH_MAX];
	char ptp_device[TS_PATH_MAX];
};

#define CONF(f) offsetof(struct ts_conf, f)
#define STR(f) .type = VMIC_CONF_STRING, .offset = CONF(f), \
	       .size = sizeof(((struct ts_conf *)0)->f)

static const struct vmic_conf_key keys[] = {
	{ .section = "timesync", .key = "min-interval",
	  .type = VMIC_CONF_DURATION, .offset = CONF(min_interval_ms),
	  .min = 1000, .max = 3600000,
	  .help = "shortest time between two measurements (1s..1h)" },
	{ .section = "timesync", .key = "max-interval",
	  .type = VMIC_CONF_DURATION, .offset = CONF(max_interval_ms),
	  .min = 1000, .max = 86400000,
	  .help = "the interval doubles up to this while the clock is calm "
		  "(1s..1d)" },
	{ .section = "timesync", .key = "burst", .type = VMIC_CONF_UINT,
	  .offset = CONF(burst), .min = 1, .max = BURST_MAX,
	  .help = "exchanges per measurement; the fastest one counts "
		  "(1..16)" },
	{ .section = "timesync", .key = "max-step", .type = VMIC_CONF_SECONDS,
	  .offset = CONF(max_step_s), .min = 1, .max = MAX_STEP_MAX_S,
	  .help = "the largest offset acted on, and the most steps move "
		  "the clock in a day (1s..36500d)" },
	{ .section = "timesync", .key = "chrony-socket", STR(chrony_socket),
	  .help = "chronyd's `refclock SOCK` path the agent feeds" },
	{ .section = "timesync", .key = "chrony-pid-file",
	  STR(chrony_pid_file),
	  .help = "where chronyd writes its PID (tells whether it runs)" },
	{ .section = "timesync", .key = "ptp-device", STR(ptp_device),
	  .help = "auto (the hypervisor's PTP clock), none, or a device "
		  "path" },
};

static const struct vmic_conf_table conf_table = { keys, ARRAY_SIZE(keys) };

static void ts_conf_defaults(void *p)
{
	struct ts_conf *c = p;

	c->min_interval_ms = 2000;
	c->max_interval_ms = 32000;
	c->burst = 4;
	c->max_step_s = MAX_STEP_DEFAULT_S;
	snprintf(c->chrony_socket, sizeof(c->chrony_socket), "%s",
		 "/run/chrony/vmic.sock");
	snprintf(c->chrony_pid_file, sizeof(c->chrony_pid_file), "%s",
		 "/run/chrony/chronyd.pid");
	snprintf(c->ptp_device, sizeof(c->ptp_device), "%s", "auto");
}

/* The best sample of a burst. */
struct ts_sample {
	int64_t offset_ns, delay_ns;
	int64_t mid_ns;  /* guest clock halfway through the exchange */
	int64_t mono_ns; /* monotonic time it was taken */
	uint8_t source;
};

struct ts_state {
	struct guestd *g;
	uv_timer_t timer; /* next cycle, or the sample timeout */
	bool have_settings;
	struct vmic_ts_settings set;
	/* the cycle */
	bool measuring;
	unsigned left;       /* samples still to send in this burst */
	unsigned got;
	uint32_t sample_id;  /* the SAMPLE out, 0 when none */
	int64_t t1;
	struct ts_sample best;
	uint8_t mode;
	char detail[VMIC_TS_DETAIL_MAX + 1];
	struct ts_env env;
	/* what the cycle answers: a SETTINGS or SYNC request of the host */
	uint32_t answer_id;
	uint64_t answer_nonce;
	uint8_t reason;
	bool force, allow_back;
	struct ts_disc disc;
	int64_t build_ns; /* guest_clock_build_ns() */
	/* SYNC requests' bucket, and the lines a host can provoke */
	double sync_tokens;
	uint64_t sync_tokens_at_ms;
	uint64_t syncs_refused;
	struct vmic_ratelimit step_log, refuse_log, sync_log, env_log;
	int chrony_fd;
	unsigned failures; /* cycles in a row without a sample */
	/* the clock-set watch (real clock only) */
	int set_fd;
	uv_poll_t set_poll;
	bool set_poll_open;
	unsigned own_steps; /* clock-set events our own steps will cause */
};

static struct ts_state *state_of(struct guestd *g)
{
	return agent_state(g, ID);
}

static const struct ts_conf *conf_of(struct guestd *g)
{
	return agent_conf(g, ID);
}

static int64_t mono_ns(void)
{
	return (int64_t)uv_hrtime();
}

static void ts_cycle(struct ts_state *st);

/* Give up the SAMPLE that waits, if any: its answer is no use now. */
static void drop_sample(struct ts_state *st)
{
	struct guest_conn *c = agent_conn(st->g);

	if (st->sample_id && c)
		agent_request_cancel(c, st->sample_id);
	st->sample_id = 0;
}

static void on_timer(uv_timer_t *t)
{
	struct ts_state *st = t->data;

	if (st->measuring) {
		/* The sample timed out: use what the burst has. */
		drop_sample(st);
		st->left = 0;
	}
	ts_cycle(st);
}

static void schedule(struct ts_state *st, unsigned ms)
{
	uv_timer_start(&st->timer, on_timer, ms, 0);
}

static struct ts_disc_config disc_config(const struct ts_state *st)
{
	const struct ts_conf *c = conf_of(st->g);

	return (struct ts_disc_config){
		.step_threshold_ns = (int64_t)st->set.step_threshold_ms *
				     1000000,
		.step_backward = st->set.flags & VMIC_TS_SET_STEP_BACKWARD,
		.min_interval_ms = c->min_interval_ms,
		.max_interval_ms = MAX(c->min_interval_ms, c->max_interval_ms),
		.max_step_ns = (int64_t)c->max_step_s * NSEC_PER_S,
		.build_ns = st->build_ns,
	};
}

/* Send the REPORT of this cycle: the answer to the host's request, or
 * unasked. */
static void send_report(struct ts_state *st, struct vmic_ts_report *m)
{
	struct guest_conn *c = agent_conn(st->g);
	uint8_t buf[VMIC_HDR_SIZE + VMIC_TS_REPORT_MAX_LEN];
	struct vmic_frame req = { .service = ID };
	int n;

	if (!c || !agent_session_up(c))
		return;
	n = vmic_ts_report_encode(m, buf + VMIC_HDR_SIZE,
				  VMIC_TS_REPORT_MAX_LEN);
	if (n < 0)
		return;
	if (st->answer_id &&
	    agent_session(c)->peer_nonce == st->answer_nonce) {
		req.request_id = st->answer_id;
		agent_reply(c, &req, VMIC_TS_REPORT, buf, (size_t)n);
	} else {
		/* Unasked: an id, but nothing waits for an answer (the host
		 * answers only a report that does not decode). */
		agent_send(c, buf,
			   vmic_frame_seal(buf, ID, VMIC_TS_REPORT, 0,
					   agent_request_id(c), 0,
					   (size_t)n));
	}
	st->answer_id = 0;
}

static void fill_report(struct ts_state *st, struct vmic_ts_report *m,
			uint8_t action, int64_t step_ns, unsigned interval_ms)
{
	struct guest_clock *clk = agent_clock(st->g);

	memset(m, 0, sizeof(*m));
	m->mode = st->mode;
	m->action = action;
	m->source = st->got ? st->best.source : VMIC_TS_SRC_NONE;
	m->reason = st->reason;
	m->flags = (clk->simulated ? VMIC_TS_REP_SIMULATED : 0) |
		   (st->env.chrony_running ? VMIC_TS_REP_CHRONY : 0) |
		   (st->env.ptp_present ? VMIC_TS_REP_PTP : 0);
	m->offset_ns = st->got ? st->best.offset_ns : 0;
	m->delay_ns = st->got ? st->best.delay_ns : 0;
	m->step_ns = step_ns;
	m->guest_ns = guest_clock_now(clk);
	m->freq_ppb = (int32_t)st->disc.freq_ppb;
	m->interval_ms = interval_ms;
	snprintf(m->detail, sizeof(m->detail), "%s", st->detail);
}

/* "365d": [timesync] max-step as the config file spells it. */
static void format_max_step(const struct ts_state *st, char *buf, size_t n)
{
	vmic_conf_format_u64(VMIC_CONF_SECONDS, conf_of(st->g)->max_step_s,
			     buf, n);
}

/* An offset the sanity bound refuses (discipline.h): say why in the
 * report's detail, and now and then in the log. */
static uint8_t refuse(struct ts_state *st, enum ts_disc_refusal why,
		      int64_t budget_ns)
{
	double off_s = (double)st->best.offset_ns / 1e9;
	char max[32];
	uint64_t held;

	format_max_step(st, max, sizeof(max));
	switch (why) {
	case TS_REFUSE_PAST:
		snprintf(st->detail, sizeof(st->detail),
			 "refused an offset of %+.3f s: it would set the clock "
			 "before this agent was built; the clock is left alone",
			 off_s);
		break;
	case TS_REFUSE_BUDGET:
		snprintf(st->detail, sizeof(st->detail),
			 "refused a step of %+.3f s: steps may move the clock "
			 "by [timesync] max-step (%s) a day, %.3f s of it is "
			 "left; the clock is left alone",
			 off_s, max, (double)budget_ns / 1e9);
		break;
	default:
		snprintf(st->detail, sizeof(st->detail),
			 "refused an offset of %+.3f s: beyond [timesync] "
			 "max-step (%s) of the guest's vmic-guestd.conf; the "
			 "clock is left alone",
			 off_s, max);
		break;
	}
	if (vmic_ratelimit_pass(&st->refuse_log, uv_now(agent_loop(st->g)),
				&held))
		log_warning("timesync: %s (%s)%s", st->detail,
			    vmic_ts_reason_name(st->reason),
			    held ? " (and earlier refusals)" : "");
	return VMIC_TS_ACT_FAILED;
}

static void log_step(struct ts_state *st, const struct ts_disc_out *out)
{
	uint64_t held;

	if (out->unset)
		log_notice("timesync: the clock read before this agent was "
			   "built (it was never set): stepping it to the "
			   "host's time whatever max-step says");
	if (!vmic_ratelimit_pass(&st->step_log, uv_now(agent_loop(st->g)),
				 &held))
		return;
	if (held)
		log_info("timesync: stepped the clock by %+.6f s (%s, %s; %" PRIu64
			 " more steps since the last line)",
			 (double)out->step_ns / 1e9,
			 vmic_ts_reason_name(st->reason),
			 vmic_ts_mode_name(st->mode), held);
	else
		log_info("timesync: stepped the clock by %+.6f s (%s, %s)",
			 (double)out->step_ns / 1e9,
			 vmic_ts_reason_name(st->reason),
			 vmic_ts_mode_name(st->mode));
}

/* Step and slew by the discipline's verdict; the action taken. */
static uint8_t discipline(struct ts_state *st, int64_t *step_ns,
			  unsigned *interval_ms, bool *back_refused)
{
	struct ts_disc_config cfg = disc_config(st);
	struct guest_clock *clk = agent_clock(st->g);
	struct ts_disc_out out;
	int r = 0;

	ts_disc_update(&st->disc, &cfg, st->best.mono_ns, st->best.mid_ns,
		       st->best.offset_ns, st->best.delay_ns, st->force,
		       st->allow_back, &out);
	*interval_ms = out.interval_ms;
	*back_refused = out.back_refused;
	if (out.action == TS_DISC_REFUSE)
		return refuse(st, out.refused, out.budget_ns);
	if (out.action == TS_DISC_STEP) {
		r = guest_clock_step(clk, out.step_ns);
		if (r == 0 && !clk->simulated)
			st->own_steps++;
	}
	if (r == 0)
		r = guest_clock_set_freq(clk, out.freq_ppb);
	if (r < 0) {
		snprintf(st->detail, sizeof(st->detail),
			 "the clock refused the correction: %s", strerror(-r));
		log_warning("timesync: %s", st->detail);
		ts_disc_reset(&st->disc);
		*interval_ms = cfg.min_interval_ms;
		return VMIC_TS_ACT_FAILED;
	}
	ts_disc_applied(&st->disc, &out, mono_ns());
	if (out.action == TS_DISC_STEP) {
		*step_ns = out.step_ns;
		log_step(st, &out);
		return VMIC_TS_ACT_STEPPED;
	}
	if (out.back_refused && !st->detail[0])
		snprintf(st->detail, sizeof(st->detail),
			 "the clock is %.3f s ahead; stepping back is off "
			 "(step-backward), so it is slewed",
			 (double)vmic_sat_neg64(st->best.offset_ns) / 1e9);
	return VMIC_TS_ACT_SLEWED;
}

/* Feed chronyd: the sample at its midpoint, the clock left alone. An
 * offset the sanity bound refuses is not passed on either. */
static uint8_t feed_chrony(struct ts_state *st)
{
	const struct ts_conf *c = conf_of(st->g);
	struct ts_disc_config cfg = disc_config(st);
	enum ts_disc_refusal why;
	bool unset;
	int r;

	why = ts_disc_sane(&cfg, st->best.mid_ns, st->best.offset_ns, &unset);
	if (why != TS_REFUSE_NONE)
		return refuse(st, why, 0);
	r = st->chrony_fd < 0 ? -EBADF
			      : ts_chrony_send(st->chrony_fd, c->chrony_socket,
					       guest_clock_to_system(
						       agent_clock(st->g),
						       st->best.mid_ns),
					       st->best.offset_ns);
	if (r < 0) {
		snprintf(st->detail, sizeof(st->detail),
			 "cannot send to chronyd at %.160s: %s", c->chrony_socket,
			 strerror(-r));
		return VMIC_TS_ACT_FAILED;
	}
	return VMIC_TS_ACT_FED;
}

/* The cycle has its sample (or none): act on it, report, sleep. */
static void ts_finish(struct ts_state *st)
{
	struct ts_disc_config cfg = disc_config(st);
	struct vmic_ts_report m;
	unsigned interval = cfg.min_interval_ms;
	int64_t step = 0;
	bool refused = false;
	uint8_t action;

	st->measuring = false;
	if (!st->got) {
		action = VMIC_TS_ACT_FAILED;
		if (!st->detail[0])
			snprintf(st->detail, sizeof(st->detail),
				 "no sample: the host did not answer within "
				 "%d ms",
				 SAMPLE_TIMEOUT_MS);
		if (st->failures++ == 0)
			log_warning("timesync: %s", st->detail);
	} else {
		st->failures = 0;
		switch (st->mode) {
		case VMIC_TS_MODE_CHANNEL:
		case VMIC_TS_MODE_PTP:
			action = discipline(st, &step, &interval, &refused);
			break;
		case VMIC_TS_MODE_CHRONY_SOCK:
			action = feed_chrony(st);
			break;
		default:
			action = VMIC_TS_ACT_MEASURED;
			interval = ts_disc_observe(&st->disc, &cfg,
						   st->best.offset_ns,
						   st->best.delay_ns);
			break;
		}
	}
	fill_report(st, &m, action, step, interval);
	if (refused)
		m.flags |= VMIC_TS_REP_BACK_REFUSED;
	if (agent_clock(st->g)->simulated)
		log_debug("timesync: offset %+" PRId64 " ns delay %" PRId64
			  " ns mode %s action %s freq %+d ppb; simulated "
			  "clock: true error %+" PRId64 " ns",
			  m.offset_ns, m.delay_ns, vmic_ts_mode_name(m.mode),
			  vmic_ts_action_name(action), m.freq_ppb,
			  guest_clock_true_error(agent_clock(st->g)));
	else
		log_debug("timesync: offset %+" PRId64 " ns delay %" PRId64
			  " ns mode %s action %s freq %+d ppb",
			  m.offset_ns, m.delay_ns, vmic_ts_mode_name(m.mode),
			  vmic_ts_action_name(action), m.freq_ppb);
	send_report(st, &m);
	st->force = st->allow_back = false;
	st->reason = VMIC_TS_REASON_REGULAR;
	schedule(st, interval);
}

static int on_reply(struct ts_state *st, const struct vmic_frame *f);

/*
 * The host's answer to our SAMPLE. An error answer (the host turned the
 * service off, or is stopping) is only logged, and so is the end of the
 * wait: the cycle's timer notes the missing sample and reports it.
 */
static bool on_sample_answer(struct guest_conn *c, void *ud,
			     const struct vmic_frame *f, int err UNUSED)
{
	struct ts_state *st = ud;
	struct vmic_error e;

	if (!f || st != state_of(agent_of(c)))
		return false;
	if (f->type == VMIC_TS_SAMPLE_REPLY)
		on_reply(st, f);
	else if (f->type == VMIC_T_ERROR &&
		 vmic_error_decode(f->payload, f->length, &e) == 0)
		log_debug("timesync: the host answered %s: %s",
			  vmic_error_name(e.code), e.message);
	return false;
}

static void send_sample(struct ts_state *st)
{
	struct guest_conn *c = agent_conn(st->g);
	uint8_t buf[VMIC_HDR_SIZE + VMIC_TS_SAMPLE_LEN];

	st->left--;
	drop_sample(st);
	st->t1 = guest_clock_now(agent_clock(st->g));
	vmic_ts_sample_encode(st->t1, buf + VMIC_HDR_SIZE, VMIC_TS_SAMPLE_LEN);
	schedule(st, SAMPLE_TIMEOUT_MS);
	/* The tracker's deadline is the cycle timer's too: whichever fires
	 * first, the sample is given up once. */
	if (agent_request_send(c, ID, VMIC_TS_SAMPLE, buf, VMIC_TS_SAMPLE_LEN,
			       SAMPLE_TIMEOUT_MS, on_sample_answer, st,
			       &st->sample_id) < 0) {
		st->sample_id = 0;
		st->left = 0;
	}
}

/* One reading of the PTP device; false when it has none to give. */
static bool measure_ptp(struct ts_state *st)
{
	struct ts_ptp_reading r;
	char err[VMIC_TS_DETAIL_MAX];

	if (ts_ptp_read(agent_clock(st->g), st->env.ptp_path,
			conf_of(st->g)->burst, &r, err, sizeof(err)) < 0) {
		snprintf(st->detail, sizeof(st->detail), "%.200s; using the channel",
			 err);
		return false;
	}
	st->best = (struct ts_sample){ r.offset_ns, r.delay_ns, r.sys_ns,
				       mono_ns(), VMIC_TS_SRC_PTP };
	st->got = 1;
	return true;
}

/* Is there a session, and does everyone agree the service runs? */
static bool ts_can_run(struct ts_state *st)
{
	struct guest_conn *c = agent_conn(st->g);
	uint16_t code;

	return c && agent_session_up(c) && st->have_settings &&
	       !guest_service_refusal(c, ID, &code);
}

/* A pid file that is not read is worth a line now and then. */
static void note_env(struct ts_state *st, const struct ts_env_paths *paths)
{
	uint64_t held;

	if (st->env.pid_file_err &&
	    vmic_ratelimit_pass(&st->env_log, uv_now(agent_loop(st->g)), &held))
		log_warning("timesync: [timesync] chrony-pid-file %s is not "
			    "read: %s; chronyd is taken as not running",
			    paths->chrony_pid_file,
			    vmic_file_strerror(st->env.pid_file_err));
}

/* The next step of a cycle: start it, send the next sample, or end it. */
static void ts_cycle(struct ts_state *st)
{
	const struct ts_conf *c = conf_of(st->g);
	struct ts_env_paths paths = { c->chrony_socket, c->chrony_pid_file,
				      c->ptp_device };

	if (!ts_can_run(st)) {
		/* Asleep until the host sends settings again. */
		st->measuring = false;
		uv_timer_stop(&st->timer);
		return;
	}
	if (st->measuring) {
		if (st->left)
			send_sample(st);
		else
			ts_finish(st);
		return;
	}
	st->measuring = true;
	st->got = 0;
	st->detail[0] = '\0';
	ts_env_probe(&paths, &st->env);
	note_env(st, &paths);
	st->mode = ts_mode_choose(&st->env, st->set.policy, &paths,
				  st->detail, sizeof(st->detail));
	if (st->mode == VMIC_TS_MODE_PTP && measure_ptp(st)) {
		ts_finish(st);
		return;
	}
	if (st->mode == VMIC_TS_MODE_PTP)
		st->mode = VMIC_TS_MODE_CHANNEL; /* the device failed */
	st->left = c->burst;
	send_sample(st);
}

/* Start a cycle now, for a request of the host (answered by the
 * cycle's REPORT). A cycle under way starts over. */
static void ts_cycle_now(struct ts_state *st, struct guest_conn *c,
			 const struct vmic_frame *f)
{
	struct vmic_ts_report m;

	if (st->answer_id && st->answer_id != f->request_id) {
		/* An earlier request still waits: answer it as things are. */
		fill_report(st, &m, VMIC_TS_ACT_NONE, 0, 0);
		send_report(st, &m);
	}
	st->answer_id = f->request_id;
	st->answer_nonce = agent_session(c)->peer_nonce;
	st->measuring = false;
	drop_sample(st);
	ts_cycle(st);
}

static int on_settings(struct ts_state *st, struct guest_conn *c,
		       const struct vmic_frame *f)
{
	struct vmic_ts_settings m;

	if (vmic_ts_settings_decode(f->payload, f->length, &m) < 0)
		return agent_reply_error(c, f, VMIC_E_MALFORMED,
					 "time settings do not decode");
	st->set = m;
	st->have_settings = true;
	ts_cycle_now(st, c, f);
	return 0;
}

/* Take a token for a SYNC request; false (counted, logged now and then)
 * when the host asks faster than the bucket allows. */
static bool take_sync_token(struct ts_state *st)
{
	uint64_t now = uv_now(agent_loop(st->g)), held;

	if (now > st->sync_tokens_at_ms)
		st->sync_tokens += (double)(now - st->sync_tokens_at_ms) /
				   SYNC_REFILL_MS;
	if (st->sync_tokens > SYNC_BURST)
		st->sync_tokens = SYNC_BURST;
	st->sync_tokens_at_ms = now;
	if (st->sync_tokens >= 1) {
		st->sync_tokens -= 1;
		return true;
	}
	st->syncs_refused++;
	if (vmic_ratelimit_pass(&st->sync_log, now, &held))
		log_warning("timesync: the host asks for syncs faster than %d "
			    "at once and one per %d s; refusing them (%" PRIu64
			    " so far)",
			    SYNC_BURST, SYNC_REFILL_MS / 1000,
			    st->syncs_refused);
	return false;
}

static int on_sync(struct ts_state *st, struct guest_conn *c,
		   const struct vmic_frame *f)
{
	struct vmic_ts_sync m;

	if (vmic_ts_sync_decode(f->payload, f->length, &m) < 0)
		return agent_reply_error(c, f, VMIC_E_MALFORMED,
					 "time sync request does not decode");
	if (!st->have_settings)
		return agent_reply_error(c, f, VMIC_E_NOT_READY,
					 "no time settings from the host yet");
	if (!take_sync_token(st))
		return agent_reply_error(c, f, VMIC_E_BUSY,
					 "syncs come faster than %d at once "
					 "and one per %d s: this one is not "
					 "taken (the regular cycle keeps the "
					 "clock in time)",
					 SYNC_BURST, SYNC_REFILL_MS / 1000);
	st->reason = m.reason;
	st->force = true;
	st->allow_back = m.flags & VMIC_TS_SYNC_BACKWARD;
	/* After a pause the clock stood still: the drift line is void. */
	if (m.reason == VMIC_TS_REASON_RESUME)
		ts_disc_reset(&st->disc);
	ts_cycle_now(st, c, f);
	return 0;
}

/* The host's answer to a SAMPLE: one more point of the burst. */
static int on_reply(struct ts_state *st, const struct vmic_frame *f)
{
	int64_t t4 = guest_clock_now(agent_clock(st->g)), offset, delay;
	struct vmic_ts_reply m;

	if (!st->measuring || f->request_id != st->sample_id)
		return 0; /* late: the sample timed out already */
	st->sample_id = 0;
	if (vmic_ts_reply_decode(f->payload, f->length, &m) == 0 &&
	    m.t1 == st->t1 &&
	    vmic_ts_offset(m.t1, m.t2, m.t3, t4, &offset, &delay) == 0 &&
	    (!st->got || delay < st->best.delay_ns)) {
		st->best = (struct ts_sample){ offset, delay,
					       st->t1 + (t4 - st->t1) / 2,
					       mono_ns(), VMIC_TS_SRC_CHANNEL };
		st->got++;
	} else if (st->got == 0 && m.t1 != st->t1) {
		log_debug("timesync: a sample reply for another request");
	}
	ts_cycle(st);
	return 0;
}

static int ts_on_frame(struct guest_conn *c, const struct vmic_frame *f)
{
	struct ts_state *st = state_of(agent_of(c));

	switch (f->type) {
	case VMIC_TS_SETTINGS:
		return on_settings(st, c, f);
	case VMIC_TS_SYNC:
		return on_sync(st, c, f);
	default:
		return 0; /* the table admits nothing else to the guest */
	}
}

static void ts_on_session(struct guest_conn *c, bool up)
{
	struct ts_state *st = state_of(agent_of(c));

	if (!st)
		return;
	/* Either way, wait for the host's settings of the new session. */
	st->have_settings = false;
	st->measuring = false;
	drop_sample(st);
	st->answer_id = 0;
	st->force = st->allow_back = false;
	st->reason = VMIC_TS_REASON_REGULAR;
	uv_timer_stop(&st->timer);
	(void)up;
}

/* Arm the watch: a timer that never expires, cancelled by a clock set. */
static int arm_set_watch(int fd)
{
	struct itimerspec its = { .it_value = { .tv_sec = INT32_MAX } };

	if (timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET,
			    &its, NULL) < 0)
		return -errno;
	return 0;
}

static void on_clock_set(uv_poll_t *p, int status, int events UNUSED)
{
	struct ts_state *st = p->data;
	uint64_t ticks;

	if (status < 0)
		return;
	/* ECANCELED is the event; reading clears it, arming again too. */
	if (read(st->set_fd, &ticks, sizeof(ticks)) >= 0 || errno != ECANCELED)
		return;
	arm_set_watch(st->set_fd);
	if (st->own_steps) {
		st->own_steps--;
		return;
	}
	log_info("timesync: the clock was set by someone else; measuring "
		 "now");
	ts_disc_reset(&st->disc);
	if (!ts_can_run(st) || st->answer_id)
		return;
	st->reason = VMIC_TS_REASON_CLOCK_SET;
	st->measuring = false;
	drop_sample(st);
	ts_cycle(st);
}

/* Only the real clock can be set behind our back. */
static void start_set_watch(struct ts_state *st)
{
	int fd;

	st->set_fd = -1;
	if (agent_clock(st->g)->simulated)
		return;
	fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0 || arm_set_watch(fd) < 0 ||
	    uv_poll_init(agent_loop(st->g), &st->set_poll, fd) < 0) {
		log_warning("timesync: cannot watch for clock changes (%s); "
			    "they are noticed at the next cycle",
			    strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	st->set_fd = fd;
	st->set_poll.data = st;
	st->set_poll_open = true;
	uv_poll_start(&st->set_poll, UV_READABLE, on_clock_set);
}

static void set_poll_closed(uv_handle_t *h)
{
	struct ts_state *st = h->data;

	close(st->set_fd);
	st->set_fd = -1;
}

static int ts_start(struct guestd *g)
{
	struct ts_state *st = calloc(1, sizeof(*st));
	int fd;

	if (!st)
		return -ENOMEM;
	st->g = g;
	uv_timer_init(agent_loop(g), &st->timer);
	st->timer.data = st;
	ts_disc_init(&st->disc, conf_of(g)->min_interval_ms);
	st->build_ns = guest_clock_build_ns();
	st->sync_tokens = SYNC_BURST;
	st->sync_tokens_at_ms = uv_now(agent_loop(g));
	st->step_log = (struct vmic_ratelimit)VMIC_RATELIMIT_INIT(
		STEP_LOG_EVERY_MS);
	st->refuse_log = (struct vmic_ratelimit)VMIC_RATELIMIT_INIT(
		REFUSE_LOG_EVERY_MS);
	st->sync_log = (struct vmic_ratelimit)VMIC_RATELIMIT_INIT(
		REFUSE_LOG_EVERY_MS);
	st->env_log = (struct vmic_ratelimit)VMIC_RATELIMIT_INIT(
		ENV_LOG_EVERY_MS);
	fd = ts_chrony_open();
	st->chrony_fd = fd;
	if (fd < 0)
		log_warning_errno(fd, "timesync: no socket to feed chronyd "
				      "with");
	agent_set_state(g, ID, st);
	start_set_watch(st);
	return 0;
}

static void ts_stop(struct guestd *g)
{
	struct ts_state *st = state_of(g);

	uv_timer_stop(&st->timer);
	uv_close((uv_handle_t *)&st->timer, NULL);
	if (st->chrony_fd >= 0)
		close(st->chrony_fd);
	st->chrony_fd = -1;
	if (st->set_poll_open)
		uv_close((uv_handle_t *)&st->set_poll, set_poll_closed);
	st->set_poll_open = false;
}

const struct guest_service timesync_guest = {
	.desc = &vmic_timesync_service,
	.enabled_help = "keep the clock in time with the host (or feed "
			"chronyd)",
	.conf = &conf_table,
	.conf_size = sizeof(struct ts_conf),
	.conf_defaults = ts_conf_defaults,
	.start = ts_start,
	.stop = ts_stop,
	.on_session = ts_on_session,
	.on_frame = ts_on_frame,
};
