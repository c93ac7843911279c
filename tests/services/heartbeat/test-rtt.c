/* SPDX-License-Identifier: MIT */
/*
 * A round trip is measured from before the request is written. The
 * write is wrapped (-Wl,--wrap: uv_try_write and uv_write) so that the
 * fake clock moves 5 ms while hostd writes, as a daemon descheduled
 * inside the system call would see it: a send time read after the write
 * makes the round trip 5 ms too short.
 */
#include "host-world.h"

#include "services/heartbeat/heartbeat.h"

#define STALL_US 5000

static struct world *stall_world;

int __real_uv_try_write(uv_stream_t *s, const uv_buf_t bufs[],
			unsigned int n);
int __real_uv_write(uv_write_t *req, uv_stream_t *s, const uv_buf_t bufs[],
		    unsigned int n, uv_write_cb cb);
int __wrap_uv_try_write(uv_stream_t *s, const uv_buf_t bufs[],
			unsigned int n);
int __wrap_uv_write(uv_write_t *req, uv_stream_t *s, const uv_buf_t bufs[],
		    unsigned int n, uv_write_cb cb);

int __wrap_uv_try_write(uv_stream_t *s, const uv_buf_t bufs[],
			unsigned int n)
{
	int r = __real_uv_try_write(s, bufs, n);

	if (stall_world)
		clock_fake_stall(&stall_world->h, STALL_US);
	return r;
}

int __wrap_uv_write(uv_write_t *req, uv_stream_t *s, const uv_buf_t bufs[],
		    unsigned int n, uv_write_cb cb)
{
	int r = __real_uv_write(req, s, bufs, n, cb);

	if (stall_world)
		clock_fake_stall(&stall_world->h, STALL_US);
	return r;
}

static void test_rtt_from_before_the_write(void **state)
{
	struct world *w = *state;
	int64_t rtt;

	world_answer_heartbeats(w);
	stall_world = w;
	world_next_heartbeat(w); /* the tick, its write 5 ms long */
	stall_world = NULL;
	world_answer_heartbeats(w); /* answered at once */
	world_advance(w, 0);
	rtt = world_service_int(w, VMIC_SVC_HEARTBEAT, "rtt_us");
	assert_true(rtt >= STALL_US);
	assert_true(rtt < STALL_US + HCLOCK_SLOT_US);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rtt_from_before_the_write,
						world_setup, world_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
