/* SPDX-License-Identifier: MIT */
/*
 * `vmic check NAME`: a monitoring plugin in the Nagios/Icinga/Sensu
 * convention. One line on stdout, "VMIC STATE - text | perfdata", and the
 * exit status monitoring systems read:
 *
 *   0 OK        heartbeat OK and the channel connected
 *   1 WARNING   OK (application critical); No Contact (the agent was not
 *               reached since the VM was added or the daemon started);
 *               heartbeat OK while the channel is still coming up
 *   2 CRITICAL  Lost Communication; Protocol Mismatch; the channel is
 *               retrying after the agent had been reached
 *   3 UNKNOWN   the daemon cannot be asked (not running, no permission,
 *               bad reply), unknown VM, heartbeat disabled, bad usage
 *
 * The same mapping is documented in vmic(1).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmic.h"

/* Monitoring plugins answer before the usual 10 s plugin timeout. */
#define CHECK_TIMEOUT_MS 8000

enum check_state {
	CHECK_OK = 0,
	CHECK_WARNING = 1,
	CHECK_CRITICAL = 2,
	CHECK_UNKNOWN = 3,
};

static const char *const state_names[] = {
	[CHECK_OK] = "OK",
	[CHECK_WARNING] = "WARNING",
	[CHECK_CRITICAL] = "CRITICAL",
	[CHECK_UNKNOWN] = "UNKNOWN",
};

struct check_result {
	enum check_state state;
	char text[1024];
	int64_t rtt_us; /* -1 when unknown: no perfdata */
};

/* ", connection retrying (last error: refused)" */
static void describe_connection(const struct conn_detail *cd, char *buf,
				size_t n)
{
	if (strcmp(cd->state, "connected") == 0)
		snprintf(buf, n, ", connected");
	else if (cd->last_error && *cd->last_error)
		snprintf(buf, n, ", connection %s (last error: %s)", cd->state,
			 cd->last_error);
	else
		snprintf(buf, n, ", connection %s", cd->state);
}

/*
 * The state for a VM from its status: the heartbeat state decides, the
 * connection state refines it (see the table at the top).
 */
static void evaluate(const struct vm_summary *vm, const struct conn_detail *cd,
		     const struct hb_detail *hd, struct check_result *res)
{
	const char *hb = hd->state;
	bool connected = strcmp(cd->state, "connected") == 0;
	bool retrying = strcmp(cd->state, "retrying") == 0;
	char conn[512];

	describe_connection(cd, conn, sizeof(conn));
	res->rtt_us = hd->rtt_us;
	if (strcmp(hb, "Disabled") == 0) {
		res->state = CHECK_UNKNOWN;
		res->rtt_us = -1; /* the last one measured is stale */
		snprintf(res->text, sizeof(res->text),
			 "%s: the heartbeat service is disabled; `vmic enable "
			 "%s heartbeat` turns it on",
			 vm->name, vm->name);
		return;
	}
	if (strcmp(hb, "OK") == 0)
		res->state = connected ? CHECK_OK : CHECK_WARNING;
	else if (strcmp(hb, "OK (application critical)") == 0)
		res->state = CHECK_WARNING;
	else if (strcmp(hb, "No Contact") == 0)
		res->state = CHECK_WARNING;
	else if (strcmp(hb, "Lost Communication") == 0 ||
		 strcmp(hb, "Protocol Mismatch") == 0)
		res->state = CHECK_CRITICAL;
	else
		res->state = CHECK_UNKNOWN;
	/* Retrying after contact means the guest went away. */
	if (retrying && strcmp(hb, "No Contact") != 0)
		res->state = CHECK_CRITICAL;

	if (res->state == CHECK_UNKNOWN)
		snprintf(res->text, sizeof(res->text),
			 "%s: unrecognised heartbeat state '%s'%s", vm->name,
			 hb, conn);
	else if (strcmp(hb, "OK (application critical)") == 0)
		snprintf(res->text, sizeof(res->text),
			 "%s: heartbeat %s: %s%s", vm->name, hb,
			 cli_or_dash(hd->application_reason), conn);
	else if (strcmp(hb, "Protocol Mismatch") == 0)
		snprintf(res->text, sizeof(res->text),
			 "%s: heartbeat %s: %s%s", vm->name, hb,
			 cli_or_dash(hd->secondary), conn);
	else
		snprintf(res->text, sizeof(res->text), "%s: heartbeat %s%s",
			 vm->name, hb, conn);
}

/* Ask the daemon for the VM's status and evaluate it; -errno with e. */
static int check_vm(struct cli *cli, const char *name,
		    struct check_result *res, struct cli_error *e)
{
	struct vm_summary vm;
	struct conn_detail cd;
	struct hb_detail hd;
	json_t *status = NULL, *conn;
	int r;

	r = cli_ctl_call(cli,
			 json_pack("{s:s, s:s}", "cmd", "status", "vm", name),
			 CHECK_TIMEOUT_MS, &status, e);
	if (r < 0)
		return r;
	if ((r = reply_vm_summary(status, &vm, e)) == 0 &&
	    (r = reply_object(status, "connection_detail", &conn, e)) == 0 &&
	    (r = reply_conn_detail(conn, &cd, e)) == 0 &&
	    (r = reply_hb_detail(status, &hd, e)) == 0)
		evaluate(&vm, &cd, &hd, res);
	json_decref(status);
	return r;
}

/*
 * Print the plugin line. '|' starts the performance data for the
 * monitoring system, so none may appear in the text.
 */
static int print_result(struct cli *cli, struct check_result *res)
{
	char text[sizeof(res->text)], perf[64] = "";
	json_t *o;
	int r;

	cli_clean_text(res->text, text, sizeof(text));
	for (char *p = text; (p = strchr(p, '|'));)
		*p = '/';
	if (cli->json) {
		o = json_pack("{s:s, s:i, s:s, s:o}", "state",
			      state_names[res->state], "exit", res->state,
			      "text", text, "rtt_us",
			      res->rtt_us >= 0 ? json_integer(res->rtt_us)
					       : json_null());
		r = cli_print_json(o, false);
		json_decref(o);
		return r;
	}
	if (res->rtt_us >= 0)
		snprintf(perf, sizeof(perf), " | rtt=%lld.%06llds;;;0",
			 (long long)(res->rtt_us / 1000000),
			 (long long)(res->rtt_us % 1000000));
	printf("VMIC %s - %s%s\n", state_names[res->state], text, perf);
	return 0;
}

/* vmic check NAME: print the plugin line; exit status 0..3 as above. */
int cmd_check(struct cli *cli, int argc, char **argv)
{
	struct check_result res = { .state = CHECK_UNKNOWN, .rtt_us = -1 };
	struct cli_error e = { 0 };
	int r;

	r = cli_parse_plain(cli, argc, argv, 1);
	if (r == 0) /* --help */
		return 0;
	if (r != CLI_NEXT) {
		snprintf(res.text, sizeof(res.text),
			 "bad usage; `vmic help check` shows the arguments");
	} else if (check_vm(cli, argv[optind], &res, &e) < 0) {
		res.state = CHECK_UNKNOWN;
		res.rtt_us = -1;
		cli_error_text(cli, &e, res.text, sizeof(res.text));
	}
	print_result(cli, &res);
	return (int)res.state;
}
