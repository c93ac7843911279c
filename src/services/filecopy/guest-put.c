/* SPDX-License-Identifier: MIT */
/*
 * File Copy, guest half: a file from the host (PUT, then COMMIT). The
 * bytes are written off the loop (the stream sink writes regular files on
 * the thread pool) into a temporary name in the destination directory,
 * hashed as they arrive; COMMIT brings the host's hash of what it read,
 * and only a file whose hash and length match is fsynced, given its mode
 * and mtime and renamed into place (renameat2 RENAME_NOREPLACE unless
 * the host said FORCE), again on the thread pool. Every other end
 * removes the temporary.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "services/filecopy/guest.h"
#include "services/filecopy/hash.h"
#include "services/filecopy/sparse.h"

struct fc_put {
	struct fc_put *next;
	struct fc_guest *st;
	uint64_t nonce; /* the session that asked */
	struct vmic_fc_put m;
	struct fc_dest d;
	char tmp[64];
	int fd;
	struct vmic_fdstream *sink; /* NULL once it ended */
	struct vmic_fc_hasher *hash;
	bool received;  /* the sink ended well: every byte is written */
	bool committed; /* COMMIT came */
	uint32_t commit_rid;
	struct vmic_fc_commit commit;
	bool working; /* the thread pool has it */
	bool orphan;  /* dropped while working: free when it is back */
	uv_work_t work;
	int work_err;
	char work_msg[1024];
};

static void unlink_list(struct fc_put *p)
{
	struct fc_put **pp = &p->st->puts;

	while (*pp && *pp != p)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = p->next;
		p->st->nputs--;
	}
}

/* Remove the temporary (when there is one) and free p. */
static void put_free(struct fc_put *p)
{
	if (p->tmp[0] && p->d.dirfd >= 0)
		unlinkat(p->d.dirfd, p->tmp, 0);
	if (p->fd >= 0)
		close(p->fd);
	if (p->d.dirfd >= 0)
		close(p->d.dirfd);
	vmic_fc_hasher_free(p->hash);
	free(p);
}

/* The connection of p's session, NULL when it ended. */
static struct guest_conn *conn_of(struct fc_put *p)
{
	struct guest_conn *c = agent_conn(p->st->g);

	if (!c || !agent_session_up(c) ||
	    agent_session(c)->peer_nonce != p->nonce)
		return NULL;
	return c;
}

static void reply_commit_error(struct fc_put *p, uint16_t code,
			       const char *msg)
{
	struct guest_conn *c = conn_of(p);
	struct vmic_frame f = { .service = FC_GUEST_ID,
				.request_id = p->commit_rid };

	if (c)
		agent_reply_error(c, &f, code, "%s", msg);
}

/* Keep the sentence of a put that failed before its COMMIT came. */
static void remember_failure(struct fc_put *p, uint16_t code, const char *msg)
{
	struct fc_failed *fl = &p->st->failed[p->st->failed_next];

	p->st->failed_next = (p->st->failed_next + 1) % FC_FAILED_KEEP;
	fl->stream_id = p->m.stream_id;
	fl->code = code;
	snprintf(fl->message, sizeof(fl->message), "%s", msg);
}

/* p failed: tell whoever waits, remove the temporary, free. */
static void put_fail(struct fc_put *p, uint16_t code, const char *msg)
{
	log_warning("filecopy: copy to %s failed: %s", p->m.path, msg);
	/* Gone before the host hears of it: whoever looks then finds
	 * nothing. */
	if (p->tmp[0] && p->d.dirfd >= 0)
		unlinkat(p->d.dirfd, p->tmp, 0);
	p->tmp[0] = '\0';
	if (p->committed)
		reply_commit_error(p, code, msg);
	else
		remember_failure(p, code, msg);
	unlink_list(p);
	put_free(p);
}

/* renameat2 by its system call: older C libraries (musl) lack the
 * wrapper. */
static int rename_beside(int dirfd, const char *from, const char *to,
			 unsigned flags)
{
	return (int)syscall(SYS_renameat2, dirfd, from, dirfd, to, flags);
}

static void put_work(uv_work_t *w)
{
	struct fc_put *p = w->data;
	struct timespec ts[2] = {
		{ .tv_nsec = UTIME_OMIT },
		{ .tv_sec = p->m.mtime_ns / 1000000000,
		  .tv_nsec = p->m.mtime_ns % 1000000000 },
	};
	unsigned flags = p->m.flags & VMIC_FC_F_FORCE ? 0 : RENAME_NOREPLACE;

	if (ts[1].tv_nsec < 0) {
		ts[1].tv_sec--;
		ts[1].tv_nsec += 1000000000;
	}
	p->work_err = 0;
	/* Holes first: punching changes the mtime set below. */
	if ((p->m.flags & VMIC_FC_F_SPARSE) &&
	    (p->work_err = vmic_fc_make_sparse(p->fd,
					       (off_t)p->commit.bytes)) < 0) {
		snprintf(p->work_msg, sizeof(p->work_msg),
			 "%.512s: cannot make it sparse in the guest: %s",
			 p->m.path, strerror(-p->work_err));
		return;
	}
	/* The owner before the mode: chown clears set-id bits. */
	if ((p->m.flags & VMIC_FC_F_OWNER) &&
	    fchown(p->fd, p->m.uid, p->m.gid) < 0) {
		p->work_err = -errno;
		snprintf(p->work_msg, sizeof(p->work_msg),
			 "%.512s: cannot give it owner %u:%u in the guest: %s",
			 p->m.path, p->m.uid, p->m.gid, strerror(errno));
		return;
	}
	if (fchmod(p->fd, p->m.mode & VMIC_FC_MODE_MASK) < 0 ||
	    futimens(p->fd, ts) < 0 || fsync(p->fd) < 0) {
		p->work_err = -errno;
		snprintf(p->work_msg, sizeof(p->work_msg),
			 "%.512s: cannot write it out in the guest: %s", p->m.path,
			 strerror(errno));
		return;
	}
	if (rename_beside(p->d.dirfd, p->tmp, p->d.leaf, flags) < 0) {
		p->work_err = -errno;
		snprintf(p->work_msg, sizeof(p->work_msg),
			 errno == EEXIST ? "%.512s exists in the guest: copy with "
					   "--force to replace it"
					 : "%.512s: cannot rename it into place in "
					   "the guest: %s",
			 p->d.leaf, strerror(errno));
		return;
	}
	p->tmp[0] = '\0';
	/* The new name is durable too once the directory is. */
	int dfd = openat(p->d.dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
}

static void put_after_work(uv_work_t *w, int status)
{
	struct fc_put *p = w->data;
	struct guest_conn *c;
	struct vmic_fc_reply rep = { .stage = VMIC_FC_DONE };
	uint8_t buf[VMIC_HDR_SIZE + VMIC_FC_REPLY_LEN];
	struct vmic_frame f = { .service = FC_GUEST_ID,
				.request_id = p->commit_rid };
	int n;

	p->working = false;
	if (status < 0 && !p->work_err) {
		p->work_err = status;
		snprintf(p->work_msg, sizeof(p->work_msg), "cancelled");
	}
	if (p->orphan) {
		put_free(p);
		return;
	}
	if (p->work_err) {
		put_fail(p, VMIC_E_FAILED, p->work_msg);
		return;
	}
	log_info("filecopy: wrote %s in %s (%llu bytes)", p->d.leaf, p->m.path,
		 (unsigned long long)p->commit.bytes);
	rep.size = p->commit.bytes;
	rep.mode = p->m.mode;
	rep.mtime_ns = p->m.mtime_ns;
	memcpy(rep.hash, p->commit.hash, VMIC_FC_HASH_LEN);
	n = vmic_fc_reply_encode(&rep, buf + VMIC_HDR_SIZE, VMIC_FC_REPLY_LEN);
	c = conn_of(p);
	if (c && n > 0)
		agent_reply(c, &f, VMIC_FC_REPLY, buf, (size_t)n);
	unlink_list(p);
	put_free(p);
}

/* Every byte is in and COMMIT came: check, then write out and rename. */
static void put_finish(struct fc_put *p)
{
	uint8_t mine[VMIC_FC_HASH_LEN];
	char msg[1024];
	int r;

	if (!p->received || !p->committed)
		return;
	vmic_fc_hasher_digest(p->hash, mine);
	if (vmic_fc_hasher_bytes(p->hash) != p->commit.bytes ||
	    memcmp(mine, p->commit.hash, VMIC_FC_HASH_LEN) != 0) {
		snprintf(msg, sizeof(msg),
			 "%.512s: the data was damaged on the way (%llu bytes "
			 "arrived of %llu, or their XXH3-128 differs); "
			 "nothing was written",
			 p->m.path,
			 (unsigned long long)vmic_fc_hasher_bytes(p->hash),
			 (unsigned long long)p->commit.bytes);
		put_fail(p, VMIC_E_FAILED, msg);
		return;
	}
	p->work.data = p;
	r = uv_queue_work(agent_loop(p->st->g), &p->work, put_work,
			  put_after_work);
	if (r < 0) {
		put_fail(p, VMIC_E_INTERNAL, "cannot queue the final write");
		return;
	}
	p->working = true;
}

static void sink_done(void *ud, struct vmic_fdstream *f, int err,
		      uint16_t code, const char *message)
{
	struct fc_put *p = ud;
	char msg[1024];

	(void)f;
	(void)code;
	p->sink = NULL;
	if (err < 0) {
		snprintf(msg, sizeof(msg), "%.512s: %s", p->m.path,
			 message && message[0] ? message
						: vmic_fdstream_strerror(err,
									 true));
		put_fail(p, VMIC_E_FAILED, msg);
		return;
	}
	p->received = true;
	put_finish(p);
}

static void sink_chunk(void *ud, const uint8_t *b, size_t n)
{
	struct fc_put *p = ud;

	vmic_fc_hasher_update(p->hash, b, n);
}

static const struct vmic_fdstream_ops sink_ops = {
	.on_done = sink_done,
	.on_chunk = sink_chunk,
};

/* The temporary in the destination directory, opened for writing. */
static int open_tmp(struct fc_put *p)
{
	for (int i = 0; i < 8; i++) {
		snprintf(p->tmp, sizeof(p->tmp), FC_TMP_PREFIX "%s-%llu"
			 FC_TMP_SUFFIX, p->st->token,
			 (unsigned long long)++p->st->counter);
		p->fd = openat(p->d.dirfd, p->tmp,
			       O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
				       O_NOFOLLOW,
			       0600);
		if (p->fd >= 0 || errno != EEXIST)
			break;
	}
	if (p->fd < 0) {
		p->tmp[0] = '\0';
		return -errno;
	}
	return 0;
}

static int reply_accepted(struct guest_conn *c, const struct vmic_frame *f)
{
	struct vmic_fc_reply rep = { .stage = VMIC_FC_ACCEPTED };
	uint8_t buf[VMIC_HDR_SIZE + VMIC_FC_REPLY_LEN];
	int n = vmic_fc_reply_encode(&rep, buf + VMIC_HDR_SIZE,
				     VMIC_FC_REPLY_LEN);

	if (n < 0)
		return 0;
	return agent_reply(c, f, VMIC_FC_REPLY, buf, (size_t)n);
}

/* Open the temporary and the stream; 0 or a VMIC_E_* with err said. */
static int put_open(struct guest_conn *c, struct fc_put *p, char *err,
		    size_t n)
{
	struct stat sb;
	int r;

	if (fstatat(p->d.dirfd, p->d.leaf, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(sb.st_mode) || !(p->m.flags & VMIC_FC_F_FORCE)) {
			snprintf(err, n, "%.512s exists in the guest%s", p->d.leaf,
				 S_ISDIR(sb.st_mode)
					 ? " and is a directory"
					 : ": copy with --force to replace it");
			return VMIC_E_REFUSED;
		}
	}
	r = open_tmp(p);
	if (r < 0) {
		snprintf(err, n, "%.512s: cannot create a file in the guest: %s",
			 p->m.path,
			 r == -EACCES ? "permission denied" : strerror(-r));
		return VMIC_E_FAILED;
	}
	p->hash = vmic_fc_hasher_new();
	if (!p->hash) {
		snprintf(err, n, "out of memory");
		return VMIC_E_INTERNAL;
	}
	r = vmic_fdstream_sink(agent_link(c), p->m.stream_id, FC_GUEST_ID,
			       p->fd, NULL, &sink_ops, p, &p->sink);
	if (r < 0) {
		agent_stream_error_text(c, r, err, n);
		return r == -EMFILE ? VMIC_E_BUSY : VMIC_E_FAILED;
	}
	return 0;
}

int fc_guest_put(struct guest_conn *c, struct fc_guest *st,
		 const struct vmic_frame *f)
{
	const struct fc_guest_conf *conf = agent_conf(st->g, FC_GUEST_ID);
	char err[1024];
	struct fc_put *p;
	int code;

	if (st->nputs >= FC_GUEST_TRANSFERS_MAX)
		return agent_reply_error(c, f, VMIC_E_BUSY,
					 "%d copies into this guest run "
					 "already; wait for one to end",
					 FC_GUEST_TRANSFERS_MAX);
	p = calloc(1, sizeof(*p));
	if (!p)
		return agent_reply_error(c, f, VMIC_E_INTERNAL,
					 "out of memory");
	p->st = st;
	p->fd = -1;
	p->nonce = agent_session(c)->peer_nonce;
	if (vmic_fc_put_decode(f->payload, f->length, &p->m) < 0) {
		free(p);
		return agent_reply_error(c, f, VMIC_E_MALFORMED,
					 "filecopy put does not decode");
	}
	code = fc_guest_resolve_put(conf->write_dirs, agent_config_path(st->g),
				    &p->m, &p->d, err, sizeof(err));
	if (!code)
		code = put_open(c, p, err, sizeof(err));
	if (code) {
		log_warning("filecopy: refused a copy to %s: %s", p->m.path, err);
		if (p->sink)
			vmic_fdstream_cancel(p->sink, VMIC_E_FAILED, err);
		put_free(p);
		return agent_reply_error(c, f, (uint16_t)code, "%s", err);
	}
	p->next = st->puts;
	st->puts = p;
	st->nputs++;
	return reply_accepted(c, f);
}

static struct fc_put *find_put(struct fc_guest *st, uint32_t id)
{
	for (struct fc_put *p = st->puts; p; p = p->next)
		if (p->m.stream_id == id && !p->committed)
			return p;
	return NULL;
}

int fc_guest_commit(struct guest_conn *c, struct fc_guest *st,
		    const struct vmic_frame *f)
{
	struct vmic_fc_commit m;
	struct fc_put *p;

	if (vmic_fc_commit_decode(f->payload, f->length, &m) < 0)
		return agent_reply_error(c, f, VMIC_E_MALFORMED,
					 "filecopy commit does not decode");
	p = find_put(st, m.stream_id);
	if (!p) {
		for (unsigned i = 0; i < FC_FAILED_KEEP; i++) {
			struct fc_failed *fl = &st->failed[i];

			if (fl->stream_id == m.stream_id) {
				fl->stream_id = 0;
				return agent_reply_error(c, f, fl->code, "%s",
							 fl->message);
			}
		}
		return agent_reply_error(c, f, VMIC_E_NO_STREAM,
					 "no copy with stream %u waits here",
					 m.stream_id);
	}
	p->committed = true;
	p->commit_rid = f->request_id;
	p->commit = m;
	put_finish(p);
	return 0;
}

void fc_guest_puts_drop(struct fc_guest *st)
{
	struct fc_put *p;

	while ((p = st->puts)) {
		st->puts = p->next;
		st->nputs--;
		if (p->sink) {
			vmic_fdstream_cancel(p->sink, VMIC_E_FAILED,
					     "the session ended");
			p->sink = NULL;
		}
		if (p->working)
			p->orphan = true;
		else
			put_free(p);
	}
}
