/* SPDX-License-Identifier: MIT */
/*
 * libvirt as a source of VMs (libvirt.c, libvirt-worker.c): hostd lists
 * the domains of each [libvirt] uri, registers those with a vmic channel
 * under their names, and follows their lifecycle events. Such a VM's
 * power backend is "libvirt:UUID:URI", which also marks where it came
 * from (no schema change: the VM survives a restart as stored, and the
 * next listing confirms or removes it).
 */
#ifndef VMIC_HOST_LIBVIRT_H
#define VMIC_HOST_LIBVIRT_H

#include <jansson.h>
#include <stdbool.h>

struct ctl_request;
struct hostd;
struct vm;

#define LIBVIRT_POWER_PREFIX "libvirt:"

/*
 * Start following every URI of cfg.libvirt_uris (none: nothing to do).
 * -ENOTSUP, logged with how to get it, when this build has no libvirt;
 * -errno when the worker cannot start.
 */
int libvirt_start(struct hostd *h);
/* Stop the worker, close the connections (at exit; safe when never
 * started). */
void libvirt_stop(struct hostd *h);
/* The libvirt URI a VM came from, or NULL for one registered by hand. */
const char *libvirt_vm_uri(const struct vm *vm);
/*
 * The `libvirt-setup` command: {"domain", "path"?, "uri"?, "apply"?}.
 * Replies with the <channel> XML that gives the domain vmic's channel
 * (a unix socket at path, /run/vmic/vms/DOMAIN.sock unless given); with
 * apply, after adding it to the domain's persistent definition through
 * libvirt (the URI given, else the first followed), off the loop.
 */
void libvirt_cmd_setup(struct ctl_request *rq, struct vm *vm, json_t *args);
/* The `libvirt` member of `stats`: each URI's state, error and whether a
 * call hangs. Nothing when not following libvirt. */
void libvirt_stats_json(struct hostd *h, json_t *stats);

#endif
