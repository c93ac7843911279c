/* SPDX-License-Identifier: MIT */
/* The shutdown service's seeds for fuzz-messages (tests/fuzz/corpus.h);
 * fuzz-qmp's are QEMU's own lines, kept as files. */
#include <stdio.h>
#include <stdlib.h>

#include "corpus.h"

#include "services/shutdown/shutdown.h"

void gen_corpus_shutdown(void)
{
	struct vmic_sd_request rq = { .action = VMIC_SD_REBOOT,
				      .flags = VMIC_SD_F_FORCE };
	struct vmic_sd_reply rp = { .status = 0 };
	uint8_t p[VMIC_SD_REQUEST_MAX_LEN];
	int n;

	snprintf(rq.reason, sizeof(rq.reason), "kernel update \xE2\x9C\x93");
	n = vmic_sd_request_encode(&rq, p, sizeof(p));
	if (n < 0)
		abort();
	save_message("sd-request", VMIC_SVC_SHUTDOWN, VMIC_SD_REQUEST, p,
		     (size_t)n);
	snprintf(rp.message, sizeof(rp.message), "running systemctl reboot");
	n = vmic_sd_reply_encode(&rp, p, sizeof(p));
	if (n < 0)
		abort();
	save_message("sd-reply", VMIC_SVC_SHUTDOWN, VMIC_SD_REPLY, p,
		     (size_t)n);
}
