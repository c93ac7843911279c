/* SPDX-License-Identifier: MIT */
#include "peer.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define FAIL(...)                                 \
	do {                                      \
		snprintf(err, errsz, __VA_ARGS__); \
		return -EINVAL;                   \
	} while (0)

static bool is_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t';
}

/* One CID from s[0..n): decimal, below VMADDR_CID_ANY (0xFFFFFFFF). */
static int parse_cid(const char *s, size_t n, uint32_t *out, char *err,
		     size_t errsz)
{
	uint64_t v = 0;
	int len = (int)(n > 20 ? 20 : n);

	if (n > 10)
		FAIL("'%.*s' is not a CID: CIDs are numbers below 4294967295, "
		     "such as 2 (the host)",
		     len, s);
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			FAIL("'%.*s' is not a CID: write numbers, such as 2 "
			     "(the host) or 1 (this guest's own loopback)",
			     len, s);
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v >= UINT32_MAX)
		FAIL("'%.*s' is not a peer's CID (4294967295 means any CID); "
		     "list the CIDs that may connect, such as 2 (the host)",
		     len, s);
	*out = (uint32_t)v;
	return 0;
}

static bool listed(const struct vmic_peer_cids *p, uint32_t cid)
{
	for (unsigned i = 0; i < p->count; i++)
		if (p->cid[i] == cid)
			return true;
	return false;
}

int vmic_peer_cids_parse(const char *s, struct vmic_peer_cids *out, char *err,
			 size_t errsz)
{
	struct vmic_peer_cids p = { .count = 0 };

	while (*s) {
		size_t n = 0;
		uint32_t cid;
		int r;

		while (is_sep(*s))
			s++;
		while (s[n] && !is_sep(s[n]))
			n++;
		if (n == 0)
			break;
		r = parse_cid(s, n, &cid, err, errsz);
		if (r < 0)
			return r;
		s += n;
		if (listed(&p, cid))
			continue; /* listed twice: once is enough */
		if (p.count == VMIC_PEER_CIDS_MAX)
			FAIL("more than %d CIDs; list only the hosts that "
			     "reach this guest",
			     VMIC_PEER_CIDS_MAX);
		p.cid[p.count++] = cid;
	}
	if (p.count == 0)
		FAIL("no CID given, so no host could connect; write 2 for the "
		     "host");
	*out = p;
	return 0;
}

void vmic_peer_cids_format(const struct vmic_peer_cids *p, char *buf, size_t n)
{
	size_t off = 0;

	if (n == 0)
		return;
	buf[0] = '\0';
	if (p->count == 0) {
		snprintf(buf, n, "%u", VMIC_CID_HOST);
		return;
	}
	for (unsigned i = 0; i < p->count && off < n; i++)
		off += (size_t)snprintf(buf + off, n - off, "%s%u",
					i ? ", " : "", p->cid[i]);
}

bool vmic_peer_cids_allow(const struct vmic_peer_cids *p, uint32_t cid)
{
	return p->count ? listed(p, cid) : cid == VMIC_CID_HOST;
}
