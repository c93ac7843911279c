/* SPDX-License-Identifier: MIT */
/*
 * File Copy, guest half: what its files share (guest.c the entry and
 * configuration, guest-path.c resolving a path beneath an allowed
 * directory, guest-put.c host-to-guest files, guest-get.c guest-to-host
 * files, guest-sweep.c temporaries left by a crash).
 */
#ifndef VMIC_SERVICES_FILECOPY_GUEST_H
#define VMIC_SERVICES_FILECOPY_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest/service-api.h"
#include "services/filecopy/filecopy.h"

#define FC_GUEST_ID VMIC_SVC_FILECOPY
/* [filecopy] write-dirs / read-dirs: space-separated absolute paths. */
#define FC_DIRS_MAX 4096
/* Copies of each direction one host may run at once in this agent. */
#define FC_GUEST_TRANSFERS_MAX 16
/* A temporary's name: the prefix, this agent run's token, a counter. */
#define FC_TMP_PREFIX ".vmic-copy-"
#define FC_TMP_SUFFIX ".part"

struct fc_guest_conf {
	char write_dirs[FC_DIRS_MAX];
	char read_dirs[FC_DIRS_MAX];
};

struct fc_put;
struct fc_get;

/* A failure of a put whose COMMIT may still come: its sentence. */
struct fc_failed {
	uint32_t stream_id;
	uint16_t code;
	char message[1024];
};
#define FC_FAILED_KEEP 8

struct fc_guest {
	struct guestd *g;
	char token[17]; /* this run's: temporaries of others are stale */
	uint64_t counter;
	struct fc_put *puts;
	unsigned nputs;
	struct fc_get *gets;
	unsigned ngets;
	struct fc_failed failed[FC_FAILED_KEEP];
	unsigned failed_next;
};

/* guest-path.c */
/* Where a file goes: the directory it is created in (an O_PATH
 * descriptor resolved beneath an allowed directory) and its name. */
struct fc_dest {
	int dirfd;
	char leaf[VMIC_FC_NAME_MAX + 1];
};
/*
 * Resolve a PUT's destination beneath one of `dirs`: an existing
 * directory takes `name` inside it; else the path's last component is
 * the name, in its parent (made when `parents`). 0, or a VMIC_E_* code
 * with a sentence for the user in err.
 */
int fc_guest_resolve_put(const char *dirs, const char *conf_path,
			 const struct vmic_fc_put *m, struct fc_dest *d,
			 char *err, size_t n);
/* The directory path's last component goes in (made when `parents`),
 * resolved beneath one of `dirs`, and that component: 0; 1 when path is
 * one of `dirs` itself; or a VMIC_E_* code with a sentence in err. */
int fc_guest_resolve_leaf(const char *dirs, const char *conf_path,
			  const char *path, bool parents, struct fc_dest *d,
			  char *err, size_t n);
/* Open path for reading beneath one of `dirs` (a regular file, or a
 * directory when dir); the descriptor, or -1 with a VMIC_E_* code in
 * *code and a sentence. */
int fc_guest_open_get(const char *dirs, const char *conf_path,
		      const char *path, bool dir, uint16_t *code, char *err,
		      size_t n);

/* guest-put.c */
int fc_guest_put(struct guest_conn *c, struct fc_guest *st,
		 const struct vmic_frame *f);
int fc_guest_commit(struct guest_conn *c, struct fc_guest *st,
		    const struct vmic_frame *f);
/* The session ended or the agent stops: every put ends, its temporary
 * removed. */
void fc_guest_puts_drop(struct fc_guest *st);

/* guest-get.c */
int fc_guest_get(struct guest_conn *c, struct fc_guest *st,
		 const struct vmic_frame *f);
/* Answer request rid ACCEPTED with `accepted`, then pump fd (taken) into
 * the host's stream and answer DONE with its hash, or an error. */
int fc_guest_send(struct guest_conn *c, struct fc_guest *st, uint32_t rid,
		  uint32_t stream_id, int fd, const char *path,
		  const struct vmic_fc_reply *accepted);

/* guest-list.c: a tree's listing for -r out of the guest */
int fc_guest_list(struct guest_conn *c, struct fc_guest *st,
		  const struct vmic_frame *f);
void fc_guest_gets_drop(struct fc_guest *st);

/* guest-tree.c: directories and symbolic links of a tree copy */
int fc_guest_mkdir(struct guest_conn *c, struct fc_guest *st,
		   const struct vmic_frame *f);
int fc_guest_symlink(struct guest_conn *c, struct fc_guest *st,
		     const struct vmic_frame *f);

/* guest-sweep.c */
/* Remove, off the loop, the temporaries beneath `dirs` that another run
 * of the agent left (a crash, a power cut): every FC_TMP_PREFIX file
 * whose token is not `token`. */
void fc_guest_sweep(uv_loop_t *loop, const char *dirs, const char *token);
/* A sweep is running (the agent waits for it when it stops). */
bool fc_guest_sweeping(void);

#endif
