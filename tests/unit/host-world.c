/* SPDX-License-Identifier: MIT */
/* The host test world (host-world.h). */
#include "host-world.h"

#include "services/heartbeat/heartbeat.h"

void world_pump(struct world *w)
{
	for (int i = 0; i < 50; i++)
		if (uv_run(&w->loop, UV_RUN_NOWAIT) == 0)
			break;
}

void world_advance(struct world *w, uint64_t us)
{
	clock_fake_advance(&w->h, us);
	world_pump(w);
}

/* ---- the fake guest ---- */

static int guest_frame(void *ud, const struct vmic_frame *f)
{
	struct guest *g = ud;
	struct rframe *r;

	if (g->ngot == WORLD_MAX_FRAMES)
		return 0;
	r = &g->got[g->ngot++];
	r->f = *f;
	assert_true(f->length <= sizeof(r->payload));
	memcpy(r->payload, f->payload, f->length);
	r->f.payload = r->payload;
	return 0;
}

void guest_read(struct world *w)
{
	struct guest *g = &w->g;
	uint8_t buf[65536];
	ssize_t n;

	world_pump(w);
	while ((n = recv(g->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		assert_int_equal(vmic_rx_feed(&g->rx, buf, (size_t)n,
					      guest_frame, g),
				 0);
}

void guest_send(struct world *w, const uint8_t *buf, size_t n)
{
	assert_int_equal(send(w->g.fd, buf, n, MSG_NOSIGNAL), (ssize_t)n);
	world_pump(w);
}

bool guest_take(struct world *w, uint8_t service, uint8_t type,
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

unsigned guest_count(struct world *w, uint8_t service, uint8_t type)
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

void guest_connect(struct world *w)
{
	struct guest *g = &w->g;
	struct vmic_offer offers[VMIC_SVC_COUNT] = { 0 };
	struct rframe r;
	struct vmic_hello h;

	for (int i = 0; i < 200 && g->fd < 0; i++) {
		world_pump(w);
		g->fd = accept4(g->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (g->fd < 0)
			usleep(1000);
	}
	assert_true(g->fd >= 0);
	vmic_rx_free(&g->rx);
	vmic_rx_init(&g->rx, false);
	g->ngot = 0;
	/* Every service is offered; those the fake guest plays are
	 * enabled, the others off in its configuration. */
	for (size_t i = 0; i < vmic_service_count; i++) {
		const struct vmic_service_desc *d = vmic_services[i];
		bool plays;

		if (d->id >= VMIC_SVC_COUNT)
			continue;
		plays = g->plays & (1u << d->id);
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

void guest_disconnect(struct world *w)
{
	close(w->g.fd);
	w->g.fd = -1;
	world_pump(w);
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

unsigned world_answer_heartbeats(struct world *w)
{
	struct rframe r;
	unsigned n = 0;

	while (guest_take(w, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST, &r)) {
		guest_hb_reply(w, &r);
		n++;
	}
	return n;
}

uint64_t world_next_heartbeat(struct world *w)
{
	/* Slot by slot: timers fire at slot ends, so this is exact. */
	for (uint64_t t = 0; t < 10 * 1000000; t += HCLOCK_SLOT_US) {
		if (guest_count(w, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST) > 0)
			return hostd_now_us(&w->h);
		world_advance(w, HCLOCK_SLOT_US);
	}
	fail_msg("no heartbeat request in 10 s");
	return 0;
}

/* ---- what the host shows ---- */

const char *world_service_string(struct world *w, uint8_t id,
				 const char *key)
{
	static char value[256];
	json_t *o = service_json(w->vm, id);

	snprintf(value, sizeof(value), "%s",
		 json_string_value(json_object_get(o, key)));
	json_decref(o);
	return value;
}

int64_t world_service_int(struct world *w, uint8_t id, const char *key)
{
	json_t *o = service_json(w->vm, id);
	int64_t v = json_integer_value(json_object_get(o, key));

	json_decref(o);
	return v;
}

/* A published event by its sequence number (the daemon's ring of recent
 * events, which `events --follow` catches up from). */
static const struct event *event_at(struct world *w, uint64_t seq)
{
	const struct event *e = w->h.ev_ring[seq % EVENTS_RING];

	return e && e->seq == seq ? e : NULL;
}

bool world_has_event(struct world *w, const char *kind, const char *text)
{
	world_pump(w);
	for (uint64_t s = 1; s <= w->h.ev_seq; s++) {
		const struct event *e = event_at(w, s);

		if (e && strcmp(e->kind, kind) == 0 && strstr(e->message, text))
			return true;
	}
	return false;
}

bool world_any_event_to(struct world *w, const char *to)
{
	world_pump(w);
	for (uint64_t s = 1; s <= w->h.ev_seq; s++) {
		const struct event *e = event_at(w, s);

		if (e && e->to && strcmp(e->to, to) == 0)
			return true;
	}
	return false;
}

void world_command(struct world *w, const char *name, const char *json)
{
	struct ctl_request *rq = calloc(1, sizeof(*rq));
	json_t *args = json_loads(json, 0, NULL);

	assert_non_null(args);
	rq->h = &w->h;
	ctl_command_find(name)->run(rq, w->vm, args);
	json_decref(args);
}

/* ---- setup ---- */

int world_setup_plays(void **state, uint32_t plays)
{
	struct world *w = calloc(1, sizeof(*w));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char uri[160];
	struct vmic_channel ch;
	char err[256];

	log_init("test-host", LOG_TARGET_STDERR);
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
	w->g.plays = plays;
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
	/* In the registry only: the store is not what these tests are
	 * about. */
	assert_int_equal(vm_register(&w->h, w->vm), 0);
	conn_start(w->vm);
	guest_connect(w);
	*state = w;
	return 0;
}

int world_setup(void **state)
{
	return world_setup_plays(state, WORLD_PLAYS_DEFAULT);
}

int world_teardown(void **state)
{
	struct world *w = *state;

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
