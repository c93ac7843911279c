/* SPDX-License-Identifier: MIT */
/* Who may open a session: root and one group (issue 16, "Security"),
 * separate from the control socket's group. */
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include "services/session/host.h"

#define GROUPS_MAX 1024

static bool user_in_group(const struct passwd *pw, gid_t want)
{
	gid_t groups[GROUPS_MAX];
	int n = GROUPS_MAX;

	if (pw->pw_gid == want)
		return true;
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
		n = GROUPS_MAX;
	for (int i = 0; i < n; i++)
		if (groups[i] == want)
			return true;
	return false;
}

bool ss_host_uid_allowed(uid_t uid, bool privileged, const char *group)
{
	struct passwd pw, *pwr = NULL;
	struct group gr, *grr = NULL;
	char pwbuf[4096], grbuf[16384];

	if (uid == 0 || privileged)
		return true;
	if (!group[0])
		return false;
	if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &pwr) != 0 || !pwr)
		return false;
	if (getgrnam_r(group, &gr, grbuf, sizeof(grbuf), &grr) != 0 || !grr)
		return false;
	return user_in_group(&pw, gr.gr_gid);
}
