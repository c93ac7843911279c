/* SPDX-License-Identifier: MIT */
/*
 * Commands the loop hands hostd's libvirt worker, and their answers: the
 * power backend's destroy (vm_libvirt_destroy, for the shutdown service)
 * and the libvirt-setup control command. Each waits as a struct lv_call
 * until the worker's LV_MSG_CALL_DONE comes back with its token.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "hostd.h"
#include "host/ctl-internal.h"
#include "host/libvirt-internal.h"
#include "host/libvirt.h"

static struct lv *lv_running(struct hostd *h)
{
	return h->lv;
}

/* Hand c to the worker; cb(ud, ...) runs on its answer. Takes c. */
static int lv_queue(struct lv *lv, struct lv_cmd *c, vm_libvirt_cb cb,
		    void *ud, struct ctl_request *rq, uint64_t *token)
{
	struct lv_call *call = calloc(1, sizeof(*call));

	if (!call) {
		free(c);
		return -ENOMEM;
	}
	call->token = c->token = ++lv->next_token;
	call->cb = cb;
	call->ud = ud;
	call->rq = rq;
	call->next = lv->calls;
	lv->calls = call;
	pthread_mutex_lock(&lv->mu);
	if (lv->cmds_tail)
		lv->cmds_tail->next = c;
	else
		lv->cmds = c;
	lv->cmds_tail = c;
	pthread_mutex_unlock(&lv->mu);
	if (write(lv->wake_fd, &(uint64_t){ 1 }, sizeof(uint64_t)) < 0)
		log_debug("waking the libvirt worker: %m");
	if (token)
		*token = call->token;
	return 0;
}

int vm_libvirt_destroy(struct vm *vm, vm_libvirt_cb cb, void *ud,
		       uint64_t *token)
{
	const char *p = vm_power_off(vm);
	struct lv *lv = lv_running(vm_hostd(vm));
	struct lv_cmd *c;
	int idx;

	if (!lv)
		return -ENOTCONN; /* not following libvirt (any more) */
	idx = lv_vm_uri_index(lv, vm);
	if (idx < 0)
		return -ENOTCONN;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->kind = LV_CMD_DESTROY;
	c->uri = (unsigned)idx;
	memcpy(c->uuid, p + strlen(LIBVIRT_POWER_PREFIX), LVX_UUID_LEN);
	return lv_queue(lv, c, cb, ud, NULL, token);
}

/* ---- libvirt-setup ---- */

static void setup_done(void *ud, int status, const char *detail)
{
	struct ctl_request *rq = ud;

	if (status < 0)
		ctl_reply_error(rq, status == -ENOENT   ? "not-found"
				    : status == -EEXIST ? "exists"
							: "failed",
				"%s", detail);
	else
		ctl_reply_ok(rq, json_pack("{s:b, s:s}", "applied", true,
					   "detail", detail));
}

/* The URI index to apply through: the one named, else the first. */
static int setup_uri(struct ctl_request *rq, struct lv *lv, const char *uri)
{
	if (!lv) {
		ctl_reply_error(rq, "unsupported",
				"vmic-hostd follows no libvirt URI: start it "
				"with --libvirt URI (or [libvirt] uri), or "
				"apply the XML with `virsh attach-device "
				"DOMAIN FILE --config`");
		return -1;
	}
	for (size_t i = 0; i < lv->nuris; i++)
		if (!uri || strcmp(lv->uris[i].uri, uri) == 0)
			return (int)i;
	ctl_reply_error(rq, "invalid-argument", "vmic-hostd does not follow "
			"'%.200s'; it follows %s", uri, rq->h->cfg.libvirt_uris);
	return -1;
}

void libvirt_cmd_setup(struct ctl_request *rq, struct vm *vm, json_t *args)
{
	const char *domain, *path = NULL, *uri = NULL, *bad;
	char def[VMIC_PATH_MAX + 1], xml[1024];
	struct lv_cmd *c;
	int apply = 0, idx, n;

	(void)vm;
	if (!ctl_args_unpack(rq, "libvirt-setup", args, "{s:s, s?s, s?s, s?b}",
			     "domain", &domain, "path", &path, "uri", &uri,
			     "apply", &apply))
		return;
	bad = vm_name_invalid(domain);
	if (bad) {
		ctl_reply_error(rq, "invalid-argument", "'%.64s': %s; vmic "
				"registers a domain under its name", domain,
				bad);
		return;
	}
	if (!path) {
		snprintf(def, sizeof(def), "/run/vmic/vms/%s.sock", domain);
		path = def;
	}
	n = lvx_channel_snippet(path, xml, sizeof(xml));
	if (n < 0) {
		ctl_reply_error(rq, "invalid-argument", "path '%.200s': %s",
				path, n == -EINVAL ? "must be absolute, without "
						     "quotes, '<', '>' or '&'"
						   : "too long");
		return;
	}
	if (!apply) {
		ctl_reply_ok(rq, json_pack("{s:s, s:s, s:b}", "domain", domain,
					   "xml", xml, "applied", false));
		return;
	}
	if (!ctl_request_privileged(rq)) {
		ctl_reply_error(rq, "permission-denied", "only root or "
				"vmic-hostd's user may change a libvirt "
				"domain");
		return;
	}
	idx = setup_uri(rq, lv_running(rq->h), uri);
	if (idx < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		ctl_reply_error(rq, "internal", "out of memory");
		return;
	}
	c->kind = LV_CMD_ATTACH;
	c->uri = (unsigned)idx;
	snprintf(c->name, sizeof(c->name), "%s", domain);
	snprintf(c->xml, sizeof(c->xml), "%s", xml);
	if (lv_queue(lv_running(rq->h), c, setup_done, rq, rq, NULL) < 0)
		ctl_reply_error(rq, "internal", "out of memory");
}

void vm_libvirt_cancel(struct hostd *h, uint64_t token)
{
	struct lv *lv = lv_running(h);

	for (struct lv_call **pp = lv ? &lv->calls : NULL; pp && *pp;
	     pp = &(*pp)->next) {
		if ((*pp)->token == token) {
			struct lv_call *c = *pp;

			*pp = c->next;
			free(c);
			return;
		}
	}
}

void lv_call_done(struct lv *lv, const struct lv_msg *m)
{
	for (struct lv_call **pp = &lv->calls; *pp; pp = &(*pp)->next) {
		struct lv_call *c = *pp;

		if (c->token == m->token) {
			*pp = c->next;
			c->cb(c->ud, m->status, m->text);
			free(c);
			return;
		}
	}
}
