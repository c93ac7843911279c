/* SPDX-License-Identifier: MIT */
/* src/proto/outq.c: the outgoing queue and its fairness. */
#include <errno.h>

#include "testutil.h"

#include "proto/outq.h"
#include "proto/proto.h"

/* A buffer tagged with its stream and a sequence number in its data. */
static struct vmic_outbuf *buf_new(uint32_t len, uint32_t stream,
				   uint32_t seq)
{
	struct vmic_outbuf *b = vmic_outbuf_new(len, stream);

	assert_non_null(b);
	assert_true(len >= 4);
	memcpy(b->data, &seq, 4);
	return b;
}

static uint32_t seq_of(const struct vmic_outbuf *b)
{
	uint32_t seq;

	memcpy(&seq, b->data, 4);
	return seq;
}

/* Pop one and return "stream:seq" packed as stream * 1000 + seq. */
static uint32_t pop_id(struct vmic_outq *q)
{
	struct vmic_outbuf *b = vmic_outq_pop(q);
	uint32_t id;

	assert_non_null(b);
	assert_null(b->next);
	id = b->stream_id * 1000 + seq_of(b);
	free(b);
	return id;
}

static void test_empty(void **state)
{
	struct vmic_outq q;

	(void)state;
	vmic_outq_init(&q, 0);
	assert_true(vmic_outq_empty(&q));
	assert_null(vmic_outq_pop(&q));
	assert_int_equal(q.bytes, 0);
	vmic_outq_clear(&q);
}

static void test_urgent_fifo_and_first(void **state)
{
	struct vmic_outq q;

	(void)state;
	vmic_outq_init(&q, 0);
	assert_int_equal(vmic_outq_push(&q, buf_new(100, 7, 1)), 0);
	assert_int_equal(vmic_outq_push(&q, buf_new(100, 7, 2)), 0);
	assert_int_equal(vmic_outq_push(&q, buf_new(10, 0, 1)), 0);
	assert_int_equal(vmic_outq_push(&q, buf_new(10, 0, 2)), 0);
	assert_int_equal(vmic_outq_push(&q, buf_new(10, 0, 3)), 0);
	assert_int_equal(q.bytes, 230);
	assert_false(vmic_outq_empty(&q));
	/* Urgent ones first, in their order, then the stream. */
	assert_int_equal(pop_id(&q), 1);
	assert_int_equal(pop_id(&q), 2);
	assert_int_equal(pop_id(&q), 3);
	assert_int_equal(pop_id(&q), 7001);
	/* An urgent frame pushed now still overtakes the stream. */
	assert_int_equal(vmic_outq_push(&q, buf_new(10, 0, 4)), 0);
	assert_int_equal(pop_id(&q), 4);
	assert_int_equal(pop_id(&q), 7002);
	assert_true(vmic_outq_empty(&q));
	assert_int_equal(q.bytes, 0);
}

static void test_round_robin(void **state)
{
	struct vmic_outq q;
	uint32_t expect[] = { 1001, 2001, 3001, 1002, 2002, 3002,
			      1003, 3003, 4001, 1004, 4002, 4003 };

	(void)state;
	vmic_outq_init(&q, 0);
	for (uint32_t i = 1; i <= 4; i++)
		assert_int_equal(vmic_outq_push(&q, buf_new(64, 1, i)), 0);
	for (uint32_t i = 1; i <= 2; i++)
		assert_int_equal(vmic_outq_push(&q, buf_new(64, 2, i)), 0);
	for (uint32_t i = 1; i <= 3; i++)
		assert_int_equal(vmic_outq_push(&q, buf_new(64, 3, i)), 0);
	/* One frame per stream per turn; a stream that starts late joins
	 * at the end of the ring, a drained one leaves it. */
	for (size_t k = 0; k < 6; k++)
		assert_int_equal(pop_id(&q), expect[k]);
	for (uint32_t i = 1; i <= 3; i++)
		assert_int_equal(vmic_outq_push(&q, buf_new(64, 4, i)), 0);
	for (size_t k = 6; k < 12; k++)
		assert_int_equal(pop_id(&q), expect[k]);
	assert_true(vmic_outq_empty(&q));
	assert_int_equal(q.bytes, 0);
}

/* A stream that empties and comes back is served again. */
static void test_lane_reuse(void **state)
{
	struct vmic_outq q;

	(void)state;
	vmic_outq_init(&q, 0);
	assert_int_equal(vmic_outq_push(&q, buf_new(8, 5, 1)), 0);
	assert_int_equal(pop_id(&q), 5001);
	assert_true(vmic_outq_empty(&q));
	assert_int_equal(vmic_outq_push(&q, buf_new(8, 5, 2)), 0);
	assert_int_equal(vmic_outq_push(&q, buf_new(8, 6, 1)), 0);
	assert_int_equal(vmic_outq_push(&q, buf_new(8, 5, 3)), 0);
	assert_int_equal(pop_id(&q), 5002);
	assert_int_equal(pop_id(&q), 6001);
	assert_int_equal(pop_id(&q), 5003);
	assert_true(vmic_outq_empty(&q));
}

/*
 * A bulk copy has queued many chunks; the writer takes one, then a
 * heartbeat is queued: it leaves next, after at most that one chunk.
 */
static void test_heartbeat_behind_bulk(void **state)
{
	struct vmic_outq q;
	struct vmic_outbuf *b;
	size_t bulk_before = 0;

	(void)state;
	vmic_outq_init(&q, 0);
	for (uint32_t i = 1; i <= 100; i++)
		assert_int_equal(vmic_outq_push(&q, buf_new(VMIC_STREAM_CHUNK +
								    VMIC_HDR_SIZE,
							    9, i)),
				 0);
	b = vmic_outq_pop(&q); /* being written */
	free(b);
	bulk_before++;
	assert_int_equal(vmic_outq_push(&q, buf_new(VMIC_HDR_SIZE + 8, 0, 1)),
			 0);
	while ((b = vmic_outq_pop(&q)) && b->stream_id != 0) {
		bulk_before++;
		free(b);
	}
	assert_non_null(b);
	assert_int_equal(seq_of(b), 1);
	free(b);
	assert_true(bulk_before <= 1);
	vmic_outq_clear(&q);
	assert_true(vmic_outq_empty(&q));
}

static void test_limit(void **state)
{
	struct vmic_outq q;

	(void)state;
	vmic_outq_init(&q, 1000);
	assert_int_equal(vmic_outq_push(&q, buf_new(600, 0, 1)), 0);
	/* Still at or under the limit when pushed: accepted. */
	assert_int_equal(vmic_outq_push(&q, buf_new(600, 3, 1)), 0);
	assert_int_equal(q.bytes, 1200);
	/* Over the limit: refused (and freed, ASan checks that). */
	assert_int_equal(vmic_outq_push(&q, buf_new(10, 0, 2)), -ENOBUFS);
	assert_int_equal(vmic_outq_push(&q, buf_new(10, 4, 1)), -ENOBUFS);
	assert_int_equal(q.bytes, 1200);
	/* Draining makes room again. */
	assert_int_equal(pop_id(&q), 1);
	assert_int_equal(vmic_outq_push(&q, buf_new(10, 0, 3)), 0);
	assert_int_equal(q.bytes, 610);
	assert_int_equal(pop_id(&q), 3);
	assert_int_equal(pop_id(&q), 3001);
	assert_true(vmic_outq_empty(&q));
}

static void test_clear_frees_everything(void **state)
{
	struct vmic_outq q;

	(void)state;
	vmic_outq_init(&q, 0);
	for (uint32_t s = 0; s < 20; s++)
		for (uint32_t i = 1; i <= 5; i++)
			assert_int_equal(vmic_outq_push(&q, buf_new(32 + s, s,
								    i)),
					 0);
	assert_false(vmic_outq_empty(&q));
	vmic_outq_clear(&q);
	assert_true(vmic_outq_empty(&q));
	assert_int_equal(q.bytes, 0);
	assert_null(q.urgent_head);
	assert_null(q.urgent_tail);
	assert_null(q.lanes);
	/* The queue is usable after a clear. */
	assert_int_equal(vmic_outq_push(&q, buf_new(8, 2, 1)), 0);
	assert_int_equal(pop_id(&q), 2001);
	vmic_outq_clear(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_urgent_fifo_and_first),
		cmocka_unit_test(test_round_robin),
		cmocka_unit_test(test_lane_reuse),
		cmocka_unit_test(test_heartbeat_behind_bulk),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_clear_frees_everything),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
