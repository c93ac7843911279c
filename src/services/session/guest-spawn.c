/* SPDX-License-Identifier: MIT */
/*
 * Starting a session's process as its user. Everything that may allocate
 * or read files (the user, its groups, the environment, the path of the
 * command) is done before the child exists; the child only makes system
 * calls, then execve(). It is made with clone(CLONE_VM | CLONE_VFORK), as
 * posix_spawn does: no copy of the agent's page tables, the agent waiting
 * until execve() succeeded or failed. Sharing the agent's memory, the
 * child switches ids with raw system calls (glibc's setuid() would try to
 * signal the agent's threads) and touches nothing but its own stack. A
 * close-on-exec pipe brings an errno back when a step fails, so the host
 * hears "no such directory" instead of an exit status 127 from nowhere.
 *
 * With a PAM session ([session] pam-service) the process is made with
 * fork() instead: a helper that sets the session, its group and the
 * terminal up, opens the PAM session as root (guest-pam.c), starts the
 * command as the user with PAM's environment added, waits for it, closes
 * the PAM session and exits as the command did (login(1) does the same).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "services/session/guest.h"

#define ROOT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define USER_PATH "/usr/local/bin:/usr/bin:/bin"
#define GROUPS_MAX 1024
#define ENV_BASE 6
/* The child's stack until execve(). */
#define CHILD_STACK (128 * 1024)

/* Ids switched with raw system calls: only the calling task changes
 * (32-bit x86 and arm name the 32-bit ids' calls apart). */
#ifdef SYS_setgroups32
#define SS_SYS_SETGROUPS SYS_setgroups32
#define SS_SYS_SETGID SYS_setgid32
#define SS_SYS_SETUID SYS_setuid32
#else
#define SS_SYS_SETGROUPS SYS_setgroups
#define SS_SYS_SETGID SYS_setgid
#define SS_SYS_SETUID SYS_setuid
#endif

/* What the child needs, all made before fork(). */
struct plan {
	uid_t uid;
	gid_t gid;
	gid_t groups[GROUPS_MAX];
	int ngroups;
	char *path;  /* the program */
	char **argv; /* NULL-terminated */
	char **envp;
	char *cwd;
	bool cwd_given;
	int in[2], out[2], err[2];
	int master, slave;
	bool merge; /* stderr into the stdout pipe */
	long fd_max; /* descriptors to close in the child, when close_range
			is missing (musl, old kernels) */
	size_t nbase; /* envp entries made here, before the host's */
	const struct ss_pam_use *pam; /* NULL: no PAM session */
	char user[VMIC_SS_USER_MAX + 1];
	char tty[128]; /* the pty's name, empty without */
	char cg_procs[PATH_MAX]; /* the cgroup's cgroup.procs, or empty */
};

/* The step that failed in the child, with errno, for the message. */
enum step { STEP_SETUP = 1, STEP_GROUPS, STEP_GID, STEP_UID, STEP_CWD,
	    STEP_EXEC, STEP_TTY, STEP_PAM, STEP_CGROUP };

static void plan_free(struct plan *p)
{
	if (p->argv)
		for (char **a = p->argv; *a; a++)
			free(*a);
	if (p->envp)
		for (char **e = p->envp; *e; e++)
			free(*e);
	free(p->argv);
	free(p->envp);
	free(p->path);
	free(p->cwd);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static char *dup_str(const struct vmic_ss_str *s)
{
	return strndup(s->p, s->n);
}

/* NAME of an entry "NAME=...", its length. */
static size_t env_name_len(const char *e)
{
	const char *eq = strchr(e, '=');

	return eq ? (size_t)(eq - e) : strlen(e);
}

/* Add e, replacing an entry of the same name. Takes e. */
static int env_put(char **envp, size_t *n, char *e)
{
	size_t len = env_name_len(e);

	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < *n; i++) {
		if (env_name_len(envp[i]) == len &&
		    strncmp(envp[i], e, len) == 0) {
			free(envp[i]);
			envp[i] = e;
			return 0;
		}
	}
	envp[(*n)++] = e;
	return 0;
}

static char *env_fmt(const char *name, const char *value)
{
	size_t n = strlen(name) + strlen(value) + 2;
	char *e = malloc(n);

	if (e)
		snprintf(e, n, "%s=%s", name, value);
	return e;
}

static int plan_env(struct plan *p, const struct vmic_ss_open *m,
		    const struct passwd *pw, const char *shell)
{
	size_t n = 0;
	int r = 0;

	p->envp = calloc(ENV_BASE + m->envc + 1, sizeof(char *));
	if (!p->envp)
		return -ENOMEM;
	r |= env_put(p->envp, &n, env_fmt("HOME", pw->pw_dir));
	r |= env_put(p->envp, &n, env_fmt("SHELL", shell));
	r |= env_put(p->envp, &n, env_fmt("USER", pw->pw_name));
	r |= env_put(p->envp, &n, env_fmt("LOGNAME", pw->pw_name));
	r |= env_put(p->envp, &n,
		     env_fmt("PATH", pw->pw_uid == 0 ? ROOT_PATH : USER_PATH));
	if (m->flags & VMIC_SS_F_TTY)
		r |= env_put(p->envp, &n,
			     env_fmt("TERM", m->term[0] ? m->term : "vt100"));
	p->nbase = n;
	for (uint16_t i = 0; i < m->envc && !r; i++)
		r |= env_put(p->envp, &n, dup_str(&m->env[i]));
	return r ? -ENOMEM : 0;
}

/* The program of a name without '/': the first regular file with an
 * execute bit in PATH of the new environment. */
static char *find_program(const char *name, const char *path_list)
{
	char buf[PATH_MAX];
	const char *p = path_list;

	while (*p) {
		const char *colon = strchr(p, ':');
		size_t len = colon ? (size_t)(colon - p) : strlen(p);
		struct stat st;

		if (len && (size_t)snprintf(buf, sizeof(buf), "%.*s/%s",
					    (int)len, p, name) < sizeof(buf) &&
		    stat(buf, &st) == 0 && S_ISREG(st.st_mode) &&
		    (st.st_mode & 0111))
			return strdup(buf);
		p += len + (colon ? 1 : 0);
	}
	return NULL;
}

static const char *env_get(char **envp, const char *name)
{
	size_t len = strlen(name);

	for (char **e = envp; *e; e++)
		if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
			return *e + len + 1;
	return "";
}

static int plan_command(struct plan *p, const struct vmic_ss_open *m,
			const char *shell, char *err, size_t n)
{
	unsigned argc = (m->flags & VMIC_SS_F_SHELL) ? 1 : m->argc;

	p->argv = calloc(argc + 1, sizeof(char *));
	if (!p->argv)
		return -ENOMEM;
	if (m->flags & VMIC_SS_F_SHELL) {
		/* A login shell: argv[0] is "-" and its name (login(1)). */
		const char *base = strrchr(shell, '/');
		const char *name = base ? base + 1 : shell;
		size_t len = strlen(name) + 2;

		p->path = strdup(shell);
		p->argv[0] = malloc(len);
		if (p->argv[0])
			snprintf(p->argv[0], len, "-%s", name);
		return p->path && p->argv[0] ? 0 : -ENOMEM;
	}
	for (unsigned i = 0; i < argc; i++)
		if (!(p->argv[i] = dup_str(&m->argv[i])))
			return -ENOMEM;
	if (strchr(p->argv[0], '/'))
		p->path = strdup(p->argv[0]);
	else
		p->path = find_program(p->argv[0], env_get(p->envp, "PATH"));
	if (!p->path) {
		snprintf(err, n, "command '%.200s' not found in %s",
			 p->argv[0], env_get(p->envp, "PATH"));
		return -ENOENT;
	}
	return 0;
}

static int plan_user(struct plan *p, const char *user, struct passwd *pw,
		     char *buf, size_t bufsz, char *err, size_t n)
{
	struct passwd *res = NULL;
	int r = getpwnam_r(user, pw, buf, bufsz, &res);

	if (r || !res) {
		snprintf(err, n, "user '%s' does not exist in the guest%s%s",
			 user, r ? ": " : "", r ? strerror(r) : "");
		return -ENOENT;
	}
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid;
	p->ngroups = GROUPS_MAX;
	if (getgrouplist(user, pw->pw_gid, p->groups, &p->ngroups) < 0) {
		/* More than GROUPS_MAX: keep the first ones. */
		p->ngroups = GROUPS_MAX;
	}
	return 0;
}

static int plan_pty(struct plan *p, const struct vmic_ss_open *m,
		    char *err, size_t n)
{
	struct winsize ws = { .ws_row = m->rows ? m->rows : 24,
			      .ws_col = m->cols ? m->cols : 80 };
	char name[128];

	p->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (p->master < 0 || grantpt(p->master) < 0 ||
	    unlockpt(p->master) < 0 ||
	    ptsname_r(p->master, name, sizeof(name)) != 0) {
		snprintf(err, n, "cannot allocate a pseudo-terminal: %s",
			 strerror(errno));
		return -errno;
	}
	snprintf(p->tty, sizeof(p->tty), "%s", name);
	p->slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (p->slave < 0) {
		snprintf(err, n, "cannot open %s: %s", name, strerror(errno));
		return -errno;
	}
	/* The terminal is the user's, as login(1) leaves it. */
	if (fchown(p->slave, p->uid, (gid_t)-1) < 0) {
		/* Not fatal: the session works, only `mesg` will not. */
	}
	ioctl(p->master, TIOCSWINSZ, &ws);
	return 0;
}

static int plan_pipes(struct plan *p, char *err, size_t n)
{
	if (pipe2(p->in, O_CLOEXEC) < 0 || pipe2(p->out, O_CLOEXEC) < 0 ||
	    (!p->merge && pipe2(p->err, O_CLOEXEC) < 0)) {
		snprintf(err, n, "cannot make pipes: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

/* In the child: report the failed step and errno, then exit. */
_Noreturn static void child_fail_code(int fd, enum step step, int code)
{
	int msg[2] = { (int)step, code };

	if (write(fd, msg, sizeof(msg)) < 0) {
		/* The parent reads EOF and reports an unknown failure. */
	}
	_exit(127);
}

_Noreturn static void child_fail(int fd, enum step step)
{
	child_fail_code(fd, step, errno);
}

/* Close lo..hi in the child: close_range(2) where the kernel and the
 * headers have it, else one by one up to the limit read before fork. */
static void close_fds(const struct plan *p, unsigned lo, unsigned hi)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, lo, hi, 0) == 0)
		return;
#endif
	for (long fd = lo; fd < p->fd_max && (unsigned long)fd <= hi; fd++)
		close((int)fd);
}

static void child_fds(const struct plan *p, int report)
{
	int fds[3];

	if (p->master >= 0) {
		if (ioctl(p->slave, TIOCSCTTY, 0) < 0)
			child_fail(report, STEP_TTY);
		fds[0] = fds[1] = fds[2] = p->slave;
	} else {
		fds[0] = p->in[0];
		fds[1] = p->out[1];
		fds[2] = p->merge ? p->out[1] : p->err[1];
	}
	for (int i = 0; i < 3; i++)
		if (dup2(fds[i], i) < 0)
			child_fail(report, STEP_SETUP);
	/* The report pipe is close-on-exec; everything else above 2 goes. */
	if (report > 3)
		close_fds(p, 3, (unsigned)report - 1);
	close_fds(p, (unsigned)report + 1, ~0u);
}

static void signals_default(void)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
}

/* The user's ids, the directory, the program; returns only when
 * execve() failed (errno). Not _Noreturn: ASan handles a call to a
 * noreturn function by looking at the stack, which on the clone()d
 * child's own stack makes it print a warning into the session. */
static void child_become(const struct plan *p, char **envp, int report)
{
	if (syscall(SS_SYS_SETGROUPS, (long)p->ngroups, p->groups) < 0)
		child_fail(report, STEP_GROUPS);
	if (syscall(SS_SYS_SETGID, (long)p->gid) < 0)
		child_fail(report, STEP_GID);
	if (syscall(SS_SYS_SETUID, (long)p->uid) < 0)
		child_fail(report, STEP_UID);
	if (chdir(p->cwd) < 0) {
		if (p->cwd_given || chdir("/") < 0)
			child_fail(report, STEP_CWD);
	}
	execve(p->path, p->argv, envp);
}

/* Into the session's cgroup, before anything else runs ("0": the
 * writer); what it starts stays there. */
static void enter_cgroup(const struct plan *p, int report)
{
	int fd;

	if (!p->cg_procs[0])
		return;
	fd = open(p->cg_procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1)
		child_fail(report, STEP_CGROUP);
	close(fd);
}

_Noreturn static void child_run(const struct plan *p, int report)
{
	signals_default();
	enter_cgroup(p, report);
	if (setsid() < 0)
		child_fail(report, STEP_SETUP);
	child_fds(p, report);
	child_become(p, p->envp, report);
	child_fail(report, STEP_EXEC);
}

/* The environment with PAM's entries over the base ones and the host's
 * over both (NULL when out of memory: the plan's is used). */
static char **env_with_pam(const struct plan *p, char **pam_env)
{
	size_t total = 0, npam = 0, n = 0;
	char **e;

	while (p->envp[total])
		total++;
	while (pam_env && pam_env[npam])
		npam++;
	e = calloc(total + npam + 1, sizeof(char *));
	if (!e)
		return NULL;
	for (size_t i = 0; i < p->nbase; i++)
		env_put(e, &n, strdup(p->envp[i]));
	for (size_t i = 0; i < npam; i++)
		env_put(e, &n, strdup(pam_env[i]));
	for (size_t i = p->nbase; i < total; i++)
		env_put(e, &n, strdup(p->envp[i]));
	for (size_t i = 0; i < n; i++)
		if (!e[i])
			return NULL;
	return e;
}

/* In the helper's child: a process group of the command's own, which the
 * agent signals (never the helper's: the helper must live to close the
 * PAM session), and the terminal's foreground group with a pty. */
static void command_group(const struct plan *p, int report)
{
	sigset_t ttou, old;

	if (setpgid(0, 0) < 0)
		child_fail(report, STEP_SETUP);
	if (p->master < 0)
		return;
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	sigprocmask(SIG_BLOCK, &ttou, &old);
	if (tcsetpgrp(0, getpid()) < 0)
		child_fail(report, STEP_TTY);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

/* The helper exits as its command did: the same status or signal. */
_Noreturn static void exit_like(int status)
{
	struct rlimit none = { 0, 0 };

	if (WIFSIGNALED(status)) {
		setrlimit(RLIMIT_CORE, &none); /* the command's core, not ours */
		signal(WTERMSIG(status), SIG_DFL);
		raise(WTERMSIG(status));
	}
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

/* Between the PAM session's open and close: the command's time. The
 * agent signals the command's group, not the helper's; a SIGHUP of the
 * terminal, or a stray signal, must not end the helper before it closes
 * the PAM session. */
static int helper_wait(pid_t pid)
{
	int status = 0;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	for (int fd = 0; fd < 3 && null >= 0; fd++)
		dup2(null, fd);
	if (null > 2)
		close(null);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 0;
	return status;
}

_Noreturn static void helper_run(const struct plan *p, int report)
{
	struct ss_pam *pam = NULL;
	char **envp, **pam_env;
	int step, r, status;
	pid_t pid;

	signals_default();
	enter_cgroup(p, report);
	if (setsid() < 0)
		child_fail(report, STEP_SETUP);
	child_fds(p, report); /* the command inherits its terminal, 0..2 */
	r = ss_pam_open(p->pam->service, p->pam->confdir, p->user, p->tty,
			&pam, &step);
	if (r != 0)
		child_fail_code(report, STEP_PAM, step << 16 | (r & 0xffff));
	pam_env = ss_pam_env(pam);
	envp = env_with_pam(p, pam_env);
	pid = fork();
	if (pid == 0) {
		/* Nothing PAM's modules opened reaches the command. */
		if (report > 3)
			close_fds(p, 3, (unsigned)report - 1);
		close_fds(p, (unsigned)report + 1, ~0u);
		command_group(p, report);
		child_become(p, envp ? envp : p->envp, report);
		child_fail(report, STEP_EXEC);
	}
	if (pid < 0) {
		ss_pam_close(pam);
		child_fail(report, STEP_SETUP);
	}
	setpgid(pid, pid); /* also in the child: whichever runs first */
	{
		int said[2] = { 0, (int)pid };

		if (write(report, said, sizeof(said)) < 0) {
			/* The agent then signals the helper's group, which
			 * holds only the helper: the command outlives it. */
		}
	}
	close(report); /* the agent reads EOF once the command runs */
	status = helper_wait(pid);
	ss_pam_close(pam);
	exit_like(status);
}

struct child_arg {
	const struct plan *p;
	int report;
};

static int child_main(void *arg)
{
	const struct child_arg *a = arg;

	child_run(a->p, a->report);
}

static const char *pam_step_name(int step)
{
	switch (step) {
	case SS_PAM_ACCOUNT:
		return "pam_acct_mgmt (account)";
	case SS_PAM_CRED:
		return "pam_setcred (auth)";
	case SS_PAM_SESSION:
		return "pam_open_session (session)";
	}
	return "pam_start";
}

static void describe_failure(const struct plan *p, const int msg[2],
			     char *err, size_t n)
{
	const char *e = strerror(msg[1]);

	switch (msg[0]) {
	case STEP_CWD:
		snprintf(err, n, "cannot change to directory '%.200s': %s",
			 p->cwd, e);
		break;
	case STEP_EXEC:
		snprintf(err, n, "cannot run '%.200s': %s", p->path, e);
		break;
	case STEP_PAM:
		snprintf(err, n, "the PAM session (service '%.60s') was "
			 "refused at %s: %s", p->pam->service,
			 pam_step_name(msg[1] >> 16),
			 ss_pam_strerror(msg[1] & 0xffff));
		break;
	case STEP_CGROUP:
		snprintf(err, n, "cannot enter the session's cgroup (%.200s): "
			 "%s", p->cg_procs, e);
		break;
	case STEP_GROUPS:
	case STEP_GID:
	case STEP_UID:
		snprintf(err, n, "cannot switch to the user's ids: %s", e);
		break;
	default:
		snprintf(err, n, "cannot set the process up: %s", e);
	}
}

/* Start the child, then read its report: EOF when execve() succeeded. */
static int plan_fork(struct plan *p, pid_t *pid, pid_t *pgid, char *err,
		     size_t n)
{
	int report[2], msg[2] = { 0, 0 };
	struct child_arg arg;
	char *stack;
	ssize_t got;

	if (pipe2(report, O_CLOEXEC) < 0) {
		snprintf(err, n, "cannot make a pipe: %s", strerror(errno));
		return -errno;
	}
	if (p->pam) {
		*pid = fork();
		if (*pid == 0)
			helper_run(p, report[1]);
		stack = NULL;
		if (*pid < 0)
			snprintf(err, n, "cannot start a process: %s",
				 strerror(errno));
		goto started;
	}
	stack = malloc(CHILD_STACK);
	arg = (struct child_arg){ .p = p, .report = report[1] };
	/* The read end is close-on-exec too; the child closes everything
	 * above its report pipe, this included. */
	*pid = stack ? clone(child_main, stack + CHILD_STACK,
			     CLONE_VM | CLONE_VFORK | SIGCHLD, &arg)
		     : -1;
	if (*pid < 0)
		snprintf(err, n, "cannot start a process: %s",
			 stack ? strerror(errno) : "out of memory");
started:
	free(stack);
	if (*pid < 0) {
		close(report[0]);
		close(report[1]);
		return -EAGAIN;
	}
	close(report[1]);
	*pgid = *pid;
	/* Up to EOF: a PAM helper says its command's pid ({0, pid}) and a
	 * failure may come from it or from the command. */
	for (;;) {
		int one[2];

		got = read(report[0], one, sizeof(one));
		if (got < 0 && errno == EINTR)
			continue;
		if (got != (ssize_t)sizeof(one))
			break;
		if (one[0] == 0)
			*pgid = one[1];
		else if (!msg[0])
			memcpy(msg, one, sizeof(msg));
	}
	close(report[0]);
	if (!msg[0])
		return 0;
	describe_failure(p, msg, err, n);
	while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (msg[0] == STEP_PAM)
		return -EACCES;
	return msg[1] ? -msg[1] : -EIO;
}

static int plan_make(struct plan *p, const struct vmic_ss_open *m,
		     const char *user, char *err, size_t n)
{
	struct passwd pw;
	char pwbuf[4096];
	const char *shell;
	int r;

	r = plan_user(p, user, &pw, pwbuf, sizeof(pwbuf), err, n);
	if (r < 0)
		return r;
	shell = pw.pw_shell && pw.pw_shell[0] ? pw.pw_shell : "/bin/sh";
	if (plan_env(p, m, &pw, shell) < 0)
		return -ENOMEM;
	r = plan_command(p, m, shell, err, n);
	if (r < 0)
		return r;
	p->cwd_given = m->cwd[0] != '\0';
	p->merge = (m->flags & VMIC_SS_F_MERGE) != 0;
	p->fd_max = sysconf(_SC_OPEN_MAX);
	if (p->fd_max < 0 || p->fd_max > 65536)
		p->fd_max = 65536;
	p->cwd = strdup(p->cwd_given ? m->cwd : pw.pw_dir);
	if (!p->cwd)
		return -ENOMEM;
	return (m->flags & VMIC_SS_F_TTY) ? plan_pty(p, m, err, n)
					  : plan_pipes(p, err, n);
}

int ss_guest_spawn(const struct vmic_ss_open *m, const char *user,
		   const struct ss_pam_use *pam, const char *cgroup,
		   struct ss_child *c, char *err, size_t n)
{
	struct plan p = { .in = { -1, -1 }, .out = { -1, -1 },
			  .err = { -1, -1 }, .master = -1, .slave = -1 };
	int r;

	err[0] = '\0';
	p.pam = pam && pam->service && pam->service[0] ? pam : NULL;
	snprintf(p.user, sizeof(p.user), "%s", user);
	if (cgroup && cgroup[0])
		snprintf(p.cg_procs, sizeof(p.cg_procs), "%s/cgroup.procs",
			 cgroup);
	r = plan_make(&p, m, user, err, n);
	if (r == 0)
		r = plan_fork(&p, &c->pid, &c->pgid, err, n);
	if (r == -ENOMEM && !err[0])
		snprintf(err, n, "out of memory");
	close_fd(&p.in[0]);
	close_fd(&p.out[1]);
	close_fd(&p.err[1]);
	close_fd(&p.slave);
	if (r < 0) {
		close_fd(&p.in[1]);
		close_fd(&p.out[0]);
		close_fd(&p.err[0]);
		close_fd(&p.master);
	} else if (p.master >= 0) {
		c->in_fd = c->out_fd = c->master = p.master;
		c->err_fd = -1;
	} else {
		c->in_fd = p.in[1];
		c->out_fd = p.out[0];
		c->err_fd = p.err[0]; /* -1 with MERGE */
		c->master = -1;
	}
	plan_free(&p);
	return r;
}
