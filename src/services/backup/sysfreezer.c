/* SPDX-License-Identifier: MIT */
/*
 * The real freezer (sysfreezer.h). Runs on a thread of libuv's pool: the
 * hooks are spawned with posix_spawn (no fork of a threaded process's
 * memory), their output read with poll() up to a deadline, and a hook
 * that outlives its timeout is killed with its whole process group.
 */
#include "services/backup/sysfreezer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static uint64_t sys_now_us(void *ud)
{
	struct timespec ts;

	(void)ud;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static bool hook_name_ok(const char *name)
{
	size_t n = strlen(name);

	return n && name[0] != '.' && name[n - 1] != '~' &&
	       n <= BK_HOOK_NAME_MAX;
}

int bk_hooks_list(const char *dir, struct bk_hooks *out, char *err,
		  size_t n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;
	int dfd;

	out->count = 0;
	if (!d) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, n, "cannot read the hooks directory %s: %s", dir,
			 strerror(errno));
		return -errno;
	}
	dfd = dirfd(d);
	while ((e = readdir(d))) {
		if (!hook_name_ok(e->d_name) ||
		    fstatat(dfd, e->d_name, &st, 0) < 0 ||
		    !S_ISREG(st.st_mode) || !(st.st_mode & 0111))
			continue;
		if (out->count >= BK_HOOKS_MAX) {
			closedir(d);
			snprintf(err, n, "more than %d hooks in %s",
				 BK_HOOKS_MAX, dir);
			return -E2BIG;
		}
		snprintf(out->name[out->count++], sizeof(out->name[0]), "%s",
			 e->d_name);
	}
	closedir(d);
	qsort(out->name, out->count, sizeof(out->name[0]), name_cmp);
	return 0;
}

/* The hook's output until EOF or the deadline; false on timeout. */
static bool read_output(int fd, uint64_t deadline_us, char *out, size_t n)
{
	size_t len = strlen(out);
	char buf[512];

	for (;;) {
		uint64_t now = sys_now_us(NULL);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (now >= deadline_us)
			return false;
		if (poll(&p, 1, (int)((deadline_us - now) / 1000) + 1) < 0) {
			if (errno == EINTR)
				continue;
			return true;
		}
		if (!p.revents)
			continue;
		r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return true;
		for (ssize_t i = 0; i < r && len + 1 < n; i++)
			out[len++] = buf[i] == '\n' ? ' ' : buf[i];
		out[len] = '\0';
	}
}

static void trim(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == ' ' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

/* Wait for pid; give up on it after its group was killed. */
static int wait_status(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int spawn_hook(const char *path, const char *arg, int wfd,
		      pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	char *argv[] = { (char *)path, (char *)arg, NULL };
	int r;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, wfd, 1);
	posix_spawn_file_actions_adddup2(&fa, wfd, 2);
	posix_spawnattr_init(&at);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
	r = posix_spawn(pid, path, &fa, &at, argv, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return -r;
}

static int sys_hook(void *ud, const char *name, const char *arg, char *out,
		    size_t n)
{
	const struct bk_sys *sys = ud;
	char path[VMIC_BK_PATH_MAX + BK_HOOK_NAME_MAX + 2];
	int fds[2], status, r;
	pid_t pid;
	bool done;

	out[0] = '\0';
	snprintf(path, sizeof(path), "%s/%s", sys->hooks_dir, name);
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	r = spawn_hook(path, arg, fds[1], &pid);
	close(fds[1]);
	if (r < 0) {
		close(fds[0]);
		snprintf(out, n, "cannot start: %s", strerror(-r));
		return r;
	}
	done = read_output(fds[0],
			   sys_now_us(NULL) +
				   (uint64_t)sys->hook_timeout_ms * 1000u,
			   out, n);
	close(fds[0]);
	if (!done)
		kill(-pid, SIGKILL);
	if (wait_status(pid, &status) < 0)
		return -ECHILD;
	trim(out);
	if (!done) {
		snprintf(out, n, "timed out after %u ms (killed)",
			 sys->hook_timeout_ms);
		return -ETIMEDOUT;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (!out[0] || strlen(out) + 40 < n) {
		char what[40];

		if (WIFSIGNALED(status))
			snprintf(what, sizeof(what), "killed by signal %d",
				 WTERMSIG(status));
		else
			snprintf(what, sizeof(what), "exit status %d",
				 WEXITSTATUS(status));
		bk_output_add(out, n, "%s", what);
	}
	return -EIO;
}

static int sys_sync(void *ud, const struct vmic_bk_mounts *m)
{
	int first = 0;

	(void)ud;
	for (unsigned i = 0; i < m->count; i++) {
		int fd = open(m->path[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0 || syncfs(fd) < 0) {
			if (!first)
				first = -errno;
		}
		if (fd >= 0)
			close(fd);
	}
	return first;
}

static int mount_ioctl(const char *path, unsigned long req)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, req, 0) < 0)
		r = -errno;
	close(fd);
	return r;
}

static int sys_freeze(void *ud, const char *path)
{
	(void)ud;
	return mount_ioctl(path, FIFREEZE);
}

static int sys_thaw(void *ud, const char *path)
{
	(void)ud;
	return mount_ioctl(path, FITHAW);
}

const struct bk_freezer_ops bk_sys_ops = {
	.hook = sys_hook,
	.sync = sys_sync,
	.freeze = sys_freeze,
	.thaw = sys_thaw,
	.now_us = sys_now_us,
};
