/* SPDX-License-Identifier: MIT */
/*
 * The agent's side of one host connection: the link, the hello
 * handshake, and dispatch of frames to the services.
 *
 * One connection at a time; admit.c decides whether a new one replaces
 * it. Until the session is established every frame but a hello is stale
 * (left in a virtio-serial port by an earlier host or agent) and dropped
 * without an answer.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/random.h"
#include "common/strbuf.h"
#include "common/wire.h"
#include "guestd.h"
#include "proto/control.h"
#include "proto/frame.h"
#include "proto/services.h"

#define HELLO_RETRY_MAX_MS 30000

static void conn_send_hello(struct guest_conn *c)
{
	uint8_t buf[512];
	int n = vmic_session_hello_frame(&c->session, buf, sizeof(buf));

	if (n > 0)
		agent_send(c, buf, (size_t)n);
}

void conn_send_probe(struct guest_conn *c)
{
	struct vmic_session probe = c->session;
	uint8_t buf[512];
	int n;

	/* Same nonce and echo: the host answers and nothing else changes. */
	probe.established = false;
	n = vmic_session_hello_frame(&probe, buf, sizeof(buf));
	if (n > 0)
		agent_send(c, buf, (size_t)n);
}

/*
 * Until the host answers, say hello again with growing pauses: the host
 * usually speaks first after a reconnect, so this only matters when a
 * hello was lost in stale bytes.
 */
static void on_hello_timer(uv_timer_t *t)
{
	struct guest_conn *c = t->data;

	if (c->session.established || c->closing)
		return;
	conn_send_hello(c);
	c->hello_delay_ms = MIN(c->hello_delay_ms * 2, HELLO_RETRY_MAX_MS);
	uv_timer_start(&c->hello_timer, on_hello_timer, c->hello_delay_ms, 0);
}

int agent_send(struct guest_conn *c, const uint8_t *frame, size_t len)
{
	int r = vmic_link_send(&c->link, frame, len, 0);

	if (r < 0 && r != -ENOTCONN)
		log_warning_errno(r, "cannot send to the host");
	return r;
}

int agent_reply(struct guest_conn *c, const struct vmic_frame *f,
		uint8_t type, uint8_t *buf, size_t payload_len)
{
	return agent_send(c, buf,
			 vmic_frame_seal(buf, f->service, type, VMIC_F_REPLY,
					 f->request_id, 0, payload_len));
}

int agent_reply_error(struct guest_conn *c, const struct vmic_frame *f,
		      uint16_t code, const char *fmt, ...)
{
	uint8_t buf[VMIC_HDR_SIZE + 1100];
	char msg[VMIC_ERROR_MSG_MAX + 1];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = vmic_error_frame(buf, f->service, f->request_id, code, msg);
	return agent_send(c, buf, n);
}

static void conn_send_info(struct guest_conn *c)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_INFO_MAX_LEN];
	struct vmic_info info;
	int n;

	info_collect(&info);
	n = vmic_info_encode(&info, buf + VMIC_HDR_SIZE, VMIC_INFO_MAX_LEN);
	if (n < 0)
		return;
	agent_send(c, buf,
		   vmic_frame_seal(buf, VMIC_SVC_CONTROL, VMIC_CTL_INFO, 0,
				   agent_request_id(c), 0, (size_t)n));
}

/* Until CTL_SERVICES arrives, the host's hello says what it enables. */
static uint32_t mask_from_hello(const struct vmic_hello *h)
{
	uint32_t mask = 0;

	for (unsigned i = 0; i < h->count; i++)
		if ((h->offers[i].flags & VMIC_OFFER_ENABLED) &&
		    h->offers[i].service < 32)
			mask |= 1u << h->offers[i].service;
	return mask;
}

static void log_session_up(struct guest_conn *c)
{
	char services[256];
	size_t off = 0;

	services[0] = '\0';
	for (size_t i = 0; i < vmic_service_count; i++) {
		uint8_t id = vmic_services[i]->id;

		off = vmic_appendf(services, sizeof(services), off, "%s%s v%u",
				   off ? ", " : "", vmic_services[i]->name,
				   vmic_session_version(&c->session, id));
	}
	log_info("session established with %s (%s)", c->session.peer.software,
		 services);
}

/* Tell the services a session ended (the host left or restarted). */
static void conn_session_down(struct guest_conn *c)
{
	if (!c->up)
		return;
	c->up = false;
	/* Streams first: their owners hear the reset while services still
	 * hold their state. The new session starts with none. Then the
	 * services, then the requests that wait (as the host does it). */
	vmic_link_streams_reset(&c->link);
	guest_services_session(c, false);
	agent_requests_fail_all(c, -ECONNRESET);
	c->unexpected_answers = 0;
}

static int conn_on_hello(struct guest_conn *c, const struct vmic_frame *f)
{
	struct vmic_hello h;
	int r;

	if (vmic_hello_decode(f->payload, f->length, &h) < 0) {
		log_warning("ignoring a malformed hello from the host");
		return 0;
	}
	r = vmic_session_on_hello(&c->session, &h);
	if (r < 0) {
		log_warning("received a hello from another agent: the channel "
			    "loops back to a guest, not to vmic-hostd");
		return 0;
	}
	if (r & VMIC_HELLO_NEW_PEER) {
		conn_session_down(c);
		c->host_mask = mask_from_hello(&h);
		log_debug("hello from %s", h.software);
	}
	if (r & VMIC_HELLO_REPLY)
		conn_send_hello(c);
	if (r & VMIC_HELLO_UP) {
		c->had_session = true;
		uv_timer_stop(&c->hello_timer);
		log_session_up(c);
		conn_send_info(c);
		c->up = true;
		guest_services_session(c, true);
	}
	return 0;
}

static int conn_on_control(struct guest_conn *c, const struct vmic_frame *f)
{
	switch (f->type) {
	case VMIC_CTL_SERVICES:
		c->host_mask = vmic_get_le32(f->payload);
		log_debug("host enables service mask 0x%x", c->host_mask);
		return 0;
	case VMIC_T_ERROR:
		return 0; /* an answer to our info; nothing to retry */
	default:
		return 0;
	}
}

static void log_peer_error(const struct vmic_frame *f)
{
	struct vmic_error e;

	if (vmic_error_decode(f->payload, f->length, &e) == 0)
		log_warning("host reported %s on service %u: %s",
			    vmic_error_name(e.code), f->service, e.message);
}

/*
 * An answer whose request nobody waits for (it timed out or was given
 * up: a sample answered late, a batch of a session that restarted):
 * counted, and logged for debugging only, as such answers are expected.
 */
static void conn_unexpected_answer(struct guest_conn *c,
				   const struct vmic_frame *f)
{
	struct vmic_error e;

	c->unexpected_answers++;
	if (f->type == VMIC_T_ERROR &&
	    vmic_error_decode(f->payload, f->length, &e) == 0)
		log_debug("the host answered %s on service %u (request %u, "
			  "nobody waits for it): %s",
			  vmic_error_name(e.code), f->service, f->request_id,
			  e.message);
	else
		log_debug("an answer (service %u, type %u, request %u) nobody "
			  "waits for any more",
			  f->service, f->type, f->request_id);
}

static int conn_on_frame(void *ud, const struct vmic_frame *f)
{
	struct guest_conn *c = ud;
	const struct guest_service *s;
	const char *why;
	uint16_t code;
	int bad;

	c->last_rx_ms = uv_now(c->g->loop);
	admit_heard(c->g, c);
	if (f->service == VMIC_SVC_CONTROL && f->type == VMIC_CTL_HELLO)
		return vmic_msg_check(f, VMIC_DIR_H2G) ? 0
						       : conn_on_hello(c, f);
	if (!c->session.established) {
		c->stale_frames++;
		return 0;
	}
	bad = vmic_msg_check(f, VMIC_DIR_H2G);
	if (bad) {
		if (vmic_frame_is_request(f))
			agent_reply_error(c, f, (uint16_t)bad,
					 "%s (service %u, type %u, %u bytes)",
					 vmic_error_name(bad), f->service,
					 f->type, f->length);
		return 0;
	}
	if ((f->flags & VMIC_F_REPLY) && agent_requests_deliver(c, f))
		return 0;
	if (f->service == VMIC_SVC_CONTROL)
		return conn_on_control(c, f);
	if (f->flags & VMIC_F_REPLY) {
		conn_unexpected_answer(c, f);
		return 0;
	}
	if (f->type == VMIC_T_ERROR) {
		log_peer_error(f);
		return 0;
	}
	s = guest_service_find(f->service);
	why = guest_service_refusal(c, f->service, &code);
	if (!s || why) {
		if (vmic_frame_is_request(f))
			agent_reply_error(c, f,
					  s ? code : VMIC_E_UNKNOWN_SERVICE,
					  "%s", why ? why : "not implemented");
		return 0;
	}
	return s->on_frame(c, f);
}

/* Each of the connection's timers closed; the last one frees it. */
static void conn_freed(uv_handle_t *h)
{
	struct guest_conn *c = h->data;

	if (--c->handles == 0)
		free(c);
}

static void conn_close_timers(struct guest_conn *c)
{
	uv_close((uv_handle_t *)&c->hello_timer, conn_freed);
	uv_close((uv_handle_t *)&c->req_timer, conn_freed);
}

static void conn_on_close(void *ud, int reason)
{
	struct guest_conn *c = ud;
	struct guestd *g = c->g;

	/* Only the end of a real session is worth a line: a connection
	 * replaced before its hello, or a host that left at once, is not. */
	if (!c->had_session)
		log_debug("host channel closed before a session (%s)",
			  reason ? strerror(-reason) : "by us");
	else if (reason == -EPIPE)
		log_info("host disconnected");
	else if (reason)
		log_warning_errno(reason, "host connection closed");
	conn_session_down(c);
	agent_requests_fail_all(c, -ECANCELED);
	if (g->conn == c) {
		g->conn = NULL;
		if (!g->stopping && !admit_conn_closed(g))
			vmic_listener_rearm(g->listener);
	}
	conn_close_timers(c);
}

/* Start a new session: fresh nonce, hello now, retries from 1 s. */
static void conn_restart_session(struct guest_conn *c)
{
	conn_session_down(c);
	vmic_session_start(&c->session, VMIC_ROLE_GUEST, vmic_random_u64(),
			   "vmic-guestd " VMIC_VERSION, c->g->offers);
	conn_send_hello(c);
	c->hello_delay_ms = VMIC_HELLO_RETRY_MS;
	uv_timer_start(&c->hello_timer, on_hello_timer, c->hello_delay_ms, 0);
}

/*
 * Garbage arrived and the decoder now waits for a hello. An established
 * host would never send one on its own, so the agent starts a new session:
 * the host sees a new nonce and answers with the hello that ends the hunt.
 */
static void conn_on_resync(void *ud, uint64_t dropped)
{
	struct guest_conn *c = ud;

	log_warning("bytes from the host out of step (%llu dropped so far); "
		    "starting a new session",
		    (unsigned long long)dropped);
	conn_restart_session(c);
}

static const struct vmic_link_ops conn_ops = {
	.on_frame = conn_on_frame,
	.on_close = conn_on_close,
	.on_resync = conn_on_resync,
};

void conn_open(struct guestd *g, uv_stream_t *stream)
{
	struct guest_conn *c = calloc(1, sizeof(*c));

	if (!c) {
		log_error("out of memory accepting the host connection");
		vmic_stream_free(stream);
		return;
	}
	c->g = g;
	c->last_rx_ms = uv_now(g->loop);
	uv_timer_init(g->loop, &c->hello_timer);
	c->hello_timer.data = c;
	agent_requests_init(c);
	c->handles = 2;
	/* Resync: after garbage, wait for the host's next hello. */
	if (vmic_link_open(&c->link, stream, true, &conn_ops, c) < 0) {
		log_error("cannot read from the host channel");
		conn_close_timers(c);
		return;
	}
	/* The link answers stream frames itself (services open streams). */
	vmic_link_streams_attach(&c->link, true, g->cfg.max_streams);
	g->conn = c;
	log_debug("host channel open");
	conn_restart_session(c);
}

void conn_close(struct guest_conn *c)
{
	c->closing = true;
	uv_timer_stop(&c->hello_timer);
	vmic_link_close(&c->link, 0);
}

void agent_stream_error_text(const struct guest_conn *c, int err, char *buf,
			     size_t n)
{
	if (err == -EMFILE)
		snprintf(buf, n,
			 "the agent has %u streams open, the most [agent] "
			 "max-streams of vmic-guestd.conf allows",
			 c->link.streams.count);
	else
		snprintf(buf, n, "the agent cannot open a stream: %s",
			 strerror(-err));
}
