/* SPDX-License-Identifier: MIT */
/*
 * Descriptors that come with request lines (docs/control.md,
 * "Descriptors"): a line declares how many with "fds": N, and they come
 * as SCM_RIGHTS with the line's bytes. The kernel hands them over with
 * the recvmsg that returns the first byte of the sendmsg that carried
 * them, so by the time a line is whole, its descriptors are here; each is
 * kept with the offset where the bytes it came with ended.
 *
 * A line takes the first N descriptors not claimed yet. One that came
 * with the bytes of a line (or of an earlier one) and that no line
 * claimed means the client and the daemon no longer agree which
 * descriptor is which: the client gets an error and is closed. So do
 * clients that send more than CTL_FDS_MAX before a line claims them, or
 * more with one message than fit (MSG_CTRUNC: the kernel closed the
 * rest).
 *
 * Then the descriptors of a request are checked against what its command
 * takes (struct ctl_fd_spec): how many, what kind of file (fstat,
 * isatty, SO_TYPE) and what they are open for (F_GETFL). The daemon
 * never opens a path a client names: the client opens its files with its
 * own rights, and hands over descriptors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "ctl-internal.h"

void ctl_fds_close(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

void ctl_fds_drop(struct ctl_client *c)
{
	ctl_fds_close(c->fds, c->nfds);
	c->ctl->fds_pending -= c->nfds;
	c->nfds = 0;
}

/* The descriptors of one SCM_RIGHTS message into got (the rest closed);
 * how many there were in all. */
static unsigned collect_fds(struct msghdr *msg, int *got, unsigned room,
			    unsigned *ngot)
{
	unsigned total = 0;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm;
	     cm = CMSG_NXTHDR(msg, cm)) {
		size_t n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(fd));
			total++;
			if (*ngot < room)
				got[(*ngot)++] = fd;
			else
				close(fd);
		}
	}
	return total;
}

int ctl_fds_receive(struct ctl_client *c, struct msghdr *msg, uint64_t at,
		    char *why, size_t n)
{
	struct ctl *ctl = c->ctl;
	int got[CTL_FDS_MAX];
	unsigned ngot = 0, total;

	total = collect_fds(msg, got, CTL_FDS_MAX, &ngot);
	if (msg->msg_flags & MSG_CTRUNC) {
		ctl_fds_close(got, ngot);
		snprintf(why, n,
			 "more descriptors came with one message than a "
			 "request may carry (%d), or vmic-hostd could not "
			 "receive them (its open file limit); the ones that "
			 "came were closed",
			 CTL_FDS_MAX);
		return -EPROTO;
	}
	if (total == 0)
		return 0;
	if (c->nfds + ngot > CTL_FDS_MAX || total > ngot) {
		ctl_fds_close(got, ngot);
		snprintf(why, n,
			 "%u descriptors came before a request line claimed "
			 "them; a request carries at most %d",
			 c->nfds + total, CTL_FDS_MAX);
		return -EMFILE;
	}
	if (ctl->fds_pending + ngot > CTL_FDS_PENDING_TOTAL) {
		ctl_fds_close(got, ngot);
		snprintf(why, n,
			 "vmic-hostd holds %u descriptors of request lines "
			 "not read yet, the most it keeps for all clients; "
			 "try again",
			 ctl->fds_pending);
		return -ENFILE;
	}
	for (unsigned i = 0; i < ngot; i++) {
		c->fds[c->nfds] = got[i];
		c->fds_at[c->nfds] = at;
		c->nfds++;
	}
	ctl->fds_pending += ngot;
	return 0;
}

int ctl_fds_claim(struct ctl_client *c, unsigned declared, uint64_t end,
		  int *out, char *why, size_t n)
{
	unsigned extra = 0;

	if (declared > c->nfds) {
		snprintf(why, n,
			 "the request line declares %u descriptor%s "
			 "(\"fds\"), but %u came with it; send them as "
			 "SCM_RIGHTS with the line's first byte",
			 declared, declared == 1 ? "" : "s", c->nfds);
		return -EPROTO;
	}
	/* Came with the bytes of this line or before, and not declared. */
	for (unsigned i = declared; i < c->nfds; i++)
		extra += c->fds_at[i] <= end;
	if (extra) {
		snprintf(why, n,
			 "%u descriptor%s came with a request line that does "
			 "not declare %s; a line says how many descriptors "
			 "come with it with \"fds\": N",
			 extra, extra == 1 ? "" : "s",
			 extra == 1 ? "it" : "them");
		return -EPROTO;
	}
	if (declared == 0)
		return 0;
	memcpy(out, c->fds, declared * sizeof(int));
	memmove(c->fds, c->fds + declared,
		(c->nfds - declared) * sizeof(c->fds[0]));
	memmove(c->fds_at, c->fds_at + declared,
		(c->nfds - declared) * sizeof(c->fds_at[0]));
	c->nfds -= declared;
	c->ctl->fds_pending -= declared;
	return 0;
}

/* ---- what a descriptor is, against what a command takes ---- */

static const struct {
	uint8_t kind;
	const char *name;
} kind_names[] = {
	{ CTL_FD_FILE, "a regular file" },
	{ CTL_FD_PIPE, "a pipe" },
	{ CTL_FD_SOCKET, "a stream socket" },
	{ CTL_FD_TTY, "a terminal" },
	{ CTL_FD_CHAR, "a character device" },
};

/* "a regular file, a pipe or a terminal" for the kinds in mask. */
static void describe_kinds(uint8_t mask, char *buf, size_t n)
{
	unsigned total = 0, done = 0;
	size_t off = 0;

	for (size_t i = 0; i < ARRAY_SIZE(kind_names); i++)
		total += (mask & kind_names[i].kind) != 0;
	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(kind_names); i++) {
		if (!(mask & kind_names[i].kind))
			continue;
		done++;
		off += (size_t)snprintf(buf + off, off < n ? n - off : 0,
					"%s%s",
					done == 1	   ? ""
					: done == total ? " or "
							: ", ",
					kind_names[i].name);
		if (off >= n)
			return;
	}
}

static const char *describe_access(uint8_t access)
{
	if ((access & CTL_FD_READ) && (access & CTL_FD_WRITE))
		return "open for reading and writing";
	if (access & CTL_FD_WRITE)
		return "open for writing";
	if (access & CTL_FD_READ)
		return "open for reading";
	return "open";
}

/* "source: a regular file or a pipe, open for reading" */
static void describe_spec(const struct ctl_fd_spec *spec, char *buf,
			  size_t n)
{
	char kinds[160];

	describe_kinds(spec->kinds, kinds, sizeof(kinds));
	snprintf(buf, n, "%s: %s, %s", spec->name, kinds,
		 describe_access(spec->access));
}

/* What fd is: one enum ctl_fd_kind, or 0 with its name in *other. */
static uint8_t fd_kind(int fd, const struct stat *st, const char **other)
{
	int type = 0;
	socklen_t len = sizeof(type);

	*other = "a file of an unknown kind";
	if (S_ISREG(st->st_mode))
		return CTL_FD_FILE;
	if (S_ISFIFO(st->st_mode))
		return CTL_FD_PIPE;
	if (S_ISSOCK(st->st_mode)) {
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
		    type == SOCK_STREAM)
			return CTL_FD_SOCKET;
		*other = "a socket that is not a stream socket";
		return 0;
	}
	if (S_ISCHR(st->st_mode))
		return isatty(fd) ? CTL_FD_TTY : CTL_FD_CHAR;
	if (S_ISDIR(st->st_mode))
		*other = "a directory";
	else if (S_ISBLK(st->st_mode))
		*other = "a block device";
	return 0;
}

/* Does fd fit spec? 0, or -EINVAL with what it is instead in why. */
static int check_one(int fd, const struct ctl_fd_spec *spec, char *why,
		     size_t n)
{
	const char *other;
	struct stat st;
	uint8_t kind;
	int fl, acc;

	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fstat(fd, &st) < 0) {
		snprintf(why, n, "cannot be looked at (%s)", strerror(errno));
		return -EINVAL;
	}
	if (fl & O_PATH) {
		snprintf(why, n, "was opened with O_PATH, which can be "
				 "neither read nor written");
		return -EINVAL;
	}
	kind = fd_kind(fd, &st, &other);
	if (!(kind & spec->kinds)) {
		for (size_t i = 0; kind && i < ARRAY_SIZE(kind_names); i++)
			if (kind_names[i].kind == kind)
				other = kind_names[i].name;
		snprintf(why, n, "is %s", other);
		return -EINVAL;
	}
	acc = fl & O_ACCMODE;
	if ((spec->access & CTL_FD_READ) && acc != O_RDONLY && acc != O_RDWR) {
		snprintf(why, n, "is open for writing only");
		return -EINVAL;
	}
	if ((spec->access & CTL_FD_WRITE) && acc != O_WRONLY && acc != O_RDWR) {
		snprintf(why, n, "is open for reading only");
		return -EINVAL;
	}
	return 0;
}

/* "source (...), destination (...)" of the whole spec, for errors. */
static void describe_all(const struct ctl_fd_spec *spec, unsigned nspec,
			 char *buf, size_t n)
{
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < nspec && off < n; i++) {
		char one[256];

		describe_spec(&spec[i], one, sizeof(one));
		off += (size_t)snprintf(buf + off, n - off, "%s%s%s",
					i ? "; " : "", one,
					spec[i].optional ? " (optional)" : "");
	}
}

int ctl_fds_check(const char *what, const struct ctl_fd_spec *spec,
		  unsigned nspec, const int *fds, unsigned n, char *why,
		  size_t whyn)
{
	unsigned required = 0;
	char all[768];

	while (required < nspec && !spec[required].optional)
		required++;
	if (nspec == 0 && n == 0)
		return 0;
	if (nspec == 0) {
		snprintf(why, whyn,
			 "%s takes no descriptors, but %u came with the "
			 "request; send it without \"fds\"",
			 what, n);
		return -EINVAL;
	}
	describe_all(spec, nspec, all, sizeof(all));
	if (n < required) {
		snprintf(why, whyn,
			 "%s needs %u descriptor%s (%s), but %u came with "
			 "the request: the client opens the files and sends "
			 "their descriptors with the line (docs/control.md, "
			 "\"Descriptors\")",
			 what, required, required == 1 ? "" : "s", all, n);
		return -EINVAL;
	}
	if (n > nspec) {
		snprintf(why, whyn,
			 "%s takes at most %u descriptor%s (%s), but %u came "
			 "with the request",
			 what, nspec, nspec == 1 ? "" : "s", all, n);
		return -EINVAL;
	}
	for (unsigned i = 0; i < n; i++) {
		char wrong[160], want[256];

		if (check_one(fds[i], &spec[i], wrong, sizeof(wrong)) == 0)
			continue;
		describe_spec(&spec[i], want, sizeof(want));
		snprintf(why, whyn,
			 "descriptor %u of %u (%s) of %s %s; it must be %s",
			 i + 1, n, spec[i].name, what, wrong,
			 strchr(want, ':') + 2);
		return -EINVAL;
	}
	return 0;
}
