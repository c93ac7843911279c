/* SPDX-License-Identifier: MIT */
/*
 * The keys of vmic-hostd.conf: the daemon's own table here, then each
 * service's settings table, whose [NAME] sections give the defaults of
 * VMs without their own. Parsed and printed by config.c.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "hostd.h"
#include "proto/services.h"

#define FIELD(f) offsetof(struct hostd_config, f)
#define STRING(sec, name, f, h)                                        \
	{ .section = sec, .key = name, .type = VMIC_CONF_STRING,       \
	  .offset = FIELD(f), .size = sizeof(((struct hostd_config *)0)->f), \
	  .help = h }
#define RANGED(sec, name, t, f, lo, hi, h)                             \
	{ .section = sec, .key = name, .type = t, .offset = FIELD(f),  \
	  .min = lo, .max = hi, .help = h }

/* [libvirt] uri: each line adds its URIs (comma-separated) to the list;
 * an empty value clears it. */
static int parse_libvirt_uris(const char *value, void *field, char *err,
			      size_t errsz)
{
	char *list = field;
	size_t have = strlen(list), add = strlen(value);
	size_t room = sizeof(((struct hostd_config *)0)->libvirt_uris);

	if (add == 0) {
		list[0] = '\0';
		return 0;
	}
	if (have + add + 3 > room) {
		snprintf(err, errsz, "the libvirt URIs take more than %zu "
				     "bytes together",
			 room - 1);
		return -EINVAL;
	}
	snprintf(list + have, room - have, "%s%s", have ? ", " : "", value);
	return 0;
}

static void format_libvirt_uris(const void *field, char *buf, size_t n)
{
	snprintf(buf, n, "%s", (const char *)field);
}

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
	RANGED("daemon", "max-vms", VMIC_CONF_UINT, max_vms, 1, 1000000,
	       "VMs the daemon registers at most (1..1000000)"),
	RANGED("connection", "connect-timeout", VMIC_CONF_DURATION,
	       connect_timeout_ms, 100, 600000,
	       "how long one connect attempt may take (100ms..10m)"),
	RANGED("connection", "retry-min", VMIC_CONF_DURATION, retry_min_ms,
	       10, 3600000, "first delay before a reconnect (10ms..1h)"),
	RANGED("connection", "retry-max", VMIC_CONF_DURATION, retry_max_ms,
	       10, 3600000, "longest delay between reconnects (10ms..1h)"),
	RANGED("connection", "session-burst", VMIC_CONF_UINT, session_burst,
	       1, 1000000,
	       "sessions a guest may start at once before its hellos are "
	       "held (1..1000000)"),
	RANGED("connection", "session-interval", VMIC_CONF_DURATION,
	       session_interval_ms, 10, 3600000,
	       "then one session per this long (10ms..1h)"),
	RANGED("connection", "max-streams", VMIC_CONF_UINT, max_streams, 1,
	       4096,
	       "streams one VM's link may have open at once (1..4096); a "
	       "connection made after a reload takes a new value"),
	{ .section = "libvirt", .key = "uri", .type = VMIC_CONF_CUSTOM,
	  .offset = FIELD(libvirt_uris), .parse = parse_libvirt_uris,
	  .format = format_libvirt_uris,
	  .help = "libvirt connections whose domains with a vmic channel "
		  "are registered and followed (qemu:///system); several "
		  "lines or commas add more; read at start only" },
	RANGED("events", "keep", VMIC_CONF_UINT, events_keep, 100, 100000000,
	       "events kept in the database; older ones are pruned"),
	RANGED("events", "max-size", VMIC_CONF_SIZE, events_max_size,
	       1ull << 20, 1ull << 40,
	       "bytes the stored events may take (their text and 64 per "
	       "event; other data in vmic.db does not count) before the "
	       "oldest are pruned (1M..1T)"),
	RANGED("events", "max-age", VMIC_CONF_SECONDS, events_max_age_s, 3600,
	       3650ull * 86400,
	       "events older than this are pruned (1h..3650d)"),
	RANGED("events", "vm-rate", VMIC_CONF_UINT, events_vm_rate, 1, 1000,
	       "events per second one VM may cause after its burst; more are "
	       "counted into one record (1..1000)"),
	RANGED("events", "vm-burst", VMIC_CONF_UINT, events_vm_burst, 1,
	       100000, "events one VM may cause at once (1..100000)"),
	STRING("access", "group-channels", group_channels,
	       "channels members of the socket group may give a VM: glob "
	       "patterns separated by commas (root may give any)"),
	STRING("access", "group-power-off", group_power_off,
	       "power backends members of the socket group may set (they run "
	       "as root): globs; exec: ones exact, {vm} for the VM's name; "
	       "empty for none"),
	RANGED("access", "group-max-vms", VMIC_CONF_UINT, group_max_vms, 0,
	       1000000,
	       "members of the socket group may add VMs while fewer than this "
	       "are registered (0..1000000; root: up to max-vms)"),
	RANGED("control", "max-unread", VMIC_CONF_UINT, max_unread, 262144,
	       1073741824,
	       "bytes of replies or events a client may leave unread before "
	       "it is dropped"),
	RANGED("control", "max-unread-total", VMIC_CONF_SIZE,
	       max_unread_total, 1ull << 20, 1ull << 40,
	       "bytes all clients together may leave unread; past it the one "
	       "holding the most is dropped (1M..1T)"),
	RANGED("control", "max-clients", VMIC_CONF_UINT, max_clients, 1,
	       65536,
	       "control connections at once (root and the daemon's user may "
	       "open 32 more)"),
	RANGED("control", "max-clients-per-uid", VMIC_CONF_UINT,
	       max_clients_per_uid, 1, 65536,
	       "control connections one user other than root and the "
	       "daemon's may have at once"),
	RANGED("control", "max-operations", VMIC_CONF_UINT, max_ops, 1,
	       65536,
	       "long operations (copies, sessions) running at once on the "
	       "control socket (1..65536)"),
	RANGED("control", "max-operations-per-vm", VMIC_CONF_UINT,
	       max_ops_per_vm, 1, 65536,
	       "of them, on one VM at once (1..65536)"),
};

const struct vmic_conf_table hostd_conf_table = {
	.keys = keys,
	.count = ARRAY_SIZE(keys),
};

int hostd_config_defaults(struct hostd_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/vmic");
	snprintf(c->socket, sizeof(c->socket), "/run/vmic/ctl.sock");
	snprintf(c->socket_group, sizeof(c->socket_group), "vmic");
	c->log_level = LOG_INFO;
	c->max_vms = 100000;
	c->connect_timeout_ms = 5000;
	c->retry_min_ms = 250;
	c->retry_max_ms = 30000;
	c->session_burst = 10;
	c->session_interval_ms = 6000;
	c->events_keep = 100000;
	c->events_max_size = 64ull << 20;
	c->events_max_age_s = 90ull * 86400;
	c->events_vm_rate = 5;
	c->events_vm_burst = 50;
	snprintf(c->group_channels, sizeof(c->group_channels),
		 "vsock:*, unix:/run/vmic/*, hvsock:/run/vmic/*");
	c->group_max_vms = 1000;
	c->max_unread = 4u * 1024 * 1024;
	c->max_unread_total = 64ull << 20;
	c->max_clients = 512;
	c->max_clients_per_uid = 128;
	c->max_ops = 1024;
	c->max_ops_per_vm = 64;
	c->max_streams = 256;
	for (size_t i = 0; i < vmic_service_count; i++) {
		uint8_t id = vmic_services[i]->id;
		const struct host_service *s = host_service_get(id);

		if (!s)
			continue;
		if (s->settings_size) {
			c->svc_defaults[id] = calloc(1, s->settings_size);
			if (!c->svc_defaults[id])
				return -ENOMEM;
			if (s->settings_defaults)
				s->settings_defaults(c->svc_defaults[id]);
		}
		if (s->daemon_settings_size) {
			c->svc_daemon[id] = calloc(1, s->daemon_settings_size);
			if (!c->svc_daemon[id])
				return -ENOMEM;
			if (s->daemon_settings_defaults)
				s->daemon_settings_defaults(c->svc_daemon[id]);
		}
	}
	return 0;
}

void hostd_config_free(struct hostd_config *c)
{
	for (size_t i = 0; i < VMIC_SVC_COUNT; i++) {
		free(c->svc_defaults[i]);
		c->svc_defaults[i] = NULL;
		free(c->svc_daemon[i]);
		c->svc_daemon[i] = NULL;
	}
}

size_t hostd_config_parts(struct hostd_config *c,
			  struct vmic_conf_part *parts)
{
	size_t n = 0;

	parts[n++] = (struct vmic_conf_part){ &hostd_conf_table, c };
	for (size_t i = 0; i < vmic_service_count; i++) {
		uint8_t id = vmic_services[i]->id;
		const struct host_service *s = host_service_get(id);

		if (s && s->settings && c->svc_defaults[id])
			parts[n++] = (struct vmic_conf_part){
				s->settings, c->svc_defaults[id]
			};
		/* Next to the settings: one [NAME] section in the dump. */
		if (s && s->daemon_settings && c->svc_daemon[id])
			parts[n++] = (struct vmic_conf_part){
				s->daemon_settings, c->svc_daemon[id]
			};
	}
	return n;
}

/* Keys that cannot change while the daemon runs. */
static void name_fixed_keys(const struct hostd_config *cur,
			    const struct hostd_config *next)
{
	if (strcmp(cur->state_dir, next->state_dir) != 0)
		log_warning("reload: [daemon] state-dir cannot change at run "
			    "time (still %s); restart vmic-hostd to use %s",
			    cur->state_dir, next->state_dir);
	if (strcmp(cur->socket, next->socket) != 0)
		log_warning("reload: [daemon] socket cannot change at run time "
			    "(still %s); restart vmic-hostd to use %s",
			    cur->socket, next->socket);
	if (strcmp(cur->libvirt_uris, next->libvirt_uris) != 0)
		log_warning("reload: [libvirt] uri cannot change at run time "
			    "(still '%s'); restart vmic-hostd to follow '%s'",
			    cur->libvirt_uris, next->libvirt_uris);
}

/* New service defaults reach every VM that inherits them. */
static void rebase_vms(struct hostd *h)
{
	for (size_t i = 0; i < h->nvms; i++) {
		struct vm *vm = h->vms[i];

		for (size_t j = 0; j < vmic_service_count; j++) {
			uint8_t id = vmic_services[j]->id;
			const struct host_service *s = host_service_get(id);

			if (!h->cfg.svc_defaults[id] || !vm->svc[id].settings ||
			    !settings_rebase(vm, id, h->cfg.svc_defaults[id]))
				continue;
			if (s && s->settings_changed)
				s->settings_changed(vm);
		}
	}
}

void hostd_config_apply(struct hostd *h, struct hostd_config *next)
{
	struct hostd_config *cur = &h->cfg;

	name_fixed_keys(cur, next);
	snprintf(next->state_dir, sizeof(next->state_dir), "%s",
		 cur->state_dir);
	snprintf(next->socket, sizeof(next->socket), "%s", cur->socket);
	memcpy(next->libvirt_uris, cur->libvirt_uris,
	       sizeof(next->libvirt_uris)); /* the running connections' */
	hostd_config_free(cur);
	*cur = *next; /* takes over next's service defaults */
	memset(next->svc_defaults, 0, sizeof(next->svc_defaults));
	memset(next->svc_daemon, 0, sizeof(next->svc_daemon));
	rebase_vms(h);
	/* [events] bounds: the writer prunes to the new ones at once. */
	store_set_limits(h);
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
