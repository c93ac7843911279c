/* SPDX-License-Identifier: MIT */
/*
 * Which connection the agent serves when a new one arrives while it has
 * one (vsock-listen and unix-listen; a virtio-serial port has a single
 * stream). The rule keeps a live host's session against anyone who
 * merely connects, yet lets a host that restarted take over a connection
 * that is really gone:
 *
 *  1. The current connection has no established session: the newcomer
 *     replaces it (a hello exchange that never completed proves nothing,
 *     and the host's own reconnect must win over a silent squatter).
 *  2. The host spoke on it within ADMIT_LIVE_MS: it is alive; the
 *     newcomer is closed at once.
 *  3. Quieter than that (a long heartbeat interval, or none): the agent
 *     asks the host to prove it is there, with a hello whose ESTABLISHED
 *     flag is clear, which the host answers (docs/protocol.md, Session
 *     rule 3), and holds the newcomer meanwhile. Any frame from the host
 *     within ADMIT_PROBE_MS keeps the current connection and closes the
 *     newcomer; silence closes the current one and the newcomer takes
 *     over. One newcomer is held at a time; others are closed at once.
 *
 * Every refusal is a log line, at most one per ADMIT_LOG_INTERVAL_MS.
 */
#include "common/log.h"
#include "guestd.h"

/* A host that spoke this recently is alive: it heartbeats every second
 * by default, and even a busy host answers within this. */
#define ADMIT_LIVE_MS 5000
/* How long a quiet host has to answer the probe. */
#define ADMIT_PROBE_MS 3000
/* A process that connects every 200 ms gets one line per 10 s. */
#define ADMIT_LOG_INTERVAL_MS 10000

static void admit_refuse(struct guestd *g, uv_stream_t *s, const char *why)
{
	uint64_t held;
	char more[80] = "";

	vmic_stream_free(s);
	if (!vmic_ratelimit_pass(&g->admit_log, uv_now(g->loop), &held))
		return;
	if (held)
		snprintf(more, sizeof(more),
			 "; %llu more refused since the last such line",
			 (unsigned long long)held);
	log_warning("refused a new connection: %s%s", why, more);
}

static void on_probe_timeout(uv_timer_t *t)
{
	struct guestd *g = t->data;
	uv_stream_t *s = g->pending;

	g->pending = NULL;
	if (!s)
		return;
	log_warning("the host's connection was silent for %d s and did not "
		    "answer within %d s: a new connection replaces it",
		    ADMIT_LIVE_MS / 1000, ADMIT_PROBE_MS / 1000);
	if (g->conn) {
		conn_close(g->conn);
		g->conn = NULL;
	}
	conn_open(g, s);
}

void admit_init(struct guestd *g)
{
	uv_timer_init(g->loop, &g->probe_timer);
	g->probe_timer.data = g;
	g->admit_log = (struct vmic_ratelimit)VMIC_RATELIMIT_INIT(
		ADMIT_LOG_INTERVAL_MS);
}

void admit_connection(struct guestd *g, uv_stream_t *s)
{
	struct guest_conn *c = g->conn;
	uint64_t quiet;
	char why[160];

	if (g->stopping) {
		vmic_stream_free(s);
		return;
	}
	if (!c || c->closing || !c->session.established) {
		if (c) {
			log_debug("a new connection replaces one without a "
				  "session");
			conn_close(c);
			g->conn = NULL;
		}
		conn_open(g, s);
		return;
	}
	quiet = uv_now(g->loop) - c->last_rx_ms;
	if (g->pending) {
		admit_refuse(g, s, "another one is already waiting while the "
				   "current host is asked whether it is there");
		return;
	}
	if (quiet < ADMIT_LIVE_MS) {
		snprintf(why, sizeof(why),
			 "the session with %s is alive (last heard %llu ms "
			 "ago)",
			 c->session.peer.software, (unsigned long long)quiet);
		admit_refuse(g, s, why);
		return;
	}
	log_info("a new connection while the host has been silent for %llu "
		 "s: asking the host whether it is there",
		 (unsigned long long)(quiet / 1000));
	g->pending = s;
	conn_send_probe(c);
	uv_timer_start(&g->probe_timer, on_probe_timeout, ADMIT_PROBE_MS, 0);
}

void admit_heard(struct guestd *g, struct guest_conn *c)
{
	uv_stream_t *s = g->pending;

	if (!s || c != g->conn)
		return;
	g->pending = NULL;
	uv_timer_stop(&g->probe_timer);
	admit_refuse(g, s, "the current host answered; it keeps its session");
}

bool admit_conn_closed(struct guestd *g)
{
	uv_stream_t *s = g->pending;

	if (!s)
		return false;
	g->pending = NULL;
	uv_timer_stop(&g->probe_timer);
	conn_open(g, s);
	return true;
}

void admit_stop(struct guestd *g)
{
	if (g->pending)
		vmic_stream_free(g->pending);
	g->pending = NULL;
	uv_close((uv_handle_t *)&g->probe_timer, NULL);
}
