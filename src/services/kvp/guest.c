/* SPDX-License-Identifier: MIT */
/*
 * KVP, guest half: the service entry and the exchange with the host.
 *
 * Every session of the service starts with the host's IDENTITY (its id
 * of this VM). A pool directory recorded for another id (an image cloned
 * from another VM, whose pool 3 still names the old host) has the host's
 * pools 0 and 3 cleared first, with a log line. Then the host sends
 * pools 3 and 0 whole and changes after that; the guest sends pools 1
 * (from its file, which other software writes too) and 2 (the facts it
 * collects) the same way, in batches of at most 64 KiB with at most
 * VMIC_KVP_WINDOW of them unanswered. The files are written and read by
 * the worker (guest-files.c), never on the loop; a full copy from the
 * host is written once, when it is complete. The host sends its batches
 * right behind its IDENTITY: while the start-up job has not read the
 * directory yet (a lock another program holds), the IDENTITY waits for
 * it and the batches (at most the host's window) wait with it.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/utf8.h"
#include "proto/control.h"
#include "proto/services.h"
#include "services/kvp/guest.h"

#define ID VMIC_SVC_KVP
#define FRAME_MAX (VMIC_HDR_SIZE + VMIC_KVP_BATCH_MAX)

static const struct vmic_conf_key keys[] = {
	{ .section = "kvp", .key = "dir", .type = VMIC_CONF_STRING,
	  .offset = offsetof(struct kvp_guest_conf, dir),
	  .size = sizeof(((struct kvp_guest_conf *)0)->dir),
	  .help = "directory of the pool files .kvp_pool_0 .. 4 "
		  "(hv_kvp_daemon's layout)" },
};

static const struct vmic_conf_table conf_table = { keys, ARRAY_SIZE(keys) };

static const struct guest_option options[] = {
	{ "kvp-dir", "DIR", "dir", "override [kvp] dir: where the KVP pool "
				   "files are" },
};

static void kg_conf_defaults(void *p)
{
	struct kvp_guest_conf *conf = p;

	snprintf(conf->dir, sizeof(conf->dir), "%s", KVP_DEFAULT_DIR);
}

static struct kvp_guest *kg_of(struct guestd *g)
{
	return agent_state(g, ID);
}

/* Forget the batches held for an IDENTITY (answered, or the session
 * ended: the host starts its copies over in the next). */
static void kg_held_clear(struct kvp_guest *k)
{
	for (unsigned i = 0; i < k->nheld; i++)
		free(k->held[i].payload);
	k->nheld = 0;
}

static int kg_start(struct guestd *g)
{
	struct kvp_guest *k = calloc(1, sizeof(*k));

	if (!k)
		return -ENOMEM;
	k->buf = malloc(FRAME_MAX);
	if (!k->buf) {
		free(k);
		return -ENOMEM;
	}
	k->g = g;
	k->conf = agent_conf(g, ID);
	k->nl_fd = k->host_fd = -1;
	k->file_log = (struct vmic_ratelimit)VMIC_RATELIMIT_INIT(10000);
	for (unsigned p = 0; p < VMIC_KVP_POOLS; p++) {
		kvp_table_init(&k->pools[p]);
		kvp_table_init(&k->file_dirty[p]);
		kvp_inbox_init(&k->in[p]);
		kvp_outbox_init(&k->out[p], (uint8_t)p);
	}
	agent_set_state(g, ID, k);
	kvp_files_start(k);
	kvp_auto_watch_start(k);
	return 0;
}

static void kg_stop(struct guestd *g)
{
	struct kvp_guest *k = kg_of(g);

	k->stopping = true;
	k->conn = NULL;
	kg_held_clear(k);
	kvp_files_stop(k);
	kvp_auto_watch_stop(k);
	for (unsigned p = 0; p < VMIC_KVP_POOLS; p++) {
		kvp_table_clear(&k->pools[p]);
		kvp_table_clear(&k->file_dirty[p]);
		kvp_outbox_free(&k->out[p]);
	}
	free(k->buf);
	k->buf = NULL;
}

static void kg_pending(struct guestd *g, char *buf, size_t n)
{
	kvp_files_pending(kg_of(g), buf, n);
}

static bool kg_on_answer(struct guest_conn *c, void *ud,
			 const struct vmic_frame *f, int err);

void kvp_guest_pump(struct kvp_guest *k)
{
	static const unsigned order[] = { VMIC_KVP_AUTO, VMIC_KVP_GUEST };

	if (!k->conn || !k->identified || k->host_refused || !k->buf)
		return;
	while (k->ninflight < VMIC_KVP_WINDOW) {
		struct kvp_outbox *ob = NULL;
		uint8_t type;
		size_t len, n;
		uint32_t id;

		for (size_t i = 0; i < ARRAY_SIZE(order) && !ob; i++)
			if (kvp_outbox_pending(&k->out[order[i]]))
				ob = &k->out[order[i]];
		if (!ob)
			return;
		len = kvp_outbox_next(ob, &k->pools[ob->pool],
				      k->buf + VMIC_HDR_SIZE, VMIC_KVP_BATCH_MAX,
				      &type, &n);
		if (len == 0)
			return;
		/* No timeout: the host answers every batch while its session
		 * lasts, and the end of the session ends the wait. */
		if (agent_request_send(k->conn, ID, type, k->buf, len, 0,
				       kg_on_answer, k, &id) < 0)
			return; /* the connection is going; a new session
				   starts over */
		k->ninflight++;
	}
}

void kvp_guest_pool_changed(struct kvp_guest *k, unsigned pool,
			    const char *key, size_t klen)
{
	if (!k->conn || !k->identified || k->host_refused)
		return;
	if (kvp_outbox_changed(&k->out[pool], key, klen) < 0) {
		/* Without memory for the key, send the pool again whole. */
		kvp_outbox_restart(&k->out[pool]);
	}
}

static int kg_ack(struct guest_conn *c, const struct vmic_frame *f,
		  size_t refused, const char *note)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_KVP_ACK_MAX_LEN];
	struct vmic_kvp_ack a = {
		.status = refused ? VMIC_KVP_CAP : VMIC_KVP_OK,
		.refused = (uint16_t)MIN(refused, (size_t)UINT16_MAX),
	};
	int n;

	snprintf(a.note, sizeof(a.note), "%s", note ? note : "");
	n = vmic_kvp_ack_encode(&a, buf + VMIC_HDR_SIZE, VMIC_KVP_ACK_MAX_LEN);
	if (n < 0)
		return 0;
	return agent_reply(c, f, VMIC_KVP_ACK, buf, (size_t)n);
}

/* The host's VM id: clear its pools when they were another VM's, then
 * answer request_id and start sending pools 1 and 2. */
static void kg_identity_apply(struct kvp_guest *k, struct guest_conn *c,
			      uint32_t request_id, const char *id)
{
	struct vmic_frame f = { .service = ID, .request_id = request_id };

	if (strcmp(id, k->vm_id) != 0) {
		if (k->vm_id[0] || k->host_records ||
		    k->pools[VMIC_KVP_EXTERNAL].n ||
		    k->pools[VMIC_KVP_AUTO_EXTERNAL].n)
			log_notice("kvp: the host's id of this VM is %s, but "
				   "the pools in %s were written for %s: "
				   "clearing the host's pools 0 (External) "
				   "and 3 (AutoExternal) before its copy "
				   "(an image cloned from another VM?)",
				   id, k->conf->dir,
				   k->vm_id[0] ? k->vm_id
					       : "a VM whose id is not "
						 "recorded");
		for (unsigned p = 0; p < VMIC_KVP_POOLS; p++) {
			if (!vmic_kvp_pool_from_host(p))
				continue;
			kvp_table_clear(&k->pools[p]);
			kvp_table_clear(&k->file_dirty[p]);
			kvp_inbox_init(&k->in[p]);
			k->write_due[p] = true;
		}
		k->host_records = 0;
		snprintf(k->vm_id, sizeof(k->vm_id), "%s", id);
		k->id_due = true;
	}
	k->identified = true;
	k->host_refused = false;
	k->cap_logged = false;
	kvp_outbox_restart(&k->out[VMIC_KVP_GUEST]);
	kvp_outbox_restart(&k->out[VMIC_KVP_AUTO]);
	/* The facts may have changed since the last session. */
	k->auto_due = true;
	kvp_files_kick(k);
	kg_ack(c, &f, 0, NULL);
	kvp_guest_pump(k);
}

static int kg_on_identity(struct kvp_guest *k, struct guest_conn *c,
			  const struct vmic_frame *f)
{
	char id[VMIC_KVP_ID_MAX + 1];

	if (vmic_kvp_identity_decode(f->payload, f->length, id) < 0)
		return agent_reply_error(c, f, VMIC_E_MALFORMED,
					 "kvp identity does not decode");
	if (!k->initialised) {
		/* The recorded id is still being read: answer after. */
		k->identity_waiting = true;
		k->identity_request = f->request_id;
		snprintf(k->identity, sizeof(k->identity), "%s", id);
		return 0;
	}
	kg_identity_apply(k, c, f->request_id, id);
	return 0;
}

static int kg_on_batch(struct kvp_guest *k, struct guest_conn *c,
		       const struct vmic_frame *f);

/* A batch that came behind an IDENTITY still waiting for the INIT job:
 * kept, within the host's window; false when it cannot be. */
static bool kg_hold(struct kvp_guest *k, const struct vmic_frame *f)
{
	struct kvp_held *h;

	if (!k->identity_waiting || k->nheld >= VMIC_KVP_WINDOW)
		return false;
	h = &k->held[k->nheld];
	h->payload = malloc(f->length ? f->length : 1);
	if (!h->payload)
		return false;
	memcpy(h->payload, f->payload, f->length);
	h->type = f->type;
	h->request_id = f->request_id;
	h->length = f->length;
	k->nheld++;
	return true;
}

void kvp_guest_initialised(struct kvp_guest *k)
{
	struct vmic_frame f = { .service = ID };

	if (!k->identity_waiting)
		return;
	k->identity_waiting = false;
	if (!k->conn) {
		kg_held_clear(k);
		return;
	}
	kg_identity_apply(k, k->conn, k->identity_request, k->identity);
	/* The batches that followed it, in their order. */
	for (unsigned i = 0; i < k->nheld && k->conn; i++) {
		f.type = k->held[i].type;
		f.request_id = k->held[i].request_id;
		f.length = k->held[i].length;
		f.payload = k->held[i].payload;
		kg_on_batch(k, k->conn, &f);
	}
	kg_held_clear(k);
}

struct file_note {
	struct kvp_guest *k;
	unsigned pool;
};

/* A key of the host's pools changed outside a copy: its record is to be
 * changed in the file. */
static void note_file_key(void *ud, const char *key, size_t klen,
			  const struct kvp_rec *now UNUSED)
{
	struct file_note *n = ud;

	if (kvp_table_set(&n->k->file_dirty[n->pool], key, klen, "", 0, 0,
			  NULL, NULL) < 0)
		n->k->write_due[n->pool] = true; /* the whole file, then */
}

/* A batch of the host for pool 0 or 3. A full copy is written once,
 * whole, when it is complete; changes after it record by record. */
static int kg_on_batch(struct kvp_guest *k, struct guest_conn *c,
		       const struct vmic_frame *f)
{
	const struct kvp_limits lim = { KVP_GUEST_MAX_RECORDS, UINT64_MAX };
	struct vmic_kvp_batch b;
	struct file_note note = { k, 0 };
	size_t refused = 0;
	char text[VMIC_KVP_NOTE_MAX + 1] = "";
	bool copy;

	if (vmic_kvp_batch_decode(f->type, f->payload, f->length, &b) < 0)
		return agent_reply_error(c, f, VMIC_E_MALFORMED,
					 "kvp batch does not decode: a length, "
					 "a string or the pool is invalid");
	if (!vmic_kvp_pool_from_host(b.pool))
		return agent_reply_error(c, f, VMIC_E_REFUSED,
					 "pool %u (%s) is written in the "
					 "guest; the host writes pools 0 "
					 "(External) and 3 (AutoExternal)",
					 b.pool,
					 vmic_kvp_pool_display(b.pool));
	if (!k->identified && kg_hold(k, f))
		return 0; /* answered after the IDENTITY */
	if (!k->identified)
		return agent_reply_error(c, f, VMIC_E_NOT_READY,
					 "kvp: no identity from the host yet "
					 "in this session");
	note.pool = b.pool;
	copy = k->in[b.pool].copying ||
	       (b.type == VMIC_KVP_SET &&
		(b.flags & (VMIC_KVP_F_BEGIN | VMIC_KVP_F_END)));
	if (kvp_inbox_apply(&k->in[b.pool], &k->pools[b.pool], &b, &lim,
			    copy ? NULL : note_file_key, &note, &refused) < 0) {
		k->write_due[b.pool] = true;
		kvp_files_kick(k);
		return agent_reply_error(c, f, VMIC_E_INTERNAL,
					 "kvp: out of memory");
	}
	if (refused)
		snprintf(text, sizeof(text), "this guest keeps at most %d "
					     "records per pool",
			 KVP_GUEST_MAX_RECORDS);
	if (copy && !k->in[b.pool].copying) {
		/* The copy is complete: the whole file, once. */
		kvp_table_clear(&k->file_dirty[b.pool]);
		k->write_due[b.pool] = true;
	}
	kvp_files_kick(k);
	return kg_ack(c, f, refused, text);
}

static int kg_on_frame(struct guest_conn *c, const struct vmic_frame *f)
{
	struct kvp_guest *k = kg_of(agent_of(c));

	if (!k || k->stopping)
		return 0;
	switch (f->type) {
	case VMIC_KVP_IDENTITY:
		return kg_on_identity(k, c, f);
	case VMIC_KVP_SET:
	case VMIC_KVP_DELETE:
		return kg_on_batch(k, c, f);
	default:
		return 0; /* an ACK without REPLY: nothing to answer */
	}
}

static void kg_on_error(struct kvp_guest *k, const struct vmic_frame *f)
{
	struct vmic_error e;

	if (vmic_error_decode(f->payload, f->length, &e) < 0)
		e = (struct vmic_error){ .code = VMIC_E_MALFORMED };
	if (!k->host_refused)
		log_warning("kvp: the host answered '%s'%s%s; pools 1 and 2 "
			    "are not sent until its next session of the "
			    "service",
			    vmic_error_name(e.code), e.message[0] ? ": " : "",
			    e.message);
	k->host_refused = true;
	kvp_outbox_stop(&k->out[VMIC_KVP_GUEST]);
	kvp_outbox_stop(&k->out[VMIC_KVP_AUTO]);
}

/* The host's answer to a batch of ours. The end of the wait (the
 * session ended: on_session already reset the window) needs nothing. */
static bool kg_on_answer(struct guest_conn *c, void *ud,
			 const struct vmic_frame *f, int err UNUSED)
{
	struct kvp_guest *k = ud;
	struct vmic_kvp_ack a;

	if (!f || k->stopping || c != k->conn)
		return false;
	if (k->ninflight)
		k->ninflight--;
	if (f->type == VMIC_T_ERROR) {
		kg_on_error(k, f);
		return false;
	}
	if (f->type == VMIC_KVP_ACK &&
	    vmic_kvp_ack_decode(f->payload, f->length, &a) == 0 &&
	    a.status == VMIC_KVP_CAP && !k->cap_logged) {
		k->cap_logged = true;
		log_warning("kvp: the host keeps %u records of a batch out: "
			    "%s (further ones this session are not logged)",
			    a.refused, a.note[0] ? a.note : "its limit");
	}
	kvp_guest_pump(k);
	return false;
}

static void kg_on_session(struct guest_conn *c, bool up)
{
	struct kvp_guest *k = kg_of(agent_of(c));

	if (!k || k->stopping)
		return;
	k->conn = up ? c : NULL;
	k->identified = false;
	k->identity_waiting = false;
	kg_held_clear(k);
	k->host_refused = false;
	k->ninflight = 0;
	kvp_outbox_stop(&k->out[VMIC_KVP_GUEST]);
	kvp_outbox_stop(&k->out[VMIC_KVP_AUTO]);
	/* A copy from the host that did not end stays as it was: the next
	 * one starts over. Write what arrived of it. */
	for (unsigned p = 0; !up && p < VMIC_KVP_POOLS; p++) {
		if (vmic_kvp_pool_from_host(p) && k->in[p].copying) {
			k->in[p].copying = false;
			k->write_due[p] = true;
		}
	}
	kvp_files_kick(k);
}

/* The disks were frozen: the pool file writes held back start now. */
static void kg_on_thaw(struct guestd *g)
{
	kvp_files_kick(kg_of(g));
}

const struct guest_service kvp_guest = {
	.desc = &vmic_kvp_service,
	.enabled_help = "exchange key-value pairs with the host through the "
			"pool files",
	.conf = &conf_table,
	.conf_size = sizeof(struct kvp_guest_conf),
	.conf_defaults = kg_conf_defaults,
	.start = kg_start,
	.stop = kg_stop,
	.pending = kg_pending,
	.on_session = kg_on_session,
	.on_thaw = kg_on_thaw,
	.max_requests = VMIC_KVP_WINDOW,
	.on_frame = kg_on_frame,
	.options = options,
	.noptions = ARRAY_SIZE(options),
	.command = "kvp",
	.command_usage = "list|get|set|delete ...  (the KVP pools; "
			 "`vmic-guestd kvp --help`)",
	.command_run = kvp_cli_run,
};
