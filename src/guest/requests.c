/* SPDX-License-Identifier: MIT */
/*
 * The agent's requests to the host: the same tracker as the host's
 * (proto/requests.h), with the agent's glue. A service sends a request
 * with its callback; the answer, a late error, a timeout or the end of
 * the session reaches that callback, and an answer nobody waits for is
 * counted (conn.c). Each service has its own budget of waiting
 * requests. Deadlines share one timer per connection, armed for the
 * earliest and moved lazily.
 */
#include <errno.h>

#include "guestd.h"
#include "proto/control.h"

static void on_deadline(uv_timer_t *t);

void agent_requests_init(struct guest_conn *c)
{
	vmic_requests_init(&c->req);
	uv_timer_init(c->g->loop, &c->req_timer);
	c->req_timer.data = c;
}

/* Milliseconds of the loop as the tracker's deadlines count them. */
static uint64_t now_ms(const struct guest_conn *c)
{
	return uv_now(c->g->loop);
}

static unsigned budget_of(uint8_t service)
{
	const struct guest_service *s = guest_service_find(service);

	if (!s || !s->max_requests)
		return AGENT_REQUESTS_DEFAULT;
	return MIN(s->max_requests, AGENT_REQUESTS_SERVICE_MAX);
}

/* Arm the timer for deadline d (loop ms) unless it fires earlier. */
static void arm(struct guest_conn *c, uint64_t d)
{
	uint64_t now = now_ms(c), due;

	if (!d)
		return;
	if (uv_is_active((uv_handle_t *)&c->req_timer)) {
		due = uv_timer_get_due_in(&c->req_timer) + now;
		if (due <= d)
			return;
	}
	uv_timer_start(&c->req_timer, on_deadline, d > now ? d - now : 0, 0);
}

uint32_t agent_request_id(struct guest_conn *c)
{
	return vmic_requests_next_id(&c->req);
}

int agent_request_send(struct guest_conn *c, uint8_t service, uint8_t type,
		       uint8_t *buf, size_t payload_len, unsigned timeout_ms,
		       agent_request_cb cb, void *ud, uint32_t *id)
{
	struct vmic_request *r;
	uint64_t deadline = timeout_ms ? now_ms(c) + timeout_ms : 0;
	int ret;

	if (!c->up || c->closing)
		return -ENOTCONN;
	if (payload_len > VMIC_MAX_PAYLOAD)
		return -EMSGSIZE;
	ret = vmic_request_new(&c->req, service, budget_of(service), deadline,
			       (void (*)(void))cb, ud, &r);
	if (ret < 0)
		return ret;
	ret = agent_send(c, buf,
			 vmic_frame_seal(buf, service, type, 0, r->id, 0,
					 payload_len));
	if (ret < 0) {
		vmic_request_free(r);
		return ret;
	}
	vmic_requests_wait(&c->req, r);
	arm(c, deadline);
	if (id)
		*id = r->id;
	return 0;
}

void agent_request_cancel(struct guest_conn *c, uint32_t id)
{
	if (id)
		vmic_request_free(vmic_requests_take_id(&c->req, id));
}

unsigned agent_requests_waiting(const struct guest_conn *c, uint8_t service)
{
	return vmic_requests_waiting(&c->req, service);
}

static bool call(struct guest_conn *c, struct vmic_request *r,
		 const struct vmic_frame *f, int err)
{
	return ((agent_request_cb)r->cb)(c, r->ud, f, err);
}

bool agent_requests_deliver(struct guest_conn *c, const struct vmic_frame *f)
{
	struct vmic_request *r =
		vmic_requests_take(&c->req, f->request_id, f->service);

	if (!r)
		return false;
	if (call(c, r, f, 0))
		vmic_requests_wait(&c->req, r);
	else
		vmic_request_free(r);
	return true;
}

static void fail_list(struct guest_conn *c, struct vmic_request *r, int err)
{
	while (r) {
		struct vmic_request *next = r->next;

		call(c, r, NULL, err);
		vmic_request_free(r);
		r = next;
	}
}

void agent_requests_fail_all(struct guest_conn *c, int err)
{
	uv_timer_stop(&c->req_timer);
	/* Callbacks may send new requests: they start a fresh list. */
	fail_list(c, vmic_requests_take_all(&c->req), err);
}

static void on_deadline(uv_timer_t *t)
{
	struct guest_conn *c = t->data;
	uint64_t next;
	struct vmic_request *due =
		vmic_requests_take_due(&c->req, now_ms(c), &next);

	if (next)
		arm(c, next);
	fail_list(c, due, -ETIMEDOUT);
}
