/* SPDX-License-Identifier: MIT */
/* src/proto/stream.c, stream-table.c: credit, the stream table, input rules. */
#include <errno.h>

#include "testutil.h"

#include "common/wire.h"
#include "proto/control.h"
#include "proto/frame.h"
#include "proto/stream-table.h"

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
	vmic_stream_rx_init(&rx, 1);
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

/* A window larger than the implicit credit is granted at open. */
static void test_rx_large_window_grants_at_once(void **state)
{
	struct vmic_stream_rx rx;

	(void)state;
	vmic_stream_rx_init(&rx, 1024 * 1024);
	assert_int_equal(vmic_stream_rx_consumed(&rx, 0),
			 1024 * 1024 - VMIC_STREAM_INITIAL_CREDIT);
	assert_int_equal(vmic_stream_rx_consumed(&rx, 0), 0);
	vmic_stream_rx_init(&rx, VMIC_STREAM_INITIAL_CREDIT);
	assert_int_equal(vmic_stream_rx_consumed(&rx, 0), 0);
	vmic_stream_rx_init(&rx, 0);
	assert_int_equal(rx.window, VMIC_STREAM_WINDOW_DEFAULT);
	/* Clamped to what a sender accepts in flight. */
	vmic_stream_rx_init(&rx, 0xFFFFFFFFu);
	assert_int_equal(rx.window, VMIC_STREAM_MAX_WINDOW);
}

static struct vmic_stream *stream_new(uint32_t id, enum vmic_stream_dir dir)
{
	struct vmic_stream *s = malloc(sizeof(*s));

	assert_non_null(s);
	vmic_stream_init(s, id, VMIC_SVC_FILECOPY, dir, 0, NULL, NULL);
	return s;
}

/* Random adds and removes against a plain array as the reference. */
static void test_table_against_reference(void **state)
{
	enum { IDS = 200 };
	struct vmic_stream *ref[IDS] = { 0 };
	struct vmic_stream_table t;
	uint64_t seed = 7;
	unsigned count = 0;

	(void)state;
	vmic_stream_table_init(&t, false, 64);
	assert_int_equal(t.max, 64);
	for (int step = 0; step < 20000; step++) {
		/* Ids that collide in the slots: multiples of the capacity. */
		uint32_t k = (uint32_t)(tu_rand(&seed) % IDS);
		uint32_t id = (k % 2) ? k : (k + 1) * t.cap;

		if (ref[k]) {
			assert_ptr_equal(vmic_stream_table_find(&t, id),
					 ref[k]);
			vmic_stream_table_remove(&t, ref[k]);
			free(ref[k]);
			ref[k] = NULL;
			count--;
		} else {
			struct vmic_stream *s = stream_new(id,
							   VMIC_STREAM_SEND);
			int r = vmic_stream_table_add(&t, s);

			if (count == 64) {
				assert_int_equal(r, -EMFILE);
				free(s);
			} else {
				assert_int_equal(r, 0);
				ref[k] = s;
				count++;
			}
		}
		assert_int_equal(t.count, count);
		if (step % 97 == 0)
			for (uint32_t j = 0; j < IDS; j++) {
				uint32_t jd = (j % 2) ? j : (j + 1) * t.cap;

				assert_ptr_equal(vmic_stream_table_find(&t, jd),
						 ref[j]);
			}
	}
	while (count > 0) {
		struct vmic_stream *s = vmic_stream_table_any(&t);

		assert_non_null(s);
		vmic_stream_table_remove(&t, s);
		for (uint32_t j = 0; j < IDS; j++)
			if (ref[j] == s)
				ref[j] = NULL;
		free(s);
		count--;
	}
	/* Empty: the slots are gone, nothing left to free. */
	assert_null(t.slots);
	assert_null(vmic_stream_table_any(&t));
	vmic_stream_table_free(&t);
}

static void test_table_errors_and_ids(void **state)
{
	struct vmic_stream_table host, guest;
	struct vmic_stream *a = stream_new(0, VMIC_STREAM_SEND);
	struct vmic_stream *b = stream_new(5, VMIC_STREAM_SEND);
	struct vmic_stream *c = stream_new(5, VMIC_STREAM_RECV);
	uint32_t id;

	(void)state;
	vmic_stream_table_init(&host, false, 0);
	assert_int_equal(host.max, VMIC_STREAMS_MAX_DEFAULT);
	vmic_stream_table_init(&guest, true, 100000);
	assert_int_equal(guest.max, VMIC_STREAMS_MAX_LIMIT);
	assert_int_equal(vmic_stream_table_add(&host, a), -EINVAL);
	assert_int_equal(vmic_stream_table_add(&host, b), 0);
	assert_int_equal(vmic_stream_table_add(&host, c), -EEXIST);
	/* Fresh ids: this side's bit, never 0, never one in use. */
	for (int i = 0; i < 10; i++) {
		id = vmic_stream_table_next_id(&host);
		assert_int_equal(id & VMIC_STREAM_GUEST_BIT, 0);
		assert_true(id != 0 && id != 5);
	}
	id = vmic_stream_table_next_id(&guest);
	assert_int_equal(id, VMIC_STREAM_GUEST_BIT | 1);
	guest.last_id = 0x7FFFFFFFu; /* wraps past 0 */
	assert_int_equal(vmic_stream_table_next_id(&guest),
			 VMIC_STREAM_GUEST_BIT | 1);
	vmic_stream_table_remove(&host, b);
	vmic_stream_table_free(&host);
	vmic_stream_table_free(&guest);
	free(a);
	free(b);
	free(c);
}

/* A frame for the input judge; payload is copied into a static buffer. */
static struct vmic_frame frame(uint8_t type, uint32_t id, uint16_t flags,
			       const void *payload, uint32_t len)
{
	static uint8_t buf[VMIC_STREAM_CHUNK + 1];
	struct vmic_frame f = {
		.service = VMIC_SVC_FILECOPY,
		.type = type,
		.flags = flags,
		.stream_id = id,
		.length = len,
		.payload = buf,
	};

	if (len)
		memcpy(buf, payload, len);
	return f;
}

static struct vmic_frame credit(uint32_t id, uint32_t more)
{
	uint8_t p[4];

	vmic_put_le32(p, more);
	return frame(VMIC_T_STREAM_CREDIT, id, 0, p, 4);
}

static void judge(struct vmic_stream_table *t, struct vmic_frame f,
		  enum vmic_stream_verdict v, uint16_t code,
		  struct vmic_stream *s)
{
	struct vmic_stream_input in;

	vmic_stream_table_input(t, &f, &in);
	assert_int_equal(in.verdict, v);
	assert_int_equal(in.code, code);
	assert_ptr_equal(in.s, s);
	if (v == VMIC_SV_REFUSE)
		assert_non_null(in.why);
}

static void test_input_rules(void **state)
{
	static uint8_t data[VMIC_STREAM_CHUNK + 1];
	struct vmic_stream_table t;
	struct vmic_stream *rx = stream_new(3, VMIC_STREAM_RECV);
	struct vmic_stream *tx = stream_new(4, VMIC_STREAM_SEND);
	uint8_t reset[VMIC_STREAM_RESET_FRAME_MAX];
	struct vmic_frame f;
	size_t n;

	(void)state;
	vmic_stream_table_init(&t, true, 4);
	assert_int_equal(vmic_stream_table_add(&t, rx), 0);
	assert_int_equal(vmic_stream_table_add(&t, tx), 0);

	/* Unknown streams: data refused; a reset, or a credit (which may
	 * cross the END of a finished sender), ignored. */
	judge(&t, frame(VMIC_T_STREAM_DATA, 9, 0, data, 10), VMIC_SV_REFUSE,
	      VMIC_E_NO_STREAM, NULL);
	judge(&t, credit(9, 100), VMIC_SV_IGNORE, 0, NULL);
	judge(&t, frame(VMIC_T_STREAM_RESET, 9, 0, "\x06\x00\x00\x00", 4),
	      VMIC_SV_IGNORE, 0, NULL);
	/* Another service's stream of that id is not this one. */
	f = frame(VMIC_T_STREAM_DATA, 3, 0, data, 10);
	f.service = VMIC_SVC_SESSION;
	judge(&t, f, VMIC_SV_REFUSE, VMIC_E_NO_STREAM, NULL);

	/* Data within credit, up to the last byte; then not one more. */
	for (int i = 0; i < 3; i++)
		judge(&t, frame(VMIC_T_STREAM_DATA, 3, 0, data,
				VMIC_STREAM_CHUNK),
		      VMIC_SV_DATA, 0, rx);
	judge(&t, frame(VMIC_T_STREAM_DATA, 3, 0, data, VMIC_STREAM_CHUNK + 1),
	      VMIC_SV_REFUSE, VMIC_E_BAD_LENGTH, rx);
	judge(&t, frame(VMIC_T_STREAM_DATA, 3, 0, data, VMIC_STREAM_CHUNK - 1),
	      VMIC_SV_DATA, 0, rx);
	judge(&t, frame(VMIC_T_STREAM_DATA, 3, VMIC_F_END, data, 0),
	      VMIC_SV_DATA, 0, rx);
	judge(&t, frame(VMIC_T_STREAM_DATA, 3, 0, data, 2), VMIC_SV_REFUSE,
	      VMIC_E_FLOW, rx);
	assert_true(rx->rx.received == VMIC_STREAM_INITIAL_CREDIT - 1);
	/* Wrong directions. */
	judge(&t, credit(3, 100), VMIC_SV_REFUSE, VMIC_E_MALFORMED, rx);
	judge(&t, frame(VMIC_T_STREAM_DATA, 4, 0, data, 1), VMIC_SV_REFUSE,
	      VMIC_E_MALFORMED, tx);

	/* Credit: applied when sane. */
	judge(&t, credit(4, 1000), VMIC_SV_CREDIT, 0, tx);
	assert_true(tx->tx.allowed == VMIC_STREAM_INITIAL_CREDIT + 1000);
	judge(&t, credit(4, 0), VMIC_SV_REFUSE, VMIC_E_FLOW, tx);
	judge(&t, credit(4, 0xFFFFFFFFu), VMIC_SV_REFUSE, VMIC_E_FLOW, tx);
	judge(&t, frame(VMIC_T_STREAM_CREDIT, 4, 0, data, 3), VMIC_SV_REFUSE,
	      VMIC_E_BAD_LENGTH, tx);
	assert_true(tx->tx.allowed == VMIC_STREAM_INITIAL_CREDIT + 1000);

	/* A reset of a known stream, with its code; a broken one still
	 * resets, as malformed. */
	n = vmic_stream_reset_frame(reset, VMIC_SVC_FILECOPY, 4, VMIC_E_FAILED,
				    "disk full");
	judge(&t, frame(VMIC_T_STREAM_RESET, 4, 0, reset + VMIC_HDR_SIZE,
			(uint32_t)(n - VMIC_HDR_SIZE)),
	      VMIC_SV_PEER_RESET, VMIC_E_FAILED, tx);
	/* ... and its message, for the owner to pass on. */
	{
		struct vmic_frame rf = frame(VMIC_T_STREAM_RESET, 4, 0,
					     reset + VMIC_HDR_SIZE,
					     (uint32_t)(n - VMIC_HDR_SIZE));
		struct vmic_stream_input in;

		vmic_stream_table_input(&t, &rf, &in);
		assert_string_equal(in.message, "disk full");
		rf = frame(VMIC_T_STREAM_RESET, 4, 0, "\x01", 1);
		vmic_stream_table_input(&t, &rf, &in);
		assert_string_equal(in.message, "");
	}
	judge(&t, frame(VMIC_T_STREAM_RESET, 4, 0, "\x01", 1),
	      VMIC_SV_PEER_RESET, VMIC_E_MALFORMED, tx);
	judge(&t, frame(VMIC_T_STREAM_RESET, 4, 0, "\x00\x00\x00\x00", 4),
	      VMIC_SV_PEER_RESET, VMIC_E_MALFORMED, tx);

	vmic_stream_table_remove(&t, rx);
	vmic_stream_table_remove(&t, tx);
	vmic_stream_table_free(&t);
	free(rx);
	free(tx);
}

/* The frames a stream sends decode as the peer will decode them. */
static void test_stream_frames(void **state)
{
	uint8_t buf[VMIC_STREAM_RESET_FRAME_MAX];
	char longmsg[2000];
	struct vmic_stream s;
	struct vmic_frame f;
	struct vmic_error e;
	size_t n;

	(void)state;
	n = vmic_stream_credit_frame(buf, VMIC_SVC_SESSION, 77, 131072);
	assert_int_equal(n, VMIC_STREAM_CREDIT_FRAME);
	assert_int_equal(vmic_frame_parse_header(buf, &f), 0);
	assert_int_equal(f.type, VMIC_T_STREAM_CREDIT);
	assert_int_equal(f.stream_id, 77);
	assert_int_equal(f.length, 4);
	assert_int_equal(vmic_get_le32(buf + VMIC_HDR_SIZE), 131072);

	memset(longmsg, 'x', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	n = vmic_stream_reset_frame(buf, VMIC_SVC_SESSION, 78, VMIC_E_FLOW,
				    longmsg);
	assert_true(n <= sizeof(buf));
	assert_int_equal(vmic_frame_parse_header(buf, &f), 0);
	assert_int_equal(f.type, VMIC_T_STREAM_RESET);
	assert_int_equal(f.flags, 0);
	assert_int_equal(f.stream_id, 78);
	assert_int_equal(vmic_error_decode(buf + VMIC_HDR_SIZE, f.length, &e),
			 0);
	assert_int_equal(e.code, VMIC_E_FLOW);
	assert_int_equal(strlen(e.message), VMIC_ERROR_MSG_MAX);

	vmic_stream_init(&s, 79, VMIC_SVC_FILECOPY, VMIC_STREAM_SEND, 0, NULL,
			 NULL);
	vmic_stream_data_header(buf, &s, 1234, true);
	assert_int_equal(vmic_frame_parse_header(buf, &f), 0);
	assert_int_equal(f.type, VMIC_T_STREAM_DATA);
	assert_int_equal(f.flags, VMIC_F_END);
	assert_int_equal(f.length, 1234);
	assert_int_equal(f.stream_id, 79);
	assert_int_equal(f.service, VMIC_SVC_FILECOPY);
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
		cmocka_unit_test(test_rx_large_window_grants_at_once),
		cmocka_unit_test(test_table_against_reference),
		cmocka_unit_test(test_table_errors_and_ids),
		cmocka_unit_test(test_input_rules),
		cmocka_unit_test(test_stream_frames),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
