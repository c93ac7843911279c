/* SPDX-License-Identifier: MIT */
/*
 * Hyper-V KVP pool files (references.md): DIR/.kvp_pool_0 .. _4, each a
 * plain array of 2560-byte records, `char key[512]; char value[2048];`,
 * NUL-padded, no header. This is how other software in a guest
 * (hv_kvp_daemon, cloud-init's Hyper-V reporting, the Azure agent)
 * reads and writes them, so the agent and its CLI use the same files.
 *
 * Writers in the wild lock differently: hv_kvp_daemon takes a whole-file
 * fcntl write lock, other tools flock(LOCK_EX); on Linux the two do not
 * exclude each other. Every access here takes both (flock first, then an
 * open-file-description fcntl lock, which conflicts with the classic
 * fcntl lock of hv_kvp_daemon), so it excludes writers of either style.
 * The calls block: the agent makes them on its worker thread, one at a
 * time, never on its loop.
 *
 * Reading: a record whose key or value field has no NUL, whose key is
 * empty, or whose text is not UTF-8 is skipped and counted; a key that
 * appears twice counts with its last value (a tool that updates by
 * appending); a partial record at the end (a writer that takes no lock)
 * is ignored until it is complete.
 *
 * The files are shared with other software, so they are opened as
 * common/safe-file.h says: a FIFO, a device or a symbolic link at a pool
 * file's path is refused, never waited on or followed. A file larger
 * than KVP_FILE_MAX_BYTES is refused (-EFBIG) before a byte of it is
 * read, and no read goes past that bound if the file grows meanwhile: a
 * sparse file of 16 GB took 15 s of CPU per read, with the lock held.
 */
#ifndef VMIC_SERVICES_KVP_POOLFILE_H
#define VMIC_SERVICES_KVP_POOLFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "services/kvp/table.h"

#include "services/kvp/kvp.h"

#define KVP_FILE_PREFIX ".kvp_pool_"
#define KVP_DIR_MODE 0755
#define KVP_FILE_MODE 0644
/* The most records a pool file may have: 131,072 (320 MiB). No pool of
 * the agent keeps more than 100,000 keys (KVP_GUEST_MAX_RECORDS); the
 * rest is room for the duplicates a tool that appends leaves. */
#define KVP_FILE_MAX_RECORDS 131072
#define KVP_FILE_MAX_BYTES ((uint64_t)KVP_FILE_MAX_RECORDS * VMIC_KVP_RECORD)

struct kvp_file_stats {
	size_t records;   /* whole records in the file */
	size_t skipped;   /* of those, not valid */
	size_t over;      /* valid ones beyond the maximum, not read */
	bool partial;     /* the file ends inside a record */
};

/* "DIR/.kvp_pool_N" into buf; -ENAMETOOLONG. */
int kvp_file_path(const char *dir, unsigned pool, char *buf, size_t n);
/* Create dir (0755) when missing; -errno. */
int kvp_dir_make(const char *dir);
/* Open (creating, 0644) pool file N of dir for reading and writing;
 * the fd or -errno (-ELOOP, -VMIC_ENOTREG: see common/safe-file.h). */
int kvp_file_open(const char *dir, unsigned pool);
/* Open pool file N of dir for reading only, never creating it: the fd,
 * -ENOENT when there is none, or -errno as kvp_file_open. */
int kvp_file_open_read(const char *dir, unsigned pool);
/* Lock fd against writers of both styles, shared or exclusive; blocks.
 * 0 or -errno (nothing held then). */
int kvp_file_lock(int fd, bool exclusive);
void kvp_file_unlock(int fd);

/* One record's 2560 bytes from a key and value (within kvp.h limits). */
void kvp_file_record(uint8_t *rec, const char *key, size_t klen,
		     const char *value, size_t vlen);
/*
 * Parse one record: true with its key and value (pointers into rec,
 * lengths) when valid.
 */
bool kvp_file_parse(const uint8_t *rec, const char **key, size_t *klen,
		    const char **value, size_t *vlen);

/*
 * Read every record of the locked file fd into t (cleared first), at
 * most max valid ones (0: no limit). 0, -ENOMEM, -EFBIG (the file is
 * larger than KVP_FILE_MAX_BYTES), or the -errno of read. The functions
 * below that read the file (set, delete, apply) return -EFBIG alike.
 */
int kvp_file_read(int fd, struct kvp_table *t, size_t max,
		  struct kvp_file_stats *st);
/* Make the locked file hold exactly t's records, in its order. -errno. */
int kvp_file_write(int fd, const struct kvp_table *t);
/*
 * Set key in the locked file: its record is rewritten in place, or
 * appended when the key is new; a key that appears more than once is
 * left once, with the new value. -errno.
 */
int kvp_file_set(int fd, const char *key, size_t klen, const char *value,
		 size_t vlen);
/* Remove every record of key from the locked file: 1 when there was
 * one, 0 when not, or -errno. */
int kvp_file_delete(int fd, const char *key, size_t klen);
/*
 * Apply changes to the locked file in one pass over it: each key of sets
 * gets its value (its record rewritten in place, or appended when new),
 * the records of each key of deletes go, and a key that appears more
 * than once is left once. Only the changed records are written unless
 * records go, in which case the rest of the file moves up. The changes
 * of a few keys to a pool of 10,000 records cost a read of the file and
 * a few writes, not a rewrite. -errno.
 */
int kvp_file_apply(int fd, const struct kvp_table *sets,
		   const struct kvp_table *deletes);

#endif
