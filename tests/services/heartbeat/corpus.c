/* SPDX-License-Identifier: MIT */
/* The heartbeat's seeds for fuzz-messages (tests/fuzz/corpus.h). */
#include <stdio.h>
#include <stdlib.h>

#include "corpus.h"

#include "services/heartbeat/heartbeat.h"

void gen_corpus_heartbeat(void)
{
	struct vmic_hb_reply m = { .seq = 42, .health = VMIC_HEALTH_CRITICAL };
	uint8_t p[VMIC_HB_REPLY_MAX_LEN];
	int n;

	vmic_hb_request_encode(7, p, sizeof(p));
	save_message("hb-request", VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST, p,
		     VMIC_HB_REQUEST_LEN);
	snprintf(m.reason, sizeof(m.reason), "nginx.service failed");
	n = vmic_hb_reply_encode(&m, p, sizeof(p));
	if (n < 0)
		abort();
	save_message("hb-reply", VMIC_SVC_HEARTBEAT, VMIC_HB_REPLY, p,
		     (size_t)n);
}
