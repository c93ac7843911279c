/* SPDX-License-Identifier: MIT */
#include "stream.h"

#include <errno.h>
#include <string.h>

#include "common/wire.h"
#include "control.h"
#include "frame.h"

void vmic_stream_tx_init(struct vmic_stream_tx *tx)
{
	tx->sent = 0;
	tx->allowed = VMIC_STREAM_INITIAL_CREDIT;
}

uint64_t vmic_stream_tx_room(const struct vmic_stream_tx *tx)
{
	return tx->allowed > tx->sent ? tx->allowed - tx->sent : 0;
}

int vmic_stream_tx_sent(struct vmic_stream_tx *tx, uint32_t n)
{
	if (n > vmic_stream_tx_room(tx))
		return -EPROTO;
	tx->sent += n;
	return 0;
}

int vmic_stream_tx_credit(struct vmic_stream_tx *tx, uint32_t more)
{
	if (more == 0 || tx->allowed + more - tx->sent > VMIC_STREAM_MAX_WINDOW)
		return -EOVERFLOW;
	tx->allowed += more;
	return 0;
}

void vmic_stream_rx_init(struct vmic_stream_rx *rx, uint32_t window)
{
	if (window == 0)
		window = VMIC_STREAM_WINDOW_DEFAULT;
	if (window < VMIC_STREAM_INITIAL_CREDIT)
		window = VMIC_STREAM_INITIAL_CREDIT;
	if (window > VMIC_STREAM_MAX_WINDOW)
		window = VMIC_STREAM_MAX_WINDOW;
	rx->received = 0;
	rx->consumed = 0;
	rx->granted = VMIC_STREAM_INITIAL_CREDIT;
	rx->window = window;
}

int vmic_stream_rx_data(struct vmic_stream_rx *rx, uint32_t n)
{
	if (rx->received + n > rx->granted)
		return -EPROTO;
	rx->received += n;
	return 0;
}

uint32_t vmic_stream_rx_consumed(struct vmic_stream_rx *rx, uint32_t n)
{
	uint64_t target, grant;

	rx->consumed += n;
	if (rx->consumed > rx->received)
		rx->consumed = rx->received; /* caller bug; stay consistent */
	target = rx->consumed + rx->window;
	if (target <= rx->granted || target - rx->granted < rx->window / 2)
		return 0;
	grant = target - rx->granted;
	rx->granted = target;
	return (uint32_t)grant;
}

void vmic_stream_init(struct vmic_stream *s, uint32_t id, uint8_t service,
		      enum vmic_stream_dir dir, uint32_t window,
		      const struct vmic_stream_ops *ops, void *ud)
{
	memset(s, 0, sizeof(*s));
	s->id = id;
	s->service = service;
	s->dir = (uint8_t)dir;
	s->ops = ops;
	s->ud = ud;
	vmic_stream_tx_init(&s->tx);
	vmic_stream_rx_init(&s->rx, window);
	vmic_lane_init(&s->lane);
}

size_t vmic_stream_credit_frame(uint8_t *buf, uint8_t service, uint32_t id,
				uint32_t more)
{
	vmic_put_le32(buf + VMIC_HDR_SIZE, more);
	return vmic_frame_seal(buf, service, VMIC_T_STREAM_CREDIT, 0, 0, id, 4);
}

size_t vmic_stream_reset_frame(uint8_t *buf, uint8_t service, uint32_t id,
			       uint16_t code, const char *message)
{
	/* The payload is an error's; only the header differs. */
	size_t n = vmic_error_frame(buf, service, 0, code, message);

	return vmic_frame_seal(buf, service, VMIC_T_STREAM_RESET, 0, 0, id,
			       n - VMIC_HDR_SIZE);
}

void vmic_stream_data_header(uint8_t *hdr, const struct vmic_stream *s,
			     uint32_t len, bool end)
{
	struct vmic_frame f = {
		.service = s->service,
		.type = VMIC_T_STREAM_DATA,
		.flags = end ? VMIC_F_END : 0,
		.stream_id = s->id,
		.length = len,
	};

	vmic_frame_put_header(hdr, &f);
}
