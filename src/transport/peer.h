/* SPDX-License-Identifier: MIT */
/*
 * Which peers a guest-side vsock listener admits: a list of vsock CIDs.
 * Anyone on the hypervisor's side can dial a guest's vsock port, and on
 * nested or multi-tenant hosts "anyone" includes other guests (CID 3 and
 * up) and the guest itself (CID 1, loopback); the agent serves only its
 * host, VMADDR_CID_HOST (2), unless configured otherwise. unix-listen and
 * virtio-serial have no CIDs: the socket's mode and the device decide.
 */
#ifndef VMIC_PEER_H
#define VMIC_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMIC_PEER_CIDS_MAX 16
/* VMADDR_CID_HOST: the hypervisor's host side on every vsock transport
 * (vhost-vsock, Firecracker and Cloud Hypervisor's hybrid vsock). */
#define VMIC_CID_HOST 2
/* VMADDR_CID_LOCAL: this guest's own loopback (vsock_loopback). */
#define VMIC_CID_LOCAL 1

struct vmic_peer_cids {
	uint32_t cid[VMIC_PEER_CIDS_MAX];
	unsigned count; /* 0 is read as "the host only" */
};

/*
 * Parse "2" or "1, 2" (commas and/or blanks) into a list. Returns 0, or
 * -EINVAL with a sentence in err saying what is wrong and what to write.
 */
int vmic_peer_cids_parse(const char *s, struct vmic_peer_cids *out, char *err,
			 size_t errsz);

/* The list as the config file spells it ("1, 2"). */
void vmic_peer_cids_format(const struct vmic_peer_cids *p, char *buf, size_t n);

/* Is a connection from cid admitted? An empty list admits the host only. */
bool vmic_peer_cids_allow(const struct vmic_peer_cids *p, uint32_t cid);

#endif
