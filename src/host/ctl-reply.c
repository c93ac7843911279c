/* SPDX-License-Identifier: MIT */
/*
 * What the control socket writes: replies, streamed replies and event
 * lines, with one rule on memory: a client never holds more than
 * [control] max-unread bytes of unwritten output, whatever it asked for.
 *
 * Small replies are written whole. A reply that holds a large array
 * (`list` of 10,000 VMs) is streamed: the head is written, then the
 * array's items a batch at a time while the client's unwritten output is
 * below half of max-unread, then the tail. So a client that stops
 * reading costs a bounded amount of memory, and building the answer
 * never holds the loop for more than one batch. A follower of `events`
 * that falls behind by max-unread is told so in a last line and dropped; a
 * client that is being closed and still does not read is cut off after
 * CTL_DRAIN_MS.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ctl-internal.h"

/* Items per batch of a streamed reply, and batches per loop iteration. */
#define STREAM_BATCH 64
#define STREAM_BATCHES_PER_TURN 4

struct ctl_stream {
	struct ctl_request *rq;
	const struct ctl_stream_ops *ops;
	void *ud;
	bool first;   /* no item written yet */
	bool waiting; /* the producer fetches; it wakes us */
};

/*
 * A streamed reply adds its next batch only below half of max-unread, so
 * the batch (at most STREAM_BATCH items of a few KiB) stays within it.
 */
static size_t low_water(const struct ctl_client *c)
{
	return c->ctl->h->cfg.max_unread / 2;
}

struct ctl_write {
	uv_write_t req;
	struct ctl_client *c;
	char *data;
	size_t len;
};

static void ctl_on_write(uv_write_t *req, int status)
{
	struct ctl_write *w = req->data;
	struct ctl_client *c = w->c;

	c->out_bytes -= w->len;
	free(w->data);
	free(w);
	if (c->closing)
		return;
	if (status < 0) {
		ctl_client_close(c);
		return;
	}
	/* It reads: the cut-off starts over. */
	ctl_client_watch(c);
	if (c->finish_after_write && c->out_bytes == 0)
		ctl_client_close(c);
	else if (c->stream && c->out_bytes < low_water(c))
		ctl_stream_pump(c);
}

/* Queue data (taking ownership) without looking at the cap. */
static void queue_write(struct ctl_client *c, char *data, size_t len)
{
	struct ctl_write *w;
	uv_buf_t b = uv_buf_init(data, (unsigned)len);
	int r = 0;

	if (c->closing) {
		free(data);
		return;
	}
	if (c->out_bytes == 0) {
		r = uv_try_write((uv_stream_t *)&c->pipe, &b, 1);
		if (r == (int)len) {
			free(data);
			return;
		}
		if (r < 0 && r != UV_EAGAIN) {
			free(data);
			ctl_client_close(c);
			return;
		}
		if (r < 0)
			r = 0;
	}
	w = malloc(sizeof(*w));
	if (!w) {
		free(data);
		ctl_client_close(c);
		return;
	}
	w->c = c;
	w->data = data;
	w->len = len - (size_t)r;
	w->req.data = w;
	b = uv_buf_init(data + r, (unsigned)w->len);
	c->out_bytes += w->len;
	if (c->out_bytes == w->len)
		ctl_client_watch(c); /* output now waits for the client */
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, ctl_on_write) <
	    0) {
		c->out_bytes -= w->len;
		free(data);
		free(w);
		ctl_client_close(c);
	}
}

/* A JSON value as one compact line; NULL when out of memory. */
static char *json_line(json_t *o, size_t *len)
{
	size_t n = json_dumpb(o, NULL, 0, JSON_COMPACT);
	char *buf;

	if (n == 0 || !(buf = malloc(n + 1)))
		return NULL;
	json_dumpb(o, buf, n, JSON_COMPACT);
	buf[n] = '\n';
	*len = n + 1;
	return buf;
}

/* A follower that fell behind: say so in a last line, then drop it. */
static void follower_overrun(struct ctl_client *c)
{
	char msg[256];
	json_t *o;
	size_t len;
	char *line;

	snprintf(msg, sizeof(msg),
		 "this client read the event stream too slowly (%zu bytes "
		 "unread); events after id %lld were not sent: `vmic events "
		 "--since` shows them",
		 c->out_bytes, (long long)c->last_event_id);
	log_warning("dropping an `events --follow` client that fell %zu bytes "
		    "behind",
		    c->out_bytes);
	o = json_pack("{s:{s:s, s:s, s:I}}", "dropped", "code", "overrun",
		      "message", msg, "last_id", (json_int_t)c->last_event_id);
	line = o ? json_line(o, &len) : NULL;
	json_decref(o);
	if (line)
		queue_write(c, line, len);
	ctl_client_finish(c);
}

/* A watcher that fell behind: a last line, then it is dropped. */
static void watcher_overrun(struct ctl_client *c)
{
	char msg[256];
	json_t *o;
	size_t len;
	char *line;

	snprintf(msg, sizeof(msg),
		 "this client read the changes too slowly (%zu bytes unread); "
		 "later ones were not sent",
		 c->out_bytes);
	log_warning("dropping a watching client that fell %zu bytes behind",
		    c->out_bytes);
	o = json_pack("{s:{s:s, s:s}}", "dropped", "code", "overrun",
		      "message", msg);
	line = o ? json_line(o, &len) : NULL;
	json_decref(o);
	if (line)
		queue_write(c, line, len);
	ctl_client_finish(c);
}

/* Send one line (data ends with '\n'), taking ownership, within the cap. */
static void ctl_client_write(struct ctl_client *c, char *data, size_t len)
{
	if (!c->closing && !c->finish_after_write &&
	    c->out_bytes + len > c->ctl->h->cfg.max_unread) {
		free(data);
		if (c->follow) {
			follower_overrun(c);
			return;
		}
		if (c->watch) {
			watcher_overrun(c);
			return;
		}
		log_warning("dropping a control client that stopped reading "
			    "(%zu bytes unread)",
			    c->out_bytes);
		ctl_client_close(c);
		return;
	}
	queue_write(c, data, len);
}

void ctl_client_send_json(struct ctl_client *c, json_t *o)
{
	size_t len;
	char *line = json_line(o, &len);

	if (!line) {
		ctl_client_close(c);
		return;
	}
	ctl_client_write(c, line, len);
}

/* ---- replies ---- */

/* The request is answered: free it and read the client's next line. */
static void ctl_request_finish(struct ctl_request *rq)
{
	struct ctl_client *c = rq->c;
	bool resume = rq->async;

	if (c)
		c->pending = NULL;
	json_decref(rq->id);
	free(rq);
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

void ctl_reply_error(struct ctl_request *rq, const char *code,
		     const char *fmt, ...)
{
	json_t *o = reply_head(rq, false);
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_set_new(o, "error", json_pack("{s:s, s:s}", "code", code,
						  "message", msg));
	ctl_request_done(rq, o);
}

/* ---- streamed replies ---- */

/*
 * The reply up to the array's opening bracket: the reply head and the
 * result's other members, then "KEY":[. Built from the JSON text, so the
 * members keep jansson's escaping.
 */
static char *stream_prefix(struct ctl_request *rq, json_t *result,
			   const char *key, size_t *len)
{
	json_t *o = reply_head(rq, true), *k = json_string(key);
	size_t hn, kn;
	char *head, *ks, *out = NULL;

	json_object_set(o, "result", result);
	head = json_dumps(o, JSON_COMPACT);
	ks = json_dumps(k, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(o);
	json_decref(k);
	if (!head || !ks)
		goto out;
	/* head ends with "}}": drop both, then add the array's key. */
	hn = strlen(head) - 2;
	kn = strlen(ks);
	out = malloc(hn + kn + 4);
	if (!out)
		goto out;
	memcpy(out, head, hn);
	*len = hn;
	if (json_object_size(result) > 0)
		out[(*len)++] = ',';
	memcpy(out + *len, ks, kn);
	*len += kn;
	out[(*len)++] = ':';
	out[(*len)++] = '[';
out:
	free(head);
	free(ks);
	return out;
}

void ctl_reply_stream(struct ctl_request *rq, json_t *result, const char *key,
		      const struct ctl_stream_ops *ops, void *ud)
{
	struct ctl_client *c = rq->c;
	struct ctl_stream *s;
	size_t len;
	char *prefix;

	if (!c) {
		ops->done(ud);
		json_decref(result);
		ctl_request_finish(rq);
		return;
	}
	s = calloc(1, sizeof(*s));
	prefix = s ? stream_prefix(rq, result, key, &len) : NULL;
	json_decref(result);
	if (!prefix) {
		free(s);
		ops->done(ud);
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	s->rq = rq;
	s->ops = ops;
	s->ud = ud;
	s->first = true;
	/* The request stays pending until the tail: later lines wait. */
	c->stream = s;
	queue_write(c, prefix, len);
	ctl_stream_pump(c);
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

/* Append one batch of items to the client's output; what the producer
 * said (after DONE the tail is written too). */
static enum ctl_stream_next stream_batch(struct ctl_client *c)
{
	struct ctl_stream *s = c->stream;
	struct ctl_text t = { 0 }, out = { 0 };
	enum ctl_stream_next next = s->ops->next(s->ud, &t, STREAM_BATCH);

	/* A comma between this batch and the one before. */
	if (t.len && !s->first)
		ctl_text_append(&out, ",", 1, false);
	if (t.len)
		s->first = false;
	ctl_text_append(&out, t.p ? t.p : "", t.len, false);
	if (next == CTL_STREAM_DONE)
		ctl_text_append(&out, "]}}\n", 4, false);
	free(t.p);
	if (t.err || out.err) {
		free(out.p);
		ctl_client_close(c);
		return CTL_STREAM_WAIT; /* nothing more for this client */
	}
	if (out.len)
		queue_write(c, out.p, out.len);
	else
		free(out.p);
	s->waiting = next == CTL_STREAM_WAIT;
	return next;
}

static void stream_end(struct ctl_client *c)
{
	struct ctl_stream *s = c->stream;

	c->stream = NULL;
	s->ops->done(s->ud);
	ctl_request_finish(s->rq);
	free(s);
}

void ctl_stream_pump(struct ctl_client *c)
{
	for (int turn = 0; c->stream && !c->closing && !c->stream->waiting;
	     turn++) {
		if (c->out_bytes >= low_water(c))
			return; /* ctl_on_write calls again */
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
	json_decref(s->rq->id);
	free(s->rq);
	free(s);
}

/* ---- events --follow ---- */

void ctl_request_follow(struct ctl_request *rq)
{
	struct ctl_client *c = rq->c;

	if (!c || c->follow)
		return;
	c->follow = true;
	c->ctl->followers++;
}

bool ctl_has_followers(const struct hostd *h)
{
	return h->ctl && h->ctl->followers > 0;
}

void ctl_broadcast_event(struct hostd *h, json_t *event)
{
	json_int_t id = json_integer_value(json_object_get(event, "id"));
	json_t *line;

	if (!ctl_has_followers(h))
		return;
	line = json_pack("{s:O}", "event", event);
	for (struct ctl_client *c = h->ctl->clients, *next; c; c = next) {
		next = c->next;
		if (!c->follow || c->pending || c->finish_after_write)
			continue;
		ctl_client_send_json(c, line);
		c->last_event_id = id;
	}
	json_decref(line);
}

/* ---- a service's watch (kvp-watch) ---- */

struct ctl_watch {
	struct ctl_client *c;
	void (*gone)(void *ud);
	void *ud;
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
	/* Before the reply, which would read the client's next line. */
	c->watch = w;
	ctl_reply_ok(rq, result);
	return w;
}

void ctl_watch_send(struct ctl_watch *w, json_t *line)
{
	struct ctl_client *c = w->c;

	if (c->closing || c->finish_after_write)
		return;
	ctl_client_send_json(c, line);
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
	w->gone(w->ud);
	free(w);
}
