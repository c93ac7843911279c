/* SPDX-License-Identifier: MIT */
/*
 * The one tracker of requests to a guest, for every service: the host's
 * glue around the shared bookkeeping (proto/requests.h).
 *
 * A request is sent with its callback; every answer with its id (the
 * reply, an error, a late error after an "accepted") reaches that
 * callback, and so does its end: a timeout, the end of the session, the
 * removal of the VM. Nothing a waiter asked for is dropped silently, and
 * an answer nobody waits for is counted and logged once per session
 * (conn.c).
 *
 * Each service has its own budget of waiting requests per VM (its
 * table entry's max_requests), so a service that keeps a window of
 * requests waiting cannot starve another: a heartbeat always has its
 * slot. Deadlines share one timer per VM, armed for the earliest and
 * moved lazily: when a request is answered the timer stays, and fires
 * early at worst.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "hostd.h"
#include "proto/control.h"

static void on_deadline(struct htimer *t);

void requests_init(struct vm *vm)
{
	vmic_requests_init(&vm->req.t);
	htimer_init(vm->h, &vm->req.timer, on_deadline, vm);
}

/* The service's budget of waiting requests per VM. */
static unsigned budget_of(uint8_t service)
{
	const struct host_service *s = host_service_get(service);

	if (!s || !s->max_requests)
		return REQUESTS_DEFAULT;
	return MIN(s->max_requests, REQUESTS_SERVICE_MAX);
}

/* Arm the timer for deadline d unless it fires earlier already. */
static void arm(struct vm *vm, uint64_t d)
{
	struct requests *rs = &vm->req;

	if (!d || (htimer_active(&rs->timer) && rs->timer.due_us <= d))
		return;
	htimer_start_at(&rs->timer, d);
}

uint32_t conn_request_id(struct vm *vm)
{
	return vmic_requests_next_id(&vm->req.t);
}

void requests_restart_ids(struct vm *vm)
{
	vm->req.t.next_id = 0;
}

int request_send(struct vm *vm, uint8_t service, uint8_t type,
		 const void *payload, size_t len, unsigned timeout_ms,
		 request_cb cb, void *ud, uint32_t *id)
{
	uint8_t stack[512], *buf = stack;
	struct vmic_request *r;
	uint64_t deadline = 0;
	int ret;

	if (!conn_up(vm))
		return -ENOTCONN;
	if (len > VMIC_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (timeout_ms)
		deadline = hostd_now_us(vm->h) + (uint64_t)timeout_ms * 1000;
	ret = vmic_request_new(&vm->req.t, service, budget_of(service),
			       deadline, (void (*)(void))cb, ud, &r);
	if (ret < 0)
		return ret;
	if (VMIC_HDR_SIZE + len > sizeof(stack)) {
		buf = malloc(VMIC_HDR_SIZE + len);
		if (!buf) {
			vmic_request_free(r);
			return -ENOMEM;
		}
	}
	memcpy(buf + VMIC_HDR_SIZE, payload, len);
	ret = conn_send(vm, buf,
			vmic_frame_seal(buf, service, type, 0, r->id, 0, len));
	if (ret < 0) {
		vmic_request_free(r);
		goto out;
	}
	vmic_requests_wait(&vm->req.t, r);
	arm(vm, deadline);
	if (id)
		*id = r->id;
out:
	if (buf != stack)
		free(buf);
	return ret;
}

void request_cancel(struct vm *vm, uint32_t id)
{
	if (id)
		vmic_request_free(vmic_requests_take_id(&vm->req.t, id));
}

unsigned requests_waiting(const struct vm *vm, uint8_t service)
{
	return vmic_requests_waiting(&vm->req.t, service);
}

/* Call the waiter of r as its sender asked. */
static bool call(struct vm *vm, struct vmic_request *r,
		 const struct vmic_frame *f, int err)
{
	return ((request_cb)r->cb)(vm, r->ud, f, err);
}

bool requests_deliver(struct vm *vm, const struct vmic_frame *f)
{
	struct vmic_request *r =
		vmic_requests_take(&vm->req.t, f->request_id, f->service);

	if (!r)
		return false;
	if (call(vm, r, f, 0))
		vmic_requests_wait(&vm->req.t, r);
	else
		vmic_request_free(r);
	return true;
}

/* Call every waiter in list with err, freeing as it goes. */
static void fail_list(struct vm *vm, struct vmic_request *r, int err)
{
	while (r) {
		struct vmic_request *next = r->next;

		call(vm, r, NULL, err);
		vmic_request_free(r);
		r = next;
	}
}

void requests_fail_all(struct vm *vm, int err)
{
	/* Callbacks may send new requests: they start a fresh list. */
	fail_list(vm, vmic_requests_take_all(&vm->req.t), err);
}

static void on_deadline(struct htimer *t)
{
	struct vm *vm = t->data;
	uint64_t next;
	struct vmic_request *due = vmic_requests_take_due(
		&vm->req.t, hostd_now_us(vm->h), &next);

	if (next)
		arm(vm, next);
	fail_list(vm, due, -ETIMEDOUT);
}

void requests_close(struct vm *vm)
{
	requests_fail_all(vm, -ECANCELED);
	vm_close_timer(vm, &vm->req.timer);
}
