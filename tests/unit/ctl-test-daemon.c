/* SPDX-License-Identifier: MIT */
/*
 * A vmic-hostd core with the tests' own commands (ctl-test-commands.c),
 * as a process of its own, for tests of clients (test-cli-op.c): they
 * run the CLI's code against it, kill it with SIGKILL mid-operation, or
 * stop it with SIGTERM, which ends operations as vmic-hostd's stop does.
 *
 *   ctl-test-daemon DIR    state in DIR/state, socket DIR/ctl.sock
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "common/log.h"
#include "ctl-test-commands.h"
#include "host/hostd.h"

static struct hostd h;
static uv_signal_t sig_term;

static void conf(const char *section, const char *key, const char *value)
{
	char err[256];

	if (vmic_conf_set(&hostd_conf_table, &h.cfg, section, key, value, err,
			  sizeof(err)) < 0) {
		fprintf(stderr, "ctl-test-daemon: [%s] %s: %s\n", section, key,
			err);
		exit(1);
	}
}

/* What vmic-hostd does on SIGTERM. */
static void on_term(uv_signal_t *s, int signum UNUSED)
{
	h.stopping = true;
	while (h.nvms > 0)
		vm_destroy(h.vms[h.nvms - 1], DETACH_STOPPING);
	ctl_close(&h);
	services_daemon_stop(&h);
	events_close(&h);
	clock_stop(&h);
	uv_close((uv_handle_t *)s, NULL);
}

int main(int argc, char **argv)
{
	char path[512];

	if (argc != 2) {
		fprintf(stderr, "usage: ctl-test-daemon DIR\n");
		return 2;
	}
	log_init("ctl-test-daemon", LOG_TARGET_STDERR);
	log_set_max_level(LOG_WARNING);
	signal(SIGPIPE, SIG_IGN);
	h.loop = uv_default_loop();
	if (hostd_config_defaults(&h.cfg) < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/state", argv[1]);
	conf("daemon", "state-dir", path);
	snprintf(path, sizeof(path), "%s/ctl.sock", argv[1]);
	conf("daemon", "socket", path);
	if ((mkdir(h.cfg.state_dir, 0750) < 0 && errno != EEXIST) ||
	    ctl_open(&h) < 0 || services_daemon_start(&h) < 0 ||
	    store_open(&h) < 0 || store_load_vms(&h) < 0)
		return 1;
	events_init(&h);
	if (store_start(&h) < 0)
		return 1;
	ctl_commands_extend(ctl_test_commands, ctl_test_command_count);
	uv_signal_init(h.loop, &sig_term);
	uv_signal_start(&sig_term, on_term, SIGTERM);
	uv_run(h.loop, UV_RUN_DEFAULT);
	events_close(&h);
	store_stop(&h);
	store_close(&h);
	free(h.vms);
	hostd_config_free(&h.cfg);
	return 0;
}
