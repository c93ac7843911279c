/* SPDX-License-Identifier: MIT */
/*
 * vmic: main, global options, the command table and its dispatch.
 *
 * The table is the single source of the verbs: help, usage, prefix
 * matching and the "valid commands" list of an error all read it, and the
 * bash completion lists the same names.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmic.h"

const struct cli_command cli_commands[] = {
	{ "list", cmd_list, "",
	  "List the registered VMs with connection and heartbeat state" },
	{ "add", cmd_add, "NAME --channel URI [--power-off URI]",
	  "Register a VM; vmic-hostd starts connecting at once" },
	{ "set", cmd_set,
	  "NAME [--channel URI] [--power-off URI|\"\"] | "
	  "NAME SERVICE KEY=VALUE...",
	  "Change a VM's settings (a new channel reconnects) or a "
	  "service's" },
	{ "remove", cmd_remove, "NAME",
	  "Forget a VM and its settings (its events stay)" },
	{ "status", cmd_status, "NAME [SERVICE]",
	  "Show a VM and its integration services, or one service" },
	{ "enable", cmd_enable, "NAME SERVICE",
	  "Turn an integration service on for a VM" },
	{ "disable", cmd_disable, "NAME SERVICE",
	  "Turn an integration service off for a VM" },
	{ "stop", cmd_stop,
	  "NAME [--reboot] [--reason TEXT] [--timeout DURATION] "
	  "[--force | --turn-off]",
	  "Shut a VM down (or reboot it) through its guest agent" },
	{ "time", cmd_time, "NAME [--sync]",
	  "Show a VM's clock offset and sync mode; --sync steps it now" },
	{ "kvp", cmd_kvp,
	  "list|get|set|delete|watch NAME [KEY [VALUE]...] [--pool POOL] "
	  "[--raw]",
	  "Read a VM's key-value pairs, set or delete its External ones, "
	  "watch them" },
	{ "freeze", cmd_freeze, "NAME [--timeout DURATION]",
	  "Freeze a VM's filesystems; it thaws by itself after the timeout" },
	{ "thaw", cmd_thaw, "NAME", "Thaw a VM's filesystems now" },
	{ "backup", cmd_backup,
	  "NAME [--timeout DURATION] {-- SNAPSHOT-CMD [ARGS...] | "
	  "--qmp-snapshot FILE [--qmp-device DRIVE]}",
	  "Freeze, run a snapshot command on the host, thaw (a checkpoint)" },
	{ "exec", cmd_exec,
	  "NAME [--user U] [--cwd DIR] [--env K=V]... [--timeout DURATION] "
	  "[--tty] -- COMMAND [ARG]...",
	  "Run a command in the guest with this terminal's stdin, stdout "
	  "and stderr" },
	{ "shell", cmd_shell, "NAME [--user U]",
	  "A login shell in the guest (~. on a new line ends it)" },
	{ "copy", cmd_copy,
	  "NAME [--from-guest] [-r] [--preserve] [--force] "
	  "[--create-full-path] SRC... DST",
	  "Copy files into a VM's guest, or out of it with --from-guest" },
	{ "events", cmd_events,
	  "[--vm NAME] [--since WHEN] [--limit N] [--follow]",
	  "Show the event log (state changes, stops, settings)" },
	{ "check", cmd_check, "NAME",
	  "Monitoring plugin: one status line, exit 0/1/2/3" },
	{ "setup-libvirt", cmd_setup_libvirt,
	  "DOMAIN [--path PATH] [--uri URI] [--apply]",
	  "Print (or --apply through libvirt) a domain's vmic channel XML" },
	{ "version", cmd_version, "",
	  "Print the versions of vmic and vmic-hostd" },
	{ "help", cmd_help, "[COMMAND]", "Show help for all or one command" },
};
const size_t cli_command_count = ARRAY_SIZE(cli_commands);

static void print_command_names(FILE *out)
{
	for (size_t i = 0; i < cli_command_count; i++)
		fprintf(out, "%s%s", i ? ", " : "", cli_commands[i].name);
}

static void print_global_usage(FILE *out)
{
	size_t w = 0;

	fprintf(out,
		"usage: vmic [--socket PATH] [--json] COMMAND [ARGS...]\n"
		"       vmic --help | --version\n\n"
		"Commands:\n");
	/* A long name (setup-libvirt) overflows its column rather than
	 * pushing every summary to the right. */
	for (size_t i = 0; i < cli_command_count; i++)
		if (strlen(cli_commands[i].name) <= 10)
			w = MAX(w, strlen(cli_commands[i].name));
	for (size_t i = 0; i < cli_command_count; i++)
		fprintf(out, "  %-*s  %s\n", (int)w, cli_commands[i].name,
			cli_commands[i].summary);
	fprintf(out,
		"\nOptions:\n"
		"  --socket PATH  control socket of vmic-hostd (default: "
		"$VMIC_SOCKET, else " VMIC_DEFAULT_SOCKET ")\n"
		"  --json         print the daemon's answer as JSON\n"
		"  --help         this text; `vmic help COMMAND` for one "
		"command\n"
		"  --version      print the version of vmic\n");
}

/*
 * The command named exactly `word`, else the only one it is a prefix of.
 * NULL with *ambiguous set when several commands start with it.
 */
static const struct cli_command *find_command(const char *word,
					      bool *ambiguous)
{
	const struct cli_command *found = NULL;
	size_t n = strlen(word), matches = 0;

	*ambiguous = false;
	if (n == 0)
		return NULL;
	for (size_t i = 0; i < cli_command_count; i++) {
		if (strcmp(cli_commands[i].name, word) == 0)
			return &cli_commands[i];
		if (strncmp(cli_commands[i].name, word, n) == 0) {
			found = &cli_commands[i];
			matches++;
		}
	}
	*ambiguous = matches > 1;
	return matches == 1 ? found : NULL;
}

/* Explain why `word` names no command; returns the usage exit status. */
static int unknown_command(const char *word)
{
	bool ambiguous = false;
	size_t n = strlen(word);

	find_command(word, &ambiguous);
	if (ambiguous) {
		fprintf(stderr, "vmic: '%s' is ambiguous; it could be:", word);
		for (size_t i = 0; i < cli_command_count; i++)
			if (strncmp(cli_commands[i].name, word, n) == 0)
				fprintf(stderr, " %s", cli_commands[i].name);
	} else {
		fprintf(stderr,
			"vmic: unknown command '%s'; valid commands: ", word);
		print_command_names(stderr);
	}
	fprintf(stderr, "\nRun `vmic help` for what each one does.\n");
	return EXIT_USAGE;
}

/* vmic help [COMMAND]: all commands, or one command's help. */
int cmd_help(struct cli *cli, int argc, char **argv)
{
	const struct cli_command *cmd;
	bool ambiguous;
	int c, r;
	static const struct option opts[] = { CLI_COMMON_OPTIONS, {} };

	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
		if ((r = cli_common_option(cli, c, argv)) != CLI_NEXT)
			return r;
	if (optind == argc) {
		print_global_usage(stdout);
		return 0;
	}
	if (argc - optind > 1)
		return cli_usage_error(cli, "too many arguments");
	cmd = find_command(argv[optind], &ambiguous);
	if (!cmd)
		return unknown_command(argv[optind]);
	cli_print_help(cmd, stdout);
	return 0;
}

/*
 * vmic version: our version first (it is known even without a daemon),
 * then the daemon's. Returns the exit status.
 */
int cmd_version(struct cli *cli, int argc, char **argv)
{
	struct cli_error e = { 0 };
	json_t *result = NULL, *out;
	const char *version = NULL;
	char clean[256];
	json_int_t protocol = 0;
	int c, r;
	static const struct option opts[] = { CLI_COMMON_OPTIONS, {} };

	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
		if ((r = cli_common_option(cli, c, argv)) != CLI_NEXT)
			return r;
	if (optind != argc)
		return cli_usage_error(cli, "unexpected argument '%s'",
				       argv[optind]);
	if (!cli->json)
		printf("vmic %s\n", VMIC_VERSION);
	fflush(stdout);
	r = cli_ctl_call(cli, json_pack("{s:s}", "cmd", "version"),
			 CTL_DEFAULT_TIMEOUT_MS, &result, &e);
	if (r < 0)
		return cli_report(cli, &e);
	if (cli->json) {
		out = json_pack("{s:s, s:O}", "cli", VMIC_VERSION, "daemon",
				result);
		r = cli_print_json(out, false);
		json_decref(out);
		json_decref(result);
		return r < 0 ? 1 : 0;
	}
	if (json_unpack(result, "{s:s, s:I}", "version", &version, "protocol",
			&protocol) < 0) {
		json_decref(result);
		cli_error_set(&e, CLI_ERR_PROTOCOL,
			      "the version reply lacks 'version' (string) or "
			      "'protocol' (integer)");
		return cli_report(cli, &e);
	}
	cli_clean_text(version, clean, sizeof(clean));
	printf("vmic-hostd %s (control protocol %lld)\n", clean,
	       (long long)protocol);
	json_decref(result);
	return 0;
}

static bool want_color(void)
{
	const char *term = getenv("TERM");

	return isatty(STDOUT_FILENO) && !getenv("NO_COLOR") && term &&
	       strcmp(term, "dumb") != 0;
}

int main(int argc, char **argv)
{
	struct cli cli = { 0 };
	const struct cli_command *cmd;
	bool ambiguous;
	int c, r;
	static const struct option opts[] = {
		CLI_COMMON_OPTIONS,
		{ "version", no_argument, NULL, 'V' },
		{},
	};

	cli.socket_path = getenv("VMIC_SOCKET");
	if (!cli.socket_path || !*cli.socket_path)
		cli.socket_path = VMIC_DEFAULT_SOCKET;
	/* "+": the first operand is the verb; its options are its own. */
	while ((c = getopt_long(argc, argv, "+:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			print_global_usage(stdout);
			exit(0);
		case 'V':
			printf("vmic %s\n", VMIC_VERSION);
			exit(0);
		default:
			if ((r = cli_common_option(&cli, c, argv)) != CLI_NEXT)
				exit(r);
		}
	}
	if (optind == argc) {
		print_global_usage(stderr);
		exit(EXIT_USAGE);
	}
	cmd = find_command(argv[optind], &ambiguous);
	if (!cmd)
		exit(unknown_command(argv[optind]));
	cli.cmd = cmd;
	cli.color = want_color();
	argc -= optind;
	argv += optind;
	optind = 0; /* glibc: start a fresh scan of the new argv */
	exit(cmd->handler(&cli, argc, argv));
}
