/* SPDX-License-Identifier: MIT */
/*
 * vmic, the command line client of vmic-hostd's control socket
 * (docs/control.md). One file per concern; this header is the map.
 *
 * Conventions: a command handler returns the process exit status.
 * Everything below a handler returns 0 or a negative errno and describes
 * a failure in a struct cli_error, which the handler reports once
 * (cli_report) — or maps to a plugin state, as `check` does.
 */
#ifndef VMIC_CLI_H
#define VMIC_CLI_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "common/macro.h"

#define VMIC_DEFAULT_SOCKET "/run/vmic/ctl.sock"

/* Exit statuses of every command but `check`. */
#define EXIT_USAGE 2

struct cli_command;

struct cli {
	const char *socket_path; /* --socket, $VMIC_SOCKET or the default */
	bool json;               /* --json before or after the verb */
	bool color;              /* stdout is a terminal and NO_COLOR unset */
	const struct cli_command *cmd; /* the command being run */
};

struct cli_command {
	const char *name;
	int (*handler)(struct cli *cli, int argc, char **argv);
	const char *usage;   /* arguments after the verb */
	const char *summary; /* one line for `vmic help` */
};

/* What went wrong, filled where it happens, reported at the boundary. */
enum cli_error_kind {
	CLI_ERR_NONE,
	CLI_ERR_NO_DAEMON, /* socket missing or nobody listening */
	CLI_ERR_ACCESS,    /* EACCES on connect or permission-denied */
	CLI_ERR_CONNECT,   /* any other connect failure */
	CLI_ERR_IO,        /* read/write failed or the daemon hung up */
	CLI_ERR_TIMEOUT,   /* no reply in time */
	CLI_ERR_PROTOCOL,  /* the reply is not what docs/control.md says */
	CLI_ERR_DAEMON,    /* ok:false with a code and message */
	CLI_ERR_LOCAL,     /* a check done here before sending */
};

struct cli_error {
	enum cli_error_kind kind;
	int errnum;        /* errno for connect/io failures */
	char code[64];     /* the daemon's error code for CLI_ERR_DAEMON */
	char message[1024];
};

/* vmic.c */
extern const struct cli_command cli_commands[];
extern const size_t cli_command_count;
int cmd_version(struct cli *cli, int argc, char **argv);
int cmd_help(struct cli *cli, int argc, char **argv);

/* args.c */
/* getopt return values for the shared options; no short option uses them. */
#define OPT_JSON 0x100
#define OPT_SOCKET 0x101
#define OPT_HELP 'h'
/* getopt_long option entries every command accepts, after the verb too. */
#define CLI_COMMON_OPTIONS                                     \
	{ "json", no_argument, NULL, OPT_JSON },               \
	{ "socket", required_argument, NULL, OPT_SOCKET },     \
	{ "help", no_argument, NULL, OPT_HELP }
/* "Parsing goes on", as opposed to an exit status. */
#define CLI_NEXT (-1)
int cli_common_option(struct cli *cli, int c, char **argv);
int cli_usage_error(const struct cli *cli, const char *fmt, ...)
	PRINTF_LIKE(2, 3);
void cli_print_usage(const struct cli_command *cmd, FILE *out);
void cli_print_help(const struct cli_command *cmd, FILE *out);
int cli_expect_operands(const struct cli *cli, int argc, char **argv,
			int n);
int cli_parse_plain(struct cli *cli, int argc, char **argv, int n);
int cli_parse_count(const char *s, uint64_t min, uint64_t max,
		    uint64_t *out);
int cli_parse_duration(const char *s, uint64_t *ms);
const char *cli_service_name(const char *arg);
const char *cli_require_service(struct cli *cli, const char *arg,
				int *status);

/* timefmt.c */
int cli_parse_when(const char *s, int64_t now_us, int64_t *us);
void cli_format_local_time(int64_t us, char *buf, size_t n);
void cli_format_uptime(int64_t s, char *buf, size_t n);
void cli_format_rtt(int64_t us, char *buf, size_t n);
void cli_format_span_ms(int64_t ms, char *buf, size_t n);

/* ctl-client.c */
#define CTL_NO_TIMEOUT (-1)
#define CTL_DEFAULT_TIMEOUT_MS 30000
struct cli_ctl {
	int fd;
	const char *path;
	char *buf; /* bytes read but not yet consumed */
	size_t len, cap;
};
/* Descriptors one request or message may carry (docs/control.md). */
#define CTL_FDS_MAX 8
int cli_ctl_open(struct cli_ctl *c, const char *path, struct cli_error *e);
void cli_ctl_close(struct cli_ctl *c);
int cli_ctl_send_line(struct cli_ctl *c, json_t *o, const int *fds, size_t nfds,
		      const char *what, struct cli_error *e);
ssize_t cli_ctl_read_some(struct cli_ctl *c);
int cli_ctl_next_line(struct cli_ctl *c, json_t **line, struct cli_error *e);
bool cli_ctl_has_line(const struct cli_ctl *c);
int cli_ctl_follow_next(struct cli_ctl *c, const char *what, json_t **line,
			struct cli_error *e);
int cli_ctl_recv(struct cli_ctl *c, int timeout_ms, json_t **line,
		 struct cli_error *e);
int cli_ctl_request(struct cli_ctl *c, json_t *req, int timeout_ms,
		    json_t **result, struct cli_error *e);
int cli_ctl_call(const struct cli *cli, json_t *req, int timeout_ms,
		 json_t **result, struct cli_error *e);
/* A reply in pages: the head's result, then the items of one array. */
struct cli_ctl_pages {
	json_t *result;  /* the result without the array */
	json_t *items;   /* a one-line reply's array, not handed out yet */
	const char *key; /* the array's member */
	size_t count;    /* items handed out */
	bool paged;      /* the daemon sends pages (else one line) */
	bool ended;
};
int cli_ctl_request_pages(struct cli_ctl *c, json_t *req, const char *key,
			  struct cli_ctl_pages *p, struct cli_error *e);
int cli_ctl_pages_next(struct cli_ctl *c, struct cli_ctl_pages *p,
		       json_t **page, struct cli_error *e);
void cli_ctl_pages_free(struct cli_ctl_pages *p);

/* operation.c: running a long operation of the daemon */
struct cli_op;
struct cli_op_spec {
	/* Descriptors sent with the request, in the order the command
	 * takes them (opened here, with the user's rights). */
	const int *fds;
	size_t nfds;
	/* SIGINT, SIGTERM, SIGHUP and SIGQUIT go to the operation as
	 * {"signal": "INT"}; without, the first SIGINT, SIGTERM or SIGHUP
	 * cancels it and a second stops waiting. */
	bool forward_signals;
	/* >= 0: SIGWINCH sends {"winsize": [rows, cols]} of this terminal
	 * (the request carries the first size). -1: none. */
	int winsize_fd;
	/* A line of the operation's own kind (not progress, not the end):
	 * 0 to go on, < 0 with e to stop (the connection closes, which
	 * cancels the operation). NULL: "warning" lines are printed, others
	 * ignored. May send messages (cli_op_send). */
	int (*on_line)(void *ud, struct cli_op *op, const char *name,
		       json_t *value, struct cli_error *e);
	/* The result: print it for people (not when json: it was printed
	 * as {"result": ...}) and return the exit status. NULL: 0. */
	int (*on_result)(void *ud, json_t *result, bool json);
	void *ud;
};
int cli_op_run(struct cli *cli, json_t *req, const struct cli_op_spec *spec);
int cli_op_send(struct cli_op *op, const char *name, json_t *value,
		const int *fds, size_t nfds, struct cli_error *e);

/* pages.c: printing a paged reply as it comes */
struct page_printer {
	const char *key; /* the array's member */
	/* For people (any may be NULL): the result without the array,
	 * each page's items, and the end with how many came. */
	int (*head)(void *ud, json_t *result, struct cli_error *e);
	int (*page)(void *ud, json_t *items, struct cli_error *e);
	int (*end)(void *ud, size_t count, struct cli_error *e);
};
int cli_print_pages(struct cli *cli, struct cli_ctl *c, json_t *req,
		    const struct page_printer *pp, void *ud, bool json_doc,
		    struct cli_error *e);
int cli_call_pages(struct cli *cli, json_t *req,
		   const struct page_printer *pp, void *ud);

/* report.c */
void cli_error_set(struct cli_error *e, enum cli_error_kind kind,
		   const char *fmt, ...) PRINTF_LIKE(3, 4);
const char *cli_error_text(const struct cli *cli, const struct cli_error *e,
			   char *buf, size_t n);
int cli_report(const struct cli *cli, const struct cli_error *e);

/* reply.c — the daemon's result objects, checked member by member. */
struct vm_summary {
	const char *name;
	const char *channel;
	const char *power_off;  /* NULL when none */
	const char *connection;
	const char *heartbeat;
	const char *agent, *os, *kernel; /* NULL until known */
	int64_t uptime_s;                /* -1 until known */
};
struct conn_detail {
	const char *state;
	int64_t since_us;   /* -1 when unknown */
	const char *last_error;
	int64_t attempts;
	int64_t next_retry_ms; /* -1 when none */
	int64_t hold_ms;       /* -1 unless the guest's hellos are held */
};
struct hb_detail {
	const char *state;
	const char *secondary; /* the service's secondary status */
	const char *interval, *threshold; /* as `vmic set` spells them */
	int64_t missed;
	int64_t rtt_us, last_reply_us; /* -1 when unknown */
	const char *application, *application_reason;
};
struct service_entry {
	const char *name;
	const char *display;
	bool enabled;
	const char *primary, *secondary;
	int64_t version;    /* -1 while unknown */
	int guest_enabled;  /* 1, 0, -1 while unknown */
};
struct vm_event {
	int64_t id, time_us;
	const char *vm, *service, *kind, *from, *to, *message;
};
int reply_vm_summary(json_t *o, struct vm_summary *vm, struct cli_error *e);
int reply_conn_detail(json_t *o, struct conn_detail *d, struct cli_error *e);
int reply_find_service(json_t *status, const char *name, json_t **entry,
		       struct cli_error *e);
int reply_hb_detail(json_t *status, struct hb_detail *d, struct cli_error *e);
int reply_service(json_t *o, struct service_entry *s, struct cli_error *e);
int reply_event(json_t *o, struct vm_event *ev, struct cli_error *e);
int reply_array(json_t *result, const char *key, json_t **arr,
		struct cli_error *e);
int reply_object(json_t *result, const char *key, json_t **obj,
		 struct cli_error *e);

/* output.c */
enum cli_color { COLOR_NONE, COLOR_GOOD, COLOR_WARN, COLOR_BAD };
struct table;
struct table *table_new(size_t ncols);
void table_free(struct table *t);
int table_add(struct table *t, const char *const *cells,
	      const enum cli_color *colors);
void table_print(const struct table *t, bool color, FILE *out);
void table_clear(struct table *t);
void table_min_width(struct table *t, size_t col, size_t w);
enum cli_color cli_status_color(const char *status);
const char *cli_paint(const struct cli *cli, enum cli_color c);
const char *cli_unpaint(const struct cli *cli, enum cli_color c);
int cli_print_json(json_t *v, bool compact);
const char *cli_or_dash(const char *s);

/* safe-text.c — strings from the daemon as a terminal may show them. */
/*
 * Write s[0..len) into buf (cap bytes, always terminated when cap > 0)
 * with every control character, invalid byte and invisible formatting
 * character written as an escape (\\, \t, \xHH, \uHHHH); cut between
 * characters or escapes when it does not fit. Returns the length of the
 * whole escaped text, like snprintf.
 */
size_t cli_safe_text(const char *s, size_t len, char *buf, size_t cap);
/* The escaped text of s[0..len) in a new string; NULL without memory. */
char *cli_safe_dup(const char *s, size_t len);
/* cli_safe_text of a C string (NULL reads as ""), into buf of n >= 1. */
void cli_clean_text(const char *s, char *buf, size_t n);
/*
 * JSON text (jansson's, valid UTF-8) with the characters cli_safe_text
 * escapes but JSON leaves as they are (DEL, C1, invisible formatting)
 * written as \uXXXX escapes: the same JSON value, safe on a terminal.
 * A new string; NULL without memory.
 */
char *cli_safe_json(const char *json);

/* vm-commands.c */
int cmd_list(struct cli *cli, int argc, char **argv);
int cmd_add(struct cli *cli, int argc, char **argv);
int cmd_set(struct cli *cli, int argc, char **argv);
int cmd_remove(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_enable(struct cli *cli, int argc, char **argv);
int cmd_disable(struct cli *cli, int argc, char **argv);

/* events.c */
int cmd_events(struct cli *cli, int argc, char **argv);

/* check.c */
int cmd_check(struct cli *cli, int argc, char **argv);

/* stop.c */
int cmd_stop(struct cli *cli, int argc, char **argv);

/* time.c */
int cmd_time(struct cli *cli, int argc, char **argv);
int cmd_freeze(struct cli *cli, int argc, char **argv);
int cmd_thaw(struct cli *cli, int argc, char **argv);
int cmd_backup(struct cli *cli, int argc, char **argv);
/* setup-libvirt.c */
int cmd_setup_libvirt(struct cli *cli, int argc, char **argv);
/* kvp.c */
int cmd_kvp(struct cli *cli, int argc, char **argv);
/* copy.c */
int cmd_copy(struct cli *cli, int argc, char **argv);

/* exec.c, shell.c, term.c: sessions in the guest */
int cmd_exec(struct cli *cli, int argc, char **argv);
int cmd_shell(struct cli *cli, int argc, char **argv);
/* A new description of fd (pipes, terminals) or a duplicate (files,
 * sockets), close-on-exec, to hand to the daemon; /dev/null when fd is
 * closed. -1 with errno. */
int cli_session_fd(int fd, int flags);
/* Run a session-exec request (taken) with stdin/stdout/stderr; with tty
 * and a terminal on stdin, in raw mode through the escape relay. The
 * exit status. */
int cli_session_run(struct cli *cli, json_t *req, bool tty, bool shell);
/* Raw mode on fd, saved for cli_term_restore (idempotent). */
int cli_term_raw(int fd);
void cli_term_restore(void);
/* A thread copies fd `from` into a new pipe, watching for `~.`; the
 * pipe's read end in *session_stdin. 0 or -errno. */
int cli_term_relay(int from, int *session_stdin);

#endif
