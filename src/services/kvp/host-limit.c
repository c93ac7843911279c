/* SPDX-License-Identifier: MIT */
/*
 * KVP, host half: how fast a client may write (kvp-set, kvp-delete).
 *
 * Every write is a transaction of the store's one writer thread and an
 * fsync; a member of the socket group who writes in a loop would keep
 * the disk busy for everyone, however small the pools stay. So each
 * client user other than root (and the daemon's own user) has two token
 * buckets, records and bytes of keys and values (a delete counts its
 * keys), filled at [kvp] client-write-rate and client-write-bytes a
 * second and holding KVP_WRITE_BURST_S seconds of each. The client is
 * the user (SO_PEERCRED), not the connection: connections are cheap to
 * open again. Root is not limited: it configures the limits, and may
 * raise them.
 *
 * A bucket is kept as the time it would be empty at (the generic cell
 * rate algorithm): a write of n records moves that time n intervals on,
 * and passes while it stays within the burst of now. Buckets that are
 * full again are forgotten, so the table holds only users that wrote in
 * the last KVP_WRITE_BURST_S seconds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "services/kvp/host.h"

#define NS 1000000000ull

/* The bucket of uid, made when it has none; NULL without memory. Full
 * (forgotten) buckets are taken out on the way. */
static struct kvp_client *client_of(struct kvp_daemon *d, uid_t uid,
				    uint64_t now)
{
	struct kvp_client *c = NULL;
	size_t i = 0;

	while (i < d->nclients) {
		struct kvp_client *e = &d->clients[i];

		if (e->uid == uid) {
			c = e;
			i++;
		} else if (e->records_tat <= now && e->bytes_tat <= now) {
			/* The last entry moves here and is looked at next
			 * (c, found before i, is not the last). */
			*e = d->clients[--d->nclients];
		} else {
			i++;
		}
	}
	if (c)
		return c;
	if (d->nclients == d->clients_cap) {
		size_t cap = d->clients_cap ? 2 * d->clients_cap : 8;
		struct kvp_client *p = realloc(d->clients, cap * sizeof(*p));

		if (!p)
			return NULL;
		d->clients = p;
		d->clients_cap = cap;
	}
	c = &d->clients[d->nclients++];
	*c = (struct kvp_client){ .uid = uid };
	return c;
}

/* How long a write of cost (ns) must wait on a bucket empty at *tat:
 * 0 when it may go now. */
static uint64_t wait_ns(uint64_t tat, uint64_t cost, uint64_t now)
{
	uint64_t from = tat > now ? tat : now;
	uint64_t burst = KVP_WRITE_BURST_S * NS;

	return from + cost - now > burst ? from + cost - now - burst : 0;
}

bool kvp_rate_take(struct ctl_request *rq, size_t records, uint64_t bytes)
{
	struct hostd *h = ctl_request_hostd(rq);
	struct kvp_daemon *d = hostd_state(h, KVP_ID);
	const struct kvp_daemon_conf *conf = kvp_conf(h);
	uint64_t now = hostd_now_us(h) * 1000;
	uint64_t per_record, per_byte, rc, bc, wait;
	struct kvp_client *c;
	char rate[32];

	if (ctl_request_privileged(rq) || !d || !conf)
		return true;
	per_record = NS / conf->client_write_rate;
	per_byte = NS / conf->client_write_bytes;
	rc = (uint64_t)records * per_record;
	bc = bytes * per_byte;
	vmic_conf_format_u64(VMIC_CONF_SIZE, conf->client_write_bytes, rate,
			     sizeof(rate));
	if (rc > KVP_WRITE_BURST_S * NS || bc > KVP_WRITE_BURST_S * NS) {
		d->rate_refused++;
		ctl_reply_error(rq, "limit",
				"this write has %zu records (%llu bytes of "
				"keys and values), more than a client may "
				"write at once: %d s of [kvp] "
				"client-write-rate (%u records) and "
				"client-write-bytes (%s) a second; split it",
				records, (unsigned long long)bytes,
				KVP_WRITE_BURST_S, conf->client_write_rate,
				rate);
		return false;
	}
	c = client_of(d, ctl_request_uid(rq), now);
	if (!c) {
		ctl_reply_error(rq, "internal", "out of memory");
		return false;
	}
	wait = MAX(wait_ns(c->records_tat, rc, now),
		   wait_ns(c->bytes_tat, bc, now));
	if (wait) {
		d->rate_refused++;
		ctl_reply_error(rq, "limit",
				"user %u writes KVP records faster than "
				"vmic-hostd.conf allows a client ([kvp] "
				"client-write-rate %u records and "
				"client-write-bytes %s a second, %d s of them "
				"at once); try again in %.1f s",
				(unsigned)ctl_request_uid(rq),
				conf->client_write_rate, rate,
				KVP_WRITE_BURST_S,
				(double)((wait + NS / 10 - 1) / (NS / 10)) /
					10);
		return false;
	}
	c->records_tat = MAX(c->records_tat, now) + rc;
	c->bytes_tat = MAX(c->bytes_tat, now) + bc;
	return true;
}

void kvp_rate_free(struct kvp_daemon *d)
{
	free(d->clients);
	d->clients = NULL;
	d->nclients = d->clients_cap = 0;
}
