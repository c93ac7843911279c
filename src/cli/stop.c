/* SPDX-License-Identifier: MIT */
/*
 * `vmic stop NAME` (Stop-VM): orderly poweroff or reboot through the
 * guest's shutdown service, with a hard power-off through the VM's power
 * backend on timeout (--force) or at once (--turn-off). The daemon answers
 * when the stop is over, so the socket read waits for the stop timeout
 * plus a margin rather than the usual reply timeout.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmic.h"

/* Beyond the stop timeout: the hard power-off and the daemon's reply. */
#define STOP_MARGIN_MS 30000

enum {
	OPT_REBOOT = 0x200,
	OPT_REASON,
	OPT_TIMEOUT,
	OPT_FORCE,
	OPT_TURN_OFF,
};

struct stop_args {
	const char *vm;
	bool reboot, force, turn_off;
	const char *reason;
	int64_t timeout_ms; /* -1: the daemon's default */
};

/* Returns CLI_NEXT or the exit status. */
static int parse_stop_args(struct cli *cli, int argc, char **argv,
			   struct stop_args *a)
{
	static const struct option opts[] = {
		{ "reboot", no_argument, NULL, OPT_REBOOT },
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "turn-off", no_argument, NULL, OPT_TURN_OFF },
		CLI_COMMON_OPTIONS,
		{},
	};
	uint64_t ms;
	int c, r;

	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_REBOOT:
			a->reboot = true;
			break;
		case OPT_REASON:
			a->reason = optarg;
			break;
		case OPT_TIMEOUT:
			if (cli_parse_duration(optarg, &ms) < 0)
				return cli_usage_error(
					cli,
					"--timeout '%s' is not a duration "
					"(examples: 30s, 2m)",
					optarg);
			a->timeout_ms = (int64_t)ms;
			break;
		case OPT_FORCE:
			a->force = true;
			break;
		case OPT_TURN_OFF:
			a->turn_off = true;
			break;
		default:
			if ((r = cli_common_option(cli, c, argv)) != CLI_NEXT)
				return r;
		}
	}
	if (a->force && a->turn_off)
		return cli_usage_error(cli,
				       "--force (power off after the timeout) "
				       "and --turn-off (power off at once) "
				       "exclude each other");
	if ((r = cli_expect_operands(cli, argc, argv, 1)) != CLI_NEXT)
		return r;
	a->vm = argv[optind];
	return CLI_NEXT;
}

static json_t *stop_request(const struct stop_args *a)
{
	json_t *req = json_pack("{s:s, s:s, s:s, s:b, s:b}", "cmd", "stop",
				"vm", a->vm, "action",
				a->reboot ? "reboot" : "poweroff", "force",
				a->force, "turn_off", a->turn_off);

	if (req && a->reason)
		json_object_set_new(req, "reason", json_string(a->reason));
	if (req && a->timeout_ms >= 0)
		json_object_set_new(req, "timeout_ms",
				    json_integer(a->timeout_ms));
	return req;
}

/* Tell a person at a terminal why nothing seems to happen for a while. */
static void announce(const struct stop_args *a)
{
	char span[32];

	if (!isatty(STDERR_FILENO))
		return;
	fprintf(stderr, "vmic: %s %s", a->turn_off ? "turning off" : "stopping",
		a->vm);
	if (a->reboot)
		fprintf(stderr, " for a reboot");
	if (a->timeout_ms >= 0 && !a->turn_off) {
		cli_format_span_ms(a->timeout_ms, span, sizeof(span));
		fprintf(stderr, " (up to %s)", span);
	}
	fprintf(stderr, "...\n");
}

/* "web1: stopped gracefully in 4.2 s" and then the steps. */
static int print_outcome(const char *vm, json_t *result, struct cli_error *e)
{
	const char *outcome;
	int graceful;
	json_int_t elapsed;
	json_t *steps, *step;
	char span[32], clean[1024];
	size_t i;

	if (json_unpack(result, "{s:s, s:b, s:I, s:o}", "outcome", &outcome,
			"graceful", &graceful, "elapsed_ms", &elapsed, "steps",
			&steps) < 0 ||
	    !json_is_array(steps)) {
		cli_error_set(e, CLI_ERR_PROTOCOL,
			      "the stop result lacks 'outcome' (string), "
			      "'graceful' (boolean), 'elapsed_ms' (integer) or "
			      "'steps' (array)");
		return -EPROTO;
	}
	cli_format_span_ms(elapsed, span, sizeof(span));
	cli_clean_text(strcmp(outcome, "turned-off") == 0 ? "turned off"
							  : outcome,
		       clean, sizeof(clean));
	printf("%s: %s%s in %s\n", vm, clean,
	       graceful ? " gracefully" : "", span);
	json_array_foreach(steps, i, step) {
		cli_clean_text(json_string_value(step), clean, sizeof(clean));
		printf("  %s\n", clean);
	}
	return 0;
}

/* vmic stop NAME [...]: returns the exit status once the stop is over. */
int cmd_stop(struct cli *cli, int argc, char **argv)
{
	struct stop_args a = { .timeout_ms = -1 };
	struct cli_error e = { 0 };
	json_t *result = NULL;
	int timeout, r;

	if ((r = parse_stop_args(cli, argc, argv, &a)) != CLI_NEXT)
		return r;
	/* Without --timeout the daemon's default applies; wait it out. */
	timeout = a.timeout_ms >= 0
			  ? (int)MIN(a.timeout_ms + STOP_MARGIN_MS, INT32_MAX)
			  : CTL_NO_TIMEOUT;
	if (!cli->json)
		announce(&a);
	r = cli_ctl_call(cli, stop_request(&a), timeout, &result, &e);
	if (r < 0)
		return cli_report(cli, &e);
	if (cli->json)
		r = cli_print_json(result, false);
	else
		r = print_outcome(a.vm, result, &e);
	json_decref(result);
	if (r == -EPROTO)
		return cli_report(cli, &e);
	return r < 0 ? 1 : 0;
}
