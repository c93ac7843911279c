/* SPDX-License-Identifier: MIT */
/*
 * `vmic exec VM [options] -- CMD ARGS...`: a command in the guest with
 * this process's stdin, stdout and stderr, through the daemon's
 * `session-exec` operation (docs/control.md). The descriptors go to the
 * daemon as new descriptions of the same pipes and terminals (opened
 * again through /proc/self/fd), so the non-blocking mode the daemon sets
 * on them never reaches the shell that shares ours. The command's exit
 * status becomes vmic's; SIGINT, SIGTERM, SIGHUP and SIGQUIT are passed
 * on to it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmic.h"

enum {
	OPT_USER = 0x200,
	OPT_CWD,
	OPT_ENV,
	OPT_TIMEOUT,
	OPT_TTY,
};

int cli_session_fd(int fd, int flags)
{
	char path[64];
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return open("/dev/null", flags | O_CLOEXEC);
	if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		r = open(path, flags | O_CLOEXEC | O_NOCTTY);
		if (r >= 0)
			return r;
	}
	return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

/* The result: the command's exit status. */
static int on_result(void *ud, json_t *result, bool json)
{
	json_int_t status = 1;

	(void)ud;
	(void)json;
	if (json_unpack(result, "{s:I}", "exit_status", &status) < 0 ||
	    status < 0 || status > 255) {
		fprintf(stderr, "vmic: the session's result has no exit_status "
				"from 0 to 255\n");
		return 1;
	}
	return (int)status;
}

/* "started": nothing to show; other kinds of lines are not ours. */
static int on_line(void *ud, struct cli_op *op, const char *name,
		   json_t *value, struct cli_error *e)
{
	(void)ud;
	(void)op;
	(void)name;
	(void)value;
	(void)e;
	return 0;
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/*
 * stdout and stderr are the same file or pipe (`> log 2>&1`): two helpers
 * writing one file at their own offsets would overwrite each other's
 * bytes, so the guest sends stderr where stdout goes instead.
 */
static bool same_output(void)
{
	struct stat a, b;

	if (fstat(STDOUT_FILENO, &a) < 0 || fstat(STDERR_FILENO, &b) < 0)
		return false;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino &&
	       (S_ISREG(a.st_mode) || S_ISFIFO(a.st_mode) ||
		S_ISSOCK(a.st_mode));
}

int cli_session_run(struct cli *cli, json_t *req, bool tty, bool shell)
{
	struct cli_op_spec spec = { .forward_signals = !shell,
				    .winsize_fd = -1,
				    .on_line = on_line,
				    .on_result = on_result };
	int fds[3] = { -1, -1, -1 }, status;
	bool raw = tty && isatty(STDIN_FILENO);
	bool merge = !tty && same_output();
	int nfds = tty || merge ? 2 : 3;
	struct winsize ws;

	if (raw) {
		if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
			json_object_set_new(req, "winsize",
					    json_pack("[i, i]", (int)ws.ws_row,
						      (int)ws.ws_col));
		if (getenv("TERM"))
			json_object_set_new(req, "term",
					    json_string(getenv("TERM")));
		spec.winsize_fd = STDIN_FILENO;
	}
	fds[1] = cli_session_fd(STDOUT_FILENO, O_WRONLY);
	if (nfds == 3)
		fds[2] = cli_session_fd(STDERR_FILENO, O_WRONLY);
	if (merge)
		json_object_set_new(req, "merge_stderr", json_true());
	if (raw) {
		if (cli_term_relay(STDIN_FILENO, &fds[0]) < 0)
			fds[0] = -1;
	} else {
		fds[0] = cli_session_fd(STDIN_FILENO, O_RDONLY);
	}
	if (fds[0] < 0 || fds[1] < 0 || (nfds == 3 && fds[2] < 0)) {
		fprintf(stderr, "vmic: cannot hand over stdin, stdout and "
				"stderr: %s\n",
			strerror(errno));
		close_all(fds, 3);
		json_decref(req);
		return 1;
	}
	json_object_set_new(req, "fds", json_integer(nfds));
	spec.fds = fds;
	spec.nfds = (size_t)nfds;
	if (raw && cli_term_raw(STDIN_FILENO) < 0)
		raw = false;
	status = cli_op_run(cli, req, &spec);
	if (raw)
		cli_term_restore();
	close_all(fds, 3);
	return status;
}

struct exec_args {
	const char *vm, *user, *cwd;
	json_t *env;
	uint64_t timeout_s;
	bool tty;
};

static int parse_exec_opt(struct cli *cli, int c, char **argv,
			  struct exec_args *a)
{
	uint64_t ms;

	switch (c) {
	case OPT_USER:
		a->user = optarg;
		return CLI_NEXT;
	case OPT_CWD:
		a->cwd = optarg;
		return CLI_NEXT;
	case OPT_ENV:
		if (!strchr(optarg, '=') || optarg[0] == '=')
			return cli_usage_error(cli, "--env '%s' is not "
						    "NAME=VALUE", optarg);
		json_array_append_new(a->env, json_string(optarg));
		return CLI_NEXT;
	case OPT_TIMEOUT:
		if (cli_parse_duration(optarg, &ms) < 0 || ms == 0)
			return cli_usage_error(cli, "--timeout '%s' is not a "
						    "duration (examples: 30s, "
						    "2m)", optarg);
		a->timeout_s = (ms + 999) / 1000;
		return CLI_NEXT;
	case OPT_TTY:
		a->tty = true;
		return CLI_NEXT;
	}
	return cli_common_option(cli, c, argv);
}

static int parse_exec_args(struct cli *cli, int argc, char **argv,
			   struct exec_args *a)
{
	static const struct option opts[] = {
		{ "user", required_argument, NULL, OPT_USER },
		{ "cwd", required_argument, NULL, OPT_CWD },
		{ "env", required_argument, NULL, OPT_ENV },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "tty", no_argument, NULL, OPT_TTY },
		CLI_COMMON_OPTIONS,
		{},
	};
	int c, r;

	while ((c = getopt_long(argc, argv, ":ht", opts, NULL)) != -1) {
		if (c == 't')
			c = OPT_TTY;
		if (c == '?')
			return cli_usage_error(cli, "unknown option '%s': the "
						    "command and its arguments "
						    "go after -- (vmic exec VM "
						    "-- CMD ARGS...)",
					       argv[optind - 1]);
		if ((r = parse_exec_opt(cli, c, argv, a)) != CLI_NEXT)
			return r;
	}
	if (optind >= argc)
		return cli_usage_error(cli, "name the VM");
	if (optind + 1 >= argc)
		return cli_usage_error(cli, "name the command to run after "
					    "the VM (vmic exec VM -- CMD "
					    "ARGS...)");
	a->vm = argv[optind];
	return CLI_NEXT;
}

int cmd_exec(struct cli *cli, int argc, char **argv)
{
	struct exec_args a = { .env = json_array() };
	json_t *req, *cmd;
	int r;

	r = parse_exec_args(cli, argc, argv, &a);
	if (r != CLI_NEXT) {
		json_decref(a.env);
		return r;
	}
	cmd = json_array();
	for (int i = optind + 1; i < argc; i++)
		json_array_append_new(cmd, json_string(argv[i]));
	req = json_pack("{s:s, s:s, s:o, s:o, s:I, s:b}", "cmd",
			"session-exec", "vm", a.vm, "argv", cmd, "env", a.env,
			"timeout", (json_int_t)a.timeout_s, "tty", a.tty);
	if (req && a.user)
		json_object_set_new(req, "user", json_string(a.user));
	if (req && a.cwd)
		json_object_set_new(req, "cwd", json_string(a.cwd));
	if (!req) {
		fprintf(stderr, "vmic: cannot build the request (an argument "
				"that is not UTF-8?)\n");
		return 1;
	}
	return cli_session_run(cli, req, a.tty, false);
}
