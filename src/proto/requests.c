/* SPDX-License-Identifier: MIT */
#include "proto/requests.h"

#include <errno.h>
#include <stdlib.h>

void vmic_requests_init(struct vmic_requests *rs)
{
	*rs = (struct vmic_requests){ 0 };
}

uint32_t vmic_requests_next_id(struct vmic_requests *rs)
{
	if (++rs->next_id == 0)
		rs->next_id = 1;
	return rs->next_id;
}

int vmic_request_new(struct vmic_requests *rs, uint8_t service,
		     unsigned budget, uint64_t deadline, void (*cb)(void),
		     void *ud, struct vmic_request **out)
{
	struct vmic_request *r;

	if (service >= VMIC_SVC_COUNT)
		return -EINVAL;
	if (rs->waiting[service] >= budget)
		return -EBUSY;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->id = vmic_requests_next_id(rs);
	r->service = service;
	r->deadline = deadline;
	r->cb = cb;
	r->ud = ud;
	*out = r;
	return 0;
}

void vmic_requests_wait(struct vmic_requests *rs, struct vmic_request *r)
{
	r->next = rs->head;
	rs->head = r;
	rs->count++;
	rs->waiting[r->service]++;
}

void vmic_request_free(struct vmic_request *r)
{
	free(r);
}

/* Unlink *p (a request of the list) and return it. */
static struct vmic_request *unlink_at(struct vmic_requests *rs,
				      struct vmic_request **p)
{
	struct vmic_request *r = *p;

	*p = r->next;
	r->next = NULL;
	rs->count--;
	rs->waiting[r->service]--;
	return r;
}

static struct vmic_request **find(struct vmic_requests *rs, uint32_t id)
{
	struct vmic_request **p;

	for (p = &rs->head; *p; p = &(*p)->next)
		if ((*p)->id == id)
			return p;
	return NULL;
}

struct vmic_request *vmic_requests_take(struct vmic_requests *rs,
					uint32_t id, uint8_t service)
{
	struct vmic_request **p = find(rs, id);

	/* Our id, another service: a confused peer, not an answer. */
	if (!p || (*p)->service != service)
		return NULL;
	return unlink_at(rs, p);
}

struct vmic_request *vmic_requests_take_id(struct vmic_requests *rs,
					   uint32_t id)
{
	struct vmic_request **p = find(rs, id);

	return p ? unlink_at(rs, p) : NULL;
}

struct vmic_request *vmic_requests_take_all(struct vmic_requests *rs)
{
	struct vmic_request *list = rs->head;

	rs->head = NULL;
	rs->count = 0;
	for (unsigned i = 0; i < VMIC_SVC_COUNT; i++)
		rs->waiting[i] = 0;
	return list;
}

struct vmic_request *vmic_requests_take_due(struct vmic_requests *rs,
					    uint64_t now, uint64_t *next)
{
	struct vmic_request *due = NULL, **p = &rs->head;

	*next = 0;
	while (*p) {
		struct vmic_request *r = *p;

		/* Prepended: the oldest of them (the list is newest first)
		 * is called first. */
		if (r->deadline && r->deadline <= now) {
			unlink_at(rs, p);
			r->next = due;
			due = r;
			continue;
		}
		if (r->deadline && (!*next || r->deadline < *next))
			*next = r->deadline;
		p = &r->next;
	}
	return due;
}

unsigned vmic_requests_waiting(const struct vmic_requests *rs,
			       uint8_t service)
{
	return service < VMIC_SVC_COUNT ? rs->waiting[service] : 0;
}
