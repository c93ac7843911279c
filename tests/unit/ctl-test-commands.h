/* SPDX-License-Identifier: MIT */
/*
 * Control commands of the tests' own (ctl-test-commands.c), added to a
 * real vmic-hostd core with ctl_commands_extend: commands that take
 * descriptors and a long operation, so the control socket's descriptor
 * passing and operations are driven through real sockets before any
 * service uses them.
 *
 *   t-read   source (a readable file, pipe, socket, terminal or
 *            character device): {"kind": ..., "data": first bytes of a
 *            regular file}
 *   t-write  destination (a writable file or pipe): writes a line
 *   t-two    source, then an optional destination: {"fds": N}
 *   t-tty    terminal (read and write): {"kind": "terminal"}
 *   t-op     an operation; optional "input" descriptor; members vm,
 *            ticks, interval_ms, total (progress on a timer), end
 *            ("finish": end after the ticks), end_on_signal, warn.
 *            Messages: say and winsize (answered with a "heard"
 *            line), progress,
 *            burst (N large progress lines at once), finish, fail,
 *            signal, winsize, file (with one regular file: answered
 *            with a "read" line).
 */
#ifndef VMIC_CTL_TEST_COMMANDS_H
#define VMIC_CTL_TEST_COMMANDS_H

#include "host/hostd.h"

/* What the test operations saw, for in-process tests to check. */
struct ctl_test_counts {
	unsigned started;     /* operations started */
	unsigned ended;       /* and ended */
	unsigned cancels[4];  /* on_cancel calls, by enum ctl_op_cancel */
	unsigned messages;    /* messages that reached an owner */
	unsigned msg_fds;     /* descriptors that came with them */
};
extern struct ctl_test_counts ctl_test_counts;
/* The most progress ticks a t-op sends (0: as asked); the fuzz target
 * keeps them few. */
extern unsigned ctl_test_max_ticks;

extern const struct ctl_command ctl_test_commands[];
extern const size_t ctl_test_command_count;

#endif
