/* SPDX-License-Identifier: MIT */
#include "services/kvp/poolfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/safe-file.h"
#include "common/utf8.h"
#include "services/kvp/kvp.h"

/* Records per read or write. */
#define CHUNK 64
#define CHUNK_BYTES ((size_t)CHUNK * VMIC_KVP_RECORD)
/* A read stops at the bound on a chunk's edge (read_chunk). */
_Static_assert(KVP_FILE_MAX_RECORDS % CHUNK == 0,
	       "the pool file bound is whole chunks");

#ifndef F_OFD_SETLKW
#define F_OFD_SETLKW 38 /* Linux 3.15; older libc headers lack it */
#endif

int kvp_file_path(const char *dir, unsigned pool, char *buf, size_t n)
{
	int r = snprintf(buf, n, "%s/" KVP_FILE_PREFIX "%u", dir, pool);

	return r < 0 || (size_t)r >= n ? -ENAMETOOLONG : 0;
}

int kvp_dir_make(const char *dir)
{
	if (mkdir(dir, KVP_DIR_MODE) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* The size is checked where the file is read (scan): a whole write
 * needs none, and it cuts an oversized file back to size. */
static int open_pool(const char *dir, unsigned pool, int flags)
{
	char path[4096];
	int r = kvp_file_path(dir, pool, path, sizeof(path));

	if (r < 0)
		return r;
	return vmic_file_open(path, flags, KVP_FILE_MODE, 0);
}

int kvp_file_open(const char *dir, unsigned pool)
{
	return open_pool(dir, pool, O_RDWR | O_CREAT);
}

int kvp_file_open_read(const char *dir, unsigned pool)
{
	return open_pool(dir, pool, O_RDONLY);
}

/* The fcntl lock over the whole file: an OFD lock where the kernel has
 * them (it conflicts with hv_kvp_daemon's classic one, and is not shared
 * by the threads of one process), the classic one elsewhere. */
static int fcntl_lock(int fd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };
	int r;

	do
		r = fcntl(fd, F_OFD_SETLKW, &fl);
	while (r < 0 && errno == EINTR);
	if (r < 0 && errno == EINVAL) {
		do
			r = fcntl(fd, F_SETLKW, &fl);
		while (r < 0 && errno == EINTR);
	}
	return r < 0 ? -errno : 0;
}

int kvp_file_lock(int fd, bool exclusive)
{
	int r;

	do
		r = flock(fd, exclusive ? LOCK_EX : LOCK_SH);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	r = fcntl_lock(fd, exclusive ? F_WRLCK : F_RDLCK);
	if (r < 0)
		flock(fd, LOCK_UN);
	return r;
}

void kvp_file_unlock(int fd)
{
	fcntl_lock(fd, F_UNLCK);
	flock(fd, LOCK_UN);
}

void kvp_file_record(uint8_t *rec, const char *key, size_t klen,
		     const char *value, size_t vlen)
{
	memset(rec, 0, VMIC_KVP_RECORD);
	memcpy(rec, key, MIN(klen, (size_t)VMIC_KVP_KEY_MAX));
	if (value)
		memcpy(rec + VMIC_KVP_FILE_KEY, value,
		       MIN(vlen, (size_t)VMIC_KVP_VALUE_MAX));
}

bool kvp_file_parse(const uint8_t *rec, const char **key, size_t *klen,
		    const char **value, size_t *vlen)
{
	const uint8_t *kend = memchr(rec, '\0', VMIC_KVP_FILE_KEY);
	const uint8_t *val = rec + VMIC_KVP_FILE_KEY;
	const uint8_t *vend = memchr(val, '\0', VMIC_KVP_FILE_VALUE);

	if (!kend || !vend || kend == rec)
		return false;
	*key = (const char *)rec;
	*klen = (size_t)(kend - rec);
	*value = (const char *)val;
	*vlen = (size_t)(vend - val);
	return vmic_utf8_valid(*key, *klen) && vmic_utf8_valid(*value, *vlen);
}

/* pread all of n bytes at off (fewer only at end of file); -errno. */
static ssize_t read_full(int fd, uint8_t *buf, size_t n, off_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, buf + got, n - got, off + (off_t)got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static int write_full(int fd, const uint8_t *buf, size_t n, off_t off)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = pwrite(fd, buf + done, n - done,
				   off + (off_t)done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		done += (size_t)r;
	}
	return 0;
}

/* The key of a record as (pointer, length), or false without a NUL. */
static bool record_key(const uint8_t *rec, const char **key, size_t *klen)
{
	const uint8_t *kend = memchr(rec, '\0', VMIC_KVP_FILE_KEY);

	if (!kend)
		return false;
	*key = (const char *)rec;
	*klen = (size_t)(kend - rec);
	return true;
}

/* Is the record's key exactly key[0..klen)? */
static bool record_has_key(const uint8_t *rec, const char *key, size_t klen)
{
	const char *k;
	size_t kl;

	return record_key(rec, &k, &kl) && kl == klen &&
	       memcmp(k, key, klen) == 0;
}

/* -EFBIG when the file says it is larger than a pool file may be. */
static int check_size(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	return (uint64_t)st.st_size > KVP_FILE_MAX_BYTES ? -EFBIG : 0;
}

/* Read the chunk at off; -EFBIG past KVP_FILE_MAX_BYTES (a file that
 * grew after check_size). */
static ssize_t read_chunk(int fd, uint8_t *buf, off_t off)
{
	ssize_t n;

	if ((uint64_t)off >= KVP_FILE_MAX_BYTES) {
		n = read_full(fd, buf, 1, off);
		return n > 0 ? -EFBIG : n;
	}
	return read_full(fd, buf,
			 (size_t)MIN((uint64_t)CHUNK_BYTES,
				     KVP_FILE_MAX_BYTES - (uint64_t)off),
			 off);
}

/* Call fn for every whole record, in order, with its index; a partial
 * record at the end sets *partial. fn returns < 0 to stop with it. */
static int scan(int fd, int (*fn)(void *ud, const uint8_t *rec, size_t i),
		void *ud, size_t *count, bool *partial)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t i = 0;
	off_t off = 0;
	int r = check_size(fd);

	*partial = false;
	if (r < 0)
		return r;
	buf = malloc(CHUNK_BYTES);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read_chunk(fd, buf, off);

		if (n < 0)
			return (int)n;
		for (size_t at = 0; at + VMIC_KVP_RECORD <= (size_t)n;
		     at += VMIC_KVP_RECORD, i++) {
			r = fn(ud, buf + at, i);
			if (r < 0)
				return r;
		}
		if ((size_t)n % VMIC_KVP_RECORD)
			*partial = true;
		if ((size_t)n < CHUNK_BYTES)
			break;
		off += n;
	}
	*count = i;
	return 0;
}

/*
 * Move the records keep() keeps to the front of the file, in order,
 * chunk by chunk (what is written was read already); the file's new end
 * in *end. keep gets each whole record with its index and may rewrite it
 * in place. A partial record at the end goes.
 */
static int compact(int fd, bool (*keep)(void *ud, uint8_t *rec, size_t i),
		   void *ud, off_t *end)
{
	_cleanup_free_ uint8_t *buf = malloc(CHUNK_BYTES);
	off_t rd = 0, wr = 0;
	size_t i = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read_chunk(fd, buf, rd);
		size_t kept = 0;
		int r;

		if (n < 0)
			return (int)n;
		n -= n % VMIC_KVP_RECORD;
		for (size_t at = 0; at < (size_t)n; at += VMIC_KVP_RECORD, i++) {
			if (!keep(ud, buf + at, i))
				continue;
			if (kept != at)
				memmove(buf + kept, buf + at, VMIC_KVP_RECORD);
			kept += VMIC_KVP_RECORD;
		}
		r = write_full(fd, buf, kept, wr);
		if (r < 0)
			return r;
		wr += (off_t)kept;
		rd += n;
		if ((size_t)n < CHUNK_BYTES)
			break;
	}
	*end = wr;
	return 0;
}

struct read_ctx {
	struct kvp_table *t;
	size_t max;
	struct kvp_file_stats *st;
};

static int read_one(void *ud, const uint8_t *rec, size_t i UNUSED)
{
	struct read_ctx *c = ud;
	const char *k, *v;
	size_t kl, vl;

	if (!kvp_file_parse(rec, &k, &kl, &v, &vl)) {
		c->st->skipped++;
		return 0;
	}
	if (c->max && c->t->n >= c->max && !kvp_table_get(c->t, k, kl)) {
		c->st->over++;
		return 0;
	}
	return kvp_table_set(c->t, k, kl, v, vl, 0, NULL, NULL) < 0 ? -ENOMEM
								   : 0;
}

int kvp_file_read(int fd, struct kvp_table *t, size_t max,
		  struct kvp_file_stats *st)
{
	struct read_ctx c = { t, max, st };

	memset(st, 0, sizeof(*st));
	kvp_table_clear(t);
	return scan(fd, read_one, &c, &st->records, &st->partial);
}

int kvp_file_write(int fd, const struct kvp_table *t)
{
	_cleanup_free_ uint8_t *buf = malloc(CHUNK_BYTES);
	off_t off = 0;
	size_t fill = 0;
	int r;

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		const struct kvp_rec *rec = t->recs[i];

		kvp_file_record(buf + fill, kvp_rec_key(rec), rec->klen,
				kvp_rec_value(rec), rec->vlen);
		fill += VMIC_KVP_RECORD;
		if (fill == CHUNK_BYTES || i + 1 == t->n) {
			r = write_full(fd, buf, fill, off);
			if (r < 0)
				return r;
			off += (off_t)fill;
			fill = 0;
		}
	}
	return ftruncate(fd, off) < 0 ? -errno : 0;
}

struct find_ctx {
	const char *key;
	size_t klen;
	size_t matches;
	size_t first;
};

static int find_one(void *ud, const uint8_t *rec, size_t i)
{
	struct find_ctx *c = ud;

	if (record_has_key(rec, c->key, c->klen) && c->matches++ == 0)
		c->first = i;
	return 0;
}

/* Records of key: how many, and the index of the first. */
static int find_key(int fd, const char *key, size_t klen,
		    struct find_ctx *c, size_t *records)
{
	bool partial;

	*c = (struct find_ctx){ .key = key, .klen = klen };
	return scan(fd, find_one, c, records, &partial);
}

/* Keep every record but those of the find_ctx's key. */
static bool keep_other_keys(void *ud, uint8_t *rec, size_t i UNUSED)
{
	const struct find_ctx *c = ud;

	return !record_has_key(rec, c->key, c->klen);
}

/* Copy every record but those of key to the front; cut the file. */
static int compact_without(int fd, const char *key, size_t klen)
{
	struct find_ctx c = { .key = key, .klen = klen };
	off_t end = 0;
	int r = compact(fd, keep_other_keys, &c, &end);

	if (r < 0)
		return r;
	return ftruncate(fd, end) < 0 ? -errno : 0;
}

int kvp_file_set(int fd, const char *key, size_t klen, const char *value,
		 size_t vlen)
{
	uint8_t rec[VMIC_KVP_RECORD];
	struct find_ctx c;
	size_t records = 0;
	int r = find_key(fd, key, klen, &c, &records);

	if (r < 0)
		return r;
	kvp_file_record(rec, key, klen, value, vlen);
	if (c.matches == 1)
		return write_full(fd, rec, sizeof(rec),
				  (off_t)c.first * VMIC_KVP_RECORD);
	if (c.matches > 1) {
		r = compact_without(fd, key, klen);
		if (r < 0)
			return r;
		records -= c.matches;
	}
	/* Append; a partial record at the end is overwritten. */
	r = write_full(fd, rec, sizeof(rec), (off_t)records * VMIC_KVP_RECORD);
	if (r == 0 &&
	    ftruncate(fd, (off_t)(records + 1) * VMIC_KVP_RECORD) < 0)
		r = -errno;
	return r;
}

int kvp_file_delete(int fd, const char *key, size_t klen)
{
	struct find_ctx c;
	size_t records = 0;
	int r = find_key(fd, key, klen, &c, &records);

	if (r < 0)
		return r;
	if (c.matches == 0)
		return 0;
	r = compact_without(fd, key, klen);
	return r < 0 ? r : 1;
}

struct apply_ctx {
	const struct kvp_table *sets, *deletes;
	size_t *pos;   /* per key of sets: its last record, or SIZE_MAX */
	size_t removals; /* records that go (deleted keys, duplicates) */
};

static int apply_scan(void *ud, const uint8_t *rec, size_t i)
{
	struct apply_ctx *c = ud;
	const char *key;
	size_t klen, at;
	bool found;

	if (!record_key(rec, &key, &klen) || klen == 0)
		return 0;
	if (kvp_table_get(c->deletes, key, klen)) {
		c->removals++;
		return 0;
	}
	at = kvp_table_find(c->sets, key, klen, &found);
	if (!found)
		return 0;
	if (c->pos[at] != SIZE_MAX)
		c->removals++; /* an earlier record of the key goes */
	c->pos[at] = i;
	return 0;
}

/* Does record i (of key) stay? (keys of deletes go; of a set key only
 * its last record stays) */
static bool apply_keeps(const struct apply_ctx *c, const uint8_t *rec,
			size_t i, size_t *set_at)
{
	const char *key;
	size_t klen;
	bool found;

	*set_at = SIZE_MAX;
	if (!record_key(rec, &key, &klen) || klen == 0)
		return true;
	if (kvp_table_get(c->deletes, key, klen))
		return false;
	*set_at = kvp_table_find(c->sets, key, klen, &found);
	if (!found) {
		*set_at = SIZE_MAX;
		return true;
	}
	return c->pos[*set_at] == i;
}

/* compact()'s keep for an apply: the records that stay, a set key's
 * last record rewritten with its new value. */
static bool apply_keep(void *ud, uint8_t *rec, size_t i)
{
	const struct apply_ctx *c = ud;
	const struct kvp_rec *s;
	size_t set_at;

	if (!apply_keeps(c, rec, i, &set_at))
		return false;
	if (set_at != SIZE_MAX) {
		s = c->sets->recs[set_at];
		kvp_file_record(rec, kvp_rec_key(s), s->klen,
				kvp_rec_value(s), s->vlen);
	}
	return true;
}

int kvp_file_apply(int fd, const struct kvp_table *sets,
		   const struct kvp_table *deletes)
{
	uint8_t rec[VMIC_KVP_RECORD];
	struct apply_ctx c = { sets, deletes, NULL, 0 };
	size_t records = 0;
	bool partial, appended = false;
	off_t end;
	int r;

	c.pos = malloc((sets->n ? sets->n : 1) * sizeof(*c.pos));
	if (!c.pos)
		return -ENOMEM;
	for (size_t k = 0; k < sets->n; k++)
		c.pos[k] = SIZE_MAX;
	r = scan(fd, apply_scan, &c, &records, &partial);
	if (r < 0)
		goto out;
	end = (off_t)records * VMIC_KVP_RECORD;
	if (c.removals) {
		r = compact(fd, apply_keep, &c, &end);
	} else {
		for (size_t k = 0; r == 0 && k < sets->n; k++) {
			const struct kvp_rec *s = sets->recs[k];

			if (c.pos[k] == SIZE_MAX)
				continue;
			kvp_file_record(rec, kvp_rec_key(s), s->klen,
					kvp_rec_value(s), s->vlen);
			r = write_full(fd, rec, sizeof(rec),
				       (off_t)c.pos[k] * VMIC_KVP_RECORD);
		}
	}
	/* New keys at the end (over a half record a writer left). */
	for (size_t k = 0; r == 0 && k < sets->n; k++) {
		const struct kvp_rec *s = sets->recs[k];

		if (c.pos[k] != SIZE_MAX)
			continue;
		kvp_file_record(rec, kvp_rec_key(s), s->klen, kvp_rec_value(s),
				s->vlen);
		r = write_full(fd, rec, sizeof(rec), end);
		end += VMIC_KVP_RECORD;
		appended = true;
	}
	if (r == 0 && (c.removals || appended) && ftruncate(fd, end) < 0)
		r = -errno;
out:
	free(c.pos);
	return r;
}
