/* SPDX-License-Identifier: MIT */
/*
 * File Copy, guest half: a file to the host (GET). The file is opened
 * beneath [filecopy] read-dirs, the request answered with its size, mode
 * and mtime, then pumped into the host's stream (read on the thread
 * pool) and hashed as it is read; the same request is answered a second
 * time with the XXH3-128 and length of what was read, or with an error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "services/filecopy/guest.h"
#include "services/filecopy/hash.h"

struct fc_get {
	struct fc_get *next;
	struct fc_guest *st;
	uint64_t nonce;
	uint32_t rid;
	int fd;
	struct vmic_fdstream *pump; /* NULL once it ended */
	struct vmic_fc_hasher *hash;
	char path[VMIC_FC_PATH_MAX + 1];
};

static void get_free(struct fc_get *g)
{
	struct fc_get **pp = &g->st->gets;

	while (*pp && *pp != g)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = g->next;
		g->st->ngets--;
	}
	if (g->fd >= 0)
		close(g->fd);
	vmic_fc_hasher_free(g->hash);
	free(g);
}

static struct guest_conn *conn_of(struct fc_get *g)
{
	struct guest_conn *c = agent_conn(g->st->g);

	if (!c || !agent_session_up(c) ||
	    agent_session(c)->peer_nonce != g->nonce)
		return NULL;
	return c;
}

static int send_reply(struct guest_conn *c, uint32_t rid,
		      const struct vmic_fc_reply *rep)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_FC_REPLY_LEN];
	struct vmic_frame f = { .service = FC_GUEST_ID, .request_id = rid };
	int n = vmic_fc_reply_encode(rep, buf + VMIC_HDR_SIZE,
				     VMIC_FC_REPLY_LEN);

	if (n < 0)
		return 0;
	return agent_reply(c, &f, VMIC_FC_REPLY, buf, (size_t)n);
}

static void pump_done(void *ud, struct vmic_fdstream *f, int err,
		      uint16_t code, const char *message)
{
	struct fc_get *g = ud;
	struct guest_conn *c = conn_of(g);
	struct vmic_fc_reply rep = { .stage = VMIC_FC_DONE };
	struct vmic_frame fr = { .service = FC_GUEST_ID, .request_id = g->rid };

	(void)f;
	(void)code;
	g->pump = NULL;
	if (err < 0) {
		log_warning("filecopy: sending %s failed: %s", g->path,
			    message && message[0]
				    ? message
				    : vmic_fdstream_strerror(err, false));
		if (c && err != -ECONNABORTED)
			agent_reply_error(c, &fr, VMIC_E_FAILED,
					  "%.512s: reading it in the guest failed: "
					  "%s",
					  g->path,
					  message && message[0]
						  ? message
						  : vmic_fdstream_strerror(
							    err, false));
		get_free(g);
		return;
	}
	rep.size = vmic_fc_hasher_bytes(g->hash);
	vmic_fc_hasher_digest(g->hash, rep.hash);
	if (c)
		send_reply(c, g->rid, &rep);
	log_info("filecopy: sent %s (%llu bytes)", g->path,
		 (unsigned long long)rep.size);
	get_free(g);
}

static void pump_chunk(void *ud, const uint8_t *b, size_t n)
{
	struct fc_get *g = ud;

	vmic_fc_hasher_update(g->hash, b, n);
}

static const struct vmic_fdstream_ops pump_ops = {
	.on_done = pump_done,
	.on_chunk = pump_chunk,
};

int fc_guest_send(struct guest_conn *c, struct fc_guest *st, uint32_t rid,
		  uint32_t stream_id, int fd, const char *path,
		  const struct vmic_fc_reply *accepted)
{
	struct vmic_frame f = { .service = FC_GUEST_ID, .request_id = rid };
	struct fc_get *g = calloc(1, sizeof(*g));
	char err[1024];
	int r;

	if (!g || !(g->hash = vmic_fc_hasher_new())) {
		free(g);
		close(fd);
		return agent_reply_error(c, &f, VMIC_E_INTERNAL,
					 "out of memory");
	}
	g->st = st;
	g->rid = rid;
	g->fd = fd;
	g->nonce = agent_session(c)->peer_nonce;
	snprintf(g->path, sizeof(g->path), "%s", path);
	/* Accepted first: the host opens its end on it, before any data. */
	r = send_reply(c, rid, accepted);
	if (r < 0) {
		close(g->fd);
		vmic_fc_hasher_free(g->hash);
		free(g);
		return r;
	}
	g->next = st->gets;
	st->gets = g;
	st->ngets++;
	r = vmic_fdstream_pump(agent_link(c), stream_id, FC_GUEST_ID, g->fd,
			       NULL, &pump_ops, g, &g->pump);
	if (r < 0) {
		agent_stream_error_text(c, r, err, sizeof(err));
		agent_reply_error(c, &f, VMIC_E_FAILED, "%s", err);
		get_free(g);
	}
	return 0;
}

int fc_guest_get(struct guest_conn *c, struct fc_guest *st,
		 const struct vmic_frame *f)
{
	const struct fc_guest_conf *conf = agent_conf(st->g, FC_GUEST_ID);
	struct vmic_fc_get m;
	struct vmic_fc_reply rep = { .stage = VMIC_FC_ACCEPTED };
	struct stat sb;
	uint16_t code;
	char err[1024];
	int fd;

	if (vmic_fc_get_decode(f->payload, f->length, &m) < 0)
		return agent_reply_error(c, f, VMIC_E_MALFORMED,
					 "filecopy get does not decode");
	if (st->ngets >= FC_GUEST_TRANSFERS_MAX)
		return agent_reply_error(c, f, VMIC_E_BUSY,
					 "%d copies out of this guest run "
					 "already; wait for one to end",
					 FC_GUEST_TRANSFERS_MAX);
	fd = fc_guest_open_get(conf->read_dirs, agent_config_path(st->g),
			       m.path, false, &code, err, sizeof(err));
	if (fd < 0) {
		log_warning("filecopy: refused to send %s: %s", m.path, err);
		return agent_reply_error(c, f, code, "%s", err);
	}
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return agent_reply_error(c, f, VMIC_E_FAILED, "%.512s: %s",
					 m.path, strerror(errno));
	}
	rep.size = (uint64_t)sb.st_size;
	if ((uint64_t)sb.st_blocks * 512 < (uint64_t)sb.st_size)
		rep.flags = VMIC_FC_F_SPARSE;
	rep.flags |= VMIC_FC_F_OWNER;
	rep.uid = sb.st_uid;
	rep.gid = sb.st_gid;
	rep.mode = sb.st_mode & VMIC_FC_MODE_MASK;
	rep.mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 +
		       sb.st_mtim.tv_nsec;
	return fc_guest_send(c, st, f->request_id, m.stream_id, fd, m.path,
			     &rep);
}

void fc_guest_gets_drop(struct fc_guest *st)
{
	while (st->gets) {
		struct fc_get *g = st->gets;

		if (g->pump) {
			vmic_fdstream_cancel(g->pump, VMIC_E_FAILED,
					     "the session ended");
			g->pump = NULL;
		}
		get_free(g);
	}
}
