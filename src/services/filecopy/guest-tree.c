/* SPDX-License-Identifier: MIT */
/*
 * File Copy, guest half: the directories and symbolic links of a tree
 * copied into the guest (`vmic copy -r`), beneath [filecopy] write-dirs
 * like every file. A directory is made, or taken when it exists and the
 * host allows that, then given its mode and mtime (the host sends its
 * mtime again once the files inside are written, as that changes it).
 * A symbolic link is made under a temporary name and renamed into place,
 * so it appears whole and replaces nothing unless asked. Both are a few
 * system calls on metadata, done on the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "services/filecopy/guest.h"

static int reply_done(struct guest_conn *c, const struct vmic_frame *f,
		      uint8_t flags)
{
	struct vmic_fc_reply rep = { .stage = VMIC_FC_DONE, .flags = flags };
	uint8_t buf[VMIC_HDR_SIZE + VMIC_FC_REPLY_LEN];
	int n = vmic_fc_reply_encode(&rep, buf + VMIC_HDR_SIZE,
				     VMIC_FC_REPLY_LEN);

	if (n < 0)
		return 0;
	return agent_reply(c, f, VMIC_FC_REPLY, buf, (size_t)n);
}

static int refuse(struct guest_conn *c, const struct vmic_frame *f,
		  uint16_t code, const char *what, const char *err)
{
	log_warning("filecopy: refused %s: %s", what, err);
	return agent_reply_error(c, f, code, "%s", err);
}

/* A sentence for errno e of an operation on path. */
static uint16_t say(int e, const char *path, char *err, size_t n)
{
	snprintf(err, n, "%.512s: %s in the guest", path,
		 e == EEXIST   ? "exists (copy with --force to replace it)"
		 : e == EACCES ? "permission denied"
			       : strerror(e));
	return e == EEXIST || e == ENOTDIR || e == ELOOP ? VMIC_E_REFUSED
							 : VMIC_E_FAILED;
}

static void set_times(int fd, const char *leaf, int64_t mtime_ns, int flags)
{
	struct timespec ts[2] = {
		{ .tv_nsec = UTIME_OMIT },
		{ .tv_sec = mtime_ns / 1000000000,
		  .tv_nsec = mtime_ns % 1000000000 },
	};

	if (mtime_ns == VMIC_FC_MTIME_NONE)
		return;
	if (ts[1].tv_nsec < 0) {
		ts[1].tv_sec--;
		ts[1].tv_nsec += 1000000000;
	}
	utimensat(fd, leaf, ts, flags);
}

int fc_guest_mkdir(struct guest_conn *c, struct fc_guest *st,
		   const struct vmic_frame *f)
{
	const struct fc_guest_conf *conf = agent_conf(st->g, FC_GUEST_ID);
	struct vmic_fc_mkdir m;
	struct fc_dest d;
	bool existed = false;
	char err[1024];
	uint16_t code;
	int rc, dfd;

	if (vmic_fc_mkdir_decode(f->payload, f->length, &m) < 0)
		return agent_reply_error(c, f, VMIC_E_MALFORMED,
					 "filecopy mkdir does not decode");
	rc = fc_guest_resolve_leaf(conf->write_dirs, agent_config_path(st->g),
				   m.path, m.flags & VMIC_FC_F_PARENTS, &d, err,
				   sizeof(err));
	if (rc == 1) /* one of write-dirs itself: there, and left as it is */
		return m.flags & VMIC_FC_F_EXISTS
			       ? reply_done(c, f, VMIC_FC_F_EXISTS)
			       : refuse(c, f, VMIC_E_REFUSED, m.path, err);
	if (rc)
		return refuse(c, f, (uint16_t)rc, m.path, err);
	if (mkdirat(d.dirfd, d.leaf, 0700) < 0) {
		if (errno != EEXIST || !(m.flags & VMIC_FC_F_EXISTS)) {
			code = say(errno, m.path, err, sizeof(err));
			close(d.dirfd);
			return refuse(c, f, code, m.path, err);
		}
		existed = true;
	}
	/* O_NOFOLLOW: a symlink in its place is no directory of ours. */
	dfd = openat(d.dirfd, d.leaf,
		     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 ||
	    ((m.flags & VMIC_FC_F_OWNER) && fchown(dfd, m.uid, m.gid) < 0) ||
	    fchmod(dfd, m.mode & VMIC_FC_MODE_MASK) < 0) {
		code = say(errno == ELOOP ? ENOTDIR : errno, m.path, err,
			   sizeof(err));
		if (dfd >= 0)
			close(dfd);
		close(d.dirfd);
		return refuse(c, f, code, m.path, err);
	}
	set_times(dfd, "", m.mtime_ns, AT_EMPTY_PATH);
	close(dfd);
	close(d.dirfd);
	return reply_done(c, f, existed ? VMIC_FC_F_EXISTS : 0);
}

int fc_guest_symlink(struct guest_conn *c, struct fc_guest *st,
		     const struct vmic_frame *f)
{
	const struct fc_guest_conf *conf = agent_conf(st->g, FC_GUEST_ID);
	static struct vmic_fc_symlink m;
	struct fc_dest d;
	char err[1024], tmp[64];
	uint16_t code;
	int rc;

	if (vmic_fc_symlink_decode(f->payload, f->length, &m) < 0)
		return agent_reply_error(c, f, VMIC_E_MALFORMED,
					 "filecopy symlink does not decode");
	rc = fc_guest_resolve_leaf(conf->write_dirs, agent_config_path(st->g),
				   m.path, false, &d, err, sizeof(err));
	if (rc)
		return refuse(c, f, rc == 1 ? VMIC_E_REFUSED : (uint16_t)rc,
			      m.path, err);
	snprintf(tmp, sizeof(tmp), FC_TMP_PREFIX "%s-%llu" FC_TMP_SUFFIX,
		 st->token, (unsigned long long)++st->counter);
	if (symlinkat(m.target, d.dirfd, tmp) < 0) {
		code = say(errno, m.path, err, sizeof(err));
		close(d.dirfd);
		return refuse(c, f, code, m.path, err);
	}
	if (syscall(SYS_renameat2, d.dirfd, tmp, d.dirfd, d.leaf,
		    m.flags & VMIC_FC_F_FORCE ? 0 : 1 /* NOREPLACE */) < 0) {
		code = say(errno, m.path, err, sizeof(err));
		unlinkat(d.dirfd, tmp, 0);
		close(d.dirfd);
		return refuse(c, f, code, m.path, err);
	}
	if ((m.flags & VMIC_FC_F_OWNER) &&
	    fchownat(d.dirfd, d.leaf, m.uid, m.gid, AT_SYMLINK_NOFOLLOW) < 0) {
		code = say(errno, m.path, err, sizeof(err));
		close(d.dirfd);
		return refuse(c, f, code, m.path, err);
	}
	set_times(d.dirfd, d.leaf, m.mtime_ns, AT_SYMLINK_NOFOLLOW);
	close(d.dirfd);
	return reply_done(c, f, 0);
}
