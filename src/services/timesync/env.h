/* SPDX-License-Identifier: MIT */
/*
 * What the guest offers for time, and which mode the agent runs in.
 *
 * ts_env_probe looks (a few stat()s and small reads, once per cycle, on
 * the loop, none of which can block: see common/safe-file.h):
 * does chronyd run (its pid file names a live process called chronyd),
 * does its refclock SOCK socket exist, is there a PTP device with the
 * hypervisor's clock (ptp_kvm's "KVM virtual PTP", Hyper-V's "hyperv", or
 * the configured path), and does chronyd hold that device open (a PHC
 * refclock). ts_mode_choose turns that and the host's policy into a mode,
 * purely, with a sentence saying why.
 */
#ifndef VMIC_TIMESYNC_ENV_H
#define VMIC_TIMESYNC_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TS_PATH_MAX 256

struct ts_env_paths {
	const char *chrony_socket;   /* the refclock SOCK path */
	const char *chrony_pid_file;
	const char *ptp_device;      /* "auto", "none" or a path */
};

struct ts_env {
	bool chrony_running;
	bool chrony_sock;     /* the refclock socket is there */
	bool chrony_uses_ptp; /* chronyd holds the PTP device open */
	bool ptp_present;
	char ptp_path[TS_PATH_MAX];
	/* -errno when the chrony pid file is there but not read (not a
	 * regular file, a symbolic link, too large): taken as no chronyd */
	int pid_file_err;
};

/* Look at the guest as described above; never fails. */
void ts_env_probe(const struct ts_env_paths *p, struct ts_env *env);

/*
 * The mode (enum vmic_ts_mode) for the host's policy (enum
 * vmic_ts_policy) in this guest, and in detail (size n) why, when it is
 * not the obvious one. Two disciplines never fight: where chronyd runs,
 * the agent only feeds it or measures.
 */
uint8_t ts_mode_choose(const struct ts_env *env, uint8_t policy,
		       const struct ts_env_paths *p, char *detail, size_t n);

#endif
