/* SPDX-License-Identifier: MIT */
/*
 * libvirt.h in a build without libvirt (-Dlibvirt=disabled, or no
 * libvirt-dev): asking for it fails with a sentence saying why.
 */
#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "hostd.h"
#include "host/libvirt.h"

int libvirt_start(struct hostd *h)
{
	if (!h->cfg.libvirt_uris[0])
		return 0;
	log_error("this vmic-hostd was built without libvirt, so it cannot "
		  "follow %s; rebuild with libvirt-dev installed "
		  "(meson -Dlibvirt=enabled) or register the VMs with "
		  "`vmic add`",
		  h->cfg.libvirt_uris);
	return -ENOTSUP;
}

void libvirt_stop(struct hostd *h)
{
	(void)h;
}

const char *libvirt_vm_uri(const struct vm *vm)
{
	const char *p = vm_power_off(vm);
	size_t n = strlen(LIBVIRT_POWER_PREFIX);

	/* Stored by a build with libvirt: still shown as such. */
	if (p && strncmp(p, LIBVIRT_POWER_PREFIX, n) == 0 &&
	    strlen(p) > n + 37)
		return p + n + 37;
	return NULL;
}

int vm_libvirt_destroy(struct vm *vm, vm_libvirt_cb cb, void *ud,
		       uint64_t *token)
{
	(void)vm;
	(void)cb;
	(void)ud;
	(void)token;
	return -ENOTSUP;
}

void vm_libvirt_cancel(struct hostd *h, uint64_t token)
{
	(void)h;
	(void)token;
}

void libvirt_stats_json(struct hostd *h, json_t *stats)
{
	(void)h;
	(void)stats;
}

void libvirt_cmd_setup(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	(void)vm;
	(void)args;
	ctl_reply_error(rq, "unsupported", "this vmic-hostd was built without "
			"libvirt; add the channel to the domain with `virsh "
			"edit` (docs/operations.md, libvirt) or rebuild with "
			"libvirt-dev installed");
}
