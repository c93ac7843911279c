/* SPDX-License-Identifier: MIT */
#include "stream.h"

#include <errno.h>

/* A grant may never put more than this in flight: a sane upper bound. */
#define MAX_OUTSTANDING (64ull * 1024 * 1024)

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
	if (more == 0 || tx->allowed + more - tx->sent > MAX_OUTSTANDING)
		return -EOVERFLOW;
	tx->allowed += more;
	return 0;
}

void vmic_stream_rx_init(struct vmic_stream_rx *rx, uint32_t window)
{
	if (window < VMIC_STREAM_INITIAL_CREDIT)
		window = VMIC_STREAM_INITIAL_CREDIT;
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
