/* SPDX-License-Identifier: MIT */
/*
 * The host's request tracker (src/host/requests.c) in a real daemon core
 * on a fake clock (host-world.h): each service's own budget of waiting
 * requests, so one that keeps many waiting cannot starve another.
 */
#include "host-world.h"

/* Calls of count_answer, by how they ended. */
static unsigned answered, ended;

static bool count_answer(struct vm *vm UNUSED, void *ud UNUSED,
			 const struct vmic_frame *f, int err UNUSED)
{
	if (f)
		answered++;
	else
		ended++;
	return false;
}

/* Requests of `service` sent until the tracker refuses; how many. */
static unsigned fill(struct world *w, uint8_t service)
{
	uint8_t payload[4] = { 0 };
	unsigned n = 0;
	uint32_t id;
	int r;

	while ((r = request_send(w->vm, service, 0x7e, payload,
				 sizeof(payload), 0, count_answer, NULL,
				 &id)) == 0) {
		assert_true(id != 0);
		assert_true(++n <= 1000);
	}
	assert_int_equal(r, -EBUSY);
	return n;
}

/*
 * A service that keeps its whole budget waiting (KVP's window, a guest
 * that never answers) takes no slot of the heartbeat: heartbeats go on,
 * one per interval, and are answered.
 */
static void test_budget_is_per_service(void **state)
{
	struct world *w = *state;
	const struct host_service *kvp = host_service_get(VMIC_SVC_KVP);
	unsigned n;

	world_answer_heartbeats(w);
	assert_string_equal(world_service_string(w, VMIC_SVC_HEARTBEAT,
						 "state"),
			    "OK");
	n = fill(w, VMIC_SVC_KVP);
	assert_int_equal(n, kvp->max_requests);
	assert_int_equal(requests_waiting(w->vm, VMIC_SVC_KVP), n);
	/* A service without a budget of its own gets the default. */
	assert_int_equal(fill(w, VMIC_SVC_CONTROL), REQUESTS_DEFAULT);
	for (int i = 0; i < 5; i++) {
		world_advance(w, SEC);
		assert_int_equal(world_answer_heartbeats(w), 1);
	}
	assert_string_equal(world_service_string(w, VMIC_SVC_HEARTBEAT,
						 "state"),
			    "OK");
	assert_int_equal(requests_waiting(w->vm, VMIC_SVC_HEARTBEAT), 0);
	/* The slots come back when the session ends. */
	ended = 0;
	guest_disconnect(w);
	for (int i = 0; i < 100 && ended < n + REQUESTS_DEFAULT; i++)
		world_pump(w);
	assert_int_equal(ended, n + REQUESTS_DEFAULT);
	assert_int_equal(requests_waiting(w->vm, VMIC_SVC_KVP), 0);
	assert_int_equal(answered, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_budget_is_per_service,
						world_setup, world_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
