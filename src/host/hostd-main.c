/* SPDX-License-Identifier: MIT */
/*
 * vmic-hostd: command line, start-up, signals and a clean exit. The only
 * place that calls exit().
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/notify.h"
#include "hostd.h"
#include "host/libvirt.h"

struct options {
	const char *config;
	bool config_given;
	const char *state_dir;
	const char *socket;
	const char *log_level;
	bool syslog;
	bool check_config;
	const char *libvirt[16]; /* --libvirt URI, repeatable */
	size_t nlibvirt;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: vmic-hostd [OPTIONS]\n"
		"The vmic host daemon: integration services for the VMs it "
		"knows.\n\n"
		"  --config PATH      configuration file (default %s)\n"
		"  --state-dir DIR    state directory (default /var/lib/vmic)\n"
		"  --socket PATH      control socket (default "
		"/run/vmic/ctl.sock)\n"
		"  --log-level LEVEL  err, warning, notice, info or debug\n"
		"  --syslog           log to syslog instead of stderr\n"
		"  --libvirt URI      register and follow the libvirt domains "
		"with a vmic\n"
		"                     channel (repeatable; [libvirt] uri)\n"
		"  --check-config     print the effective configuration and "
		"exit\n"
		"  --version          print the version and exit\n"
		"  --help             show this help\n",
		HOSTD_DEFAULT_CONFIG);
}

/* Returns 0 to go on, 1 to exit with success, -1 to exit with usage. */
static int parse_args(int argc, char **argv, struct options *o)
{
	enum { OPT_CONFIG = 256, OPT_STATE, OPT_SOCKET, OPT_LEVEL, OPT_SYSLOG,
	       OPT_CHECK, OPT_VERSION, OPT_HELP, OPT_LIBVIRT };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "state-dir", required_argument, NULL, OPT_STATE },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "log-level", required_argument, NULL, OPT_LEVEL },
		{ "syslog", no_argument, NULL, OPT_SYSLOG },
		{ "libvirt", required_argument, NULL, OPT_LIBVIRT },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, OPT_HELP },
		{ 0 },
	};
	int c;

	o->config = HOSTD_DEFAULT_CONFIG;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_CONFIG:
			o->config = optarg;
			o->config_given = true;
			break;
		case OPT_STATE:
			o->state_dir = optarg;
			break;
		case OPT_SOCKET:
			o->socket = optarg;
			break;
		case OPT_LEVEL:
			o->log_level = optarg;
			break;
		case OPT_SYSLOG:
			o->syslog = true;
			break;
		case OPT_LIBVIRT:
			if (o->nlibvirt == ARRAY_SIZE(o->libvirt)) {
				fprintf(stderr, "vmic-hostd: at most %zu "
						"--libvirt URIs\n",
					ARRAY_SIZE(o->libvirt));
				return -1;
			}
			o->libvirt[o->nlibvirt++] = optarg;
			break;
		case OPT_CHECK:
			o->check_config = true;
			break;
		case OPT_VERSION:
			printf("vmic-hostd %s\n", VMIC_VERSION);
			return 1;
		case OPT_HELP:
			usage(stdout);
			return 1;
		default:
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vmic-hostd: unexpected argument '%s'\n",
			argv[optind]);
		return -1;
	}
	return 0;
}

/* Command line values win over the file; they go through the same table. */
static int apply_overrides(struct hostd_config *cfg, const struct options *o)
{
	const struct {
		const char *section, *key, *value;
	} ov[] = {
		{ "daemon", "state-dir", o->state_dir },
		{ "daemon", "socket", o->socket },
		{ "daemon", "log-level", o->log_level },
	};
	char err[256];
	int r = 0;

	for (size_t i = 0; i < ARRAY_SIZE(ov); i++) {
		if (!ov[i].value)
			continue;
		if (vmic_conf_set(&hostd_conf_table, cfg, ov[i].section,
				  ov[i].key, ov[i].value, err, sizeof(err)) < 0) {
			log_error("--%s: %s", ov[i].key, err);
			r = -EINVAL;
		}
	}
	for (size_t i = 0; i < o->nlibvirt; i++) {
		if (vmic_conf_set(&hostd_conf_table, cfg, "libvirt", "uri",
				  o->libvirt[i], err, sizeof(err)) < 0) {
			log_error("--libvirt: %s", err);
			r = -EINVAL;
		}
	}
	return r;
}

static int load_config(struct hostd_config *cfg, const struct options *o)
{
	struct vmic_conf_part parts[HOSTD_CONF_PARTS];
	size_t nparts;
	int r;

	r = hostd_config_defaults(cfg);
	if (r < 0)
		return log_error_errno(r, "cannot set up the configuration");
	nparts = hostd_config_parts(cfg, parts);
	/* The default file may be absent; a file named on purpose not. */
	r = vmic_conf_load_parts(parts, nparts, o->config, !o->config_given);
	if (r < 0)
		return r;
	r = apply_overrides(cfg, o);
	if (r < 0)
		return r;
	return hostd_config_check(cfg, o->config);
}

/*
 * One descriptor per VM: ask for max-vms of them and some slack. Root may
 * raise its hard limit too; anyone may take the soft one up to the hard.
 * What we got bounds the VMs that can connect (vm_fd_room warns).
 */
static void raise_fd_limit(struct hostd *h)
{
	rlim_t want = (rlim_t)h->cfg.max_vms + VM_FD_SLACK;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_max < want) {
		struct rlimit more = { want, want };

		if (setrlimit(RLIMIT_NOFILE, &more) == 0)
			rl = more;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	h->fd_limit = (uint64_t)rl.rlim_cur;
	log_debug("open file limit %llu", (unsigned long long)rl.rlim_cur);
}

static int make_state_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0750) == 0)
		return 0;
	if (errno != EEXIST)
		return log_error_errno(errno, "cannot create the state "
					      "directory %s",
				       dir);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return log_error_errno(ENOTDIR, "%s", dir);
	return 0;
}

/*
 * One daemon per state directory: two writers of one registry would
 * undo each other's commands. The lock lives as long as the process.
 */
static int lock_state_dir(const char *dir)
{
	char path[sizeof(((struct hostd_config *)0)->state_dir) + 16];
	int fd;

	snprintf(path, sizeof(path), "%s/vmic.lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return log_error_errno(errno, "cannot open %s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int r = -errno;

		close(fd);
		if (r == -EWOULDBLOCK) {
			log_error("another vmic-hostd uses the state directory "
				  "%s",
				  dir);
			return -EBUSY;
		}
		return log_error_errno(r, "cannot lock %s", path);
	}
	return 0; /* fd stays open: it holds the lock */
}

static void hostd_stop(struct hostd *h)
{
	if (h->stopping)
		return;
	log_info("stopping");
	vmic_notify("STOPPING=1");
	h->stopping = true;
	libvirt_stop(h);
	/* Operations still running (a stop) answer now, while their clients
	 * can hear it: detaching a VM's services fails them. */
	while (h->nvms > 0)
		vm_destroy(h->vms[h->nvms - 1], DETACH_STOPPING);
	ctl_close(h);
	services_daemon_stop(h);
	events_close(h);
	uv_close((uv_handle_t *)&h->sig_term, NULL);
	uv_close((uv_handle_t *)&h->sig_int, NULL);
	uv_close((uv_handle_t *)&h->sig_hup, NULL);
	clock_stop(h);
}

/* The command line, kept for a reload: its values win over the file. */
static struct options opts;

/*
 * SIGHUP: read the configuration again and apply it (log level, access,
 * limits, retry delays, service defaults). A file that does not load
 * leaves the running configuration as it was.
 */
static void on_reload(uv_signal_t *s, int signum UNUSED)
{
	struct hostd *h = s->data;
	struct hostd_config next;

	vmic_notify("RELOADING=1");
	log_info("SIGHUP: reloading %s", opts.config);
	if (load_config(&next, &opts) < 0) {
		hostd_config_free(&next);
		log_error("reload failed; the running configuration stays");
		vmic_notify("READY=1");
		return;
	}
	hostd_config_apply(h, &next);
	log_init("vmic-hostd", opts.syslog || h->cfg.syslog
				       ? LOG_TARGET_SYSLOG
				       : LOG_TARGET_AUTO);
	log_set_max_level(h->cfg.log_level);
	ctl_reload(h);
	log_info("configuration reloaded");
	vmic_notify("READY=1");
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct hostd *h = s->data;

	log_debug("got signal %d", signum);
	hostd_stop(h);
}

static int hostd_start(struct hostd *h)
{
	int r;

	raise_fd_limit(h);
	signal(SIGPIPE, SIG_IGN);
	/* First: a reload asked for while we start (clients may see the
	 * socket before the VMs are loaded) must not kill the daemon. */
	uv_signal_init(h->loop, &h->sig_hup);
	h->sig_hup.data = h;
	uv_signal_start(&h->sig_hup, on_reload, SIGHUP);
	r = ctl_open(h);
	if (r < 0)
		return r;
	r = services_daemon_start(h);
	if (r == 0)
		r = make_state_dir(h->cfg.state_dir);
	if (r == 0)
		r = lock_state_dir(h->cfg.state_dir);
	if (r == 0)
		r = store_open(h);
	if (r == 0)
		r = store_load_vms(h);
	/* Its messages are handled once the loop runs, after the VMs
	 * loaded above. */
	if (r == 0)
		r = libvirt_start(h);
	if (r < 0)
		return r;
	events_init(h);
	/* The event log is pruned by the writer, in the background. */
	r = store_start(h);
	if (r < 0) {
		events_close(h);
		return r;
	}
	uv_signal_init(h->loop, &h->sig_term);
	uv_signal_init(h->loop, &h->sig_int);
	h->sig_term.data = h->sig_int.data = h;
	uv_signal_start(&h->sig_term, on_signal, SIGTERM);
	uv_signal_start(&h->sig_int, on_signal, SIGINT);
	for (size_t i = 0; i < h->nvms; i++) {
		services_init_status(h->vms[i]);
		conn_start(h->vms[i]);
	}
	vm_fd_room(h);
	log_info("vmic-hostd %s ready: %zu VMs, control socket %s",
		 VMIC_VERSION, h->nvms, h->cfg.socket);
	vmic_notify("READY=1");
	return 0;
}

/* Close whatever start-up opened before it failed. */
static void hostd_abort(struct hostd *h)
{
	h->stopping = true;
	libvirt_stop(h);
	while (h->nvms > 0)
		vm_destroy(h->vms[h->nvms - 1], DETACH_STOPPING);
	ctl_close(h);
	uv_close((uv_handle_t *)&h->sig_hup, NULL);
	clock_stop(h);
	uv_run(h->loop, UV_RUN_DEFAULT);
	services_daemon_stop(h);
}

int main(int argc, char **argv)
{
	struct options *o = &opts;
	struct hostd h = { 0 };
	int r;

	r = parse_args(argc, argv, o);
	if (r != 0) {
		if (r < 0)
			usage(stderr);
		return r < 0 ? 2 : 0;
	}
	/* --check-config prints plain "vmic-hostd: error: ..." lines. */
	log_init("vmic-hostd",
		 o->check_config ? LOG_TARGET_STDERR : LOG_TARGET_AUTO);
	r = load_config(&h.cfg, o);
	if (o->check_config) {
		struct vmic_conf_part parts[HOSTD_CONF_PARTS];

		if (r == 0)
			vmic_conf_dump_parts(parts,
					     hostd_config_parts(&h.cfg, parts),
					     stdout);
		hostd_config_free(&h.cfg);
		return r < 0 ? 1 : 0;
	}
	if (r < 0) {
		hostd_config_free(&h.cfg);
		return 1;
	}
	if (o->syslog || h.cfg.syslog)
		log_init("vmic-hostd", LOG_TARGET_SYSLOG);
	log_set_max_level(h.cfg.log_level);
	h.loop = uv_default_loop();
	r = hostd_start(&h);
	if (r < 0) {
		hostd_abort(&h);
		store_close(&h);
		free(h.vms);
		uv_loop_close(h.loop);
		hostd_config_free(&h.cfg);
		return 1;
	}
	uv_run(h.loop, UV_RUN_DEFAULT);
	/* Events of the last close callbacks, if any; then the writer
	 * commits what is queued and ends. */
	events_close(&h);
	store_stop(&h);
	store_close(&h);
	free(h.vms);
	hostd_config_free(&h.cfg);
	r = uv_loop_close(h.loop);
	if (r < 0)
		log_debug("loop closed with handles left: %s", uv_strerror(r));
	return 0;
}
