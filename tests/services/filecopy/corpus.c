/* SPDX-License-Identifier: MIT */
/* The File Copy service's seeds for fuzz-messages (tests/fuzz/corpus.h):
 * one valid message of each type, with a non-ASCII name. */
#include <stdio.h>
#include <stdlib.h>

#include "corpus.h"

#include "services/filecopy/filecopy.h"

void gen_corpus_filecopy(void)
{
	struct vmic_fc_put put = { .flags = VMIC_FC_F_FORCE |
					    VMIC_FC_F_INTO_DIR |
					    VMIC_FC_F_SPARSE,
				   .stream_id = 0x40000001u, .mode = 0644,
				   .mtime_ns = 1700000000123456789,
				   .size = 4096 };
	struct vmic_fc_commit commit = { .stream_id = 0x40000001u,
					 .bytes = 4096,
					 .hash = { 1, 2, 3, 4, 5, 6, 7, 8 } };
	struct vmic_fc_get get = { .stream_id = 0x40000002u };
	struct vmic_fc_reply reply = { .stage = VMIC_FC_ACCEPTED,
				       .flags = VMIC_FC_F_SPARSE, .size = 4096,
				       .mode = 0600,
				       .hash = { 9, 8, 7, 6, 5, 4, 3, 2 } };
	struct vmic_fc_reply owned = { .stage = VMIC_FC_ACCEPTED,
				       .flags = VMIC_FC_F_OWNER, .size = 10,
				       .mode = 0640 };
	static struct vmic_fc_mkdir mk = { .flags = VMIC_FC_F_PARENTS,
					   .mode = 0755,
					   .mtime_ns = VMIC_FC_MTIME_NONE };
	static struct vmic_fc_symlink sl = { .mtime_ns = 1700000000 };
	static uint8_t p[VMIC_FC_SYMLINK_MAX_LEN];
	int n;

	snprintf(put.path, sizeof(put.path), "/srv/in/d\xC3\xA9p\xC3\xB4t");
	snprintf(put.name, sizeof(put.name), "r\xC3\xA9sum\xC3\xA9.txt");
	snprintf(get.path, sizeof(get.path), "/srv/out/log.txt");
	n = vmic_fc_put_encode(&put, p, sizeof(p));
	if (n < 0)
		abort();
	save_message("fc-put", VMIC_SVC_FILECOPY, VMIC_FC_PUT, p, (size_t)n);
	n = vmic_fc_commit_encode(&commit, p, sizeof(p));
	if (n < 0)
		abort();
	save_message("fc-commit", VMIC_SVC_FILECOPY, VMIC_FC_COMMIT, p,
		     (size_t)n);
	n = vmic_fc_get_encode(&get, p, sizeof(p));
	if (n < 0)
		abort();
	save_message("fc-get", VMIC_SVC_FILECOPY, VMIC_FC_GET, p, (size_t)n);
	save_message("fc-list", VMIC_SVC_FILECOPY, VMIC_FC_LIST, p, (size_t)n);
	n = vmic_fc_reply_encode(&reply, p, sizeof(p));
	if (n < 0)
		abort();
	save_message("fc-reply", VMIC_SVC_FILECOPY, VMIC_FC_REPLY, p,
		     (size_t)n);
	owned.uid = 1000;
	owned.gid = 100;
	n = vmic_fc_reply_encode(&owned, p, sizeof(p));
	if (n < 0)
		abort();
	save_message("fc-reply-owner", VMIC_SVC_FILECOPY, VMIC_FC_REPLY, p,
		     (size_t)n);
	snprintf(mk.path, sizeof(mk.path), "/srv/in/tree/sub");
	n = vmic_fc_mkdir_encode(&mk, p, sizeof(p));
	if (n < 0)
		abort();
	save_message("fc-mkdir", VMIC_SVC_FILECOPY, VMIC_FC_MKDIR, p,
		     (size_t)n);
	snprintf(sl.path, sizeof(sl.path), "/srv/in/tree/link");
	snprintf(sl.target, sizeof(sl.target), "../sub/file");
	n = vmic_fc_symlink_encode(&sl, p, sizeof(p));
	if (n < 0)
		abort();
	save_message("fc-symlink", VMIC_SVC_FILECOPY, VMIC_FC_SYMLINK, p,
		     (size_t)n);
}
