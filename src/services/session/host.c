/* SPDX-License-Identifier: MIT */
/*
 * Direct Session, host half: the service entry, [session] group, and the
 * sessions of each VM (host-exec.c runs them). Off by default: `vmic
 * enable VM session` on the host and [session] enabled in the guest.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "common/macro.h"
#include "proto/services.h"
#include "services/session/host.h"

#define ID VMIC_SVC_SESSION
#define DFIELD(f) offsetof(struct ss_host_conf, f)

static const struct vmic_conf_key daemon_keys[] = {
	{ .section = "session", .key = "group", .type = VMIC_CONF_STRING,
	  .offset = DFIELD(group), .size = SS_GROUP_MAX,
	  .help = "the group whose members may open sessions (vmic exec, "
		  "vmic shell) besides root; empty: root only" },
};

static const struct vmic_conf_table daemon_table = { daemon_keys,
						     ARRAY_SIZE(daemon_keys) };

static void ss_daemon_defaults(void *p)
{
	struct ss_host_conf *c = p;

	c->group[0] = '\0';
}

struct ss_vm *ss_vm_of(const struct vm *vm)
{
	return vm_state(vm, ID);
}

static int ss_attach(struct vm *vm)
{
	struct ss_vm *sv = calloc(1, sizeof(*sv));

	if (!sv)
		return -ENOMEM;
	vm_set_state(vm, ID, sv);
	return 0;
}

static void ss_detach(struct vm *vm, enum detach_reason why)
{
	ss_host_lost(vm, why == DETACH_REMOVED ? "the VM was removed"
					       : "vmic-hostd is stopping");
}

static void ss_release(struct vm *vm)
{
	free(vm_state(vm, ID));
	vm_set_state(vm, ID, NULL);
}

static void ss_on_down(struct vm *vm)
{
	ss_host_lost(vm, conn_up(vm)
				 ? "the session service was disabled for the VM"
				 : "the connection to the guest agent ended");
}

static void ss_on_notice(struct vm *vm, struct notice *n)
{
	if (n->kind == NOTICE_CHANNEL_CLOSED)
		ss_host_lost(vm, "the connection to the guest agent closed");
}

static int ss_on_frame(struct vm *vm, const struct vmic_frame *f)
{
	struct vmic_ss_exit m;

	if (f->type != VMIC_SS_EXIT)
		return 0;
	if (vmic_ss_exit_decode(f->payload, f->length, &m) < 0) {
		vm_bad_frame(vm);
		return 0;
	}
	ss_host_exit(vm, &m);
	return 0;
}

static void ss_status_json(const struct vm *vm, json_t *entry)
{
	const struct ss_vm *sv = ss_vm_of(vm);

	json_object_set_new(entry, "sessions", json_integer(sv ? sv->count : 0));
}

const struct host_service session_host = {
	.desc = &vmic_session_service,
	.daemon_settings = &daemon_table,
	.daemon_settings_size = sizeof(struct ss_host_conf),
	.daemon_settings_defaults = ss_daemon_defaults,
	.max_requests = 64, /* OPENs waiting for STARTED, not sessions */
	.attach = ss_attach,
	.detach = ss_detach,
	.release = ss_release,
	.on_down = ss_on_down,
	.on_notice = ss_on_notice,
	.on_frame = ss_on_frame,
	.status_json = ss_status_json,
	.commands = ss_host_commands,
	.ncommands = SS_HOST_NCOMMANDS,
};
