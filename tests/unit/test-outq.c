/* SPDX-License-Identifier: MIT */
/* src/proto/outq.c: urgent first, deficit round robin, budgets. */
#include <errno.h>

#include "testutil.h"

#include "proto/outq.h"
#include "proto/proto.h"

#define NLANES 8
#define FULL (VMIC_STREAM_CHUNK + VMIC_HDR_SIZE)

/* A buffer tagged with a lane number and a sequence number. */
static struct vmic_outbuf *buf_new(uint32_t len, uint32_t tag, uint32_t seq)
{
	struct vmic_outbuf *b = vmic_outbuf_new(len, 0);

	assert_non_null(b);
	assert_true(len >= 8);
	memcpy(b->data, &tag, 4);
	memcpy(b->data + 4, &seq, 4);
	return b;
}

static uint32_t field(const struct vmic_outbuf *b, size_t off)
{
	uint32_t v;

	memcpy(&v, b->data + off, 4);
	return v;
}

struct fx {
	struct vmic_outq q;
	struct vmic_lane lanes[NLANES];
};

static struct fx *fx_new(size_t urgent_limit, size_t bulk_limit)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	vmic_outq_init(&fx->q, urgent_limit, bulk_limit);
	for (int i = 0; i < NLANES; i++)
		vmic_lane_init(&fx->lanes[i]);
	return fx;
}

static void fx_free(struct fx *fx)
{
	vmic_outq_clear(&fx->q);
	assert_true(vmic_outq_empty(&fx->q));
	assert_int_equal(vmic_outq_bytes(&fx->q), 0);
	for (int i = 0; i < NLANES; i++) {
		assert_null(fx->lanes[i].head);
		assert_false(fx->lanes[i].scheduled);
		assert_int_equal(fx->lanes[i].bytes, 0);
	}
	free(fx);
}

/* Lane tags are 1..NLANES-1; 0 is urgent. */
static void push(struct fx *fx, uint32_t tag, uint32_t len, uint32_t seq)
{
	if (tag == 0)
		assert_int_equal(vmic_outq_push_urgent(&fx->q,
						       buf_new(len, 0, seq)),
				 0);
	else
		vmic_outq_push_bulk(&fx->q, &fx->lanes[tag],
				    buf_new(len, tag, seq));
}

/* Pop one, check it came from the lane its tag names, return tag*1000+seq. */
static uint32_t pop_id(struct fx *fx, uint32_t *len)
{
	struct vmic_lane *from;
	struct vmic_outbuf *b = vmic_outq_pop(&fx->q, &from);
	uint32_t tag, id;

	assert_non_null(b);
	assert_null(b->next);
	tag = field(b, 0);
	if (tag == 0)
		assert_null(from);
	else
		assert_ptr_equal(from, &fx->lanes[tag]);
	id = tag * 1000 + field(b, 4);
	if (len)
		*len = b->len;
	free(b);
	return id;
}

static void test_empty(void **state)
{
	struct fx *fx = fx_new(0, 0);
	struct vmic_lane *from = (void *)1;

	(void)state;
	assert_true(vmic_outq_empty(&fx->q));
	assert_null(vmic_outq_pop(&fx->q, &from));
	assert_null(from);
	assert_true(vmic_outq_bulk_room(&fx->q) == SIZE_MAX);
	fx_free(fx);
}

static void test_urgent_fifo_and_first(void **state)
{
	struct fx *fx = fx_new(0, 0);

	(void)state;
	push(fx, 7, 100, 1);
	push(fx, 7, 100, 2);
	push(fx, 0, 10, 1);
	push(fx, 0, 10, 2);
	push(fx, 0, 10, 3);
	assert_int_equal(vmic_outq_bytes(&fx->q), 230);
	assert_int_equal(fx->q.urgent_bytes, 30);
	assert_int_equal(fx->q.bulk_bytes, 200);
	assert_true(vmic_outq_has_urgent(&fx->q));
	/* Urgent ones first, in their order, then the stream. */
	assert_int_equal(pop_id(fx, NULL), 1);
	assert_int_equal(pop_id(fx, NULL), 2);
	assert_int_equal(pop_id(fx, NULL), 3);
	assert_int_equal(pop_id(fx, NULL), 7001);
	/* An urgent frame pushed now still overtakes the stream. */
	push(fx, 0, 10, 4);
	assert_int_equal(pop_id(fx, NULL), 4);
	assert_int_equal(pop_id(fx, NULL), 7002);
	assert_true(vmic_outq_empty(&fx->q));
	fx_free(fx);
}

/* Full chunks: one frame per lane per round, late lanes join at the end. */
static void test_round_robin_full_chunks(void **state)
{
	struct fx *fx = fx_new(0, 0);
	uint32_t expect[] = { 1001, 2001, 3001, 1002, 2002, 3002,
			      1003, 3003, 4001, 1004, 4002, 4003 };

	(void)state;
	for (uint32_t i = 1; i <= 4; i++)
		push(fx, 1, FULL, i);
	for (uint32_t i = 1; i <= 2; i++)
		push(fx, 2, FULL, i);
	for (uint32_t i = 1; i <= 3; i++)
		push(fx, 3, FULL, i);
	for (size_t k = 0; k < 6; k++)
		assert_int_equal(pop_id(fx, NULL), expect[k]);
	for (uint32_t i = 1; i <= 3; i++)
		push(fx, 4, FULL, i);
	for (size_t k = 6; k < 12; k++)
		assert_int_equal(pop_id(fx, NULL), expect[k]);
	assert_true(vmic_outq_empty(&fx->q));
	fx_free(fx);
}

/*
 * Fair by bytes: a lane of 512-byte frames gets as many bytes per round
 * as a lane of full chunks, not one frame per round.
 */
static void test_fair_by_bytes(void **state)
{
	struct fx *fx = fx_new(0, 0);
	uint64_t bytes[3] = { 0, 0, 0 };
	uint32_t seq = 0;

	(void)state;
	for (uint32_t i = 0; i < 64; i++)
		push(fx, 1, FULL, i);
	for (uint32_t i = 0; i < 64 * 140; i++)
		push(fx, 2, 512, i);
	/* Serve 40 full rounds' worth and compare. */
	while (bytes[1] + bytes[2] < 40ull * 2 * FULL) {
		struct vmic_lane *from;
		struct vmic_outbuf *b = vmic_outq_pop(&fx->q, &from);
		uint32_t tag = field(b, 0);

		assert_ptr_equal(from, &fx->lanes[tag]);
		bytes[tag] += b->len;
		if (tag == 2)
			assert_int_equal(field(b, 4), seq++); /* in order */
		free(b);
	}
	/* DRR's bound: equal within a quantum plus one frame. */
	assert_true(bytes[1] > bytes[2] ? bytes[1] - bytes[2] <= FULL + 512
					: bytes[2] - bytes[1] <= FULL + 512);
	fx_free(fx);
}

/* Frames larger than a quantum wait for several visits but do go. */
static void test_large_frames(void **state)
{
	struct fx *fx = fx_new(0, 0);
	uint32_t len, twos = 0;

	(void)state;
	push(fx, 1, VMIC_MAX_FRAME, 1);
	push(fx, 1, VMIC_MAX_FRAME, 2);
	for (uint32_t i = 1; i <= 20; i++)
		push(fx, 2, FULL, i);
	/* Lane 1 needs four visits' worth for a frame; lane 2 sends one
	 * chunk per visit meanwhile. */
	for (int k = 0; k < 22; k++) {
		uint32_t id = pop_id(fx, &len);

		if (id / 1000 == 2)
			twos++;
		else
			assert_true(twos >= 3 * (id % 1000));
	}
	assert_int_equal(twos, 20);
	assert_true(vmic_outq_empty(&fx->q));
	fx_free(fx);
}

/* A lane that empties leaves the ring and is served again when it refills. */
static void test_lane_reuse(void **state)
{
	struct fx *fx = fx_new(0, 0);

	(void)state;
	push(fx, 5, FULL, 1);
	assert_true(fx->lanes[5].scheduled);
	assert_int_equal(pop_id(fx, NULL), 5001);
	assert_false(fx->lanes[5].scheduled);
	assert_true(vmic_outq_empty(&fx->q));
	push(fx, 5, FULL, 2);
	push(fx, 6, FULL, 1);
	push(fx, 5, FULL, 3);
	assert_int_equal(pop_id(fx, NULL), 5002);
	assert_int_equal(pop_id(fx, NULL), 6001);
	assert_int_equal(pop_id(fx, NULL), 5003);
	assert_true(vmic_outq_empty(&fx->q));
	fx_free(fx);
}

/*
 * A bulk copy has queued many chunks; the writer takes one, then a
 * heartbeat is queued: it leaves next.
 */
static void test_heartbeat_behind_bulk(void **state)
{
	struct fx *fx = fx_new(0, 0);
	unsigned bulk_before = 0;
	uint32_t id;

	(void)state;
	for (uint32_t i = 1; i <= 100; i++)
		push(fx, 1 + i % 3, FULL, i);
	(void)pop_id(fx, NULL); /* being written */
	bulk_before++;
	push(fx, 0, VMIC_HDR_SIZE + 8, 1);
	while ((id = pop_id(fx, NULL)) >= 1000)
		bulk_before++;
	assert_int_equal(id, 1);
	assert_true(bulk_before <= 1);
	fx_free(fx);
}

static void test_budgets(void **state)
{
	struct fx *fx = fx_new(1000, 3000);

	(void)state;
	push(fx, 0, 600, 1);
	/* Bulk does not count against the urgent budget. */
	push(fx, 3, 2500, 1);
	assert_int_equal(vmic_outq_bulk_room(&fx->q), 500);
	push(fx, 0, 400, 2);
	/* Past the urgent budget: refused (and freed, ASan checks). */
	assert_int_equal(vmic_outq_push_urgent(&fx->q, buf_new(10, 0, 3)),
			 -ENOBUFS);
	assert_int_equal(fx->q.urgent_bytes, 1000);
	/* Bulk past its budget is the caller's choice; room reads 0. */
	push(fx, 4, 800, 1);
	assert_int_equal(vmic_outq_bulk_room(&fx->q), 0);
	/* Draining makes room again. */
	assert_int_equal(pop_id(fx, NULL), 1);
	assert_int_equal(vmic_outq_push_urgent(&fx->q, buf_new(10, 0, 4)), 0);
	assert_int_equal(pop_id(fx, NULL), 2);
	assert_int_equal(pop_id(fx, NULL), 4);
	assert_int_equal(pop_id(fx, NULL), 3001);
	assert_int_equal(vmic_outq_bulk_room(&fx->q), 2200);
	fx_free(fx);
}

/* Dropping a lane anywhere in the ring keeps the others' order. */
static void test_drop_lane(void **state)
{
	struct fx *fx = fx_new(0, 0);

	(void)state;
	for (uint32_t tag = 1; tag <= 4; tag++)
		for (uint32_t i = 1; i <= 2; i++)
			push(fx, tag, FULL, i);
	assert_int_equal(pop_id(fx, NULL), 1001);
	vmic_outq_drop_lane(&fx->q, &fx->lanes[4]); /* last in the ring */
	vmic_outq_drop_lane(&fx->q, &fx->lanes[2]); /* in the middle */
	assert_int_equal(fx->lanes[2].bytes, 0);
	assert_false(fx->lanes[2].scheduled);
	assert_int_equal(fx->q.bulk_bytes, 3 * FULL);
	assert_int_equal(pop_id(fx, NULL), 3001);
	assert_int_equal(pop_id(fx, NULL), 1002);
	vmic_outq_drop_lane(&fx->q, &fx->lanes[3]); /* the only one left */
	vmic_outq_drop_lane(&fx->q, &fx->lanes[3]); /* twice is harmless */
	assert_true(vmic_outq_empty(&fx->q));
	push(fx, 2, FULL, 9);
	assert_int_equal(pop_id(fx, NULL), 2009);
	fx_free(fx);
}

static void test_clear_frees_everything(void **state)
{
	struct fx *fx = fx_new(0, 0);

	(void)state;
	for (uint32_t tag = 0; tag < NLANES; tag++)
		for (uint32_t i = 1; i <= 5; i++)
			push(fx, tag, 32 + tag, i);
	assert_false(vmic_outq_empty(&fx->q));
	vmic_outq_clear(&fx->q);
	assert_true(vmic_outq_empty(&fx->q));
	assert_null(fx->q.urgent_head);
	assert_null(fx->q.urgent_tail);
	/* The queue and its lanes are usable after a clear. */
	push(fx, 2, 8, 1);
	assert_int_equal(pop_id(fx, NULL), 2001);
	fx_free(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_urgent_fifo_and_first),
		cmocka_unit_test(test_round_robin_full_chunks),
		cmocka_unit_test(test_fair_by_bytes),
		cmocka_unit_test(test_large_frames),
		cmocka_unit_test(test_lane_reuse),
		cmocka_unit_test(test_heartbeat_behind_bulk),
		cmocka_unit_test(test_budgets),
		cmocka_unit_test(test_drop_lane),
		cmocka_unit_test(test_clear_frees_everything),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
