/* SPDX-License-Identifier: MIT */
/*
 * One connection per VM: connect, link, hello handshake, dispatch,
 * reconnect.
 *
 *   connecting --connected--> handshake --hello echo--> connected
 *        |                        |                         |
 *        +-------- failure -------+------ close/error ------+--> retrying
 *   retrying --timer--> connecting
 *
 * Failures back off exponentially between [connection] retry-min and
 * retry-max, each delay moved by up to a quarter at random so that VMs
 * that failed together spread out; the delay starts over once a session
 * was established. While
 * the handshake is pending our hello is repeated (1 s, doubling to 30 s),
 * since the agent's hello usually arrived first and ours may have been
 * lost in garbage left in a virtio-serial port.
 *
 * Corrupt bytes from the guest do not close the stream: reconnecting to a
 * QEMU chardev would not flush what the guest queued behind it. The
 * decoder hunts for the next hello and we start a new session, whose hello
 * makes the agent answer with one. Everything a VM's peer does (garbage,
 * silence, a stalled reader) ends at most in a new session or in closing
 * this VM's link; no other VM notices.
 *
 * A new session costs the host more than the guest (each service starts
 * over: KVP copies its pools), so the sessions a guest starts are
 * rate-limited: every hello with a new nonce (an agent restart, a
 * resynchronisation, a reconnect) takes a token of a bucket of
 * [connection] session-burst, refilled one per session-interval. Without
 * a token the guest is held: its session (if up) ends, and its hellos go
 * unanswered until the bucket has one again, and at least HOLD_MIN_MS,
 * doubling up to HOLD_MAX_MS while it goes on; then our hello asks for a
 * new session. One event says so per run of holds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "common/random.h"
#include "common/utf8.h"
#include "common/wire.h"
#include "hostd.h"
#include "proto/control.h"
#include "proto/hello.h"
#include "proto/services.h"

#define HELLO_RESEND_MAX_MS 30000
/* A guest out of session tokens: its hellos wait this long, doubling per
 * hold until the bucket is full again. */
#define HOLD_MIN_MS 1000
#define HOLD_MAX_MS 60000
/* Our hello is at most this big (software string + offers). */
#define HELLO_FRAME_MAX (VMIC_HDR_SIZE + 64 + VMIC_SOFTWARE_MAX + \
			 4 * VMIC_HELLO_MAX_OFFERS)

static void conn_attempt(struct vm *vm);
static void conn_schedule_retry(struct vm *vm);

static const char *const state_names[] = {
	[CONN_CONNECTING] = "connecting",
	[CONN_HANDSHAKE] = "handshake",
	[CONN_CONNECTED] = "connected",
	[CONN_RETRYING] = "retrying",
	[CONN_CLOSED] = "closed",
};

const char *conn_state_name(enum conn_state s)
{
	return s < ARRAY_SIZE(state_names) ? state_names[s] : "unknown";
}

void conn_init(struct vm *vm)
{
	struct conn *c = &vm->conn;

	c->state = CONN_CONNECTING;
	c->since_us = vmic_realtime_us();
	c->retry_ms = vm->h->cfg.retry_min_ms;
	c->hello_ms = VMIC_HELLO_RETRY_MS;
	uv_timer_init(vm->h->loop, &c->timer);
	c->timer.data = vm;
}

static void conn_set_state(struct vm *vm, enum conn_state s)
{
	if (vm->conn.state == s)
		return;
	vm_touch(vm);
	vm->conn.state = s;
	vm->conn.since_us = vmic_realtime_us();
}

static void conn_set_error(struct vm *vm, const char *fmt, ...)
	PRINTF_LIKE(2, 3);
static void conn_set_error(struct vm *vm, const char *fmt, ...)
{
	char raw[ERROR_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	vmic_utf8_sanitize(vm->conn.last_error, sizeof(vm->conn.last_error),
			   raw, strlen(raw));
}

int64_t conn_next_retry_ms(const struct vm *vm)
{
	uint64_t now = vmic_mono_us();

	if (vm->conn.state != CONN_RETRYING)
		return -1;
	return vm->conn.retry_at_us > now
		       ? (int64_t)((vm->conn.retry_at_us - now + 999) / 1000)
		       : 0;
}

int64_t conn_hold_ms(const struct vm *vm)
{
	uint64_t now = vmic_mono_us(), until = vm->conn.hold_until_us;

	if (!until)
		return -1;
	return until > now ? (int64_t)((until - now + 999) / 1000) : 0;
}

int conn_send(struct vm *vm, const uint8_t *frame, size_t len)
{
	struct vmic_link *l = vm->conn.link;
	int r;

	if (!l || l->closing)
		return -ENOTCONN;
	r = vmic_link_send(l, frame, len, 0);
	if (r == -ENOBUFS) {
		/* The guest stopped reading: holding more for it would let
		 * one VM grow the daemon without bound. */
		vmic_link_close(l, -ENOBUFS);
	}
	return r;
}

void conn_send_error(struct vm *vm, const struct vmic_frame *f, int code,
		     const char *message)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_ERROR_MAX_LEN];
	size_t n = vmic_error_frame(buf, f->service, f->request_id,
				    (uint16_t)code, message);

	conn_send(vm, buf, n);
}

static void conn_send_hello(struct vm *vm)
{
	uint8_t buf[HELLO_FRAME_MAX];
	int n = vmic_session_hello_frame(&vm->conn.session, buf, sizeof(buf));

	if (n > 0)
		conn_send(vm, buf, (size_t)n);
}

void conn_send_services(struct vm *vm)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_SERVICES_LEN];
	size_t n;

	if (!conn_up(vm))
		return;
	vmic_put_le32(buf + VMIC_HDR_SIZE, vm->enabled_mask);
	n = vmic_frame_seal(buf, VMIC_SVC_CONTROL, VMIC_CTL_SERVICES, 0,
			    conn_request_id(vm), 0, VMIC_SERVICES_LEN);
	conn_send(vm, buf, n);
}

/* A fresh session with the host's offers for this VM's settings. */
static void conn_session_start(struct vm *vm)
{
	struct vmic_offer local[VMIC_SVC_COUNT] = { 0 };

	for (size_t i = 0; i < vmic_service_count; i++) {
		const struct vmic_service_desc *d = vmic_services[i];

		if (d->id >= VMIC_SVC_COUNT)
			continue; /* cannot happen; tells GCC the bound */
		local[d->id] = (struct vmic_offer){
			.service = d->id,
			.min_version = d->min_version,
			.max_version = d->max_version,
			.flags = vm_service_enabled(vm, d->id)
					 ? VMIC_OFFER_ENABLED
					 : 0,
		};
	}
	vmic_session_start(&vm->conn.session, VMIC_ROLE_HOST,
			   vmic_random_u64(), HOSTD_SOFTWARE, local);
}

static void on_hello_timer(uv_timer_t *t)
{
	struct vm *vm = t->data;
	struct conn *c = &vm->conn;

	if (c->state != CONN_HANDSHAKE)
		return;
	log_debug("%s: no session yet, sending our hello again", vm->name);
	conn_send_hello(vm);
	c->hello_ms = MIN(c->hello_ms * 2, HELLO_RESEND_MAX_MS);
	uv_timer_start(&c->timer, on_hello_timer, c->hello_ms, 0);
}

/* Session established: services up, the guest learns our switches. */
static void conn_established(struct vm *vm)
{
	struct conn *c = &vm->conn;
	enum conn_state from = c->state;

	uv_timer_stop(&c->timer);
	conn_set_state(vm, CONN_CONNECTED);
	c->attempts = 0;
	c->retry_ms = vm->h->cfg.retry_min_ms;
	c->last_error[0] = '\0';
	c->contact = true;
	c->sessions++;
	vm_touch(vm);
	c->bad_frame_reported = false;
	c->resyncs = 0;
	events_emit(vm->h, vm->name, NULL, "connection",
		    conn_state_name(from), "connected",
		    "session established with %s",
		    c->agent[0] ? c->agent : "the guest agent");
	conn_send_services(vm);
	services_up(vm);
	services_refresh(vm);
	vm_notify(vm, &(struct notice){ .kind = NOTICE_SESSION_UP });
}

/* The session ended: the services stop, waiting requests fail. */
static void conn_session_down(struct vm *vm)
{
	/* Streams first: their owners hear the reset while services still
	 * hold their state. The new session starts with none. */
	if (vm->conn.link)
		vmic_link_streams_reset(vm->conn.link);
	services_down(vm);
	requests_fail_all(vm, -ECONNRESET);
}

void conn_forget_contact(struct vm *vm)
{
	vm->conn.contact = false;
	vm_touch(vm);
}

/* The agent restarted behind a live stream (virtio-serial keeps it). */
static void conn_peer_restarted(struct vm *vm)
{
	conn_session_down(vm);
	conn_set_state(vm, CONN_HANDSHAKE);
	events_emit(vm->h, vm->name, NULL, "connection", "connected",
		    "handshake", "the guest agent restarted (new session)");
	services_refresh(vm);
	vm->conn.hello_ms = VMIC_HELLO_RETRY_MS;
	uv_timer_start(&vm->conn.timer, on_hello_timer, vm->conn.hello_ms, 0);
}

static void conn_note_peer(struct vm *vm, const struct vmic_hello *h)
{
	struct conn *c = &vm->conn;

	vmic_utf8_sanitize(c->agent, sizeof(c->agent), h->software,
			   strlen(h->software));
	vm_touch(vm);
}

/*
 * May the guest start another session? Takes a token and returns 0, or
 * returns the microseconds until the bucket has one. The bucket is kept
 * as the time it is full again (session_tat_us): a session moves it one
 * session-interval on; it may run burst - 1 intervals ahead of now.
 */
static uint64_t conn_session_wait_us(struct vm *vm)
{
	struct conn *c = &vm->conn;
	const struct hostd_config *cfg = &vm->h->cfg;
	uint64_t now = vmic_mono_us();
	uint64_t step = (uint64_t)cfg->session_interval_ms * 1000;
	uint64_t ahead = (uint64_t)(MAX(cfg->session_burst, 1u) - 1) * step;
	uint64_t tat = MAX(c->session_tat_us, now);

	if (c->session_tat_us <= now) {
		/* Full again: the guest calmed down. */
		c->hold_ms = 0;
		c->hold_noted = false;
	}
	if (tat - now > ahead)
		return tat - now - ahead;
	c->session_tat_us = tat + step;
	return 0;
}

static void on_hold_timer(uv_timer_t *t)
{
	struct vm *vm = t->data;
	struct conn *c = &vm->conn;

	c->hold_until_us = 0;
	vm_touch(vm);
	log_debug("%s: the hold is over; asking the guest for a session",
		  vm->name);
	conn_send_hello(vm);
	c->hello_ms = VMIC_HELLO_RETRY_MS;
	uv_timer_start(&c->timer, on_hello_timer, c->hello_ms, 0);
}

/*
 * The event of a run of holds. A flood of sessions has used up the VM's
 * event budget by then, so it goes past the rate limit (events-limit.c);
 * at most one per HOLD_MAX_MS keeps it bounded. True when it went out.
 */
static bool conn_hold_note(struct vm *vm, const char *every,
			   const char *span)
{
	struct conn *c = &vm->conn;
	uint64_t now = vmic_mono_us();
	struct event *e;

	if (c->hold_noted ||
	    (c->hold_noted_us && now - c->hold_noted_us < HOLD_MAX_MS * 1000ull))
		return false;
	c->hold_noted = true;
	c->hold_noted_us = now;
	e = events_prepare(vm->h, vm->name, NULL, "connection", NULL, NULL,
			   "the guest starts sessions faster than [connection] "
			   "session-burst (%u) and session-interval (%s) "
			   "allow: its hellos are answered only after a delay "
			   "(%s now, doubling up to %ds) until it calms down",
			   vm->h->cfg.session_burst, every, span,
			   HOLD_MAX_MS / 1000);
	if (e)
		events_emit_event(vm->h, e);
	return e != NULL;
}

/*
 * The guest starts sessions faster than the bucket allows: end its
 * session, start ours anew (a fresh nonce, so only an answer to our next
 * hello makes one) and answer nothing until the hold is over.
 */
static void conn_hold(struct vm *vm, uint64_t wait_us)
{
	struct conn *c = &vm->conn;
	const struct hostd_config *cfg = &vm->h->cfg;
	bool was_up = c->state == CONN_CONNECTED;
	char every[32], span[32];
	uint64_t ms;

	c->hold_ms = c->hold_ms ? MIN(c->hold_ms * 2, HOLD_MAX_MS)
				: HOLD_MIN_MS;
	ms = MAX((wait_us + 999) / 1000, (uint64_t)c->hold_ms);
	c->hold_until_us = vmic_mono_us() + ms * 1000;
	vmic_format_duration_ms(cfg->session_interval_ms, every,
				sizeof(every));
	vmic_format_duration_ms(ms, span, sizeof(span));
	if (was_up)
		conn_session_down(vm);
	conn_set_state(vm, CONN_HANDSHAKE);
	conn_session_start(vm);
	conn_set_error(vm, "the guest starts sessions faster than %u at once "
			   "and then one per %s; its hellos are answered "
			   "again in %s",
		       cfg->session_burst, every, span);
	if (was_up)
		events_emit(vm->h, vm->name, NULL, "connection", "connected",
			    "handshake", "the guest agent restarted (new "
					 "session), held for %s",
			    span);
	if (!conn_hold_note(vm, every, span))
		log_debug("%s: %s", vm->name, c->last_error);
	if (was_up)
		services_refresh(vm);
	uv_timer_start(&c->timer, on_hold_timer, ms, 0);
}

static int conn_on_hello(struct vm *vm, const struct vmic_frame *f)
{
	struct conn *c = &vm->conn;
	struct vmic_hello h;
	bool was_up = c->state == CONN_CONNECTED;
	uint64_t wait;
	int res;

	if (vmic_hello_decode(f->payload, f->length, &h) < 0) {
		conn_send_error(vm, f, VMIC_E_MALFORMED,
				"hello does not decode: a field is missing, a "
				"string is not UTF-8 or an offer is invalid");
		return 0;
	}
	if (c->hold_until_us)
		return 0; /* held: answered once the hold is over */
	if (h.role == VMIC_ROLE_GUEST && h.nonce != c->session.peer_nonce &&
	    (wait = conn_session_wait_us(vm)) > 0) {
		conn_hold(vm, wait);
		return 0;
	}
	res = vmic_session_on_hello(&c->session, &h);
	if (res < 0) {
		conn_set_error(vm, "the peer is a vmic host, not a guest "
				   "agent (is the channel looped back?)");
		return -EPROTO;
	}
	if (res & VMIC_HELLO_NEW_PEER) {
		conn_note_peer(vm, &h);
		if (was_up)
			conn_peer_restarted(vm);
	}
	if (res & VMIC_HELLO_REPLY)
		conn_send_hello(vm);
	if (res & VMIC_HELLO_UP)
		conn_established(vm);
	else if (was_up && !(res & VMIC_HELLO_NEW_PEER)) {
		/* Same peer, new offers (its config changed): re-evaluate. */
		services_refresh(vm);
	}
	return 0;
}

/* A frame that failed the message table: answer requests, count all. */
static void conn_bad_frame(struct vm *vm, const struct vmic_frame *f,
			   int code)
{
	char msg[256];
	bool request = vmic_frame_is_request(f);

	vm->conn.bad_frames++;
	switch (code) {
	case VMIC_E_UNKNOWN_SERVICE:
		snprintf(msg, sizeof(msg), "%s does not know service %u",
			 HOSTD_SOFTWARE, f->service);
		break;
	case VMIC_E_UNKNOWN_TYPE:
		snprintf(msg, sizeof(msg), "%s does not accept message type "
					   "%u of service %u from a guest",
			 HOSTD_SOFTWARE, f->type, f->service);
		break;
	default:
		snprintf(msg, sizeof(msg), "message type %u of service %u has "
					   "a payload of %u bytes, outside its "
					   "allowed range",
			 f->type, f->service, f->length);
		break;
	}
	log_debug("%s: %s", vm->name, msg);
	if (request)
		conn_send_error(vm, f, code, msg);
	if (!vm->conn.bad_frame_reported) {
		vm->conn.bad_frame_reported = true;
		events_emit(vm->h, vm->name, NULL, "protocol-error", NULL,
			    NULL, "the guest sent an invalid frame: %s "
				  "(further ones on this connection are only "
				  "counted)",
			    msg);
	}
}

uint16_t conn_peer_error(const struct vmic_frame *f, char *text, size_t n)
{
	struct vmic_error e;

	text[0] = '\0';
	if (vmic_error_decode(f->payload, f->length, &e) < 0)
		return VMIC_E_MALFORMED;
	vmic_utf8_sanitize(text, n, e.message, strlen(e.message));
	return e.code;
}

static int conn_on_control(struct vm *vm, const struct vmic_frame *f)
{
	char text[VMIC_ERROR_MSG_MAX + 1];
	uint16_t code;

	switch (f->type) {
	case VMIC_CTL_INFO:
		return guest_info_on_frame(vm, f);
	case VMIC_T_ERROR:
		code = conn_peer_error(f, text, sizeof(text));
		log_debug("%s: the guest answered a control message with "
			  "'%s': %s",
			  vm->name, vmic_error_name(code), text);
		return 0;
	default:
		return 0;
	}
}

/*
 * An answer whose request nobody waits for (it timed out, or the guest
 * is confused): counted, and logged once per session.
 */
static void conn_unexpected_answer(struct vm *vm, const struct vmic_frame *f)
{
	struct conn *c = &vm->conn;

	if (c->unexpected_answers++ == 0)
		log_info("%s: an answer (service %u, type %u, request %u) "
			 "nobody waits for any more; further ones this "
			 "session are only counted",
			 vm->name, f->service, f->type, f->request_id);
}

static int conn_on_frame(void *ud, const struct vmic_frame *f)
{
	struct vm *vm = ud;
	int code = vmic_msg_check(f, VMIC_DIR_G2H);

	if (code) {
		conn_bad_frame(vm, f, code);
		return 0;
	}
	if (f->service == VMIC_SVC_CONTROL && f->type == VMIC_CTL_HELLO)
		return conn_on_hello(vm, f);
	if (!vm->conn.session.established || vm->conn.state != CONN_CONNECTED) {
		/* Left over from an earlier session in a virtio-serial port. */
		vm->conn.stale_frames++;
		log_debug("%s: dropping a stale frame (service %u type %u) "
			  "before the session is up",
			  vm->name, f->service, f->type);
		return 0;
	}
	if ((f->flags & VMIC_F_REPLY) && requests_deliver(vm, f))
		return 0;
	if (f->service == VMIC_SVC_CONTROL)
		return conn_on_control(vm, f);
	if (f->flags & VMIC_F_REPLY) {
		conn_unexpected_answer(vm, f);
		return 0;
	}
	return services_dispatch(vm, f);
}

static const char *close_reason_text(int reason, char *buf, size_t n)
{
	switch (reason) {
	case 0:
		return "closed by the host";
	case -EPIPE:
	case UV_EOF:
		return "the guest closed the channel";
	case -EBADMSG:
		return "corrupt frame header (bad magic or checksum)";
	case -EMSGSIZE:
		return "frame length over the protocol limit";
	case -ENOBUFS:
		return "the guest stopped reading (output queue full)";
	case -EPROTO:
		return "protocol violation";
	default:
		snprintf(buf, n, "channel error: %s", uv_strerror(reason));
		return buf;
	}
}

static void conn_on_close(void *ud, int reason)
{
	struct vm *vm = ud;
	struct conn *c = &vm->conn;
	enum conn_state from = c->state;
	char buf[128];
	const char *why = close_reason_text(reason, buf, sizeof(buf));

	c->bytes_in = c->link->bytes_in;
	c->bytes_out = c->link->bytes_out;
	free(c->link);
	c->link = NULL;
	if (vm->removed || vm->h->stopping) {
		vm_unref(vm);
		return;
	}
	if (reason == -EBADMSG || reason == -EMSGSIZE)
		events_emit(vm->h, vm->name, NULL, "protocol-error", NULL, NULL,
			    "%s; reconnecting", why);
	if (reason != -EPROTO || !c->last_error[0])
		conn_set_error(vm, "%s", why);
	if (from == CONN_CONNECTED)
		conn_session_down(vm);
	uv_timer_stop(&c->timer);
	c->hold_until_us = 0;
	conn_set_state(vm, CONN_RETRYING);
	if (from == CONN_CONNECTED || c->attempts == 0)
		events_emit(vm->h, vm->name, NULL, "connection",
			    conn_state_name(from), "retrying", "%s",
			    c->last_error);
	c->attempts++;
	services_refresh(vm);
	vm_notify(vm, &(struct notice){ .kind = NOTICE_CHANNEL_CLOSED,
					.err = reason });
	conn_schedule_retry(vm);
	vm_unref(vm);
}

/*
 * The decoder met corrupt bytes and hunts for the next hello. Start a new
 * session so the agent sends one. One event per session: a guest that
 * keeps sending garbage is counted, not logged every time.
 */
static void conn_on_resync(void *ud, uint64_t dropped)
{
	struct vm *vm = ud;
	struct conn *c = &vm->conn;
	bool was_up = c->state == CONN_CONNECTED;

	if (c->hold_until_us) {
		/* Held: the hold's end starts the next session. */
		c->resyncs++;
		return;
	}
	if (++c->resyncs == 1)
		events_emit(vm->h, vm->name, NULL, "protocol-error", NULL,
			    NULL,
			    "corrupt bytes from the guest (%llu dropped so "
			    "far); resynchronising on a new session",
			    (unsigned long long)dropped);
	if (was_up)
		conn_session_down(vm);
	conn_set_state(vm, CONN_HANDSHAKE);
	if (was_up) {
		events_emit(vm->h, vm->name, NULL, "connection", "connected",
			    "handshake", "resynchronising after corrupt bytes");
		services_refresh(vm);
	}
	conn_session_start(vm);
	conn_send_hello(vm);
	c->hello_ms = VMIC_HELLO_RETRY_MS;
	uv_timer_start(&c->timer, on_hello_timer, c->hello_ms, 0);
}

static const struct vmic_link_ops conn_link_ops = {
	.on_frame = conn_on_frame,
	.on_close = conn_on_close,
	.on_resync = conn_on_resync,
};

static void conn_connect_failed(struct vm *vm, int err, const char *what)
{
	struct conn *c = &vm->conn;
	enum conn_state from = c->state;

	if (err == UV_EMFILE || err == UV_ENFILE)
		conn_set_error(vm, "%s: %s; the daemon is out of file "
				   "descriptors: raise LimitNOFILE= of "
				   "vmic-hostd.service",
			       what ? what : "connect", uv_strerror(err));
	else
		conn_set_error(vm, "%s: %s", what ? what : "connect",
			       uv_strerror(err));
	conn_set_state(vm, CONN_RETRYING);
	/* One event per run of failures, not one per attempt: a VM that
	 * is off would otherwise fill the log every retry-max. */
	if (c->attempts == 0)
		events_emit(vm->h, vm->name, NULL, "connection",
			    conn_state_name(from), "retrying", "%s",
			    c->last_error);
	else
		log_debug("%s: %s (attempt %u)", vm->name, c->last_error,
			  c->attempts + 1);
	c->attempts++;
	vm_notify(vm, &(struct notice){ .kind = NOTICE_CONNECT_FAILED,
					.err = err });
	conn_schedule_retry(vm);
}

static void conn_on_connected(void *ud, int status, uv_stream_t *stream,
			      const char *what)
{
	struct vm *vm = ud;
	struct conn *c = &vm->conn;
	int r;

	c->connector = NULL;
	if (status < 0) {
		conn_connect_failed(vm, status, what);
		return;
	}
	c->link = calloc(1, sizeof(*c->link));
	if (!c->link) {
		vmic_stream_free(stream);
		conn_connect_failed(vm, -ENOMEM, "link");
		return;
	}
	r = vmic_link_open(c->link, stream, true, &conn_link_ops, vm);
	if (r < 0) {
		free(c->link);
		c->link = NULL;
		conn_connect_failed(vm, r, "read");
		return;
	}
	/* The link answers stream frames itself (services open streams). */
	vmic_link_streams_attach(c->link, false, vm->h->cfg.max_streams);
	vm_ref(vm); /* dropped in conn_on_close */
	requests_restart_ids(vm);
	c->stale_frames = 0;
	c->unexpected_answers = 0;
	c->resyncs = 0;
	conn_set_state(vm, CONN_HANDSHAKE);
	conn_session_start(vm);
	conn_send_hello(vm);
	c->hello_ms = VMIC_HELLO_RETRY_MS;
	uv_timer_start(&c->timer, on_hello_timer, c->hello_ms, 0);
}

static void conn_attempt(struct vm *vm)
{
	struct conn *c = &vm->conn;
	int r;

	if (vm->removed || vm->h->stopping)
		return;
	conn_set_state(vm, CONN_CONNECTING);
	if (vm->channel.kind == 0) {
		conn_connect_failed(vm, -EINVAL, "invalid channel");
		return;
	}
	r = vmic_connect(vm->h->loop, &vm->channel,
			 vm->h->cfg.connect_timeout_ms, conn_on_connected, vm,
			 &c->connector);
	if (r < 0) {
		c->connector = NULL;
		conn_connect_failed(vm, r, "connect");
	}
}

static void on_retry_timer(uv_timer_t *t)
{
	conn_attempt(t->data);
}

static void conn_schedule_retry(struct vm *vm)
{
	struct conn *c = &vm->conn;
	const struct hostd_config *cfg = &vm->h->cfg;
	unsigned delay = c->retry_ms;

	if (vm->removed || vm->h->stopping)
		return;
	c->retry_ms = MIN(MAX(c->retry_ms, cfg->retry_min_ms) * 2,
			  cfg->retry_max_ms);
	delay = MIN(MAX(delay, cfg->retry_min_ms), cfg->retry_max_ms);
	/* +-25 %: VMs that failed together (a host daemon start, a network
	 * of VMs gone at once) must not retry together forever. */
	delay = delay * 3 / 4 + (unsigned)(vmic_random_u64() % (delay / 2 + 1));
	c->retry_at_us = vmic_mono_us() + (uint64_t)delay * 1000;
	uv_timer_start(&c->timer, on_retry_timer, delay, 0);
}

void conn_start(struct vm *vm)
{
	uv_timer_stop(&vm->conn.timer);
	conn_attempt(vm);
}

/* Drop the connector or link without the usual retry bookkeeping. */
static void conn_drop(struct vm *vm)
{
	struct conn *c = &vm->conn;

	uv_timer_stop(&c->timer);
	c->hold_until_us = 0;
	if (c->connector) {
		vmic_connect_cancel(c->connector);
		c->connector = NULL;
	}
	if (c->link && !c->link->closing)
		vmic_link_close(c->link, 0);
}

void conn_restart(struct vm *vm)
{
	struct conn *c = &vm->conn;

	c->attempts = 0;
	c->retry_ms = vm->h->cfg.retry_min_ms;
	if (c->link) {
		/* on_close reports the drop and schedules the first retry,
		 * at retry-min. */
		conn_drop(vm);
		return;
	}
	conn_drop(vm);
	conn_attempt(vm);
}

void conn_shutdown(struct vm *vm)
{
	/* No services_down: a VM that goes away reports no state changes,
	 * and its timers are closed by vm_destroy. */
	conn_drop(vm);
	vm->conn.state = CONN_CLOSED;
}

const char *conn_stream_error(const struct vm *vm, int err, char *msg,
			      size_t n)
{
	switch (err) {
	case -EMFILE:
		snprintf(msg, n,
			 "VM '%s' has %u streams open, the most [connection] "
			 "max-streams of vmic-hostd.conf allows; wait for an "
			 "operation to end, or raise it",
			 vm->name,
			 vm->conn.link ? vm->conn.link->streams.count : 0);
		return "limit";
	case -ENOTCONN:
		snprintf(msg, n, "VM '%s' is not connected (%s)", vm->name,
			 conn_state_name(vm->conn.state));
		return "not-connected";
	default:
		snprintf(msg, n, "cannot open a stream to VM '%s': %s",
			 vm->name, strerror(-err));
		return "internal";
	}
}
