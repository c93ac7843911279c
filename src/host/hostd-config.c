/* SPDX-License-Identifier: MIT */
/* The keys of vmic-hostd.conf: one table, parsed and printed by config.c. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "hostd.h"

#define FIELD(f) offsetof(struct hostd_config, f)
#define STRING(sec, name, f, h)                                        \
	{ .section = sec, .key = name, .type = VMIC_CONF_STRING,       \
	  .offset = FIELD(f), .size = sizeof(((struct hostd_config *)0)->f), \
	  .help = h }
#define RANGED(sec, name, t, f, lo, hi, h)                             \
	{ .section = sec, .key = name, .type = t, .offset = FIELD(f),  \
	  .min = lo, .max = hi, .help = h }

static const struct vmic_conf_key keys[] = {
	STRING("daemon", "state-dir", state_dir,
	       "directory of the SQLite state (vmic.db)"),
	STRING("daemon", "socket", socket, "control socket path"),
	STRING("daemon", "socket-group", socket_group,
	       "group allowed to use the control socket"),
	{ .section = "daemon", .key = "log-level", .type = VMIC_CONF_CUSTOM,
	  .offset = FIELD(log_level), .parse = vmic_conf_parse_log_level,
	  .format = vmic_conf_format_log_level,
	  .help = "err, warning, notice, info or debug" },
	{ .section = "daemon", .key = "syslog", .type = VMIC_CONF_BOOL,
	  .offset = FIELD(syslog),
	  .help = "log to syslog instead of stderr (yes or no)" },
	RANGED("heartbeat", "interval", VMIC_CONF_DURATION, hb_interval_ms,
	       HB_INTERVAL_MIN_MS, HB_INTERVAL_MAX_MS,
	       "default heartbeat interval of a new VM (100ms..1h)"),
	RANGED("heartbeat", "threshold", VMIC_CONF_UINT, hb_threshold,
	       HB_THRESHOLD_MIN, HB_THRESHOLD_MAX,
	       "missed heartbeats before Lost Communication (1..100)"),
	RANGED("connection", "connect-timeout", VMIC_CONF_DURATION,
	       connect_timeout_ms, 100, 600000,
	       "how long one connect attempt may take (100ms..10m)"),
	RANGED("connection", "retry-min", VMIC_CONF_DURATION, retry_min_ms,
	       10, 3600000, "first delay before a reconnect (10ms..1h)"),
	RANGED("connection", "retry-max", VMIC_CONF_DURATION, retry_max_ms,
	       10, 3600000, "longest delay between reconnects (10ms..1h)"),
	RANGED("events", "keep", VMIC_CONF_UINT, events_keep, 100, 100000000,
	       "events kept in the database; older ones are pruned"),
};

const struct vmic_conf_table hostd_conf_table = {
	.keys = keys,
	.count = ARRAY_SIZE(keys),
};

void hostd_config_defaults(struct hostd_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/vmic");
	snprintf(c->socket, sizeof(c->socket), "/run/vmic/ctl.sock");
	snprintf(c->socket_group, sizeof(c->socket_group), "vmic");
	c->log_level = LOG_INFO;
	c->hb_interval_ms = 1000;
	c->hb_threshold = 3;
	c->connect_timeout_ms = 5000;
	c->retry_min_ms = 250;
	c->retry_max_ms = 30000;
	c->events_keep = 100000;
}

int hostd_config_check(const struct hostd_config *c, const char *path)
{
	char lo[32], hi[32];
	int r = 0;

	if (c->retry_min_ms > c->retry_max_ms) {
		vmic_format_duration_ms(c->retry_min_ms, lo, sizeof(lo));
		vmic_format_duration_ms(c->retry_max_ms, hi, sizeof(hi));
		log_error("%s: [connection] retry-min (%s) is larger than "
			  "retry-max (%s); make retry-min the smaller one",
			  path, lo, hi);
		r = -EINVAL;
	}
	if (c->state_dir[0] == '\0') {
		log_error("%s: [daemon] state-dir is empty; give it a directory "
			  "such as /var/lib/vmic",
			  path);
		r = -EINVAL;
	}
	if (c->socket[0] == '\0') {
		log_error("%s: [daemon] socket is empty; give the control "
			  "socket a path such as /run/vmic/ctl.sock",
			  path);
		r = -EINVAL;
	}
	return r;
}
