/* SPDX-License-Identifier: MIT */
/*
 * Who may name what. vmic-hostd runs as root, so a setting that makes it
 * open a path (a unix: or hvsock: channel, a qmp: socket) or run a command
 * (an exec: power backend) gives that power to whoever sets it. Root and
 * the daemon's own user may set anything; members of the socket group only
 * what hostd.conf's [access] patterns allow (glob patterns, separated by
 * commas; a star stops at a slash and at a leading dot, so the pattern
 * unix:/run/vmic/STAR reaches neither unix:/run/vmic/../x nor a
 * subdirectory). An exec: pattern is no glob, since a star would let a
 * shell command through: it matches exactly, with {vm} standing for the
 * VM's name (which the name rules keep to A-Z a-z 0-9 . _ -).
 *
 * What a member may make the daemon keep is bounded too: VMs by [access]
 * group-max-vms here; the services' settings that bound a VM's cost
 * (settings.c) no further than hostd.conf's values.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "hostd.h"

#define PATTERN_MAX 512

/* pat with {vm} replaced by vm equals uri. */
static bool exec_matches(const char *pat, const char *vm, const char *uri)
{
	const char *slot = strstr(pat, "{vm}");
	char want[PATTERN_MAX + VM_NAME_MAX];

	if (!slot)
		return strcmp(pat, uri) == 0;
	snprintf(want, sizeof(want), "%.*s%s%s", (int)(slot - pat), pat,
		 vm ? vm : "", slot + 4);
	return vm && strcmp(want, uri) == 0;
}

bool access_pattern_match(const char *patterns, const char *vm,
			  const char *uri)
{
	const char *p = patterns;

	while (*p) {
		char pat[PATTERN_MAX];
		size_t n;

		p += strspn(p, ", \t");
		n = strcspn(p, ",");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 0)
			break;
		if (n < sizeof(pat)) {
			memcpy(pat, p, n);
			pat[n] = '\0';
			if (strncmp(pat, "exec:", 5) == 0
				    ? exec_matches(pat, vm, uri)
				    : fnmatch(pat, uri,
					      FNM_PATHNAME | FNM_PERIOD) == 0)
				return true;
		}
		p += n;
		p += strcspn(p, ",");
	}
	return false;
}

bool access_check_channel(struct ctl_request *rq, const char *uri)
{
	const struct hostd_config *cfg = &ctl_request_hostd(rq)->cfg;

	if (ctl_request_privileged(rq) ||
	    access_pattern_match(cfg->group_channels, NULL, uri))
		return true;
	ctl_reply_error(rq, "forbidden",
			"channel %s: members of the socket group may only use "
			"channels that [access] group-channels of "
			"vmic-hostd.conf allows (now: %s); ask root to add the "
			"VM, or to allow the path",
			uri, cfg->group_channels[0] ? cfg->group_channels
						    : "none");
	return false;
}

bool access_check_power(struct ctl_request *rq, const char *vm,
			const char *uri)
{
	const struct hostd_config *cfg = &ctl_request_hostd(rq)->cfg;

	if (!uri || !*uri || ctl_request_privileged(rq) ||
	    access_pattern_match(cfg->group_power_off, vm, uri))
		return true;
	ctl_reply_error(rq, "forbidden",
			"power_off %.200s: a power backend runs as root (exec: "
			"runs a command, qmp: opens a socket), so members of the "
			"socket group may only set those [access] "
			"group-power-off of vmic-hostd.conf allows (now: %s)",
			uri, cfg->group_power_off[0] ? cfg->group_power_off
						     : "none");
	return false;
}

bool access_check_vm_count(struct ctl_request *rq)
{
	const struct hostd *h = ctl_request_hostd(rq);

	if (ctl_request_privileged(rq) || h->nvms < h->cfg.group_max_vms)
		return true;
	ctl_reply_error(rq, "limit",
			"%zu VMs are registered; members of the socket group "
			"may add VMs only while fewer than [access] "
			"group-max-vms (%u) are: remove one, or ask root to add "
			"the VM or to raise group-max-vms in vmic-hostd.conf",
			h->nvms, h->cfg.group_max_vms);
	return false;
}
