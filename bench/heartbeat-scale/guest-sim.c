/* SPDX-License-Identifier: MIT */
/*
 * guest-sim: many simulated guest agents in one process, for the
 * heartbeat-scale benchmark. Each simulated guest listens on its own unix
 * socket (DIR/vm-NNNNN.sock), and speaks the real protocol through
 * src/proto and src/transport: hello handshake, guest info, heartbeat
 * replies. It does nothing else, so the benchmark measures vmic-hostd.
 *
 *   guest-sim DIR FIRST COUNT [FLAP_MS]
 *
 * Its KVP pools are empty: the host's requests of that service are
 * acknowledged and nothing is sent back.
 *
 * prints "ready" on stdout once every socket listens, and runs until
 * SIGTERM. With FLAP_MS, each guest starts a new session (a hello with a
 * new nonce, as an agent restart would) every FLAP_MS: the loop-latency
 * benchmark fills the event log this way, through the daemon.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/random.h"
#include "proto/control.h"
#include "proto/frame.h"
#include "services/heartbeat/heartbeat.h"
#include "services/kvp/kvp.h"
#include "proto/services.h"
#include "proto/session.h"
#include "transport/link.h"
#include "transport/transport.h"

struct simvm {
	struct vmic_listener *listener;
	struct vmic_link link;
	struct vmic_session session;
	bool connected;
	unsigned index;
	uv_timer_t flap;
};

static uv_loop_t *loop;
static unsigned flap_ms;
static struct vmic_offer offers[VMIC_SVC_COUNT];

static void sim_send(struct simvm *vm, const uint8_t *buf, size_t len)
{
	vmic_link_send(&vm->link, buf, len, 0);
}

static void sim_send_hello(struct simvm *vm)
{
	uint8_t buf[512];
	int n = vmic_session_hello_frame(&vm->session, buf, sizeof(buf));

	if (n > 0)
		sim_send(vm, buf, (size_t)n);
}

static void sim_send_info(struct simvm *vm)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_INFO_MAX_LEN];
	struct vmic_info info = { .uptime_ms = 1000 };
	int n;

	snprintf(info.hostname, sizeof(info.hostname), "sim%05u", vm->index);
	snprintf(info.os_name, sizeof(info.os_name), "guest-sim");
	snprintf(info.kernel_release, sizeof(info.kernel_release), "0.0");
	n = vmic_info_encode(&info, buf + VMIC_HDR_SIZE, VMIC_INFO_MAX_LEN);
	if (n > 0)
		sim_send(vm, buf,
			 vmic_frame_seal(buf, VMIC_SVC_CONTROL, VMIC_CTL_INFO,
					 0, 1, 0, (size_t)n));
}

static void sim_on_hello(struct simvm *vm, const struct vmic_frame *f)
{
	struct vmic_hello h;
	int r;

	if (vmic_hello_decode(f->payload, f->length, &h) < 0)
		return;
	r = vmic_session_on_hello(&vm->session, &h);
	if (r < 0)
		return;
	if (r & VMIC_HELLO_REPLY)
		sim_send_hello(vm);
	if (r & VMIC_HELLO_UP)
		sim_send_info(vm);
}

static void sim_on_heartbeat(struct simvm *vm, const struct vmic_frame *f)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_HB_REPLY_MAX_LEN];
	struct vmic_hb_reply reply = { .health = VMIC_HEALTH_OK };
	uint64_t seq;
	int n;

	if (vmic_hb_request_decode(f->payload, f->length, &seq) < 0)
		return;
	reply.seq = seq + 1;
	n = vmic_hb_reply_encode(&reply, buf + VMIC_HDR_SIZE,
				 VMIC_HB_REPLY_MAX_LEN);
	if (n > 0)
		sim_send(vm, buf,
			 vmic_frame_seal(buf, VMIC_SVC_HEARTBEAT, VMIC_HB_REPLY,
					 VMIC_F_REPLY, f->request_id, 0,
					 (size_t)n));
}

/* A KVP request of the host: taken, nothing kept. */
static void sim_on_kvp(struct simvm *vm, const struct vmic_frame *f)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_KVP_ACK_MAX_LEN];
	struct vmic_kvp_ack a = { .status = VMIC_KVP_OK };
	int n;

	if (!vmic_frame_is_request(f))
		return;
	n = vmic_kvp_ack_encode(&a, buf + VMIC_HDR_SIZE, VMIC_KVP_ACK_MAX_LEN);
	if (n > 0)
		sim_send(vm, buf,
			 vmic_frame_seal(buf, VMIC_SVC_KVP, VMIC_KVP_ACK,
					 VMIC_F_REPLY, f->request_id, 0,
					 (size_t)n));
}

static int sim_on_frame(void *ud, const struct vmic_frame *f)
{
	struct simvm *vm = ud;

	if (vmic_msg_check(f, VMIC_DIR_H2G))
		return 0;
	if (f->service == VMIC_SVC_CONTROL && f->type == VMIC_CTL_HELLO)
		sim_on_hello(vm, f);
	else if (vm->session.established && f->service == VMIC_SVC_HEARTBEAT &&
		 f->type == VMIC_HB_REQUEST)
		sim_on_heartbeat(vm, f);
	else if (vm->session.established && f->service == VMIC_SVC_KVP)
		sim_on_kvp(vm, f);
	return 0;
}

static void sim_on_close(void *ud, int reason)
{
	struct simvm *vm = ud;

	(void)reason;
	vm->connected = false;
}

static const struct vmic_link_ops sim_ops = {
	.on_frame = sim_on_frame,
	.on_close = sim_on_close,
};

static void sim_accept(void *ud, uv_stream_t *stream)
{
	struct simvm *vm = ud;

	if (vm->connected) {
		vmic_stream_free(stream); /* one host connection at a time */
		return;
	}
	if (vmic_link_open(&vm->link, stream, true, &sim_ops, vm) < 0)
		return;
	vm->connected = true;
	vmic_session_start(&vm->session, VMIC_ROLE_GUEST, vmic_random_u64(),
			   "guest-sim", offers);
	sim_send_hello(vm);
}

static void on_flap(uv_timer_t *t)
{
	struct simvm *vm = t->data;

	if (!vm->connected)
		return;
	vmic_session_start(&vm->session, VMIC_ROLE_GUEST, vmic_random_u64(),
			   "guest-sim", offers);
	sim_send_hello(vm);
}

static void on_sigterm(uv_signal_t *s, int signo)
{
	(void)signo;
	uv_stop(s->loop);
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	unsigned first, count;
	struct simvm *vms;
	uv_signal_t sig;
	char err[256];

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: guest-sim DIR FIRST COUNT [FLAP_MS]\n");
		return 2;
	}
	if (argc == 5)
		flap_ms = (unsigned)strtoul(argv[4], NULL, 10);
	first = (unsigned)strtoul(argv[2], NULL, 10);
	count = (unsigned)strtoul(argv[3], NULL, 10);
	raise_fd_limit();
	signal(SIGPIPE, SIG_IGN);
	loop = uv_default_loop();
	for (size_t i = 0; i < vmic_service_count; i++)
		offers[vmic_services[i]->id] = (struct vmic_offer){
			vmic_services[i]->id, vmic_services[i]->min_version,
			vmic_services[i]->max_version, VMIC_OFFER_ENABLED
		};
	vms = calloc(count, sizeof(*vms));
	if (!vms)
		return 1;
	for (unsigned i = 0; i < count; i++) {
		struct vmic_channel ch = { .kind = VMIC_CH_UNIX_LISTEN };

		vms[i].index = first + i;
		snprintf(ch.path, sizeof(ch.path), "%s/vm-%05u.sock", argv[1],
			 first + i);
		if (vmic_listen(loop, &ch, NULL, sim_accept, &vms[i],
				&vms[i].listener, err, sizeof(err)) < 0) {
			fprintf(stderr, "guest-sim: %s\n", err);
			return 1;
		}
		if (flap_ms) {
			uv_timer_init(loop, &vms[i].flap);
			vms[i].flap.data = &vms[i];
			uv_timer_start(&vms[i].flap, on_flap,
				       1 + vmic_random_u64() % flap_ms, flap_ms);
		}
	}
	uv_signal_init(loop, &sig);
	uv_signal_start(&sig, on_sigterm, SIGTERM);
	printf("ready\n");
	fflush(stdout);
	uv_run(loop, UV_RUN_DEFAULT);
	return 0;
}
