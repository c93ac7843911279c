/* SPDX-License-Identifier: MIT */
/*
 * `vmic kvp`: a VM's key-value pairs (Msvm_KvpExchangeComponent).
 *
 *   vmic kvp list VM [--pool P]             every record, or one pool's
 *   vmic kvp get VM KEY [--pool P] [--raw]  the value
 *   vmic kvp set VM KEY VALUE [KEY VALUE]... keys of the External pool
 *   vmic kvp delete VM KEY...               from the External pool
 *   vmic kvp watch VM [--pool P]            changes as they happen
 *
 * With --json the daemon's result is printed; `watch` prints its lines.
 * Keys and values are the guest's (or anybody's with `kvp set`): as text
 * they go through safe-text.c, so an escape sequence in a value cannot
 * act on the terminal; `get --raw` prints the exact bytes for scripts.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/duration.h"
#include "vmic.h"

enum { OPT_POOL = 0x200, OPT_RAW };

struct kvp_args {
	const char *verb;
	const char *vm;
	const char *pool;
	bool raw;    /* --raw: `get` prints the value's exact bytes */
	char **rest; /* operands after VM */
	int nrest;
};

static int parse(struct cli *cli, int argc, char **argv, struct kvp_args *a)
{
	static const struct option opts[] = {
		{ "pool", required_argument, NULL, OPT_POOL },
		{ "raw", no_argument, NULL, OPT_RAW },
		CLI_COMMON_OPTIONS,
		{},
	};
	int c, r;

	while ((c = getopt_long(argc, argv, ":hp:", opts, NULL)) != -1) {
		if (c == OPT_POOL || c == 'p') {
			a->pool = optarg;
			continue;
		}
		if (c == OPT_RAW) {
			a->raw = true;
			continue;
		}
		if ((r = cli_common_option(cli, c, argv)) != CLI_NEXT)
			return r;
	}
	if (optind >= argc)
		return cli_usage_error(cli, "missing list, get, set, delete or "
					    "watch");
	a->verb = argv[optind++];
	if (optind >= argc)
		return cli_usage_error(cli, "missing the VM's name");
	a->vm = argv[optind++];
	a->rest = argv + optind;
	a->nrest = argc - optind;
	if (a->raw && strcmp(a->verb, "get") != 0)
		return cli_usage_error(cli, "--raw is for `kvp get`; --json "
					    "gives the exact keys and values "
					    "of the other commands");
	return CLI_NEXT;
}

/* {"cmd": cmd, "vm": vm} with "pool" when given. */
static json_t *request(const char *cmd, const struct kvp_args *a)
{
	json_t *req = json_pack("{s:s, s:s}", "cmd", cmd, "vm", a->vm);

	if (req && a->pool)
		json_object_set_new(req, "pool", json_string(a->pool));
	return req;
}

/* Send req (taken) and give the result; the exit status on failure. */
static int call(struct cli *cli, json_t *req, json_t **result)
{
	struct cli_error e = { 0 };
	int r = cli_ctl_call(cli, req, CTL_DEFAULT_TIMEOUT_MS, result, &e);

	return r < 0 ? cli_report(cli, &e) : 0;
}

static int protocol_error(struct cli *cli, const char *what)
{
	struct cli_error e = { 0 };

	cli_error_set(&e, CLI_ERR_PROTOCOL, "%s", what);
	return cli_report(cli, &e);
}

/* "guest" and the like; the value the daemon sent, checked. */
static const char *member(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* `kvp list` for people: a table printed a page at a time. */
struct kvp_lister {
	struct table *t;
};

static int list_head(void *ud, json_t *result, struct cli_error *e)
{
	(void)ud;
	(void)e;
	if (json_is_true(json_object_get(result, "stale")))
		printf("(the guest is not connected: its guest and auto pools "
		       "are what it sent last)\n");
	return 0;
}

static int list_page(void *ud, json_t *records, struct cli_error *e)
{
	struct kvp_lister *l = ud;
	json_t *v;
	size_t i;
	int r = 0;

	json_array_foreach(records, i, v) {
		const char *cells[3] = { member(v, "pool"), member(v, "key"),
					 member(v, "value") };

		if (!cells[0] || !cells[1] || !cells[2]) {
			cli_error_set(e, CLI_ERR_PROTOCOL,
				      "a kvp record lacks pool, key or value");
			return -EPROTO;
		}
		if ((r = table_add(l->t, cells, NULL)) < 0)
			return r;
	}
	/* Widths only grow: later pages line up with the rows before. */
	table_print(l->t, false, stdout);
	table_clear(l->t);
	return ferror(stdout) ? -EIO : 0;
}

static int list_end(void *ud, size_t count, struct cli_error *e)
{
	(void)ud;
	(void)e;
	if (count == 0)
		printf("No records.\n");
	return fflush(stdout) == 0 ? 0 : -EIO;
}

static int kvp_list(struct cli *cli, const struct kvp_args *a)
{
	static const char *const header[] = { "POOL", "KEY", "VALUE" };
	static const struct page_printer pp = {
		.key = "records",
		.head = list_head,
		.page = list_page,
		.end = list_end,
	};
	struct kvp_lister l = { .t = table_new(3) };
	int r;

	if (a->nrest)
		return cli_usage_error(cli, "`kvp list` takes only the VM");
	if (!l.t || table_add(l.t, header, NULL) < 0) {
		struct cli_error e = { 0 };

		table_free(l.t);
		cli_error_set(&e, CLI_ERR_LOCAL, "out of memory");
		return cli_report(cli, &e);
	}
	r = cli_call_pages(cli, request("kvp-list", a), &pp, &l);
	table_free(l.t);
	return r;
}

/* The value as text: made safe, or its exact bytes with --raw. */
static int print_value(const struct kvp_args *a, json_t *value)
{
	const char *s = json_string_value(value);
	size_t len = json_string_length(value);
	char *safe;

	if (a->raw) {
		fwrite(s, 1, len, stdout);
	} else {
		safe = cli_safe_dup(s, len);
		if (!safe)
			return -ENOMEM;
		fputs(safe, stdout);
		free(safe);
	}
	putchar('\n');
	return fflush(stdout) == 0 ? 0 : -EIO;
}

static int kvp_get(struct cli *cli, const struct kvp_args *a)
{
	json_t *req, *result = NULL, *value;
	int r;

	if (a->nrest != 1)
		return cli_usage_error(cli, "`kvp get` takes VM KEY");
	req = request("kvp-get", a);
	json_object_set_new(req, "key", json_string(a->rest[0]));
	if ((r = call(cli, req, &result)) != 0)
		return r;
	if (cli->json) {
		r = cli_print_json(result, false);
		json_decref(result);
		return r < 0 ? 1 : 0;
	}
	value = json_object_get(result, "value");
	if (!json_is_string(value)) {
		json_decref(result);
		return protocol_error(cli, "the kvp-get reply has no 'value'");
	}
	r = print_value(a, value);
	json_decref(result);
	return r < 0 ? 1 : 0;
}

static int kvp_set(struct cli *cli, const struct kvp_args *a)
{
	json_t *req, *items, *result = NULL;
	int r;

	if (a->nrest < 2 || a->nrest % 2)
		return cli_usage_error(cli, "`kvp set` takes VM KEY VALUE [KEY "
					    "VALUE]...");
	items = json_object();
	for (int i = 0; i < a->nrest; i += 2) {
		json_t *v = json_string(a->rest[i + 1]);

		if (!v || json_object_set_new(items, a->rest[i], v) < 0) {
			json_decref(items);
			return cli_usage_error(cli, "KEY and VALUE must be "
						    "UTF-8 text");
		}
	}
	req = request("kvp-set", a);
	json_object_set_new(req, "items", items);
	if ((r = call(cli, req, &result)) != 0)
		return r;
	if (cli->json)
		r = cli_print_json(result, false) < 0;
	else
		printf("%s: %d key%s set in the external pool%s\n", a->vm,
		       a->nrest / 2, a->nrest == 2 ? "" : "s",
		       json_is_false(json_object_get(result, "connected"))
			       ? " (the guest gets them when it connects)"
			       : "");
	json_decref(result);
	return r;
}

static int kvp_delete(struct cli *cli, const struct kvp_args *a)
{
	json_t *req, *keys, *result = NULL;
	int r;

	if (a->nrest < 1)
		return cli_usage_error(cli, "`kvp delete` takes VM KEY...");
	keys = json_array();
	for (int i = 0; i < a->nrest; i++) {
		json_t *k = json_string(a->rest[i]);

		if (!k) {
			json_decref(keys);
			return cli_usage_error(cli, "KEY must be UTF-8 text");
		}
		json_array_append_new(keys, k);
	}
	req = request("kvp-delete", a);
	json_object_set_new(req, "keys", keys);
	if ((r = call(cli, req, &result)) != 0)
		return r;
	if (cli->json)
		r = cli_print_json(result, false) < 0;
	else
		printf("%s: %d key%s deleted from the external pool\n", a->vm,
		       a->nrest, a->nrest == 1 ? "" : "s");
	json_decref(result);
	return r;
}

/* s made safe for the terminal, or "?" without memory; free it. */
static char *safe_member(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	char *p = json_is_string(v) ? cli_safe_dup(json_string_value(v),
						   json_string_length(v))
				    : strdup("?");

	return p ? p : strdup("?");
}

/* One change line as text: TIME POOL KEY = VALUE, or KEY deleted. */
static void print_change(json_t *ch)
{
	char when[64];
	json_t *t = json_object_get(ch, "time_us");
	char *pool = safe_member(ch, "pool"), *key = safe_member(ch, "key");
	char *value = json_is_string(json_object_get(ch, "value"))
			      ? safe_member(ch, "value")
			      : NULL;

	cli_format_local_time(json_is_integer(t) ? json_integer_value(t) : 0,
			      when, sizeof(when));
	if (value)
		printf("%s  %-13s %s = %s\n", when, pool ?: "?", key ?: "?",
		       value);
	else
		printf("%s  %-13s %s deleted\n", when, pool ?: "?",
		       key ?: "?");
	free(pool);
	free(key);
	free(value);
}

/* Print the stream's lines until it ends; 0 or -errno (e filled). */
static int watch_lines(struct cli *cli, struct cli_ctl *c, struct cli_error *e)
{
	for (;;) {
		json_t *line = NULL, *ch, *end;
		int r;

		r = cli_ctl_follow_next(c, "the stream", &line, e);
		if (r < 0)
			return r;
		ch = json_object_get(line, "kvp");
		end = json_object_get(line, "end");
		if (!end)
			end = json_object_get(line, "dropped");
		if (cli->json)
			cli_print_json(line, true);
		else if (ch)
			print_change(ch);
		fflush(stdout);
		if (end) {
			const char *why = member(end, "reason");

			if (!why)
				why = member(end, "message");
			cli_error_set(e, CLI_ERR_IO, "the watch ended: %s",
				      why ? why : "(no reason given)");
			json_decref(line);
			return -ECONNABORTED;
		}
		json_decref(line);
	}
}

static int kvp_watch(struct cli *cli, const struct kvp_args *a)
{
	struct cli_error e = { 0 };
	json_t *req, *result = NULL;
	struct cli_ctl c;
	int r;

	if (a->nrest)
		return cli_usage_error(cli, "`kvp watch` takes only the VM");
	req = request("kvp-watch", a);
	r = cli_ctl_open(&c, cli->socket_path, &e);
	if (r == 0) {
		r = cli_ctl_request(&c, req, CTL_DEFAULT_TIMEOUT_MS, &result,
				    &e);
		if (r == 0 && cli->json)
			cli_print_json(result, true);
		else if (r == 0)
			printf("watching %s's KVP pools (Ctrl-C ends)\n", a->vm);
		fflush(stdout);
		json_decref(result);
		if (r == 0)
			r = watch_lines(cli, &c, &e);
		cli_ctl_close(&c);
	}
	json_decref(req);
	if (r == -EPIPE || (r < 0 && ferror(stdout)))
		return 0;
	return r < 0 ? cli_report(cli, &e) : 0;
}

/* vmic kvp VERB VM ...: returns the exit status. */
int cmd_kvp(struct cli *cli, int argc, char **argv)
{
	struct kvp_args a = { 0 };
	int r = parse(cli, argc, argv, &a);

	if (r != CLI_NEXT)
		return r;
	if (strcmp(a.verb, "list") == 0)
		return kvp_list(cli, &a);
	if (strcmp(a.verb, "get") == 0)
		return kvp_get(cli, &a);
	if (strcmp(a.verb, "set") == 0)
		return kvp_set(cli, &a);
	if (strcmp(a.verb, "delete") == 0)
		return kvp_delete(cli, &a);
	if (strcmp(a.verb, "watch") == 0)
		return kvp_watch(cli, &a);
	return cli_usage_error(cli, "unknown kvp command '%s'; use list, get, "
				    "set, delete or watch",
			       a.verb);
}
