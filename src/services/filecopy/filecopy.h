/* SPDX-License-Identifier: MIT */
/*
 * File Copy service messages (service 6, version 1); docs/protocol.md,
 * "File Copy", gives the byte layout. The file's bytes never travel in
 * these messages: they go in a stream of the link (transport/fdstream.h)
 * whose id the messages name.
 *
 * PUT host -> guest: "open stream_id and write what it carries to path".
 *   The guest resolves path beneath a [filecopy] write-dirs entry, opens
 *   a temporary name in the destination directory and its end of the
 *   stream, and answers REPLY (stage ACCEPTED); only then does the host
 *   send data.
 * COMMIT host -> guest: the stream has ended; its XXH3-128 and length as
 *   the host read them. The guest checks both against what it wrote,
 *   fsyncs, sets mode and mtime, renames into place (never replacing
 *   unless the PUT said FORCE) and answers REPLY (stage DONE), or an
 *   error frame; either way no temporary remains.
 * GET host -> guest: "send path in stream_id" (the host's end is open).
 *   The guest resolves path beneath a [filecopy] read-dirs entry, answers
 *   REPLY (stage ACCEPTED, with size, mode and mtime), pumps the file and
 *   then answers the same request id again with REPLY (stage DONE,
 *   the XXH3-128 and length of what it read), or a late error frame.
 */
#ifndef VMIC_SERVICES_FILECOPY_H
#define VMIC_SERVICES_FILECOPY_H

#include <stdint.h>

#include "proto/proto.h"

enum vmic_fc_type {
	VMIC_FC_PUT = 1,
	VMIC_FC_COMMIT = 2,
	VMIC_FC_GET = 3,
	VMIC_FC_REPLY = 4,
	VMIC_FC_MKDIR = 5,
	VMIC_FC_SYMLINK = 6,
	VMIC_FC_LIST = 7, /* as GET (struct vmic_fc_get): a directory's
			     listing of entries, sent like a file */
};

/* The kinds of a listing's entries (LIST). */
enum vmic_fc_entry_kind {
	VMIC_FC_ENTRY_DIR = 0,
	VMIC_FC_ENTRY_FILE = 1,
	VMIC_FC_ENTRY_LINK = 2,
	VMIC_FC_ENTRY_OTHER = 3, /* device, socket, FIFO: skipped */
};

/* PUT flags */
#define VMIC_FC_F_FORCE 0x01   /* replace an existing destination */
#define VMIC_FC_F_PARENTS 0x02 /* make missing parent directories */
#define VMIC_FC_F_INTO_DIR 0x04 /* path must be a directory: write name
				   inside it */
#define VMIC_FC_F_SPARSE 0x08 /* the source has holes: keep them */
/* MKDIR: an existing directory is fine (its mode and mtime are set);
 * REPLY to MKDIR: it existed. */
#define VMIC_FC_F_EXISTS 0x10
/* PUT, MKDIR, SYMLINK: give it the owner uid:gid (--preserve) */
#define VMIC_FC_F_OWNER 0x20
#define VMIC_FC_F_KNOWN (VMIC_FC_F_FORCE | VMIC_FC_F_PARENTS | \
			 VMIC_FC_F_INTO_DIR | VMIC_FC_F_SPARSE | \
			 VMIC_FC_F_OWNER)

/* REPLY stages */
enum vmic_fc_stage {
	VMIC_FC_ACCEPTED = 0,
	VMIC_FC_DONE = 1,
};

/* A guest path: PATH_MAX, with its terminator outside. */
#define VMIC_FC_PATH_MAX 4095
/* A file name (NAME_MAX). */
#define VMIC_FC_NAME_MAX 255
#define VMIC_FC_HASH_LEN 16
/* Permission bits a copy carries (no set-id bits travel). */
#define VMIC_FC_MODE_MASK 01777u
/* Size not known in advance (a pipe). */
#define VMIC_FC_SIZE_UNKNOWN UINT64_MAX

#define VMIC_FC_PUT_MIN_LEN (1 + 4 + 4 + 8 + 8 + 4 + 4 + 2 + 1 + 2)
#define VMIC_FC_PUT_MAX_LEN \
	(VMIC_FC_PUT_MIN_LEN - 1 + VMIC_FC_PATH_MAX + VMIC_FC_NAME_MAX)
#define VMIC_FC_COMMIT_LEN (4 + 8 + VMIC_FC_HASH_LEN)
#define VMIC_FC_GET_MIN_LEN (4 + 2 + 1)
#define VMIC_FC_GET_MAX_LEN (4 + 2 + VMIC_FC_PATH_MAX)
#define VMIC_FC_REPLY_LEN (1 + 1 + 8 + 4 + 8 + VMIC_FC_HASH_LEN)
#define VMIC_FC_MKDIR_MIN_LEN (1 + 4 + 8 + 4 + 4 + 2 + 1)
#define VMIC_FC_MKDIR_MAX_LEN (1 + 4 + 8 + 4 + 4 + 2 + VMIC_FC_PATH_MAX)
#define VMIC_FC_SYMLINK_MIN_LEN (1 + 8 + 4 + 4 + 2 + 1 + 2 + 1)
#define VMIC_FC_SYMLINK_MAX_LEN (1 + 8 + 4 + 4 + 2 + VMIC_FC_PATH_MAX + 2 + \
				 VMIC_FC_PATH_MAX)
/* MKDIR and SYMLINK: no mtime to set. */
#define VMIC_FC_MTIME_NONE INT64_MIN

struct vmic_fc_put {
	uint8_t flags;
	uint32_t stream_id; /* the host's SEND stream, != 0 */
	uint32_t mode;      /* VMIC_FC_MODE_MASK bits */
	int64_t mtime_ns;   /* since the epoch */
	uint64_t size;      /* expected, or VMIC_FC_SIZE_UNKNOWN */
	uint32_t uid, gid;  /* with VMIC_FC_F_OWNER, else 0 */
	char path[VMIC_FC_PATH_MAX + 1]; /* absolute, not empty */
	char name[VMIC_FC_NAME_MAX + 1]; /* the source's base name, for a
					    directory destination; may be
					    empty */
};

struct vmic_fc_commit {
	uint32_t stream_id;
	uint64_t bytes;
	uint8_t hash[VMIC_FC_HASH_LEN];
};

struct vmic_fc_get {
	uint32_t stream_id; /* the host's RECV stream, != 0 */
	char path[VMIC_FC_PATH_MAX + 1];
};

struct vmic_fc_reply {
	uint8_t stage;     /* enum vmic_fc_stage */
	uint8_t flags;     /* GET ACCEPTED: VMIC_FC_F_SPARSE, _OWNER */
	uint64_t size;     /* ACCEPTED of GET: the size; DONE: bytes */
	uint32_t mode;     /* GET: the file's permission bits */
	int64_t mtime_ns;  /* GET: its modification time */
	/* ACCEPTED of GET with VMIC_FC_F_OWNER: the file's owner, carried
	 * in the first 8 bytes of the hash field (unused before DONE). */
	uint32_t uid, gid;
	uint8_t hash[VMIC_FC_HASH_LEN]; /* DONE: XXH3-128, big-endian */
};

/* MKDIR host -> guest: make directory path (PARENTS: and its missing
 * parents; EXISTS: one already there is fine), then give it mode and,
 * unless VMIC_FC_MTIME_NONE, mtime. Answered with REPLY DONE (flags
 * EXISTS when it was there) or an error. */
struct vmic_fc_mkdir {
	uint8_t flags; /* VMIC_FC_F_PARENTS | _EXISTS | _OWNER */
	uint32_t mode;
	int64_t mtime_ns;
	uint32_t uid, gid;
	char path[VMIC_FC_PATH_MAX + 1];
};

/* SYMLINK host -> guest: a symbolic link at path to target (kept as it
 * is: resolving it later is the reader's business), replacing an
 * existing one only with FORCE. Answered with REPLY DONE or an error. */
struct vmic_fc_symlink {
	uint8_t flags; /* VMIC_FC_F_FORCE | VMIC_FC_F_OWNER */
	int64_t mtime_ns;
	uint32_t uid, gid;
	char path[VMIC_FC_PATH_MAX + 1];
	char target[VMIC_FC_PATH_MAX + 1]; /* not empty */
};

/* Each encoder returns the payload length or -EMSGSIZE; each decoder 0 or
 * -EBADMSG (short, long, a string not UTF-8 or with a NUL, a relative or
 * empty path, a name with '/' or "."/"..", unknown flags or mode bits,
 * stream id 0, an unknown stage or reply flag). */
int vmic_fc_put_encode(const struct vmic_fc_put *m, uint8_t *buf, size_t cap);
int vmic_fc_put_decode(const uint8_t *p, size_t n, struct vmic_fc_put *m);
int vmic_fc_commit_encode(const struct vmic_fc_commit *m, uint8_t *buf,
			  size_t cap);
int vmic_fc_commit_decode(const uint8_t *p, size_t n,
			  struct vmic_fc_commit *m);
int vmic_fc_get_encode(const struct vmic_fc_get *m, uint8_t *buf, size_t cap);
int vmic_fc_get_decode(const uint8_t *p, size_t n, struct vmic_fc_get *m);
int vmic_fc_reply_encode(const struct vmic_fc_reply *m, uint8_t *buf,
			 size_t cap);
int vmic_fc_reply_decode(const uint8_t *p, size_t n, struct vmic_fc_reply *m);

/* A hash as 32 lowercase hex digits into out (33 bytes). */
int vmic_fc_mkdir_encode(const struct vmic_fc_mkdir *m, uint8_t *buf,
			 size_t cap);
int vmic_fc_mkdir_decode(const uint8_t *p, size_t n, struct vmic_fc_mkdir *m);
int vmic_fc_symlink_encode(const struct vmic_fc_symlink *m, uint8_t *buf,
			   size_t cap);
int vmic_fc_symlink_decode(const uint8_t *p, size_t n,
			   struct vmic_fc_symlink *m);

void vmic_fc_hash_hex(const uint8_t hash[VMIC_FC_HASH_LEN], char out[33]);

#endif
