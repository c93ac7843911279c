/* SPDX-License-Identifier: MIT */
/*
 * KVP's host half on a fake clock (tests/unit/host-world.h), with a fake
 * guest that plays KVP: the External pool's copy goes out a window at a
 * time, and batches left unanswered make it start over once.
 */
#include "host-world.h"

#include "services/kvp/host.h"
#include "services/kvp/kvp.h"

/* The fake guest plays KVP too. */
static int setup_kvp(void **state)
{
	return world_setup_plays(state, WORLD_PLAYS_DEFAULT |
					       (1u << VMIC_SVC_KVP));
}

/* Answer a KVP request with an ACK. */
static void guest_kvp_ack(struct world *w, const struct rframe *req)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_KVP_ACK_MAX_LEN];
	struct vmic_kvp_ack a = { .status = VMIC_KVP_OK };
	int n = vmic_kvp_ack_encode(&a, buf + VMIC_HDR_SIZE,
				    VMIC_KVP_ACK_MAX_LEN);

	guest_send(w, buf,
		   vmic_frame_seal(buf, VMIC_SVC_KVP, VMIC_KVP_ACK,
				   VMIC_F_REPLY, req->f.request_id, 0,
				   (size_t)n));
}

/* Take the next KVP request (IDENTITY or a batch); false when none. */
static bool guest_take_kvp(struct world *w, struct rframe *r)
{
	return guest_take(w, VMIC_SVC_KVP, VMIC_KVP_IDENTITY, r) ||
	       guest_take(w, VMIC_SVC_KVP, VMIC_KVP_SET, r) ||
	       guest_take(w, VMIC_SVC_KVP, VMIC_KVP_DELETE, r);
}

/* 1,000 records of 2 KiB in the VM's External pool. */
static void fill_external(struct world *w)
{
	struct kvp_vm *kv = kvp_of(w->vm);
	char key[16], value[2000];

	memset(value, 'v', sizeof(value));
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "key-%04d", i);
		assert_true(kvp_table_set(&kv->pools[VMIC_KVP_EXTERNAL], key,
					  strlen(key), value, sizeof(value), 0,
					  NULL, NULL) >= 0);
	}
}

/*
 * A copy of 2 MB goes out a window at a time: never more than
 * VMIC_KVP_WINDOW requests unanswered, the next only after an answer,
 * and the heartbeat keeps its interval throughout.
 */
static void test_kvp_copy_is_paced(void **state)
{
	struct world *w = *state;
	struct kvp_vm *kv = kvp_of(w->vm);
	size_t records = 0;
	bool ended = false;
	struct rframe r;
	int rounds = 0;

	fill_external(w);
	world_answer_heartbeats(w);
	while (guest_take_kvp(w, &r))
		guest_kvp_ack(w, &r); /* the session's start, pools empty */
	kvp_sync_up(kv);
	while (!ended) {
		struct rframe got[VMIC_KVP_WINDOW + 1];
		unsigned n = 0;

		assert_true(++rounds < 1000);
		while (n < ARRAY_SIZE(got) && guest_take_kvp(w, &got[n]))
			n++;
		assert_true(n > 0);
		assert_true(n <= VMIC_KVP_WINDOW);
		/* Nothing more comes until one is answered. */
		assert_false(guest_take_kvp(w, &r));
		for (unsigned i = 0; i < n; i++) {
			struct vmic_kvp_batch b;

			if (got[i].f.type != VMIC_KVP_IDENTITY) {
				assert_int_equal(vmic_kvp_batch_decode(
							 got[i].f.type,
							 got[i].payload,
							 got[i].f.length, &b),
						 0);
				if (b.pool == VMIC_KVP_EXTERNAL) {
					records += b.count;
					ended = ended ||
						(b.flags & VMIC_KVP_F_END);
				}
			}
			guest_kvp_ack(w, &got[i]);
		}
		/* The heartbeat goes on while the copy runs. */
		world_advance(w, 100000);
		world_answer_heartbeats(w);
		assert_string_equal(world_service_string(w, VMIC_SVC_HEARTBEAT, "state"), "OK");
	}
	assert_int_equal(records, 1000);
	assert_true(kv->copy_ms >= 0);
	assert_int_equal(kv->copy_records, 1000);
}

/* Batches the guest leaves unanswered make the copy start over once
 * their deadline passed, and no more than the window ever waits. */
static void test_kvp_unanswered_starts_over(void **state)
{
	struct world *w = *state;
	struct rframe r;
	unsigned first = 0, again = 0;

	fill_external(w);
	world_answer_heartbeats(w);
	while (guest_take_kvp(w, &r))
		guest_kvp_ack(w, &r);
	kvp_sync_up(kvp_of(w->vm));
	while (guest_take_kvp(w, &r))
		first++;
	assert_int_equal(first, VMIC_KVP_WINDOW);
	for (int i = 0; i < 59; i++) {
		world_advance(w, SEC);
		world_answer_heartbeats(w);
	}
	assert_false(guest_take_kvp(w, &r));
	world_advance(w, 2 * SEC);
	while (guest_take_kvp(w, &r)) {
		struct vmic_kvp_batch b;

		if (r.f.type == VMIC_KVP_SET &&
		    vmic_kvp_batch_decode(r.f.type, r.payload, r.f.length,
					  &b) == 0 &&
		    (b.flags & VMIC_KVP_F_BEGIN))
			again++;
	}
	/* One new copy of each pool (3 and 0), not one per lost batch. */
	assert_int_equal(again, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kvp_copy_is_paced, setup_kvp,
						world_teardown),
		cmocka_unit_test_setup_teardown(test_kvp_unanswered_starts_over, setup_kvp,
						world_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
