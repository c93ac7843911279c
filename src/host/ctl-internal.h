/* SPDX-License-Identifier: MIT */
/*
 * The control socket's internals, shared by ctl.c (listening, access,
 * reading requests), ctl-reply.c (writing replies, streamed replies and
 * event lines, with the caps on what clients may leave unread),
 * ctl-fds.c (descriptors that come with requests) and ctl-op.c (long
 * operations).
 */
#ifndef VMIC_HOST_CTL_INTERNAL_H
#define VMIC_HOST_CTL_INTERNAL_H

#include <sys/socket.h>

#include "hostd.h"

/* How long a client that is being closed may take to read its last
 * bytes before it is cut off; and how long any client may leave output
 * unread without reading a byte of it. */
#define CTL_DRAIN_MS 10000
#define CTL_STALL_MS 60000
/* Connections root and the daemon's own user may open beyond [control]
 * max-clients, so that an administrator always gets in. */
#define CTL_ADMIN_RESERVE 32

/* Descriptors a client may have received and not yet claimed by a
 * request line: what one recvmsg may bring (CTL_FDS_MAX, more is cut off
 * with MSG_CTRUNC) on top of at most CTL_FDS_MAX waiting already. */
#define CTL_FDS_HELD_MAX (2 * CTL_FDS_MAX)
/* Descriptors all clients together may hold unclaimed. */
#define CTL_FDS_PENDING_TOTAL 256

struct ctl_stream;
struct ctl_watch;

/*
 * A line of output. A follower's event and a watched change go to many
 * clients: the line is made once and each client's queue holds a
 * reference, so memory grows with the lines, not with lines x clients.
 */
struct ctl_line {
	unsigned refs;
	unsigned queued;  /* queue entries holding it (counted in ctl->held) */
	bool feed;        /* an event or a change: a dropped client's unsent
			     ones are discarded */
	int64_t event_id; /* a follower's event line: the event's id */
	size_t len;
	char data[];
};

/* One entry of a client's output queue: a line from `off` on. */
struct ctl_out {
	struct ctl_line *line;
	size_t off;
};

struct ctl_client {
	struct ctl_client *prev, *next;
	struct ctl *ctl;
	/* The socket is read with recvmsg (descriptors come as SCM_RIGHTS)
	 * and written with sendmsg, both without blocking, when poll says
	 * it may. */
	uv_poll_t poll;
	int fd;
	int poll_events;   /* what poll watches now (UV_READABLE, ...) */
	bool reading;      /* input is wanted now */
	uv_timer_t resume; /* continues a batch on the next iteration */
	uv_timer_t drain;  /* cuts off a client that does not read */
	int handles;       /* left to close before the struct is freed */
	uid_t uid;         /* the peer, from SO_PEERCRED */
	char *in;
	size_t inlen, incap;
	uint64_t in_off; /* bytes of the connection before in[0] */
	/* Descriptors received and not claimed by a line yet, in the order
	 * they came; fds_at[i]: the offset just past the bytes that came
	 * with fds[i] (ctl-fds.c). */
	int fds[CTL_FDS_HELD_MAX];
	uint64_t fds_at[CTL_FDS_HELD_MAX];
	unsigned nfds;
	/* Output not written yet: a ring of entries; the first may be
	 * written in part (its off > 0). */
	struct ctl_out *outq;
	size_t out_head, out_n, out_cap;
	size_t out_bytes; /* what the queue costs, for [control] max-unread */
	struct ctl_request *pending;
	struct ctl_stream *stream; /* a streamed reply in progress */
	int64_t last_event_id;     /* followers: the last event handed over */
	struct ctl_watch *watch;   /* watching a service's changes */
	struct ctl_op *op;         /* an operation runs on the connection */
	json_t *op_ended_id; /* the last operation's id: messages that
				crossed its end are dropped */
	bool follow;
	bool eof;
	bool closing;
	bool finish_after_write;
	bool dropped; /* told it fell behind (or cut off): never again */
};

struct ctl_request {
	struct ctl_client *c; /* NULL once the client went away */
	struct hostd *h;
	json_t *id;
	uid_t uid;  /* the peer that sent it */
	bool async; /* still running after its handler returned */
	bool paged; /* the client asked for a paged reply */
	const char *cmd; /* the command's name, once known */
	/* The descriptors that came with it (-1 once taken). */
	int fds[CTL_FDS_MAX];
	unsigned nfds;
};

struct ctl {
	struct hostd *h;
	int fd;
	uv_poll_t poll;
	uv_timer_t pause;
	uv_timer_t shed;  /* drops clients when `held` passes the total */
	uv_timer_t trim;  /* gives freed output memory back to the system */
	uv_timer_t ops_due; /* cancels operations whose clients left */
	struct ctl_client *clients;
	size_t nclients;
	size_t followers;
	size_t held;       /* bytes of output held for all clients */
	size_t holders;    /* clients with output not written yet */
	size_t trim_freed; /* output bytes freed since the last trim */
	uint64_t dropped;  /* clients dropped for reading too slowly */
	uint64_t refused;  /* connections over max-clients(-per-uid) */
	uint64_t refused_logged; /* refused when the last line said so */
	uint64_t refused_log_us;
	unsigned fds_pending; /* descriptors received, not claimed yet */
	gid_t gid;
	bool have_gid;
	bool paused;
	int handles; /* left to close before the struct is freed */
};

/* The client only listens now (events --follow, a service's watch): its
 * input is read only to notice that it left. */
static inline bool ctl_client_listens(const struct ctl_client *c)
{
	return c->follow || c->watch;
}

/* ctl.c */
/* Close now: pending output is dropped, a running command's reply too,
 * a running operation is cancelled. */
void ctl_client_close(struct ctl_client *c);
/* Close once everything queued has been written (or CTL_DRAIN_MS). */
void ctl_client_finish(struct ctl_client *c);
/* Output was queued or written: (re)arm the cut-off for a client that
 * leaves it unread (CTL_STALL_MS, CTL_DRAIN_MS while finishing). */
void ctl_client_watch(struct ctl_client *c);
/* Handle buffered request lines (after a reply ended a pending one). */
void ctl_client_process(struct ctl_client *c);
/* Go on with the client's work (lines, a streamed reply) in the next
 * loop iteration, so one client never holds the loop for long. */
void ctl_client_later(struct ctl_client *c);
/* Watch the socket for what the client needs now: input while it is
 * read, the chance to write while output waits. */
void ctl_client_poll(struct ctl_client *c);
/* A request's end: close the descriptors it did not hand on, free it. */
void ctl_request_free(struct ctl_request *rq);

/* ctl-reply.c */
/* An error's sentence (a C string in a buffer of size bytes) made valid
 * UTF-8, so it can go into a JSON reply: bytes of a client's that are
 * not become '?'. */
void ctl_message_sane(char *msg, size_t size);
/* Send one JSON object as a line; a client that leaves more than
 * [control] max-unread bytes unread is dropped (a follower told why). */
void ctl_client_send_json(struct ctl_client *c, json_t *o);
/* The client goes away: its watch ends (the service hears of it). */
void ctl_watch_gone(struct ctl_client *c);
/* The client goes away: end a streamed reply without its tail. */
void ctl_stream_abort(struct ctl_client *c);
/* Output drained below the low water mark: continue a streamed reply. */
void ctl_stream_pump(struct ctl_client *c);
/* Send a line (a reference is taken) within max-unread; when the last
 * line queued is `replaces` and none of it is written yet, the new line
 * takes its place (an operation's progress). */
void ctl_client_send_line(struct ctl_client *c, struct ctl_line *line,
			  const struct ctl_line *replaces);
/* The socket may take more: write what waits, and go on with what was
 * waiting for room (a streamed reply, a close after the last line). */
void ctl_output_writable(struct ctl_client *c);
/* Write what the queue holds now, as far as the socket takes it (a
 * last line before the daemon closes the client). */
void ctl_output_flush(struct ctl_client *c);
/* The client is closed: release its output and what it counted. */
void ctl_output_release(struct ctl_client *c);
/* The client's struct is freed: free its queue. */
void ctl_output_free(struct ctl_client *c);
/* Timers of the daemon-wide output bounds (ctl_open, ctl_close). */
void ctl_output_init(struct ctl *ctl);
int ctl_output_close(struct ctl *ctl, uv_close_cb done);

/* ctl-fds.c: descriptors that come with request lines */
/*
 * Take the descriptors of a received message (its SCM_RIGHTS) into the
 * client's list; `at` is the offset just past its bytes. 0, or < 0 with
 * a sentence in why (and every descriptor of the message closed):
 * -EPROTO for MSG_CTRUNC or ancillary data of another kind, -EMFILE
 * past CTL_FDS_MAX unclaimed, -ENFILE past CTL_FDS_PENDING_TOTAL.
 */
int ctl_fds_receive(struct ctl_client *c, struct msghdr *msg, uint64_t at,
		    char *why, size_t n);
/*
 * A line that ends at offset `end` declares `declared` descriptors: move
 * the first `declared` received ones to out. 0, or -EPROTO with a
 * sentence when fewer came, or when more came with the bytes of this
 * line (or an earlier one) than the lines declare: then the framing is
 * lost and the client must be closed.
 */
int ctl_fds_claim(struct ctl_client *c, unsigned declared, uint64_t end,
		  int *out, char *why, size_t n);
/* True when descriptors came that no line claimed (at the client's EOF,
 * or while it only listens). */
static inline bool ctl_fds_unclaimed(const struct ctl_client *c)
{
	return c->nfds > 0;
}
/* Close the client's unclaimed descriptors. */
void ctl_fds_drop(struct ctl_client *c);
/* Close each descriptor of fds[0..n) that is >= 0, and mark it -1. */
void ctl_fds_close(int *fds, unsigned n);
/*
 * Do the descriptors fds[0..n) meet what `what` (a command, "messages
 * of `cmd`") takes, spec[0..nspec)? 0, or -EINVAL with a sentence that
 * names the descriptor and says what is wrong and what would do.
 */
int ctl_fds_check(const char *what, const struct ctl_fd_spec *spec,
		  unsigned nspec, const int *fds, unsigned n, char *why,
		  size_t whyn);

/* ctl-op.c: long operations */
/* A line during an operation (parsed, or NULL when it is not JSON: jerr
 * says why): a message for the operation's owner; its declared
 * descriptors end at offset end. */
void ctl_op_line(struct ctl_client *c, json_t *msg, const char *jerr,
		 uint64_t end);
/* The operation's client went away (closed, dropped): cancel it. */
void ctl_op_client_gone(struct ctl_client *c);
/* The daemon stops: operations still attached get a last error line,
 * and every one not cancelled yet is. */
void ctl_ops_stop(struct hostd *h);

#endif
