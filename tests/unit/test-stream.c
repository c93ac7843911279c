/* SPDX-License-Identifier: MIT */
/* src/proto/stream.c: credit-based flow control bookkeeping. */
#include <errno.h>

#include "testutil.h"

#include "proto/stream.h"

static void test_tx_blocks_at_initial_credit(void **state)
{
	struct vmic_stream_tx tx;

	(void)state;
	vmic_stream_tx_init(&tx);
	assert_true(vmic_stream_tx_room(&tx) == VMIC_STREAM_INITIAL_CREDIT);
	/* Four full chunks use the initial credit up. */
	for (int i = 0; i < 4; i++)
		assert_int_equal(vmic_stream_tx_sent(&tx, VMIC_STREAM_CHUNK), 0);
	assert_true(vmic_stream_tx_room(&tx) == 0);
	/* Not one byte more. */
	assert_int_equal(vmic_stream_tx_sent(&tx, 1), -EPROTO);
	assert_true(tx.sent == VMIC_STREAM_INITIAL_CREDIT);
	/* A zero-byte frame (an END marker) is always fine. */
	assert_int_equal(vmic_stream_tx_sent(&tx, 0), 0);
}

static void test_tx_credit_extends(void **state)
{
	struct vmic_stream_tx tx;

	(void)state;
	vmic_stream_tx_init(&tx);
	assert_int_equal(vmic_stream_tx_sent(&tx, 200000), 0);
	assert_true(vmic_stream_tx_room(&tx) ==
		    VMIC_STREAM_INITIAL_CREDIT - 200000);
	assert_int_equal(vmic_stream_tx_credit(&tx, 100000), 0);
	assert_true(vmic_stream_tx_room(&tx) ==
		    VMIC_STREAM_INITIAL_CREDIT - 100000);
	assert_int_equal(vmic_stream_tx_sent(&tx, (uint32_t)vmic_stream_tx_room(
							  &tx)),
			 0);
	assert_true(vmic_stream_tx_room(&tx) == 0);
	assert_int_equal(vmic_stream_tx_credit(&tx, 1), 0);
	assert_int_equal(vmic_stream_tx_sent(&tx, 2), -EPROTO);
	assert_int_equal(vmic_stream_tx_sent(&tx, 1), 0);
}

static void test_tx_rejects_bad_grants(void **state)
{
	struct vmic_stream_tx tx;

	(void)state;
	vmic_stream_tx_init(&tx);
	assert_int_equal(vmic_stream_tx_credit(&tx, 0), -EOVERFLOW);
	/* More than 64 MiB in flight is nonsense from a receiver. */
	assert_int_equal(vmic_stream_tx_credit(&tx, 0xFFFFFFFFu), -EOVERFLOW);
	assert_int_equal(vmic_stream_tx_credit(&tx, 64u * 1024 * 1024),
			 -EOVERFLOW);
	assert_true(vmic_stream_tx_room(&tx) == VMIC_STREAM_INITIAL_CREDIT);
	/* Up to the bound is accepted... */
	assert_int_equal(vmic_stream_tx_credit(
				 &tx, 64u * 1024 * 1024 -
					      VMIC_STREAM_INITIAL_CREDIT),
			 0);
	assert_true(vmic_stream_tx_room(&tx) == 64ull * 1024 * 1024);
	/* ...and not a byte past it, until data is sent. */
	assert_int_equal(vmic_stream_tx_credit(&tx, 1), -EOVERFLOW);
	assert_int_equal(vmic_stream_tx_sent(&tx, 1000), 0);
	assert_int_equal(vmic_stream_tx_credit(&tx, 1000), 0);
	/* Many grants over a long transfer never wrap anything. */
	for (int i = 0; i < 10000; i++) {
		assert_int_equal(vmic_stream_tx_sent(&tx, VMIC_STREAM_CHUNK),
				 0);
		assert_int_equal(vmic_stream_tx_credit(&tx, VMIC_STREAM_CHUNK),
				 0);
	}
	assert_true(tx.sent == 1000 + 10000ull * VMIC_STREAM_CHUNK);
}

static void test_rx_rejects_beyond_credit(void **state)
{
	struct vmic_stream_rx rx;

	(void)state;
	vmic_stream_rx_init(&rx, 0);
	assert_int_equal(rx.window, VMIC_STREAM_INITIAL_CREDIT);
	assert_int_equal(vmic_stream_rx_data(&rx, VMIC_STREAM_INITIAL_CREDIT -
							  1),
			 0);
	assert_int_equal(vmic_stream_rx_data(&rx, 2), -EPROTO);
	assert_true(rx.received == VMIC_STREAM_INITIAL_CREDIT - 1);
	assert_int_equal(vmic_stream_rx_data(&rx, 1), 0);
	assert_int_equal(vmic_stream_rx_data(&rx, 1), -EPROTO);
	/* A huge count cannot sneak through by wrapping. */
	assert_int_equal(vmic_stream_rx_data(&rx, 0xFFFFFFFFu), -EPROTO);
}

static void test_rx_grants_after_half_window(void **state)
{
	const uint32_t w = VMIC_STREAM_INITIAL_CREDIT;
	struct vmic_stream_rx rx;
	uint32_t grant;

	(void)state;
	vmic_stream_rx_init(&rx, w);
	assert_int_equal(vmic_stream_rx_data(&rx, w), 0);
	/* Consumed less than half a window: no credit frame yet. */
	assert_int_equal(vmic_stream_rx_consumed(&rx, w / 4), 0);
	assert_int_equal(vmic_stream_rx_consumed(&rx, w / 4 - 1), 0);
	/* Half a window: grant what was consumed. */
	grant = vmic_stream_rx_consumed(&rx, 1);
	assert_int_equal(grant, w / 2);
	assert_true(rx.granted == w + w / 2);
	/* Now the sender may send that much more, and no more. */
	assert_int_equal(vmic_stream_rx_data(&rx, w / 2), 0);
	assert_int_equal(vmic_stream_rx_data(&rx, 1), -EPROTO);
	/* Consuming beyond what arrived is clamped (a caller bug). */
	grant = vmic_stream_rx_consumed(&rx, 10 * w);
	assert_true(rx.consumed == rx.received);
	assert_int_equal(grant, w);
	assert_true(rx.granted == rx.consumed + w);
}

/* Sender and receiver together: a long transfer never stalls. */
static void test_transfer_with_credit_frames(void **state)
{
	struct vmic_stream_tx tx;
	struct vmic_stream_rx rx;
	uint64_t total = 10ull * 1024 * 1024, moved = 0;
	int credit_frames = 0, rounds = 0;

	(void)state;
	vmic_stream_tx_init(&tx);
	vmic_stream_rx_init(&rx, 1024 * 1024);
	while (moved < total) {
		uint64_t room = vmic_stream_tx_room(&tx);
		uint32_t n, grant;

		assert_true(++rounds < 100000);
		assert_true(room > 0); /* never blocked for good */
		n = (uint32_t)MIN(MIN(room, (uint64_t)VMIC_STREAM_CHUNK),
				  total - moved);
		assert_int_equal(vmic_stream_tx_sent(&tx, n), 0);
		assert_int_equal(vmic_stream_rx_data(&rx, n), 0);
		moved += n;
		grant = vmic_stream_rx_consumed(&rx, n);
		if (grant) {
			credit_frames++;
			assert_int_equal(vmic_stream_tx_credit(&tx, grant), 0);
		}
		/* The sender's idea of the credit matches the receiver's. */
		assert_true(tx.allowed == rx.granted);
	}
	/* Credits are batched, not one per chunk. */
	assert_true(credit_frames > 0);
	assert_true(credit_frames < rounds / 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tx_blocks_at_initial_credit),
		cmocka_unit_test(test_tx_credit_extends),
		cmocka_unit_test(test_tx_rejects_bad_grants),
		cmocka_unit_test(test_rx_rejects_beyond_credit),
		cmocka_unit_test(test_rx_grants_after_half_window),
		cmocka_unit_test(test_transfer_with_credit_frames),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
