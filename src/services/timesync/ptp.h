/* SPDX-License-Identifier: MIT */
/*
 * The hypervisor's clock through a PTP device (ptp_kvm, Hyper-V's
 * ptp_hyperv): PTP_SYS_OFFSET_PRECISE where the driver has a cross
 * timestamp, else PTP_SYS_OFFSET (n readings bracketed by system time;
 * the narrowest bracket wins).
 *
 * With a simulated clock there is no device to ask: the path only has to
 * exist, and the reading is the machine's CLOCK_REALTIME against the
 * simulated clock, exact, as a PTP clock of the host would be.
 */
#ifndef VMIC_TIMESYNC_PTP_H
#define VMIC_TIMESYNC_PTP_H

#include <stddef.h>
#include <stdint.h>

struct guest_clock;

struct ts_ptp_reading {
	int64_t offset_ns; /* device time minus the guest's clock */
	int64_t delay_ns;  /* width of the bracket, 0 when precise */
	int64_t sys_ns;    /* the guest's clock at the reading */
};

/* One reading of the device at path with up to `samples` brackets; 0, or
 * -errno with a sentence in err (the device is not a PTP clock, ...). */
int ts_ptp_read(struct guest_clock *clk, const char *path, unsigned samples,
		struct ts_ptp_reading *out, char *err, size_t errsz);

#endif
