/* SPDX-License-Identifier: MIT */
#include "services/timesync/chrony.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

/* chrony's refclock_sock.c layout, with the native struct timeval, as
 * chronyd is built for the same machine. */
struct sock_sample {
	struct timeval tv;
	double offset;
	int pulse;
	int leap;
	int _pad;
	int magic;
};

#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(sizeof(struct sock_sample) == 40,
	       "chrony's sock_sample is 40 bytes on 64-bit Linux");
#endif

int ts_chrony_open(void)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	return fd < 0 ? -errno : fd;
}

int ts_chrony_send(int fd, const char *path, int64_t sys_ns,
		   int64_t offset_ns)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct sock_sample s;
	int64_t sec = sys_ns / 1000000000, nsec = sys_ns % 1000000000;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (nsec < 0) {
		sec--;
		nsec += 1000000000;
	}
	memset(&s, 0, sizeof(s));
	s.tv.tv_sec = (time_t)sec;
	s.tv.tv_usec = (suseconds_t)(nsec / 1000);
	/* tv lost the sub-microsecond part, so true time minus tv is that
	 * much more than the offset from sys_ns. */
	s.offset = ((double)offset_ns + (double)(nsec % 1000)) / 1e9;
	s.magic = TS_CHRONY_MAGIC;
	if (sendto(fd, &s, sizeof(s), MSG_DONTWAIT | MSG_NOSIGNAL,
		   (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return 0;
}
