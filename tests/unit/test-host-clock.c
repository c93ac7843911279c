/* SPDX-License-Identifier: MIT */
/*
 * The daemon's timing wheel (src/host/clock.c) on the fake clock and on a
 * real libuv loop: timers fire at the end of their slot and never before
 * their deadline; one wake-up serves every timer of a slot; periodic
 * timers that set their next deadline from the previous one keep their
 * phase over 24 simulated hours and across a stalled loop; timers come
 * and go at 1,000 a second without one being lost or fired twice; and
 * 10,000 timers cost libuv one timer, not 10,000.
 */
#include "testutil.h"

#include "common/macro.h"
#include "common/random.h"
#include "host/hostd.h"

#define SLOT HCLOCK_SLOT_US
#define SEC 1000000ull
#define T0 1000000000000ull

/*
 * A timer that counts, checks its timing, and may repeat. Its deadlines
 * come from its own schedule (first + n * every), so "never early, never
 * a slot late" at every firing is "on its phase, no drift".
 */
struct tick {
	struct htimer t;
	uint64_t next;   /* its own schedule: the deadline it was set for */
	uint64_t every;  /* 0: once */
	unsigned fired;
	uint64_t max_late;
	bool early;      /* fired before its deadline: never allowed */
	uint64_t phase;  /* first deadline, for the phase check */
	bool closed;
};

static void on_tick(struct htimer *t)
{
	struct tick *k = t->data;
	uint64_t now = hostd_now_us(t->h);

	k->fired++;
	if (now < k->next)
		k->early = true;
	else if (now - k->next > k->max_late)
		k->max_late = now - k->next;
	if (!k->every)
		return;
	/* As the heartbeat does: from the previous deadline, skipping the
	 * ones a stalled daemon missed. */
	k->next += k->every;
	while (k->next <= now)
		k->next += k->every;
	htimer_start_at(t, k->next);
}

static void tick_start(struct hostd *h, struct tick *k, uint64_t first,
		       uint64_t every)
{
	memset(k, 0, sizeof(*k));
	htimer_init(h, &k->t, on_tick, k);
	k->next = k->phase = first;
	k->every = every;
	htimer_start_at(&k->t, first);
}

static struct hostd *fake_hostd(void)
{
	struct hostd *h = calloc(1, sizeof(*h));

	assert_non_null(h);
	clock_fake_enable(h, T0);
	return h;
}

static void on_closed(struct htimer *t)
{
	((struct tick *)t->data)->closed = true;
}

/* ---- fake clock --------------------------------------------------------- */

static void test_slot_ends(void **state UNUSED)
{
	struct hostd *h = fake_hostd();
	struct tick a, b, c;

	tick_start(h, &a, T0 + 1, 0);          /* rounds up to T0 + SLOT */
	tick_start(h, &b, T0 + 3 * SLOT, 0);   /* on a boundary: exact */
	tick_start(h, &c, T0 - 5 * SEC, 0);    /* passed: the next slot */
	assert_int_equal(a.fired + b.fired + c.fired, 0); /* not inside */
	clock_fake_advance(h, SLOT - 1);
	assert_int_equal(a.fired + c.fired, 0);
	clock_fake_advance(h, 1);
	assert_int_equal(a.fired, 1);
	assert_int_equal(c.fired, 1);
	assert_int_equal(a.max_late, SLOT - 1);
	clock_fake_advance(h, 2 * SLOT - 1);
	assert_int_equal(b.fired, 0);
	clock_fake_advance(h, 1);
	assert_int_equal(b.fired, 1);
	assert_int_equal(b.max_late, 0);
	assert_false(a.early || b.early);
	assert_int_equal(h->clock.count, 0);

	/* Stopped, it never fires; closed, its callback comes later. */
	tick_start(h, &a, T0 + SEC, 0);
	htimer_stop(&a.t);
	htimer_close(&a.t, on_closed);
	assert_false(a.closed);
	clock_fake_advance(h, 2 * SEC);
	assert_int_equal(a.fired, 0);
	assert_true(a.closed);
	free(h);
}

/* 10,000 VMs' ticks spread over a second: one wake-up per slot at most,
 * every tick on time to within a slot. */
static void test_one_wakeup_per_slot(void **state UNUSED)
{
	enum { N = 10000 };
	struct hostd *h = fake_hostd();
	struct tick *k = calloc(N, sizeof(*k));
	uint64_t w0;

	for (unsigned i = 0; i < N; i++)
		tick_start(h, &k[i], T0 + SEC / 2 + vmic_random_u64() % (SEC / 2),
			   SEC);
	w0 = h->clock.wakeups;
	clock_fake_advance(h, 10 * SEC);
	/* 10.5 s of slots at most, whatever the number of timers. */
	assert_true(h->clock.wakeups - w0 <= 10 * SEC / SLOT + SEC / 2 / SLOT);
	for (unsigned i = 0; i < N; i++) {
		assert_true(k[i].fired == 9 || k[i].fired == 10);
		assert_false(k[i].early);
		assert_true(k[i].max_late < SLOT);
	}
	assert_int_equal(h->clock.count, N);
	for (unsigned i = 0; i < N; i++)
		htimer_stop(&k[i].t);
	assert_int_equal(h->clock.count, 0);
	free(k);
	free(h);
}

/* A day of ticks: no drift, none lost, none early. */
static void test_no_drift_24h(void **state UNUSED)
{
	enum { N = 50 };
	struct hostd *h = fake_hostd();
	struct tick k[N];
	uint64_t every[] = { SEC, 5 * SEC, 250000, 1234567 };

	for (unsigned i = 0; i < N; i++)
		tick_start(h, &k[i], T0 + 1 + vmic_random_u64() % (2 * SEC),
			   every[i % ARRAY_SIZE(every)]);
	for (int hour = 0; hour < 24; hour++)
		clock_fake_advance(h, 3600 * SEC);
	for (unsigned i = 0; i < N; i++) {
		uint64_t want = (T0 + 24 * 3600 * SEC - k[i].phase) /
					k[i].every + 1;

		/* The last one may be due in the slot not reached yet. */
		assert_true(k[i].fired == want || k[i].fired + 1 == want);
		assert_false(k[i].early);
		assert_true(k[i].max_late < SLOT);
	}
	free(h);
}

/* A loop busy elsewhere for 2.5 intervals: the late ticks fire as soon as
 * it turns, then every timer is back on its own phase. */
static void test_stall_keeps_phase(void **state UNUSED)
{
	enum { N = 200 };
	struct hostd *h = fake_hostd();
	struct tick k[N];

	for (unsigned i = 0; i < N; i++)
		tick_start(h, &k[i], T0 + 1 + vmic_random_u64() % SEC, SEC);
	clock_fake_advance(h, 3 * SEC);
	clock_fake_stall(h, 5 * SEC / 2);
	clock_fake_advance(h, 0); /* the late ones */
	for (unsigned i = 0; i < N; i++) {
		k[i].max_late = 0;
		assert_true(k[i].next > hostd_now_us(h));
	}
	clock_fake_advance(h, 5 * SEC);
	for (unsigned i = 0; i < N; i++) {
		assert_false(k[i].early);
		assert_true(k[i].max_late < SLOT);
	}
	free(h);
}

/* VMs added and removed at 1,000 a second for 10 s, their ticks running:
 * the wheel's count stays true, and a removed timer never fires. */
static void test_churn(void **state UNUSED)
{
	enum { N = 2000 };
	struct hostd *h = fake_hostd();
	struct tick *k = calloc(N, sizeof(*k));
	bool *live = calloc(N, sizeof(*live));
	unsigned nlive = 0, removed_fired = 0;

	for (unsigned ms = 0; ms < 10000; ms++) {
		unsigned add = (unsigned)(vmic_random_u64() % N);
		unsigned del = (unsigned)(vmic_random_u64() % N);

		if (!live[add]) {
			tick_start(h, &k[add],
				   hostd_now_us(h) + vmic_random_u64() % SEC,
				   SEC);
			live[add] = true;
			nlive++;
		}
		if (live[del] && del != add) {
			unsigned before = k[del].fired;

			htimer_stop(&k[del].t);
			live[del] = false;
			nlive--;
			clock_fake_advance(h, 1000);
			removed_fired += k[del].fired - before;
		} else {
			clock_fake_advance(h, 1000);
		}
		assert_int_equal(h->clock.count, nlive);
	}
	assert_int_equal(removed_fired, 0);
	for (unsigned i = 0; i < N; i++) {
		assert_false(k[i].early);
		assert_true(k[i].max_late < SLOT);
	}
	free(live);
	free(k);
	free(h);
}

/* ---- a real loop -------------------------------------------------------- */

static void count_active(uv_handle_t *u, void *arg)
{
	if (uv_is_active(u))
		++*(unsigned *)arg;
}

static void test_real_loop_one_timer(void **state UNUSED)
{
	enum { N = 10000 };
	struct hostd *h = calloc(1, sizeof(*h));
	struct tick *k = calloc(N, sizeof(*k));
	uv_loop_t loop;
	unsigned active = 0, fired = 0;
	uint64_t now;

	assert_int_equal(uv_loop_init(&loop), 0);
	h->loop = &loop;
	now = hostd_now_us(h);
	for (unsigned i = 0; i < N; i++)
		tick_start(h, &k[i], now + 20000 + vmic_random_u64() % 100000,
			   0);
	uv_walk(&loop, count_active, &active);
	assert_int_equal(active, 1); /* the wheel's driver, nothing else */
	uv_run(&loop, UV_RUN_DEFAULT);
	for (unsigned i = 0; i < N; i++) {
		fired += k[i].fired;
		assert_false(k[i].early);
	}
	assert_int_equal(fired, N);
	/* One wake-up per slot at most (120 ms of slots, with slack for the
	 * ones that found their slot not yet over). */
	assert_true(h->clock.wakeups <= 2 * (120000 / SLOT) + 2);
	h->stopping = true;
	clock_stop(h);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	free(k);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slot_ends),
		cmocka_unit_test(test_one_wakeup_per_slot),
		cmocka_unit_test(test_no_drift_24h),
		cmocka_unit_test(test_stall_keeps_phase),
		cmocka_unit_test(test_churn),
		cmocka_unit_test(test_real_loop_one_timer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
