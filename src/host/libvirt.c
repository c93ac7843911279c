/* SPDX-License-Identifier: MIT */
/*
 * The loop's side of hostd's libvirt source (libvirt.h): start and stop
 * the worker thread, take its messages off a bounded queue through a
 * uv_async_t, and turn them into registry changes, stored like a
 * command's (vm-added, vm-removed events) and noticed by the services
 * (a shut-off domain is stopped on purpose, a resumed one resyncs its
 * clock). Commands to the worker are libvirt-calls.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "hostd.h"
#include "host/ctl-internal.h"
#include "host/libvirt-internal.h"
#include "host/libvirt.h"


const char *libvirt_vm_uri(const struct vm *vm)
{
	const char *p = vm_power_off(vm);
	size_t n = strlen(LIBVIRT_POWER_PREFIX);

	if (p && strncmp(p, LIBVIRT_POWER_PREFIX, n) == 0 &&
	    strlen(p) > n + LVX_UUID_LEN + 1)
		return p + n + LVX_UUID_LEN + 1;
	return NULL;
}

int lv_vm_uri_index(struct lv *lv, const struct vm *vm)
{
	const char *uri = libvirt_vm_uri(vm);

	for (size_t i = 0; uri && i < lv->nuris; i++)
		if (strcmp(lv->uris[i].uri, uri) == 0)
			return (int)i;
	return -1;
}

/* ---- worker -> loop ---- */

void lv_post(struct lv *lv, struct lv_msg *m)
{
	pthread_mutex_lock(&lv->mu);
	while (lv->nmsgs >= LV_QUEUE_MAX && !atomic_load(&lv->stop))
		pthread_cond_wait(&lv->room, &lv->mu);
	if (atomic_load(&lv->stop)) {
		pthread_mutex_unlock(&lv->mu);
		free(m);
		return;
	}
	m->next = NULL;
	if (lv->msgs_tail)
		lv->msgs_tail->next = m;
	else
		lv->msgs = m;
	lv->msgs_tail = m;
	lv->nmsgs++;
	pthread_mutex_unlock(&lv->mu);
	uv_async_send(&lv->async);
}

static void on_async(uv_async_t *a)
{
	struct lv *lv = a->data;
	struct lv_msg *list, *next;

	pthread_mutex_lock(&lv->mu);
	list = lv->msgs;
	lv->msgs = lv->msgs_tail = NULL;
	lv->nmsgs = 0;
	pthread_cond_broadcast(&lv->room);
	pthread_mutex_unlock(&lv->mu);
	for (; list; list = next) {
		next = list->next;
		if (lv->h->stopping)
			free(list);
		else
			lv_handle(lv, list);
	}
}

/* ---- registry changes ---- */

static void on_added(struct hostd *h, struct store_txn *t, void *ud)
{
	struct vm *vm = ud;
	const char *msg;
	int r = store_txn_result(t, &msg);

	events_txn_done(h, t);
	if (r < 0 || h->stopping || vm_find(h, vm->name) ||
	    vm_register(h, vm) < 0) {
		if (r < 0)
			log_warning("libvirt domain %s not registered: %s",
				    vm->name, msg);
		vm_destroy(vm, DETACH_REMOVED);
		return;
	}
	vm_fd_room(h);
	conn_start(vm);
}

static void add_vm(struct lv *lv, unsigned idx, const struct lvx_domain *d)
{
	struct hostd *h = lv->h;
	char err[256], power[LV_URI_MAX + 64];
	struct vmic_channel ch;
	struct store_txn *t;
	struct event *e;
	struct vm *vm;

	if (h->nvms >= h->cfg.max_vms) {
		log_warning("libvirt domain %s not registered: %zu VMs are, "
			    "the most [daemon] max-vms allows",
			    d->name, h->nvms);
		return;
	}
	if (vm_channel_parse(d->channel, &ch, err, sizeof(err)) < 0) {
		log_warning("libvirt domain %s: channel %s: %s", d->name,
			    d->channel, err);
		return;
	}
	snprintf(power, sizeof(power), LIBVIRT_POWER_PREFIX "%s:%s", d->uuid,
		 lv->uris[idx].uri);
	vm = vm_new(h, d->name);
	if (!vm)
		return;
	vm->channel = ch;
	vmic_channel_format(&ch, vm->channel_uri, sizeof(vm->channel_uri));
	vm->power_off = strdup(power);
	t = store_txn_new(true);
	e = events_prepare(h, vm->name, NULL, "vm-added", NULL, NULL,
			   "found in libvirt (%s, domain %s) with channel %s",
			   lv->uris[idx].uri, d->uuid, vm->channel_uri);
	if (!vm->power_off || !t || !e || store_txn_vm_insert(t, vm) < 0) {
		event_unref(e);
		store_txn_free(t);
		vm_destroy(vm, DETACH_REMOVED);
		return;
	}
	store_txn_add_events(t, e);
	store_commit(h, t, on_added, vm);
}

static void on_removed(struct hostd *h, struct store_txn *t, void *ud)
{
	struct vm *vm = ud;
	const char *msg;

	if (store_txn_result(t, &msg) < 0)
		log_warning("removing %s: %s", vm->name, msg);
	events_txn_done(h, t);
	if (!vm->removed && !h->stopping)
		vm_destroy(vm, DETACH_REMOVED);
	vm_unref(vm);
}

/* The domain is gone from this host: unregister it. Its events stay in
 * the log (they are keyed by name, not tied to the registry). */
static void remove_vm(struct lv *lv, struct vm *vm, const char *why)
{
	struct hostd *h = lv->h;
	struct store_txn *t = store_txn_new(true);
	struct event *e;

	events_limit_flush(h, vm);
	e = events_prepare(h, vm->name, NULL, "vm-removed", NULL, NULL,
			   "unregistered: %s", why);
	if (!t || !e || store_txn_vm_delete(t, vm->name) < 0) {
		event_unref(e);
		store_txn_free(t);
		return;
	}
	store_txn_add_events(t, e);
	vm_ref(vm);
	store_commit(h, t, on_removed, vm);
}

static void on_updated(struct hostd *h, struct store_txn *t, void *ud)
{
	struct vm *vm = ud;
	const char *msg;

	if (store_txn_result(t, &msg) < 0)
		log_warning("updating %s: %s", vm->name, msg);
	events_txn_done(h, t);
	vm_unref(vm);
}

/* A known domain's channel or UUID changed (redefined): follow it. */
static void update_vm(struct lv *lv, unsigned idx, struct vm *vm,
		      const struct lvx_domain *d)
{
	char err[256], power[LV_URI_MAX + 64], canon[CHANNEL_URI_MAX];
	struct vmic_channel ch;
	struct store_txn *t;
	struct event *e;
	char *p;

	snprintf(power, sizeof(power), LIBVIRT_POWER_PREFIX "%s:%s", d->uuid,
		 lv->uris[idx].uri);
	if (vm_channel_parse(d->channel, &ch, err, sizeof(err)) < 0)
		return;
	vmic_channel_format(&ch, canon, sizeof(canon));
	if (strcmp(canon, vm->channel_uri) == 0 &&
	    strcmp(power, vm->power_off) == 0)
		return;
	p = strdup(power);
	t = store_txn_new(true);
	e = events_prepare(lv->h, vm->name, NULL, "vm-changed", NULL, NULL,
			   "libvirt domain %s now has channel %s", d->uuid,
			   canon);
	if (!p || !t || !e || store_txn_vm_update(t, vm->name, canon, p) < 0) {
		free(p);
		event_unref(e);
		store_txn_free(t);
		return;
	}
	store_txn_add_events(t, e);
	free(vm->power_off);
	vm->power_off = p;
	if (strcmp(canon, vm->channel_uri) != 0) {
		memcpy(vm->channel_uri, canon, sizeof(vm->channel_uri));
		vm->channel = ch;
		conn_restart(vm);
	}
	vm_touch(vm);
	vm_ref(vm);
	store_commit(lv->h, t, on_updated, vm);
}

/* A domain with a vmic channel: register it, or follow its changes. A
 * VM of that name registered by hand (or from another URI) wins. */
static void on_domain(struct lv *lv, unsigned idx, const struct lvx_domain *d,
		      bool active)
{
	struct vm *vm;
	const char *bad = vm_name_invalid(d->name);

	if (bad) {
		log_warning("libvirt domain '%.64s' not registered: %s",
			    d->name, bad);
		return;
	}
	vm = vm_find(lv->h, d->name);
	if (!vm) {
		add_vm(lv, idx, d);
		return;
	}
	if (lv_vm_uri_index(lv, vm) != (int)idx) {
		log_debug("libvirt domain %s: a VM of that name is registered "
			  "otherwise; left alone",
			  d->name);
		return;
	}
	update_vm(lv, idx, vm, d);
	if (active && vm->conn.state == CONN_RETRYING)
		conn_restart(vm); /* it just started: no need to wait */
}

/* The VM of this URI named name, or NULL. */
static struct vm *our_vm(struct lv *lv, unsigned idx, const char *name)
{
	struct vm *vm = vm_find(lv->h, name);

	return vm && lv_vm_uri_index(lv, vm) == (int)idx ? vm : NULL;
}

static void seen_add(struct lv_uri *u, const char *name)
{
	char **grown;

	if (u->nseen == u->seen_cap) {
		size_t cap = u->seen_cap ? u->seen_cap * 2 : 64;

		grown = realloc(u->seen, cap * sizeof(*grown));
		if (!grown)
			return;
		u->seen = grown;
		u->seen_cap = cap;
	}
	u->seen[u->nseen] = strdup(name);
	if (u->seen[u->nseen])
		u->nseen++;
}

static void seen_clear(struct lv_uri *u)
{
	for (size_t i = 0; i < u->nseen; i++)
		free(u->seen[i]);
	u->nseen = 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A complete listing: our VMs of this URI it did not show were undefined
 * while we were not looking (hostd or the connection was down). */
static void list_end(struct lv *lv, unsigned idx)
{
	struct lv_uri *u = &lv->uris[idx];
	const char *name;

	if (u->nseen) /* qsort and bsearch want a non-NULL array */
		qsort(u->seen, u->nseen, sizeof(*u->seen), cmp_str);
	for (size_t i = 0; i < lv->h->nvms; i++) {
		struct vm *vm = lv->h->vms[i];

		name = vm->name;
		if (lv_vm_uri_index(lv, vm) == (int)idx &&
		    (!u->nseen || !bsearch(&name, u->seen, u->nseen,
					   sizeof(*u->seen), cmp_str)))
			remove_vm(lv, vm, "no longer defined in libvirt, or "
					  "without a vmic channel");
	}
	seen_clear(u);
	u->listing = false;
}

static void on_state(struct lv *lv, unsigned idx, const struct lv_msg *m)
{
	struct lv_uri *u = &lv->uris[idx];

	if (m->status < 0) { /* a domain we cannot read */
		uint64_t now = lv_now_us();

		/* A domain's owner may define bad XML in a loop: the log
		 * gets one line per 10 s, and the count of the others. */
		if (u->skip_logged_us && now - u->skip_logged_us < 10000000u) {
			u->skips_held++;
			return;
		}
		log_warning("libvirt %s: %s (%llu more such since the last "
			    "line)",
			    u->uri, m->text, (unsigned long long)u->skips_held);
		u->skip_logged_us = now;
		u->skips_held = 0;
		return;
	}
	if (strcmp(m->text, "connected") == 0) {
		log_info("libvirt %s: connected", u->uri);
		snprintf(u->state, sizeof(u->state), "connected");
		u->error[0] = '\0';
		return;
	}
	if (strcmp(u->state, "disconnected") != 0 ||
	    strcmp(u->error, m->text) != 0)
		log_warning("libvirt %s: %s; reconnecting", u->uri, m->text);
	snprintf(u->state, sizeof(u->state), "disconnected");
	snprintf(u->error, sizeof(u->error), "%s", m->text);
}

static void notice(struct vm *vm, enum notice_kind kind, uint64_t gap_us)
{
	struct notice n = { .kind = kind, .gap_us = gap_us };

	vm_notify(vm, &n);
}

void lv_handle(struct lv *lv, struct lv_msg *m)
{
	struct hostd *h = lv->h;
	struct lv_uri *u = &lv->uris[m->uri];
	struct vm *vm = NULL;

	if (m->dom.name[0])
		vm = our_vm(lv, m->uri, m->dom.name);
	switch (m->kind) {
	case LV_MSG_STATE:
		on_state(lv, m->uri, m);
		break;
	case LV_MSG_LIST_BEGIN:
		seen_clear(u);
		u->listing = true;
		break;
	case LV_MSG_DOMAIN:
		if (u->listing)
			seen_add(u, m->dom.name);
		on_domain(lv, m->uri, &m->dom, m->active);
		break;
	case LV_MSG_LIST_END:
		list_end(lv, m->uri);
		break;
	case LV_MSG_STOPPED:
		if (!vm)
			break;
		events_emit(h, vm->name, NULL, "libvirt", NULL, NULL,
			    "domain shut off (libvirt %s)", u->uri);
		notice(vm, NOTICE_STOPPED, 0);
		break;
	case LV_MSG_UNDEFINED:
		if (vm)
			remove_vm(lv, vm, "undefined in libvirt");
		break;
	case LV_MSG_LEFT:
		if (vm)
			remove_vm(lv, vm, "migrated to another host");
		break;
	case LV_MSG_RESUMED:
		if (vm)
			notice(vm, NOTICE_RESUMED, m->gap_us);
		break;
	case LV_MSG_CALL_DONE:
		lv_call_done(lv, m);
		break;
	}
	free(m);
}

/* ---- start, stop, stats ---- */

/* Split the comma-separated [libvirt] uri list into lv->uris. */
static int split_uris(struct lv *lv, const char *list)
{
	const char *p = list;

	while (*p) {
		size_t n;

		p += strspn(p, " ,");
		n = strcspn(p, ",");
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n == 0)
			break;
		if (lv->nuris == LV_URIS_MAX || n >= LV_URI_MAX)
			return -E2BIG;
		memcpy(lv->uris[lv->nuris].uri, p, n);
		snprintf(lv->uris[lv->nuris].state,
			 sizeof(lv->uris[lv->nuris].state), "connecting");
		lv->nuris++;
		p += n;
	}
	return 0;
}

static void free_lv(struct lv *lv)
{
	for (struct lv_msg *m = lv->msgs, *n; m; m = n) {
		n = m->next;
		free(m);
	}
	for (struct lv_cmd *c = lv->cmds, *n; c; c = n) {
		n = c->next;
		free(c);
	}
	for (struct lv_call *c = lv->calls, *n; c; c = n) {
		n = c->next;
		free(c);
	}
	lv->calls = NULL;
	for (size_t i = 0; i < lv->nuris; i++) {
		seen_clear(&lv->uris[i]);
		free(lv->uris[i].seen);
	}
	if (lv->wake_fd >= 0)
		close(lv->wake_fd);
	pthread_mutex_destroy(&lv->mu);
	pthread_cond_destroy(&lv->room);
	free(lv);
}

static void on_async_closed(uv_handle_t *handle)
{
	free_lv(handle->data);
}

/* VMs stored from a libvirt URI not followed now would never be
 * confirmed or removed: say so once per URI. */
static void note_unfollowed(struct hostd *h, const struct lv *lv)
{
	const char *last = NULL;

	for (size_t i = 0; i < h->nvms; i++) {
		const char *uri = libvirt_vm_uri(h->vms[i]);
		bool followed = false;

		for (size_t j = 0; uri && lv && j < lv->nuris; j++)
			followed |= strcmp(lv->uris[j].uri, uri) == 0;
		if (!uri || followed || (last && strcmp(last, uri) == 0))
			continue;
		log_warning("VMs such as %s came from libvirt %s, which this "
			    "vmic-hostd does not follow: they stay as they are "
			    "until it does (--libvirt), or `vmic remove` them",
			    h->vms[i]->name, uri);
		last = uri;
	}
}

int libvirt_start(struct hostd *h)
{
	struct lv *lv;
	int r;

	if (!h->cfg.libvirt_uris[0]) {
		note_unfollowed(h, NULL);
		return 0;
	}
	lv = calloc(1, sizeof(*lv));
	if (!lv)
		return -ENOMEM;
	lv->h = h;
	pthread_mutex_init(&lv->mu, NULL);
	pthread_cond_init(&lv->room, NULL);
	lv->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	r = split_uris(lv, h->cfg.libvirt_uris);
	if (r < 0 || lv->wake_fd < 0) {
		log_error("[libvirt] uri: %s",
			  r < 0 ? "at most 16 URIs of 511 bytes each"
				: "cannot create an eventfd");
		free_lv(lv);
		return r < 0 ? r : -EMFILE;
	}
	uv_async_init(h->loop, &lv->async, on_async);
	lv->async.data = lv;
	r = uv_thread_create(&lv->thread, lv_worker_main, lv);
	if (r < 0) {
		uv_close((uv_handle_t *)&lv->async, on_async_closed);
		return log_error_errno(r, "cannot start the libvirt thread");
	}
	lv->thread_started = true;
	h->lv = lv;
	note_unfollowed(h, lv);
	log_info("following libvirt: %s", h->cfg.libvirt_uris);
	return 0;
}

void libvirt_stop(struct hostd *h)
{
	struct lv *lv = h->lv;
	bool hung = false;

	if (!lv)
		return;
	h->lv = NULL;
	/* Clients waiting for a libvirt-setup hear why it ends; a destroy's
	 * stop operation is cancelled with its VM next. */
	for (struct lv_call **pp = &lv->calls; *pp;) {
		struct lv_call *c = *pp;

		if (!c->rq) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		ctl_reply_error(c->rq, "cancelled", "vmic-hostd is stopping");
		free(c);
	}
	pthread_mutex_lock(&lv->mu);
	atomic_store(&lv->stop, true);
	pthread_cond_broadcast(&lv->room);
	pthread_mutex_unlock(&lv->mu);
	if (write(lv->wake_fd, &(uint64_t){ 1 }, sizeof(uint64_t)) < 0)
		log_debug("waking the libvirt worker: %m");
	for (size_t i = 0; i < lv->nuris; i++) {
		uint64_t since = atomic_load(&lv->uris[i].busy_since_us);

		if (since && lv_now_us() - since > LV_HUNG_MS * 1000ull)
			hung = true;
	}
	if (hung) {
		/* A call into a hung libvirtd would hold the exit forever:
		 * the thread is left to the process's end. */
		log_warning("libvirt call still hanging; not waiting for it");
		return;
	}
	uv_thread_join(&lv->thread);
	uv_close((uv_handle_t *)&lv->async, on_async_closed);
}

void libvirt_stats_json(struct hostd *h, json_t *stats)
{
	struct lv *lv = h->lv;
	json_t *arr;

	if (!lv)
		return;
	arr = json_array();
	for (size_t i = 0; i < lv->nuris; i++) {
		struct lv_uri *u = &lv->uris[i];
		uint64_t since = atomic_load(&u->busy_since_us);
		uint64_t busy_ms = since ? (lv_now_us() - since) / 1000 : 0;
		json_t *o = json_object();
		const char *state = u->state;

		/* A call running this long: libvirtd does not answer. */
		if (busy_ms >= LV_HUNG_MS)
			state = "not-responding";
		json_object_set_new(o, "uri", json_string(u->uri));
		json_object_set_new(o, "state", json_string(state));
		json_object_set_new(o, "error", u->error[0]
							? json_string(u->error)
							: json_null());
		json_object_set_new(o, "call_ms",
				    json_integer((json_int_t)busy_ms));
		json_array_append_new(arr, o);
	}
	json_object_set_new(stats, "libvirt", arr);
}
