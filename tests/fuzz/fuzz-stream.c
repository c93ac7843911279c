/* SPDX-License-Identifier: MIT */
/*
 * The stream rules a link applies to its peer's stream frames
 * (vmic_stream_table_input), driven by a script of operations read from
 * the input, with the link's reactions to each verdict and the owner's
 * actions in between (open, consume, send, reset). Checks after every
 * step: the table finds exactly the streams a shadow list holds, no
 * receiver accepts data beyond what it granted, no sender holds more
 * than the window allows in flight, and a reset is never answered.
 *
 * Each operation is one byte, then its arguments:
 *   op & 3 == 0  DATA:   u8 stream slot, u8 flags, u16 length / 2
 *   op & 3 == 1  CREDIT: u8 slot, u8 payload length (0..8), payload
 *   op & 3 == 2  RESET:  u8 slot, u8 payload length, payload
 *   op & 3 == 3  owner:  u8 slot, u8 argument; op >> 2 picks open send,
 *                open receive (argument: window in 64 KiB), consume,
 *                send, or reset by the owner
 * Bit 7 of the op sends the frame as another service's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>

#include "fuzz.h"

#include "common/wire.h"
#include "proto/stream-table.h"

#define SLOTS 16

struct script {
	const uint8_t *p;
	size_t n;
};

static bool take(struct script *s, size_t n, const uint8_t **out)
{
	if (s->n < n)
		return false;
	*out = s->p;
	s->p += n;
	s->n -= n;
	return true;
}

static int byte(struct script *s)
{
	const uint8_t *b;

	return take(s, 1, &b) ? *b : -1;
}

struct world {
	struct vmic_stream_table t;
	struct vmic_stream *slot[SLOTS]; /* the shadow list */
	uint32_t id[SLOTS];              /* the id each slot last had */
};

static void check(const struct world *w)
{
	unsigned count = 0;

	for (int i = 0; i < SLOTS; i++) {
		const struct vmic_stream *s = w->slot[i];

		if (!s)
			continue;
		count++;
		FUZZ_CHECK(vmic_stream_table_find(&w->t, s->id) == s);
		if (s->dir == VMIC_STREAM_RECV) {
			FUZZ_CHECK(s->rx.received <= s->rx.granted);
			FUZZ_CHECK(s->rx.consumed <= s->rx.received);
			FUZZ_CHECK(s->rx.granted - s->rx.consumed <=
				   MAX(s->rx.window,
				       (uint32_t)VMIC_STREAM_INITIAL_CREDIT));
		} else {
			FUZZ_CHECK(s->tx.sent <= s->tx.allowed);
			FUZZ_CHECK(s->tx.allowed - s->tx.sent <=
				   VMIC_STREAM_MAX_WINDOW);
		}
	}
	FUZZ_CHECK(w->t.count == count);
	FUZZ_CHECK(count <= w->t.max);
}

static void forget(struct world *w, struct vmic_stream *s)
{
	for (int i = 0; i < SLOTS; i++)
		if (w->slot[i] == s)
			w->slot[i] = NULL;
	vmic_stream_table_remove(&w->t, s);
	FUZZ_CHECK(vmic_stream_table_find(&w->t, s->id) == NULL);
	free(s);
}

/* What the link does with a verdict. */
static void react(struct world *w, const struct vmic_frame *f,
		  const struct vmic_stream_input *in)
{
	switch (in->verdict) {
	case VMIC_SV_IGNORE:
		FUZZ_CHECK(f->type != VMIC_T_STREAM_DATA);
		break;
	case VMIC_SV_DATA:
		FUZZ_CHECK(f->type == VMIC_T_STREAM_DATA && in->s);
		FUZZ_CHECK(f->length <= VMIC_STREAM_CHUNK);
		if (f->flags & VMIC_F_END)
			forget(w, in->s);
		break;
	case VMIC_SV_CREDIT:
		FUZZ_CHECK(f->type == VMIC_T_STREAM_CREDIT && in->s);
		break;
	case VMIC_SV_PEER_RESET:
		FUZZ_CHECK(f->type == VMIC_T_STREAM_RESET && in->s);
		FUZZ_CHECK(in->code != 0);
		forget(w, in->s);
		break;
	case VMIC_SV_REFUSE:
		/* Never an answer to a reset, or resets could chase. */
		FUZZ_CHECK(f->type != VMIC_T_STREAM_RESET);
		FUZZ_CHECK(in->code != 0 && in->why);
		if (in->s)
			forget(w, in->s);
		break;
	}
}

static void peer_frame(struct world *w, struct script *sc, int op)
{
	static const uint8_t types[] = { VMIC_T_STREAM_DATA,
					 VMIC_T_STREAM_CREDIT,
					 VMIC_T_STREAM_RESET };
	static const uint8_t zeros[2 * 65536];
	struct vmic_frame f = { .service = VMIC_SVC_FILECOPY,
				.type = types[op & 3] };
	struct vmic_stream_input in;
	const uint8_t *args;
	int slot = byte(sc), n;

	if (slot < 0)
		return;
	f.stream_id = w->id[slot % SLOTS];
	if (op & 0x80)
		f.service = VMIC_SVC_SESSION;
	if ((op & 3) == 0) {
		/* Data bytes do not matter, sizes do: up to twice a chunk. */
		if (!take(sc, 3, &args))
			return;
		f.flags = args[0];
		f.length = 2u * vmic_get_le16(args + 1);
		f.payload = zeros;
	} else {
		n = byte(sc);
		if (n < 0 || !take(sc, MIN((size_t)n, sc->n), &f.payload))
			return;
		f.length = (uint32_t)(sc->p - f.payload); /* what was there */
	}
	vmic_stream_table_input(&w->t, &f, &in);
	react(w, &f, &in);
}

static void owner_open(struct world *w, int slot, enum vmic_stream_dir dir,
		       uint32_t window)
{
	struct vmic_stream *s = malloc(sizeof(*s));
	int r;

	if (!s)
		abort();
	vmic_stream_init(s, vmic_stream_table_next_id(&w->t),
			 VMIC_SVC_FILECOPY, dir, window, NULL, NULL);
	if (w->slot[slot])
		forget(w, w->slot[slot]);
	r = vmic_stream_table_add(&w->t, s);
	if (r < 0) {
		FUZZ_CHECK(r == -EMFILE);
		free(s);
		return;
	}
	w->slot[slot] = s;
	w->id[slot] = s->id;
	if (dir == VMIC_STREAM_RECV)
		(void)vmic_stream_rx_consumed(&s->rx, 0); /* the open grant */
}

static void owner_act(struct world *w, struct script *sc, int op)
{
	const uint8_t *args;
	struct vmic_stream *s;
	uint64_t room;
	int slot;

	if (!take(sc, 2, &args))
		return;
	slot = args[0] % SLOTS;
	s = w->slot[slot];
	switch ((op >> 2) % 5) {
	case 0:
		owner_open(w, slot, VMIC_STREAM_SEND, 0);
		break;
	case 1:
		owner_open(w, slot, VMIC_STREAM_RECV,
			   (uint32_t)args[1] << 16);
		break;
	case 2:
		if (s && s->dir == VMIC_STREAM_RECV)
			(void)vmic_stream_rx_consumed(&s->rx,
						      (uint32_t)args[1] << 12);
		break;
	case 3:
		if (s && s->dir == VMIC_STREAM_SEND) {
			room = MIN(vmic_stream_tx_room(&s->tx),
				   (uint64_t)args[1] << 12);
			FUZZ_CHECK(vmic_stream_tx_sent(&s->tx,
						       (uint32_t)room) == 0);
			room = vmic_stream_tx_room(&s->tx);
			FUZZ_CHECK(vmic_stream_tx_sent(&s->tx,
						       (uint32_t)room + 1) ==
				   -EPROTO);
		}
		break;
	default:
		if (s)
			forget(w, s);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct script sc = { data, size };
	struct world w;
	int op;

	memset(&w, 0, sizeof(w));
	vmic_stream_table_init(&w.t, size > 0 && (data[0] & 1), 8);
	for (int i = 0; i < SLOTS; i++)
		w.id[i] = (uint32_t)i * 0x9E3779B9u; /* unknown ids, 0 too */
	while ((op = byte(&sc)) >= 0) {
		if ((op & 3) == 3)
			owner_act(&w, &sc, op);
		else
			peer_frame(&w, &sc, op);
		check(&w);
	}
	for (int i = 0; i < SLOTS; i++)
		if (w.slot[i])
			forget(&w, w.slot[i]);
	FUZZ_CHECK(w.t.count == 0 && w.t.slots == NULL);
	vmic_stream_table_free(&w.t);
	return 0;
}
