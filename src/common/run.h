/* SPDX-License-Identifier: MIT */
/*
 * Running an administrator's command (a health check, a power backend)
 * from a libuv loop: /bin/sh -c COMMAND in a process group of its own,
 * stdout and stderr read into a small buffer (the rest read and dropped,
 * so the command never blocks on a full pipe), the whole group killed on
 * timeout. The loop never waits: the callback brings the result.
 */
#ifndef VMIC_RUN_H
#define VMIC_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define VMIC_RUN_OUTPUT_MAX 1024

struct vmic_run_result {
	int spawn_error;  /* < 0: the command could not start (uv error) */
	bool timed_out;   /* killed (with its group) after the timeout */
	int64_t status;   /* exit status, when it exited */
	int signo;        /* the signal that ended it, or 0 */
	char output[VMIC_RUN_OUTPUT_MAX + 1]; /* first bytes, NUL-terminated */
	size_t output_len;
};

typedef void (*vmic_run_cb)(void *ud, const struct vmic_run_result *r);

struct vmic_run;

/*
 * Start command; cb runs once, later (never from inside this call), unless
 * the run is cancelled. When the command exits, its output is read until
 * EOF, or for at most a second more if something it left behind keeps the
 * pipe open. Returns 0 (*out set) or -ENOMEM; a command that cannot start
 * still reports through cb, with spawn_error.
 */
int vmic_run_start(uv_loop_t *loop, const char *command, unsigned timeout_ms,
		   vmic_run_cb cb, void *ud, struct vmic_run **out);

/* Kill the process group if it still runs and forget it: no callback.
 * The run frees itself once its handles are closed. */
void vmic_run_cancel(struct vmic_run *run);
/* Forget it, but let a command that still runs go on (the agent exits
 * while the poweroff it started proceeds): no callback, no kill. */
void vmic_run_release(struct vmic_run *run);

/* The first non-empty line of the output, trimmed, into buf. */
void vmic_run_first_line(const struct vmic_run_result *r, char *buf,
			 size_t n);

/* "exit status 3", "killed by signal 9", "timed out after 5s", "cannot
 * start: ENOENT" — what happened, for a log line or an event. */
void vmic_run_describe(const struct vmic_run_result *r, unsigned timeout_ms,
		       char *buf, size_t n);

#endif
