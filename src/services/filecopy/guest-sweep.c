/* SPDX-License-Identifier: MIT */
/*
 * Temporaries left behind: a copy writes into FC_TMP_PREFIX TOKEN-N
 * FC_TMP_SUFFIX in its destination directory, TOKEN being the agent
 * run's. A run that died (kill -9, a power cut) leaves its temporaries;
 * the next run walks the write directories once, on the thread pool,
 * and removes every such file whose token is not its own (its own copies
 * may already be running).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "services/filecopy/guest.h"

struct sweep {
	uv_work_t work;
	char dirs[FC_DIRS_MAX];
	char token[17];
	unsigned removed;
};

/* nftw passes no pointer of ours; one sweep runs per agent. */
static struct sweep *current;

static bool stale(const char *name)
{
	size_t plen = strlen(FC_TMP_PREFIX), slen = strlen(FC_TMP_SUFFIX);
	size_t n = strlen(name);

	return n > plen + slen && strncmp(name, FC_TMP_PREFIX, plen) == 0 &&
	       strcmp(name + n - slen, FC_TMP_SUFFIX) == 0 &&
	       strncmp(name + plen, current->token, strlen(current->token)) !=
		       0;
}

static int visit(const char *path, const struct stat *sb, int type,
		 struct FTW *ftw)
{
	(void)sb;
	if ((type == FTW_F || type == FTW_SL) && stale(path + ftw->base) &&
	    unlink(path) == 0)
		current->removed++;
	return 0;
}

static void sweep_work(uv_work_t *w)
{
	struct sweep *s = w->data;
	char *save = NULL;

	for (char *d = strtok_r(s->dirs, " \t", &save); d;
	     d = strtok_r(NULL, " \t", &save))
		nftw(d, visit, 16, FTW_PHYS | FTW_MOUNT);
}

static void sweep_done(uv_work_t *w, int status)
{
	struct sweep *s = w->data;

	(void)status;
	if (s->removed)
		log_notice("filecopy: removed %u temporary file%s of copies "
			   "that a previous run left unfinished",
			   s->removed, s->removed == 1 ? "" : "s");
	current = NULL;
	free(s);
}

void fc_guest_sweep(uv_loop_t *loop, const char *dirs, const char *token)
{
	struct sweep *s;

	if (!dirs[0] || current)
		return;
	s = calloc(1, sizeof(*s));
	if (!s)
		return;
	snprintf(s->dirs, sizeof(s->dirs), "%s", dirs);
	snprintf(s->token, sizeof(s->token), "%s", token);
	s->work.data = s;
	current = s;
	if (uv_queue_work(loop, &s->work, sweep_work, sweep_done) < 0) {
		current = NULL;
		free(s);
	}
}

bool fc_guest_sweeping(void)
{
	return current != NULL;
}
