/* SPDX-License-Identifier: MIT */
/* src/services/session/proto.c: the session messages' codecs and bounds. */
#include <errno.h>

#include "testutil.h"

#include "common/wire.h"
#include "services/session/session.h"

static struct vmic_ss_open m, out;
static uint8_t buf[VMIC_SS_OPEN_MAX_LEN + 64];

static void set_str(struct vmic_ss_str *s, const char *p)
{
	s->p = p;
	s->n = (uint16_t)strlen(p);
}

static void open_base(void)
{
	memset(&m, 0, sizeof(m));
	m.session = 7;
	m.in_stream = 1;
	m.out_stream = 2;
	m.err_stream = 3;
	m.timeout_s = 5;
	snprintf(m.user, sizeof(m.user), "nobody");
	m.argc = 2;
	set_str(&m.argv[0], "echo");
	set_str(&m.argv[1], "");
	m.envc = 1;
	set_str(&m.env[0], "A=b=c");
}

static int encode_decode(void)
{
	int n = vmic_ss_open_encode(&m, buf, sizeof(buf));

	if (n < 0)
		return n;
	return vmic_ss_open_decode(buf, (size_t)n, &out);
}

static void test_open_round_trip(void **state)
{
	(void)state;
	open_base();
	assert_int_equal(encode_decode(), 0);
	assert_int_equal(out.session, 7);
	assert_int_equal(out.timeout_s, 5);
	assert_string_equal(out.user, "nobody");
	assert_int_equal(out.argc, 2);
	assert_int_equal(out.argv[0].n, 4);
	assert_memory_equal(out.argv[0].p, "echo", 4);
	assert_int_equal(out.argv[1].n, 0);
	assert_int_equal(out.envc, 1);
	assert_memory_equal(out.env[0].p, "A=b=c", 5);
}

static void test_open_refusals(void **state)
{
	(void)state;
	open_base();
	m.session = 0;
	assert_int_equal(encode_decode(), -EBADMSG);
	open_base();
	m.flags = 0x80;
	assert_int_equal(encode_decode(), -EBADMSG);
	open_base();
	m.flags = VMIC_SS_F_SHELL | VMIC_SS_F_TTY; /* a shell with argv */
	assert_int_equal(encode_decode(), -EBADMSG);
	open_base();
	m.argc = 0; /* a command without one */
	assert_int_equal(encode_decode(), -EBADMSG);
	open_base();
	m.err_stream = 0; /* no stderr without a tty */
	assert_int_equal(encode_decode(), -EBADMSG);
	m.flags = VMIC_SS_F_TTY;
	assert_int_equal(encode_decode(), 0);
	m.flags = VMIC_SS_F_MERGE; /* stderr into stdout: no stream */
	assert_int_equal(encode_decode(), 0);
	open_base();
	set_str(&m.env[0], "=x");
	assert_int_equal(encode_decode(), -EBADMSG);
	set_str(&m.env[0], "NOEQUALS");
	assert_int_equal(encode_decode(), -EBADMSG);
	open_base();
	m.timeout_s = VMIC_SS_TIMEOUT_MAX + 1;
	assert_int_equal(encode_decode(), -EBADMSG);
	open_base();
	m.argc = VMIC_SS_ARGC_MAX + 1;
	assert_int_equal(vmic_ss_open_encode(&m, buf, sizeof(buf)), -EMSGSIZE);
}

/* A count the decoder must refuse before reading past its bound, and
 * trailing bytes. */
static void test_open_wire_bounds(void **state)
{
	int n;

	(void)state;
	open_base();
	n = vmic_ss_open_encode(&m, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = 0;
	assert_int_equal(vmic_ss_open_decode(buf, (size_t)n + 1, &out),
			 -EBADMSG);
	for (int cut = 0; cut < n; cut++)
		assert_int_equal(vmic_ss_open_decode(buf, (size_t)cut, &out),
				 -EBADMSG);
	/* argc is after the fixed part and three strings: u16 at its
	 * offset, set past the bound. */
	{
		size_t off = 4 + 1 + 16 + 4 + 6 + 2 + 0 + 2;

		vmic_put_le16(buf + off, VMIC_SS_ARGC_MAX + 1);
		assert_int_equal(vmic_ss_open_decode(buf, (size_t)n, &out),
				 -EBADMSG);
	}
}

/* Arguments as large as the payload allows, and one byte over it. */
static void test_open_payload_max(void **state)
{
	static char big[VMIC_SS_ARG_MAX + 1];

	(void)state;
	memset(big, 'x', VMIC_SS_ARG_MAX);
	open_base();
	m.argc = 2;
	set_str(&m.argv[0], big);
	set_str(&m.argv[1], big);
	assert_int_equal(encode_decode(), -EMSGSIZE);
	m.argc = 1;
	assert_int_equal(encode_decode(), 0);
	assert_int_equal(out.argv[0].n, VMIC_SS_ARG_MAX);
}

static void test_small_messages(void **state)
{
	struct vmic_ss_signal sig = { .session = 3, .signo = 2 }, sig2;
	struct vmic_ss_winsize ws = { .session = 3, .rows = 30, .cols = 100 },
			       ws2;
	struct vmic_ss_exit ex = { .session = 3, .how = VMIC_SS_EXIT_SIGNAL,
				   .value = 15 },
			    ex2;
	struct vmic_ss_started st = { .pid = 99 }, st2;
	struct vmic_ss_close cl = { .session = 3 }, cl2;
	int n;

	(void)state;
	n = vmic_ss_signal_encode(&sig, buf, sizeof(buf));
	assert_int_equal(vmic_ss_signal_decode(buf, (size_t)n, &sig2), 0);
	assert_int_equal(sig2.signo, 2);
	sig.signo = 99; /* not a signal a session may be sent */
	n = vmic_ss_signal_encode(&sig, buf, sizeof(buf));
	assert_int_equal(vmic_ss_signal_decode(buf, (size_t)n, &sig2),
			 -EBADMSG);
	n = vmic_ss_winsize_encode(&ws, buf, sizeof(buf));
	assert_int_equal(vmic_ss_winsize_decode(buf, (size_t)n, &ws2), 0);
	assert_int_equal(ws2.rows, 30);
	assert_int_equal(ws2.cols, 100);
	n = vmic_ss_exit_encode(&ex, buf, sizeof(buf));
	assert_int_equal(vmic_ss_exit_decode(buf, (size_t)n, &ex2), 0);
	assert_int_equal(ex2.value, 15);
	ex.value = 0; /* signal 0 is no signal */
	n = vmic_ss_exit_encode(&ex, buf, sizeof(buf));
	assert_int_equal(vmic_ss_exit_decode(buf, (size_t)n, &ex2), -EBADMSG);
	ex.how = 9;
	n = vmic_ss_exit_encode(&ex, buf, sizeof(buf));
	assert_int_equal(vmic_ss_exit_decode(buf, (size_t)n, &ex2), -EBADMSG);
	snprintf(st.user, sizeof(st.user), "root");
	n = vmic_ss_started_encode(&st, buf, sizeof(buf));
	assert_int_equal(vmic_ss_started_decode(buf, (size_t)n, &st2), 0);
	assert_string_equal(st2.user, "root");
	snprintf(cl.reason, sizeof(cl.reason), "gone");
	n = vmic_ss_close_encode(&cl, buf, sizeof(buf));
	assert_int_equal(vmic_ss_close_decode(buf, (size_t)n, &cl2), 0);
	assert_string_equal(cl2.reason, "gone");
	assert_string_equal(vmic_ss_signal_name(15), "TERM");
	assert_int_equal(vmic_ss_signal_number("INT"), 2);
	assert_int_equal(vmic_ss_signal_number("SEGV"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_round_trip),
		cmocka_unit_test(test_open_refusals),
		cmocka_unit_test(test_open_wire_bounds),
		cmocka_unit_test(test_open_payload_max),
		cmocka_unit_test(test_small_messages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
