/* SPDX-License-Identifier: MIT */
/*
 * vmic-guestd: the guest agent. One context (struct guestd) owns the
 * loop, the configuration, the channel listener and the current host
 * connection; each service lives in its own file behind the table in
 * services.c. This header is the core's own: services include
 * service-api.h (which this header includes), where these structs are
 * incomplete types.
 */
#ifndef VMIC_GUESTD_H
#define VMIC_GUESTD_H

#include <uv.h>

#include "common/config.h"
#include "common/macro.h"
#include "common/ratelimit.h"
#include "guest/clock.h"
#include "guest/service-api.h"
#include "proto/hello.h"
#include "proto/proto.h"
#include "proto/requests.h"
#include "proto/session.h"
#include "transport/link.h"
#include "transport/transport.h"

#define GUESTD_CONFIG_PATH "/etc/vmic/vmic-guestd.conf"
#define GUESTD_COMMAND_MAX 1024

/* The agent's own keys; each service's keys live in its own struct. */
struct guest_config {
	char channel[VMIC_PATH_MAX + 32];
	struct vmic_peer_cids allowed_cids; /* vsock-listen peers */
	int log_level;
	unsigned max_streams; /* streams the host link may have open */
	bool enabled[VMIC_SVC_COUNT]; /* [SERVICE] enabled */
};

/* What the agent keeps for one service: its config and its state. */
struct guest_slot {
	void *conf;  /* the service's config struct (conf_size bytes) */
	void *state; /* set by the service's start(), NULL when not running */
};

struct guestd {
	uv_loop_t *loop;
	struct guest_config cfg;
	const char *config_path;
	struct vmic_channel channel;
	struct vmic_listener *listener;
	struct guest_conn *conn; /* the current host connection, or NULL */
	/* admit.c: a new connection held while the quiet current host is
	 * asked whether it is there */
	uv_stream_t *pending;
	uv_timer_t probe_timer;
	struct vmic_ratelimit admit_log; /* lines about refused newcomers */
	struct vmic_offer offers[VMIC_SVC_COUNT];
	struct guest_slot svc[VMIC_SVC_COUNT];
	/* The wall clock services read and set (clock.h): the real one, or
	 * a simulated one for tests (--simulated-clock). */
	struct guest_clock clock;
	bool frozen; /* agent_frozen(): the backup service froze disks */
	uv_signal_t sigterm, sigint, sighup;
	bool stopping;
	/* the stop deadline: armed at SIGTERM; when it fires, the agent
	 * exits without waiting for what is still running (abandoned) */
	uv_timer_t stop_timer;
	bool abandoned;
};

/* One connection to the host: its link and its session. */
struct guest_conn {
	struct guestd *g;
	struct vmic_link link;
	struct vmic_session session;
	uv_timer_t hello_timer;
	unsigned hello_delay_ms;
	uint32_t host_mask; /* services the host enables (CTL_SERVICES) */
	/* requests.c: the answers services wait for, and the timer of the
	 * earliest deadline */
	struct vmic_requests req;
	uv_timer_t req_timer;
	int handles; /* open timers; the struct is freed when both closed */
	uint64_t unexpected_answers; /* answers nobody waited for */
	uint64_t stale_frames;
	uint64_t last_rx_ms; /* loop time of the last frame from the host */
	bool had_session; /* a session was established on this connection */
	bool up;          /* the services were told the session is up */
	bool closing;
};

/* guestd-config.c */
extern const struct vmic_conf_table guest_config_table;
void guest_config_defaults(struct guest_config *cfg);

/* admit.c: one connection at a time, and which one */
void admit_init(struct guestd *g);
/* A new stream from the listener: serve it, hold it, or close it. */
void admit_connection(struct guestd *g, uv_stream_t *stream);
/* The current connection c received a frame: its host is there. */
void admit_heard(struct guestd *g, struct guest_conn *c);
/* The current connection ended; true when a held newcomer took over. */
bool admit_conn_closed(struct guestd *g);
/* The agent stops: close a held newcomer and the timer. */
void admit_stop(struct guestd *g);

/* conn.c */
/* Serve stream as the current connection (g->conn must be NULL). */
void conn_open(struct guestd *g, uv_stream_t *stream);
void conn_close(struct guest_conn *c);
/* Ask the host of an established session to answer (a hello with the
 * ESTABLISHED flag clear, which the host always answers). */
void conn_send_probe(struct guest_conn *c);

/* services.c */
const struct guest_service *guest_service_find(uint8_t id);
/* The service whose command is `name`, or NULL. */
const struct guest_service *guest_service_command(const char *name);
/* Every service's options, in table order: the i-th one and its
 * service; false past the last. */
bool guest_service_option(size_t i, const struct guest_service **s,
			  const struct guest_option **o);
/* Allocate every service's config at its defaults; -ENOMEM. */
int guest_services_init(struct guestd *g);
/* Free every service's config and state (after the loop has ended). */
void guest_services_free(struct guestd *g);
/* The config file's parts: [agent], then each service's keys. At most
 * VMIC_SVC_COUNT * 2 + 1 entries; returns the count. */
size_t guest_config_parts(struct guestd *g, struct vmic_conf_part *parts);
/* start() of each service its configuration enables; -errno. */
int guest_services_start(struct guestd *g);
/* stop() of each started service. */
void guest_services_stop(struct guestd *g);
/* What the started services still wait for ("; "-separated into buf,
 * "" when nothing). */
void guest_services_pending(struct guestd *g, char *buf, size_t n);
/* on_session() of each started service. */
void guest_services_session(struct guest_conn *c, bool up);
/* A reload: copy each service's conf from next into g where it changed,
 * and tell the service; name what cannot change at run time. */
void guest_services_reload(struct guestd *g, const struct guestd *next);

/* requests.c: the tracker of the services' requests to the host */
/* A new connection: nothing waits, ids from 1, the timer ready. */
void agent_requests_init(struct guest_conn *c);
/* A frame with the REPLY flag: true when a waiter took it. */
bool agent_requests_deliver(struct guest_conn *c, const struct vmic_frame *f);
/* Every waiter gets err (-ECONNRESET, -ECANCELED); nothing waits after. */
void agent_requests_fail_all(struct guest_conn *c, int err);

/* info.c */
struct vmic_info;
/* Collect hostname, os-release, uname and uptime; never fails. */
void info_collect(struct vmic_info *info);

#endif
