/* SPDX-License-Identifier: MIT */
/*
 * Time synchronisation, host half.
 *
 * The host is the time server of its guests: it answers each SAMPLE with
 * its CLOCK_REALTIME when the request arrived and when the answer left.
 * It tells the guest the VM's settings (SETTINGS, at session start and on
 * every change), asks for a step when told to (`vmic time VM --sync`) or
 * when the heartbeat saw the VM silent on a live channel and answer again
 * (NOTICE_RESUMED: a pause, a restore), and keeps the guest's last
 * REPORT for `vmic time` and `vmic status`.
 *
 * Bounds: every frame a guest sends unasked (SAMPLE, REPORT) costs a
 * token of a per-VM bucket (TOKENS_MAX, refilled at TOKENS_PER_S); a
 * frame without a token is dropped and counted, nothing more, and at most
 * one log line per minute says so. Steps become events at most once per
 * EVENT_EVERY_MS per VM, with a count of those left out.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "common/ratelimit.h"
#include "common/utf8.h"
#include "host/service-api.h"
#include "proto/control.h"
#include "proto/frame.h"
#include "proto/services.h"
#include "services/timesync/timesync.h"

#define ID VMIC_SVC_TIMESYNC
#define TOKENS_MAX 32
#define TOKENS_PER_S 16
#define DROP_LOG_EVERY_MS 60000
#define EVENT_EVERY_MS 10000
/* A burst of at most 16 samples, each with a 1 s timeout, then the
 * report: the guest answers a SYNC within this. */
#define SYNC_TIMEOUT_MS 20000
#define SETTINGS_TIMEOUT_MS 20000

/* Per-VM settings ([timesync] in hostd.conf, `vmic set VM timesync`). */
struct ts_settings {
	int policy; /* enum vmic_ts_policy */
	unsigned step_threshold_ms;
	bool step_backward;
	unsigned resume_gap_ms;
};

static int parse_policy(const char *value, void *field, char *err,
			size_t errsz)
{
	int p = vmic_ts_policy_parse(value);

	if (p < 0) {
		snprintf(err, errsz, "'%s' is not auto, channel, chrony, ptp "
				     "or report",
			 value);
		return -EINVAL;
	}
	*(int *)field = p;
	return 0;
}

static void format_policy(const void *field, char *buf, size_t n)
{
	const char *name = vmic_ts_policy_name((unsigned)*(const int *)field);

	snprintf(buf, n, "%s", name ? name : "?");
}

#define FIELD(f) offsetof(struct ts_settings, f)

static const struct vmic_conf_key keys[] = {
	{ .section = "timesync", .key = "mode", .type = VMIC_CONF_CUSTOM,
	  .offset = FIELD(policy), .parse = parse_policy,
	  .format = format_policy,
	  .help = "auto, channel, chrony, ptp or report (measure only)" },
	{ .section = "timesync", .key = "step-threshold",
	  .type = VMIC_CONF_DURATION, .offset = FIELD(step_threshold_ms),
	  .min = 1, .max = VMIC_TS_THRESHOLD_MAX_MS,
	  .help = "offsets this large are stepped, smaller ones slewed "
		  "(1ms..1h)" },
	{ .section = "timesync", .key = "step-backward",
	  .type = VMIC_CONF_BOOL, .offset = FIELD(step_backward),
	  .help = "automatic steps may set the clock back" },
	{ .section = "timesync", .key = "resume-gap",
	  .type = VMIC_CONF_DURATION, .offset = FIELD(resume_gap_ms),
	  .min = 1000, .max = 86400000,
	  .help = "a heartbeat silence this long on a live channel counts "
		  "as a pause: sync on resume (1s..1d)" },
};

static const struct vmic_conf_table settings_table = { keys,
						       ARRAY_SIZE(keys) };

static void ts_settings_defaults(void *p)
{
	struct ts_settings *s = p;

	s->policy = VMIC_TS_POLICY_AUTO;
	s->step_threshold_ms = 128;
	s->step_backward = false;
	s->resume_gap_ms = 2000;
}

/* Per-VM state. */
struct ts_vm {
	struct vm *vm;
	bool have_report;
	struct vmic_ts_report rep; /* detail sanitised */
	int64_t report_us;         /* when it came (realtime) */
	int64_t last_sync_us;      /* last report that acted on the clock */
	int64_t last_step_us, last_step_ns;
	uint8_t last_step_reason;
	/* the last SYNC the guest answered: when, why, what it did */
	int64_t sync_us;
	uint8_t sync_reason, sync_action;
	bool mode_known;
	/* the unasked-frame bucket */
	double tokens;
	uint64_t tokens_at_us;
	uint64_t answered, dropped, syncs;
	struct vmic_ratelimit drop_log, step_events;
	uint32_t settings_id; /* SETTINGS waiting for its answer */
	uint32_t resume_id;   /* a resume SYNC waiting */
};

/* Daemon-wide numbers for `stats`. */
struct ts_daemon {
	uint64_t answered, dropped, syncs;
};

/* A `vmic time --sync` waiting for the guest. */
struct sync_op {
	struct ctl_request *rq;
};

static struct ts_vm *ts_of(const struct vm *vm)
{
	return vm_state(vm, ID);
}

static const struct ts_settings *settings_of(const struct vm *vm)
{
	return vm_settings(vm, ID);
}

static struct ts_daemon *daemon_of(const struct vm *vm)
{
	return hostd_state(vm_hostd(vm), ID);
}

static int ts_daemon_start(struct hostd *h)
{
	struct ts_daemon *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	hostd_set_state(h, ID, d);
	return 0;
}

static void ts_daemon_stop(struct hostd *h)
{
	free(hostd_state(h, ID));
	hostd_set_state(h, ID, NULL);
}

static int ts_attach(struct vm *vm)
{
	struct ts_vm *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->vm = vm;
	t->tokens = TOKENS_MAX;
	t->tokens_at_us = hostd_now_us(vm_hostd(vm));
	t->drop_log = (struct vmic_ratelimit)VMIC_RATELIMIT_INIT(
		DROP_LOG_EVERY_MS);
	t->step_events = (struct vmic_ratelimit)VMIC_RATELIMIT_INIT(
		EVENT_EVERY_MS);
	vm_set_state(vm, ID, t);
	return 0;
}

static void ts_release(struct vm *vm)
{
	free(vm_state(vm, ID));
	vm_set_state(vm, ID, NULL);
}

/* Take a token for an unasked frame; false (and counted) when none. */
static bool take_token(struct vm *vm)
{
	struct ts_vm *t = ts_of(vm);
	uint64_t now = hostd_now_us(vm_hostd(vm)), suppressed;

	t->tokens += (double)(now - t->tokens_at_us) * TOKENS_PER_S / 1e6;
	if (t->tokens > TOKENS_MAX)
		t->tokens = TOKENS_MAX;
	t->tokens_at_us = now;
	if (t->tokens >= 1) {
		t->tokens -= 1;
		return true;
	}
	t->dropped++;
	daemon_of(vm)->dropped++;
	if (vmic_ratelimit_pass(&t->drop_log, now / 1000, &suppressed))
		log_warning("%s: timesync: the guest sends time frames faster "
			    "than %d/s; dropping them (%" PRIu64 " so far)",
			    vm_name(vm), TOKENS_PER_S, t->dropped);
	return false;
}

/* Answer a SAMPLE: t2 when it arrived, t3 now. */
static void answer_sample(struct vm *vm, const struct vmic_frame *f,
			  int64_t t2)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_TS_SAMPLE_REPLY_LEN];
	struct vmic_ts_reply m;
	size_t n;

	if (vmic_ts_sample_decode(f->payload, f->length, &m.t1) < 0)
		return; /* the table checked the length: cannot happen */
	m.t2 = t2;
	m.t3 = hostd_realtime_ns(vm_hostd(vm));
	vmic_ts_reply_encode(&m, buf + VMIC_HDR_SIZE,
			     VMIC_TS_SAMPLE_REPLY_LEN);
	n = vmic_frame_seal(buf, ID, VMIC_TS_SAMPLE_REPLY, VMIC_F_REPLY,
			    f->request_id, 0, VMIC_TS_SAMPLE_REPLY_LEN);
	if (conn_send(vm, buf, n) == 0) {
		ts_of(vm)->answered++;
		daemon_of(vm)->answered++;
	}
}

static void ts_event(struct vm *vm, const char *from, const char *to,
		     const char *fmt, ...) PRINTF_LIKE(4, 5);
static void ts_event(struct vm *vm, const char *from, const char *to,
		     const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	events_emit(vm_hostd(vm), vm_name(vm), "timesync", "timesync", from,
		    to, "%s", msg);
}

/* A step is worth an event, but not sixteen a second. */
static void step_event(struct vm *vm, const struct vmic_ts_report *m)
{
	struct ts_vm *t = ts_of(vm);
	uint64_t suppressed;
	char more[64] = "";

	if (!vmic_ratelimit_pass(&t->step_events,
				 hostd_now_us(vm_hostd(vm)) / 1000,
				 &suppressed))
		return;
	if (suppressed)
		snprintf(more, sizeof(more), " (%" PRIu64 " more steps since "
					     "the last event)",
			 suppressed);
	ts_event(vm, NULL, "stepped",
		 "the guest stepped its clock by %+.6f s (%s, mode %s)%s",
		 (double)m->step_ns / 1e9, vmic_ts_reason_name(m->reason),
		 vmic_ts_mode_name(m->mode), more);
}

/* Keep a report of the guest: what `vmic time` shows. */
static void take_report(struct vm *vm, struct vmic_ts_report *m)
{
	struct ts_vm *t = ts_of(vm);
	int64_t now_us = hostd_realtime_ns(vm_hostd(vm)) / 1000;
	char clean[VMIC_TS_DETAIL_MAX + 1];

	vmic_utf8_sanitize(clean, sizeof(clean), m->detail,
			   strlen(m->detail));
	memcpy(m->detail, clean, sizeof(clean));
	if (!t->mode_known || t->rep.mode != m->mode)
		ts_event(vm, t->mode_known ? vmic_ts_mode_name(t->rep.mode)
					   : NULL,
			 vmic_ts_mode_name(m->mode), "time sync mode %s%s%s",
			 vmic_ts_mode_name(m->mode), m->detail[0] ? ": " : "",
			 m->detail);
	t->mode_known = true;
	t->rep = *m;
	t->have_report = true;
	t->report_us = now_us;
	if (m->action == VMIC_TS_ACT_STEPPED || m->action == VMIC_TS_ACT_SLEWED ||
	    m->action == VMIC_TS_ACT_FED)
		t->last_sync_us = now_us;
	if (m->action == VMIC_TS_ACT_STEPPED) {
		t->last_step_us = now_us;
		t->last_step_ns = m->step_ns;
		t->last_step_reason = m->reason;
		step_event(vm, m);
	}
}

/* A REPORT frame (an answer or unasked); false when it does not decode. */
static bool take_report_frame(struct vm *vm, const struct vmic_frame *f)
{
	struct vmic_ts_report m;

	if (vmic_ts_report_decode(f->payload, f->length, &m) < 0) {
		vm_bad_frame(vm);
		return false;
	}
	take_report(vm, &m);
	return true;
}

/* The REPORT that answers a SYNC: remembered apart, as the next regular
 * report replaces the last one within seconds. */
static bool take_sync_answer(struct vm *vm, const struct vmic_frame *f)
{
	struct ts_vm *t = ts_of(vm);

	if (!take_report_frame(vm, f))
		return false;
	t->sync_us = t->report_us;
	t->sync_reason = t->rep.reason;
	t->sync_action = t->rep.action;
	return true;
}

static int ts_on_frame(struct vm *vm, const struct vmic_frame *f)
{
	int64_t t2 = hostd_realtime_ns(vm_hostd(vm));

	if (!vmic_frame_is_request(f) || !take_token(vm))
		return 0;
	switch (f->type) {
	case VMIC_TS_SAMPLE:
		answer_sample(vm, f, t2);
		break;
	case VMIC_TS_REPORT:
		if (!take_report_frame(vm, f))
			conn_send_error(vm, f, VMIC_E_MALFORMED,
					"time report does not decode");
		break;
	default:
		break; /* the table admits nothing else from the guest */
	}
	return 0;
}

/* The answer to SETTINGS or a resume SYNC: a REPORT, or its end. */
static bool on_own_answer(struct vm *vm, void *ud, const struct vmic_frame *f,
			  int err UNUSED)
{
	struct ts_vm *t = ts_of(vm);
	char text[VMIC_ERROR_MSG_MAX + 1];

	bool settings = (uintptr_t)ud == VMIC_TS_SETTINGS;

	if (settings)
		t->settings_id = 0;
	else
		t->resume_id = 0;
	if (!f)
		return false;
	if (f->type == VMIC_TS_REPORT && settings) {
		take_report_frame(vm, f);
	} else if (f->type == VMIC_TS_REPORT) {
		take_sync_answer(vm, f);
	} else {
		conn_peer_error(f, text, sizeof(text));
		log_debug("%s: timesync: the guest answered: %s", vm_name(vm),
			  text);
	}
	return false;
}

static void send_settings(struct vm *vm)
{
	const struct ts_settings *s = settings_of(vm);
	struct ts_vm *t = ts_of(vm);
	struct vmic_ts_settings m = {
		.policy = (uint8_t)s->policy,
		.flags = s->step_backward ? VMIC_TS_SET_STEP_BACKWARD : 0,
		.step_threshold_ms = s->step_threshold_ms,
	};
	uint8_t payload[VMIC_TS_SETTINGS_LEN];

	if (!service_usable(vm, ID))
		return;
	if (t->settings_id)
		request_cancel(vm, t->settings_id);
	t->settings_id = 0;
	vmic_ts_settings_encode(&m, payload, sizeof(payload));
	request_send(vm, ID, VMIC_TS_SETTINGS, payload, sizeof(payload),
		     SETTINGS_TIMEOUT_MS, on_own_answer,
		     (void *)(uintptr_t)VMIC_TS_SETTINGS, &t->settings_id);
}

static int send_sync(struct vm *vm, uint8_t reason, request_cb cb, void *ud,
		     uint32_t *id)
{
	struct vmic_ts_sync m = { .reason = reason };
	uint8_t payload[VMIC_TS_SYNC_LEN];
	int r;

	/* An operator's sync steps either way; an automatic one only as
	 * step-backward allows. */
	if (reason == VMIC_TS_REASON_COMMAND || settings_of(vm)->step_backward)
		m.flags |= VMIC_TS_SYNC_BACKWARD;
	vmic_ts_sync_encode(&m, payload, sizeof(payload));
	r = request_send(vm, ID, VMIC_TS_SYNC, payload, sizeof(payload),
			 SYNC_TIMEOUT_MS, cb, ud, id);
	if (r == 0) {
		ts_of(vm)->syncs++;
		daemon_of(vm)->syncs++;
	}
	return r;
}

static void ts_on_up(struct vm *vm)
{
	send_settings(vm);
}

static void ts_on_down(struct vm *vm)
{
	struct ts_vm *t = ts_of(vm);

	/* The tracker ends their waits with the session, or now. */
	if (t->settings_id)
		request_cancel(vm, t->settings_id);
	if (t->resume_id)
		request_cancel(vm, t->resume_id);
	t->settings_id = t->resume_id = 0;
}

static void ts_settings_changed(struct vm *vm)
{
	send_settings(vm);
}

/* The heartbeat heard the guest again after a silence on a live
 * channel: if it was long, the guest's clock stood still meanwhile. */
static void ts_on_notice(struct vm *vm, struct notice *n)
{
	struct ts_vm *t = ts_of(vm);
	const struct ts_settings *s = settings_of(vm);

	if (n->kind != NOTICE_RESUMED || !service_usable(vm, ID) ||
	    n->gap_us < (uint64_t)s->resume_gap_ms * 1000 || t->resume_id)
		return;
	ts_event(vm, NULL, "sync",
		 "the guest was silent for %.1f s with its channel up "
		 "(paused?): asking it to step its clock",
		 (double)n->gap_us / 1e6);
	send_sync(vm, VMIC_TS_REASON_RESUME, on_own_answer,
		  (void *)(uintptr_t)VMIC_TS_SYNC, &t->resume_id);
}

static json_t *int_or_null(int64_t v, bool known)
{
	return known ? json_integer((json_int_t)v) : json_null();
}

static json_t *name_or_null(const char *name, bool known)
{
	return known && name ? json_string(name) : json_null();
}

/* The members `status` and `time` share. */
static void ts_members(const struct vm *vm, json_t *o)
{
	const struct ts_vm *t = ts_of(vm);
	const struct vmic_ts_report *r = &t->rep;
	bool k = t->have_report;

	json_object_set_new(o, "mode", name_or_null(vmic_ts_mode_name(r->mode),
						    k));
	json_object_set_new(o, "source",
			    name_or_null(vmic_ts_source_name(r->source), k));
	json_object_set_new(o, "offset_ns", int_or_null(r->offset_ns, k));
	json_object_set_new(o, "delay_ns", int_or_null(r->delay_ns, k));
	json_object_set_new(o, "last_sync_us",
			    int_or_null(t->last_sync_us, t->last_sync_us));
	json_object_set_new(o, "last_action",
			    name_or_null(vmic_ts_action_name(r->action), k));
	json_object_set_new(o, "last_reason",
			    name_or_null(vmic_ts_reason_name(r->reason), k));
	json_object_set_new(o, "last_step_ns",
			    int_or_null(t->last_step_ns, t->last_step_us));
	json_object_set_new(o, "last_step_us",
			    int_or_null(t->last_step_us, t->last_step_us));
	json_object_set_new(o, "last_step_reason",
			    name_or_null(vmic_ts_reason_name(
						 t->last_step_reason),
					 t->last_step_us));
	json_object_set_new(
		o, "last_sync_request",
		t->sync_us ? json_pack("{s:I, s:s, s:s}", "time_us",
				       (json_int_t)t->sync_us, "reason",
				       vmic_ts_reason_name(t->sync_reason),
				       "action",
				       vmic_ts_action_name(t->sync_action))
			   : json_null());
	json_object_set_new(o, "freq_ppb", int_or_null(r->freq_ppb, k));
	json_object_set_new(o, "interval_ms", int_or_null(r->interval_ms, k));
	json_object_set_new(o, "report_us", int_or_null(t->report_us, k));
	json_object_set_new(o, "guest_time_us",
			    int_or_null(r->guest_ns / 1000, k));
	json_object_set_new(o, "simulated",
			    json_boolean(k && (r->flags &
					       VMIC_TS_REP_SIMULATED)));
	json_object_set_new(o, "chrony",
			    json_boolean(k && (r->flags & VMIC_TS_REP_CHRONY)));
	json_object_set_new(o, "ptp",
			    json_boolean(k && (r->flags & VMIC_TS_REP_PTP)));
	json_object_set_new(o, "detail", json_string(k ? r->detail : ""));
	json_object_set_new(o, "samples_answered",
			    json_integer((json_int_t)t->answered));
	json_object_set_new(o, "samples_dropped",
			    json_integer((json_int_t)t->dropped));
}

static void ts_status_json(const struct vm *vm, json_t *o)
{
	ts_members(vm, o);
}

/* The guest's own words on what it does, as the secondary status. */
static void ts_status(const struct vm *vm, struct svc_status *st)
{
	const struct ts_vm *t = ts_of(vm);

	if (st->primary == SVC_OK && t->have_report && t->rep.detail[0])
		snprintf(st->secondary, sizeof(st->secondary), "%s",
			 t->rep.detail);
}

static void ts_stats_json(struct hostd *h, json_t *o, bool reset UNUSED)
{
	const struct ts_daemon *d = hostd_state(h, ID);

	json_object_set_new(o, "timesync",
			    json_pack("{s:I, s:I, s:I}", "samples_answered",
				      (json_int_t)d->answered,
				      "samples_dropped",
				      (json_int_t)d->dropped, "syncs",
				      (json_int_t)d->syncs));
}

/* ---- the `time` command ---- */

static json_t *time_json(const struct vm *vm)
{
	struct svc_status st;
	json_t *o = json_object();

	service_status(vm, ID, &st);
	json_object_set_new(o, "vm", json_string(vm_name(vm)));
	svc_status_json(o, &st);
	json_object_set_new(o, "connection",
			    json_string(vm_connection_state(vm)));
	json_object_set_new(o, "policy",
			    json_string(vmic_ts_policy_name(
				    (unsigned)settings_of(vm)->policy)));
	ts_members(vm, o);
	return o;
}

/* Why a sync cannot be asked for now; NULL when it can. */
static const char *sync_unavailable(const struct vm *vm, const char **code)
{
	*code = "service-unavailable";
	if (!vm_service_enabled(vm, ID))
		return "its timesync service is disabled on the host (`vmic "
		       "enable VM timesync`)";
	if (!conn_up(vm)) {
		*code = "not-connected";
		return "its guest agent is not connected";
	}
	if (vmic_session_version(vm_session(vm), ID) == 0)
		return "its guest agent has no common timesync version";
	if (!vmic_session_peer_enabled(vm_session(vm), ID))
		return "timesync is disabled in the guest's configuration";
	return NULL;
}

static bool sync_on_answer(struct vm *vm, void *ud, const struct vmic_frame *f,
			   int err)
{
	struct sync_op *op = ud;
	char text[VMIC_ERROR_MSG_MAX + 1];
	uint16_t code;
	json_t *o;

	if (!f) {
		if (err == -ETIMEDOUT)
			ctl_reply_error(op->rq, "timeout", "'%s' did not "
							   "answer the sync "
							   "within %d s",
					vm_name(vm), SYNC_TIMEOUT_MS / 1000);
		else if (err == -ECONNRESET)
			ctl_reply_error(op->rq, "not-connected",
					"the session with '%s' ended before "
					"it answered the sync",
					vm_name(vm));
		else if (hostd_stopping(vm_hostd(vm)))
			ctl_reply_error(op->rq, "internal",
					"vmic-hostd is stopping");
		else
			ctl_reply_error(op->rq, "unknown-vm",
					"'%s' was removed during the sync",
					vm_name(vm));
	} else if (f->type == VMIC_TS_REPORT) {
		if (!take_sync_answer(vm, f)) {
			ctl_reply_error(op->rq, "refused",
					"the guest's answer to the sync does "
					"not decode");
		} else {
			o = time_json(vm);
			json_object_set_new(o, "synced", json_true());
			ctl_reply_ok(op->rq, o);
		}
	} else {
		code = conn_peer_error(f, text, sizeof(text));
		ctl_reply_error(op->rq,
				code == VMIC_E_DISABLED ||
						code == VMIC_E_VERSION
					? "service-unavailable"
					: "refused",
				"the guest answered the sync with '%s': %s",
				vmic_error_name(code), text);
	}
	free(op);
	return false;
}

static void cmd_time(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	const char *why, *code;
	struct sync_op *op;
	int sync = 0, r;
	uint32_t id;

	if (!ctl_args_unpack(rq, "time", args, "{s?b}", "sync", &sync))
		return;
	if (!sync) {
		ctl_reply_ok(rq, time_json(vm));
		return;
	}
	why = sync_unavailable(vm, &code);
	if (why) {
		ctl_reply_error(rq, code, "cannot sync '%s': %s", vm_name(vm),
				why);
		return;
	}
	op = calloc(1, sizeof(*op));
	if (!op) {
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	op->rq = rq;
	r = send_sync(vm, VMIC_TS_REASON_COMMAND, sync_on_answer, op, &id);
	if (r < 0) {
		free(op);
		ctl_reply_error(rq, r == -EBUSY ? "limit" : "not-connected",
				"cannot ask '%s' to sync: %s", vm_name(vm),
				r == -EBUSY ? "too many time requests wait "
					      "for its answers already"
					    : strerror(-r));
	}
}

static const struct ctl_command commands[] = {
	{ "time", cmd_time, true, "vm (string), sync (boolean)",
	  "a VM's clock offset and sync mode; sync: step it now" },
};

const struct host_service timesync_host = {
	.desc = &vmic_timesync_service,
	.settings = &settings_table,
	.settings_size = sizeof(struct ts_settings),
	.settings_defaults = ts_settings_defaults,
	/* SETTINGS, a resume SYNC, and the operators' `vmic time --sync`
	 * (more are refused with `limit`). */
	.max_requests = 8,
	.daemon_start = ts_daemon_start,
	.daemon_stop = ts_daemon_stop,
	.attach = ts_attach,
	.release = ts_release,
	.on_up = ts_on_up,
	.on_down = ts_on_down,
	.on_notice = ts_on_notice,
	.on_frame = ts_on_frame,
	.settings_changed = ts_settings_changed,
	.status = ts_status,
	.status_json = ts_status_json,
	.stats_json = ts_stats_json,
	.commands = commands,
	.ncommands = ARRAY_SIZE(commands),
};
