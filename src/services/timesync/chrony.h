/* SPDX-License-Identifier: MIT */
/*
 * Samples for chronyd's `refclock SOCK PATH`: one datagram per sample in
 * chrony's struct sock_sample (shared/references.md): the system time of
 * the measurement, the offset (true minus system time, in seconds), no
 * pulse, no leap, and the magic "SOCK". chronyd drops anything else.
 */
#ifndef VMIC_TIMESYNC_CHRONY_H
#define VMIC_TIMESYNC_CHRONY_H

#include <stdint.h>

#define TS_CHRONY_MAGIC 0x534f434b /* "SOCK" */

/* A unix datagram socket to send samples from; fd or -errno. */
int ts_chrony_open(void);
/* Send one sample to path: system time sys_ns, offset_ns; 0 or -errno
 * (-ENOENT, -ECONNREFUSED: chronyd does not listen there). Never
 * blocks. */
int ts_chrony_send(int fd, const char *path, int64_t sys_ns,
		   int64_t offset_ns);

#endif
