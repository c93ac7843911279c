/* SPDX-License-Identifier: MIT */
/*
 * Heartbeat, host half.
 *
 * While the service is usable (enabled here, session up, a version agreed,
 * allowed by the guest) the host sends REQUEST{seq} every interval from a
 * per-VM uv_timer. A reply is valid when seq-1 is a request we sent and
 * have not seen answered; a late reply still counts as contact. A tick
 * that finds the previous request unanswered counts a miss; `threshold`
 * misses in a row read Lost Communication. The cost per VM per interval
 * is one timer callback, one write and one read: nothing scans all VMs.
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
#include "hostd.h"
#include "proto/control.h"
#include "proto/heartbeat.h"
#include "proto/hello.h"
#include "proto/services.h"

static const char *const state_names[] = {
	[HB_NO_CONTACT] = "No Contact",
	[HB_OK] = "OK",
	[HB_CRITICAL] = "OK (application critical)",
	[HB_LOST] = "Lost Communication",
	[HB_MISMATCH] = "Protocol Mismatch",
	[HB_DISABLED] = "Disabled",
};

const char *hb_state_name(enum hb_state s)
{
	return s < ARRAY_SIZE(state_names) ? state_names[s] : "unknown";
}

void hb_init(struct vm *vm)
{
	struct hb *hb = &vm->hb;

	hb->state = HB_NO_CONTACT;
	hb->rtt_us = -1;
	uv_timer_init(vm->h->loop, &hb->timer);
	hb->timer.data = vm;
}

void hb_free(struct vm *vm)
{
	free(vm->hb.reason);
	vm->hb.reason = NULL;
}

static void hb_set_state(struct vm *vm, enum hb_state to, const char *fmt, ...)
	PRINTF_LIKE(3, 4);
static void hb_set_state(struct vm *vm, enum hb_state to, const char *fmt, ...)
{
	struct hb *hb = &vm->hb;
	enum hb_state from = hb->state;
	char msg[VMIC_HB_REASON_MAX + 128];
	va_list ap;

	if (from == to)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hb->state = to;
	events_emit(vm->h, vm->name, "heartbeat", "heartbeat",
		    hb_state_name(from), hb_state_name(to), "%s", msg);
	if ((to == HB_OK || to == HB_CRITICAL) && vm->stop)
		shutdown_on_heartbeat_ok(vm);
}

static void hb_clear_ring(struct hb *hb)
{
	memset(hb->ring, 0, sizeof(hb->ring));
	hb->missed = 0;
}

static void hb_send(struct vm *vm)
{
	struct hb *hb = &vm->hb;
	uint8_t buf[VMIC_HDR_SIZE + VMIC_HB_REQUEST_LEN];
	uint64_t seq = ++hb->seq;
	size_t n;

	vmic_hb_request_encode(seq, buf + VMIC_HDR_SIZE, VMIC_HB_REQUEST_LEN);
	n = vmic_frame_seal(buf, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST, 0,
			    conn_request_id(vm), 0, VMIC_HB_REQUEST_LEN);
	hb->ring[seq % HB_RING].seq = seq;
	hb->ring[seq % HB_RING].sent_us = vmic_mono_us();
	if (conn_send(vm, buf, n) == 0)
		vm->h->hb_sent++;
}

static bool hb_outstanding(const struct hb *hb, uint64_t seq)
{
	return seq && hb->ring[seq % HB_RING].seq == seq &&
	       hb->ring[seq % HB_RING].sent_us != 0;
}

static void on_hb_tick(uv_timer_t *t)
{
	struct vm *vm = t->data;
	struct hb *hb = &vm->hb;
	char every[32];

	if (!service_usable(vm, VMIC_SVC_HEARTBEAT)) {
		uv_timer_stop(t);
		hb->running = false;
		return;
	}
	if (hb_outstanding(hb, hb->seq)) {
		hb->missed++;
		/* Without a first reply it stays No Contact (docs/control.md). */
		if (hb->missed >= vm->hb_threshold && hb->contact) {
			vmic_format_duration_ms(vm->hb_interval_ms, every,
						sizeof(every));
			hb_set_state(vm, HB_LOST,
				     "no reply to %u heartbeats (interval %s)",
				     hb->missed, every);
		}
	}
	hb_send(vm);
}

void hb_on_up(struct vm *vm)
{
	struct hb *hb = &vm->hb;
	const struct vmic_session *s = &vm->conn.session;
	struct svc_status st;

	if (!vm_service_enabled(vm, VMIC_SVC_HEARTBEAT))
		return;
	if (vmic_session_version(s, VMIC_SVC_HEARTBEAT) == 0) {
		service_status(vm, VMIC_SVC_HEARTBEAT, &st);
		hb_set_state(vm, HB_MISMATCH, "%s", st.secondary);
		return;
	}
	if (!vmic_session_peer_enabled(s, VMIC_SVC_HEARTBEAT)) {
		hb_set_state(vm, HB_NO_CONTACT,
			     "disabled in the guest's configuration");
		return;
	}
	if (hb->state == HB_DISABLED || hb->state == HB_MISMATCH)
		hb_set_state(vm, hb->contact ? HB_LOST : HB_NO_CONTACT,
			     "heartbeat starts; waiting for the first reply");
	hb_clear_ring(hb);
	hb->running = true;
	/* The first request goes out at once, so contact is known quickly.
	 * The next tick comes after a random part of the interval: VMs that
	 * connected together (daemon start) must not tick together. */
	hb_send(vm);
	uv_timer_start(&hb->timer, on_hb_tick,
		       vm->hb_interval_ms / 2 +
			       vmic_random_u64() % (vm->hb_interval_ms / 2 + 1),
		       vm->hb_interval_ms);
}

void hb_on_down(struct vm *vm)
{
	struct hb *hb = &vm->hb;

	uv_timer_stop(&hb->timer);
	hb->running = false;
	hb_clear_ring(hb);
	if (!vm_service_enabled(vm, VMIC_SVC_HEARTBEAT)) {
		/* Enabling again starts over: No Contact until a reply. */
		hb->contact = false;
		hb_set_state(vm, HB_DISABLED, "disabled on the host");
	}
	else if (hb->state == HB_DISABLED)
		hb_set_state(vm, hb->contact ? HB_LOST : HB_NO_CONTACT,
			     "enabled on the host; waiting for the guest "
			     "agent");
	else if (hb->contact)
		hb_set_state(vm, HB_LOST,
			     "the session with the guest agent ended");
	else
		hb_set_state(vm, HB_NO_CONTACT,
			     "the session with the guest agent ended before "
			     "the first reply");
}

void hb_forget_contact(struct vm *vm, const char *why)
{
	vm->hb.contact = false;
	if (vm->hb.state != HB_DISABLED && vm->hb.state != HB_MISMATCH)
		hb_set_state(vm, HB_NO_CONTACT, "%s", why);
}

static void hb_apply_health(struct vm *vm, const struct vmic_hb_reply *m)
{
	struct hb *hb = &vm->hb;
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
			events_emit(vm->h, vm->name, "heartbeat", "heartbeat",
				    hb_state_name(from), hb_state_name(from),
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
	struct hb *hb = &vm->hb;
	struct vmic_hb_reply m;
	uint64_t now = vmic_mono_us(), rtt, seq;

	if (vmic_hb_reply_decode(f->payload, f->length, &m) < 0) {
		log_debug("%s: malformed heartbeat reply dropped", vm->name);
		vm->conn.bad_frames++;
		return;
	}
	seq = m.seq - 1;
	if (!hb_outstanding(hb, seq)) {
		log_debug("%s: heartbeat reply for a sequence number we are "
			  "not waiting for",
			  vm->name);
		return;
	}
	rtt = now - hb->ring[seq % HB_RING].sent_us;
	hb->ring[seq % HB_RING].sent_us = 0;
	hb->missed = 0;
	hb->rtt_us = (int64_t)rtt;
	hb->last_reply_us = vmic_realtime_us();
	hb->contact = true;
	vm->h->hb_replies++;
	rtt_add(&vm->h->rtt, rtt);
	hb_apply_health(vm, &m);
}

int hb_on_frame(struct vm *vm, const struct vmic_frame *f)
{
	char text[VMIC_ERROR_MSG_MAX + 1];
	uint16_t code;

	switch (f->type) {
	case VMIC_HB_REPLY:
		hb_on_reply(vm, f);
		return 0;
	case VMIC_T_ERROR:
		code = conn_peer_error(f, text, sizeof(text));
		log_debug("%s: the guest answered a heartbeat with '%s': %s",
			  vm->name, vmic_error_name(code), text);
		return 0;
	default:
		/* Stream frames mean nothing to heartbeat. */
		if (vmic_frame_is_request(f))
			conn_send_error(vm, f, VMIC_E_UNKNOWN_TYPE,
					"heartbeat has no such message");
		return 0;
	}
}

void hb_status(const struct vm *vm, struct svc_status *st)
{
	const struct hb *hb = &vm->hb;

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

void hb_settings_changed(struct vm *vm)
{
	struct hb *hb = &vm->hb;

	if (!hb->running)
		return;
	uv_timer_start(&hb->timer, on_hb_tick, vm->hb_interval_ms,
		       vm->hb_interval_ms);
}
