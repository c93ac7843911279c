/* SPDX-License-Identifier: MIT */
/*
 * File Copy, guest half: the entry, its [filecopy] keys and the frames.
 * Off unless the guest's configuration switches it on, and even then no
 * copy goes anywhere until write-dirs (copies in) or read-dirs (copies
 * out) name where: the agent runs as root.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/random.h"
#include "proto/services.h"
#include "services/filecopy/guest.h"

/* A list of absolute directories separated by spaces; "" for none. */
static int parse_dirs(const char *value, void *field, char *err, size_t n)
{
	char tmp[FC_DIRS_MAX], *save = NULL;

	if (strlen(value) >= FC_DIRS_MAX) {
		snprintf(err, n, "at most %d bytes of directories",
			 FC_DIRS_MAX - 1);
		return -EINVAL;
	}
	snprintf(tmp, sizeof(tmp), "%s", value);
	for (char *d = strtok_r(tmp, " \t", &save); d;
	     d = strtok_r(NULL, " \t", &save)) {
		if (d[0] != '/') {
			snprintf(err, n, "'%s' is not an absolute directory "
					 "(separate several with spaces)",
				 d);
			return -EINVAL;
		}
	}
	snprintf(field, FC_DIRS_MAX, "%s", value);
	return 0;
}

#define DIRS(f)                                       \
	.type = VMIC_CONF_CUSTOM,                     \
	.offset = offsetof(struct fc_guest_conf, f),  \
	.size = FC_DIRS_MAX, .parse = parse_dirs,     \
	.format = vmic_conf_format_string

static const struct vmic_conf_key keys[] = {
	{ .section = "filecopy", .key = "write-dirs", DIRS(write_dirs),
	  .help = "directories copies from the host may write beneath "
		  "(space-separated); empty: none" },
	{ .section = "filecopy", .key = "read-dirs", DIRS(read_dirs),
	  .help = "directories copies to the host may read beneath "
		  "(space-separated); empty: none" },
};

static const struct vmic_conf_table conf_table = { keys, ARRAY_SIZE(keys) };

static int fc_start(struct guestd *g)
{
	const struct fc_guest_conf *conf = agent_conf(g, FC_GUEST_ID);
	struct fc_guest *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	st->g = g;
	snprintf(st->token, sizeof(st->token), "%016llx",
		 (unsigned long long)vmic_random_u64());
	agent_set_state(g, FC_GUEST_ID, st);
	fc_guest_sweep(agent_loop(g), conf->write_dirs, st->token);
	return 0;
}

static void fc_stop(struct guestd *g)
{
	struct fc_guest *st = agent_state(g, FC_GUEST_ID);

	fc_guest_puts_drop(st);
	fc_guest_gets_drop(st);
}

static void fc_pending(struct guestd *g, char *buf, size_t n)
{
	(void)g;
	snprintf(buf, n, "%s",
		 fc_guest_sweeping() ? "the removal of stale temporaries" : "");
}

static void fc_on_session(struct guest_conn *c, bool up)
{
	struct fc_guest *st = agent_state(agent_of(c), FC_GUEST_ID);

	if (up || !st)
		return;
	fc_guest_puts_drop(st);
	fc_guest_gets_drop(st);
}

static int fc_on_frame(struct guest_conn *c, const struct vmic_frame *f)
{
	struct fc_guest *st = agent_state(agent_of(c), FC_GUEST_ID);

	switch (f->type) {
	case VMIC_FC_PUT:
		return fc_guest_put(c, st, f);
	case VMIC_FC_COMMIT:
		return fc_guest_commit(c, st, f);
	case VMIC_FC_GET:
		return fc_guest_get(c, st, f);
	case VMIC_FC_MKDIR:
		return fc_guest_mkdir(c, st, f);
	case VMIC_FC_SYMLINK:
		return fc_guest_symlink(c, st, f);
	case VMIC_FC_LIST:
		return fc_guest_list(c, st, f);
	}
	return 0;
}

const struct guest_service filecopy_guest = {
	.desc = &vmic_filecopy_service,
	.enabled_help = "let the host copy files into and out of this guest "
			"(beneath write-dirs and read-dirs)",
	.conf = &conf_table,
	.conf_size = sizeof(struct fc_guest_conf),
	.max_requests = 1,
	.start = fc_start,
	.stop = fc_stop,
	.pending = fc_pending,
	.on_session = fc_on_session,
	.on_frame = fc_on_frame,
};
