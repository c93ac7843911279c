/* SPDX-License-Identifier: MIT */
/*
 * vmic_channel_parse on arbitrary text (a NUL-terminated copy of the
 * input). An accepted URI formats to a canonical form that parses back
 * to the same channel and formats the same again; a refused one comes
 * with a message. The same text also goes through the [agent]
 * allowed-cids parser, with the same round trip.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#include "transport/channel.h"
#include "transport/peer.h"

static void check_cids(const char *text)
{
	struct vmic_peer_cids p, again;
	char err[256] = "", out[VMIC_PEER_CIDS_MAX * 12];
	int r = vmic_peer_cids_parse(text, &p, err, sizeof(err));

	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL);
		FUZZ_CHECK(strlen(err) > 10);
		return;
	}
	FUZZ_CHECK(p.count >= 1 && p.count <= VMIC_PEER_CIDS_MAX);
	for (unsigned i = 0; i < p.count; i++) {
		FUZZ_CHECK(p.cid[i] != 0xFFFFFFFFu);
		FUZZ_CHECK(vmic_peer_cids_allow(&p, p.cid[i]));
	}
	vmic_peer_cids_format(&p, out, sizeof(out));
	if (vmic_peer_cids_parse(out, &again, err, sizeof(err)) != 0)
		fuzz_fail(out, __FILE__, __LINE__);
	FUZZ_CHECK(again.count == p.count);
	FUZZ_CHECK(memcmp(again.cid, p.cid, p.count * sizeof(p.cid[0])) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmic_channel c, again;
	char err[256], out[512], out2[512];
	char *uri = malloc(size + 1);
	int r;

	if (!uri)
		return 0;
	memcpy(uri, data, size);
	uri[size] = '\0';
	check_cids(uri);
	err[0] = '\0';
	r = vmic_channel_parse(uri, &c, err, sizeof(err));
	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL);
		FUZZ_CHECK(strlen(err) > 10);
		free(uri);
		return 0;
	}
	FUZZ_CHECK(c.kind >= VMIC_CH_UNIX && c.kind <= VMIC_CH_AUTO);
	FUZZ_CHECK(strlen(c.path) <= VMIC_PATH_MAX);
	switch (c.kind) {
	case VMIC_CH_UNIX:
	case VMIC_CH_HVSOCK:
	case VMIC_CH_UNIX_LISTEN:
	case VMIC_CH_VIRTIO_SERIAL:
		FUZZ_CHECK(c.path[0] != '\0');
		break;
	case VMIC_CH_VSOCK:
		FUZZ_CHECK(c.cid > 2 && c.cid != 0xFFFFFFFFu);
		break;
	default:
		break;
	}
	if (c.kind == VMIC_CH_VSOCK || c.kind == VMIC_CH_HVSOCK ||
	    c.kind == VMIC_CH_VSOCK_LISTEN)
		FUZZ_CHECK(c.port != 0 && c.port != 0xFFFFFFFFu);
	FUZZ_CHECK(vmic_channel_is_host_side(&c) ==
		   (c.kind == VMIC_CH_UNIX || c.kind == VMIC_CH_VSOCK ||
		    c.kind == VMIC_CH_HVSOCK));

	vmic_channel_format(&c, out, sizeof(out));
	r = vmic_channel_parse(out, &again, err, sizeof(err));
	if (r != 0)
		fuzz_fail(out, __FILE__, __LINE__);
	FUZZ_CHECK(again.kind == c.kind);
	FUZZ_CHECK(strcmp(again.path, c.path) == 0);
	FUZZ_CHECK(again.cid == c.cid);
	FUZZ_CHECK(again.port == c.port);
	vmic_channel_format(&again, out2, sizeof(out2));
	FUZZ_CHECK(strcmp(out, out2) == 0);
	free(uri);
	return 0;
}
