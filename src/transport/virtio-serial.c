/* SPDX-License-Identifier: MIT */
/*
 * virtio-serial: (guest). The port is a character device that one process
 * may have open at a time; QEMU keeps what either side wrote while the
 * other was away. While no host is attached to the port's host side, a
 * read returns 0 and poll() reports POLLHUP, so polling it would spin and
 * reopening it on a timer would wake the guest for nothing.
 *
 * Instead the listener keeps the port open with O_ASYNC and itself as the
 * owner: virtio_console raises SIGIO when the host side opens or closes
 * the port (and when data arrives). The stream handed to the caller is a
 * dup of that descriptor, so the port stays open when the stream ends.
 * With the host away, the agent sleeps until SIGIO; O_ASYNC is off while
 * a stream is out, so a busy session costs no signals.
 *
 * A port that does not exist (yet) is looked for again with growing
 * pauses, 1 s doubling to a minute: it may be hot-plugged, and its name
 * arrives from the host a moment after the device node, so an inotify
 * watch on /dev alone would miss it.
 *
 * Without udev there is no /dev/virtio-ports/NAME link; the name is then
 * found in /sys/class/virtio-ports/vportNpM/name and the device is
 * /dev/vportNpM.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "transport-internal.h"

#define FIND_RETRY_MIN_MS 1000
#define FIND_RETRY_MAX_MS 60000
/* The stream ended although the host is still attached (the agent closed
 * it itself): open it again after this pause, never in a tight loop. */
#define REHAND_DELAY_MS 1000
#define SYSFS_PORTS "/sys/class/virtio-ports"

/* Read the port name from sysfs into buf (trailing newline removed). */
static int read_port_name(const char *vport, char *buf, size_t n)
{
	char path[512];
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), SYSFS_PORTS "/%s/name", vport);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = read(fd, buf, n - 1);
	close(fd);
	if (len < 0)
		return -errno;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\0'))
		len--;
	buf[len] = '\0';
	return 0;
}

int virtio_serial_find(const char *name, char *path, size_t n)
{
	char byname[VMIC_PATH_MAX + 32], portname[128];
	struct dirent *de;
	DIR *d;

	snprintf(byname, sizeof(byname), "/dev/virtio-ports/%s", name);
	if (access(byname, F_OK) == 0) {
		snprintf(path, n, "%s", byname);
		return 0;
	}
	d = opendir(SYSFS_PORTS);
	if (!d)
		return -ENOENT;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (read_port_name(de->d_name, portname, sizeof(portname)) < 0)
			continue;
		if (strcmp(portname, name) == 0) {
			snprintf(path, n, "/dev/%s", de->d_name);
			closedir(d);
			return 0;
		}
	}
	closedir(d);
	return -ENOENT;
}

static void on_retry(uv_timer_t *t);

static int set_async(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? fl | O_ASYNC : fl & ~O_ASYNC;
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

/* Open the port for good: SIGIO to us when its host side comes or goes. */
static int port_open(struct vmic_listener *l)
{
	char dev[VMIC_PATH_MAX + 32];
	struct stat st;
	int fd, r;

	r = virtio_serial_find(l->ch.path, dev, sizeof(dev));
	if (r < 0)
		return r;
	fd = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || fcntl(fd, F_SETOWN, getpid()) < 0 ||
	    (r = set_async(fd, true)) < 0) {
		r = r < 0 ? r : -errno;
		close(fd);
		return r;
	}
	l->fd = fd;
	l->rdev = st.st_rdev;
	return 0;
}

/* Is the open port still the device named l->ch.path (not unplugged)? */
static bool port_still_there(const struct vmic_listener *l)
{
	char dev[VMIC_PATH_MAX + 32];
	struct stat st;

	return virtio_serial_find(l->ch.path, dev, sizeof(dev)) == 0 &&
	       stat(dev, &st) == 0 && st.st_rdev == l->rdev;
}

static void port_close(struct vmic_listener *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

static void find_later(struct vmic_listener *l)
{
	l->retry_ms = l->retry_ms ? MIN(l->retry_ms * 2, FIND_RETRY_MAX_MS)
				  : FIND_RETRY_MIN_MS;
	uv_timer_start(&l->retry, on_retry, l->retry_ms, 0);
}

/* Give the caller a stream on the port: a dup, with O_ASYNC off. */
static void hand_out(struct vmic_listener *l)
{
	uv_stream_t *s;
	int fd, r;

	fd = fcntl(l->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		log_warning_errno(errno, "cannot use virtio-serial port %s",
				  l->ch.path);
		uv_timer_start(&l->retry, on_retry, REHAND_DELAY_MS, 0);
		return;
	}
	set_async(l->fd, false);
	s = sockfd_wrap(l->loop, fd, &r);
	if (!s) {
		log_warning_errno(r, "cannot use virtio-serial port %s",
				  l->ch.path);
		set_async(l->fd, true);
		uv_timer_start(&l->retry, on_retry, REHAND_DELAY_MS, 0);
		return;
	}
	l->handed_out = true;
	l->cb(l->ud, s);
}

/*
 * Look at the port once: gone (unplugged) means looking for it again;
 * no host attached means sleeping until SIGIO; a host means a stream.
 */
static void port_check(struct vmic_listener *l, bool soon)
{
	struct pollfd p = { .fd = l->fd, .events = POLLIN };

	if (l->handed_out || l->fd < 0)
		return;
	if (!port_still_there(l) || poll(&p, 1, 0) < 0 ||
	    (p.revents & (POLLNVAL | POLLERR))) {
		log_warning("virtio-serial port %s went away; looking for it "
			    "again",
			    l->ch.path);
		port_close(l);
		l->retry_ms = 0;
		find_later(l);
		return;
	}
	if (p.revents & POLLHUP) {
		log_debug("no host on virtio-serial port %s; waiting for it to "
			  "open the port",
			  l->ch.path);
		return;
	}
	if (soon)
		hand_out(l);
	else
		uv_timer_start(&l->retry, on_retry, REHAND_DELAY_MS, 0);
}

static void on_retry(uv_timer_t *t)
{
	struct vmic_listener *l = t->data;
	int r;

	if (l->fd >= 0) {
		port_check(l, true);
		return;
	}
	r = port_open(l);
	if (r < 0) {
		if (!l->warned)
			log_warning_errno(r, "virtio-serial port %s not usable "
					     "yet; looking again after 1 s, "
					     "then less often",
					  l->ch.path);
		l->warned = true;
		find_later(l);
		return;
	}
	if (l->warned)
		log_info("virtio-serial port %s found", l->ch.path);
	l->warned = false;
	l->retry_ms = 0;
	port_check(l, true);
}

static void on_sigio(uv_signal_t *s, int signo UNUSED)
{
	struct vmic_listener *l = s->data;

	/* Also a stale signal from before O_ASYNC went off: port_check
	 * ignores it while a stream is out. */
	port_check(l, true);
}

int virtio_serial_open(struct vmic_listener *l, char *err, size_t errsz)
{
	int r;

	uv_timer_init(l->loop, &l->retry);
	l->have_timer = true;
	l->retry.data = l;
	/* SIGIO's default action ends the process: catch it before any
	 * port is opened with O_ASYNC. */
	uv_signal_init(l->loop, &l->sigio);
	l->have_signal = true;
	l->sigio.data = l;
	r = uv_signal_start(&l->sigio, on_sigio, SIGIO);
	if (r < 0) {
		snprintf(err, errsz, "cannot catch SIGIO: %s", uv_strerror(r));
		return r;
	}
	/* First try from the loop, so the caller has its listener before
	 * the accept callback runs; a missing port may still be
	 * hot-plugged, so failures retry. */
	uv_timer_start(&l->retry, on_retry, 0, 0);
	return 0;
}

void virtio_serial_rearm(struct vmic_listener *l)
{
	l->handed_out = false;
	if (l->fd < 0)
		return;
	/* O_ASYNC first, then look: a host that came back in between has
	 * raised no signal for us. */
	set_async(l->fd, true);
	port_check(l, false);
}
