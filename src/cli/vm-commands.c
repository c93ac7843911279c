/* SPDX-License-Identifier: MIT */
/*
 * The registry commands: list, add, set, remove, status, enable, disable
 * (Get-VM, New-VM/Remove-VM, Get-/Enable-/Disable-VMIntegrationService).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/duration.h"
#include "common/strbuf.h"
#include "proto/services.h"
#include "vmic.h"

/* Prints a command's result for people; 0, -EPROTO (e filled) or -errno. */
typedef int print_fn(struct cli *cli, json_t *result, const char *vm,
		     struct cli_error *e);

/*
 * Send req (taken over) and hand the result to print, or print it as JSON
 * with --json. The shape of every registry command; returns the exit
 * status.
 */
static int run_request(struct cli *cli, json_t *req, print_fn *print,
		       const char *vm)
{
	struct cli_error e = { 0 };
	json_t *result = NULL;
	int r;

	r = cli_ctl_call(cli, req, CTL_DEFAULT_TIMEOUT_MS, &result, &e);
	if (r < 0)
		return cli_report(cli, &e);
	if (cli->json)
		r = cli_print_json(result, false);
	else
		r = print(cli, result, vm, &e);
	json_decref(result);
	if (r == -EPROTO)
		return cli_report(cli, &e);
	return r < 0 ? 1 : 0;
}

/*
 * Print a table with `header` and one row per element of `rows`, each
 * turned into cells by add_row (which also checks the element). Returns 0
 * or the first error.
 */
static int print_rows(struct cli *cli, const char *const *header,
		      size_t ncols, json_t *rows,
		      int (*add_row)(struct table *t, json_t *row,
				     struct cli_error *e),
		      struct cli_error *e)
{
	struct table *t = table_new(ncols);
	json_t *v;
	size_t i;
	int r = 0;

	if (!t || table_add(t, header, NULL) < 0) {
		table_free(t);
		return -ENOMEM;
	}
	json_array_foreach(rows, i, v) {
		r = add_row(t, v, e);
		if (r < 0)
			break;
	}
	if (r == 0)
		table_print(t, cli->color, stdout);
	table_free(t);
	return r;
}

/* list */

static int add_list_row(struct table *t, json_t *row, struct cli_error *e)
{
	struct vm_summary summary, *vm = &summary;
	char uptime[32];
	const char *cells[7];
	enum cli_color colors[7] = { 0 };
	int r = reply_vm_summary(row, vm, e);
	/* Where it came from: `vmic add`, or the libvirt URI (older daemons
	 * send neither member: manual). */
	const char *lv_uri = json_string_value(json_object_get(row,
							       "libvirt_uri"));

	if (r < 0)
		return r;

	cli_format_uptime(vm->uptime_s, uptime, sizeof(uptime));
	cells[0] = vm->name;
	cells[1] = vm->connection;
	cells[2] = vm->heartbeat;
	cells[3] = cli_or_dash(vm->agent);
	cells[4] = cli_or_dash(vm->os);
	cells[5] = uptime;
	cells[6] = lv_uri ? lv_uri : "manual";
	colors[1] = cli_status_color(vm->connection);
	colors[2] = cli_status_color(vm->heartbeat);
	return table_add(t, cells, colors);
}

/* `list` for people: the table printed a page at a time, its column
 * widths growing as wider rows come. */
struct list_printer {
	struct table *t;
	bool color;
};

static int list_page(void *ud, json_t *vms, struct cli_error *e)
{
	struct list_printer *lp = ud;
	json_t *v;
	size_t i;
	int r;

	json_array_foreach(vms, i, v)
		if ((r = add_list_row(lp->t, v, e)) < 0)
			return r;
	table_print(lp->t, lp->color, stdout);
	table_clear(lp->t);
	return ferror(stdout) ? -EIO : 0;
}

static int list_end(void *ud, size_t count, struct cli_error *e)
{
	(void)ud;
	(void)e;
	if (count == 0)
		printf("No VMs are registered. Register one with "
		       "`vmic add NAME --channel URI`.\n");
	return fflush(stdout) == 0 ? 0 : -EIO;
}

/* vmic list: the VM table (Get-VM); returns the exit status. */
int cmd_list(struct cli *cli, int argc, char **argv)
{
	static const char *const header[] = { "NAME",  "CONNECTION",
					      "HEARTBEAT", "AGENT",
					      "OS",   "UPTIME", "SOURCE" };
	static const struct page_printer pp = {
		.key = "vms",
		.page = list_page,
		.end = list_end,
	};
	struct list_printer lp = { .color = cli->color };
	int r;

	if ((r = cli_parse_plain(cli, argc, argv, 0)) != CLI_NEXT)
		return r;
	lp.t = table_new(ARRAY_SIZE(header));
	if (!lp.t || table_add(lp.t, header, NULL) < 0) {
		struct cli_error e = { 0 };

		table_free(lp.t);
		cli_error_set(&e, CLI_ERR_LOCAL, "out of memory");
		return cli_report(cli, &e);
	}
	r = cli_call_pages(cli, json_pack("{s:s}", "cmd", "list"), &pp, &lp);
	table_free(lp.t);
	return r;
}

/* add, set */

enum {
	OPT_CHANNEL = 0x200,
	OPT_POWER_OFF,
};

static const struct option settings_opts[] = {
	{ "channel", required_argument, NULL, OPT_CHANNEL },
	{ "power-off", required_argument, NULL, OPT_POWER_OFF },
	CLI_COMMON_OPTIONS,
	{},
};

/* Put one VM setting option into the request; returns CLI_NEXT or 2. */
static int settings_option(struct cli *cli, int c, char **argv, json_t *req)
{
	switch (c) {
	case OPT_CHANNEL:
		json_object_set_new(req, "channel", json_string(optarg));
		return CLI_NEXT;
	case OPT_POWER_OFF:
		json_object_set_new(req, "power_off", json_string(optarg));
		return CLI_NEXT;
	default:
		return cli_common_option(cli, c, argv);
	}
}

/*
 * Parse the options of add/set into req (cmd already set) and NAME, the
 * first operand, into "vm"; the other operands stay for the caller
 * (argv[optind + 1] on). Returns CLI_NEXT or the exit status.
 */
static int parse_settings(struct cli *cli, int argc, char **argv,
			  json_t *req)
{
	int c, r;

	while ((c = getopt_long(argc, argv, ":h", settings_opts, NULL)) != -1) {
		if ((r = settings_option(cli, c, argv, req)) != CLI_NEXT)
			return r;
	}
	if (optind >= argc)
		return cli_usage_error(cli, "missing NAME");
	json_object_set_new(req, "vm", json_string(argv[optind]));
	return CLI_NEXT;
}

/*
 * SERVICE KEY=VALUE... after NAME: "service" and "settings" of a `set`.
 * Returns CLI_NEXT or the exit status.
 */
static int parse_service_settings(struct cli *cli, int argc, char **argv,
				  json_t *req)
{
	json_t *values;
	int status;
	const char *service = cli_require_service(cli, argv[0], &status);

	if (!service)
		return status;
	if (argc < 2)
		return cli_usage_error(cli, "give KEY=VALUE after %s (`vmic "
					    "status NAME %s` shows its "
					    "settings)",
				       service, service);
	values = json_object();
	for (int i = 1; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		char key[64];

		if (!eq || eq == argv[i] || (size_t)(eq - argv[i]) >= sizeof(key)) {
			json_decref(values);
			return cli_usage_error(cli, "'%s' is not KEY=VALUE",
					       argv[i]);
		}
		snprintf(key, sizeof(key), "%.*s", (int)(eq - argv[i]),
			 argv[i]);
		json_object_set_new(values, key, json_string(eq + 1));
	}
	json_object_set_new(req, "service", json_string(service));
	json_object_set_new(req, "settings", values);
	return CLI_NEXT;
}

static int print_added(struct cli *cli, json_t *result, const char *vm,
		       struct cli_error *e)
{
	struct vm_summary s;
	char name[256], channel[1024];

	(void)cli;
	if (reply_vm_summary(result, &s, e) < 0) {
		/* The daemon did register it; say so rather than fail. */
		printf("%s: registered\n", vm);
		return 0;
	}
	cli_clean_text(s.name, name, sizeof(name));
	cli_clean_text(s.channel, channel, sizeof(channel));
	printf("%s: registered; vmic-hostd is connecting to %s "
	       "(`vmic status %s` shows how it goes)\n",
	       name, channel, name);
	return 0;
}

/* vmic add NAME --channel URI [...]: returns the exit status. */
int cmd_add(struct cli *cli, int argc, char **argv)
{
	json_t *req = json_pack("{s:s}", "cmd", "add");
	int r;

	if ((r = parse_settings(cli, argc, argv, req)) != CLI_NEXT ||
	    (r = cli_expect_operands(cli, argc, argv, 1)) != CLI_NEXT) {
		json_decref(req);
		return r;
	}
	if (!json_object_get(req, "channel")) {
		json_decref(req);
		return cli_usage_error(
			cli, "--channel URI is required (unix:PATH, "
			     "vsock:CID[:PORT] or hvsock:PATH[:PORT])");
	}
	return run_request(cli, req, print_added, argv[optind]);
}

static int print_updated(struct cli *cli, json_t *result, const char *vm,
			 struct cli_error *e)
{
	(void)cli;
	(void)result;
	(void)e;
	printf("%s: updated\n", vm);
	return 0;
}

static int print_service_updated(struct cli *cli, json_t *result,
				 const char *vm, struct cli_error *e)
{
	struct service_entry s;
	json_t *settings;
	const char *key;
	char display[256], k[256], value[1024];
	json_t *v;
	int r;

	(void)cli;
	if ((r = reply_service(result, &s, e)) < 0 ||
	    (r = reply_object(result, "settings", &settings, e)) < 0)
		return r;
	cli_clean_text(s.display, display, sizeof(display));
	printf("%s: %s settings:", vm, display);
	json_object_foreach(settings, key, v) {
		cli_clean_text(key, k, sizeof(k));
		cli_clean_text(json_string_value(v) ?: "?", value,
			       sizeof(value));
		printf(" %s=%s", k, value);
	}
	putchar('\n');
	return 0;
}

/*
 * vmic set NAME [--channel URI] [--power-off URI]: the VM's settings;
 * vmic set NAME SERVICE KEY=VALUE...: a service's. Returns the exit
 * status.
 */
int cmd_set(struct cli *cli, int argc, char **argv)
{
	json_t *req = json_pack("{s:s}", "cmd", "set");
	const char *vm;
	int r;

	if ((r = parse_settings(cli, argc, argv, req)) != CLI_NEXT)
		goto fail;
	vm = argv[optind];
	if (optind + 1 < argc) {
		if (json_object_size(req) > 2) {
			r = cli_usage_error(cli, "give either --channel and "
						 "--power-off or SERVICE "
						 "KEY=VALUE..., not both");
			goto fail;
		}
		r = parse_service_settings(cli, argc - optind - 1,
					   argv + optind + 1, req);
		if (r != CLI_NEXT)
			goto fail;
		return run_request(cli, req, print_service_updated, vm);
	}
	if (json_object_size(req) < 3) {
		r = cli_usage_error(cli, "nothing to change; give --channel, "
					 "--power-off or SERVICE KEY=VALUE");
		goto fail;
	}
	return run_request(cli, req, print_updated, vm);
fail:
	json_decref(req);
	return r;
}

/* remove */

static int print_removed(struct cli *cli, json_t *result, const char *vm,
			 struct cli_error *e)
{
	(void)cli;
	(void)result;
	(void)e;
	printf("%s: removed (its events stay: `vmic events --vm %s`)\n", vm,
	       vm);
	return 0;
}

/* vmic remove NAME: returns the exit status. */
int cmd_remove(struct cli *cli, int argc, char **argv)
{
	int r;

	if ((r = cli_parse_plain(cli, argc, argv, 1)) != CLI_NEXT)
		return r;
	return run_request(cli,
			   json_pack("{s:s, s:s}", "cmd", "remove", "vm",
				     argv[optind]),
			   print_removed, argv[optind]);
}

/* status */

/* "Label:       value", both made safe, the value optionally coloured
 * (a service's own members are labelled with their names). */
static void print_field(struct cli *cli, const char *label,
			const char *value, enum cli_color color)
{
	char clean[1024], name[256];

	cli_clean_text(label, name, sizeof(name));
	cli_clean_text(value, clean, sizeof(clean));
	printf("%-12s %s%s%s\n", name, cli_paint(cli, color), clean,
	       cli_unpaint(cli, color));
}

static void print_connection(struct cli *cli, const struct conn_detail *d)
{
	char buf[256], since[64], span[32];
	enum cli_color color = cli_status_color(d->state);

	snprintf(buf, sizeof(buf), "%s", d->state);
	if (d->since_us >= 0) {
		cli_format_local_time(d->since_us, since, sizeof(since));
		cli_format_uptime((vmic_realtime_us() - d->since_us) / 1000000,
				  span, sizeof(span));
		snprintf(buf, sizeof(buf), "%s since %.19s (%s)", d->state,
			 since, span);
	}
	print_field(cli, "Connection:", buf, color);
	if (strcmp(d->state, "connected") == 0)
		return;
	if (d->attempts > 0) {
		snprintf(buf, sizeof(buf), "%lld", (long long)d->attempts);
		print_field(cli, "Attempts:", buf, COLOR_NONE);
	}
	if (d->last_error)
		print_field(cli, "Last error:", d->last_error, COLOR_NONE);
	if (d->next_retry_ms >= 0) {
		cli_format_span_ms(d->next_retry_ms, span, sizeof(span));
		snprintf(buf, sizeof(buf), "in %s", span);
		print_field(cli, "Next retry:", buf, COLOR_NONE);
	}
	if (d->hold_ms >= 0) {
		cli_format_span_ms(d->hold_ms, span, sizeof(span));
		snprintf(buf, sizeof(buf), "the guest's hellos are answered "
					   "again in %s", span);
		print_field(cli, "Held:", buf, COLOR_WARN);
	}
}

/*
 * "OK; RTT 240 us, every 1s, lost after 3 missed": the state, then what
 * it is measured against. A disabled heartbeat has nothing to add.
 */
static void print_heartbeat(struct cli *cli, const struct hb_detail *d)
{
	char buf[512], rtt[32];
	size_t off;

	off = vmic_appendf(buf, sizeof(buf), 0, "%s", d->state);
	if (strcmp(d->state, "Disabled") != 0) {
		if (d->rtt_us >= 0) {
			cli_format_rtt(d->rtt_us, rtt, sizeof(rtt));
			off = vmic_appendf(buf, sizeof(buf), off, "; RTT %s,",
					   rtt);
		} else {
			off = vmic_appendf(buf, sizeof(buf), off, ";");
		}
		off = vmic_appendf(buf, sizeof(buf), off,
				   " every %s, lost after %s missed",
				   d->interval, d->threshold);
		if (d->missed > 0)
			vmic_appendf(buf, sizeof(buf), off,
				     " (%lld missed now)", (long long)d->missed);
	}
	print_field(cli, "Heartbeat:", buf, cli_status_color(d->state));
	if (d->application && strcmp(d->application, "OK") != 0) {
		snprintf(buf, sizeof(buf), "%s%s%s", d->application,
			 d->application_reason && *d->application_reason
				 ? ": "
				 : "",
			 d->application_reason ? d->application_reason : "");
		print_field(cli, "Application:", buf, COLOR_WARN);
	}
}

static void print_vm_block(struct cli *cli, const struct vm_summary *vm,
			   const struct conn_detail *cd,
			   const struct hb_detail *hd)
{
	char uptime[32];

	cli_format_uptime(vm->uptime_s, uptime, sizeof(uptime));
	print_field(cli, "Name:", vm->name, COLOR_NONE);
	print_field(cli, "Channel:", vm->channel, COLOR_NONE);
	print_field(cli, "Power off:", vm->power_off ? vm->power_off : "none",
		    COLOR_NONE);
	print_connection(cli, cd);
	print_field(cli, "Agent:", cli_or_dash(vm->agent), COLOR_NONE);
	print_field(cli, "OS:", cli_or_dash(vm->os), COLOR_NONE);
	print_field(cli, "Kernel:", cli_or_dash(vm->kernel), COLOR_NONE);
	print_field(cli, "Uptime:", uptime, COLOR_NONE);
	print_heartbeat(cli, hd);
}

/* One Get-VMIntegrationService row; a disabled service shows no status. */
static int add_service_row(struct table *t, json_t *row, struct cli_error *e)
{
	struct service_entry entry, *s = &entry;
	char version[24] = "";
	const char *cells[5];
	enum cli_color colors[5] = { 0 };
	int r = reply_service(row, s, e);

	if (r < 0)
		return r;

	if (s->version >= 0)
		snprintf(version, sizeof(version), "%lld",
			 (long long)s->version);
	cells[0] = s->display;
	cells[1] = s->enabled ? "True" : "False";
	cells[2] = s->enabled ? s->primary : "";
	cells[3] = s->enabled ? s->secondary : "";
	cells[4] = version;
	colors[2] = cli_status_color(cells[2]);
	return table_add(t, cells, colors);
}

static int print_services(struct cli *cli, json_t *services,
			  struct cli_error *e)
{
	static const char *const header[] = {
		"Name", "Enabled", "PrimaryStatusDescription",
		"SecondaryStatusDescription", "Version"
	};

	return print_rows(cli, header, ARRAY_SIZE(header), services,
			  add_service_row, e);
}

/* "Events:" when the daemon does not record this VM's events in full
 * (docs/control.md `status` events; absent from older daemons). */
static void print_events_note(struct cli *cli, json_t *result)
{
	json_t *ev = json_object_get(result, "events");
	json_t *sup = json_object_get(ev, "suppressed");
	json_t *storing = json_object_get(ev, "storing");
	char line[256] = "";
	size_t off = 0;

	if (json_is_integer(sup) && json_integer_value(sup) > 0)
		off += (size_t)snprintf(line, sizeof(line),
					"%lld suppressed by the rate limit",
					(long long)json_integer_value(sup));
	if (json_is_false(storing))
		snprintf(line + off, sizeof(line) - off, "%snot stored: the "
			 "disk of the state directory is full",
			 off ? "; " : "");
	if (line[0])
		print_field(cli, "Events:", line, COLOR_WARN);
}

static int print_status(struct cli *cli, json_t *result, const char *name,
			struct cli_error *e)
{
	struct vm_summary vm;
	struct conn_detail cd;
	struct hb_detail hd;
	json_t *conn, *services;
	int r;

	(void)name;
	/* Check everything before printing anything. */
	if ((r = reply_vm_summary(result, &vm, e)) < 0 ||
	    (r = reply_object(result, "connection_detail", &conn, e)) < 0 ||
	    (r = reply_conn_detail(conn, &cd, e)) < 0 ||
	    (r = reply_hb_detail(result, &hd, e)) < 0 ||
	    (r = reply_array(result, "services", &services, e)) < 0)
		return r;
	print_vm_block(cli, &vm, &cd, &hd);
	print_events_note(cli, result);
	putchar('\n');
	return print_services(cli, services, e);
}

/* Members every service entry has, printed in its table row. */
static bool common_member(const char *key)
{
	static const char *const common[] = {
		"name",	      "display", "enabled", "primary_status",
		"secondary_status", "version", "guest_enabled", "settings",
		"inherited",
	};

	for (size_t i = 0; i < ARRAY_SIZE(common); i++)
		if (strcmp(key, common[i]) == 0)
			return true;
	return false;
}

/* A JSON scalar as text: strings as they are, null as "-". */
static void scalar_text(json_t *v, char *buf, size_t n)
{
	if (json_is_string(v))
		snprintf(buf, n, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, n, "%lld", (long long)json_integer_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, n, "%s", json_is_true(v) ? "yes" : "no");
	else
		snprintf(buf, n, "-");
}

/* "interval = 2s" lines, "(default)" on those that follow the daemon. */
static void print_settings(struct cli *cli, json_t *entry)
{
	json_t *settings = json_object_get(entry, "settings");
	json_t *inherited = json_object_get(entry, "inherited"), *v, *x;
	const char *key;
	char value[1024], line[1200], name[256];
	size_t i;

	if (!json_is_object(settings))
		return;
	cli_clean_text(json_string_value(json_object_get(entry, "name"))
			       ?: "SERVICE",
		       name, sizeof(name));
	printf("\nSettings (`vmic set VM %s KEY=VALUE`):\n", name);
	json_object_foreach(settings, key, v) {
		bool dflt = false;

		json_array_foreach(inherited, i, x)
			dflt = dflt || (json_is_string(x) &&
					strcmp(json_string_value(x), key) == 0);
		scalar_text(v, value, sizeof(value));
		snprintf(line, sizeof(line), "%s%s", value,
			 dflt ? " (default)" : "");
		printf("  ");
		print_field(cli, key, line, COLOR_NONE);
	}
}

/* vmic status NAME SERVICE: the service row, its settings and details. */
static int print_one_service(struct cli *cli, json_t *result,
			     const char *vm, struct cli_error *e)
{
	json_t *rows = json_array(), *v;
	const char *key;
	char value[1024];
	int r;

	(void)vm;
	json_array_append(rows, result);
	r = print_services(cli, rows, e);
	json_decref(rows);
	if (r < 0)
		return r;
	print_settings(cli, result);
	putchar('\n');
	json_object_foreach(result, key, v) {
		if (common_member(key) || json_is_object(v) ||
		    json_is_array(v))
			continue;
		scalar_text(v, value, sizeof(value));
		print_field(cli, key, value, COLOR_NONE);
	}
	return 0;
}

/*
 * vmic status NAME [SERVICE]: the VM block and service table, or one
 * service with its settings and details; returns the exit status.
 */
int cmd_status(struct cli *cli, int argc, char **argv)
{
	const char *service;
	int c, r;
	static const struct option opts[] = { CLI_COMMON_OPTIONS, {} };

	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
		if ((r = cli_common_option(cli, c, argv)) != CLI_NEXT)
			return r;
	if (optind >= argc || argc - optind > 2)
		return cli_usage_error(cli, optind >= argc
						    ? "missing NAME"
						    : "too many arguments");
	if (argc - optind == 1)
		return run_request(cli,
				   json_pack("{s:s, s:s}", "cmd", "status",
					     "vm", argv[optind]),
				   print_status, argv[optind]);
	service = cli_require_service(cli, argv[optind + 1], &r);
	if (!service)
		return r;
	return run_request(cli,
			   json_pack("{s:s, s:s, s:s}", "cmd", "status", "vm",
				     argv[optind], "service", service),
			   print_one_service, argv[optind]);
}

/* enable, disable */

static int print_switched(struct cli *cli, json_t *result, const char *vm,
			  struct cli_error *e)
{
	struct service_entry s;
	char primary[256], display[256];
	int r;

	(void)cli;
	if ((r = reply_service(result, &s, e)) < 0)
		return r;
	cli_clean_text(s.primary, primary, sizeof(primary));
	cli_clean_text(s.display, display, sizeof(display));
	printf("%s: %s %s%s%s\n", vm, display,
	       s.enabled ? "enabled" : "disabled", *primary ? ", status " : "",
	       primary);
	return 0;
}

static int switch_service(struct cli *cli, int argc, char **argv,
			  const char *verb)
{
	const char *service;
	int r;

	if ((r = cli_parse_plain(cli, argc, argv, 2)) != CLI_NEXT)
		return r;
	service = cli_require_service(cli, argv[optind + 1], &r);
	if (!service)
		return r;
	return run_request(cli,
			   json_pack("{s:s, s:s, s:s}", "cmd", verb, "vm",
				     argv[optind], "service", service),
			   print_switched, argv[optind]);
}

/* vmic enable NAME SERVICE: returns the exit status. */
int cmd_enable(struct cli *cli, int argc, char **argv)
{
	return switch_service(cli, argc, argv, "enable");
}

/* vmic disable NAME SERVICE: returns the exit status. */
int cmd_disable(struct cli *cli, int argc, char **argv)
{
	return switch_service(cli, argc, argv, "disable");
}
