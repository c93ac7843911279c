/* SPDX-License-Identifier: MIT */
/*
 * `vmic shell VM [--user U]`: the user's login shell in the guest on a
 * pseudo-terminal, this terminal in raw mode until it ends (term.c);
 * `~.` at the start of a line ends it. Signals to vmic end the session
 * (the shell itself gets ^C and the like as typed bytes).
 */
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "vmic.h"

enum { OPT_USER = 0x200 };

int cmd_shell(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "user", required_argument, NULL, OPT_USER },
		CLI_COMMON_OPTIONS,
		{},
	};
	const char *user = NULL;
	json_t *req;
	int c, r;

	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == OPT_USER) {
			user = optarg;
			continue;
		}
		if ((r = cli_common_option(cli, c, argv)) != CLI_NEXT)
			return r;
	}
	if ((r = cli_expect_operands(cli, argc, argv, 1)) != CLI_NEXT)
		return r;
	if (!isatty(STDIN_FILENO))
		return cli_usage_error(cli, "vmic shell needs a terminal on "
					    "stdin; `vmic exec VM -- CMD` "
					    "runs a command without one");
	req = json_pack("{s:s, s:s, s:b}", "cmd", "session-exec", "vm",
			argv[optind], "shell", 1);
	if (req && user)
		json_object_set_new(req, "user", json_string(user));
	if (!req) {
		fprintf(stderr, "vmic: cannot build the request\n");
		return 1;
	}
	return cli_session_run(cli, req, true, true);
}
