/* SPDX-License-Identifier: MIT */
/*
 * What services read and set of the core's structs (service-api.h): the
 * accessors that let struct vm and struct hostd stay incomplete types
 * for them. Each is a plain read or write; the rules are in the header.
 */
#include <stdio.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "hostd.h"

const char *vm_name(const struct vm *vm)
{
	return vm->name;
}

void vm_uuid(const struct vm *vm, char *buf)
{
	struct {
		char tag[8];
		int64_t created_us;
		char name[VM_NAME_MAX + 1];
	} seed;
	XXH128_hash_t h;
	uint8_t b[16];

	memset(&seed, 0, sizeof(seed));
	memcpy(seed.tag, "vmic-vm", 7);
	seed.created_us = vm->created_us;
	snprintf(seed.name, sizeof(seed.name), "%s", vm->name);
	h = XXH3_128bits(&seed, sizeof(seed));
	for (int i = 0; i < 8; i++) {
		b[i] = (uint8_t)(h.high64 >> (56 - 8 * i));
		b[8 + i] = (uint8_t)(h.low64 >> (56 - 8 * i));
	}
	/* RFC 9562 version 8 (custom), variant 10. */
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x80);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(buf, VM_UUID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
}

int64_t vm_created_us(const struct vm *vm)
{
	return vm->created_us;
}

const char *vm_power_off(const struct vm *vm)
{
	return vm->power_off;
}

bool vm_removed(const struct vm *vm)
{
	return vm->removed;
}

bool vm_quiet(const struct vm *vm)
{
	return vm->quiet;
}

struct hostd *vm_hostd(const struct vm *vm)
{
	return vm->h;
}

void vm_touch(struct vm *vm)
{
	vm->gen++;
}

void *vm_state(const struct vm *vm, uint8_t service)
{
	return service < VMIC_SVC_COUNT ? vm->svc[service].state : NULL;
}

void vm_set_state(struct vm *vm, uint8_t service, void *state)
{
	if (service < VMIC_SVC_COUNT)
		vm->svc[service].state = state;
}

const void *vm_settings(const struct vm *vm, uint8_t service)
{
	return service < VMIC_SVC_COUNT ? vm->svc[service].settings : NULL;
}

bool vm_service_enabled(const struct vm *vm, uint8_t service)
{
	return service < 32 && (vm->enabled_mask & (1u << service));
}

uv_loop_t *hostd_loop(const struct hostd *h)
{
	return h->loop;
}

bool hostd_stopping(const struct hostd *h)
{
	return h->stopping;
}

void *hostd_state(const struct hostd *h, uint8_t service)
{
	return service < VMIC_SVC_COUNT ? h->svc_state[service] : NULL;
}

void hostd_set_state(struct hostd *h, uint8_t service, void *state)
{
	if (service < VMIC_SVC_COUNT)
		h->svc_state[service] = state;
}

const void *svc_daemon_settings(const struct hostd *h, uint8_t service)
{
	return service < VMIC_SVC_COUNT ? h->cfg.svc_daemon[service] : NULL;
}

size_t hostd_vm_count(const struct hostd *h)
{
	return h->nvms;
}

struct vm *hostd_vm(const struct hostd *h, size_t i)
{
	return i < h->nvms ? h->vms[i] : NULL;
}

bool conn_up(const struct vm *vm)
{
	return vm->conn.state == CONN_CONNECTED;
}

const char *vm_connection_state(const struct vm *vm)
{
	return conn_state_name(vm->conn.state);
}

const struct vmic_session *vm_session(const struct vm *vm)
{
	return &vm->conn.session;
}

void vm_bad_frame(struct vm *vm)
{
	vm->conn.bad_frames++;
}

struct vmic_link *vm_link(const struct vm *vm)
{
	struct vmic_link *l = vm->conn.link;

	return l && !l->closing ? l : NULL;
}
