/* SPDX-License-Identifier: MIT */
#include "services/timesync/ptp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/ptp_clock.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/saturate.h"
#include "guest/service-api.h"

/* A device's reading in ns; a kernel bug's absurd one saturates. */
static int64_t pct_ns(const struct ptp_clock_time *t)
{
	int64_t ns;

	if (__builtin_mul_overflow(t->sec, 1000000000LL, &ns))
		return t->sec < 0 ? INT64_MIN : INT64_MAX;
	return vmic_sat_add64(ns, t->nsec);
}

static int read_precise(int fd, struct ts_ptp_reading *out)
{
	struct ptp_sys_offset_precise p;

	memset(&p, 0, sizeof(p));
	if (ioctl(fd, PTP_SYS_OFFSET_PRECISE, &p) < 0)
		return -errno;
	out->sys_ns = pct_ns(&p.sys_realtime);
	out->offset_ns = vmic_sat_sub64(pct_ns(&p.device), out->sys_ns);
	out->delay_ns = 0;
	return 0;
}

static int read_brackets(int fd, unsigned samples, struct ts_ptp_reading *out)
{
	struct ptp_sys_offset p;
	int64_t best = INT64_MAX;

	memset(&p, 0, sizeof(p));
	p.n_samples = samples < 1 ? 1
		      : samples > PTP_MAX_SAMPLES ? PTP_MAX_SAMPLES
						  : samples;
	if (ioctl(fd, PTP_SYS_OFFSET, &p) < 0)
		return -errno;
	/* ts[2i] system, ts[2i+1] device, ts[2i+2] system. */
	for (unsigned i = 0; i < p.n_samples; i++) {
		int64_t s1 = pct_ns(&p.ts[2 * i]), dev = pct_ns(&p.ts[2 * i + 1]);
		int64_t s2 = pct_ns(&p.ts[2 * i + 2]);

		if (s2 < s1 || vmic_sat_sub64(s2, s1) >= best)
			continue;
		best = s2 - s1;
		out->sys_ns = s1 + best / 2;
		out->offset_ns = vmic_sat_sub64(dev, out->sys_ns);
		out->delay_ns = best;
	}
	return best == INT64_MAX ? -EIO : 0;
}

static int read_simulated(struct guest_clock *clk, const char *path,
			  struct ts_ptp_reading *out)
{
	if (access(path, F_OK) < 0)
		return -errno;
	out->sys_ns = guest_clock_now(clk);
	out->offset_ns = guest_clock_true_error(clk);
	out->delay_ns = 0;
	return 0;
}

int ts_ptp_read(struct guest_clock *clk, const char *path, unsigned samples,
		struct ts_ptp_reading *out, char *err, size_t errsz)
{
	struct stat st;
	int fd, r;

	if (clk->simulated) {
		r = read_simulated(clk, path, out);
		if (r < 0)
			snprintf(err, errsz, "%s: %s", path, strerror(-r));
		return r;
	}
	/* The loop reads it: O_NONBLOCK, so a FIFO at a configured path
	 * cannot block it (a device's udev symbolic link is fine). */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errsz, "cannot open %s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode)) {
		close(fd);
		snprintf(err, errsz, "%s is not a character device", path);
		return -ENODEV;
	}
	r = read_precise(fd, out);
	if (r < 0)
		r = read_brackets(fd, samples, out);
	close(fd);
	if (r < 0)
		snprintf(err, errsz, "%s does not answer PTP_SYS_OFFSET: %s",
			 path, strerror(-r));
	return r;
}
