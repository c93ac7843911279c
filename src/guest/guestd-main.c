/* SPDX-License-Identifier: MIT */
/* vmic-guestd: command line, start-up and shutdown of the guest agent. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/notify.h"
#include "guestd.h"
#include "proto/services.h"

#define MAX_OVERRIDES 32
/* After a stop signal the agent waits this long for its services (a pool
 * file job on a worker thread) to finish, then exits without them: a
 * worker stuck in a system call (a lock another program never releases)
 * must not make the agent unstoppable. */
#define STOP_DEADLINE_MS 3000
/* Options services add (struct guest_option), at most this many. */
#define MAX_SERVICE_OPTIONS 16
/* Workers of libuv's pool (memory_setup). */
#define POOL_THREADS "4"

struct options {
	const char *config;
	const char *channel;
	const char *log_level;
	const char *simulated_clock;
	bool check_config;
	bool use_syslog;
	const char *enable[MAX_OVERRIDES];
	const char *disable[MAX_OVERRIDES];
	const char *advertise[MAX_OVERRIDES];
	unsigned nenable, ndisable, nadvertise;
	/* A service's option i given with this value (NULL: not given). */
	const char *service_opt[MAX_SERVICE_OPTIONS];
	/* A service's command: `vmic-guestd NAME ARGS...`. */
	int cmd_argc;
	char **cmd_argv;
};

/* The options and commands the services add. */
static void usage_services(FILE *out)
{
	const struct guest_service *s;
	const struct guest_option *opt;
	char name[64];

	for (size_t i = 0; guest_service_option(i, &s, &opt); i++) {
		snprintf(name, sizeof(name), "--%s %s", opt->name, opt->arg);
		fprintf(out, "      %-19s%s\n", name, opt->help);
	}
	fprintf(out, "\nCommands (instead of running the agent):\n");
	for (size_t i = 0; i < vmic_service_count; i++) {
		s = guest_service_find(vmic_services[i]->id);
		if (s && s->command)
			fprintf(out, "  vmic-guestd [OPTIONS] %s %s\n", s->command,
				s->command_usage);
	}
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: vmic-guestd [OPTIONS]\n"
		"The vmic guest agent: heartbeat, shutdown and the other vmic "
		"services\nfor this virtual machine.\n\n"
		"  -c, --config PATH      configuration file (default %s)\n"
		"      --channel URI      override [agent] channel: auto, "
		"virtio-serial:NAME,\n"
		"                         vsock-listen:PORT, unix-listen:PATH\n"
		"      --enable SERVICE   switch a service on for this run "
		"(repeatable)\n"
		"      --disable SERVICE  switch a service off for this run "
		"(repeatable)\n"
		"      --advertise SERVICE=MIN[-MAX]\n"
		"                         offer other protocol versions "
		"(compatibility tests)\n"
		"      --simulated-clock OFFSET_S[,DRIFT_PPM]\n"
		"                         run on a simulated clock, never the "
		"real one (tests)\n"
		"      --log-level LEVEL  err, warning, notice, info or debug\n"
		"      --syslog           log to syslog instead of stderr\n"
		"      --check-config     print the effective configuration "
		"and exit\n"
		"  -V, --version          print the version and exit\n"
		"  -h, --help             print this help and exit\n",
		GUESTD_CONFIG_PATH);
	usage_services(out);
	fprintf(out, "\nServices: %s\n", vmic_service_names());
}

static int add_override(const char **list, unsigned *n, const char *v)
{
	if (*n >= MAX_OVERRIDES) {
		log_error("too many --enable/--disable/--advertise options");
		return -E2BIG;
	}
	list[(*n)++] = v;
	return 0;
}

enum { OPT_CHANNEL = 256, OPT_ENABLE, OPT_DISABLE, OPT_ADVERTISE,
       OPT_LOG_LEVEL, OPT_SYSLOG, OPT_CHECK, OPT_SIM_CLOCK,
       OPT_SERVICE = 512 };

/* The fixed options, then every service's, then the end. */
static void build_longopts(const struct option *fixed, size_t nfixed,
			   struct option *out)
{
	const struct guest_service *s;
	const struct guest_option *opt;
	size_t n = nfixed;

	memcpy(out, fixed, nfixed * sizeof(*fixed));
	for (size_t i = 0; i < MAX_SERVICE_OPTIONS &&
			   guest_service_option(i, &s, &opt);
	     i++)
		out[n++] = (struct option){ opt->name, required_argument, NULL,
					    OPT_SERVICE + (int)i };
	out[n] = (struct option){ NULL, 0, NULL, 0 };
}

/* A service's option i given: a repeatable one's values are joined with
 * commas (kept until exit: opts is static). */
static int add_service_option(struct options *o, size_t i, const char *v)
{
	const struct guest_service *s;
	const struct guest_option *opt;
	const char *prev = o->service_opt[i];
	char *joined;

	if (!prev || !guest_service_option(i, &s, &opt) || !opt->repeatable) {
		o->service_opt[i] = v;
		return 0;
	}
	if (asprintf(&joined, "%s,%s", prev, v) < 0) {
		log_error("out of memory for --%s", opt->name);
		return -ENOMEM;
	}
	o->service_opt[i] = joined;
	return 0;
}

/* Returns 0, 1 when the program should exit 0 (help), or -EINVAL. */
static int parse_args(int argc, char **argv, struct options *o)
{
	struct option longopts[16 + MAX_SERVICE_OPTIONS + 1];
	static const struct option fixed[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "channel", required_argument, NULL, OPT_CHANNEL },
		{ "enable", required_argument, NULL, OPT_ENABLE },
		{ "disable", required_argument, NULL, OPT_DISABLE },
		{ "advertise", required_argument, NULL, OPT_ADVERTISE },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "syslog", no_argument, NULL, OPT_SYSLOG },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "simulated-clock", required_argument, NULL, OPT_SIM_CLOCK },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
	};
	int c, r = 0;

	build_longopts(fixed, ARRAY_SIZE(fixed), longopts);
	/* "+": a command's own options follow its name. */
	while ((c = getopt_long(argc, argv, "+c:Vh", longopts, NULL)) != -1) {
		if (c >= OPT_SERVICE && c < OPT_SERVICE + MAX_SERVICE_OPTIONS) {
			if (add_service_option(o, (size_t)(c - OPT_SERVICE),
					       optarg) < 0)
				return -EINVAL;
			continue;
		}
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case OPT_CHANNEL:
			o->channel = optarg;
			break;
		case OPT_ENABLE:
			r = add_override(o->enable, &o->nenable, optarg);
			break;
		case OPT_DISABLE:
			r = add_override(o->disable, &o->ndisable, optarg);
			break;
		case OPT_ADVERTISE:
			r = add_override(o->advertise, &o->nadvertise, optarg);
			break;
		case OPT_LOG_LEVEL:
			o->log_level = optarg;
			break;
		case OPT_SYSLOG:
			o->use_syslog = true;
			break;
		case OPT_CHECK:
			o->check_config = true;
			break;
		case OPT_SIM_CLOCK:
			o->simulated_clock = optarg;
			break;
		case 'V':
			printf("vmic-guestd %s\n", VMIC_VERSION);
			return 1;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (r < 0)
			return r;
	}
	if (optind < argc) {
		if (!guest_service_command(argv[optind])) {
			log_error("unexpected argument '%s'; see --help",
				  argv[optind]);
			return -EINVAL;
		}
		o->cmd_argc = argc - optind;
		o->cmd_argv = argv + optind;
	}
	return 0;
}

/* The services' options given on the command line, into their confs. */
static int apply_service_options(struct guestd *g, const struct options *o)
{
	const struct guest_service *s;
	const struct guest_option *opt;
	char err[256];

	for (size_t i = 0; i < MAX_SERVICE_OPTIONS &&
			   guest_service_option(i, &s, &opt);
	     i++) {
		if (!o->service_opt[i])
			continue;
		if (vmic_conf_set(s->conf, g->svc[s->desc->id].conf,
				  s->desc->name, opt->key, o->service_opt[i],
				  err, sizeof(err)) < 0) {
			log_error("--%s: %s", opt->name, err);
			return -EINVAL;
		}
	}
	return 0;
}

static int set_service(struct guest_config *cfg, const char *name, bool on)
{
	const struct vmic_service_desc *d = vmic_service_by_name(name);

	if (!d) {
		log_error("unknown service '%s'; valid services: %s", name,
			  vmic_service_names());
		return -EINVAL;
	}
	cfg->enabled[d->id] = on;
	return 0;
}

/* Parse a version number 1..255 at *p, advancing it; -1 when none. */
static int parse_version(const char **p)
{
	unsigned v = 0;
	int digits = 0;

	while (**p >= '0' && **p <= '9' && digits < 4) {
		v = v * 10 + (unsigned)(*(*p)++ - '0');
		digits++;
	}
	return digits && v >= 1 && v <= 255 ? (int)v : -1;
}

/* --advertise SERVICE=MIN[-MAX]: replace the version range we offer. */
static int set_advertise(struct guestd *g, const char *spec)
{
	const char *eq = strchr(spec, '='), *p;
	const struct vmic_service_desc *d;
	char name[64];
	int lo, hi;

	if (!eq || (size_t)(eq - spec) >= sizeof(name))
		goto bad;
	snprintf(name, sizeof(name), "%.*s", (int)(eq - spec), spec);
	p = eq + 1;
	lo = hi = parse_version(&p);
	if (*p == '-') {
		p++;
		hi = parse_version(&p);
	}
	if (lo < 0 || hi < lo || *p != '\0')
		goto bad;
	d = vmic_service_by_name(name);
	if (!d) {
		log_error("unknown service '%s' in --advertise; valid services: "
			  "%s",
			  name, vmic_service_names());
		return -EINVAL;
	}
	g->offers[d->id].min_version = (uint8_t)lo;
	g->offers[d->id].max_version = (uint8_t)hi;
	return 0;
bad:
	log_error("--advertise '%s': expected SERVICE=MIN or SERVICE=MIN-MAX "
		  "with versions 1..255",
		  spec);
	return -EINVAL;
}

static int apply_overrides(struct guestd *g, const struct options *o)
{
	char err[256];
	int r;

	if (o->channel &&
	    vmic_conf_set(&guest_config_table, &g->cfg, "agent", "channel",
			  o->channel, err, sizeof(err)) < 0) {
		log_error("--channel: %s", err);
		return -EINVAL;
	}
	if (o->log_level &&
	    vmic_conf_set(&guest_config_table, &g->cfg, "agent", "log-level",
			  o->log_level, err, sizeof(err)) < 0) {
		log_error("--log-level: %s", err);
		return -EINVAL;
	}
	for (unsigned i = 0; i < o->nenable; i++)
		if ((r = set_service(&g->cfg, o->enable[i], true)) < 0)
			return r;
	for (unsigned i = 0; i < o->ndisable; i++)
		if ((r = set_service(&g->cfg, o->disable[i], false)) < 0)
			return r;
	return apply_service_options(g, o);
}

static int build_offers(struct guestd *g, const struct options *o)
{
	for (size_t i = 0; i < vmic_service_count; i++) {
		const struct vmic_service_desc *d = vmic_services[i];

		g->offers[d->id] = (struct vmic_offer){
			.service = d->id,
			.min_version = d->min_version,
			.max_version = d->max_version,
			.flags = g->cfg.enabled[d->id] ? VMIC_OFFER_ENABLED : 0,
		};
	}
	for (unsigned i = 0; i < o->nadvertise; i++) {
		int r = set_advertise(g, o->advertise[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static void on_accept(void *ud, uv_stream_t *stream)
{
	admit_connection(ud, stream);
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* The command line, kept for a reload: its values win over the file. */
static struct options opts;

/* The file, then the command line, into g's config and service confs. */
static int load_config(struct guestd *g, const struct options *o,
		       struct vmic_conf_part *parts, size_t *nparts)
{
	int r;

	guest_config_defaults(&g->cfg);
	r = guest_services_init(g);
	if (r < 0) {
		log_error("out of memory");
		return r;
	}
	*nparts = guest_config_parts(g, parts);
	r = vmic_conf_load_parts(parts, *nparts, g->config_path,
				 o->config == NULL);
	return r < 0 ? r : apply_overrides(g, o);
}

/*
 * SIGHUP: read the configuration again. The log level, allowed-cids and
 * every service's own keys apply at once; the channel and the services'
 * switches cannot change while the agent runs (a log line says so). A
 * file that does not load leaves the running configuration.
 */
static void on_reload(uv_signal_t *s, int signo UNUSED)
{
	struct guestd *g = s->data;
	struct guestd next = { .config_path = g->config_path };
	struct vmic_conf_part parts[2 * VMIC_SVC_COUNT + 1];
	size_t nparts;

	log_info("SIGHUP: reloading %s", g->config_path);
	vmic_notify("RELOADING=1");
	if (load_config(&next, &opts, parts, &nparts) < 0) {
		log_error("reload failed; the running configuration stays");
	} else {
		if (strcmp(next.cfg.channel, g->cfg.channel) != 0)
			log_warning("reload: [agent] channel cannot change at "
				    "run time (still %s); restart vmic-guestd "
				    "to use %s",
				    g->cfg.channel, next.cfg.channel);
		g->cfg.log_level = next.cfg.log_level;
		log_set_max_level(g->cfg.log_level);
		/* The listener reads the list where it is: in place. */
		g->cfg.allowed_cids = next.cfg.allowed_cids;
		guest_services_reload(g, &next);
		log_info("configuration reloaded");
	}
	guest_services_free(&next);
	vmic_notify("READY=1");
}

/* Names of the signals the agent stops on; sigabbrev_np() is glibc's
 * alone, and the agent also builds on musl. */
static const char *stop_signal_name(int signo)
{
	switch (signo) {
	case SIGTERM:
		return "SIGTERM";
	case SIGINT:
		return "SIGINT";
	default:
		return "a stop signal";
	}
}

/* The stop deadline passed and the loop still runs: say what it waits
 * for and end the loop; main exits without joining the workers. */
static void on_stop_deadline(uv_timer_t *t)
{
	struct guestd *g = t->data;
	char what[1024];

	guest_services_pending(g, what, sizeof(what));
	log_warning("still not stopped %d s after the stop signal (waiting "
		    "for: %s); exiting without it",
		    STOP_DEADLINE_MS / 1000,
		    what[0] ? what : "work of libuv's threads");
	g->abandoned = true;
	uv_stop(g->loop);
}

static void on_signal(uv_signal_t *s, int signo)
{
	struct guestd *g = s->data;

	if (g->stopping)
		return;
	log_info("%s received, stopping", stop_signal_name(signo));
	vmic_notify("STOPPING=1");
	g->stopping = true;
	/* Unreferenced: a loop that ends on its own does not wait for it. */
	uv_timer_start(&g->stop_timer, on_stop_deadline, STOP_DEADLINE_MS, 0);
	uv_unref((uv_handle_t *)&g->stop_timer);
	guest_services_stop(g);
	admit_stop(g);
	if (g->conn)
		conn_close(g->conn);
	vmic_listener_close(g->listener);
	g->listener = NULL;
	uv_close((uv_handle_t *)&g->sigterm, NULL);
	uv_close((uv_handle_t *)&g->sigint, NULL);
	uv_close((uv_handle_t *)&g->sighup, NULL);
}

/* "ready on CHANNEL", with what `auto` chose and who may connect. */
static void log_ready(const struct guestd *g)
{
	const struct vmic_channel *ch = vmic_listener_channel(g->listener);
	char used[VMIC_PATH_MAX + 32], via[VMIC_PATH_MAX + 40] = "";
	char cids[VMIC_PEER_CIDS_MAX * 12], peers[VMIC_PEER_CIDS_MAX * 12 + 32];

	vmic_channel_format(ch, used, sizeof(used));
	if (strcmp(used, g->cfg.channel) != 0)
		snprintf(via, sizeof(via), " (%s)", g->cfg.channel);
	vmic_peer_cids_format(&g->cfg.allowed_cids, cids, sizeof(cids));
	snprintf(peers, sizeof(peers), ", peers from CID %s", cids);
	log_info("version %s ready on %s%s%s", VMIC_VERSION, used, via,
		 ch->kind == VMIC_CH_VSOCK_LISTEN ? peers : "");
}

static int guestd_run(struct guestd *g)
{
	char err[512];
	int r;

	/* First: a reload asked for while we start must not kill us. */
	uv_signal_init(g->loop, &g->sighup);
	g->sighup.data = g;
	uv_signal_start(&g->sighup, on_reload, SIGHUP);
	r = vmic_listen(g->loop, &g->channel, &g->cfg.allowed_cids, on_accept,
			g, &g->listener, err, sizeof(err));
	if (r < 0) {
		log_error("cannot use channel %s: %s", g->cfg.channel, err);
		uv_close((uv_handle_t *)&g->sighup, NULL);
		uv_run(g->loop, UV_RUN_DEFAULT);
		return r;
	}
	/* Streams arrive from the loop only, so this is in time. */
	admit_init(g);
	r = guest_services_start(g);
	if (r < 0) {
		log_error_errno(r, "cannot start the services");
		admit_stop(g);
		vmic_listener_close(g->listener);
		uv_close((uv_handle_t *)&g->sighup, NULL);
		uv_run(g->loop, UV_RUN_DEFAULT);
		return r;
	}
	uv_timer_init(g->loop, &g->stop_timer);
	g->stop_timer.data = g;
	uv_signal_init(g->loop, &g->sigterm);
	uv_signal_init(g->loop, &g->sigint);
	g->sigterm.data = g->sigint.data = g;
	uv_signal_start(&g->sigterm, on_signal, SIGTERM);
	uv_signal_start(&g->sigint, on_signal, SIGINT);
	signal(SIGPIPE, SIG_IGN);
	log_ready(g);
	vmic_notify("READY=1");
	uv_run(g->loop, UV_RUN_DEFAULT);
	/* Past the stop deadline: running the loop again would wait for the
	 * stuck work again. */
	if (g->abandoned)
		return 0;
	/* Anything a service left open (a shutdown command still running). */
	uv_walk(g->loop, close_walk, NULL);
	uv_run(g->loop, UV_RUN_DEFAULT);
	return 0;
}

/*
 * The agent's memory, set before anything allocates or queues work
 * (docs/architecture.md, "Threads and memory"):
 *
 * - One malloc arena for every thread: the workers allocate little and
 *   rarely, and an arena of their own each kept its pages (tens of KiB
 *   per worker).
 * - Blocks from 128 KiB up (the link's read buffer, a pool file job's
 *   chunk, a descriptor helper's buffers) are mappings of their own,
 *   given back whole when freed. glibc would otherwise raise that
 *   threshold to the largest block freed so far and serve the next ones
 *   from the heap, which keeps what it cannot trim off its top.
 * - libuv's pool gets its default size, fixed here so that an inherited
 *   UV_THREADPOOL_SIZE cannot change it. Every user of the pool holds at
 *   most one worker at a time (KVP's one job, a descriptor helper's one
 *   read or write), so a worker that is stuck (a pool file lock another
 *   program never releases, a write to a frozen file system) leaves
 *   three; each costs about 12 KiB of RSS. Work that must not wait
 *   behind a stuck worker (thawing a frozen file system) is to get a
 *   thread of its own instead.
 */
static void memory_setup(void)
{
#ifdef M_ARENA_MAX /* glibc's; musl's malloc has no such knobs */
	mallopt(M_ARENA_MAX, 1);
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	mallopt(M_TRIM_THRESHOLD, 128 * 1024);
#endif
	setenv("UV_THREADPOOL_SIZE", POOL_THREADS, 1);
}

int main(int argc, char **argv)
{
	struct vmic_conf_part parts[2 * VMIC_SVC_COUNT + 1];
	struct options *o = &opts;
	struct guestd g = { 0 };
	char err[512];
	size_t nparts;
	int r;

	memory_setup();
	log_init("vmic-guestd", LOG_TARGET_AUTO);
	r = parse_args(argc, argv, o);
	if (r != 0)
		return r > 0 ? EXIT_SUCCESS : 2;
	if (o->check_config || o->cmd_argc)
		log_init("vmic-guestd", LOG_TARGET_STDERR);
	else if (o->use_syslog)
		log_init("vmic-guestd", LOG_TARGET_SYSLOG);
	g.config_path = o->config ? o->config : GUESTD_CONFIG_PATH;
	r = load_config(&g, o, parts, &nparts);
	if (r == 0)
		r = build_offers(&g, o);
	if (r < 0) {
		guest_services_free(&g);
		return EXIT_FAILURE;
	}
	if (o->cmd_argc) {
		const struct guest_service *s =
			guest_service_command(o->cmd_argv[0]);

		optind = 0; /* the command parses its own options */
		r = s->command_run(&g, o->cmd_argc, o->cmd_argv);
		guest_services_free(&g);
		return r;
	}
	if (o->check_config) {
		vmic_conf_dump_parts(parts, nparts, stdout);
		guest_services_free(&g);
		return EXIT_SUCCESS;
	}
	log_set_max_level(g.cfg.log_level);
	guest_clock_init_real(&g.clock);
	if (o->simulated_clock &&
	    guest_clock_parse_simulated(o->simulated_clock, &g.clock, err,
					sizeof(err)) < 0) {
		log_error("--simulated-clock %s", err);
		guest_services_free(&g);
		return 2;
	}
	if (o->simulated_clock)
		log_notice("running on a simulated clock (%s): the machine's "
			   "clock is never changed",
			   o->simulated_clock);
	if (vmic_channel_parse(g.cfg.channel, &g.channel, err, sizeof(err)) <
	    0) {
		log_error("channel %s: %s", g.cfg.channel, err);
		guest_services_free(&g);
		return EXIT_FAILURE;
	}
	g.loop = uv_default_loop();
	r = guestd_run(&g);
	/* A worker is stuck: exit() would join libuv's threads (its
	 * destructor does) and wait for it for ever. Nothing is left to
	 * flush: the log writes unbuffered. */
	if (g.abandoned)
		_exit(EXIT_SUCCESS);
	uv_loop_close(g.loop);
	guest_services_free(&g);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
