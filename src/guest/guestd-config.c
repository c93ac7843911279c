/* SPDX-License-Identifier: MIT */
/* The guest agent's configuration keys: one table, one place. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "guestd.h"
#include "proto/services.h"

static int parse_channel(const char *value, void *field, char *err,
			 size_t errsz)
{
	struct vmic_channel ch;
	int r = vmic_channel_parse(value, &ch, err, errsz);

	if (r < 0)
		return r;
	if (vmic_channel_is_host_side(&ch)) {
		snprintf(err, errsz, "'%s' is a host-side channel; the agent "
				     "uses virtio-serial:NAME, vsock-listen:PORT, "
				     "unix-listen:PATH or auto",
			 value);
		return -EINVAL;
	}
	snprintf(field, sizeof(((struct guest_config *)0)->channel), "%s",
		 value);
	return 0;
}

#define CFG(f) offsetof(struct guest_config, f)
#define STR(f) CFG(f), sizeof(((struct guest_config *)0)->f)

static const struct vmic_conf_key keys[] = {
	{ "agent", "channel", VMIC_CONF_CUSTOM, CFG(channel), 0, 0, 0,
	  parse_channel, vmic_conf_format_string,
	  "where the host reaches the agent: auto, virtio-serial:NAME, "
	  "vsock-listen:PORT, unix-listen:PATH" },
	{ "agent", "log-level", VMIC_CONF_CUSTOM, CFG(log_level), 0, 0, 0,
	  vmic_conf_parse_log_level, vmic_conf_format_log_level,
	  "err, warning, notice, info or debug" },
	{ "heartbeat", "enabled", VMIC_CONF_BOOL,
	  CFG(enabled[VMIC_SVC_HEARTBEAT]), 0, 0, 0, NULL, NULL,
	  "answer the host's heartbeat" },
	{ "heartbeat", "health-command", VMIC_CONF_STRING,
	  STR(health_command), 0, 0, NULL, NULL,
	  "run by /bin/sh -c; non-zero exit reports application critical "
	  "with its first output line" },
	{ "heartbeat", "health-interval", VMIC_CONF_DURATION,
	  CFG(health_interval_ms), 0, 1000, 86400000, NULL, NULL,
	  "how often the health command runs" },
	{ "heartbeat", "health-timeout", VMIC_CONF_DURATION,
	  CFG(health_timeout_ms), 0, 100, 600000, NULL, NULL,
	  "a health command running longer is killed and counts as failed" },
	{ "shutdown", "enabled", VMIC_CONF_BOOL,
	  CFG(enabled[VMIC_SVC_SHUTDOWN]), 0, 0, 0, NULL, NULL,
	  "let the host power off or reboot this guest" },
	{ "shutdown", "poweroff-command", VMIC_CONF_STRING,
	  STR(poweroff_command), 0, 0, NULL, NULL,
	  "empty: systemctl poweroff where systemd runs, else poweroff" },
	{ "shutdown", "reboot-command", VMIC_CONF_STRING, STR(reboot_command),
	  0, 0, NULL, NULL,
	  "empty: systemctl reboot where systemd runs, else reboot" },
	{ "shutdown", "halt-command", VMIC_CONF_STRING, STR(halt_command), 0,
	  0, NULL, NULL, "empty: systemctl halt where systemd runs, else halt" },
};

const struct vmic_conf_table guest_config_table = { keys, ARRAY_SIZE(keys) };

void guest_config_defaults(struct guest_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->channel, sizeof(cfg->channel), "auto");
	cfg->log_level = LOG_INFO;
	for (size_t i = 0; i < vmic_service_count; i++)
		cfg->enabled[vmic_services[i].id] = vmic_services[i].default_on;
	cfg->health_interval_ms = 10000;
	cfg->health_timeout_ms = 5000;
}
