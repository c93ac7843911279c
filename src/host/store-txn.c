/* SPDX-License-Identifier: MIT */
/*
 * A transaction: the registry changes of one control command and the
 * events it causes, or a batch of events, committed together.
 *
 * The loop builds it from copies (the writer thread must never read a
 * struct vm, which the loop changes at will); the writer runs it as one
 * BEGIN IMMEDIATE .. COMMIT, so a command costs one fsync and its change
 * and its events are durable together or not at all.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostd.h"
#include "proto/services.h"
#include "store-internal.h"

enum op_kind {
	OP_VM_INSERT,  /* vm, a channel, b power_off, n created_us */
	OP_VM_UPDATE,  /* vm, a channel, b power_off */
	OP_VM_DELETE,  /* vm */
	OP_SERVICE,    /* vm, a service, n enabled */
	OP_SETTING,    /* vm, a service, b key, c value */
	OP_DATA_SET,   /* vm, a service, b key, c value, n space */
	OP_DATA_DELETE, /* vm, a service, b key, n space */
};

/* One change; its strings live in the same allocation. */
struct txn_op {
	struct txn_op *next;
	enum op_kind kind;
	const char *vm, *a, *b, *c; /* NULL when none */
	int64_t n;
};

struct store_txn *store_txn_new(bool command)
{
	struct store_txn *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->command = command;
	t->ops_tail = &t->ops;
	return t;
}

static int op_add(struct store_txn *t, enum op_kind kind, const char *vm,
		  const char *a, const char *b, const char *c, int64_t n)
{
	const char *src[] = { vm, a, b, c };
	const char **dst[ARRAY_SIZE(src)];
	size_t len[ARRAY_SIZE(src)], total = sizeof(struct txn_op);
	struct txn_op *op;
	char *p;

	for (size_t i = 0; i < ARRAY_SIZE(src); i++) {
		len[i] = src[i] ? strlen(src[i]) + 1 : 0;
		total += len[i];
	}
	op = calloc(1, total);
	if (!op)
		return -ENOMEM;
	op->kind = kind;
	op->n = n;
	dst[0] = &op->vm;
	dst[1] = &op->a;
	dst[2] = &op->b;
	dst[3] = &op->c;
	p = (char *)(op + 1);
	for (size_t i = 0; i < ARRAY_SIZE(src); i++) {
		if (!src[i])
			continue;
		memcpy(p, src[i], len[i]);
		*dst[i] = p;
		p += len[i];
	}
	*t->ops_tail = op;
	t->ops_tail = &op->next;
	return 0;
}

int store_txn_vm_insert(struct store_txn *t, const struct vm *vm)
{
	int r = op_add(t, OP_VM_INSERT, vm->name, vm->channel_uri,
		       vm->power_off, NULL, vm->created_us);

	for (size_t i = 0; r == 0 && i < vmic_service_count; i++)
		r = op_add(t, OP_SERVICE, vm->name, vmic_services[i]->name,
			   NULL, NULL,
			   vm_service_enabled(vm, vmic_services[i]->id));
	return r;
}

int store_txn_vm_update(struct store_txn *t, const char *name,
			const char *channel, const char *power_off)
{
	return op_add(t, OP_VM_UPDATE, name, channel, power_off, NULL, 0);
}

int store_txn_vm_delete(struct store_txn *t, const char *name)
{
	return op_add(t, OP_VM_DELETE, name, NULL, NULL, NULL, 0);
}

int store_txn_service_set(struct store_txn *t, const char *vm,
			  uint8_t service, bool enabled)
{
	const struct vmic_service_desc *d = vmic_service_by_id(service);

	if (!d)
		return -EINVAL;
	return op_add(t, OP_SERVICE, vm, d->name, NULL, NULL, enabled);
}

int store_txn_settings_set(struct store_txn *t, const char *vm,
			   uint8_t service, const void *settings,
			   uint32_t mask)
{
	const struct host_service *svc = host_service_get(service);
	char value[1024];
	int r = 0;

	if (!svc || !svc->settings)
		return -EINVAL;
	for (size_t i = 0; r == 0 && i < svc->settings->count; i++) {
		const struct vmic_conf_key *k = &svc->settings->keys[i];

		if (!(mask & (1u << i)))
			continue;
		vmic_conf_format(k, settings, value, sizeof(value));
		r = op_add(t, OP_SETTING, vm, svc->desc->name, k->key, value,
			   0);
	}
	return r;
}

int store_txn_data_set(struct store_txn *t, const char *vm, uint8_t service,
		       unsigned space, const char *key, const char *value)
{
	const struct vmic_service_desc *d = vmic_service_by_id(service);

	if (!d)
		return -EINVAL;
	return op_add(t, value ? OP_DATA_SET : OP_DATA_DELETE, vm, d->name,
		      key, value, space);
}

void store_txn_add_events(struct store_txn *t, struct event *list)
{
	for (struct event *e = list, *next; e; e = next) {
		next = e->next;
		e->next = NULL;
		if (t->events_tail)
			t->events_tail->next = e;
		else
			t->events = e;
		t->events_tail = e;
		t->nevents++;
	}
}

struct event *store_txn_take_events(struct store_txn *t)
{
	struct event *list = t->events;

	t->events = t->events_tail = NULL;
	t->nevents = 0;
	return list;
}

size_t store_txn_event_count(const struct store_txn *t)
{
	return t->nevents;
}

int store_txn_result(const struct store_txn *t, const char **msg)
{
	if (msg)
		*msg = t->errmsg;
	return t->err;
}

bool store_txn_is_command(const struct store_txn *t)
{
	return t->command;
}

void store_txn_set_result(struct store_txn *t, int err, const char *msg)
{
	t->err = err;
	snprintf(t->errmsg, sizeof(t->errmsg), "%s", msg ? msg : "");
}

void store_txn_free(struct store_txn *t)
{
	if (!t)
		return;
	for (struct txn_op *op = t->ops, *next; op; op = next) {
		next = op->next;
		free(op);
	}
	events_unref_list(t->events);
	free(t);
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static int op_run(struct store_db *db, const struct txn_op *op)
{
	sqlite3_stmt *st;
	int r;

	switch (op->kind) {
	case OP_VM_INSERT:
	case OP_VM_UPDATE:
		st = op->kind == OP_VM_INSERT ? db->vm_insert : db->vm_update;
		sqlite3_bind_text(st, 1, op->vm, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, op->a, -1, SQLITE_STATIC);
		bind_text_or_null(st, 3, op->b);
		if (op->kind == OP_VM_INSERT)
			sqlite3_bind_int64(st, 4, op->n);
		return store_db_step(db, st, op->kind == OP_VM_INSERT
						     ? "adding a VM"
						     : "changing a VM");
	case OP_VM_DELETE:
		sqlite3_bind_text(db->svc_delete, 1, op->vm, -1, SQLITE_STATIC);
		r = store_db_step(db, db->svc_delete, "removing a VM");
		if (r < 0)
			return r;
		/* Its settings go with it (ON DELETE CASCADE). */
		sqlite3_bind_text(db->vm_delete, 1, op->vm, -1, SQLITE_STATIC);
		return store_db_step(db, db->vm_delete, "removing a VM");
	case OP_SERVICE:
		st = db->svc_set;
		sqlite3_bind_text(st, 1, op->vm, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, op->a, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, op->n != 0);
		return store_db_step(db, st, "saving a service setting");
	case OP_SETTING:
		st = db->setting_set;
		sqlite3_bind_text(st, 1, op->vm, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, op->a, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, op->b, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, op->c, -1, SQLITE_STATIC);
		return store_db_step(db, st, "saving settings");
	case OP_DATA_SET:
	case OP_DATA_DELETE:
		st = op->kind == OP_DATA_SET ? db->data_set : db->data_delete;
		sqlite3_bind_text(st, 1, op->vm, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, op->a, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, op->n);
		sqlite3_bind_text(st, 4, op->b, -1, SQLITE_STATIC);
		if (op->kind == OP_DATA_SET)
			sqlite3_bind_text(st, 5, op->c, -1, SQLITE_STATIC);
		return store_db_step(db, st, "saving a service's data");
	}
	return -EINVAL;
}

int store_txn_run(struct store_db *db, struct store_txn *t)
{
	int r;

	t->err = 0;
	t->errmsg[0] = '\0';
	if (!t->ops && !t->events)
		return 0; /* a barrier: nothing to write */
	r = store_db_exec(db, "BEGIN IMMEDIATE", "starting a transaction");
	for (const struct txn_op *op = t->ops; r == 0 && op; op = op->next)
		r = op_run(db, op);
	if (r == 0 && t->events)
		r = store_events_insert(db, t->events);
	if (r == 0)
		r = store_db_exec(db, "COMMIT", "committing");
	if (r < 0) {
		sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
		store_txn_set_result(t, r, db->errmsg);
	}
	return r;
}
