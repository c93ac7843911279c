/* SPDX-License-Identifier: MIT */
/*
 * The daemon's result objects (docs/control.md), decoded into C structs
 * that borrow their strings from the JSON. Each object is described by a
 * table of the members the CLI uses; a missing or mistyped member is a
 * protocol error naming it, so a daemon of another version is diagnosed
 * instead of printing garbage. Members the CLI does not use are ignored.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "vmic.h"

enum field_type {
	F_STR,       /* const char *, must be a string */
	F_STR_NULL,  /* const char *, string or null (NULL) */
	F_INT,       /* int64_t, must be an integer */
	F_INT_NULL,  /* int64_t, integer or null (-1) */
	F_BOOL,      /* bool */
	F_BOOL_NULL, /* int: 1, 0, or -1 for null */
};

struct field {
	const char *key;
	enum field_type type;
	size_t offset;
};

static const char *const type_names[] = {
	[F_STR] = "a string",
	[F_STR_NULL] = "a string or null",
	[F_INT] = "an integer",
	[F_INT_NULL] = "an integer or null",
	[F_BOOL] = "true or false",
	[F_BOOL_NULL] = "true, false or null",
};

/* Store one member v into the struct at base; false when mistyped. */
static bool store_field(const struct field *f, json_t *v, char *base)
{
	void *p = base + f->offset;
	bool null_ok = f->type == F_STR_NULL || f->type == F_INT_NULL ||
		       f->type == F_BOOL_NULL;

	if (json_is_null(v) && null_ok) {
		if (f->type == F_STR_NULL)
			*(const char **)p = NULL;
		else if (f->type == F_INT_NULL)
			*(int64_t *)p = -1;
		else
			*(int *)p = -1;
		return true;
	}
	switch (f->type) {
	case F_STR:
	case F_STR_NULL:
		if (!json_is_string(v))
			return false;
		*(const char **)p = json_string_value(v);
		return true;
	case F_INT:
	case F_INT_NULL:
		if (!json_is_integer(v))
			return false;
		*(int64_t *)p = json_integer_value(v);
		return true;
	case F_BOOL:
		if (!json_is_boolean(v))
			return false;
		*(bool *)p = json_is_true(v);
		return true;
	case F_BOOL_NULL:
		if (!json_is_boolean(v))
			return false;
		*(int *)p = json_is_true(v);
		return true;
	}
	return false;
}

/* Decode the members listed in fields from o into the struct at out. */
static int unpack(json_t *o, const char *what, const struct field *fields,
		  size_t n, void *out, struct cli_error *e)
{
	if (!json_is_object(o)) {
		cli_error_set(e, CLI_ERR_PROTOCOL, "%s is not an object", what);
		return -EPROTO;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_object_get(o, fields[i].key);

		if (!v || !store_field(&fields[i], v, out)) {
			cli_error_set(e, CLI_ERR_PROTOCOL,
				      "%s %s '%s' (%s)", what,
				      v ? "has a mistyped" : "lacks",
				      fields[i].key,
				      type_names[fields[i].type]);
			return -EPROTO;
		}
	}
	return 0;
}

#define FIELD(s, k, t, m) { k, t, offsetof(s, m) }

/* A VM summary, as `list`, `add`, `set` and `status` return it. */
int reply_vm_summary(json_t *o, struct vm_summary *vm, struct cli_error *e)
{
	static const struct field f[] = {
		FIELD(struct vm_summary, "name", F_STR, name),
		FIELD(struct vm_summary, "channel", F_STR, channel),
		FIELD(struct vm_summary, "power_off", F_STR_NULL, power_off),
		FIELD(struct vm_summary, "connection", F_STR, connection),
		FIELD(struct vm_summary, "heartbeat", F_STR, heartbeat),
		FIELD(struct vm_summary, "agent", F_STR_NULL, agent),
		FIELD(struct vm_summary, "os", F_STR_NULL, os),
		FIELD(struct vm_summary, "kernel", F_STR_NULL, kernel),
		FIELD(struct vm_summary, "uptime_s", F_INT_NULL, uptime_s),
	};

	return unpack(o, "a VM summary", f, ARRAY_SIZE(f), vm, e);
}

/* The connection_detail member of a `status` result. */
int reply_conn_detail(json_t *o, struct conn_detail *d, struct cli_error *e)
{
	static const struct field f[] = {
		FIELD(struct conn_detail, "state", F_STR, state),
		FIELD(struct conn_detail, "since_us", F_INT_NULL, since_us),
		FIELD(struct conn_detail, "last_error", F_STR_NULL,
		      last_error),
		FIELD(struct conn_detail, "attempts", F_INT, attempts),
		FIELD(struct conn_detail, "next_retry_ms", F_INT_NULL,
		      next_retry_ms),
		FIELD(struct conn_detail, "hold_ms", F_INT_NULL, hold_ms),
	};

	return unpack(o, "connection_detail", f, ARRAY_SIZE(f), d, e);
}

/* The entry named `name` in the services array of a `status` result. */
int reply_find_service(json_t *status, const char *name, json_t **entry,
		       struct cli_error *e)
{
	json_t *services, *v;
	size_t i;
	int r = reply_array(status, "services", &services, e);

	if (r < 0)
		return r;
	json_array_foreach(services, i, v) {
		const char *n = json_string_value(json_object_get(v, "name"));

		if (n && strcmp(n, name) == 0) {
			*entry = v;
			return 0;
		}
	}
	cli_error_set(e, CLI_ERR_PROTOCOL,
		      "the status lists no '%s' service", name);
	return -EPROTO;
}

/* The heartbeat service's entry of a `status` result, with its members. */
int reply_hb_detail(json_t *status, struct hb_detail *d, struct cli_error *e)
{
	static const struct field f[] = {
		FIELD(struct hb_detail, "state", F_STR, state),
		FIELD(struct hb_detail, "secondary_status", F_STR, secondary),
		FIELD(struct hb_detail, "missed", F_INT, missed),
		FIELD(struct hb_detail, "last_reply_us", F_INT_NULL,
		      last_reply_us),
		FIELD(struct hb_detail, "rtt_us", F_INT_NULL, rtt_us),
		FIELD(struct hb_detail, "application", F_STR_NULL,
		      application),
		FIELD(struct hb_detail, "application_reason", F_STR_NULL,
		      application_reason),
	};
	static const struct field settings[] = {
		FIELD(struct hb_detail, "interval", F_STR, interval),
		FIELD(struct hb_detail, "threshold", F_STR, threshold),
	};
	json_t *entry, *set;
	int r;

	if ((r = reply_find_service(status, "heartbeat", &entry, e)) < 0 ||
	    (r = unpack(entry, "the heartbeat entry", f, ARRAY_SIZE(f), d,
			e)) < 0 ||
	    (r = reply_object(entry, "settings", &set, e)) < 0)
		return r;
	return unpack(set, "the heartbeat settings", settings,
		      ARRAY_SIZE(settings), d, e);
}

/* One entry of `services` (status) or the result of enable/disable. */
int reply_service(json_t *o, struct service_entry *s, struct cli_error *e)
{
	static const struct field f[] = {
		FIELD(struct service_entry, "name", F_STR, name),
		FIELD(struct service_entry, "display", F_STR, display),
		FIELD(struct service_entry, "enabled", F_BOOL, enabled),
		FIELD(struct service_entry, "primary_status", F_STR, primary),
		FIELD(struct service_entry, "secondary_status", F_STR,
		      secondary),
		FIELD(struct service_entry, "version", F_INT_NULL, version),
		FIELD(struct service_entry, "guest_enabled", F_BOOL_NULL,
		      guest_enabled),
	};

	return unpack(o, "a service entry", f, ARRAY_SIZE(f), s, e);
}

/* One event of the log. */
int reply_event(json_t *o, struct vm_event *ev, struct cli_error *e)
{
	static const struct field f[] = {
		FIELD(struct vm_event, "id", F_INT, id),
		FIELD(struct vm_event, "time_us", F_INT, time_us),
		FIELD(struct vm_event, "vm", F_STR, vm),
		FIELD(struct vm_event, "service", F_STR_NULL, service),
		FIELD(struct vm_event, "kind", F_STR, kind),
		FIELD(struct vm_event, "from", F_STR_NULL, from),
		FIELD(struct vm_event, "to", F_STR_NULL, to),
		FIELD(struct vm_event, "message", F_STR_NULL, message),
	};

	return unpack(o, "an event", f, ARRAY_SIZE(f), ev, e);
}

/* The array member `key` of a result (borrowed in *arr). */
int reply_array(json_t *result, const char *key, json_t **arr,
		struct cli_error *e)
{
	*arr = json_object_get(result, key);
	if (!json_is_array(*arr)) {
		cli_error_set(e, CLI_ERR_PROTOCOL,
			      "the result lacks '%s' (an array)", key);
		return -EPROTO;
	}
	return 0;
}

/* The object member `key` of a result (borrowed in *obj). */
int reply_object(json_t *result, const char *key, json_t **obj,
		 struct cli_error *e)
{
	*obj = json_object_get(result, key);
	if (!json_is_object(*obj)) {
		cli_error_set(e, CLI_ERR_PROTOCOL,
			      "the result lacks '%s' (an object)", key);
		return -EPROTO;
	}
	return 0;
}
