/* SPDX-License-Identifier: MIT */
/*
 * A world for the host's state machines on a fake clock, shared by the
 * host tests of every service (tests/services/NAME/test-host.c) and of
 * the core (test-host-requests.c).
 *
 * A real vmic-hostd core (the daemon's code, linked as a library: store
 * in a temporary directory, a real connection over a unix socket) talks
 * to a guest played by the test with the real protocol code. Only time is
 * fake: ticks, the request tracker's deadlines and timeouts run on a
 * clock the test moves by hand (clock.h), so hours of heartbeats take
 * milliseconds and nothing depends on how busy the machine is.
 *
 * The fake guest enables the services of its mask (heartbeat, shutdown
 * and time sync unless the test says otherwise) and answers what the
 * test tells it to. The heartbeat runs in every world, so the world can
 * answer heartbeats (world_answer_heartbeats), which the tests of every
 * service use to keep the VM's heartbeat OK.
 */
#ifndef VMIC_HOST_WORLD_H
#define VMIC_HOST_WORLD_H

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

#define T0 1000000000000ull /* the fake clock's start, in us */
#define SEC 1000000ull
#define WORLD_MAX_FRAMES 64
/* The largest payload the fake guest keeps of a frame. */
#define WORLD_PAYLOAD_MAX 65536

/* A frame the fake guest received (payload copied). */
struct rframe {
	struct vmic_frame f;
	uint8_t payload[WORLD_PAYLOAD_MAX];
};

struct guest {
	int listen_fd, fd;
	struct vmic_rx rx;
	struct vmic_session s;
	uint32_t plays; /* bit i: service i enabled in the fake guest */
	struct rframe got[WORLD_MAX_FRAMES];
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

/* The services the fake guest enables unless told otherwise. */
#define WORLD_PLAYS_DEFAULT                                         \
	((1u << VMIC_SVC_HEARTBEAT) | (1u << VMIC_SVC_SHUTDOWN) |   \
	 (1u << VMIC_SVC_TIMESYNC))

/* cmocka setup and teardown: a daemon, one VM "vm1", its session up
 * with a fake guest that enables WORLD_PLAYS_DEFAULT (or `plays`). */
int world_setup(void **state);
int world_setup_plays(void **state, uint32_t plays);
int world_teardown(void **state);

/* Let the loop deliver what is pending. */
void world_pump(struct world *w);
/* Move the fake clock, then let the loop deliver what that caused. */
void world_advance(struct world *w, uint64_t us);

/* The fake guest: read what the host sent; send bytes; take the first
 * received frame of (service, type) (false when none); count them. */
void guest_read(struct world *w);
void guest_send(struct world *w, const uint8_t *buf, size_t n);
bool guest_take(struct world *w, uint8_t service, uint8_t type,
		struct rframe *out);
unsigned guest_count(struct world *w, uint8_t service, uint8_t type);
/* Accept the host's connection and run the handshake to the end. */
void guest_connect(struct world *w);
/* Close the fake guest's end of the channel. */
void guest_disconnect(struct world *w);

/* Answer every heartbeat request received so far (seq + 1, health OK);
 * how many. */
unsigned world_answer_heartbeats(struct world *w);
/* The fake time at which the next heartbeat request leaves (10 ms
 * steps; fails after 10 s). */
uint64_t world_next_heartbeat(struct world *w);

/* What the host shows: a member of a service's `status` entry (string
 * or integer). */
const char *world_service_string(struct world *w, uint8_t id,
				 const char *key);
int64_t world_service_int(struct world *w, uint8_t id, const char *key);
/* An event of `kind` whose message contains `text` was published. */
bool world_has_event(struct world *w, const char *kind, const char *text);
/* Some event went to state `to`. */
bool world_any_event_to(struct world *w, const char *to);

/* Run a control command as the control socket would, with no client to
 * hear the reply (the outcome is read from events and status). */
void world_command(struct world *w, const char *name, const char *json);

#endif
