/* SPDX-License-Identifier: MIT */
/*
 * What the control socket writes: replies, streamed replies, the lines of
 * followers and watchers, within two bounds on memory: one client never
 * holds more than [control] max-unread bytes of unwritten output, and all
 * clients together no more than [control] max-unread-total.
 *
 * Each client has a queue of lines, written with sendmsg (up to
 * CTL_WRITE_BUFS lines at once) as far as the socket takes them, the
 * rest when poll says it has room. A line is refcounted: an event or
 * a watched change is serialized once and the same bytes are queued for
 * every client that gets it, so a change costs one serialization, and
 * memory grows with the lines, not with lines x clients. What a client's
 * queue costs (its bytes and an entry each) is its share of max-unread;
 * what all queues hold (each line once) is `held`.
 *
 * Small replies are written whole. A reply that holds a large array
 * (`list` of 10,000 VMs) is streamed: its head, then the array's items a
 * batch at a time while the client holds less than half of what it may
 * (max-unread, or its share of the total when many clients hold output),
 * then its tail. A client that asked for pages gets the head, the items
 * and the end as lines of their own (docs/control.md, "Paged replies").
 * So a client that stops reading costs a bounded amount of memory, and
 * building the answer never holds the loop for more than one batch.
 *
 * A follower or watcher that falls max-unread behind is dropped: its
 * unsent events or changes are discarded, what is in flight is written,
 * then a last line says why. When the total passes max-unread-total, the
 * client holding the most is dropped the same way (any other client is
 * closed), then the next, until the total is under it again. A client
 * being closed that still does not read is cut off after CTL_DRAIN_MS.
 */
#include <errno.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "common/log.h"
#include "common/utf8.h"
#include "ctl-internal.h"

/* Items per batch of a streamed reply, and batches per loop iteration. */
#define STREAM_BATCH 64
#define STREAM_BATCHES_PER_TURN 4
/* Lines written with one sendmsg at most. */
#define CTL_WRITE_BUFS 32
/* What a queue entry costs (with the ring's slack), and a line's
 * header and allocation beyond its bytes. */
#define ENTRY_COST 32
#define LINE_OVERHEAD (sizeof(struct ctl_line) + 16)
/* After this much output memory was freed, give what malloc keeps back
 * to the system, a second later (once per burst). */
#define TRIM_AFTER (8u << 20)
#define TRIM_DELAY_MS 1000

struct ctl_stream {
	struct ctl_request *rq;
	const struct ctl_stream_ops *ops;
	void *ud;
	char *id;     /* paged: the request's id as JSON text */
	size_t count; /* paged: items written */
	bool failed;  /* the producer failed: why */
	char err_code[32];
	char err_msg[1024];
	bool paged;
	bool first;   /* no item written yet */
	bool waiting; /* the producer fetches; it wakes us */
};

/* ---- lines ---- */

static struct ctl_line *line_new(size_t len)
{
	struct ctl_line *l = malloc(sizeof(*l) + len);

	if (!l)
		return NULL;
	memset(l, 0, sizeof(*l));
	l->refs = 1;
	l->len = len;
	return l;
}

static struct ctl_line *line_copy(const char *p, size_t n)
{
	struct ctl_line *l = line_new(n);

	if (l)
		memcpy(l->data, p, n);
	return l;
}

struct ctl_line *ctl_line_json(json_t *o)
{
	size_t n = json_dumpb(o, NULL, 0, JSON_COMPACT);
	struct ctl_line *l = n ? line_new(n + 1) : NULL;

	if (!l)
		return NULL;
	if (json_dumpb(o, l->data, n, JSON_COMPACT) != n) {
		free(l);
		return NULL;
	}
	l->data[n] = '\n';
	return l;
}

void ctl_line_unref(struct ctl_line *l)
{
	if (l && --l->refs == 0)
		free(l);
}

/* ---- the bounds ---- */

/*
 * A streamed reply adds its next batch only below half of what its
 * client may hold: max-unread, or its share of max-unread-total when
 * many clients hold output. So a batch (at most STREAM_BATCH items of a
 * few KiB) stays within it, and streams alone never pass the total.
 */
static size_t low_water(const struct ctl_client *c)
{
	const struct hostd_config *cfg = &c->ctl->h->cfg;
	size_t holders = c->ctl->holders ? c->ctl->holders : 1;
	size_t share = (size_t)(cfg->max_unread_total / holders);

	return MIN((size_t)cfg->max_unread, share) / 2;
}

static size_t entry_cost(const struct ctl_out *o)
{
	return o->line->len - o->off + ENTRY_COST;
}

static size_t line_cost(const struct ctl_line *l)
{
	return l->len + LINE_OVERHEAD;
}

/* An entry joins the client's queue: count it there and in `held`. */
static void count_in(struct ctl_client *c, const struct ctl_out *o)
{
	struct ctl *ctl = c->ctl;

	if (c->out_bytes == 0)
		ctl->holders++;
	c->out_bytes += entry_cost(o);
	ctl->held += ENTRY_COST;
	if (o->line->queued++ == 0)
		ctl->held += line_cost(o->line);
}

/* An entry leaves it (written, discarded, or the client closed). */
static void count_out(struct ctl_client *c, const struct ctl_out *o)
{
	struct ctl *ctl = c->ctl;

	c->out_bytes -= entry_cost(o);
	if (c->out_bytes == 0)
		ctl->holders--;
	ctl->held -= ENTRY_COST;
	ctl->trim_freed += ENTRY_COST;
	if (--o->line->queued == 0) {
		ctl->held -= line_cost(o->line);
		ctl->trim_freed += line_cost(o->line);
	}
}

static void on_trim(uv_timer_t *t)
{
	struct ctl *ctl = t->data;

	ctl->trim_freed = 0;
#ifdef __GLIBC__
	/* glibc keeps freed chunks (the lines of clients that left) in its
	 * arenas; without this an attack's peak would stay resident. */
	malloc_trim(0);
#endif
}

static void maybe_trim(struct ctl *ctl)
{
	if (ctl->trim_freed >= TRIM_AFTER &&
	    !uv_is_active((uv_handle_t *)&ctl->trim))
		uv_timer_start(&ctl->trim, on_trim, TRIM_DELAY_MS, 0);
}

/* ---- a client's queue ---- */

static struct ctl_out *out_at(const struct ctl_client *c, size_t i)
{
	return &c->outq[(c->out_head + i) & (c->out_cap - 1)];
}

/* Room for one more entry (the capacity stays a power of two). */
static int out_grow(struct ctl_client *c)
{
	size_t cap = c->out_cap ? c->out_cap * 2 : 16;
	struct ctl_out *q;

	if (c->out_n < c->out_cap)
		return 0;
	q = malloc(cap * sizeof(*q));
	if (!q)
		return -ENOMEM;
	for (size_t i = 0; i < c->out_n; i++)
		q[i] = *out_at(c, i);
	free(c->outq);
	c->outq = q;
	c->out_cap = cap;
	c->out_head = 0;
	return 0;
}

/* An empty queue that grew large for a burst gives its ring back. */
static void out_shrink(struct ctl_client *c)
{
	if (c->out_n == 0 && c->out_cap > 64) {
		free(c->outq);
		c->outq = NULL;
		c->out_cap = 0;
		c->out_head = 0;
	}
}

static void out_pop(struct ctl_client *c)
{
	c->out_head = (c->out_head + 1) & (c->out_cap - 1);
	c->out_n--;
}

/* The first entry is written in part: it must go on to its end. */
static bool out_started(const struct ctl_client *c)
{
	return c->out_n > 0 && out_at(c, 0)->off > 0;
}

/* n bytes of the queue's head went out: drop what is written whole. */
static void out_consume(struct ctl_client *c, size_t n)
{
	while (n > 0) {
		struct ctl_out *o = out_at(c, 0);
		size_t left = o->line->len - o->off;

		if (o->line->event_id)
			c->last_event_id = o->line->event_id;
		if (n < left) {
			/* Partly written: what it costs shrinks with it. */
			c->out_bytes -= n;
			o->off += n;
			return;
		}
		n -= left;
		count_out(c, o);
		ctl_line_unref(o->line);
		out_pop(c);
	}
}

/*
 * Write the queue as far as the socket takes it. 0 when it is empty or
 * the socket is full, < 0 (the client is closed) when writing failed.
 */
static int out_write(struct ctl_client *c)
{
	struct iovec iov[CTL_WRITE_BUFS];
	struct msghdr msg = { .msg_iov = iov };
	bool wrote = false;

	while (!c->closing && c->out_n > 0) {
		size_t n = MIN(c->out_n, (size_t)CTL_WRITE_BUFS);
		ssize_t w;

		for (size_t i = 0; i < n; i++) {
			const struct ctl_out *o = out_at(c, i);

			iov[i] = (struct iovec){ o->line->data + o->off,
						 o->line->len - o->off };
		}
		msg.msg_iovlen = n;
		w = sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w <= 0) {
			ctl_client_close(c);
			return -EPIPE;
		}
		wrote = true;
		out_consume(c, (size_t)w);
	}
	out_shrink(c);
	maybe_trim(c->ctl);
	/* It reads: the cut-off starts over (or stops, when all is out). */
	if (wrote || c->out_n == 0)
		ctl_client_watch(c);
	ctl_client_poll(c);
	return 0;
}

void ctl_output_flush(struct ctl_client *c)
{
	out_write(c);
}

void ctl_output_writable(struct ctl_client *c)
{
	if (out_write(c) < 0 || c->closing)
		return;
	if (c->finish_after_write && c->out_n == 0) {
		ctl_client_close(c);
		return;
	}
	if (c->stream && c->out_bytes < low_water(c))
		ctl_stream_pump(c);
}

static void on_shed(uv_timer_t *t);

/* Queue a line (a reference is taken) without looking at the caps, and
 * write what the socket takes. */
static void queue_line(struct ctl_client *c, struct ctl_line *line)
{
	struct ctl *ctl = c->ctl;
	struct ctl_out o = { .line = line };

	if (c->closing)
		return;
	if (c->out_n == 0) {
		/* Most lines go out at once, never queued. */
		ssize_t w;

		do
			w = send(c->fd, line->data, line->len,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		while (w < 0 && errno == EINTR);
		if (w == (ssize_t)line->len) {
			if (line->event_id)
				c->last_event_id = line->event_id;
			return;
		}
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			ctl_client_close(c);
			return;
		}
		o.off = w > 0 ? (size_t)w : 0;
		if (w > 0 && line->event_id)
			c->last_event_id = line->event_id;
	}
	if (out_grow(c) < 0) {
		ctl_client_close(c);
		return;
	}
	line->refs++;
	*out_at(c, c->out_n) = o;
	c->out_n++;
	count_in(c, &o);
	if (c->out_n == 1) {
		ctl_client_watch(c); /* output now waits for the client */
		ctl_client_poll(c);
	}
	/* Not now: the caller may be going through a list of clients or
	 * watchers, which dropping another would change under it. */
	if (ctl->held > ctl->h->cfg.max_unread_total &&
	    !uv_is_active((uv_handle_t *)&ctl->shed))
		uv_timer_start(&ctl->shed, on_shed, 0, 0);
}

/*
 * The last entry holds `line` and none of it is written: put `with` in
 * its place (a reference is taken). False when that is not so.
 */
static bool replace_last(struct ctl_client *c, const struct ctl_line *line,
			 struct ctl_line *with)
{
	struct ctl_out *o;

	if (!line || c->out_n == 0)
		return false;
	o = out_at(c, c->out_n - 1);
	if (o->line != line || o->off > 0)
		return false;
	count_out(c, o);
	ctl_line_unref(o->line);
	with->refs++;
	o->line = with;
	count_in(c, o);
	return true;
}

static void queue_text(struct ctl_client *c, const char *p, size_t n)
{
	struct ctl_line *l = line_copy(p, n);

	if (!l) {
		ctl_client_close(c);
		return;
	}
	queue_line(c, l);
	ctl_line_unref(l);
}

void ctl_output_release(struct ctl_client *c)
{
	while (c->out_n > 0) {
		struct ctl_out *o = out_at(c, c->out_n - 1);

		count_out(c, o);
		ctl_line_unref(o->line);
		c->out_n--;
	}
	maybe_trim(c->ctl);
}

void ctl_output_free(struct ctl_client *c)
{
	free(c->outq);
	c->outq = NULL;
}

/* A dropped listener: its events or changes not yet begun go. */
static void discard_feed(struct ctl_client *c)
{
	while (c->out_n > (out_started(c) ? 1u : 0u)) {
		struct ctl_out *o = out_at(c, c->out_n - 1);

		if (!o->line->feed)
			break;
		count_out(c, o);
		ctl_line_unref(o->line);
		c->out_n--;
	}
	maybe_trim(c->ctl);
}

/* ---- dropping clients that fall behind ---- */

/* A follower's or watcher's last line: why it was dropped. */
static json_t *dropped_line(const struct ctl_client *c, size_t unread,
			    bool over_total)
{
	char why[200], msg[512];

	if (over_total)
		snprintf(why, sizeof(why),
			 "it held %zu unread bytes, the most of all clients "
			 "when together they passed [control] "
			 "max-unread-total",
			 unread);
	else
		snprintf(why, sizeof(why), "%zu bytes unread", unread);
	if (c->follow) {
		snprintf(msg, sizeof(msg),
			 "this client read the event stream too slowly (%s); "
			 "events after id %lld were not sent: `vmic events "
			 "--since` shows them",
			 why, (long long)c->last_event_id);
		return json_pack("{s:{s:s, s:s, s:I}}", "dropped", "code",
				 "overrun", "message", msg, "last_id",
				 (json_int_t)c->last_event_id);
	}
	snprintf(msg, sizeof(msg),
		 "this client read the changes too slowly (%s); later ones "
		 "were not sent",
		 why);
	return json_pack("{s:{s:s, s:s}}", "dropped", "code", "overrun",
			 "message", msg);
}

/*
 * Drop a client that fell behind: a follower or watcher loses its unsent
 * lines and is told why after those in flight, then closed once it read
 * them; any other client is closed at once.
 */
static void client_drop(struct ctl_client *c, bool over_total)
{
	size_t unread = c->out_bytes;
	struct ctl_line *line;
	json_t *o;

	c->dropped = true;
	c->ctl->dropped++;
	if (!ctl_client_listens(c)) {
		if (over_total)
			log_warning("dropping a control client that held %zu "
				    "unread bytes, the most when all clients "
				    "together passed [control] "
				    "max-unread-total",
				    unread);
		else
			log_warning("dropping a control client that stopped "
				    "reading (%zu bytes unread)",
				    unread);
		ctl_client_close(c);
		return;
	}
	log_warning("dropping %s control client that fell %zu bytes "
		    "behind%s",
		    c->follow ? "an `events --follow`" : "a watching", unread,
		    over_total ? " (the most when all clients together passed "
				 "[control] max-unread-total)"
			       : "");
	discard_feed(c);
	o = dropped_line(c, unread, over_total);
	line = o ? ctl_line_json(o) : NULL;
	json_decref(o);
	if (line)
		queue_line(c, line);
	ctl_line_unref(line);
	ctl_client_finish(c);
}

/* All clients hold more than max-unread-total: drop the largest first. */
static void on_shed(uv_timer_t *t)
{
	struct ctl *ctl = t->data;

	while (ctl->held > ctl->h->cfg.max_unread_total) {
		struct ctl_client *worst = NULL;

		for (struct ctl_client *c = ctl->clients; c; c = c->next)
			if (!c->closing && !c->dropped && c->out_bytes &&
			    (!worst || c->out_bytes > worst->out_bytes))
				worst = c;
		if (!worst)
			break;
		client_drop(worst, true);
	}
}

/* Send one line (not taken) within the client's max-unread. */
static void ctl_client_write(struct ctl_client *c, struct ctl_line *line)
{
	if (!c->closing && !c->finish_after_write &&
	    c->out_bytes + line->len + ENTRY_COST >
		    c->ctl->h->cfg.max_unread) {
		client_drop(c, false);
		return;
	}
	queue_line(c, line);
}

void ctl_client_send_line(struct ctl_client *c, struct ctl_line *line,
			  const struct ctl_line *replaces)
{
	if (c->closing || c->finish_after_write)
		return;
	if (replace_last(c, replaces, line))
		return;
	ctl_client_write(c, line);
}

void ctl_client_send_json(struct ctl_client *c, json_t *o)
{
	struct ctl_line *line = ctl_line_json(o);

	if (!line) {
		ctl_client_close(c);
		return;
	}
	ctl_client_write(c, line);
	ctl_line_unref(line);
}

void ctl_output_init(struct ctl *ctl)
{
	uv_timer_init(ctl->h->loop, &ctl->shed);
	uv_timer_init(ctl->h->loop, &ctl->trim);
	ctl->shed.data = ctl;
	ctl->trim.data = ctl;
}

int ctl_output_close(struct ctl *ctl, uv_close_cb done)
{
	uv_close((uv_handle_t *)&ctl->shed, done);
	uv_close((uv_handle_t *)&ctl->trim, done);
	return 2;
}

/* ---- replies ---- */

/* The request is answered: free it and read the client's next line. */
static void ctl_request_finish(struct ctl_request *rq)
{
	struct ctl_client *c = rq->c;
	bool resume = rq->async;

	if (c)
		c->pending = NULL;
	ctl_request_free(rq);
	if (c && resume && !c->closing)
		ctl_client_process(c);
}

static void ctl_request_done(struct ctl_request *rq, json_t *reply)
{
	if (rq->c)
		ctl_client_send_json(rq->c, reply);
	json_decref(reply);
	ctl_request_finish(rq);
}

static json_t *reply_head(struct ctl_request *rq, bool ok)
{
	json_t *o = json_object();

	json_object_set(o, "id", rq->id ? rq->id : json_null());
	json_object_set_new(o, "ok", json_boolean(ok));
	return o;
}

void ctl_reply_ok(struct ctl_request *rq, json_t *result)
{
	json_t *o = reply_head(rq, true);

	json_object_set_new(o, "result", result ? result : json_object());
	ctl_request_done(rq, o);
}

static json_t *error_reply(struct ctl_request *rq, json_t *error)
{
	json_t *o = reply_head(rq, false);

	json_object_set_new(o, "error", error);
	return o;
}

void ctl_message_sane(char *msg, size_t size)
{
	char copy[2048];
	size_t n = strlen(msg);

	if (vmic_utf8_valid(msg, n))
		return;
	/* Bytes of the client's (a parser's error quoting them, a name
	 * cut at 64 bytes) that are no UTF-8 would fail the whole reply. */
	n = MIN(n, sizeof(copy) - 1);
	memcpy(copy, msg, n);
	vmic_utf8_sanitize(msg, size, copy, n);
}

void ctl_reply_error(struct ctl_request *rq, const char *code,
		     const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_message_sane(msg, sizeof(msg));
	ctl_request_done(rq, error_reply(rq, json_pack("{s:s, s:s}", "code",
						       code, "message", msg)));
}

/* ---- streamed replies ---- */

/*
 * The one-line form up to the array's opening bracket: the reply head
 * and the result's other members, then "KEY":[. Built from the JSON text,
 * so the members keep jansson's escaping.
 */
static void stream_prefix(struct ctl_request *rq, json_t *result,
			  const char *key, struct ctl_text *out)
{
	json_t *o = reply_head(rq, true), *k = json_string(key);
	char *head, *ks;

	json_object_set(o, "result", result);
	head = json_dumps(o, JSON_COMPACT);
	ks = json_dumps(k, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(o);
	json_decref(k);
	if (!head || !ks) {
		out->err = -ENOMEM;
	} else {
		/* head ends with "}}": drop both, then add the array's key. */
		ctl_text_append(out, head, strlen(head) - 2, false);
		if (json_object_size(result) > 0)
			ctl_text_append(out, ",", 1, false);
		ctl_text_append(out, ks, strlen(ks), false);
		ctl_text_append(out, ":[", 2, false);
	}
	free(head);
	free(ks);
}

/* The paged form's first line: the result without its array, and
 * "pages" naming it. */
static void paged_head(struct ctl_request *rq, json_t *result,
		       const char *key, struct ctl_text *out)
{
	json_t *o = reply_head(rq, true);
	char *s;

	json_object_set(o, "result", result);
	json_object_set_new(o, "pages", json_string(key));
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s) {
		out->err = -ENOMEM;
		return;
	}
	ctl_text_append(out, s, strlen(s), false);
	ctl_text_append(out, "\n", 1, false);
	free(s);
}

void ctl_reply_stream(struct ctl_request *rq, json_t *result, const char *key,
		      const struct ctl_stream_ops *ops, void *ud)
{
	struct ctl_client *c = rq->c;
	struct ctl_text head = { 0 };
	struct ctl_stream *s;

	if (!c) {
		ops->done(ud);
		json_decref(result);
		ctl_request_finish(rq);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (s && rq->paged) {
		s->id = json_dumps(rq->id ? rq->id : json_null(),
				   JSON_COMPACT | JSON_ENCODE_ANY);
		paged_head(rq, result, key, &head);
	} else if (s) {
		stream_prefix(rq, result, key, &head);
	}
	json_decref(result);
	if (!s || head.err || (rq->paged && !s->id)) {
		if (s)
			free(s->id);
		free(s);
		free(head.p);
		ops->done(ud);
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	s->rq = rq;
	s->ops = ops;
	s->ud = ud;
	s->paged = rq->paged;
	s->first = true;
	/* The request stays pending until the tail: later lines wait. */
	c->stream = s;
	queue_text(c, head.p, head.len);
	free(head.p);
	ctl_stream_pump(c);
}

void ctl_stream_fail(struct ctl_request *rq, const char *code,
		     const char *fmt, ...)
{
	struct ctl_client *c = rq->c;
	struct ctl_stream *s = c ? c->stream : NULL;
	va_list ap;

	if (!s || s->rq != rq || s->failed)
		return;
	s->failed = true;
	snprintf(s->err_code, sizeof(s->err_code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(s->err_msg, sizeof(s->err_msg), fmt, ap);
	va_end(ap);
	ctl_message_sane(s->err_msg, sizeof(s->err_msg));
}

void ctl_text_append(struct ctl_text *t, const char *s, size_t n, bool item)
{
	size_t need = t->len + n + 2;

	if (t->err)
		return;
	if (need > t->cap) {
		size_t cap = need > 2 * t->cap ? need : 2 * t->cap;
		char *p = realloc(t->p, cap);

		if (!p) {
			t->err = -ENOMEM;
			return;
		}
		t->p = p;
		t->cap = cap;
	}
	if (item && t->len > 0)
		t->p[t->len++] = ',';
	memcpy(t->p + t->len, s, n);
	t->len += n;
	if (item)
		t->items++;
}

void ctl_text_append_items(struct ctl_text *t, const char *s, size_t n,
			   size_t count)
{
	if (n == 0)
		return;
	ctl_text_append(t, s, n, true);
	/* One was counted; unsigned, so a count of 0 (a producer's slip)
	 * leaves the text in and the count as it was. */
	if (!t->err)
		t->items += count - 1;
}

void ctl_text_append_json(struct ctl_text *t, json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	if (!s) {
		t->err = -ENOMEM;
		return;
	}
	ctl_text_append(t, s, strlen(s), true);
	free(s);
}

/* The one-line form: a comma between batches, the tail after the last. */
static void inline_text(struct ctl_stream *s, const struct ctl_text *t,
			enum ctl_stream_next next, struct ctl_text *out)
{
	if (t->len && !s->first)
		ctl_text_append(out, ",", 1, false);
	if (t->len)
		s->first = false;
	ctl_text_append(out, t->p ? t->p : "", t->len, false);
	if (next == CTL_STREAM_DONE)
		ctl_text_append(out, "]}}\n", 4, false);
}

/* The paged form: the batch as a page line; after the last, the end
 * line with the count, or the error that ended the reply early. */
static void paged_text(struct ctl_stream *s, const struct ctl_text *t,
		       enum ctl_stream_next next, struct ctl_text *out)
{
	char end[96];
	int n;

	if (t->len) {
		ctl_text_append(out, "{\"id\":", 6, false);
		ctl_text_append(out, s->id, strlen(s->id), false);
		ctl_text_append(out, ",\"page\":[", 9, false);
		ctl_text_append(out, t->p, t->len, false);
		ctl_text_append(out, "]}\n", 3, false);
		s->count += t->items;
	}
	if (next != CTL_STREAM_DONE)
		return;
	if (s->failed) {
		json_t *o = error_reply(s->rq,
					json_pack("{s:s, s:s}", "code",
						  s->err_code, "message",
						  s->err_msg));
		char *line = json_dumps(o, JSON_COMPACT);

		json_decref(o);
		if (!line) {
			out->err = -ENOMEM;
			return;
		}
		ctl_text_append(out, line, strlen(line), false);
		ctl_text_append(out, "\n", 1, false);
		free(line);
		return;
	}
	ctl_text_append(out, "{\"id\":", 6, false);
	ctl_text_append(out, s->id, strlen(s->id), false);
	n = snprintf(end, sizeof(end), ",\"end\":true,\"count\":%zu}\n",
		     s->count);
	ctl_text_append(out, end, (size_t)n, false);
}

/* Append one batch of items to the client's output; what the producer
 * said (after DONE the tail is written too). */
static enum ctl_stream_next stream_batch(struct ctl_client *c)
{
	struct ctl_stream *s = c->stream;
	struct ctl_text t = { 0 }, out = { 0 };
	enum ctl_stream_next next = s->ops->next(s->ud, &t, STREAM_BATCH);

	if (c->closing) {
		free(t.p);
		return CTL_STREAM_WAIT; /* the producer gave up on it */
	}
	if (next == CTL_STREAM_DONE && s->failed && !s->paged) {
		/* One line cannot say that it is incomplete: cut it off, so
		 * it never parses as a whole reply. */
		log_warning("a streamed reply failed midway (%s); its client "
			    "did not ask for pages, so its connection is cut",
			    s->err_msg);
		free(t.p);
		ctl_client_close(c);
		return CTL_STREAM_WAIT;
	}
	if (s->paged)
		paged_text(s, &t, next, &out);
	else
		inline_text(s, &t, next, &out);
	free(t.p);
	if (t.err || out.err) {
		free(out.p);
		ctl_client_close(c);
		return CTL_STREAM_WAIT; /* nothing more for this client */
	}
	if (out.len)
		queue_text(c, out.p, out.len);
	free(out.p);
	/* A failed write closes the client, and ends (frees) the stream. */
	if (c->closing)
		return CTL_STREAM_WAIT;
	s->waiting = next == CTL_STREAM_WAIT;
	return next;
}

static void stream_free(struct ctl_stream *s)
{
	free(s->id);
	free(s);
}

static void stream_end(struct ctl_client *c)
{
	struct ctl_stream *s = c->stream;

	c->stream = NULL;
	s->ops->done(s->ud);
	ctl_request_finish(s->rq);
	stream_free(s);
}

void ctl_stream_pump(struct ctl_client *c)
{
	for (int turn = 0; c->stream && !c->closing && !c->stream->waiting;
	     turn++) {
		if (c->out_bytes >= low_water(c))
			return; /* ctl_output_writable calls again */
		if (turn == STREAM_BATCHES_PER_TURN) {
			/* Let the loop run; go on in the next iteration. */
			ctl_client_later(c);
			return;
		}
		if (stream_batch(c) == CTL_STREAM_DONE) {
			if (c->stream && !c->closing)
				stream_end(c);
			return;
		}
	}
}

void ctl_stream_wake(struct ctl_request *rq)
{
	struct ctl_client *c = rq->c;

	/* Not waiting: the producer is being asked right now, and will be
	 * asked again. */
	if (!c || !c->stream || c->stream->rq != rq || !c->stream->waiting)
		return;
	c->stream->waiting = false;
	ctl_stream_pump(c);
}

void ctl_stream_abort(struct ctl_client *c)
{
	struct ctl_stream *s = c->stream;

	if (!s)
		return;
	c->stream = NULL;
	c->pending = NULL;
	s->ops->done(s->ud);
	ctl_request_free(s->rq);
	stream_free(s);
}

/* ---- events --follow ---- */

void ctl_request_follow(struct ctl_request *rq)
{
	struct ctl_client *c = rq->c;

	if (!c || c->follow)
		return;
	c->follow = true;
	c->ctl->followers++;
	/* The reply holds every event given an id so far. */
	c->last_event_id = rq->h->ev_next_id - 1;
}

bool ctl_has_followers(const struct hostd *h)
{
	return h->ctl && h->ctl->followers > 0;
}

void ctl_broadcast_event(struct hostd *h, json_t *event)
{
	json_int_t id = json_integer_value(json_object_get(event, "id"));
	struct ctl_line *line = NULL;
	json_t *o;

	if (!ctl_has_followers(h))
		return;
	/* One line for every follower. */
	o = json_pack("{s:O}", "event", event);
	if (o)
		line = ctl_line_json(o);
	json_decref(o);
	if (line) {
		line->feed = true;
		line->event_id = id;
	}
	for (struct ctl_client *c = h->ctl->clients, *next; c; c = next) {
		next = c->next;
		if (!c->follow || c->pending || c->finish_after_write)
			continue;
		if (line)
			ctl_client_write(c, line);
		else
			ctl_client_close(c); /* it would miss an event */
	}
	ctl_line_unref(line);
}

/* ---- a service's watch (kvp-watch) ---- */

struct ctl_watch {
	struct ctl_client *c;
	void (*gone)(void *ud);
	void *ud;
	bool starting; /* its reply is being written */
	bool ended;    /* the client went away meanwhile */
};

struct ctl_watch *ctl_watch_start(struct ctl_request *rq, json_t *result,
				  void (*gone)(void *ud), void *ud)
{
	struct ctl_client *c = rq->c;
	struct ctl_watch *w;

	if (!c || c->follow || c->watch) {
		ctl_reply_ok(rq, result);
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		json_decref(result);
		ctl_reply_error(rq, "internal", "out of memory");
		return NULL;
	}
	w->c = c;
	w->gone = gone;
	w->ud = ud;
	w->starting = true;
	/* Before the reply, which would read the client's next line. */
	c->watch = w;
	ctl_reply_ok(rq, result);
	w->starting = false;
	if (w->ended) {
		/* Writing the reply failed and closed the client: the
		 * caller still owns ud, and there is nothing to watch for. */
		free(w);
		return NULL;
	}
	return w;
}

void ctl_watch_send(struct ctl_watch *w, struct ctl_line *line)
{
	struct ctl_client *c = w->c;

	if (c->closing || c->finish_after_write)
		return;
	line->feed = true;
	ctl_client_write(c, line);
}

void ctl_watch_end(struct ctl_watch *w, json_t *last)
{
	struct ctl_client *c = w->c;

	c->watch = NULL;
	free(w);
	if (last && !c->closing && !c->finish_after_write)
		ctl_client_send_json(c, last);
	ctl_client_finish(c);
}

void ctl_watch_gone(struct ctl_client *c)
{
	struct ctl_watch *w = c->watch;

	if (!w)
		return;
	c->watch = NULL;
	if (w->starting) {
		w->ended = true; /* ctl_watch_start returns NULL */
		return;
	}
	w->gone(w->ud);
	free(w);
}
