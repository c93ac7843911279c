/* SPDX-License-Identifier: MIT */
/*
 * File Copy, guest half: the listing of a tree for `vmic copy -r
 * --from-guest` (LIST). The directory is opened beneath [filecopy]
 * read-dirs like a file, then walked on the thread pool with openat and
 * O_NOFOLLOW from that descriptor (symbolic links are listed, never
 * followed, so the walk stays inside), into an anonymous memory file
 * that is then sent like a file (fc_guest_send). Each entry (protocol.md,
 * "File Copy"): u8 kind, u32 mode, i64 mtime, u64 size, str path
 * relative to the top ("" for the top), str link target. Bounded: 64
 * levels, 1,000,000 entries, 64 MiB of listing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/wire.h"
#include "services/filecopy/guest.h"

#define LIST_DEPTH_MAX 64
#define LIST_ENTRIES_MAX 1000000u
#define LIST_BYTES_MAX (64u * 1024 * 1024)
#define LIST_BUF (64u * 1024)

struct fc_list {
	uv_work_t work;
	struct fc_guest *st;
	uint64_t nonce;
	uint32_t rid, stream_id;
	int root, out;
	int err;
	char msg[640];
	uint64_t entries, bytes;
	size_t used;
	uint8_t buf[LIST_BUF];
	char path[VMIC_FC_PATH_MAX + 1];
	struct vmic_fc_reply rep;
};

static int flush_out(struct fc_list *l)
{
	size_t off = 0;

	while (off < l->used) {
		ssize_t w = write(l->out, l->buf + off, l->used - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -errno;
		off += (size_t)w;
	}
	l->used = 0;
	return 0;
}

static int fail(struct fc_list *l, int err, const char *what)
{
	if (!l->err) {
		l->err = err;
		snprintf(l->msg, sizeof(l->msg), "%.512s: %s", what,
			 strerror(-err));
	}
	return err;
}

static int put_entry(struct fc_list *l, uint8_t kind, const struct stat *sb,
		     const char *rel, const char *target)
{
	uint8_t rec[1 + 4 + 8 + 8 + 4 + 4 + 2 + VMIC_FC_PATH_MAX + 2 +
		    VMIC_FC_PATH_MAX];
	struct vmic_wr w;

	if (++l->entries > LIST_ENTRIES_MAX)
		return fail(l, -EFBIG, "more than 1,000,000 entries");
	vmic_wr_init(&w, rec, sizeof(rec));
	vmic_wr_u8(&w, kind);
	vmic_wr_u32(&w, sb->st_mode & VMIC_FC_MODE_MASK);
	vmic_wr_i64(&w, (int64_t)sb->st_mtim.tv_sec * 1000000000 +
				sb->st_mtim.tv_nsec);
	vmic_wr_u64(&w, (uint64_t)sb->st_size);
	vmic_wr_u32(&w, sb->st_uid); /* for --preserve */
	vmic_wr_u32(&w, sb->st_gid);
	vmic_wr_str(&w, rel, VMIC_FC_PATH_MAX);
	vmic_wr_str(&w, target, VMIC_FC_PATH_MAX);
	if (w.err)
		return fail(l, -ENAMETOOLONG, rel);
	if ((l->bytes += w.off) > LIST_BYTES_MAX)
		return fail(l, -EFBIG, "a listing over 64 MiB");
	if (l->used + w.off > LIST_BUF && flush_out(l) < 0)
		return fail(l, -errno, "writing the listing");
	memcpy(l->buf + l->used, rec, w.off);
	l->used += w.off;
	return 0;
}

static int walk(struct fc_list *l, int dfd, const char *prefix, int depth);

static int walk_entry(struct fc_list *l, int dfd, const char *name,
		      const char *rel, int depth)
{
	char target[VMIC_FC_PATH_MAX + 1] = "";
	struct stat sb;
	ssize_t n;
	int child, r;

	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return fail(l, -errno, rel);
	if (S_ISLNK(sb.st_mode)) {
		n = readlinkat(dfd, name, target, sizeof(target) - 1);
		if (n < 0)
			return fail(l, -errno, rel);
		target[n] = '\0';
		return put_entry(l, VMIC_FC_ENTRY_LINK, &sb, rel, target);
	}
	if (!S_ISDIR(sb.st_mode))
		return put_entry(l,
				 S_ISREG(sb.st_mode) ? VMIC_FC_ENTRY_FILE
						     : VMIC_FC_ENTRY_OTHER,
				 &sb, rel, "");
	r = put_entry(l, VMIC_FC_ENTRY_DIR, &sb, rel, "");
	if (r)
		return r;
	if (depth >= LIST_DEPTH_MAX)
		return fail(l, -ELOOP, "deeper than 64 levels");
	child = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					  O_CLOEXEC);
	if (child < 0)
		return fail(l, -errno, rel);
	return walk(l, child, rel, depth + 1);
}

/* Every entry below dfd (taken), directories before what they hold. */
static int walk(struct fc_list *l, int dfd, const char *prefix, int depth)
{
	char rel[VMIC_FC_PATH_MAX + 2];
	struct dirent *e;
	DIR *d = fdopendir(dfd);
	int r = 0;

	if (!d) {
		close(dfd);
		return fail(l, -errno, prefix[0] ? prefix : l->path);
	}
	while (!r && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(rel, sizeof(rel), "%s%s%s", prefix,
				     prefix[0] ? "/" : "", e->d_name) >
		    VMIC_FC_PATH_MAX) {
			r = fail(l, -ENAMETOOLONG, e->d_name);
			break;
		}
		r = walk_entry(l, dirfd(d), e->d_name, rel, depth);
	}
	closedir(d);
	return r;
}

static void list_work(uv_work_t *w)
{
	struct fc_list *l = w->data;
	struct stat sb;
	int dup_root;

	if (fstat(l->root, &sb) < 0 ||
	    put_entry(l, VMIC_FC_ENTRY_DIR, &sb, "", "") < 0)
		return (void)fail(l, -errno, l->path);
	l->rep.mode = sb.st_mode & VMIC_FC_MODE_MASK;
	l->rep.mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 +
			  sb.st_mtim.tv_nsec;
	dup_root = fcntl(l->root, F_DUPFD_CLOEXEC, 0);
	if (dup_root < 0)
		return (void)fail(l, -errno, l->path);
	if (walk(l, dup_root, "", 0) == 0 && flush_out(l) < 0)
		fail(l, -errno, "writing the listing");
	if (!l->err && lseek(l->out, 0, SEEK_SET) < 0)
		fail(l, -errno, "the listing");
}

static void list_done(uv_work_t *w, int status)
{
	struct fc_list *l = w->data;
	struct guest_conn *c = agent_conn(l->st->g);
	struct vmic_frame f = { .service = FC_GUEST_ID, .request_id = l->rid };

	close(l->root);
	if (!c || !agent_session_up(c) ||
	    agent_session(c)->peer_nonce != l->nonce) {
		close(l->out);
	} else if (status < 0 || l->err) {
		close(l->out);
		log_warning("filecopy: cannot list %s: %s", l->path, l->msg);
		agent_reply_error(c, &f, VMIC_E_FAILED, "listing %.512s: %s",
				  l->path, l->err ? l->msg : "cancelled");
	} else {
		l->rep.stage = VMIC_FC_ACCEPTED;
		l->rep.size = l->bytes;
		fc_guest_send(c, l->st, l->rid, l->stream_id, l->out, l->path,
			      &l->rep);
	}
	free(l);
}

int fc_guest_list(struct guest_conn *c, struct fc_guest *st,
		  const struct vmic_frame *f)
{
	const struct fc_guest_conf *conf = agent_conf(st->g, FC_GUEST_ID);
	struct vmic_fc_get m;
	struct fc_list *l;
	uint16_t code;
	char err[1024];
	int root;

	if (vmic_fc_get_decode(f->payload, f->length, &m) < 0)
		return agent_reply_error(c, f, VMIC_E_MALFORMED,
					 "filecopy list does not decode");
	if (st->ngets >= FC_GUEST_TRANSFERS_MAX)
		return agent_reply_error(c, f, VMIC_E_BUSY,
					 "%d copies out of this guest run "
					 "already; wait for one to end",
					 FC_GUEST_TRANSFERS_MAX);
	root = fc_guest_open_get(conf->read_dirs, agent_config_path(st->g),
				 m.path, true, &code, err, sizeof(err));
	if (root < 0) {
		log_warning("filecopy: refused to list %s: %s", m.path, err);
		return agent_reply_error(c, f, code, "%s", err);
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		close(root);
		return agent_reply_error(c, f, VMIC_E_INTERNAL,
					 "out of memory");
	}
	l->out = (int)syscall(SYS_memfd_create, "vmic-list", MFD_CLOEXEC);
	if (l->out < 0) {
		close(root);
		free(l);
		return agent_reply_error(c, f, VMIC_E_FAILED,
					 "cannot hold a listing: %s",
					 strerror(errno));
	}
	l->st = st;
	l->root = root;
	l->rid = f->request_id;
	l->stream_id = m.stream_id;
	l->nonce = agent_session(c)->peer_nonce;
	snprintf(l->path, sizeof(l->path), "%s", m.path);
	l->work.data = l;
	if (uv_queue_work(agent_loop(st->g), &l->work, list_work,
			  list_done) < 0) {
		close(root);
		close(l->out);
		free(l);
		return agent_reply_error(c, f, VMIC_E_INTERNAL,
					 "cannot queue the listing");
	}
	return 0;
}
