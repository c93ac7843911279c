/* SPDX-License-Identifier: MIT */
/*
 * The control socket's internals, shared by ctl.c (listening, access,
 * reading requests) and ctl-reply.c (writing replies, streamed replies and
 * event lines, with the caps on what clients may leave unread).
 */
#ifndef VMIC_HOST_CTL_INTERNAL_H
#define VMIC_HOST_CTL_INTERNAL_H

#include "hostd.h"

/* How long a client that is being closed may take to read its last
 * bytes before it is cut off; and how long any client may leave output
 * unread without reading a byte of it. */
#define CTL_DRAIN_MS 10000
#define CTL_STALL_MS 60000
/* Connections root and the daemon's own user may open beyond [control]
 * max-clients, so that an administrator always gets in. */
#define CTL_ADMIN_RESERVE 32

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
	uv_pipe_t pipe;
	uv_timer_t resume; /* continues a batch on the next iteration */
	uv_timer_t drain;  /* cuts off a client that does not read */
	int handles;       /* left to close before the struct is freed */
	uid_t uid;         /* the peer, from SO_PEERCRED */
	char *in;
	size_t inlen, incap;
	/* Output not written yet: a ring of entries, the first out_flight
	 * of which are handed to libuv in one write request. */
	struct ctl_out *outq;
	size_t out_head, out_n, out_cap, out_flight;
	uv_write_t wreq;
	size_t out_bytes; /* what the queue costs, for [control] max-unread */
	struct ctl_request *pending;
	struct ctl_stream *stream; /* a streamed reply in progress */
	int64_t last_event_id;     /* followers: the last event handed over */
	struct ctl_watch *watch;   /* watching a service's changes */
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
};

struct ctl {
	struct hostd *h;
	int fd;
	uv_poll_t poll;
	uv_timer_t pause;
	uv_timer_t shed;  /* drops clients when `held` passes the total */
	uv_timer_t trim;  /* gives freed output memory back to the system */
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
/* The client is closed: release its output and what it counted. */
void ctl_output_release(struct ctl_client *c);
/* The client's struct is freed: free its queue (libuv has cancelled
 * the write that was in flight). */
void ctl_output_free(struct ctl_client *c);
/* Timers of the daemon-wide output bounds (ctl_open, ctl_close). */
void ctl_output_init(struct ctl *ctl);
int ctl_output_close(struct ctl *ctl, uv_close_cb done);

#endif
