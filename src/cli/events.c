/* SPDX-License-Identifier: MIT */
/*
 * `vmic events`: the daemon's event log, and with --follow the events as
 * they happen. The log is printed as aligned columns whose widths only
 * grow, so a followed stream stays readable without knowing the future.
 * With --json a batch prints as the daemon's result; a followed stream
 * prints one compact event object per line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/duration.h"
#include "vmic.h"

#define EVENT_COLUMNS 6

enum {
	OPT_VM = 0x200,
	OPT_SINCE,
	OPT_LIMIT,
	OPT_FOLLOW,
};

struct events_printer {
	struct cli *cli;
	struct table *table; /* text mode: widths carried across events */
	bool follow;
};

/* "from -> to", or just the side that is known. */
static void format_change(const struct vm_event *ev, char *buf, size_t n)
{
	if (ev->from && ev->to)
		snprintf(buf, n, "%s -> %s", ev->from, ev->to);
	else
		snprintf(buf, n, "%s", ev->to ? ev->to : "");
}

static int add_event_row(struct table *t, const struct vm_event *ev)
{
	char when[64], change[512];
	const char *cells[EVENT_COLUMNS];
	enum cli_color colors[EVENT_COLUMNS] = { 0 };

	cli_format_local_time(ev->time_us, when, sizeof(when));
	format_change(ev, change, sizeof(change));
	cells[0] = when;
	cells[1] = ev->vm;
	cells[2] = cli_or_dash(ev->service);
	cells[3] = ev->kind;
	cells[4] = change;
	cells[5] = ev->message ? ev->message : "";
	colors[4] = cli_status_color(ev->to);
	return table_add(t, cells, colors);
}

/* Print one event object as text or as a JSON line. */
static int print_event(struct events_printer *p, json_t *o,
		       struct cli_error *e)
{
	struct vm_event ev;
	int r;

	if ((r = reply_event(o, &ev, e)) < 0)
		return r;
	if (p->cli->json)
		return cli_print_json(o, true);
	if ((r = add_event_row(p->table, &ev)) < 0)
		return r;
	table_print(p->table, p->cli->color, stdout);
	table_clear(p->table);
	return fflush(stdout) == 0 ? 0 : -EIO;
}

/*
 * The first reply, the past events, a page at a time: a table whose
 * column widths only grow (so later pages line up), or with --json and
 * --follow one compact event per line. (--json alone prints the reply
 * as one document: cli_print_pages does.)
 */
static int print_page(void *ud, json_t *events, struct cli_error *e)
{
	struct events_printer *p = ud;
	json_t *v;
	size_t i;
	int r;

	if (p->cli->json) {
		json_array_foreach(events, i, v)
			if ((r = print_event(p, v, e)) < 0)
				return r;
		return 0;
	}
	json_array_foreach(events, i, v) {
		struct vm_event ev;

		if ((r = reply_event(v, &ev, e)) < 0 ||
		    (r = add_event_row(p->table, &ev)) < 0)
			return r;
	}
	table_print(p->table, p->cli->color, stdout);
	table_clear(p->table);
	return fflush(stdout) == 0 ? 0 : -EIO;
}

static int print_end(void *ud, size_t count, struct cli_error *e)
{
	struct events_printer *p = ud;

	(void)e;
	if (count == 0 && !p->follow && !p->cli->json)
		printf("No events.\n");
	return fflush(stdout) == 0 ? 0 : -EIO;
}

/*
 * The daemon's last line to a follower it drops for reading too slowly:
 * {"dropped": {"code": "overrun", "message": ...}}. Fills e; -ECONNABORTED.
 */
static int dropped(json_t *line, struct cli_error *e)
{
	const char *msg = json_string_value(
		json_object_get(json_object_get(line, "dropped"), "message"));

	cli_error_set(e, CLI_ERR_IO, "vmic-hostd ended the event stream: %s",
		      msg ? msg : "(no reason given)");
	return -ECONNABORTED;
}

/*
 * After the batch, every line is {"event": EVENT} until the daemon or the
 * user ends it. Returns only on failure (-EPIPE when stdout's reader left,
 * -ECONNABORTED when the daemon dropped us for reading too slowly).
 */
static int follow_events(struct events_printer *p, struct cli_ctl *c,
			 struct cli_error *e)
{
	for (;;) {
		json_t *line = NULL, *ev;
		int r;

		r = cli_ctl_follow_next(c, "the event stream", &line, e);
		if (r < 0)
			return r;
		ev = json_object_get(line, "event");
		if (!ev && json_object_get(line, "dropped")) {
			r = dropped(line, e);
		} else if (!ev) {
			cli_error_set(e, CLI_ERR_PROTOCOL,
				      "a followed line lacks 'event'");
			r = -EPROTO;
		} else {
			r = print_event(p, ev, e);
		}
		json_decref(line);
		if (r < 0)
			return r;
	}
}

/*
 * A followed log cannot size its columns from events still to come;
 * start them at the width of typical values so few later lines shift.
 */
static void reserve_widths(struct table *t)
{
	static const size_t widths[EVENT_COLUMNS] = {
		sizeof("2025-01-31 08:00:00.000") - 1,
		8,                                    /* VM name */
		sizeof("heartbeat") - 1,              /* service */
		sizeof("service-setting") - 1,        /* kind */
		sizeof("OK -> Lost Communication") - 1, /* change */
		0,                                    /* message: last */
	};

	for (size_t i = 0; i < EVENT_COLUMNS; i++)
		table_min_width(t, i, widths[i]);
}

/* Parse the options into req; returns CLI_NEXT or the exit status. */
static int parse_events_args(struct cli *cli, int argc, char **argv,
			     json_t *req, bool *follow)
{
	static const struct option opts[] = {
		{ "vm", required_argument, NULL, OPT_VM },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "follow", no_argument, NULL, OPT_FOLLOW },
		CLI_COMMON_OPTIONS,
		{},
	};
	uint64_t limit;
	int64_t since;
	int c, r;

	while ((c = getopt_long(argc, argv, ":hf", opts, NULL)) != -1) {
		switch (c) {
		case OPT_VM:
			json_object_set_new(req, "vm", json_string(optarg));
			break;
		case OPT_SINCE:
			r = cli_parse_when(optarg, vmic_realtime_us(), &since);
			if (r == -ERANGE)
				return cli_usage_error(
					cli,
					"--since '%s' is too long ago for a "
					"duration; give a date such as "
					"2025-01-31 or 2025-01-31T08:00",
					optarg);
			if (r < 0)
				return cli_usage_error(
					cli,
					"--since '%s' is neither a duration "
					"ago (10m, 2h, 1d) nor a time "
					"(2025-01-31T08:00[:00][Z|+01:00])",
					optarg);
			json_object_set_new(req, "since_us",
					    json_integer(since));
			break;
		case OPT_LIMIT:
			if (cli_parse_count(optarg, 1, INT32_MAX, &limit) < 0)
				return cli_usage_error(
					cli,
					"--limit '%s' is not a positive count",
					optarg);
			json_object_set_new(req, "limit",
					    json_integer((json_int_t)limit));
			break;
		case OPT_FOLLOW:
		case 'f':
			*follow = true;
			break;
		default:
			if ((r = cli_common_option(cli, c, argv)) != CLI_NEXT)
				return r;
		}
	}
	if ((r = cli_expect_operands(cli, argc, argv, 0)) != CLI_NEXT)
		return r;
	json_object_set_new(req, "follow", json_boolean(*follow));
	return CLI_NEXT;
}

/* Request the log on c and print it, then follow it when asked. */
static int run_events(struct events_printer *p, struct cli_ctl *c, json_t *req,
		      struct cli_error *e)
{
	static const struct page_printer pp = {
		.key = "events",
		.page = print_page,
		.end = print_end,
	};
	int r;

	r = cli_print_pages(p->cli, c, req, &pp, p, p->cli->json && !p->follow,
			    e);
	if (r < 0 || !p->follow)
		return r;
	return follow_events(p, c, e);
}

/* vmic events [...]: print the log, then follow it; returns the exit status. */
int cmd_events(struct cli *cli, int argc, char **argv)
{
	static const char *const header[EVENT_COLUMNS] = {
		"TIME", "VM", "SERVICE", "KIND", "CHANGE", "MESSAGE"
	};
	struct events_printer p = { .cli = cli };
	struct cli_error e = { 0 };
	json_t *req = json_pack("{s:s}", "cmd", "events");
	bool follow = false;
	struct cli_ctl c;
	int r;

	if ((r = parse_events_args(cli, argc, argv, req, &follow)) != CLI_NEXT)
		goto out;
	p.follow = follow;
	p.table = table_new(EVENT_COLUMNS);
	if (!p.table || table_add(p.table, header, NULL) < 0) {
		cli_error_set(&e, CLI_ERR_LOCAL, "out of memory");
		r = cli_report(cli, &e);
		goto out;
	}
	if (follow)
		reserve_widths(p.table);
	r = cli_ctl_open(&c, cli->socket_path, &e);
	if (r == 0) {
		r = run_events(&p, &c, req, &e);
		cli_ctl_close(&c);
	}
	/* A reader that went away (| head) is the normal end of a stream. */
	if (r == -EPIPE || (r < 0 && ferror(stdout)))
		r = 0;
	else if (r < 0)
		r = cli_report(cli, &e);
out:
	table_free(p.table);
	json_decref(req);
	return r;
}
