/* SPDX-License-Identifier: MIT */
/*
 * The sd_notify protocol without libsystemd: one datagram such as
 * "READY=1" to the unix socket named by $NOTIFY_SOCKET (a leading '@'
 * means the abstract namespace).
 */
#ifndef VMIC_NOTIFY_H
#define VMIC_NOTIFY_H

/* Send state; 0 when sent, 0 also when no manager listens, or -errno. */
int vmic_notify(const char *state);

#endif
