/* SPDX-License-Identifier: MIT */
#include "ratelimit.h"

bool vmic_ratelimit_pass(struct vmic_ratelimit *rl, uint64_t now_ms,
			 uint64_t *suppressed)
{
	/* A clock that went back counts as a full interval later. */
	if (rl->started && now_ms >= rl->last_ms &&
	    now_ms - rl->last_ms < rl->interval_ms) {
		rl->suppressed++;
		return false;
	}
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	rl->last_ms = now_ms;
	rl->started = true;
	return true;
}
