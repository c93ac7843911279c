/* SPDX-License-Identifier: MIT */
/*
 * `vmic time NAME [--sync]`: how far the guest's clock is from the
 * host's, how it is kept in time (the mode the agent chose), and when it
 * was last synced; --sync asks the guest to step its clock now and shows
 * the result.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/strbuf.h"
#include "vmic.h"

enum { OPT_SYNC = 0x200 };

/* The members printed; integers are INT64_MIN when null. */
struct time_reply {
	const char *vm, *primary, *secondary, *connection, *policy;
	const char *mode, *source, *last_action, *last_reason;
	const char *last_step_reason, *detail;
	int64_t offset_ns, delay_ns, last_sync_us, last_step_ns, last_step_us;
	int64_t freq_ppb, interval_ms, report_us;
	bool enabled, simulated;
};

static int unpack_time(json_t *o, struct time_reply *t, struct cli_error *e)
{
	json_t *v;
	struct {
		const char *key;
		const char **s;
		int64_t *i;
	} m[] = {
		{ "vm", &t->vm, NULL },
		{ "primary_status", &t->primary, NULL },
		{ "secondary_status", &t->secondary, NULL },
		{ "connection", &t->connection, NULL },
		{ "policy", &t->policy, NULL },
		{ "mode", &t->mode, NULL },
		{ "source", &t->source, NULL },
		{ "last_action", &t->last_action, NULL },
		{ "last_reason", &t->last_reason, NULL },
		{ "last_step_reason", &t->last_step_reason, NULL },
		{ "detail", &t->detail, NULL },
		{ "offset_ns", NULL, &t->offset_ns },
		{ "delay_ns", NULL, &t->delay_ns },
		{ "last_sync_us", NULL, &t->last_sync_us },
		{ "last_step_ns", NULL, &t->last_step_ns },
		{ "last_step_us", NULL, &t->last_step_us },
		{ "freq_ppb", NULL, &t->freq_ppb },
		{ "interval_ms", NULL, &t->interval_ms },
		{ "report_us", NULL, &t->report_us },
	};

	for (size_t i = 0; i < ARRAY_SIZE(m); i++) {
		v = json_object_get(o, m[i].key);
		if (m[i].s && (json_is_string(v) || json_is_null(v))) {
			*m[i].s = json_string_value(v);
		} else if (m[i].i && (json_is_integer(v) || json_is_null(v))) {
			*m[i].i = json_is_integer(v) ? json_integer_value(v)
						     : INT64_MIN;
		} else {
			cli_error_set(e, CLI_ERR_PROTOCOL,
				      "the time result %s '%s'",
				      v ? "has a mistyped" : "lacks",
				      m[i].key);
			return -EPROTO;
		}
	}
	if (json_unpack(o, "{s:b, s:b}", "enabled", &t->enabled, "simulated",
			&t->simulated) < 0) {
		cli_error_set(e, CLI_ERR_PROTOCOL, "the time result lacks "
						   "'enabled' or 'simulated' "
						   "(booleans)");
		return -EPROTO;
	}
	return 0;
}

/* "+12.3 us", "-1.250 ms", "+30.000 s": an offset in a readable unit. */
static void format_offset(int64_t ns, char *buf, size_t n)
{
	double a = ns < 0 ? -(double)ns : (double)ns;
	char sign = ns < 0 ? '-' : '+';

	if (a < 1e3)
		snprintf(buf, n, "%c%.0f ns", sign, a);
	else if (a < 1e6)
		snprintf(buf, n, "%c%.1f us", sign, a / 1e3);
	else if (a < 1e9)
		snprintf(buf, n, "%c%.3f ms", sign, a / 1e6);
	else
		snprintf(buf, n, "%c%.6f s", sign, a / 1e9);
}

static void line(const char *label, const char *value)
{
	char clean[1024];

	cli_clean_text(value, clean, sizeof(clean));
	printf("%-12s %s\n", label, clean);
}

static void print_measurement(const struct time_reply *t)
{
	char buf[512], a[48], b[48], when[64];
	size_t off;

	format_offset(t->offset_ns, a, sizeof(a));
	format_offset(t->delay_ns, b, sizeof(b));
	/* b + 1: a round trip has no sign. */
	off = vmic_appendf(buf, sizeof(buf), 0, "%s (guest behind when +), "
						"round trip %s",
			   a, b + 1);
	if (t->report_us != INT64_MIN) {
		cli_format_local_time(t->report_us, when, sizeof(when));
		vmic_appendf(buf, sizeof(buf), off, ", at %.19s", when);
	}
	line("Offset:", buf);
	if (t->last_sync_us != INT64_MIN) {
		cli_format_local_time(t->last_sync_us, when, sizeof(when));
		snprintf(buf, sizeof(buf), "%.19s (%s, %s)", when,
			 cli_or_dash(t->last_action), cli_or_dash(t->last_reason));
	} else {
		snprintf(buf, sizeof(buf), "never (last: %s)",
			 cli_or_dash(t->last_action));
	}
	line("Last sync:", buf);
	if (t->last_step_us != INT64_MIN) {
		format_offset(t->last_step_ns, a, sizeof(a));
		cli_format_local_time(t->last_step_us, when, sizeof(when));
		snprintf(buf, sizeof(buf), "%s at %.19s (%s)", a, when,
			 cli_or_dash(t->last_step_reason));
		line("Last step:", buf);
	}
	snprintf(buf, sizeof(buf), "%+.3f ppm; next measurement in %.1f s",
		 (double)t->freq_ppb / 1000, (double)t->interval_ms / 1000);
	line("Frequency:", buf);
}

static int print_time(const struct cli *cli, json_t *result,
		      struct cli_error *e)
{
	struct time_reply t = { 0 };
	char buf[512];
	int r = unpack_time(result, &t, e);

	(void)cli;
	if (r < 0)
		return r;
	snprintf(buf, sizeof(buf), "%s%s%s",
		 t.enabled ? t.primary : "disabled on the host",
		 t.secondary && t.secondary[0] ? ": " : "",
		 t.secondary ? t.secondary : "");
	line("Timesync:", buf);
	snprintf(buf, sizeof(buf), "%s (mode setting %s%s), source %s",
		 t.mode ? t.mode : "unknown", t.policy,
		 t.simulated ? ", simulated clock" : "",
		 cli_or_dash(t.source));
	line("Mode:", buf);
	if (t.mode)
		print_measurement(&t);
	else
		line("Offset:", "not measured yet");
	if (strcmp(t.connection, "connected") != 0)
		line("Connection:", t.connection);
	return 0;
}

/* vmic time NAME [--sync]: returns the exit status. */
int cmd_time(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sync", no_argument, NULL, OPT_SYNC },
		CLI_COMMON_OPTIONS,
		{},
	};
	struct cli_error e = { 0 };
	json_t *req, *result = NULL;
	bool sync = false;
	int c, r;

	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == OPT_SYNC)
			sync = true;
		else if ((r = cli_common_option(cli, c, argv)) != CLI_NEXT)
			return r;
	}
	if ((r = cli_expect_operands(cli, argc, argv, 1)) != CLI_NEXT)
		return r;
	req = json_pack("{s:s, s:s, s:b}", "cmd", "time", "vm", argv[optind],
			"sync", sync);
	r = cli_ctl_call(cli, req, CTL_DEFAULT_TIMEOUT_MS, &result, &e);
	if (r < 0)
		return cli_report(cli, &e);
	if (cli->json) {
		r = cli_print_json(result, false);
	} else {
		if (sync)
			printf("%s: synced\n", argv[optind]);
		r = print_time(cli, result, &e);
	}
	json_decref(result);
	if (r == -EPROTO)
		return cli_report(cli, &e);
	return r < 0 ? 1 : 0;
}
