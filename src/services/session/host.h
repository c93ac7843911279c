/* SPDX-License-Identifier: MIT */
/*
 * Direct Session, host half: what its files share. host.c is the
 * service entry, its [session] group and the per-VM list of sessions;
 * host-exec.c is the `session-exec` control command and the long
 * operation that carries one session; host-access.c decides who may
 * open one.
 */
#ifndef VMIC_SERVICES_SESSION_HOST_H
#define VMIC_SERVICES_SESSION_HOST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "host/service-api.h"
#include "services/session/session.h"

#define SS_GROUP_MAX 64

/* [session] of hostd.conf (daemon-wide). */
struct ss_host_conf {
	char group[SS_GROUP_MAX]; /* may open sessions besides root */
};

struct ss_host_session;

/* A VM's sessions. */
struct ss_vm {
	struct ss_host_session *list;
	unsigned count;
	uint32_t next_id;
};

struct ss_vm *ss_vm_of(const struct vm *vm);
/* EXIT from the guest for one of vm's sessions. */
void ss_host_exit(struct vm *vm, const struct vmic_ss_exit *m);
/* The guest went away (or the VM goes): every session ends with an
 * error that says so. */
void ss_host_lost(struct vm *vm, const char *why);

/* May uid open sessions? root, the daemon's own user, or a member of
 * group (its primary group or a supplementary one in the group
 * database). An empty group lets nobody else. */
bool ss_host_uid_allowed(uid_t uid, bool privileged, const char *group);

/* The control command (host-exec.c). */
extern const struct ctl_command ss_host_commands[];
#define SS_HOST_NCOMMANDS 1

#endif
