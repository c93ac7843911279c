/* SPDX-License-Identifier: MIT */
/*
 * The in-memory VM registry: an array of pointers sorted by name, so
 * lookups are a binary search and `list` needs no sort. Adding and
 * removing move pointers (O(N)), which only control commands do.
 *
 * A VM's memory lives until its last libuv handle has closed and the last
 * operation holding it (a stop, a power-off) has finished: vm->refs counts
 * them, plus one for the registry.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "hostd.h"
#include "proto/services.h"

static uint32_t default_enabled_mask(void)
{
	uint32_t mask = 0;

	for (size_t i = 0; i < vmic_service_count; i++)
		if (vmic_services[i]->default_on)
			mask |= 1u << vmic_services[i]->id;
	return mask;
}

struct vm *vm_new(struct hostd *h, const char *name)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return NULL;
	vm->h = h;
	vm->refs = 1;
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	vm->enabled_mask = default_enabled_mask();
	vm->created_us = vmic_realtime_us();
	for (size_t i = 0; i < VMIC_SVC_COUNT; i++)
		vm->svc[i].primary = SVC_NO_CONTACT;
	conn_init(vm);
	requests_init(vm);
	if (services_attach(vm) < 0) {
		log_error("out of memory creating VM '%s'", name);
		vm_destroy(vm, DETACH_REMOVED);
		return NULL;
	}
	return vm;
}

/* Index of name in the registry, or where it would go (*found false). */
static size_t vm_index(const struct hostd *h, const char *name, bool *found)
{
	size_t lo = 0, hi = h->nvms;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(h->vms[mid]->name, name);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int vm_register(struct hostd *h, struct vm *vm)
{
	bool found;
	size_t i = vm_index(h, vm->name, &found);

	if (found)
		return -EEXIST;
	if (h->nvms == h->vms_cap) {
		size_t cap = h->vms_cap ? h->vms_cap * 2 : 64;
		struct vm **n = realloc(h->vms, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		h->vms = n;
		h->vms_cap = cap;
	}
	memmove(&h->vms[i + 1], &h->vms[i], (h->nvms - i) * sizeof(*h->vms));
	h->vms[i] = vm;
	h->nvms++;
	return 0;
}

void vm_fd_room(struct hostd *h)
{
	if (h->fd_warned || !h->fd_limit ||
	    h->nvms + VM_FD_SLACK < h->fd_limit)
		return;
	h->fd_warned = true;
	log_warning("%zu VMs are registered and the open file limit is %llu: "
		    "VMs past about %llu cannot connect; raise LimitNOFILE= "
		    "in vmic-hostd.service (or ulimit -n) to %llu",
		    h->nvms, (unsigned long long)h->fd_limit,
		    (unsigned long long)(h->fd_limit - VM_FD_SLACK),
		    (unsigned long long)(h->cfg.max_vms + VM_FD_SLACK));
}

size_t vm_first_after(const struct hostd *h, const char *name)
{
	bool found;
	size_t i = vm_index(h, name, &found);

	return found ? i + 1 : i;
}

struct vm *vm_find(struct hostd *h, const char *name)
{
	bool found;
	size_t i;

	if (!name)
		return NULL;
	i = vm_index(h, name, &found);
	return found ? h->vms[i] : NULL;
}

static void vm_unregister(struct vm *vm)
{
	struct hostd *h = vm->h;
	bool found;
	size_t i = vm_index(h, vm->name, &found);

	if (!found || h->vms[i] != vm)
		return;
	memmove(&h->vms[i], &h->vms[i + 1],
		(h->nvms - i - 1) * sizeof(*h->vms));
	h->nvms--;
}

void vm_ref(struct vm *vm)
{
	vm->refs++;
}

void vm_unref(struct vm *vm)
{
	if (--vm->refs > 0)
		return;
	services_release(vm);
	free(vm->info);
	free(vm->summary);
	free(vm->power_off);
	free(vm);
}

static void vm_handle_closed(uv_handle_t *handle)
{
	vm_unref(handle->data);
}

void vm_close_handle(struct vm *vm, uv_handle_t *handle)
{
	if (uv_is_closing(handle))
		return;
	vm_ref(vm);
	handle->data = vm;
	uv_close(handle, vm_handle_closed);
}

static void vm_timer_closed(struct htimer *t)
{
	vm_unref(t->data);
}

void vm_close_timer(struct vm *vm, struct htimer *t)
{
	vm_ref(vm);
	t->data = vm;
	htimer_close(t, vm_timer_closed);
}

void vm_destroy(struct vm *vm, enum detach_reason why)
{
	if (vm->removed)
		return;
	vm->removed = true;
	vm_unregister(vm);
	ctl_ops_vm_removed(vm, why);
	services_detach(vm, why);
	requests_close(vm);
	conn_shutdown(vm);
	vm_close_handle(vm, (uv_handle_t *)&vm->conn.timer);
	vm_unref(vm);
}

/* What the core itself learns from a notice. */
static void vm_take_notice(struct vm *vm, const struct notice *n)
{
	switch (n->kind) {
	case NOTICE_STOPPING:
		vm->quiet = true;
		break;
	case NOTICE_STOP_OVER:
		vm->quiet = false;
		break;
	case NOTICE_STOPPED:
		vm->quiet = false;
		conn_forget_contact(vm);
		break;
	default:
		break;
	}
}

void vm_notify(struct vm *vm, struct notice *n)
{
	vm_take_notice(vm, n);
	services_notify(vm, n);
	if (n->kind == NOTICE_STOPPED)
		services_refresh(vm);
}

const char *vm_name_invalid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0)
		return "the VM name is empty";
	if (n > VM_NAME_MAX)
		return "the VM name is longer than 64 characters";
	if (name[0] == '.' || name[0] == '-')
		return "a VM name must not start with '.' or '-'";
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return "a VM name may only contain A-Z a-z 0-9 . _ -";
	}
	return NULL;
}

int vm_channel_parse(const char *uri, struct vmic_channel *ch, char *err,
		     size_t errsz)
{
	int r = vmic_channel_parse(uri, ch, err, errsz);

	if (r < 0)
		return r;
	if (!vmic_channel_is_host_side(ch)) {
		snprintf(err, errsz,
			 "'%.64s' is a channel for the guest agent; the host "
			 "connects with unix:PATH, vsock:CID[:PORT] or "
			 "hvsock:PATH[:PORT]",
			 uri);
		return -EINVAL;
	}
	return 0;
}

int vm_power_uri_check(const char *uri, char *err, size_t errsz)
{
	size_t n = strlen(uri);

	if (n > POWER_URI_MAX) {
		snprintf(err, errsz, "the power backend is %zu bytes long; at "
				     "most %d are allowed",
			 n, POWER_URI_MAX);
		return -EINVAL;
	}
	if (strncmp(uri, "qmp:", 4) == 0) {
		if (n == 4 || n - 4 > VMIC_PATH_MAX) {
			snprintf(err, errsz, "qmp: needs the path of QEMU's QMP "
					     "socket (1..%d bytes), such as "
					     "qmp:/run/vmic/web1.qmp",
				 VMIC_PATH_MAX);
			return -EINVAL;
		}
		return 0;
	}
	if (strncmp(uri, "exec:", 5) == 0) {
		if (n == 5) {
			snprintf(err, errsz, "exec: needs a command, such as "
					     "exec:virsh destroy web1");
			return -EINVAL;
		}
		for (size_t i = 5; i < n; i++)
			if ((unsigned char)uri[i] < 0x20) {
				snprintf(err, errsz, "the exec: command contains "
						     "a control character");
				return -EINVAL;
			}
		return 0;
	}
	snprintf(err, errsz, "'%.64s' is not a power backend; use qmp:PATH "
			     "(QEMU's QMP socket) or exec:COMMAND",
		 uri);
	return -EINVAL;
}
