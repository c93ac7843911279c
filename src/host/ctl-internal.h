/* SPDX-License-Identifier: MIT */
/*
 * The control socket's internals, shared by ctl.c (listening, access,
 * reading requests) and ctl-reply.c (writing replies, streamed replies and
 * event lines, with the caps on what a client may leave unread).
 */
#ifndef VMIC_HOST_CTL_INTERNAL_H
#define VMIC_HOST_CTL_INTERNAL_H

#include "hostd.h"

/* How long a client that is being closed may take to read its last
 * bytes before it is cut off; and how long any client may leave output
 * unread without reading a byte of it. */
#define CTL_DRAIN_MS 10000
#define CTL_STALL_MS 60000

struct ctl_stream;
struct ctl_watch;

struct ctl_client {
	struct ctl_client *prev, *next;
	struct ctl *ctl;
	uv_pipe_t pipe;
	uv_timer_t resume; /* continues a batch on the next iteration */
	uv_timer_t drain;  /* cuts off a client that does not read */
	int handles;       /* left to close before the struct is freed */
	uid_t uid;         /* the peer, from SO_PEERCRED */
	char *in;
	size_t inlen, incap;
	size_t out_bytes; /* handed to libuv, not yet written */
	struct ctl_request *pending;
	struct ctl_stream *stream; /* a streamed reply in progress */
	int64_t last_event_id;     /* followers: the last event sent */
	struct ctl_watch *watch;   /* watching a service's changes */
	bool follow;
	bool eof;
	bool closing;
	bool finish_after_write;
};

struct ctl_request {
	struct ctl_client *c; /* NULL once the client went away */
	struct hostd *h;
	json_t *id;
	uid_t uid;  /* the peer that sent it */
	bool async; /* still running after its handler returned */
};

struct ctl {
	struct hostd *h;
	int fd;
	uv_poll_t poll;
	uv_timer_t pause;
	struct ctl_client *clients;
	size_t followers;
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
/* Close now: pending output is dropped, a running command's reply too. */
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

/* ctl-reply.c */
/* Send one JSON object as a line; a client that leaves more than
 * [control] max-unread bytes unread is dropped (a follower told why). */
void ctl_client_send_json(struct ctl_client *c, json_t *o);
/* The client goes away: its watch ends (the service hears of it). */
void ctl_watch_gone(struct ctl_client *c);
/* The client goes away: end a streamed reply without its tail. */
void ctl_stream_abort(struct ctl_client *c);
/* Output drained below the low water mark: continue a streamed reply. */
void ctl_stream_pump(struct ctl_client *c);

#endif
