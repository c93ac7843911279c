/* SPDX-License-Identifier: MIT */
/*
 * The shutdown service's host half (`vmic stop`) on a fake clock
 * (tests/unit/host-world.h): the request's own deadline, a late error
 * after "accepted", a poweroff that never reads as Lost Communication,
 * and a power backend changed while it runs.
 */
#include "host-world.h"

#include "services/shutdown/shutdown.h"

/* Run `vmic stop` as the control socket would, with no client to hear
 * the reply: the outcome is read from the events. */
static void stop(struct world *w, const char *json)
{
	world_command(w, "stop", json);
}

static void guest_sd_accept(struct world *w, const struct rframe *req)
{
	uint8_t buf[VMIC_HDR_SIZE + VMIC_SD_REPLY_MAX_LEN];
	struct vmic_sd_reply m = { .status = 0 };
	int n;

	snprintf(m.message, sizeof(m.message), "running poweroff");
	n = vmic_sd_reply_encode(&m, buf + VMIC_HDR_SIZE,
				 VMIC_SD_REPLY_MAX_LEN);
	guest_send(w, buf,
		   vmic_frame_seal(buf, VMIC_SVC_SHUTDOWN, VMIC_SD_REPLY,
				   VMIC_F_REPLY, req->f.request_id, 0,
				   (size_t)n));
}

/* The guest never answers: the request's own deadline ends the stop. */
static void test_stop_request_times_out(void **state)
{
	struct world *w = *state;
	struct rframe r;

	world_answer_heartbeats(w);
	stop(w, "{\"timeout_ms\": 30000}");
	assert_true(guest_take(w, VMIC_SVC_SHUTDOWN, VMIC_SD_REQUEST, &r));
	world_advance(w, 29 * SEC);
	assert_false(world_has_event(w, "shutdown", "stop failed"));
	world_advance(w, 2 * SEC);
	assert_true(world_has_event(w, "shutdown", "no answer from the guest after "
					     "30000ms"));
	assert_true(world_has_event(w, "shutdown", "stop failed (timeout)"));
	assert_int_equal(requests_waiting(w->vm, VMIC_SVC_SHUTDOWN), 0);
}

/* Accepted, then the command fails: the late error ends it at once. */
static void test_stop_late_error(void **state)
{
	struct world *w = *state;
	uint8_t buf[VMIC_HDR_SIZE + VMIC_ERROR_MAX_LEN];
	struct rframe r;

	world_answer_heartbeats(w);
	stop(w, "{\"timeout_ms\": 60000}");
	assert_true(guest_take(w, VMIC_SVC_SHUTDOWN, VMIC_SD_REQUEST, &r));
	guest_sd_accept(w, &r);
	assert_true(world_has_event(w, "shutdown", "guest accepted"));
	guest_send(w, buf,
		   vmic_error_frame(buf, VMIC_SVC_SHUTDOWN, r.f.request_id,
				    VMIC_E_FAILED,
				    "shutdown command 'poweroff' failed: exit "
				    "status 3"));
	assert_true(world_has_event(w, "shutdown", "stop failed (failed)"));
	assert_true(world_has_event(w, "shutdown", "exit status 3"));
	assert_string_equal(world_service_string(w, VMIC_SVC_HEARTBEAT, "state"), "OK");
}

/*
 * An orderly poweroff: silence is expected, so the heartbeat and every
 * service read No Contact, never Lost Communication, even when the
 * guest's answers stop long before the channel closes.
 */
static void test_stop_is_never_lost(void **state)
{
	struct world *w = *state;
	struct rframe r;

	world_answer_heartbeats(w);
	stop(w, "{\"timeout_ms\": 60000}");
	assert_true(guest_take(w, VMIC_SVC_SHUTDOWN, VMIC_SD_REQUEST, &r));
	guest_sd_accept(w, &r);
	world_advance(w, 10 * SEC); /* the guest shuts down, answers nothing */
	assert_string_equal(world_service_string(w, VMIC_SVC_HEARTBEAT, "state"), "No Contact");
	guest_disconnect(w);
	close(w->g.listen_fd); /* the VM is gone: reconnects fail */
	w->g.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	unlink(w->g.path);
	for (int i = 0; i < 100 && !world_has_event(w, "shutdown", "stop finished");
	     i++) {
		usleep(5000);
		world_pump(w);
	}
	assert_true(world_has_event(w, "shutdown", "VM gone"));
	assert_true(world_has_event(w, "shutdown", "stop finished: stopped"));
	assert_string_equal(world_service_string(w, VMIC_SVC_HEARTBEAT, "state"), "No Contact");
	assert_string_equal(world_service_string(w, VMIC_SVC_SHUTDOWN, "primary_status"), "No Contact");
	assert_false(world_any_event_to(w, "Lost Communication"));
}

/*
 * `vmic set --power-off` while a qmp: power-off is under way frees the
 * VM's string; the operation must have its own copy (the failure names
 * the socket it tried, and ASan sees no use after free).
 */
static void test_power_off_keeps_its_path(void **state)
{
	struct world *w = *state;
	char old[200];

	snprintf(old, sizeof(old), "qmp:%s/no-such-qmp.sock", w->dir);
	w->vm->power_off = strdup(old);
	stop(w, "{\"turn_off\": true}");
	free(w->vm->power_off); /* what `vmic set --power-off` does */
	w->vm->power_off = strdup("qmp:/elsewhere/other.sock");
	for (int i = 0; i < 100 && !world_has_event(w, "shutdown", "stop failed");
	     i++)
		world_pump(w);
	assert_true(world_has_event(w, "shutdown", "no-such-qmp.sock"));
	assert_false(world_has_event(w, "shutdown", "/elsewhere/other.sock"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stop_request_times_out, world_setup,
						world_teardown),
		cmocka_unit_test_setup_teardown(test_stop_late_error, world_setup,
						world_teardown),
		cmocka_unit_test_setup_teardown(test_stop_is_never_lost, world_setup,
						world_teardown),
		cmocka_unit_test_setup_teardown(test_power_off_keeps_its_path, world_setup,
						world_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
