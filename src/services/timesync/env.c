/* SPDX-License-Identifier: MIT */
#include "services/timesync/env.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/safe-file.h"
#include "services/timesync/timesync.h"

/* A pid file of more than this is no pid file. */
#define PID_FILE_MAX 64
/* A sysfs attribute says it is a page long. */
#define SYSFS_ATTR_MAX 4096

/* The files read here are other programs' (chronyd's pid file, written
 * by the chrony user, and /proc and /sys), and they are read on the
 * agent's loop: vmic_file_read_small, so that a FIFO planted at the pid
 * file's path cannot block it. */

/* The PID in chronyd's pid file when that process runs and is chronyd;
 * 0 when not, -errno when the pid file is there but refused (a FIFO, a
 * symbolic link, a huge file). */
static long chrony_pid(const char *pid_file)
{
	char buf[32], path[64], *end;
	ssize_t n;
	long pid;

	if (!pid_file[0])
		return 0;
	n = vmic_file_read_small(pid_file, buf, sizeof(buf), PID_FILE_MAX);
	if (n == -ELOOP || n == -VMIC_ENOTREG || n == -EFBIG)
		return (long)n;
	if (n <= 0)
		return 0;
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno || end == buf || pid <= 0 || pid > INT_MAX ||
	    (*end && *end != '\n'))
		return 0;
	/* A stale file may name a PID now used by something else. */
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	if (vmic_file_read_small(path, buf, sizeof(buf), SYSFS_ATTR_MAX) <= 0 ||
	    strcmp(buf, "chronyd\n") != 0)
		return 0;
	return pid;
}

/* Does process pid hold `target` (a resolved path) open? */
static bool holds_open(long pid, const char *target)
{
	char dir[64], link[320], path[TS_PATH_MAX];
	struct dirent *de;
	bool found = false;
	DIR *d;
	ssize_t n;

	snprintf(dir, sizeof(dir), "/proc/%ld/fd", pid);
	d = opendir(dir);
	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", dir, de->d_name);
		n = readlink(link, path, sizeof(path) - 1);
		if (n <= 0)
			continue;
		path[n] = '\0';
		found = strcmp(path, target) == 0;
	}
	closedir(d);
	return found;
}

/* The hypervisor's PTP clock among /sys/class/ptp/ptpN: /dev/ptpN. */
static bool find_ptp(char *out, size_t n)
{
	char path[300], name[64];
	struct dirent *de;
	bool found = false;
	DIR *d = opendir("/sys/class/ptp");

	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		if (strncmp(de->d_name, "ptp", 3) != 0)
			continue;
		snprintf(path, sizeof(path), "/sys/class/ptp/%s/clock_name",
			 de->d_name);
		if (vmic_file_read_small(path, name, sizeof(name), SYSFS_ATTR_MAX) <= 0)
			continue;
		if (strncmp(name, "KVM virtual PTP", 15) == 0 ||
		    strncmp(name, "hyperv", 6) == 0) {
			snprintf(out, n, "/dev/%.32s", de->d_name);
			found = access(out, R_OK) == 0;
		}
	}
	closedir(d);
	return found;
}

void ts_env_probe(const struct ts_env_paths *p, struct ts_env *env)
{
	char real[PATH_MAX];
	struct stat sb;
	long pid;

	memset(env, 0, sizeof(*env));
	if (strcmp(p->ptp_device, "auto") == 0)
		env->ptp_present = find_ptp(env->ptp_path,
					    sizeof(env->ptp_path));
	else if (strcmp(p->ptp_device, "none") != 0 &&
		 access(p->ptp_device, R_OK) == 0 &&
		 strlen(p->ptp_device) < sizeof(env->ptp_path)) {
		snprintf(env->ptp_path, sizeof(env->ptp_path), "%s",
			 p->ptp_device);
		env->ptp_present = true;
	}
	pid = chrony_pid(p->chrony_pid_file);
	env->chrony_running = pid > 0;
	env->pid_file_err = pid < 0 ? (int)pid : 0;
	if (pid <= 0)
		return;
	env->chrony_sock = p->chrony_socket[0] &&
			   stat(p->chrony_socket, &sb) == 0 &&
			   S_ISSOCK(sb.st_mode);
	if (env->ptp_present && realpath(env->ptp_path, real))
		env->chrony_uses_ptp = holds_open(pid, real);
}

uint8_t ts_mode_choose(const struct ts_env *env, uint8_t policy,
		       const struct ts_env_paths *p, char *detail, size_t n)
{
	detail[0] = '\0';
	if (policy == VMIC_TS_POLICY_REPORT)
		return VMIC_TS_MODE_REPORT;
	if (env->chrony_running) {
		/* chronyd owns the clock: feed it, or just measure. */
		if (env->chrony_uses_ptp) {
			snprintf(detail, n, "chronyd uses %s as a PHC "
					    "refclock; the agent only reports",
				 env->ptp_path);
			return VMIC_TS_MODE_CHRONY_PHC;
		}
		if (env->chrony_sock && (policy == VMIC_TS_POLICY_AUTO ||
					 policy == VMIC_TS_POLICY_CHRONY))
			return VMIC_TS_MODE_CHRONY_SOCK;
		if (env->chrony_sock)
			snprintf(detail, n, "chronyd runs: the agent leaves "
					    "the clock to it (mode auto or "
					    "chrony feeds it)");
		else
			snprintf(detail, n, "chronyd runs without `refclock "
					    "SOCK %s`: measuring only",
				 p->chrony_socket);
		return VMIC_TS_MODE_REPORT;
	}
	if (policy == VMIC_TS_POLICY_CHRONY) {
		snprintf(detail, n, "chronyd is not running (pid file %s): "
				    "measuring only",
			 p->chrony_pid_file);
		return VMIC_TS_MODE_REPORT;
	}
	if (env->ptp_present && policy != VMIC_TS_POLICY_CHANNEL)
		return VMIC_TS_MODE_PTP;
	if (policy == VMIC_TS_POLICY_PTP)
		snprintf(detail, n, "no PTP device (ptp-device = %s): using "
				    "the channel",
			 p->ptp_device);
	return VMIC_TS_MODE_CHANNEL;
}
