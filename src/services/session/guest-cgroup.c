/* SPDX-License-Identifier: MIT */
/*
 * Direct Session, guest half: a cgroup (v2) per session, below the
 * agent's own, so that the end of a session reaches processes that left
 * its process group with setsid(). No controller is enabled: the cgroup
 * only groups, so the "no internal processes" rule does not apply and the
 * agent stays where it is. Where there is no cgroup v2 hierarchy, the
 * agent runs in the root cgroup, or its cgroup is not writable, the caller falls back to the process
 * group alone (and says so once).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "services/session/guest.h"

#define CGROUP2_MAGIC 0x63677270
#define CG_TRIES 64

/* The cgroup v2 mount: /sys/fs/cgroup (unified), or the hybrid layout's
 * /sys/fs/cgroup/unified. */
static const char *cg_mount(void)
{
	static const char *const mounts[] = { "/sys/fs/cgroup",
					      "/sys/fs/cgroup/unified" };
	struct statfs st;

	for (size_t i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++)
		if (statfs(mounts[i], &st) == 0 &&
		    (unsigned long)st.f_type == CGROUP2_MAGIC)
			return mounts[i];
	return NULL;
}

/* The agent's own cgroup: the "0::PATH" line of /proc/self/cgroup. */
static int cg_own(char *path, size_t n)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[1024];
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3) != 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		r = (size_t)snprintf(path, n, "%s", line + 3) < n
			    ? 0 : -ENAMETOOLONG;
		break;
	}
	fclose(f);
	return r;
}

int ss_cg_make(unsigned *counter, char *dir, size_t n, char *why,
	       size_t wn)
{
	const char *mnt = cg_mount();
	char own[512], base[1024];
	int r;

	dir[0] = '\0';
	if (!mnt) {
		snprintf(why, wn, "no cgroup v2 hierarchy is mounted");
		return -ENOENT;
	}
	r = cg_own(own, sizeof(own));
	if (r < 0) {
		snprintf(why, wn, "the agent's cgroup v2 path is not in "
			 "/proc/self/cgroup");
		return r;
	}
	/* The root cgroup is the whole machine's, not a delegated one: an
	 * agent there (no systemd) leaves it alone. */
	if (strcmp(own, "/") == 0) {
		snprintf(why, wn, "the agent runs in the root cgroup, not in "
			 "a cgroup of its own (a systemd service's)");
		return -EPERM;
	}
	if ((size_t)snprintf(base, sizeof(base), "%s%s", mnt, own) >=
	    sizeof(base)) {
		snprintf(why, wn, "the agent's cgroup path is too long");
		return -ENAMETOOLONG;
	}
	if (access(base, W_OK) < 0) {
		r = -errno;
		snprintf(why, wn, "the agent's cgroup %s is not writable "
			 "(not delegated): %s", base, strerror(errno));
		return r;
	}
	for (int i = 0; i < CG_TRIES; i++) {
		if ((size_t)snprintf(dir, n, "%s/vmic-session-%u", base,
				     ++*counter) >= n) {
			snprintf(why, wn, "the cgroup path is too long");
			dir[0] = '\0';
			return -ENAMETOOLONG;
		}
		if (mkdir(dir, 0755) == 0)
			return 0;
		if (errno != EEXIST)
			break;
	}
	r = -errno;
	snprintf(why, wn, "cannot make %s: %s", dir, strerror(errno));
	dir[0] = '\0';
	return r;
}

/* Without cgroup.kill (kernels before 5.14): SIGKILL each process
 * listed; one that forks meanwhile is caught by the next call. */
static void kill_listed(const char *dir)
{
	char path[PATH_MAX];
	FILE *f;
	long pid;

	if ((size_t)snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >=
	    sizeof(path))
		return;
	f = fopen(path, "re");
	if (!f)
		return;
	while (fscanf(f, "%ld", &pid) == 1)
		if (pid > 1)
			kill((pid_t)pid, SIGKILL);
	fclose(f);
}

void ss_cg_kill(const char *dir)
{
	char path[PATH_MAX];
	int fd;

	if (!dir || !dir[0])
		return;
	if ((size_t)snprintf(path, sizeof(path), "%s/cgroup.kill", dir) >=
	    sizeof(path))
		return;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t w = write(fd, "1", 1);

		close(fd);
		if (w == 1)
			return;
	}
	kill_listed(dir);
}

int ss_cg_remove(const char *dir)
{
	if (!dir || !dir[0])
		return 0;
	if (rmdir(dir) == 0 || errno == ENOENT)
		return 0;
	return -errno;
}
