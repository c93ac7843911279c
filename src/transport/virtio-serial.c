/* SPDX-License-Identifier: MIT */
/*
 * virtio-serial: (guest). The port is a character device; QEMU keeps what
 * either side wrote while the other was away, and read() returns 0 while no
 * host is attached, so the agent closes the port on EOF and opens it again
 * a little later instead of giving up.
 *
 * Without udev there is no /dev/virtio-ports/NAME link; the name is then
 * found in /sys/class/virtio-ports/vportNpM/name and the device is
 * /dev/vportNpM.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "transport-internal.h"

#define REOPEN_DELAY_MS 1000
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

static void on_reopen(uv_timer_t *t);

static int virtio_serial_try_open(struct vmic_listener *l)
{
	char dev[VMIC_PATH_MAX + 32];
	uv_stream_t *s;
	int fd, r;

	r = virtio_serial_find(l->ch.path, dev, sizeof(dev));
	if (r < 0)
		return r;
	fd = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	s = sockfd_wrap(l->loop, fd, &r);
	if (!s)
		return r;
	l->warned = false;
	l->cb(l->ud, s);
	return 0;
}

static void schedule_reopen(struct vmic_listener *l)
{
	uv_timer_start(&l->retry, on_reopen, REOPEN_DELAY_MS, 0);
}

static void on_reopen(uv_timer_t *t)
{
	struct vmic_listener *l = t->data;
	int r = virtio_serial_try_open(l);

	if (r < 0) {
		if (!l->warned)
			log_warning_errno(r, "virtio-serial port %s not usable "
					     "yet, retrying every %d ms",
					  l->ch.path, REOPEN_DELAY_MS);
		l->warned = true;
		schedule_reopen(l);
	}
}

int virtio_serial_open(struct vmic_listener *l, char *err, size_t errsz)
{
	uv_timer_init(l->loop, &l->retry);
	l->have_timer = true;
	l->retry.data = l;
	(void)err;
	(void)errsz;
	/* First try from the loop, so the caller has its listener before
	 * the accept callback runs; a missing port may still be
	 * hot-plugged, so failures retry. */
	uv_timer_start(&l->retry, on_reopen, 0, 0);
	return 0;
}

void virtio_serial_rearm(struct vmic_listener *l)
{
	schedule_reopen(l);
}
