/* SPDX-License-Identifier: MIT */
/*
 * Heartbeat, host half.
 *
 * While the service is usable (enabled here, session up, a version agreed,
 * allowed by the guest) the host sends REQUEST{seq} every interval from a
 * per-VM timer, through the request tracker. Each tick's deadline is the
 * previous one plus the interval (clock.h), so every VM keeps its own
 * phase: VMs that connected together were given random phases, and a busy
 * loop that fires many ticks late does not bunch them up for good. At most one request waits
 * at a time: a tick that finds the previous one unanswered counts a miss
 * and sends nothing, so a guest that stopped reading never gets a pile of
 * heartbeats queued for it; `threshold` misses in a row read Lost
 * Communication, and the late answer, when it comes, still counts as
 * contact. The cost per VM per interval is one timer callback, one write
 * and one read: nothing scans all VMs.
 *
 * A stop in progress (vm_quiet(), from NOTICE_STOPPING) makes silence
 * expected: the state goes to No Contact, not Lost Communication. A guest that answers again
 * is announced with NOTICE_ALIVE, which a reboot waits for.
 *
 * States and their meaning are those of docs/control.md; every change is
 * a `heartbeat` event.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "common/random.h"
#include "common/utf8.h"
#include "host/service-api.h"
#include "proto/services.h"
#include "services/heartbeat/heartbeat.h"
#include "services/heartbeat/rtt.h"

#define ID VMIC_SVC_HEARTBEAT

enum hb_state {
	HB_NO_CONTACT,
	HB_OK,
	HB_CRITICAL, /* "OK (application critical)" */
	HB_LOST,
	HB_MISMATCH,
	HB_DISABLED,
};

/* Per-VM settings ([heartbeat] in hostd.conf, `vmic set VM heartbeat`). */
struct hb_settings {
	unsigned interval_ms;
	unsigned threshold;
};

/* Per-VM state. */
struct hb {
	struct vm *vm;
	enum hb_state state;
	struct htimer timer;
	uint64_t next_tick_us; /* the deadline of the next tick */
	bool running;
	uint64_t seq;        /* last sequence number sent */
	uint32_t waiting_id; /* the request that waits for its answer, 0 */
	uint64_t sent_us;    /* monotonic time it was sent */
	unsigned missed;
	int64_t last_reply_us;
	int64_t rtt_us;      /* -1 until the first reply */
	bool contact;        /* a reply since add or start */
	char *reason;        /* application-critical reason, sanitised */
};

/* Daemon-wide numbers for `stats`. */
struct hb_daemon {
	uint64_t sent, replies;
	struct rtt_hist rtt;
};

#define FIELD(f) offsetof(struct hb_settings, f)

static const struct vmic_conf_key keys[] = {
	/* Shorter is more requests: a group member goes no lower than
	 * hostd.conf's value (settings.c). */
	{ .section = "heartbeat", .key = "interval",
	  .type = VMIC_CONF_DURATION, .offset = FIELD(interval_ms),
	  .min = 100, .max = 3600000, .cost = VMIC_CONF_COST_DOWN,
	  .help = "how often the host asks (100ms..1h)" },
	{ .section = "heartbeat", .key = "threshold", .type = VMIC_CONF_UINT,
	  .offset = FIELD(threshold), .min = 1, .max = 100,
	  .help = "missed heartbeats before Lost Communication (1..100)" },
};

static const struct vmic_conf_table settings_table = { keys,
						       ARRAY_SIZE(keys) };

static const char *const state_names[] = {
	[HB_NO_CONTACT] = "No Contact",
	[HB_OK] = "OK",
	[HB_CRITICAL] = "OK (application critical)",
	[HB_LOST] = "Lost Communication",
	[HB_MISMATCH] = "Protocol Mismatch",
	[HB_DISABLED] = "Disabled",
};

static const char *hb_state_name(enum hb_state s)
{
	return s < ARRAY_SIZE(state_names) ? state_names[s] : "unknown";
}

static struct hb *hb_of(const struct vm *vm)
{
	return vm_state(vm, ID);
}

static const struct hb_settings *settings_of(const struct vm *vm)
{
	return vm_settings(vm, ID);
}

static struct hb_daemon *daemon_of(const struct vm *vm)
{
	return hostd_state(vm_hostd(vm), ID);
}

static void hb_settings_defaults(void *p)
{
	struct hb_settings *s = p;

	s->interval_ms = 1000;
	s->threshold = 3;
}

static int hb_daemon_start(struct hostd *h)
{
	struct hb_daemon *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	hostd_set_state(h, ID, d);
	return 0;
}

static void hb_daemon_stop(struct hostd *h)
{
	free(hostd_state(h, ID));
	hostd_set_state(h, ID, NULL);
}

static void on_hb_tick(struct htimer *t);

static int hb_attach(struct vm *vm)
{
	struct hb *hb = calloc(1, sizeof(*hb));

	if (!hb)
		return -ENOMEM;
	hb->vm = vm;
	hb->state = vm_service_enabled(vm, ID) ? HB_NO_CONTACT : HB_DISABLED;
	hb->rtt_us = -1;
	htimer_init(vm_hostd(vm), &hb->timer, on_hb_tick, vm);
	vm_set_state(vm, ID, hb);
	return 0;
}

static void hb_detach(struct vm *vm, enum detach_reason why UNUSED)
{
	struct hb *hb = hb_of(vm);

	if (hb)
		vm_close_timer(vm, &hb->timer);
}

static void hb_loaded(struct vm *vm)
{
	if (!vm_service_enabled(vm, ID))
		hb_of(vm)->state = HB_DISABLED;
}

static void hb_release(struct vm *vm)
{
	struct hb *hb = hb_of(vm);

	if (!hb)
		return;
	free(hb->reason);
	free(hb);
	vm_set_state(vm, ID, NULL);
}

static void hb_set_state(struct vm *vm, enum hb_state to, const char *fmt, ...)
	PRINTF_LIKE(3, 4);
static void hb_set_state(struct vm *vm, enum hb_state to, const char *fmt, ...)
{
	struct hb *hb = hb_of(vm);
	enum hb_state from = hb->state;
	char msg[VMIC_HB_REASON_MAX + 128];
	va_list ap;

	if (from == to)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hb->state = to;
	vm_touch(vm); /* the summary shows the state */
	events_emit(vm_hostd(vm), vm_name(vm), "heartbeat", "heartbeat",
		    hb_state_name(from), hb_state_name(to), "%s", msg);
	if (to == HB_OK || to == HB_CRITICAL)
		vm_notify(vm, &(struct notice){ .kind = NOTICE_ALIVE });
}

/* Silence from a guest that had answered: Lost, unless a stop explains it. */
static void hb_silent(struct vm *vm, const char *why)
{
	struct hb *hb = hb_of(vm);

	if (vm_quiet(vm))
		hb_set_state(vm, HB_NO_CONTACT, "%s while the VM is being "
						"stopped",
			     why);
	else if (hb->contact)
		hb_set_state(vm, HB_LOST, "%s", why);
	else
		hb_set_state(vm, HB_NO_CONTACT, "%s before the first reply",
			     why);
}

/* Forget the request that waits, if any (its answer is no use now). */
static void hb_drop_waiting(struct vm *vm)
{
	struct hb *hb = hb_of(vm);

	if (hb->waiting_id)
		request_cancel(vm, hb->waiting_id);
	hb->waiting_id = 0;
	hb->missed = 0;
}

static void hb_apply_health(struct vm *vm, const struct vmic_hb_reply *m)
{
	struct hb *hb = hb_of(vm);
	enum hb_state from = hb->state;
	char reason[VMIC_HB_REASON_MAX + 1];

	if (m->health == VMIC_HEALTH_CRITICAL) {
		vmic_utf8_sanitize(reason, sizeof(reason), m->reason,
				   strlen(m->reason));
		if (from == HB_CRITICAL && hb->reason &&
		    strcmp(hb->reason, reason) == 0)
			return;
		free(hb->reason);
		hb->reason = strdup(reason);
		if (from == HB_CRITICAL) {
			/* Same state, new reason: still worth an event. */
			events_emit(vm_hostd(vm), vm_name(vm), "heartbeat",
				    "heartbeat", hb_state_name(from),
				    hb_state_name(from),
				    "application critical: %s", reason);
			return;
		}
		hb_set_state(vm, HB_CRITICAL, "application critical: %s",
			     reason);
		return;
	}
	free(hb->reason);
	hb->reason = NULL;
	hb_set_state(vm, HB_OK, "%s",
		     from == HB_CRITICAL ? "the guest reports its "
					   "applications healthy again"
		     : from == HB_LOST ? "heartbeat replies resumed"
				       : "first heartbeat reply");
}

static void hb_on_reply(struct vm *vm, const struct vmic_frame *f)
{
	struct hb *hb = hb_of(vm);
	struct hb_daemon *d = daemon_of(vm);
	struct vmic_hb_reply m;
	uint64_t rtt = hostd_now_us(vm_hostd(vm)) - hb->sent_us;

	if (vmic_hb_reply_decode(f->payload, f->length, &m) < 0 ||
	    m.seq != hb->seq + 1) {
		log_debug("%s: malformed heartbeat reply dropped (or its "
			  "sequence number is not ours + 1)",
			  vm_name(vm));
		vm_bad_frame(vm);
		return;
	}
	/* Silent for whole intervals on a live channel, then back: the VM
	 * was probably paused (or starved); whoever cares is told. */
	if (hb->missed > 0)
		vm_notify(vm, &(struct notice){ .kind = NOTICE_RESUMED,
						.gap_us = rtt });
	hb->missed = 0;
	hb->rtt_us = (int64_t)rtt;
	hb->last_reply_us = vmic_realtime_us();
	hb->contact = true;
	d->replies++;
	rtt_add(&d->rtt, rtt);
	hb_apply_health(vm, &m);
}

/* The answer (or the end) of the request that waited. */
static bool hb_on_answer(struct vm *vm, void *ud UNUSED,
			 const struct vmic_frame *f, int err UNUSED)
{
	char text[VMIC_ERROR_MSG_MAX + 1];
	uint16_t code;

	hb_of(vm)->waiting_id = 0;
	if (!f)
		return false; /* session over: on_down handles the state */
	if (f->type == VMIC_HB_REPLY) {
		hb_on_reply(vm, f);
	} else {
		code = conn_peer_error(f, text, sizeof(text));
		log_debug("%s: the guest answered a heartbeat with '%s': %s",
			  vm_name(vm), vmic_error_name(code), text);
	}
	return false;
}

static void hb_send(struct vm *vm)
{
	struct hb *hb = hb_of(vm);
	uint8_t payload[VMIC_HB_REQUEST_LEN];
	uint64_t seq = hb->seq + 1;
	/* Before the write: a daemon descheduled between the write and a
	 * later clock read would record a round trip too short. */
	uint64_t now = hostd_now_us(vm_hostd(vm));

	vmic_hb_request_encode(seq, payload, sizeof(payload));
	if (request_send(vm, ID, VMIC_HB_REQUEST, payload, sizeof(payload), 0,
			 hb_on_answer, NULL, &hb->waiting_id) < 0)
		return;
	hb->seq = seq;
	hb->sent_us = now;
	daemon_of(vm)->sent++;
}

/* The next deadline: one interval on, and never in the past (a daemon
 * that was stopped or starved skips the ticks it missed). */
static void hb_schedule_next(struct vm *vm)
{
	struct hb *hb = hb_of(vm);
	uint64_t every = (uint64_t)settings_of(vm)->interval_ms * 1000;
	uint64_t now = hostd_now_us(vm_hostd(vm));

	hb->next_tick_us += every;
	if (hb->next_tick_us <= now)
		hb->next_tick_us += (now - hb->next_tick_us) / every * every +
				    every;
	htimer_start_at(&hb->timer, hb->next_tick_us);
}

static void on_hb_tick(struct htimer *t)
{
	struct vm *vm = t->data;
	struct hb *hb = hb_of(vm);
	const struct hb_settings *set = settings_of(vm);
	char every[32], why[96];

	if (!service_usable(vm, ID)) {
		hb->running = false;
		return;
	}
	hb_schedule_next(vm);
	if (!hb->waiting_id) {
		hb_send(vm);
		return;
	}
	/* The previous request is still unanswered: one more miss, and no
	 * new request queued behind it. */
	hb->missed++;
	if (hb->missed >= set->threshold &&
	    (hb->contact || vm_quiet(vm))) {
		vmic_format_duration_ms(set->interval_ms, every, sizeof(every));
		snprintf(why, sizeof(why),
			 "no reply to %u heartbeats (interval %s)", hb->missed,
			 every);
		hb_silent(vm, why);
	}
}

/* Run the tick every interval; the first one after a random part of it,
 * so VMs that connected together (daemon start) do not tick together. */
static void hb_start_timer(struct vm *vm, bool spread)
{
	struct hb *hb = hb_of(vm);
	uint64_t every = (uint64_t)settings_of(vm)->interval_ms * 1000;
	uint64_t first = spread ? every / 2 + vmic_random_u64() % (every / 2 + 1)
				: every;

	hb->running = true;
	hb->next_tick_us = hostd_now_us(vm_hostd(vm)) + first;
	htimer_start_at(&hb->timer, hb->next_tick_us);
}

static void hb_on_up(struct vm *vm)
{
	struct hb *hb = hb_of(vm);
	const struct vmic_session *s = vm_session(vm);
	struct svc_status st;

	if (vmic_session_version(s, ID) == 0) {
		service_status(vm, ID, &st);
		hb_set_state(vm, HB_MISMATCH, "%s", st.secondary);
		return;
	}
	if (!vmic_session_peer_enabled(s, ID)) {
		hb_set_state(vm, HB_NO_CONTACT,
			     "disabled in the guest's configuration");
		return;
	}
	if (hb->state == HB_DISABLED || hb->state == HB_MISMATCH)
		hb_set_state(vm, hb->contact ? HB_LOST : HB_NO_CONTACT,
			     "heartbeat starts; waiting for the first reply");
	hb_drop_waiting(vm);
	/* The first request goes out at once, so contact is known quickly. */
	hb_send(vm);
	hb_start_timer(vm, true);
}

static void hb_on_down(struct vm *vm)
{
	struct hb *hb = hb_of(vm);

	htimer_stop(&hb->timer);
	hb->running = false;
	hb_drop_waiting(vm);
	if (!vm_service_enabled(vm, ID)) {
		/* Enabling again starts over: No Contact until a reply. */
		hb->contact = false;
		hb_set_state(vm, HB_DISABLED, "disabled on the host");
	} else if (hb->state == HB_DISABLED) {
		hb_set_state(vm, hb->contact ? HB_LOST : HB_NO_CONTACT,
			     "enabled on the host; waiting for the guest "
			     "agent");
	} else {
		hb_silent(vm, "the session with the guest agent ended");
	}
}

static void hb_on_notice(struct vm *vm, struct notice *n)
{
	struct hb *hb = hb_of(vm);

	switch (n->kind) {
	case NOTICE_STOPPED:
		/* Off on purpose: silence from now on is expected, so the
		 * heartbeat reads No Contact until the agent is back. */
		hb->contact = false;
		if (hb->state != HB_DISABLED && hb->state != HB_MISMATCH)
			hb_set_state(vm, HB_NO_CONTACT,
				     "the VM was stopped with vmic stop");
		break;
	case NOTICE_ALIVE_WANTED:
		if (hb->state == HB_OK || hb->state == HB_CRITICAL)
			n->alive = true;
		else if (service_usable(vm, ID))
			n->claimed = true;
		break;
	default:
		break;
	}
}

static void hb_status(const struct vm *vm, struct svc_status *st)
{
	const struct hb *hb = hb_of(vm);

	switch (hb->state) {
	case HB_OK:
		st->primary = conn_up(vm) ? SVC_OK : st->primary;
		break;
	case HB_CRITICAL:
		st->primary = SVC_OK;
		snprintf(st->secondary, sizeof(st->secondary),
			 "application critical: %s",
			 hb->reason ? hb->reason : "");
		break;
	case HB_NO_CONTACT:
		st->primary = SVC_NO_CONTACT;
		break;
	case HB_LOST:
		st->primary = SVC_LOST;
		break;
	case HB_MISMATCH:
		st->primary = SVC_MISMATCH;
		break;
	case HB_DISABLED:
		st->primary = SVC_NONE;
		break;
	}
}

/* The state as shown: Disabled whenever the host setting is off. */
static enum hb_state hb_shown(const struct vm *vm)
{
	return vm_service_enabled(vm, ID) ? hb_of(vm)->state : HB_DISABLED;
}

static json_t *int_or_null(int64_t v, bool known)
{
	return known ? json_integer(v) : json_null();
}

static void hb_status_json(const struct vm *vm, json_t *o)
{
	const struct hb *hb = hb_of(vm);
	enum hb_state st = hb_shown(vm);
	bool critical = st == HB_CRITICAL;

	json_object_set_new(o, "state", json_string(hb_state_name(st)));
	json_object_set_new(o, "missed", json_integer(hb->missed));
	json_object_set_new(o, "last_reply_us",
			    int_or_null(hb->last_reply_us,
					hb->last_reply_us != 0));
	json_object_set_new(o, "rtt_us",
			    int_or_null(hb->rtt_us, hb->rtt_us >= 0));
	json_object_set_new(o, "application",
			    json_string(critical ? "Critical" : "OK"));
	json_object_set_new(o, "application_reason",
			    json_string(critical && hb->reason ? hb->reason
							       : ""));
}

/* The state only: the summary is cached while it stays the same, and the
 * round-trip time changes with every reply (`status` shows it). */
static void hb_summary_json(const struct vm *vm, json_t *o)
{
	json_object_set_new(o, "heartbeat",
			    json_string(hb_state_name(hb_shown(vm))));
}

static void hb_stats_json(struct hostd *h, json_t *o, bool reset)
{
	struct hb_daemon *d = hostd_state(h, ID);
	const struct rtt_hist *r = &d->rtt;

	json_object_set_new(o, "heartbeats_sent", json_integer((json_int_t)d->sent));
	json_object_set_new(o, "heartbeat_replies",
			    json_integer((json_int_t)d->replies));
	json_object_set_new(
		o, "rtt_us",
		json_pack("{s:I, s:I, s:I, s:I, s:I}", "p50",
			  (json_int_t)rtt_percentile(r, 50), "p90",
			  (json_int_t)rtt_percentile(r, 90), "p99",
			  (json_int_t)rtt_percentile(r, 99), "max",
			  (json_int_t)r->max, "samples",
			  (json_int_t)r->samples));
	if (reset)
		rtt_reset(&d->rtt);
}

/* A new interval applies at once; the threshold at the next tick. */
static void hb_settings_changed(struct vm *vm)
{
	if (hb_of(vm)->running)
		hb_start_timer(vm, false);
}

const struct host_service heartbeat_host = {
	.desc = &vmic_heartbeat_service,
	.settings = &settings_table,
	.settings_size = sizeof(struct hb_settings),
	.settings_defaults = hb_settings_defaults,
	/* One request waits at a time: a tick that finds it unanswered
	 * counts a miss instead of sending another. */
	.max_requests = 1,
	.daemon_start = hb_daemon_start,
	.daemon_stop = hb_daemon_stop,
	.attach = hb_attach,
	.detach = hb_detach,
	.release = hb_release,
	.loaded = hb_loaded,
	.on_up = hb_on_up,
	.on_down = hb_on_down,
	.on_notice = hb_on_notice,
	.settings_changed = hb_settings_changed,
	.status = hb_status,
	.status_json = hb_status_json,
	.summary_json = hb_summary_json,
	.stats_json = hb_stats_json,
	.own_status_events = true,
};
