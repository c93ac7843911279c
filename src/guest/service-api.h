/* SPDX-License-Identifier: MIT */
/*
 * What a guest service may do: the one header of the agent's core that
 * the guest half of a service (src/services/NAME/guest*.c) includes.
 *
 * The agent's structs (struct guestd, struct guest_conn) are incomplete
 * types here, so a service cannot touch their members: it reads and does
 * what it may through the functions below, each with its contract.
 * `make check` also fails when a file under src/services/ includes
 * another header of src/guest/ or src/host/
 * (scripts/check-service-api.sh, docs/architecture.md).
 *
 * Besides this header a service may include the headers of src/common/
 * and src/proto/, src/transport/fdstream.h (reached through here too) and
 * the headers of its own folder; never another service's.
 *
 * Names: every function this header adds starts with agent_ and is
 * defined by vmic-guestd alone (the host's counterpart is
 * src/host/service-api.h), so no name means two things in two binaries.
 *
 * Threads: everything here runs on the agent's loop thread and must be
 * called from it; work on libuv's thread pool (uv_queue_work on
 * agent_loop) touches only what the service handed it.
 */
#ifndef VMIC_GUEST_SERVICE_API_H
#define VMIC_GUEST_SERVICE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/config.h"
#include "common/macro.h"
#include "guest/clock.h"
#include "proto/frame.h"
#include "proto/proto.h"
#include "proto/session.h"
#include "transport/fdstream.h"

/* Requests of one service that may wait for answers of the host at
 * once, unless its table entry says otherwise (max_requests). */
#define AGENT_REQUESTS_DEFAULT 4
/* What an entry's max_requests may ask for. */
#define AGENT_REQUESTS_SERVICE_MAX 256

/* The agent's own; services hold pointers, never look inside. */
struct guestd;
struct guest_conn;

/* ---- the service's entry in the agent's table ---- */

/* A command line option of a service: `--NAME VALUE` sets [SERVICE]
 * KEY for this run (`--kvp-dir DIR` is [kvp] dir). */
struct guest_option {
	const char *name;
	const char *arg;  /* its value in --help: "DIR" */
	const char *key;
	const char *help; /* one line for --help */
	bool repeatable;  /* given again: the values joined with commas */
};

/*
 * A service as the agent runs it (src/services/NAME/guest.c). Every hook
 * but on_frame is optional.
 */
struct guest_service {
	const struct vmic_service_desc *desc;
	const char *enabled_help; /* --check-config's line for [NAME] enabled */
	/* Keys of [NAME] besides `enabled`: offsets into a struct of
	 * conf_size bytes, set to its defaults by conf_defaults; the agent
	 * keeps it (agent_conf). */
	const struct vmic_conf_table *conf;
	size_t conf_size;
	void (*conf_defaults)(void *conf);
	/* Requests of this service that may wait for the host's answers at
	 * once (agent_request_send), its own budget: no service can take
	 * another's. 0: AGENT_REQUESTS_DEFAULT; at most
	 * AGENT_REQUESTS_SERVICE_MAX. Long operations hold none while they
	 * run: their bytes travel in streams. */
	unsigned max_requests;
	/* The agent starts with the service enabled in its configuration:
	 * set up what it needs (agent_set_state). 0 or -errno. */
	int (*start)(struct guestd *g);
	/* The agent stops: close what start() opened. The state is freed
	 * by the agent after its loop ended (free()). */
	void (*stop)(struct guestd *g);
	/* The agent was asked to stop a while ago (guestd-main.c) and its
	 * loop still waits, for a worker thread stuck in a system call, say:
	 * what of the service it waits for, in a few words into buf ("" when
	 * nothing), for the line that says the agent exits without it. */
	void (*pending)(struct guestd *g, char *buf, size_t n);
	/* The configuration was reloaded (SIGHUP) and the service's conf
	 * changed in place: apply it. Without the hook it is read again at
	 * its next use. */
	void (*reconfigure)(struct guestd *g);
	/* A session with the host began or ended (state per session). At
	 * the end, the requests still waiting hear -ECONNRESET after this. */
	void (*on_session)(struct guest_conn *c, bool up);
	/* A request of the host for the service; the gate (built, enabled
	 * here and by the host, version agreed) passed. Answer it with
	 * agent_reply or agent_reply_error (now or later); < 0 closes the
	 * connection. Answers to the service's own requests go to their
	 * callbacks (agent_request_send), never here. */
	int (*on_frame)(struct guest_conn *c, const struct vmic_frame *f);
	/* Command line options that set keys of the service's conf. */
	const struct guest_option *options;
	size_t noptions;
	/* `vmic-guestd NAME ARGS...` runs this instead of the agent, with
	 * the configuration loaded (argv[0] is NAME); the exit status. */
	const char *command;
	const char *command_usage; /* one line for --help */
	int (*command_run)(struct guestd *g, int argc, char **argv);
	/* The filesystems were thawed (agent_set_frozen(false)): start the
	 * disk writes held back while agent_frozen() was true. */
	void (*on_thaw)(struct guestd *g);
};

/* Each service's entry: NAME_guest, from its guest.c. */
#define VMIC_SERVICE(name) extern const struct guest_service name##_guest;
#include "services/list.h"
#undef VMIC_SERVICE

/* ---- the agent ---- */

/* The agent's libuv loop, for the service's own handles, timers and
 * thread-pool work. */
uv_loop_t *agent_loop(const struct guestd *g);
/* The service's config struct (its conf table's; conf_size bytes), kept
 * by the agent and changed in place by a reload (reconfigure). */
void *agent_conf(const struct guestd *g, uint8_t service);
/* The service's state, set by its start (NULL when not running). */
void *agent_state(const struct guestd *g, uint8_t service);
void agent_set_state(struct guestd *g, uint8_t service, void *state);
/* [NAME] enabled in the agent's configuration. */
bool agent_enabled(const struct guestd *g, uint8_t service);
/* The configuration file the agent read, for messages. */
const char *agent_config_path(const struct guestd *g);
/* The wall clock services read and set (clock.h): the real one, or the
 * simulated one of --simulated-clock that tests run on. */
struct guest_clock *agent_clock(struct guestd *g);
/* Filesystems of this guest are frozen (the backup service): a write
 * would block until the thaw, so no service starts one while this is
 * true; they wait in memory and start from the service's on_thaw. */
bool agent_frozen(const struct guestd *g);
/* The backup service says so; false calls every running service's
 * on_thaw. */
void agent_set_frozen(struct guestd *g, bool frozen);
/* The current connection to the host, NULL while there is none. It may
 * be replaced at any time the loop runs: take it again, never keep it
 * past the session (on_session). */
struct guest_conn *agent_conn(const struct guestd *g);

/* ---- a connection: its session, frames and streams ---- */

/* The agent the connection belongs to. */
struct guestd *agent_of(const struct guest_conn *c);
/* The services were told the session is up (on_session) and not yet
 * that it ended. */
bool agent_session_up(const struct guest_conn *c);
/* The session: versions agreed, the host's nonce (a new one is a new
 * host session: answers owed to the old one are void). */
const struct vmic_session *agent_session(const struct guest_conn *c);
/* Why service `id` cannot serve the host now (not built, disabled here
 * or by the host, no common version), with its VMIC_E_* code, or NULL
 * when it can. */
const char *guest_service_refusal(const struct guest_conn *c, uint8_t id,
				  uint16_t *code);
/* Send a whole encoded frame (vmic_frame_seal) that expects no answer;
 * logs and returns -errno on failure. */
int agent_send(struct guest_conn *c, const uint8_t *frame, size_t len);
/*
 * Answer request f with message `type` of its service: payload_len bytes
 * already encoded at buf + VMIC_HDR_SIZE; the header is written here.
 */
int agent_reply(struct guest_conn *c, const struct vmic_frame *f,
		uint8_t type, uint8_t *buf, size_t payload_len);
/* Answer request f with an error frame: a VMIC_E_* code and a sentence
 * for the host's log. */
int agent_reply_error(struct guest_conn *c, const struct vmic_frame *f,
		      uint16_t code, const char *fmt, ...) PRINTF_LIKE(4, 5);
/*
 * The connection's link, for streams (transport/fdstream.h:
 * vmic_fdstream_pump and _sink; link.h for raw streams). Streams end
 * with the session (their owners hear -ECONNRESET or -ENOTCONN first);
 * open them while agent_session_up(), after the host asked in a
 * request of the service's own.
 */
struct vmic_link *agent_link(struct guest_conn *c);
/* A sentence for a stream the agent could not open (err from opening
 * it, or from pumping or sinking a descriptor into one; -EMFILE: the
 * link holds [agent] max-streams), for the error frame of a refusal. */
void agent_stream_error_text(const struct guest_conn *c, int err, char *buf,
			     size_t n);

/* ---- requests to the host: the same tracker as the host's ---- */

/*
 * An answer to request `id`: `answer` is the reply or error frame (err
 * 0), or NULL with err -ETIMEDOUT (timeout_ms passed), -ECONNRESET (the
 * session ended; after on_session(false)) or -ECANCELED (the connection
 * closes). With an answer, return true to keep waiting for more answers
 * with the same id (a late error after an "accepted").
 */
typedef bool (*agent_request_cb)(struct guest_conn *c, void *ud,
				 const struct vmic_frame *answer, int err);
/*
 * Send a request of `service`: payload_len bytes already encoded at
 * buf + VMIC_HDR_SIZE (the header is written here, no copy is made), and
 * call cb with its answers. timeout_ms 0 waits until the session ends.
 * 0 and the id in *id (never 0); -ENOTCONN without a session, -EBUSY
 * when the service has its max_requests waiting, or the link's -errno;
 * cb is never called when it fails.
 */
int agent_request_send(struct guest_conn *c, uint8_t service, uint8_t type,
		       uint8_t *buf, size_t payload_len, unsigned timeout_ms,
		       agent_request_cb cb, void *ud, uint32_t *id);
/* Stop waiting for request id (0 is fine); its callback is not called. */
void agent_request_cancel(struct guest_conn *c, uint32_t id);
/* A fresh id (never 0) for a message that carries one but waits for no
 * answer (an unasked report). */
uint32_t agent_request_id(struct guest_conn *c);
/* Requests of `service` waiting for answers now. */
unsigned agent_requests_waiting(const struct guest_conn *c, uint8_t service);

#endif
