/* SPDX-License-Identifier: MIT */
/*
 * Turning a struct cli_error into the one sentence a user reads: what is
 * wrong and what to do about it. Every command reports through here, so
 * "the daemon is not running" reads the same everywhere.
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmic.h"

/* Record a failure of the given kind with a formatted detail. */
void cli_error_set(struct cli_error *e, enum cli_error_kind kind,
		   const char *fmt, ...)
{
	va_list ap;

	e->kind = kind;
	e->errnum = 0;
	e->code[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

static const char *user_name(void)
{
	struct passwd *pw = getpwuid(getuid());

	return pw ? pw->pw_name : "USER";
}

/*
 * The sentence for e, in buf (one line, no "vmic:" prefix). Returns buf.
 */
const char *cli_error_text(const struct cli *cli, const struct cli_error *e,
			   char *buf, size_t n)
{
	switch (e->kind) {
	case CLI_ERR_NO_DAEMON:
		snprintf(buf, n,
			 "vmic-hostd is not running (%s %s). Start it with "
			 "`systemctl start vmic-hostd`, or run `vmic-hostd "
			 "--state-dir DIR --socket PATH` and pass --socket "
			 "PATH or set VMIC_SOCKET=PATH",
			 e->errnum == ECONNREFUSED ? "nobody listens on"
						   : "no socket at",
			 cli->socket_path);
		break;
	case CLI_ERR_ACCESS:
		snprintf(buf, n,
			 "permission denied on %s: only root and members of "
			 "group vmic may use vmic-hostd. Add the user with "
			 "`usermod -aG vmic %s` (as root), then log in again",
			 cli->socket_path, user_name());
		break;
	case CLI_ERR_CONNECT:
		snprintf(buf, n, "cannot connect to vmic-hostd at %s: %s",
			 cli->socket_path, e->message);
		break;
	case CLI_ERR_PROTOCOL:
		snprintf(buf, n,
			 "protocol error: %s. Is %s the control socket of a "
			 "vmic-hostd that matches vmic " VMIC_VERSION "?",
			 e->message, cli->socket_path);
		break;
	default:
		snprintf(buf, n, "%s", e->message);
		break;
	}
	return buf;
}

/* Print e to stderr as "vmic: ..." and return the exit status (1). */
int cli_report(const struct cli *cli, const struct cli_error *e)
{
	char buf[2048], safe[4096];

	/* The daemon's messages may quote what a guest sent. */
	cli_clean_text(cli_error_text(cli, e, buf, sizeof(buf)), safe,
		       sizeof(safe));
	fprintf(stderr, "vmic: %s\n", safe);
	return 1;
}
