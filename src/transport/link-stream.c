/* SPDX-License-Identifier: MIT */
/*
 * Streams on a link: open, write, finish, consume and reset; incoming
 * stream frames; the owners' callbacks. The rules (credit, what to
 * refuse) are in src/proto/stream*.c; this file moves the bytes.
 *
 * Callbacks never run inside the owner's own call: what comes due there
 * (room after a write, the end of a stream whose END went out) waits in
 * the notify list for the read or write callback in progress or for the
 * link's idle handle. A stream that is closed while one of its callbacks
 * runs is freed when that callback returns.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "link-internal.h"

static void on_idle(uv_idle_t *h);

int vmic_link_streams_attach(struct vmic_link *l, bool guest_side,
			     unsigned max)
{
	if (l->streams_on)
		return -EALREADY;
	if (l->closing || !l->stream)
		return -ENOTCONN;
	l->idle = malloc(sizeof(*l->idle));
	if (!l->idle)
		return -ENOMEM;
	uv_idle_init(l->stream->loop, l->idle);
	l->idle->data = l;
	vmic_stream_table_init(&l->streams, guest_side, max);
	l->streams_on = true;
	return 0;
}

static void notify_queue(struct vmic_link *l, struct vmic_stream *s)
{
	if (s->notify_queued || s->closed)
		return;
	s->notify_queued = true;
	s->notify_next = NULL;
	if (l->notify_tail)
		l->notify_tail->notify_next = s;
	else
		l->notify = s;
	l->notify_tail = s;
	uv_idle_start(l->idle, on_idle);
}

static struct vmic_stream *notify_pop(struct vmic_link *l)
{
	struct vmic_stream *s = l->notify;

	if (!s)
		return NULL;
	l->notify = s->notify_next;
	if (!l->notify)
		l->notify_tail = NULL;
	s->notify_next = NULL;
	s->notify_queued = false;
	return s;
}

static void notify_unlink(struct vmic_link *l, struct vmic_stream *s)
{
	struct vmic_stream *prev = NULL, *p = l->notify;

	if (!s->notify_queued)
		return;
	while (p != s) {
		prev = p;
		p = p->notify_next;
	}
	if (prev)
		prev->notify_next = s->notify_next;
	else
		l->notify = s->notify_next;
	if (l->notify_tail == s)
		l->notify_tail = prev;
	s->notify_next = NULL;
	s->notify_queued = false;
}

/* Take s out of the link: table, queue, notify list, counters. */
static void stream_detach(struct vmic_link *l, struct vmic_stream *s)
{
	s->closed = true;
	vmic_stream_table_remove(&l->streams, s);
	vmic_outq_drop_lane(&l->outq, &s->lane);
	notify_unlink(l, s);
	if (s->dir == VMIC_STREAM_SEND && --l->send_streams == 0)
		link_buf_trim(l);
	else if (s->dir == VMIC_STREAM_RECV)
		l->rx_held -= vmic_stream_rx_held(&s->rx);
	if (l->outq.bulk_bytes <= l->outq.bulk_limit / 2)
		link_streams_budget_low(l);
}

/* Free s now, or when the callback running on it returns. */
static void stream_release(struct vmic_stream *s)
{
	if (s->busy)
		s->dead = true;
	else
		free(s);
}

/* A callback on s returned; true when s is gone. */
static bool stream_unbusy(struct vmic_stream *s)
{
	if (--s->busy == 0 && s->dead) {
		free(s);
		return true;
	}
	return false;
}

static void stream_close(struct vmic_link *l, struct vmic_stream *s,
			 int reason)
{
	if (s->closed)
		return;
	stream_detach(l, s);
	s->busy++;
	if (s->ops->on_closed)
		s->ops->on_closed(s->ud, s, reason);
	s->busy--;
	stream_release(s);
}

static void streams_close_all(struct vmic_link *l, int reason)
{
	struct vmic_stream *s;

	while ((s = vmic_stream_table_any(&l->streams)))
		stream_close(l, s, reason);
}

void vmic_link_streams_reset(struct vmic_link *l)
{
	if (l->streams_on)
		streams_close_all(l, -ECONNRESET);
}

static void idle_closed(uv_handle_t *h)
{
	free(h);
}

void link_streams_shutdown(struct vmic_link *l)
{
	if (!l->streams_on)
		return;
	streams_close_all(l, -EPIPE);
	l->idle->data = NULL;
	uv_close((uv_handle_t *)l->idle, idle_closed);
	l->idle = NULL;
	l->streams_on = false;
}

/*
 * Room for s in bytes: its credit, its fair share of the bulk budget
 * (at least one chunk), and what is left of the budget. While the socket
 * is full, one chunk per stream waits in the queue and the rest of the
 * producer's data stays where it is: once the socket drains it goes out
 * from the producer's buffer without a copy (stream_write_direct).
 * *by_budget tells whether the budget itself was the limit.
 */
static uint64_t send_room(const struct vmic_link *l,
			  const struct vmic_stream *s, bool *by_budget)
{
	size_t share = l->writing
			       ? VMIC_HDR_SIZE + VMIC_STREAM_CHUNK
			       : MAX((size_t)VMIC_STREAM_CHUNK,
				     l->outq.bulk_limit /
					     MAX(l->send_streams, 1u));
	size_t budget = vmic_outq_bulk_room(&l->outq);
	uint64_t room = vmic_stream_tx_room(&s->tx);

	room = MIN(room, share > s->lane.bytes ? share - s->lane.bytes : 0);
	*by_budget = budget < room;
	return MIN(room, budget);
}

static void send_credit(struct vmic_link *l, const struct vmic_stream *s,
			uint32_t more)
{
	uint8_t buf[VMIC_STREAM_CREDIT_FRAME];

	vmic_link_send(l, buf, vmic_stream_credit_frame(buf, s->service, s->id,
							more),
		       0);
}

static void send_reset(struct vmic_link *l, uint8_t service, uint32_t id,
		       uint16_t code, const char *why)
{
	uint8_t buf[VMIC_STREAM_RESET_FRAME_MAX];

	vmic_link_send(l, buf,
		       vmic_stream_reset_frame(buf, service, id, code, why), 0);
}

int vmic_link_stream_open(struct vmic_link *l, uint32_t id, uint8_t service,
			  enum vmic_stream_dir dir, uint32_t window,
			  const struct vmic_stream_ops *ops, void *ud,
			  struct vmic_stream **out)
{
	/* Until open returns, the owner hears nothing about the stream. */
	static const struct vmic_stream_ops silent = { 0 };
	struct vmic_stream *s;
	int r;

	if (!l->streams_on ||
	    (dir != VMIC_STREAM_SEND && dir != VMIC_STREAM_RECV) ||
	    (dir == VMIC_STREAM_RECV && !ops->on_data))
		return -EINVAL;
	if (l->closing || !l->stream)
		return -ENOTCONN;
	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (id == 0)
		id = vmic_stream_table_next_id(&l->streams);
	vmic_stream_init(s, id, service, dir, window, &silent, NULL);
	r = vmic_stream_table_add(&l->streams, s);
	if (r < 0) {
		free(s);
		return r;
	}
	if (dir == VMIC_STREAM_SEND)
		l->send_streams++;
	/* A window beyond the implicit credit waits for the first data
	 * (stream_deliver): granted now, it could reach the peer before the
	 * peer's end exists, and the peer drops a credit for a stream it
	 * does not know. */
	s->ops = ops;
	s->ud = ud;
	*out = s;
	return 0;
}

/* Queue one data frame of s (a copy of p) in its lane. */
static int stream_queue_frame(struct vmic_link *l, struct vmic_stream *s,
			      const uint8_t *p, uint32_t n, bool end)
{
	struct vmic_outbuf *b = link_buf_new(l, VMIC_HDR_SIZE + n);

	if (!b)
		return -ENOMEM;
	vmic_stream_data_header(b->data, s, n, end);
	if (n)
		memcpy(b->data + VMIC_HDR_SIZE, p, n);
	vmic_outq_push_bulk(&l->outq, &s->lane, b);
	return 0;
}

/* Frames one direct write may carry: about what a socket takes at once. */
#define DIRECT_FRAMES 4
/* Data queued to hear when a full socket drains. */
#define WAKE_FRAME (4u * 1024)

/*
 * The link is idle: write up to n bytes of s as data frames straight from
 * the producer's buffer, header and payload side by side (writev), so the
 * common case copies nothing in user space. Only a frame the socket cut
 * is copied, to be finished by libuv. Returns the payload bytes taken
 * (0 when the socket was full) or -errno.
 */
static ssize_t stream_write_direct(struct vmic_link *l, struct vmic_stream *s,
				   const uint8_t *p, size_t n)
{
	uint8_t hdr[DIRECT_FRAMES][VMIC_HDR_SIZE];
	uv_buf_t bufs[2 * DIRECT_FRAMES];
	uint32_t len[DIRECT_FRAMES];
	size_t off = 0, taken = 0;
	unsigned k = 0;
	ssize_t w;

	while (k < DIRECT_FRAMES && off < n) {
		len[k] = (uint32_t)MIN(n - off, (size_t)VMIC_STREAM_CHUNK);
		vmic_stream_data_header(hdr[k], s, len[k], false);
		bufs[2 * k] = uv_buf_init((char *)hdr[k], VMIC_HDR_SIZE);
		bufs[2 * k + 1] = uv_buf_init((char *)p + off, len[k]);
		off += len[k++];
	}
	w = link_try_writev(l, bufs, 2 * k);
	for (unsigned i = 0; i < k && w > 0; i++) {
		size_t frame = VMIC_HDR_SIZE + len[i];

		if ((size_t)w < frame) {
			int r = link_keep_rest(l, hdr[i], VMIC_HDR_SIZE,
					       p + taken, len[i], (size_t)w);

			if (r < 0)
				return r;
			w = 0;
		} else {
			w -= (ssize_t)frame;
		}
		taken += len[i];
	}
	return w < 0 ? w : (ssize_t)taken;
}

static int stream_check_send(const struct vmic_link *l,
			     const struct vmic_stream *s)
{
	if (l->closing || !l->stream)
		return -ENOTCONN;
	if (s->dir != VMIC_STREAM_SEND)
		return -EINVAL;
	if (s->end || s->closed)
		return -EPIPE;
	return 0;
}

/*
 * s could not take all it was given: make sure something wakes it. A
 * credit frame does when credit ran out; the budget falling to half when
 * the budget did; the write in progress completing when the socket is
 * full (which also limits each lane to one chunk meanwhile). And when
 * none of these holds any more, the idle handle: a socket found full can
 * drain before the call ends (the small frame queued to hear of it went
 * out at once), and a producer that stops at a short write would wait
 * forever.
 */
static void stream_wait(struct vmic_link *l, struct vmic_stream *s,
			bool by_budget)
{
	bool budget;

	s->want_writable = true;
	l->budget_waiters |= by_budget;
	l->socket_waiters |= l->writing;
	if (!l->writing && !by_budget && send_room(l, s, &budget) > 0)
		notify_queue(l, s);
}

/* Account n payload bytes taken from the producer. */
static void stream_took(struct vmic_stream *s, size_t n)
{
	vmic_stream_tx_sent(&s->tx, (uint32_t)n);
	s->bytes += n;
}

ssize_t vmic_link_stream_write(struct vmic_link *l, struct vmic_stream *s,
			       const void *buf, size_t len)
{
	const uint8_t *p = buf;
	bool by_budget;
	uint64_t room;
	size_t done = 0;
	ssize_t r = stream_check_send(l, s);

	if (r < 0)
		return r;
	room = send_room(l, s, &by_budget);
	/* Straight to the socket while nothing waits ahead. */
	while (done < len && room > 0 && !l->writing && !l->nbatch &&
	       vmic_outq_empty(&l->outq)) {
		r = stream_write_direct(l, s, p + done,
					(size_t)MIN((uint64_t)(len - done),
						    room));
		if (r < 0)
			return r;
		if (r == 0) {
			/* The socket is full and libuv holds nothing that
			 * tells us when it drains: queue a small frame for
			 * that (a small copy); the rest waits in place. */
			size_t n = (size_t)MIN(MIN((uint64_t)(len - done),
						   room),
					       WAKE_FRAME);

			r = stream_queue_frame(l, s, p + done, (uint32_t)n,
					       false);
			if (r < 0)
				return r;
			r = (ssize_t)n;
		}
		stream_took(s, (size_t)r);
		done += (size_t)r;
		room = send_room(l, s, &by_budget);
		if (!vmic_outq_empty(&l->outq) || l->nbatch)
			goto out; /* the socket is full */
	}
	while (done < len && room > 0) {
		uint32_t n = (uint32_t)MIN(MIN((uint64_t)(len - done), room),
					   VMIC_STREAM_CHUNK);

		r = stream_queue_frame(l, s, p + done, n, false);
		if (r < 0)
			return r;
		stream_took(s, n);
		done += n;
		room = send_room(l, s, &by_budget);
	}
out:
	link_flush(l);
	if (done < len)
		stream_wait(l, s, by_budget);
	return done ? (ssize_t)done : -EAGAIN;
}

int vmic_link_stream_finish(struct vmic_link *l, struct vmic_stream *s)
{
	uint8_t hdr[VMIC_HDR_SIZE];
	int r = stream_check_send(l, s);

	if (r < 0)
		return r;
	s->end = true;
	s->want_writable = false;
	vmic_stream_data_header(hdr, s, 0, true);
	r = link_write_now(l, hdr, sizeof(hdr), NULL, 0);
	if (r == 0)
		r = stream_queue_frame(l, s, NULL, 0, true);
	else if (r == 1) {
		/* Written at once: the stream ends at the next callback. */
		s->end_sent = true;
		notify_queue(l, s);
	}
	if (r < 0)
		return r;
	link_flush(l);
	return 0;
}

void vmic_link_stream_consumed(struct vmic_link *l, struct vmic_stream *s,
			       size_t n)
{
	uint64_t before = vmic_stream_rx_held(&s->rx);
	uint32_t grant;

	if (s->dir != VMIC_STREAM_RECV || s->closed || l->closing)
		return;
	grant = vmic_stream_rx_consumed(&s->rx,
					(uint32_t)MIN(n, (size_t)UINT32_MAX));
	l->rx_held -= before - vmic_stream_rx_held(&s->rx);
	if (grant)
		send_credit(l, s, grant);
}

void vmic_link_stream_reset(struct vmic_link *l, struct vmic_stream *s,
			    uint16_t code, const char *message)
{
	if (s->closed)
		return;
	stream_detach(l, s);
	if (!l->closing)
		send_reset(l, s->service, s->id, code, message);
	stream_release(s);
}

/*
 * A stream waiting for room is not woken here but when the write in
 * progress completes (link_streams_socket_ready): lanes then refill once
 * per drain of the socket, fairly, and a lone stream finds the link idle
 * and writes from its producer's buffer instead of copying a chunk.
 */
void link_stream_popped(struct vmic_link *l, struct vmic_stream *s)
{
	if (s->end && !s->lane.head) {
		s->end_sent = true; /* END is always the lane's last frame */
		notify_queue(l, s);
	}
}

static void wake_if_waiting(struct vmic_stream *s, void *arg)
{
	if (s->want_writable)
		notify_queue(arg, s);
}

void link_streams_socket_ready(struct vmic_link *l)
{
	if (!l->socket_waiters)
		return;
	l->socket_waiters = false;
	vmic_stream_table_each(&l->streams, wake_if_waiting, l);
}

void link_streams_budget_low(struct vmic_link *l)
{
	if (!l->budget_waiters)
		return;
	l->budget_waiters = false;
	vmic_stream_table_each(&l->streams, wake_if_waiting, l);
}

void link_streams_notify(struct vmic_link *l)
{
	struct vmic_stream *s;
	bool by_budget;

	while (!l->closing && (s = notify_pop(l))) {
		if (s->end_sent) {
			stream_close(l, s, 0);
			continue;
		}
		if (!s->want_writable)
			continue;
		if (send_room(l, s, &by_budget) == 0) {
			stream_wait(l, s, by_budget); /* not yet after all */
			continue;
		}
		s->want_writable = false;
		s->busy++;
		if (s->ops->on_writable)
			s->ops->on_writable(s->ud, s);
		stream_unbusy(s);
	}
}

static void on_idle(uv_idle_t *h)
{
	struct vmic_link *l = h->data;

	link_callbacks(l);
	if (l->idle && !l->notify)
		uv_idle_stop(l->idle);
}

/* Hand data to the owner; END after it ends the stream. */
static void stream_deliver(struct vmic_link *l, struct vmic_stream *s,
			   const struct vmic_frame *f)
{
	uint32_t grant;

	/* The peer's end exists now: the rest of the window can go. */
	if (!s->window_granted && !l->closing) {
		s->window_granted = true;
		grant = vmic_stream_rx_consumed(&s->rx, 0);
		if (grant) {
			/* A failed write closes the link, and s with it. */
			s->busy++;
			send_credit(l, s, grant);
			if (stream_unbusy(s) || s->closed)
				return;
		}
	}
	s->bytes += f->length;
	l->rx_held += f->length;
	if (l->rx_held > l->peak_rx_held)
		l->peak_rx_held = l->rx_held;
	if (f->length) {
		s->busy++;
		s->ops->on_data(s->ud, s, f->payload, f->length);
		if (stream_unbusy(s))
			return;
	}
	if ((f->flags & VMIC_F_END) && !s->closed)
		stream_close(l, s, 0);
}

void link_stream_input(struct vmic_link *l, const struct vmic_frame *f)
{
	struct vmic_stream_input in;

	vmic_stream_table_input(&l->streams, f, &in);
	switch (in.verdict) {
	case VMIC_SV_IGNORE:
		l->stream_ignored++;
		break;
	case VMIC_SV_DATA:
		stream_deliver(l, in.s, f);
		break;
	case VMIC_SV_CREDIT:
		if (in.s->want_writable)
			notify_queue(l, in.s);
		break;
	case VMIC_SV_PEER_RESET:
		in.s->reset_message = in.message;
		stream_close(l, in.s, in.code);
		break;
	case VMIC_SV_REFUSE:
		l->stream_refused++;
		send_reset(l, f->service, f->stream_id, in.code, in.why);
		if (in.s && !l->closing)
			stream_close(l, in.s, -EPROTO);
		break;
	}
}
