/* SPDX-License-Identifier: MIT */
/*
 * The libvirt worker thread: every libvirt call hostd makes, and
 * libvirt's own event loop (virEventRunDefaultImpl), run here, so a slow
 * or hung libvirtd stalls this thread only, never hostd's loop and its
 * heartbeats. What it learns goes to the loop as messages (lv_post).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "common/macro.h"
#include "host/libvirt-internal.h"

uint64_t lv_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The worker's lv; one per process (libvirt's event loop is too). */
static struct lv *worker_lv;

static struct lv *lv_of(struct lv_uri *u, unsigned *idx)
{
	*idx = (unsigned)(u - worker_lv->uris);
	return worker_lv;
}

static struct lv_msg *msg_new(enum lv_msg_kind kind, unsigned uri)
{
	struct lv_msg *m = calloc(1, sizeof(*m));

	if (m) {
		m->kind = kind;
		m->uri = uri;
	}
	return m;
}

static void post_simple(struct lv *lv, enum lv_msg_kind kind, unsigned uri,
			const char *text)
{
	struct lv_msg *m = msg_new(kind, uri);

	if (!m)
		return;
	snprintf(m->text, sizeof(m->text), "%s", text ? text : "");
	lv_post(lv, m);
}

static void busy(struct lv_uri *u, bool on)
{
	atomic_store(&u->busy_since_us, on ? lv_now_us() : 0);
}

static const char *last_error(void)
{
	const char *e = virGetLastErrorMessage();

	return e ? e : "unknown libvirt error";
}

/* Read dom's XML and post it when it has a vmic channel. */
static void post_domain(struct lv *lv, unsigned idx, virDomainPtr dom)
{
	struct lv_uri *u = &lv->uris[idx];
	char err[LV_TEXT_MAX];
	struct lv_msg *m;
	char *xml;
	int active;

	busy(u, true);
	xml = virDomainGetXMLDesc(dom, 0);
	active = virDomainIsActive(dom);
	busy(u, false);
	if (!xml)
		return;
	m = msg_new(LV_MSG_DOMAIN, idx);
	if (!m) {
		free(xml);
		return;
	}
	if (lvx_extract(xml, strlen(xml), &m->dom, err, sizeof(err)) < 0) {
		const char *name = virDomainGetName(dom);

		m->kind = LV_MSG_STATE;
		snprintf(m->text, sizeof(m->text), "skipped domain '%.64s': %.160s",
			 name ? name : "?", err);
		m->status = -EINVAL;
	} else if (!m->dom.channel[0]) {
		free(m);
		m = NULL;
	}
	free(xml);
	if (m) {
		m->active = active == 1;
		lv_post(lv, m);
	}
}

static void list_domains(struct lv *lv, unsigned idx)
{
	struct lv_uri *u = &lv->uris[idx];
	virDomainPtr *doms = NULL;
	int n;

	busy(u, true);
	n = virConnectListAllDomains(u->conn, &doms, 0);
	busy(u, false);
	if (n < 0) {
		post_simple(lv, LV_MSG_STATE, idx, last_error());
		return;
	}
	post_simple(lv, LV_MSG_LIST_BEGIN, idx, NULL);
	for (int i = 0; i < n; i++) {
		post_domain(lv, idx, doms[i]);
		virDomainFree(doms[i]);
	}
	free(doms);
	post_simple(lv, LV_MSG_LIST_END, idx, NULL);
}

/* Name and UUID of dom into m->dom. */
static void domain_ids(virDomainPtr dom, struct lv_msg *m)
{
	const char *name = virDomainGetName(dom);

	snprintf(m->dom.name, sizeof(m->dom.name), "%s", name ? name : "");
	if (virDomainGetUUIDString(dom, m->dom.uuid) < 0)
		m->dom.uuid[0] = '\0';
}

static void post_ids(struct lv *lv, unsigned idx, enum lv_msg_kind kind,
		     virDomainPtr dom, uint64_t gap_us)
{
	struct lv_msg *m = msg_new(kind, idx);

	if (!m)
		return;
	domain_ids(dom, m);
	m->gap_us = gap_us;
	lv_post(lv, m);
}

/* Pause bookkeeping: how long a domain stood still when it resumes. */
static void paused_note(struct lv_uri *u, virDomainPtr dom)
{
	struct lv_paused *slot = &u->paused[0];
	char uuid[VIR_UUID_STRING_BUFLEN];

	if (virDomainGetUUIDString(dom, uuid) < 0)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(u->paused); i++) {
		if (strcmp(u->paused[i].uuid, uuid) == 0) {
			slot = &u->paused[i];
			break;
		}
		if (u->paused[i].since_us < slot->since_us)
			slot = &u->paused[i]; /* the oldest goes */
	}
	snprintf(slot->uuid, sizeof(slot->uuid), "%s", uuid);
	slot->since_us = lv_now_us();
}

static uint64_t paused_take(struct lv_uri *u, virDomainPtr dom)
{
	char uuid[VIR_UUID_STRING_BUFLEN];

	if (virDomainGetUUIDString(dom, uuid) < 0)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(u->paused); i++) {
		if (strcmp(u->paused[i].uuid, uuid) == 0) {
			u->paused[i].uuid[0] = '\0';
			return lv_now_us() - u->paused[i].since_us;
		}
	}
	return 0;
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event,
			int detail, void *opaque)
{
	unsigned idx;
	struct lv *lv = lv_of(opaque, &idx);
	struct lv_uri *u = opaque;

	(void)conn;
	switch (event) {
	case VIR_DOMAIN_EVENT_DEFINED:
	case VIR_DOMAIN_EVENT_STARTED:
		post_domain(lv, idx, dom);
		break;
	case VIR_DOMAIN_EVENT_STOPPED:
		post_ids(lv, idx, detail == VIR_DOMAIN_EVENT_STOPPED_MIGRATED
					  ? LV_MSG_LEFT
					  : LV_MSG_STOPPED,
			 dom, 0);
		break;
	case VIR_DOMAIN_EVENT_UNDEFINED:
		post_ids(lv, idx, LV_MSG_UNDEFINED, dom, 0);
		break;
	case VIR_DOMAIN_EVENT_SUSPENDED:
		paused_note(u, dom);
		break;
	case VIR_DOMAIN_EVENT_RESUMED:
		post_ids(lv, idx, LV_MSG_RESUMED, dom, paused_take(u, dom));
		break;
	default:
		break;
	}
	return 0;
}

static void schedule_retry(struct lv *lv, unsigned idx);

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
	unsigned idx;
	struct lv *lv = lv_of(opaque, &idx);
	static const char *const why[] = {
		[VIR_CONNECT_CLOSE_REASON_ERROR] = "connection error",
		[VIR_CONNECT_CLOSE_REASON_EOF] = "libvirtd closed the connection",
		[VIR_CONNECT_CLOSE_REASON_KEEPALIVE] =
			"libvirtd stopped answering keepalives",
		[VIR_CONNECT_CLOSE_REASON_CLIENT] = "closed",
	};
	char text[LV_TEXT_MAX];

	(void)conn;
	snprintf(text, sizeof(text), "disconnected: %s",
		 reason >= 0 && (size_t)reason < ARRAY_SIZE(why) && why[reason]
			 ? why[reason]
			 : "connection lost");
	post_simple(lv, LV_MSG_STATE, idx, text);
	schedule_retry(lv, idx);
}

static void drop_conn(struct lv_uri *u)
{
	if (!u->conn)
		return;
	if (u->cb_id >= 0)
		virConnectDomainEventDeregisterAny(u->conn, u->cb_id);
	u->cb_id = -1;
	virConnectUnregisterCloseCallback(u->conn, on_close);
	virConnectClose(u->conn);
	u->conn = NULL;
}

static void connect_uri(struct lv *lv, unsigned idx)
{
	struct lv_uri *u = &lv->uris[idx];
	char text[LV_TEXT_MAX];

	drop_conn(u);
	busy(u, true);
	u->conn = virConnectOpen(u->uri);
	busy(u, false);
	if (!u->conn) {
		snprintf(text, sizeof(text), "disconnected: %s", last_error());
		post_simple(lv, LV_MSG_STATE, idx, text);
		schedule_retry(lv, idx);
		return;
	}
	virConnectRegisterCloseCallback(u->conn, on_close, u, NULL);
	/* Remote connections: a libvirtd that stops answering is noticed
	 * (5 s x 3); local drivers do not support it and say so. */
	virConnectSetKeepAlive(u->conn, 5, 3);
	u->cb_id = virConnectDomainEventRegisterAny(
		u->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
		VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), u, NULL);
	if (u->cb_id < 0) {
		snprintf(text, sizeof(text),
			 "disconnected: cannot follow lifecycle events: %s",
			 last_error());
		drop_conn(u);
		post_simple(lv, LV_MSG_STATE, idx, text);
		schedule_retry(lv, idx);
		return;
	}
	u->retry_ms = 0;
	post_simple(lv, LV_MSG_STATE, idx, "connected");
	list_domains(lv, idx);
}

static void on_retry(int timer, void *opaque)
{
	unsigned idx;
	struct lv *lv = lv_of(opaque, &idx);
	struct lv_uri *u = opaque;

	virEventRemoveTimeout(timer);
	u->retry_timer = -1;
	connect_uri(lv, idx);
}

/* Connect again later: 1 s, doubling up to a minute. */
static void schedule_retry(struct lv *lv, unsigned idx)
{
	struct lv_uri *u = &lv->uris[idx];

	if (u->retry_timer >= 0 || atomic_load(&lv->stop))
		return;
	u->retry_ms = u->retry_ms ? u->retry_ms * 2 : LV_RETRY_MIN_MS;
	if (u->retry_ms > LV_RETRY_MAX_MS)
		u->retry_ms = LV_RETRY_MAX_MS;
	u->retry_timer = virEventAddTimeout((int)u->retry_ms, on_retry, u,
					    NULL);
}

static void run_destroy(struct lv *lv, struct lv_cmd *c)
{
	struct lv_uri *u = &lv->uris[c->uri];
	struct lv_msg *m = msg_new(LV_MSG_CALL_DONE, c->uri);
	virDomainPtr dom = NULL;

	if (!m)
		return;
	m->token = c->token;
	busy(u, true);
	if (!u->conn) {
		m->status = -ENOTCONN;
		snprintf(m->text, sizeof(m->text), "not connected to %.200s",
			 u->uri);
	} else if (!(dom = virDomainLookupByUUIDString(u->conn, c->uuid)) ||
		   virDomainDestroy(dom) < 0) {
		m->status = -EIO;
		snprintf(m->text, sizeof(m->text), "virDomainDestroy: %s",
			 last_error());
	} else {
		snprintf(m->text, sizeof(m->text),
			 "destroyed through libvirt (%.200s)", u->uri);
	}
	busy(u, false);
	if (dom)
		virDomainFree(dom);
	lv_post(lv, m);
}

/* def with c->xml inserted before its last </devices>, or NULL (with
 * the reason in m) when it has no devices or a vmic channel already. */
static char *with_channel(const char *def, const struct lv_cmd *c,
			  struct lv_msg *m)
{
	const char *end = NULL, *p = def;
	size_t head, add = strlen(c->xml), n = strlen(def);
	char *out;

	if (strstr(def, "name='" LVX_PORT_NAME "'") ||
	    strstr(def, "name=\"" LVX_PORT_NAME "\"")) {
		m->status = -EEXIST;
		snprintf(m->text, sizeof(m->text), "%.64s already has an "
			 LVX_PORT_NAME " channel", c->name);
		return NULL;
	}
	while ((p = strstr(p, "</devices>")))
		end = p++;
	if (!end || n + add + 1 > LVX_XML_MAX) {
		m->status = -EINVAL;
		snprintf(m->text, sizeof(m->text), "the definition of %.64s "
			 "has no <devices> to add the channel to", c->name);
		return NULL;
	}
	out = malloc(n + add + 1);
	if (!out) {
		m->status = -ENOMEM;
		snprintf(m->text, sizeof(m->text), "out of memory");
		return NULL;
	}
	head = (size_t)(end - def);
	memcpy(out, def, head);
	memcpy(out + head, c->xml, add);
	memcpy(out + head + add, end, n - head + 1);
	return out;
}

/*
 * Add the channel to the domain's persistent definition: its inactive
 * XML with the <channel> added, defined again (what `virsh edit` does;
 * every driver has virDomainDefineXML, not every one device attach). It
 * takes effect at the next start.
 */
static void run_attach(struct lv *lv, struct lv_cmd *c)
{
	struct lv_uri *u = &lv->uris[c->uri];
	struct lv_msg *m = msg_new(LV_MSG_CALL_DONE, c->uri);
	virDomainPtr dom = NULL, defined = NULL;
	char *def = NULL, *next = NULL;

	if (!m)
		return;
	m->token = c->token;
	busy(u, true);
	if (!u->conn) {
		m->status = -ENOTCONN;
		snprintf(m->text, sizeof(m->text), "not connected to %.200s",
			 u->uri);
	} else if (!(dom = virDomainLookupByName(u->conn, c->name))) {
		m->status = -ENOENT;
		snprintf(m->text, sizeof(m->text), "%s", last_error());
	} else if (!(def = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE |
							    VIR_DOMAIN_XML_SECURE))) {
		m->status = -EIO;
		snprintf(m->text, sizeof(m->text), "virDomainGetXMLDesc: %s",
			 last_error());
	} else if ((next = with_channel(def, c, m)) &&
		   !(defined = virDomainDefineXML(u->conn, next))) {
		m->status = -EIO;
		snprintf(m->text, sizeof(m->text), "virDomainDefineXML: %s",
			 last_error());
	} else if (defined) {
		snprintf(m->text, sizeof(m->text),
			 "added to the definition of %.64s on %.80s; it takes "
			 "effect when the domain next starts",
			 c->name, u->uri);
	}
	busy(u, false);
	free(def);
	free(next);
	lv_post(lv, m); /* m belongs to the loop now */
	if (dom)
		virDomainFree(dom);
	if (defined)
		virDomainFree(defined);
}

/* The loop queued commands or asks us to stop. */
static void on_wake(int watch, int fd, int events, void *opaque)
{
	struct lv *lv = opaque;
	struct lv_cmd *c;
	uint64_t v;

	(void)watch;
	(void)events;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	for (;;) {
		pthread_mutex_lock(&lv->mu);
		c = lv->cmds;
		if (c) {
			lv->cmds = c->next;
			if (!lv->cmds)
				lv->cmds_tail = NULL;
		}
		pthread_mutex_unlock(&lv->mu);
		if (!c)
			break;
		if (atomic_load(&lv->stop))
			;
		else if (c->kind == LV_CMD_ATTACH)
			run_attach(lv, c);
		else
			run_destroy(lv, c);
		free(c);
	}
}

static void silence(void *ud, virErrorPtr e)
{
	(void)ud;
	(void)e; /* errors are read with virGetLastErrorMessage */
}

void lv_worker_main(void *arg)
{
	struct lv *lv = arg;
	int watch;

	worker_lv = lv;
	virSetErrorFunc(NULL, silence);
	if (virEventRegisterDefaultImpl() < 0) {
		post_simple(lv, LV_MSG_STATE, 0,
			    "disconnected: libvirt's event loop does not start");
		return;
	}
	watch = virEventAddHandle(lv->wake_fd, VIR_EVENT_HANDLE_READABLE,
				  on_wake, lv, NULL);
	for (unsigned i = 0; i < lv->nuris; i++) {
		lv->uris[i].cb_id = -1;
		lv->uris[i].retry_timer = -1;
	}
	for (unsigned i = 0; i < lv->nuris && !atomic_load(&lv->stop); i++)
		connect_uri(lv, i);
	while (!atomic_load(&lv->stop))
		if (virEventRunDefaultImpl() < 0)
			break;
	for (unsigned i = 0; i < lv->nuris; i++) {
		if (lv->uris[i].retry_timer >= 0)
			virEventRemoveTimeout(lv->uris[i].retry_timer);
		drop_conn(&lv->uris[i]);
	}
	if (watch >= 0)
		virEventRemoveHandle(watch);
}
