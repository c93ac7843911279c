/* SPDX-License-Identifier: MIT */
/* The request tracker's bookkeeping both daemons share (proto/requests.c). */
#include <errno.h>

#include "testutil.h"

#include "proto/requests.h"

static void nop(void)
{
}

/* Add a waiting request of service; its id. */
static uint32_t add(struct vmic_requests *rs, uint8_t service,
		    unsigned budget, uint64_t deadline)
{
	struct vmic_request *r;

	assert_int_equal(vmic_request_new(rs, service, budget, deadline, nop,
					  NULL, &r),
			 0);
	vmic_requests_wait(rs, r);
	return r->id;
}

static void free_list(struct vmic_request *r)
{
	while (r) {
		struct vmic_request *next = r->next;

		vmic_request_free(r);
		r = next;
	}
}

/* Ids count from 1 and skip 0 when the counter wraps: a request id 0 in
 * a frame is never one of ours. */
static void test_ids_never_zero(void **state)
{
	struct vmic_requests rs;

	(void)state;
	vmic_requests_init(&rs);
	assert_int_equal(vmic_requests_next_id(&rs), 1);
	assert_int_equal(vmic_requests_next_id(&rs), 2);
	rs.next_id = UINT32_MAX - 1;
	assert_int_equal(vmic_requests_next_id(&rs), UINT32_MAX);
	assert_int_equal(vmic_requests_next_id(&rs), 1);
}

/* Each service has its own budget: one at its limit takes no slot of
 * another, and a slot is free again once its request is taken. */
static void test_budget_per_service(void **state)
{
	struct vmic_requests rs;
	struct vmic_request *r;
	uint32_t ids[4];

	(void)state;
	vmic_requests_init(&rs);
	for (int i = 0; i < 4; i++)
		ids[i] = add(&rs, 4, 4, 0);
	assert_int_equal(vmic_request_new(&rs, 4, 4, 0, nop, NULL, &r),
			 -EBUSY);
	assert_int_equal(vmic_requests_waiting(&rs, 4), 4);
	/* Another service still has its slot. */
	add(&rs, 1, 1, 0);
	assert_int_equal(vmic_request_new(&rs, 1, 1, 0, nop, NULL, &r),
			 -EBUSY);
	assert_int_equal(rs.count, 5);
	/* An answer frees the slot. */
	vmic_request_free(vmic_requests_take(&rs, ids[2], 4));
	assert_int_equal(vmic_requests_waiting(&rs, 4), 3);
	add(&rs, 4, 4, 0);
	assert_int_equal(vmic_request_new(&rs, VMIC_SVC_COUNT, 4, 0, nop,
					  NULL, &r),
			 -EINVAL);
	free_list(vmic_requests_take_all(&rs));
	assert_int_equal(rs.count, 0);
	assert_int_equal(vmic_requests_waiting(&rs, 4), 0);
	assert_int_equal(vmic_requests_waiting(&rs, 1), 0);
}

/* An answer is taken only by the service that asked; an id of another
 * service's request stays where it is. */
static void test_take_checks_service(void **state)
{
	struct vmic_requests rs;
	struct vmic_request *r;
	uint32_t id;

	(void)state;
	vmic_requests_init(&rs);
	id = add(&rs, 2, 4, 0);
	assert_null(vmic_requests_take(&rs, id, 3));
	assert_null(vmic_requests_take(&rs, id + 1, 2));
	assert_int_equal(rs.count, 1);
	r = vmic_requests_take(&rs, id, 2);
	assert_non_null(r);
	assert_int_equal(r->id, id);
	assert_null(r->next);
	/* Kept waiting (a late error may follow): back in the list. */
	vmic_requests_wait(&rs, r);
	assert_int_equal(vmic_requests_waiting(&rs, 2), 1);
	vmic_request_free(vmic_requests_take_id(&rs, id));
	assert_int_equal(rs.count, 0);
	assert_null(vmic_requests_take_id(&rs, id));
}

/* The deadlines that passed come out oldest first; the earliest of the
 * rest is reported; 0 means until the session ends. */
static void test_take_due(void **state)
{
	struct vmic_requests rs;
	struct vmic_request *due;
	uint64_t next;
	uint32_t a, b;

	(void)state;
	vmic_requests_init(&rs);
	a = add(&rs, 1, 8, 100);
	add(&rs, 1, 8, 0);
	b = add(&rs, 1, 8, 50);
	add(&rs, 1, 8, 300);
	add(&rs, 1, 8, 200);
	due = vmic_requests_take_due(&rs, 100, &next);
	assert_non_null(due);
	assert_int_equal(due->id, a);
	assert_non_null(due->next);
	assert_int_equal(due->next->id, b);
	assert_null(due->next->next);
	assert_int_equal(next, 200);
	assert_int_equal(rs.count, 3);
	free_list(due);
	assert_null(vmic_requests_take_due(&rs, 199, &next));
	assert_int_equal(next, 200);
	free_list(vmic_requests_take_due(&rs, 1000, &next));
	assert_int_equal(next, 0);
	assert_int_equal(rs.count, 1); /* the one without a deadline */
	free_list(vmic_requests_take_all(&rs));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids_never_zero),
		cmocka_unit_test(test_budget_per_service),
		cmocka_unit_test(test_take_checks_service),
		cmocka_unit_test(test_take_due),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
