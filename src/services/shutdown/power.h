/* SPDX-License-Identifier: MIT */
/*
 * Power backends (power.c), used by the shutdown service to turn a VM off
 * without its guest agent: qmp:PATH or exec:COMMAND, the VM's power_off.
 */
#ifndef VMIC_SERVICES_SHUTDOWN_POWER_H
#define VMIC_SERVICES_SHUTDOWN_POWER_H

#include "host/service-api.h"

struct power_op;

/* status 0 when the VM was powered off; detail says what happened. */
typedef void (*power_cb)(struct vm *vm, int status, const char *detail);
/* Power the VM off through vm_power_off(vm); cb runs once, later. */
int power_off(struct vm *vm, unsigned timeout_ms, power_cb cb,
	      struct power_op **out);
/* Abandon an operation: no callback, resources released. */
void power_cancel(struct power_op *op);

#endif
