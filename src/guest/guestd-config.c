/* SPDX-License-Identifier: MIT */
/*
 * The guest agent's own configuration keys ([agent]); each service adds
 * its [NAME] keys through the service table (services.c).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "guestd.h"

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

static int parse_cids(const char *value, void *field, char *err,
		      size_t errsz)
{
	return vmic_peer_cids_parse(value, field, err, errsz);
}

static void format_cids(const void *field, char *buf, size_t n)
{
	vmic_peer_cids_format(field, buf, n);
}

#define CFG(f) offsetof(struct guest_config, f)

static const struct vmic_conf_key keys[] = {
	{ "agent", "channel", VMIC_CONF_CUSTOM, CFG(channel), 0, 0, 0,
	  parse_channel, vmic_conf_format_string,
	  "where the host reaches the agent: auto, virtio-serial:NAME, "
	  "vsock-listen:PORT, unix-listen:PATH" },
	{ "agent", "allowed-cids", VMIC_CONF_CUSTOM, CFG(allowed_cids), 0, 0,
	  0, parse_cids, format_cids,
	  "vsock-listen: the CIDs that may connect (2 is the host)" },
	{ "agent", "log-level", VMIC_CONF_CUSTOM, CFG(log_level), 0, 0, 0,
	  vmic_conf_parse_log_level, vmic_conf_format_log_level,
	  "err, warning, notice, info or debug" },
	{ "agent", "max-streams", VMIC_CONF_UINT, CFG(max_streams), 0, 1,
	  4096, NULL, NULL,
	  "streams the host's link may have open at once (1..4096), taken "
	  "at the next connection" },
};

const struct vmic_conf_table guest_config_table = { keys, ARRAY_SIZE(keys) };

void guest_config_defaults(struct guest_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->channel, sizeof(cfg->channel), "auto");
	cfg->allowed_cids.cid[0] = VMIC_CID_HOST;
	cfg->allowed_cids.count = 1;
	cfg->log_level = LOG_INFO;
	cfg->max_streams = 256;
}
