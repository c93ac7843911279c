/* SPDX-License-Identifier: MIT */
/*
 * Argument handling shared by the commands: the options every command
 * takes, usage errors, and the parsers of counts, durations and service
 * names. Usage text comes from the command table, never from a handler.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/duration.h"
#include "proto/services.h"
#include "vmic.h"

/* Print "usage: vmic VERB ARGS [--json]" for one command. */
void cli_print_usage(const struct cli_command *cmd, FILE *out)
{
	fprintf(out, "usage: vmic %s%s%s [--json]\n", cmd->name,
		*cmd->usage ? " " : "", cmd->usage);
}

/*
 * The help of one command: usage, summary, and the valid service names
 * where it takes one (bash completion reads them from here too).
 */
void cli_print_help(const struct cli_command *cmd, FILE *out)
{
	cli_print_usage(cmd, out);
	fprintf(out, "\n%s.\n", cmd->summary);
	if (strstr(cmd->usage, "SERVICE"))
		fprintf(out, "Services: %s\n", vmic_service_names());
	fprintf(out, "See vmic(1) for details.\n");
}

/*
 * Say what is wrong with the command line, then how it should look.
 * Returns the usage exit status for the handler to return.
 */
int cli_usage_error(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vmic%s%s: ", cli->cmd ? " " : "",
		cli->cmd ? cli->cmd->name : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (cli->cmd)
		cli_print_usage(cli->cmd, stderr);
	else
		fprintf(stderr, "usage: vmic [--socket PATH] [--json] COMMAND "
				"[ARGS...]; `vmic help` lists the commands\n");
	return EXIT_USAGE;
}

/*
 * Handle what getopt_long returned for an option every command shares
 * (--json, --socket, --help) or a getopt error (optstring must start
 * with ':' so a missing value reads ':'). Returns CLI_NEXT when parsing
 * goes on, else the exit status: 0 after --help, 2 after an error.
 */
int cli_common_option(struct cli *cli, int c, char **argv)
{
	const char *opt = optind > 0 ? argv[optind - 1] : "?";

	switch (c) {
	case OPT_JSON:
		cli->json = true;
		return CLI_NEXT;
	case OPT_SOCKET:
		cli->socket_path = optarg;
		return CLI_NEXT;
	case OPT_HELP:
		if (cli->cmd)
			cli_print_help(cli->cmd, stdout);
		return 0;
	case ':':
		return cli_usage_error(cli, "option '%s' needs a value", opt);
	case '?':
		if (optopt)
			return cli_usage_error(cli, "unknown option '-%c'",
					       optopt);
		return cli_usage_error(cli, "unknown option '%s'", opt);
	default:
		return cli_usage_error(cli, "unexpected option '%s'", opt);
	}
}

/*
 * Parse a decimal count within [min, max]: no sign, no spaces, no
 * suffix. -EINVAL when it is not a number, -ERANGE outside the range.
 */
int cli_parse_count(const char *s, uint64_t min, uint64_t max,
		    uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* A duration as people write it ("500ms", "2s", "1m30s") in ms. */
int cli_parse_duration(const char *s, uint64_t *ms)
{
	return vmic_parse_duration_ms(s, ms);
}

/*
 * The canonical (lower-case) name of the service `arg` names, or NULL.
 * Checked here so a typo is caught before anything is sent.
 */
const char *cli_service_name(const char *arg)
{
	const struct vmic_service_desc *d = vmic_service_by_name(arg);

	return d ? d->name : NULL;
}

/*
 * The canonical name of service `arg`; NULL after reporting it unknown,
 * with the valid names, and the exit status in *status.
 */
const char *cli_require_service(struct cli *cli, const char *arg, int *status)
{
	const char *name = cli_service_name(arg);
	struct cli_error e = { 0 };

	if (name)
		return name;
	cli_error_set(&e, CLI_ERR_LOCAL, "unknown service '%s'; valid services: %s",
		      arg, vmic_service_names());
	*status = cli_report(cli, &e);
	return NULL;
}

/*
 * The operands of cmd's usage from the given index on ("NAME SERVICE"):
 * the words before the first option or optional part.
 */
static const char *missing_operands(const struct cli_command *cmd,
				    int given)
{
	static char buf[128];
	const char *p = cmd ? cmd->usage : "";
	size_t len;

	for (int i = 0; i < given && *p; i++) {
		p += strcspn(p, " ");
		p += strspn(p, " ");
	}
	len = 0;
	while (p[len] && p[len] != '-' && p[len] != '[') {
		len += strcspn(p + len, " ");
		len += strspn(p + len, " ");
	}
	while (len > 0 && p[len - 1] == ' ')
		len--;
	snprintf(buf, sizeof(buf), "%.*s", (int)len,
		 len ? p : "arguments");
	return buf;
}

/*
 * Check that exactly n operands follow the options, for commands whose
 * operands are all required. Returns CLI_NEXT or the usage exit status.
 */
int cli_expect_operands(const struct cli *cli, int argc, char **argv,
			int n)
{
	if (argc - optind < n)
		return cli_usage_error(cli, "missing %s",
				       missing_operands(cli->cmd,
							argc - optind));
	if (argc - optind > n)
		return cli_usage_error(cli, "unexpected argument '%s'",
				       argv[optind + n]);
	return CLI_NEXT;
}

/*
 * Parse a command that takes no options of its own and exactly n
 * operands, left in argv[optind...]. Returns CLI_NEXT or the exit status.
 */
int cli_parse_plain(struct cli *cli, int argc, char **argv, int n)
{
	static const struct option opts[] = { CLI_COMMON_OPTIONS, {} };
	int c, r;

	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
		if ((r = cli_common_option(cli, c, argv)) != CLI_NEXT)
			return r;
	return cli_expect_operands(cli, argc, argv, n);
}
