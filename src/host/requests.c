/* SPDX-License-Identifier: MIT */
/*
 * The one tracker of requests to a guest, for every service.
 *
 * A request is sent with its callback; every answer with its id (the
 * reply, an error, a late error after an "accepted") reaches that
 * callback, and so does its end: a timeout, the end of the session, the
 * removal of the VM. Nothing a waiter asked for is dropped silently, and
 * an answer nobody waits for is counted and logged once per session.
 *
 * Per VM the waiting requests are a short list (REQUESTS_MAX at most, in
 * practice one or two): a heartbeat and perhaps a stop. Deadlines share
 * one timer per VM, armed for the earliest and moved lazily: when a
 * request is answered the timer stays, and fires early at worst.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "hostd.h"
#include "proto/control.h"

struct request {
	struct request *next;
	uint32_t id;
	uint8_t service;
	uint64_t deadline_us; /* monotonic; 0 = until the session ends */
	request_cb cb;
	void *ud;
};

static void on_deadline(struct htimer *t);

void requests_init(struct vm *vm)
{
	struct requests *rs = &vm->req;

	rs->head = NULL;
	rs->count = 0;
	htimer_init(vm->h, &rs->timer, on_deadline, vm);
}

/* Arm the timer for deadline d unless it fires earlier already. */
static void arm(struct vm *vm, uint64_t d)
{
	struct requests *rs = &vm->req;

	if (!d || (htimer_active(&rs->timer) && rs->timer.due_us <= d))
		return;
	htimer_start_at(&rs->timer, d);
}

/* Take the request with id out of the list; NULL when none waits. */
static struct request *unlink_id(struct requests *rs, uint32_t id)
{
	for (struct request **p = &rs->head; *p; p = &(*p)->next) {
		struct request *r = *p;

		if (r->id != id)
			continue;
		*p = r->next;
		rs->count--;
		return r;
	}
	return NULL;
}

static void link_front(struct requests *rs, struct request *r)
{
	r->next = rs->head;
	rs->head = r;
	rs->count++;
}

int request_send(struct vm *vm, uint8_t service, uint8_t type,
		 const void *payload, size_t len, unsigned timeout_ms,
		 request_cb cb, void *ud, uint32_t *id)
{
	uint8_t stack[512], *buf = stack;
	struct request *r;
	int ret;

	if (!conn_up(vm))
		return -ENOTCONN;
	if (vm->req.count >= REQUESTS_MAX)
		return -EBUSY;
	if (len > VMIC_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (VMIC_HDR_SIZE + len > sizeof(stack)) {
		buf = malloc(VMIC_HDR_SIZE + len);
		if (!buf)
			return -ENOMEM;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		ret = -ENOMEM;
		goto out;
	}
	r->id = conn_request_id(vm);
	r->service = service;
	r->cb = cb;
	r->ud = ud;
	if (timeout_ms)
		r->deadline_us = hostd_now_us(vm->h) +
				 (uint64_t)timeout_ms * 1000;
	memcpy(buf + VMIC_HDR_SIZE, payload, len);
	ret = conn_send(vm, buf,
			vmic_frame_seal(buf, service, type, 0, r->id, 0, len));
	if (ret < 0) {
		free(r);
		goto out;
	}
	link_front(&vm->req, r);
	arm(vm, r->deadline_us);
	if (id)
		*id = r->id;
out:
	if (buf != stack)
		free(buf);
	return ret;
}

void request_cancel(struct vm *vm, uint32_t id)
{
	free(unlink_id(&vm->req, id));
}

unsigned requests_waiting(const struct vm *vm, uint8_t service)
{
	unsigned n = 0;

	for (const struct request *r = vm->req.head; r; r = r->next)
		n += r->service == service;
	return n;
}

bool requests_deliver(struct vm *vm, const struct vmic_frame *f)
{
	struct request *r = unlink_id(&vm->req, f->request_id);

	if (!r)
		return false;
	if (r->service != f->service) {
		/* Our id, another service: a confused guest, not an answer. */
		link_front(&vm->req, r);
		return false;
	}
	if (r->cb(vm, r->ud, f, 0))
		link_front(&vm->req, r);
	else
		free(r);
	return true;
}

/* Call every waiter in list with err, freeing as it goes. */
static void fail_list(struct vm *vm, struct request *r, int err)
{
	while (r) {
		struct request *next = r->next;

		r->cb(vm, r->ud, NULL, err);
		free(r);
		r = next;
	}
}

void requests_fail_all(struct vm *vm, int err)
{
	struct request *list = vm->req.head;

	/* Callbacks may send new requests: they start a fresh list. */
	vm->req.head = NULL;
	vm->req.count = 0;
	fail_list(vm, list, err);
}

static void on_deadline(struct htimer *t)
{
	struct vm *vm = t->data;
	struct requests *rs = &vm->req;
	uint64_t now = hostd_now_us(vm->h), next = 0;
	struct request *due = NULL, **p = &rs->head;

	while (*p) {
		struct request *r = *p;

		if (r->deadline_us && r->deadline_us <= now) {
			*p = r->next;
			rs->count--;
			r->next = due;
			due = r;
			continue;
		}
		if (r->deadline_us && (!next || r->deadline_us < next))
			next = r->deadline_us;
		p = &r->next;
	}
	if (next)
		arm(vm, next);
	fail_list(vm, due, -ETIMEDOUT);
}

void requests_close(struct vm *vm)
{
	requests_fail_all(vm, -ECANCELED);
	vm_close_timer(vm, &vm->req.timer);
}
