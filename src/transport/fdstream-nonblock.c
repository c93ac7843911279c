/* SPDX-License-Identifier: MIT */
/*
 * O_NONBLOCK on the descriptions the helper polls.
 *
 * uv_poll_init sets O_NONBLOCK, and the flag belongs to the open file
 * description, which a descriptor received over a unix socket shares
 * with its sender (and which a pty master pumped and sunk at once shares
 * between two helpers). A helper that found the flag clear clears it
 * again when it ends, unless another helper of the process still polls
 * the same description: then the duty passes to that one, so the last
 * to end restores it and none is left reading a blocking descriptor on
 * the loop.
 *
 * "The same description" is what kcmp(KCMP_FILE) says. Where the kernel
 * has no kcmp, the same file (device and inode) counts as the same: that
 * may leave another description of that file non-blocking, but never
 * blocks the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/kcmp.h>

#include "fdstream-internal.h"

/* Helpers that poll a description other than a socket's; any loop. */
static pthread_mutex_t nb_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vmic_fdstream *nb_list;

static bool same_description(int a, int b)
{
	pid_t self = getpid();
	struct stat sa, sb;
	long r = syscall(SYS_kcmp, self, self, KCMP_FILE, a, b);

	if (r >= 0)
		return r == 0;
	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino &&
	       sa.st_rdev == sb.st_rdev;
}

void fds_nonblock_track(struct vmic_fdstream *f, int flags_before)
{
	f->nonblock_owed = !(flags_before & O_NONBLOCK);
	pthread_mutex_lock(&nb_lock);
	f->nb_next = nb_list;
	nb_list = f;
	f->registered = true;
	pthread_mutex_unlock(&nb_lock);
}

void fds_nonblock_release(struct vmic_fdstream *f)
{
	struct vmic_fdstream **pp, *o;
	bool owed;
	int fl;

	if (!f->registered)
		return;
	pthread_mutex_lock(&nb_lock);
	owed = f->nonblock_owed;
	for (pp = &nb_list; *pp != f; pp = &(*pp)->nb_next)
		;
	*pp = f->nb_next;
	f->registered = false;
	for (o = nb_list; owed && o; o = o->nb_next) {
		if (same_description(f->fd, o->fd)) {
			o->nonblock_owed = true;
			owed = false;
		}
	}
	pthread_mutex_unlock(&nb_lock);
	f->nonblock_owed = false;
	fl = owed ? fcntl(f->fd, F_GETFL) : -1;
	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(f->fd, F_SETFL, fl & ~O_NONBLOCK);
}
