/* SPDX-License-Identifier: MIT */
/*
 * The request tracker both daemons share: which requests of ours wait
 * for an answer, under which id, for which service, until when.
 *
 * This is the bookkeeping only, without I/O or a clock: ids (counted per
 * connection, never 0, so a frame's request id 0 is never one of ours),
 * each service's own budget of waiting requests, lookups by id, the
 * deadlines that passed. Each daemon wraps it in its glue, which sends
 * the frame, keeps one timer for the earliest deadline and calls the
 * waiters back with its own callback type (src/host/requests.c,
 * src/guest/requests.c): the glue stores its callback as a generic
 * function pointer here and casts it back to its own type to call it.
 *
 * Per connection the waiting requests are a short list: each service may
 * have at most its budget waiting (a handful), so a service that keeps
 * many requests waiting (a copy, a window of batches) can take no slot
 * of another (the heartbeat). Long operations (a file copy, a shell)
 * hold no slot while they run: they live in streams and in their own
 * tables.
 */
#ifndef VMIC_PROTO_REQUESTS_H
#define VMIC_PROTO_REQUESTS_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/proto.h"

/* One request that waits. `cb` is the glue's callback, cast. */
struct vmic_request {
	struct vmic_request *next;
	uint32_t id;
	uint8_t service;
	uint64_t deadline; /* in the glue's clock; 0: until the session ends */
	void (*cb)(void);
	void *ud;
};

struct vmic_requests {
	struct vmic_request *head;
	unsigned count;                     /* waiting, all services */
	uint16_t waiting[VMIC_SVC_COUNT];   /* waiting, per service */
	uint32_t next_id;
};

/* Empty, ids from 1. */
void vmic_requests_init(struct vmic_requests *rs);
/* A fresh id: one more than the last, skipping 0. Also for messages
 * that carry an id but wait for no answer (an unasked report). */
uint32_t vmic_requests_next_id(struct vmic_requests *rs);
/*
 * A new request of `service` with a fresh id, not waiting yet: 0 and
 * *out, -EBUSY when the service already has `budget` waiting (or the
 * service id is out of range: -EINVAL), -ENOMEM. The glue sends the
 * frame, then vmic_requests_wait() (or vmic_request_free() when the
 * send failed).
 */
int vmic_request_new(struct vmic_requests *rs, uint8_t service,
		     unsigned budget, uint64_t deadline, void (*cb)(void),
		     void *ud, struct vmic_request **out);
/* r waits (again) for its answers. */
void vmic_requests_wait(struct vmic_requests *rs, struct vmic_request *r);
/* Free a request that does not wait (NULL is fine). */
void vmic_request_free(struct vmic_request *r);
/*
 * The request that waits under `id` for `service`, taken out of the
 * list; NULL when none does (an answer nobody waits for), and when the
 * id is of another service's request, which stays (a confused peer).
 */
struct vmic_request *vmic_requests_take(struct vmic_requests *rs,
					uint32_t id, uint8_t service);
/* The request with `id` of any service, taken out; NULL when none. */
struct vmic_request *vmic_requests_take_id(struct vmic_requests *rs,
					   uint32_t id);
/* Every waiting request, taken out as a list (next-linked); empty
 * after. Callbacks the glue runs on them may add new ones. */
struct vmic_request *vmic_requests_take_all(struct vmic_requests *rs);
/* The requests whose deadline is <= now, taken out as a list; *next is
 * the earliest deadline of those left (0: none). */
struct vmic_request *vmic_requests_take_due(struct vmic_requests *rs,
					    uint64_t now, uint64_t *next);
/* Requests of `service` waiting now. */
unsigned vmic_requests_waiting(const struct vmic_requests *rs,
			       uint8_t service);

#endif
