/* SPDX-License-Identifier: MIT */
/*
 * vmic-guestd: the guest agent. One context (struct guestd) owns the
 * loop, the configuration, the channel listener and the current host
 * connection; each service lives in its own file behind the table in
 * services.c.
 */
#ifndef VMIC_GUESTD_H
#define VMIC_GUESTD_H

#include <uv.h>

#include "common/config.h"
#include "common/macro.h"
#include "proto/hello.h"
#include "proto/proto.h"
#include "proto/session.h"
#include "transport/link.h"
#include "transport/transport.h"

#define GUESTD_CONFIG_PATH "/etc/vmic/vmic-guestd.conf"
#define GUESTD_COMMAND_MAX 1024

struct guest_config {
	char channel[VMIC_PATH_MAX + 32];
	int log_level;
	bool enabled[VMIC_SVC_COUNT];
	/* heartbeat */
	char health_command[GUESTD_COMMAND_MAX];
	unsigned health_interval_ms;
	unsigned health_timeout_ms;
	/* shutdown: empty means systemctl where systemd runs, else the
	 * plain poweroff/reboot/halt commands */
	char poweroff_command[GUESTD_COMMAND_MAX];
	char reboot_command[GUESTD_COMMAND_MAX];
	char halt_command[GUESTD_COMMAND_MAX];
};

/* The last result of the application health command. */
struct health {
	uv_timer_t timer;
	uv_timer_t timeout; /* run limit, then the drain limit after exit */
	uv_process_t proc;
	uv_pipe_t out;
	bool proc_open, out_open; /* handles not yet closed */
	bool exited, eof, timed_out;
	int64_t status;
	int signo;
	uint8_t state; /* enum vmic_health */
	char reason[513];
	char output[513]; /* first bytes the command printed */
	size_t output_len;
};

struct guest_conn;

struct guestd {
	uv_loop_t *loop;
	struct guest_config cfg;
	const char *config_path;
	struct vmic_channel channel;
	struct vmic_listener *listener;
	struct guest_conn *conn; /* the current host connection, or NULL */
	struct vmic_offer offers[VMIC_SVC_COUNT];
	uv_signal_t sigterm, sigint;
	struct health health;
	bool stopping;
};

/* One connection to the host: its link and its session. */
struct guest_conn {
	struct guestd *g;
	struct vmic_link link;
	struct vmic_session session;
	uv_timer_t hello_timer;
	unsigned hello_delay_ms;
	uint32_t host_mask; /* services the host enables (CTL_SERVICES) */
	uint32_t next_request_id;
	uint64_t stale_frames;
	bool had_session; /* a session was established on this connection */
	bool closing;
};

/* A service as the guest runs it: one entry per implemented service. */
struct guest_service {
	uint8_t id;
	/* A request for the service; the gate (enabled, version) has passed. */
	int (*on_frame)(struct guest_conn *c, const struct vmic_frame *f);
};

/* guestd-config.c */
extern const struct vmic_conf_table guest_config_table;
void guest_config_defaults(struct guest_config *cfg);

/* conn.c */
void conn_accept(struct guestd *g, uv_stream_t *stream);
void conn_close(struct guest_conn *c);
/* Send a whole encoded frame; logs and returns -errno on failure. */
int conn_send(struct guest_conn *c, const uint8_t *frame, size_t len);
/*
 * Answer request f with message `type` of its service: payload_len bytes
 * already encoded at buf + VMIC_HDR_SIZE; the header is written here.
 */
int conn_reply(struct guest_conn *c, const struct vmic_frame *f, uint8_t type,
	       uint8_t *buf, size_t payload_len);
/* Answer request f with an error frame carrying code and a sentence. */
int conn_reply_error(struct guest_conn *c, const struct vmic_frame *f,
		     uint16_t code, const char *fmt, ...) PRINTF_LIKE(4, 5);

/* services.c */
const struct guest_service *guest_service_find(uint8_t id);
/* Why the service cannot answer now, or NULL when it can. */
const char *guest_service_refusal(const struct guest_conn *c, uint8_t id,
				  uint16_t *code);

/* heartbeat.c */
int heartbeat_on_frame(struct guest_conn *c, const struct vmic_frame *f);

/* health.c */
void health_start(struct guestd *g);
void health_stop(struct guestd *g);

/* shutdown.c */
int shutdown_on_frame(struct guest_conn *c, const struct vmic_frame *f);
/* The command an action runs, from the config or chosen for this system. */
const char *shutdown_command(const struct guest_config *cfg, uint8_t action,
			     bool force, char *buf, size_t n);

/* info.c */
struct vmic_info;
/* Collect hostname, os-release, uname and uptime; never fails. */
void info_collect(struct vmic_info *info);

#endif
