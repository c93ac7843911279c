/* SPDX-License-Identifier: MIT */
/*
 * `vmic freeze NAME [--timeout D]`, `vmic thaw NAME` and `vmic backup
 * NAME [--timeout D] -- SNAPSHOT-CMD ARGS...` (a production checkpoint):
 * the backup service's commands (docs/control.md, "backup"). A backup is
 * an operation of the daemon: killing this program cancels it, and the
 * daemon thaws the guest either way.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmic.h"

enum { OPT_TIMEOUT = 0x200, OPT_QMP, OPT_QMP_DEVICE };

struct bk_args {
	const char *vm;
	const char *qmp;
	const char *qmp_device;
	int64_t timeout_ms; /* 0: the daemon's default */
	char **cmd;
	int ncmd;
};

/* Returns CLI_NEXT or the exit status; operands: NAME, then the command
 * when `with_command`. */
static int parse_bk_args(struct cli *cli, int argc, char **argv,
			 bool with_timeout, bool with_command,
			 struct bk_args *a)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "qmp-snapshot", required_argument, NULL, OPT_QMP },
		{ "qmp-device", required_argument, NULL, OPT_QMP_DEVICE },
		CLI_COMMON_OPTIONS,
		{},
	};
	uint64_t ms;
	int c, r;

	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_TIMEOUT:
			if (!with_timeout)
				return cli_usage_error(
					cli, "--timeout is not an option of "
					     "this command");
			if (cli_parse_duration(optarg, &ms) < 0 || ms < 1000 ||
			    ms > 3600000)
				return cli_usage_error(
					cli,
					"--timeout '%s' is not a duration "
					"from 1s to 1h (examples: 30s, 5m)",
					optarg);
			a->timeout_ms = (int64_t)ms;
			break;
		case OPT_QMP:
			if (!with_command)
				return cli_usage_error(
					cli, "--qmp-snapshot is an option of "
					     "`vmic backup`");
			a->qmp = optarg;
			break;
		case OPT_QMP_DEVICE:
			if (!with_command)
				return cli_usage_error(
					cli, "--qmp-device is an option of "
					     "`vmic backup`");
			a->qmp_device = optarg;
			break;
		default:
			if ((r = cli_common_option(cli, c, argv)) != CLI_NEXT)
				return r;
		}
	}
	if (!with_command) {
		if ((r = cli_expect_operands(cli, argc, argv, 1)) != CLI_NEXT)
			return r;
		a->vm = argv[optind];
		return CLI_NEXT;
	}
	if (optind >= argc)
		return cli_usage_error(cli, "name the VM to back up");
	a->vm = argv[optind];
	a->cmd = argv + optind + 1;
	a->ncmd = argc - optind - 1;
	if (!a->ncmd && !a->qmp)
		return cli_usage_error(cli, "give the snapshot command after "
					    "`--` (vmic backup VM -- CMD "
					    "ARGS...) or --qmp-snapshot FILE");
	if (a->ncmd && a->qmp)
		return cli_usage_error(cli, "give a snapshot command or "
					    "--qmp-snapshot, not both");
	if (a->qmp_device && !a->qmp)
		return cli_usage_error(cli, "--qmp-device goes with "
					    "--qmp-snapshot FILE");
	return CLI_NEXT;
}

static void print_mounts(json_t *mounts)
{
	char clean[1024];
	json_t *v;
	size_t i;

	json_array_foreach(mounts, i, v) {
		cli_clean_text(json_string_value(v), clean, sizeof(clean));
		printf("%s%s", i ? ", " : "", clean);
	}
	printf("%s\n", json_array_size(mounts) ? "" : "(none)");
}

static void print_steps(json_t *steps)
{
	char clean[1500], span[32];
	json_t *s;
	size_t i;

	json_array_foreach(steps, i, s) {
		cli_clean_text(json_string_value(json_object_get(s, "detail")),
			       clean, sizeof(clean));
		cli_format_span_ms(json_integer_value(json_object_get(s, "ms")),
				   span, sizeof(span));
		printf("  %-9s %8s  %s\n",
		       json_string_value(json_object_get(s, "step")), span,
		       clean);
	}
}

/* Call cmd on the daemon; print the result as `print` does. */
static int call(struct cli *cli, json_t *req,
		void (*print)(const char *vm, json_t *result), const char *vm)
{
	struct cli_error e = { 0 };
	json_t *result = NULL;
	int r;

	r = cli_ctl_call(cli, req, CTL_NO_TIMEOUT, &result, &e);
	if (r < 0)
		return cli_report(cli, &e);
	if (cli->json)
		r = cli_print_json(result, false);
	else
		print(vm, result);
	json_decref(result);
	return r < 0 ? 1 : 0;
}

static void print_frozen(const char *vm, json_t *result)
{
	char span[32];

	cli_format_span_ms(json_integer_value(json_object_get(result,
							      "timeout_ms")),
			   span, sizeof(span));
	printf("%s: frozen, thaws by itself in %s at the latest: ", vm, span);
	print_mounts(json_object_get(result, "mounts"));
}

int cmd_freeze(struct cli *cli, int argc, char **argv)
{
	struct bk_args a = { 0 };
	json_t *req;
	int r;

	if ((r = parse_bk_args(cli, argc, argv, true, false, &a)) != CLI_NEXT)
		return r;
	req = json_pack("{s:s, s:s}", "cmd", "freeze", "vm", a.vm);
	if (req && a.timeout_ms)
		json_object_set_new(req, "timeout_ms",
				    json_integer(a.timeout_ms));
	return call(cli, req, print_frozen, a.vm);
}

static void print_thawed(const char *vm, json_t *result)
{
	json_t *mounts = json_object_get(result, "mounts");
	char span[32];

	if (!json_array_size(mounts)) {
		printf("%s: nothing was frozen\n", vm);
		return;
	}
	cli_format_span_ms(json_integer_value(json_object_get(result,
							      "frozen_ms")),
			   span, sizeof(span));
	printf("%s: thawed after %s frozen: ", vm, span);
	print_mounts(mounts);
}

int cmd_thaw(struct cli *cli, int argc, char **argv)
{
	struct bk_args a = { 0 };
	int r;

	if ((r = parse_bk_args(cli, argc, argv, false, false, &a)) != CLI_NEXT)
		return r;
	return call(cli, json_pack("{s:s, s:s}", "cmd", "thaw", "vm", a.vm),
		    print_thawed, a.vm);
}

/* {"frozen": {...}}: say so on stderr, where it does not mix with the
 * result. */
static int on_backup_line(void *ud, struct cli_op *op, const char *name,
			  json_t *value, struct cli_error *e)
{
	const char *vm = ud;

	(void)op;
	(void)e;
	if (strcmp(name, "frozen") == 0)
		fprintf(stderr, "vmic: %s frozen (%zu filesystem(s)); running "
				"the snapshot\n",
			vm, json_array_size(json_object_get(value, "mounts")));
	else if (strcmp(name, "warning") == 0 && json_is_string(value))
		fprintf(stderr, "vmic: warning: %s\n",
			json_string_value(value));
	return 0;
}

static int on_backup_result(void *ud, json_t *result, bool json)
{
	char a[32], b[32];

	if (json)
		return 0;
	cli_format_span_ms(json_integer_value(json_object_get(result,
							      "elapsed_ms")),
			   a, sizeof(a));
	cli_format_span_ms(json_integer_value(json_object_get(result,
							      "frozen_ms")),
			   b, sizeof(b));
	printf("%s: backup done in %s, frozen %s\n", (const char *)ud, a, b);
	print_steps(json_object_get(result, "steps"));
	return 0;
}

int cmd_backup(struct cli *cli, int argc, char **argv)
{
	struct bk_args a = { 0 };
	struct cli_op_spec spec = { .winsize_fd = -1,
				    .on_line = on_backup_line,
				    .on_result = on_backup_result };
	json_t *req, *cmd;
	int r;

	if ((r = parse_bk_args(cli, argc, argv, true, true, &a)) != CLI_NEXT)
		return r;
	req = json_pack("{s:s, s:s}", "cmd", "backup", "vm", a.vm);
	if (!req)
		return 1;
	if (a.qmp) {
		char abs[4096];

		/* QEMU resolves a relative path from its own directory. */
		if (a.qmp[0] != '/' && realpath(".", abs) &&
		    strlen(abs) + strlen(a.qmp) + 2 < sizeof(abs)) {
			strcat(abs, "/");
			strcat(abs, a.qmp);
		} else {
			snprintf(abs, sizeof(abs), "%s", a.qmp);
		}
		json_object_set_new(req, "qmp_snapshot", json_string(abs));
		if (a.qmp_device)
			json_object_set_new(req, "qmp_device",
					    json_string(a.qmp_device));
	} else {
		cmd = json_array();
		for (int i = 0; i < a.ncmd; i++)
			json_array_append_new(cmd, json_string(a.cmd[i]));
		json_object_set_new(req, "argv", cmd);
	}
	if (a.timeout_ms)
		json_object_set_new(req, "timeout_ms",
				    json_integer(a.timeout_ms));
	spec.ud = (void *)a.vm;
	return cli_op_run(cli, req, &spec);
}
