/* SPDX-License-Identifier: MIT */
/*
 * The host's heartbeat and stop state machines on a fake clock.
 *
 * A real vmic-hostd core (the daemon's code, linked as a library: store in
 * a temporary directory, a real connection over a unix socket) talks to a
 * guest played by this test with the real protocol code. Only time is
 * fake: the heartbeat's ticks, the request tracker's deadlines and the
 * stop's timeouts run on a clock the test moves by hand (clock.h), so
 * hours of heartbeats take milliseconds and nothing depends on how busy
 * the machine is.
 */
#include "testutil.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/log.h"
#include "host/ctl-internal.h"
#include "host/hostd.h"
#include "proto/control.h"
#include "proto/frame.h"
#include "proto/hello.h"
#include "proto/services.h"
#include "proto/session.h"
#include "services/heartbeat/heartbeat.h"
#include "services/kvp/host.h"
#include "services/kvp/kvp.h"
#include "services/shutdown/shutdown.h"
#include "services/timesync/timesync.h"

#define T0 1000000000000ull /* the fake clock's start, in us */
#define SEC 1000000ull
#define MAX_FRAMES 64

/* A frame the fake guest received (payload copied). */
struct rframe {
	struct vmic_frame f;
	uint8_t payload[VMIC_KVP_BATCH_MAX];
};

/* The fake guest plays kvp too (setup_kvp), not only heartbeat and
 * shutdown. */
static bool guest_plays_kvp;

struct guest {
	int listen_fd, fd;
	struct vmic_rx rx;
	struct vmic_session s;
	struct rframe got[MAX_FRAMES];
	unsigned ngot;
	char path[108];
};

struct world {
	struct hostd h;
	uv_loop_t loop;
	char *dir;
	struct guest g;
	struct vm *vm;
};

/* ---- the daemon ---- */

static void pump(struct world *w)
{
	for (int i = 0; i < 50; i++)
		if (uv_run(&w->loop, UV_RUN_NOWAIT) == 0)
			break;
}

/* ---- the fake guest ---- */

static int guest_frame(void *ud, const struct vmic_frame *f)
{
	struct guest *g = ud;
	struct rframe *r;

	if (g->ngot == MAX_FRAMES)
		return 0;
	r = &g->got[g->ngot++];
	r->f = *f;
	assert_true(f->length <= sizeof(r->payload));
	memcpy(r->payload, f->payload, f->length);
	r->f.payload = r->payload;
	return 0;
}

/* Read whatever the host sent into g->got. */
static void guest_read(struct world *w)
{
	struct guest *g = &w->g;
	uint8_t buf[65536];
	ssize_t n;

	pump(w);
	while ((n = recv(g->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		assert_int_equal(vmic_rx_feed(&g->rx, buf, (size_t)n,
					      guest_frame, g),
				 0);
}

static void guest_send(struct world *w, const uint8_t *buf, size_t n)
{
	assert_int_equal(send(w->g.fd, buf, n, MSG_NOSIGNAL), (ssize_t)n);
	pump(w);
}

/* Take the first received frame of (service, type); false when none. */
static bool guest_take(struct world *w, uint8_t service, uint8_t type,
		       struct rframe *out)
{
	struct guest *g = &w->g;

	guest_read(w);
	for (unsigned i = 0; i < g->ngot; i++) {
		if (g->got[i].f.service != service || g->got[i].f.type != type)
			continue;
		*out = g->got[i];
		out->f.payload = out->payload;
		memmove(&g->got[i], &g->got[i + 1],
			(g->ngot - i - 1) * sizeof(g->got[0]));
		g->ngot--;
		return true;
	}
	return false;
}

static unsigned guest_count(struct world *w, uint8_t service, uint8_t type)
{
	unsigned n = 0;

	guest_read(w);
	for (unsigned i = 0; i < w->g.ngot; i++)
		n += w->g.got[i].f.service == service &&
		     w->g.got[i].f.type == type;
	return n;
}

static void guest_hello(struct world *w)
{
	uint8_t buf[512];
	int n = vmic_session_hello_frame(&w->g.s, buf, sizeof(buf));

	assert_true(n > 0);
	guest_send(w, buf, (size_t)n);
}

/* Accept the host's connection and run the handshake to the end. */
static void guest_connect(struct world *w)
{
	struct guest *g = &w->g;
	struct vmic_offer offers[VMIC_SVC_COUNT] = { 0 };
	struct rframe r;
	struct vmic_hello h;

	for (int i = 0; i < 200 && g->fd < 0; i++) {
		pump(w);
		g->fd = accept4(g->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (g->fd < 0)
			usleep(1000);
	}
	assert_true(g->fd >= 0);
	vmic_rx_free(&g->rx);
	vmic_rx_init(&g->rx, false);
	g->ngot = 0;
	/* Every service is offered; this guest plays heartbeat, shutdown
	 * and time sync (and KVP when a test asks), so the others are off
	 * in its configuration. */
	for (size_t i = 0; i < vmic_service_count; i++) {
		const struct vmic_service_desc *d = vmic_services[i];
		bool plays = d->id == VMIC_SVC_HEARTBEAT ||
			     d->id == VMIC_SVC_SHUTDOWN ||
			     d->id == VMIC_SVC_TIMESYNC ||
			     (d->id == VMIC_SVC_KVP && guest_plays_kvp);

		offers[d->id] = (struct vmic_offer){
			d->id, d->min_version, d->max_version,
			plays ? VMIC_OFFER_ENABLED : 0
		};
	}
	vmic_session_start(&g->s, VMIC_ROLE_GUEST, 0x1234 + (uint64_t)g->fd,
			   "fake guest", offers);
	guest_hello(w);
	for (int i = 0; i < 10 && !conn_up(w->vm); i++) {
		while (guest_take(w, VMIC_SVC_CONTROL, VMIC_CTL_HELLO, &r)) {
			assert_int_equal(vmic_hello_decode(r.payload,
							   r.f.length, &h),
					 0);
			if (vmic_session_on_hello(&g->s, &h) &
			    VMIC_HELLO_REPLY)
				guest_hello(w);
		}
	}
	assert_true(conn_up(w->vm));
	assert_true(g->s.established);
}

static void guest_disconnect(struct world *w)
{
	close(w->g.fd);
	w->g.fd = -1;
	pump(w);
}

/* Answer a heartbeat request: seq + 1, health OK. */
static void guest_hb_reply(struct world *w, const struct rframe *req)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_HB_REPLY_MAX_LEN];
	struct vmic_hb_reply m = { .health = VMIC_HEALTH_OK };
	uint64_t seq;
	int n;

	assert_int_equal(vmic_hb_request_decode(req->payload, req->f.length,
						&seq),
			 0);
	m.seq = seq + 1;
	n = vmic_hb_reply_encode(&m, buf + VMIC_HDR_SIZE,
				 VMIC_HB_REPLY_MAX_LEN);
	guest_send(w, buf,
		   vmic_frame_seal(buf, VMIC_SVC_HEARTBEAT, VMIC_HB_REPLY,
				   VMIC_F_REPLY, req->f.request_id, 0,
				   (size_t)n));
}

/* Answer every heartbeat request received so far; how many. */
static unsigned guest_answer_heartbeats(struct world *w)
{
	struct rframe r;
	unsigned n = 0;

	while (guest_take(w, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST, &r)) {
		guest_hb_reply(w, &r);
		n++;
	}
	return n;
}

/* ---- what the host shows ---- */

static const char *hb_state(struct world *w)
{
	static char state[64];
	json_t *o = service_json(w->vm, VMIC_SVC_HEARTBEAT);

	snprintf(state, sizeof(state), "%s",
		 json_string_value(json_object_get(o, "state")));
	json_decref(o);
	return state;
}

static const char *primary(struct world *w, uint8_t id)
{
	static char st[64];
	json_t *o = service_json(w->vm, id);

	snprintf(st, sizeof(st), "%s",
		 json_string_value(json_object_get(o, "primary_status")));
	json_decref(o);
	return st;
}

/* Every event published so far, newest last (the daemon's ring of
 * recent events, which `events --follow` catches up from). */
static const struct event *event_at(struct world *w, uint64_t seq)
{
	const struct event *e = w->h.ev_ring[seq % EVENTS_RING];

	return e && e->seq == seq ? e : NULL;
}

/* An event of `kind` whose message contains `text` was published. */
static bool has_event(struct world *w, const char *kind, const char *text)
{
	pump(w);
	for (uint64_t s = 1; s <= w->h.ev_seq; s++) {
		const struct event *e = event_at(w, s);

		if (e && strcmp(e->kind, kind) == 0 && strstr(e->message, text))
			return true;
	}
	return false;
}

static bool any_event_to(struct world *w, const char *to)
{
	pump(w);
	for (uint64_t s = 1; s <= w->h.ev_seq; s++) {
		const struct event *e = event_at(w, s);

		if (e && e->to && strcmp(e->to, to) == 0)
			return true;
	}
	return false;
}

/* ---- setup ---- */

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char uri[160];
	struct vmic_channel ch;
	char err[256];

	log_init("test-host-machines", LOG_TARGET_STDERR);
	log_set_max_level(LOG_WARNING);
	w->dir = tu_mkdtemp();
	assert_int_equal(uv_loop_init(&w->loop), 0);
	w->h.loop = &w->loop;
	assert_int_equal(hostd_config_defaults(&w->h.cfg), 0);
	snprintf(w->h.cfg.state_dir, sizeof(w->h.cfg.state_dir), "%s",
		 w->dir);
	w->h.cfg.retry_min_ms = 10;
	w->h.cfg.retry_max_ms = 20;
	clock_fake_enable(&w->h, T0);
	assert_int_equal(services_daemon_start(&w->h), 0);
	assert_int_equal(store_open(&w->h), 0);
	events_init(&w->h);
	assert_int_equal(store_start(&w->h), 0);

	w->g.fd = -1;
	snprintf(w->g.path, sizeof(w->g.path), "%s/g.sock", w->dir);
	w->g.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", w->g.path);
	assert_int_equal(bind(w->g.listen_fd, (struct sockaddr *)&sa,
			      sizeof(sa)),
			 0);
	assert_int_equal(listen(w->g.listen_fd, 4), 0);
	vmic_rx_init(&w->g.rx, false);

	snprintf(uri, sizeof(uri), "unix:%s", w->g.path);
	assert_int_equal(vm_channel_parse(uri, &ch, err, sizeof(err)), 0);
	w->vm = vm_new(&w->h, "vm1");
	assert_non_null(w->vm);
	w->vm->channel = ch;
	vmic_channel_format(&ch, w->vm->channel_uri,
			    sizeof(w->vm->channel_uri));
	/* In the registry only: the store is not what this test is about. */
	assert_int_equal(vm_register(&w->h, w->vm), 0);
	conn_start(w->vm);
	guest_connect(w);
	*state = w;
	return 0;
}

static int setup_kvp(void **state)
{
	guest_plays_kvp = true;
	return setup(state);
}

static int teardown(void **state)
{
	struct world *w = *state;

	guest_plays_kvp = false;
	w->h.stopping = true;
	while (w->h.nvms > 0)
		vm_destroy(w->h.vms[w->h.nvms - 1], DETACH_STOPPING);
	clock_fake_advance(&w->h, 0);
	events_close(&w->h);
	store_stop(&w->h);
	services_daemon_stop(&w->h);
	if (w->g.fd >= 0)
		close(w->g.fd);
	close(w->g.listen_fd);
	vmic_rx_free(&w->g.rx);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&w->loop), 0);
	store_close(&w->h);
	free(w->h.vms);
	hostd_config_free(&w->h.cfg);
	tu_rmtree(w->dir); /* frees it */
	free(w);
	return 0;
}

/* Move the fake clock, then let the loop deliver what that caused. */
static void advance(struct world *w, uint64_t us)
{
	clock_fake_advance(&w->h, us);
	pump(w);
}

/* ---- heartbeat ---- */

/* The first request comes at once; its answer makes the heartbeat OK. */
static void test_first_reply_is_ok(void **state)
{
	struct world *w = *state;

	assert_string_equal(hb_state(w), "No Contact");
	assert_int_equal(guest_answer_heartbeats(w), 1);
	assert_string_equal(hb_state(w), "OK");
	assert_true(has_event(w, "heartbeat", "first heartbeat reply"));
}

/*
 * A guest that stops answering: after `threshold` (3) missed intervals,
 * Lost Communication; never more than one request waits meanwhile; the
 * late answer brings OK back and the next tick asks again.
 */
static void test_lost_after_threshold_no_pileup(void **state)
{
	struct world *w = *state;

	guest_answer_heartbeats(w);
	assert_string_equal(hb_state(w), "OK");
	advance(w, 1 * SEC); /* at most the first, random tick */
	advance(w, 1 * SEC);
	assert_int_equal(guest_count(w, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST),
			 1);
	for (int i = 0; i < 10 && strcmp(hb_state(w), "OK") == 0; i++)
		advance(w, 1 * SEC);
	assert_string_equal(hb_state(w), "Lost Communication");
	assert_true(has_event(w, "heartbeat", "no reply to 3 heartbeats"));
	advance(w, 20 * SEC);
	/* Twenty more intervals: still the one request, no pile-up. */
	assert_int_equal(guest_count(w, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST),
			 1);
	assert_int_equal(w->vm->req.t.count, 1);
	assert_int_equal(guest_answer_heartbeats(w), 1);
	assert_string_equal(hb_state(w), "OK");
	assert_true(has_event(w, "heartbeat", "heartbeat replies resumed"));
	advance(w, 1 * SEC);
	assert_int_equal(guest_count(w, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST),
			 1);
}

/* The fake time at which the next request leaves, in 10 ms steps. */
static uint64_t next_request_time(struct world *w)
{
	for (int i = 0; i < 1000; i++) {
		if (guest_count(w, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST) > 0)
			return hostd_now_us(&w->h);
		advance(w, 10000);
	}
	fail_msg("no heartbeat request in 10 s");
	return 0;
}

/*
 * Ticks keep their phase: a loop that is busy for 2.5 intervals fires the
 * ticks it owes late, but the next one after that falls on the original
 * grid, not one interval after the late firing.
 */
static void test_ticks_keep_their_phase(void **state)
{
	struct world *w = *state;
	uint64_t t1, t2, t3, every = 1 * SEC;

	guest_answer_heartbeats(w);
	t1 = next_request_time(w);
	guest_answer_heartbeats(w);
	t2 = next_request_time(w);
	assert_int_equal(t2 - t1, every);
	guest_answer_heartbeats(w);
	clock_fake_stall(&w->h, every * 5 / 2); /* busy elsewhere */
	advance(w, 0);                          /* late tick fires */
	guest_answer_heartbeats(w);
	t3 = next_request_time(w);
	assert_int_equal((t3 - t2) % every, 0);
}

/* A new interval applies at once. */
static void test_interval_setting(void **state)
{
	struct world *w = *state;
	json_t *values = json_pack("{s:s}", "interval", "250ms");
	uint32_t mask;
	void *now;
	char err[256];
	uint64_t t1, t2;

	guest_answer_heartbeats(w);
	assert_int_equal(settings_parse(w->vm, VMIC_SVC_HEARTBEAT, values,
					true, &now, &mask, err, sizeof(err)),
			 0);
	json_decref(values);
	free(w->vm->svc[VMIC_SVC_HEARTBEAT].settings);
	w->vm->svc[VMIC_SVC_HEARTBEAT].settings = now;
	host_service_get(VMIC_SVC_HEARTBEAT)->settings_changed(w->vm);
	t1 = next_request_time(w);
	guest_answer_heartbeats(w);
	t2 = next_request_time(w);
	assert_int_equal(t2 - t1, 250000);
}

/* A member of the socket group may lengthen the interval, but shorten
 * it (more load) only down to the daemon's value; root may go lower. */
static void test_interval_group_floor(void **state)
{
	struct world *w = *state;
	json_t *fast = json_pack("{s:s}", "interval", "250ms");
	json_t *slow = json_pack("{s:s}", "interval", "2s");
	uint32_t mask;
	void *now;
	char err[512];

	assert_int_equal(settings_parse(w->vm, VMIC_SVC_HEARTBEAT, fast,
					false, &now, &mask, err, sizeof(err)),
			 -EPERM);
	assert_null(now);
	assert_non_null(strstr(err, "1s..1h"));
	assert_non_null(strstr(err, "[heartbeat] interval"));
	assert_int_equal(settings_parse(w->vm, VMIC_SVC_HEARTBEAT, slow,
					false, &now, &mask, err, sizeof(err)),
			 0);
	free(now);
	assert_int_equal(settings_parse(w->vm, VMIC_SVC_HEARTBEAT, fast,
					true, &now, &mask, err, sizeof(err)),
			 0);
	free(now);
	json_decref(fast);
	json_decref(slow);
}

/* ---- stop ---- */

/* Run `vmic stop` as the control socket would, with no client to hear
 * the reply: the outcome is read from the events. */
static void stop(struct world *w, const char *json)
{
	struct ctl_request *rq = calloc(1, sizeof(*rq));
	json_t *args = json_loads(json, 0, NULL);

	assert_non_null(args);
	rq->h = &w->h;
	ctl_command_find("stop")->run(rq, w->vm, args);
	json_decref(args);
}

static void guest_sd_accept(struct world *w, const struct rframe *req)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_SD_REPLY_MAX_LEN];
	struct vmic_sd_reply m = { .status = 0 };
	int n;

	snprintf(m.message, sizeof(m.message), "running poweroff");
	n = vmic_sd_reply_encode(&m, buf + VMIC_HDR_SIZE,
				 VMIC_SD_REPLY_MAX_LEN);
	guest_send(w, buf,
		   vmic_frame_seal(buf, VMIC_SVC_SHUTDOWN, VMIC_SD_REPLY,
				   VMIC_F_REPLY, req->f.request_id, 0,
				   (size_t)n));
}

/* The guest never answers: the request's own deadline ends the stop. */
static void test_stop_request_times_out(void **state)
{
	struct world *w = *state;
	struct rframe r;

	guest_answer_heartbeats(w);
	stop(w, "{\"timeout_ms\": 30000}");
	assert_true(guest_take(w, VMIC_SVC_SHUTDOWN, VMIC_SD_REQUEST, &r));
	advance(w, 29 * SEC);
	assert_false(has_event(w, "shutdown", "stop failed"));
	advance(w, 2 * SEC);
	assert_true(has_event(w, "shutdown", "no answer from the guest after "
					     "30000ms"));
	assert_true(has_event(w, "shutdown", "stop failed (timeout)"));
	assert_int_equal(w->vm->req.t.count <= 1, true); /* a heartbeat only */
}

/* Accepted, then the command fails: the late error ends it at once. */
static void test_stop_late_error(void **state)
{
	struct world *w = *state;
	uint8_t buf[VMIC_HDR_SIZE + VMIC_ERROR_MAX_LEN];
	struct rframe r;

	guest_answer_heartbeats(w);
	stop(w, "{\"timeout_ms\": 60000}");
	assert_true(guest_take(w, VMIC_SVC_SHUTDOWN, VMIC_SD_REQUEST, &r));
	guest_sd_accept(w, &r);
	assert_true(has_event(w, "shutdown", "guest accepted"));
	guest_send(w, buf,
		   vmic_error_frame(buf, VMIC_SVC_SHUTDOWN, r.f.request_id,
				    VMIC_E_FAILED,
				    "shutdown command 'poweroff' failed: exit "
				    "status 3"));
	assert_true(has_event(w, "shutdown", "stop failed (failed)"));
	assert_true(has_event(w, "shutdown", "exit status 3"));
	assert_string_equal(hb_state(w), "OK");
}

/*
 * An orderly poweroff: silence is expected, so the heartbeat and every
 * service read No Contact, never Lost Communication, even when the
 * guest's answers stop long before the channel closes.
 */
static void test_stop_is_never_lost(void **state)
{
	struct world *w = *state;
	struct rframe r;

	guest_answer_heartbeats(w);
	stop(w, "{\"timeout_ms\": 60000}");
	assert_true(guest_take(w, VMIC_SVC_SHUTDOWN, VMIC_SD_REQUEST, &r));
	guest_sd_accept(w, &r);
	advance(w, 10 * SEC); /* the guest shuts down, answers nothing */
	assert_string_equal(hb_state(w), "No Contact");
	guest_disconnect(w);
	close(w->g.listen_fd); /* the VM is gone: reconnects fail */
	w->g.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	unlink(w->g.path);
	for (int i = 0; i < 100 && !has_event(w, "shutdown", "stop finished");
	     i++) {
		usleep(5000);
		pump(w);
	}
	assert_true(has_event(w, "shutdown", "VM gone"));
	assert_true(has_event(w, "shutdown", "stop finished: stopped"));
	assert_string_equal(hb_state(w), "No Contact");
	assert_string_equal(primary(w, VMIC_SVC_SHUTDOWN), "No Contact");
	assert_false(any_event_to(w, "Lost Communication"));
}

/*
 * `vmic set --power-off` while a qmp: power-off is under way frees the
 * VM's string; the operation must have its own copy (the failure names
 * the socket it tried, and ASan sees no use after free).
 */
static void test_power_off_keeps_its_path(void **state)
{
	struct world *w = *state;
	char old[200];

	snprintf(old, sizeof(old), "qmp:%s/no-such-qmp.sock", w->dir);
	w->vm->power_off = strdup(old);
	stop(w, "{\"turn_off\": true}");
	free(w->vm->power_off); /* what `vmic set --power-off` does */
	w->vm->power_off = strdup("qmp:/elsewhere/other.sock");
	for (int i = 0; i < 100 && !has_event(w, "shutdown", "stop failed");
	     i++)
		pump(w);
	assert_true(has_event(w, "shutdown", "no-such-qmp.sock"));
	assert_false(has_event(w, "shutdown", "/elsewhere/other.sock"));
}


/* ---- timesync ---- */

/* The guest's SAMPLE requests, n of them at once. */
static void guest_send_samples(struct world *w, unsigned n)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_TS_SAMPLE_LEN];

	for (unsigned i = 0; i < n; i++) {
		vmic_ts_sample_encode(1000 + i, buf + VMIC_HDR_SIZE,
				      VMIC_TS_SAMPLE_LEN);
		guest_send(w, buf,
			   vmic_frame_seal(buf, VMIC_SVC_TIMESYNC,
					   VMIC_TS_SAMPLE, 0, 100 + i, 0,
					   VMIC_TS_SAMPLE_LEN));
	}
}

static int64_t ts_member(struct world *w, const char *key)
{
	json_t *o = service_json(w->vm, VMIC_SVC_TIMESYNC);
	int64_t v = json_integer_value(json_object_get(o, key));

	json_decref(o);
	return v;
}

/* The host sends its settings when the session comes up. */
static void test_ts_settings_at_start(void **state)
{
	struct world *w = *state;
	struct vmic_ts_settings m;
	struct rframe r;

	assert_true(guest_take(w, VMIC_SVC_TIMESYNC, VMIC_TS_SETTINGS, &r));
	assert_int_equal(vmic_ts_settings_decode(r.payload, r.f.length, &m), 0);
	assert_int_equal(m.policy, VMIC_TS_POLICY_AUTO);
	assert_int_equal(m.step_threshold_ms, 128);
	assert_int_equal(m.flags, 0);
}

/*
 * A guest flooding SAMPLEs gets at most the bucket (32) answered at once
 * and 16 more per second; the rest are dropped and counted.
 */
static void test_ts_requests_bounded(void **state)
{
	struct world *w = *state;

	guest_answer_heartbeats(w);
	guest_send_samples(w, 50);
	assert_int_equal(guest_count(w, VMIC_SVC_TIMESYNC,
				     VMIC_TS_SAMPLE_REPLY),
			 32);
	assert_int_equal(ts_member(w, "samples_dropped"), 18);
	clock_fake_stall(&w->h, 1 * SEC);
	guest_send_samples(w, 50);
	assert_int_equal(guest_count(w, VMIC_SVC_TIMESYNC,
				     VMIC_TS_SAMPLE_REPLY),
			 32 + 16);
	assert_int_equal(ts_member(w, "samples_answered"), 48);
	assert_int_equal(ts_member(w, "samples_dropped"), 18 + 34);
}

/* A reply to SAMPLE carries t1 back and the host's times around it. */
static void test_ts_sample_reply(void **state)
{
	struct world *w = *state;
	struct vmic_ts_reply m;
	struct rframe r;

	guest_send_samples(w, 1);
	assert_true(guest_take(w, VMIC_SVC_TIMESYNC, VMIC_TS_SAMPLE_REPLY,
			       &r));
	assert_int_equal(r.f.request_id, 100);
	assert_true(r.f.flags & VMIC_F_REPLY);
	assert_int_equal(vmic_ts_reply_decode(r.payload, r.f.length, &m), 0);
	assert_int_equal(m.t1, 1000);
	assert_int_equal(m.t2, (int64_t)hostd_now_us(&w->h) * 1000);
	assert_true(m.t3 >= m.t2);
}

/*
 * The heartbeat hears the guest again after a silence of several
 * intervals on a live channel (a paused VM): the host asks for a sync
 * (reason resume) at once. A short silence asks for nothing.
 */
static void test_ts_resume_asks_sync(void **state)
{
	struct world *w = *state;
	struct vmic_ts_sync m;
	struct rframe r;

	guest_answer_heartbeats(w);
	(void)next_request_time(w);
	advance(w, 1200000); /* one interval missed: 1.2 s */
	guest_answer_heartbeats(w);
	assert_false(guest_take(w, VMIC_SVC_TIMESYNC, VMIC_TS_SYNC, &r));
	(void)next_request_time(w);
	advance(w, 10 * SEC); /* paused for 10 s */
	assert_false(guest_take(w, VMIC_SVC_TIMESYNC, VMIC_TS_SYNC, &r));
	guest_answer_heartbeats(w);
	assert_true(guest_take(w, VMIC_SVC_TIMESYNC, VMIC_TS_SYNC, &r));
	assert_int_equal(vmic_ts_sync_decode(r.payload, r.f.length, &m), 0);
	assert_int_equal(m.reason, VMIC_TS_REASON_RESUME);
	assert_int_equal(m.flags, 0); /* step-backward is off */
	assert_true(has_event(w, "timesync", "paused?"));
}

/* ---- kvp ---- */

/* Answer a KVP request with an ACK. */
static void guest_kvp_ack(struct world *w, const struct rframe *req)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_KVP_ACK_MAX_LEN];
	struct vmic_kvp_ack a = { .status = VMIC_KVP_OK };
	int n = vmic_kvp_ack_encode(&a, buf + VMIC_HDR_SIZE,
				    VMIC_KVP_ACK_MAX_LEN);

	guest_send(w, buf,
		   vmic_frame_seal(buf, VMIC_SVC_KVP, VMIC_KVP_ACK,
				   VMIC_F_REPLY, req->f.request_id, 0,
				   (size_t)n));
}

/* Take the next KVP request (IDENTITY or a batch); false when none. */
static bool guest_take_kvp(struct world *w, struct rframe *r)
{
	return guest_take(w, VMIC_SVC_KVP, VMIC_KVP_IDENTITY, r) ||
	       guest_take(w, VMIC_SVC_KVP, VMIC_KVP_SET, r) ||
	       guest_take(w, VMIC_SVC_KVP, VMIC_KVP_DELETE, r);
}

/* 1,000 records of 2 KiB in the VM's External pool. */
static void fill_external(struct world *w)
{
	struct kvp_vm *kv = kvp_of(w->vm);
	char key[16], value[2000];

	memset(value, 'v', sizeof(value));
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "key-%04d", i);
		assert_true(kvp_table_set(&kv->pools[VMIC_KVP_EXTERNAL], key,
					  strlen(key), value, sizeof(value), 0,
					  NULL, NULL) >= 0);
	}
}

/*
 * A copy of 2 MB goes out a window at a time: never more than
 * VMIC_KVP_WINDOW requests unanswered, the next only after an answer,
 * and the heartbeat keeps its interval throughout.
 */
static void test_kvp_copy_is_paced(void **state)
{
	struct world *w = *state;
	struct kvp_vm *kv = kvp_of(w->vm);
	size_t records = 0;
	bool ended = false;
	struct rframe r;
	int rounds = 0;

	fill_external(w);
	guest_answer_heartbeats(w);
	while (guest_take_kvp(w, &r))
		guest_kvp_ack(w, &r); /* the session's start, pools empty */
	kvp_sync_up(kv);
	while (!ended) {
		struct rframe got[VMIC_KVP_WINDOW + 1];
		unsigned n = 0;

		assert_true(++rounds < 1000);
		while (n < ARRAY_SIZE(got) && guest_take_kvp(w, &got[n]))
			n++;
		assert_true(n > 0);
		assert_true(n <= VMIC_KVP_WINDOW);
		/* Nothing more comes until one is answered. */
		assert_false(guest_take_kvp(w, &r));
		for (unsigned i = 0; i < n; i++) {
			struct vmic_kvp_batch b;

			if (got[i].f.type != VMIC_KVP_IDENTITY) {
				assert_int_equal(vmic_kvp_batch_decode(
							 got[i].f.type,
							 got[i].payload,
							 got[i].f.length, &b),
						 0);
				if (b.pool == VMIC_KVP_EXTERNAL) {
					records += b.count;
					ended = ended ||
						(b.flags & VMIC_KVP_F_END);
				}
			}
			guest_kvp_ack(w, &got[i]);
		}
		/* The heartbeat goes on while the copy runs. */
		advance(w, 100000);
		guest_answer_heartbeats(w);
		assert_string_equal(hb_state(w), "OK");
	}
	assert_int_equal(records, 1000);
	assert_true(kv->copy_ms >= 0);
	assert_int_equal(kv->copy_records, 1000);
}

/* Batches the guest leaves unanswered make the copy start over once
 * their deadline passed, and no more than the window ever waits. */
static void test_kvp_unanswered_starts_over(void **state)
{
	struct world *w = *state;
	struct rframe r;
	unsigned first = 0, again = 0;

	fill_external(w);
	guest_answer_heartbeats(w);
	while (guest_take_kvp(w, &r))
		guest_kvp_ack(w, &r);
	kvp_sync_up(kvp_of(w->vm));
	while (guest_take_kvp(w, &r))
		first++;
	assert_int_equal(first, VMIC_KVP_WINDOW);
	for (int i = 0; i < 59; i++) {
		advance(w, SEC);
		guest_answer_heartbeats(w);
	}
	assert_false(guest_take_kvp(w, &r));
	advance(w, 2 * SEC);
	while (guest_take_kvp(w, &r)) {
		struct vmic_kvp_batch b;

		if (r.f.type == VMIC_KVP_SET &&
		    vmic_kvp_batch_decode(r.f.type, r.payload, r.f.length,
					  &b) == 0 &&
		    (b.flags & VMIC_KVP_F_BEGIN))
			again++;
	}
	/* One new copy of each pool (3 and 0), not one per lost batch. */
	assert_int_equal(again, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_first_reply_is_ok, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_lost_after_threshold_no_pileup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ticks_keep_their_phase,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_interval_setting, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_interval_group_floor,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_request_times_out,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_late_error, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_stop_is_never_lost, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kvp_copy_is_paced,
						setup_kvp, teardown),
		cmocka_unit_test_setup_teardown(
			test_kvp_unanswered_starts_over, setup_kvp, teardown),
		cmocka_unit_test_setup_teardown(test_power_off_keeps_its_path,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_ts_settings_at_start,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_ts_requests_bounded,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_ts_sample_reply, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ts_resume_asks_sync,
						setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
