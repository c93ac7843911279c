/* SPDX-License-Identifier: MIT */
/*
 * The pool files, off the loop: one job at a time on libuv's worker
 * threads (the locks of poolfile.c may wait for another writer, and a
 * pool of 10,000 records is 25 MB), in this order of priority: the first
 * job (directory, files, the recorded id, pool 1), the id, writes of
 * pools 3, 0 and 2, a read of pool 1, the Auto facts. A job that becomes
 * due while another runs is remembered as a flag, so a burst of changes
 * costs one more job, not one per change.
 *
 * A whole write takes a snapshot of the pool's table (shared records,
 * see table.h), so the loop goes on changing the pool meanwhile; it is
 * done after a full copy from the host. Changes after that go into the
 * file record by record (kvp_file_apply): a key set in a pool of 10,000
 * costs a read of the file and one record's write, not 25 MB. Pool 1 is
 * read again whenever inotify reports a change of its file (another
 * program appended a record, or `vmic-guestd kvp set`); the difference
 * to what was read before is what goes to the host.
 *
 * The directory is shared with other software, so every file here is
 * opened as common/safe-file.h says (no FIFO is waited on, no symbolic
 * link followed, no pool file larger than KVP_FILE_MAX_BYTES read), and a
 * file that is refused is logged with its name. A job may still wait on
 * a lock another program holds for ever: the agent's stop does not wait
 * for it (guestd-main.c, the stop deadline; kvp_files_pending).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/safe-file.h"
#include "common/utf8.h"
#include "services/kvp/guest.h"

_Static_assert(KVP_FILE_MAX_RECORDS >= KVP_GUEST_MAX_RECORDS,
	       "a pool file the agent wrote can be read back");

/* A job's pool when what failed is the directory. */
#define DIR_ITSELF UINT_MAX

/* ---- the worker's side ---- */

/* The recorded VM id of dir into id ("" when none or unreadable); 0, or
 * -errno when the file is there but cannot be used (a FIFO, a symbolic
 * link, longer than an id). */
static int read_id(const char *dir, char *id, size_t n)
{
	char path[KVP_DIR_MAX + 32], buf[VMIC_KVP_ID_MAX + 2];
	ssize_t len;

	id[0] = '\0';
	snprintf(path, sizeof(path), "%s/" KVP_ID_FILE, dir);
	len = vmic_file_read_small(path, buf, sizeof(buf), sizeof(buf) - 1);
	if (len == -ENOENT)
		return 0;
	if (len <= 0)
		return (int)len;
	buf[strcspn(buf, "\n")] = '\0';
	if (vmic_utf8_valid(buf, strlen(buf)))
		snprintf(id, n, "%s", buf);
	return 0;
}

/* Record id beside the pools: a new file renamed over the old one. A
 * FIFO or a symbolic link planted at either name is replaced, never
 * written through. */
static int write_id(const char *dir, const char *id)
{
	char path[KVP_DIR_MAX + 32], tmp[KVP_DIR_MAX + 40];
	size_t len = strlen(id);
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/" KVP_ID_FILE, dir);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = vmic_file_create_new(tmp, KVP_FILE_MODE);
	if (fd < 0)
		return fd;
	if (write(fd, id, len) != (ssize_t)len || write(fd, "\n", 1) != 1)
		r = -EIO;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

/* Records in pool file p (for the log line about a cleared pool). */
static size_t file_records(const char *dir, unsigned p)
{
	char path[KVP_DIR_MAX + 32];
	struct stat st;

	if (kvp_file_path(dir, p, path, sizeof(path)) < 0 ||
	    lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	return (size_t)st.st_size / VMIC_KVP_RECORD;
}

/* Read pool p's file into job->table under a shared lock. */
static int job_read(struct kvp_job *job, unsigned p)
{
	int fd, r;

	job->doing = "reading";
	job->pool = p;
	fd = kvp_file_open(job->dir, p);
	if (fd < 0)
		return fd;
	r = kvp_file_lock(fd, false);
	if (r == 0) {
		r = kvp_file_read(fd, &job->table, KVP_GUEST_MAX_RECORDS,
				  &job->st);
		kvp_file_unlock(fd);
	}
	close(fd);
	return r;
}

/* A whole pool into its file, or only the keys that changed. */
static int job_write(struct kvp_job *job, bool whole)
{
	int fd, r;

	job->doing = "writing";
	r = kvp_dir_make(job->dir);
	if (r < 0) {
		job->doing = "creating";
		job->pool = DIR_ITSELF;
		return r;
	}
	fd = kvp_file_open(job->dir, job->pool);
	if (fd < 0)
		return fd;
	r = kvp_file_lock(fd, true);
	if (r == 0) {
		r = whole ? kvp_file_write(fd, &job->table)
			  : kvp_file_apply(fd, &job->table, &job->deletes);
		kvp_file_unlock(fd);
	}
	close(fd);
	return r;
}

/* The directory and every pool file (0755, 0644, as hv_kvp_daemon makes
 * them), the recorded id, and pool 1. A file that cannot be made (one of
 * another kind is there) is noted and the rest done; err is pool 1's
 * read. */
static int job_init(struct kvp_job *job)
{
	int r;

	job->doing = "creating";
	r = kvp_dir_make(job->dir);
	if (r < 0) {
		job->pool = DIR_ITSELF;
		return r;
	}
	for (unsigned p = 0; p < VMIC_KVP_POOLS; p++) {
		int fd = kvp_file_open(job->dir, p);

		if (fd >= 0) {
			close(fd);
		} else if (!job->create_err) {
			job->create_err = fd;
			job->create_pool = p;
		}
	}
	job->id_err = read_id(job->dir, job->vm_id, sizeof(job->vm_id));
	job->host_records = file_records(job->dir, VMIC_KVP_EXTERNAL) +
			    file_records(job->dir, VMIC_KVP_AUTO_EXTERNAL);
	return job_read(job, VMIC_KVP_GUEST);
}

static void job_work(uv_work_t *w)
{
	struct kvp_job *job = w->data;

	switch (job->kind) {
	case KVP_JOB_INIT:
		job->err = job_init(job);
		break;
	case KVP_JOB_ID:
		job->doing = "recording the VM id in";
		job->err = write_id(job->dir, job->vm_id);
		break;
	case KVP_JOB_WRITE:
	case KVP_JOB_APPLY:
		job->err = job_write(job, job->kind == KVP_JOB_WRITE);
		break;
	case KVP_JOB_READ:
		job->err = job_read(job, VMIC_KVP_GUEST);
		break;
	case KVP_JOB_AUTO:
		kvp_auto_collect(&job->table);
		break;
	}
}

/* ---- the loop's side ---- */

/* What a job does, for the log and kvp_files_pending. */
static const char *const job_names[] = {
	[KVP_JOB_INIT] = "start-up",  [KVP_JOB_ID] = "VM id",
	[KVP_JOB_WRITE] = "write",    [KVP_JOB_APPLY] = "change",
	[KVP_JOB_READ] = "read",      [KVP_JOB_AUTO] = "Auto facts",
};

/*
 * A file of dir (name) could not be used. Lines are rate-limited unless
 * once: the start-up job's, which may have several to say at once.
 */
static void log_file_error(struct kvp_guest *k, bool once, const char *doing,
			   const char *dir, const char *name, int err)
{
	uint64_t held = 0;

	if (!once &&
	    !vmic_ratelimit_pass(&k->file_log, uv_now(agent_loop(k->g)), &held))
		return;
	if (err == -EFBIG)
		log_warning("kvp: %s %s/%s: it is larger than a pool file may "
			    "be (%d records of %d bytes, %llu MiB); it is not "
			    "read%s",
			    doing, dir, name, KVP_FILE_MAX_RECORDS,
			    VMIC_KVP_RECORD,
			    (unsigned long long)(KVP_FILE_MAX_BYTES >> 20),
			    held ? " (and earlier failures)" : "");
	else
		log_warning("kvp: %s %s/%s: %s%s", doing, dir, name,
			    vmic_file_strerror(err),
			    held ? " (and earlier failures)" : "");
}

/* ".kvp_pool_N" into name; "" for the directory itself. */
static const char *pool_name(unsigned pool, char *name, size_t n)
{
	if (pool == DIR_ITSELF)
		return "";
	snprintf(name, n, KVP_FILE_PREFIX "%u", pool);
	return name;
}

/* Say what of a job failed: the start-up job's files, the id, and the
 * job's own file. */
static void file_failed(struct kvp_guest *k, const struct kvp_job *job)
{
	bool once = job->kind == KVP_JOB_INIT;
	char name[32];

	if (job->create_err < 0)
		log_file_error(k, once, "creating", job->dir,
			       pool_name(job->create_pool, name, sizeof(name)),
			       job->create_err);
	if (job->id_err < 0)
		log_file_error(k, once, "reading", job->dir, KVP_ID_FILE,
			       job->id_err);
	if (job->err < 0)
		log_file_error(k, once, job->doing ? job->doing : "using",
			       job->dir,
			       job->kind == KVP_JOB_ID
				       ? KVP_ID_FILE
				       : pool_name(job->pool, name,
						   sizeof(name)),
			       job->err);
}

/* Records that could not be read: worth a line now and then. */
static void note_skipped(struct kvp_guest *k, const struct kvp_job *job)
{
	uint64_t held;

	if (!job->st.skipped && !job->st.over)
		return;
	if (!vmic_ratelimit_pass(&k->file_log, uv_now(agent_loop(k->g)), &held))
		return;
	log_warning("kvp: %s/" KVP_FILE_PREFIX "1: %zu records are not valid "
		    "(no NUL in a field, an empty key or not UTF-8) and %zu "
		    "are beyond %d; they are not sent",
		    job->dir, job->st.skipped, job->st.over,
		    KVP_GUEST_MAX_RECORDS);
}

struct diff_ctx {
	struct kvp_guest *k;
	unsigned pool;
};

static void on_diff(void *ud, const char *key, size_t klen,
		    const struct kvp_rec *now UNUSED)
{
	struct diff_ctx *d = ud;

	kvp_guest_pool_changed(d->k, d->pool, key, klen);
}

/* A table the worker read or collected replaces pool p. */
static void take_table(struct kvp_guest *k, struct kvp_job *job, unsigned p)
{
	struct diff_ctx d = { k, p };

	if (kvp_table_diff(&k->pools[p], &job->table, on_diff, &d) == 0)
		return;
	kvp_table_swap(&k->pools[p], &job->table);
	if (p == VMIC_KVP_AUTO)
		k->write_due[p] = true;
	kvp_guest_pump(k);
}

static void on_dir_event(uv_fs_event_t *h, const char *name, int events,
			 int status);

static void watch_start(struct kvp_guest *k)
{
	int r;

	if (k->watching)
		return;
	uv_fs_event_init(agent_loop(k->g), &k->watch);
	k->watch.data = k;
	k->watching = true;
	k->handles++;
	r = uv_fs_event_start(&k->watch, on_dir_event, k->conf->dir, 0);
	if (r < 0)
		log_warning("kvp: cannot watch %s (%s): changes of "
			    KVP_FILE_PREFIX "1 by other programs reach the "
			    "host only when the agent restarts",
			    k->conf->dir, uv_strerror(r));
}

static void job_done(uv_work_t *w, int status UNUSED)
{
	struct kvp_job *job = w->data;
	struct kvp_guest *k = job->k;

	k->job = NULL;
	if (!k->stopping) {
		file_failed(k, job);
		switch (job->kind) {
		case KVP_JOB_INIT:
			if (!k->vm_id[0])
				snprintf(k->vm_id, sizeof(k->vm_id), "%s",
					 job->vm_id);
			k->host_records = job->host_records;
			k->initialised = true;
			if (job->err == 0) {
				note_skipped(k, job);
				take_table(k, job, VMIC_KVP_GUEST);
			}
			watch_start(k);
			kvp_guest_initialised(k);
			break;
		case KVP_JOB_READ:
			if (job->err == 0) {
				note_skipped(k, job);
				take_table(k, job, VMIC_KVP_GUEST);
			}
			break;
		case KVP_JOB_AUTO:
			take_table(k, job, VMIC_KVP_AUTO);
			break;
		default:
			break;
		}
	}
	kvp_table_clear(&job->table);
	kvp_table_clear(&job->deletes);
	free(job);
	if (!k->stopping)
		kvp_files_kick(k);
}

/* The next due job, or false. Pools being copied from the host wait for
 * the end of the copy. */
static bool next_job(struct kvp_guest *k, enum kvp_job_kind *kind,
		     unsigned *pool)
{
	static const unsigned write_order[] = { VMIC_KVP_AUTO_EXTERNAL,
						VMIC_KVP_EXTERNAL,
						VMIC_KVP_AUTO };

	if (!k->initialised)
		return false;
	if (k->id_due) {
		k->id_due = false;
		*kind = KVP_JOB_ID;
		return true;
	}
	for (size_t i = 0; i < ARRAY_SIZE(write_order); i++) {
		unsigned p = write_order[i];

		if (k->in[p].copying)
			continue;
		if (k->write_due[p]) {
			k->write_due[p] = false;
			kvp_table_clear(&k->file_dirty[p]);
			*kind = KVP_JOB_WRITE;
			*pool = p;
			return true;
		}
		if (k->file_dirty[p].n) {
			*kind = KVP_JOB_APPLY;
			*pool = p;
			return true;
		}
	}
	if (k->read_due) {
		k->read_due = false;
		*kind = KVP_JOB_READ;
		return true;
	}
	if (k->auto_due) {
		k->auto_due = false;
		*kind = KVP_JOB_AUTO;
		return true;
	}
	return false;
}

/* The keys of pool that changed, with their values (copies: the job's
 * own), into sets and deletes; the noted keys are taken. */
static int take_changes(struct kvp_guest *k, unsigned pool,
			struct kvp_table *sets, struct kvp_table *deletes)
{
	struct kvp_table *d = &k->file_dirty[pool];

	for (size_t i = 0; i < d->n; i++) {
		const char *key = kvp_rec_key(d->recs[i]);
		size_t klen = d->recs[i]->klen;
		const struct kvp_rec *r = kvp_table_get(&k->pools[pool], key,
							klen);
		int ret = r ? kvp_table_set(sets, key, klen, kvp_rec_value(r),
					    r->vlen, 0, NULL, NULL)
			    : kvp_table_set(deletes, key, klen, "", 0, 0,
					    NULL, NULL);

		if (ret < 0)
			return ret;
	}
	kvp_table_clear(d);
	return 0;
}

static void job_queue(struct kvp_guest *k, enum kvp_job_kind kind,
		      unsigned pool)
{
	struct kvp_job *job = calloc(1, sizeof(*job));
	int r;

	if (!job) {
		log_error("kvp: out of memory for a pool file job");
		return;
	}
	job->k = k;
	job->kind = kind;
	job->pool = pool;
	job->started_ms = uv_now(agent_loop(k->g));
	job->work.data = job;
	snprintf(job->dir, sizeof(job->dir), "%s", k->conf->dir);
	snprintf(job->vm_id, sizeof(job->vm_id), "%s", k->vm_id);
	kvp_table_init(&job->table);
	kvp_table_init(&job->deletes);
	if ((kind == KVP_JOB_WRITE &&
	     kvp_table_snapshot(&k->pools[pool], &job->table) < 0) ||
	    (kind == KVP_JOB_APPLY &&
	     take_changes(k, pool, &job->table, &job->deletes) < 0)) {
		/* Without memory: the whole file, next time. */
		k->write_due[pool] = true;
		kvp_table_clear(&job->table);
		kvp_table_clear(&job->deletes);
		free(job);
		return;
	}
	r = uv_queue_work(agent_loop(k->g), &job->work, job_work, job_done);
	if (r < 0) {
		log_error("kvp: cannot start a pool file job: %s",
			  uv_strerror(r));
		kvp_table_clear(&job->table);
		kvp_table_clear(&job->deletes);
		free(job);
		return;
	}
	k->job = job;
}

void kvp_files_kick(struct kvp_guest *k)
{
	enum kvp_job_kind kind;
	unsigned pool = 0;

	/* Frozen disks: the changes wait in memory until on_thaw. */
	if (k->stopping || k->job || agent_frozen(k->g) ||
	    !next_job(k, &kind, &pool))
		return;
	job_queue(k, kind, pool);
}

void kvp_files_start(struct kvp_guest *k)
{
	k->auto_due = true;
	job_queue(k, KVP_JOB_INIT, 0);
}

void kvp_files_pending(struct kvp_guest *k, char *buf, size_t n)
{
	const struct kvp_job *job = k->job;

	if (!job) {
		buf[0] = '\0';
		return;
	}
	snprintf(buf, n, "kvp: a pool file job (%s, %s) running for %.1f s",
		 job_names[job->kind], job->dir,
		 (double)(uv_now(agent_loop(k->g)) - job->started_ms) / 1000);
}

void kvp_files_stop(struct kvp_guest *k)
{
	if (k->watching) {
		k->watching = false;
		uv_close((uv_handle_t *)&k->watch, kvp_guest_handle_closed);
	}
}

/* inotify on the directory: another program (or our CLI) changed pool
 * 1's file; the other files are the agent's own. */
static void on_dir_event(uv_fs_event_t *h, const char *name,
			 int events UNUSED, int status)
{
	struct kvp_guest *k = h->data;

	if (status < 0 || k->stopping)
		return;
	if (name && strcmp(name, KVP_FILE_PREFIX "1") != 0)
		return;
	k->read_due = true;
	kvp_files_kick(k);
}
