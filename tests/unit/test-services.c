/* SPDX-License-Identifier: MIT */
/* src/proto/services.c: the service and message tables. */
#include "testutil.h"

#include "proto/control.h"
#include "services/heartbeat/heartbeat.h"
#include "proto/hello.h"
#include "proto/services.h"
#include "services/shutdown/shutdown.h"

static struct vmic_frame frame(uint8_t service, uint8_t type, uint32_t len)
{
	struct vmic_frame f = { .service = service, .type = type,
				.length = len };
	return f;
}

static int check(uint8_t service, uint8_t type, uint32_t len, uint8_t dir)
{
	struct vmic_frame f = frame(service, type, len);

	return vmic_msg_check(&f, dir);
}

/*
 * A reserved service id this build does not implement (the table grows
 * as services are added, so pick one at run time).
 */
static uint8_t unimplemented_id(void)
{
	for (unsigned id = VMIC_SVC_CONTROL + 1; id < VMIC_SVC_COUNT; id++)
		if (!vmic_service_by_id(id))
			return (uint8_t)id;
	return VMIC_SVC_COUNT;
}

static void test_table_consistent(void **state)
{
	(void)state;
	assert_true(vmic_service_count >= 2);
	for (size_t i = 0; i < vmic_service_count; i++) {
		const struct vmic_service_desc *d = vmic_services[i];

		assert_true(d->id > VMIC_SVC_CONTROL && d->id < VMIC_SVC_COUNT);
		assert_true(d->min_version >= 1);
		assert_true(d->min_version <= d->max_version);
		assert_non_null(d->name);
		assert_non_null(d->display);
		/* In id order, without duplicates. */
		if (i > 0)
			assert_true(d->id > vmic_services[i - 1]->id);
		assert_ptr_equal(vmic_service_by_id(d->id), d);
		assert_ptr_equal(vmic_service_by_name(d->name), d);
	}
}

static void test_lookup(void **state)
{
	const struct vmic_service_desc *d;

	(void)state;
	d = vmic_service_by_name("heartbeat");
	assert_non_null(d);
	assert_int_equal(d->id, VMIC_SVC_HEARTBEAT);
	assert_string_equal(d->display, "Heartbeat");
	assert_true(d->default_on);
	/* Case does not matter. */
	assert_ptr_equal(vmic_service_by_name("HeartBeat"), d);
	assert_ptr_equal(vmic_service_by_name("SHUTDOWN"),
			 vmic_service_by_id(VMIC_SVC_SHUTDOWN));
	/* Unknown names and ids. */
	assert_null(vmic_service_by_name("heartbeats"));
	assert_null(vmic_service_by_name("heart"));
	assert_null(vmic_service_by_name(""));
	assert_null(vmic_service_by_id(VMIC_SVC_CONTROL));
	assert_null(vmic_service_by_id(VMIC_SVC_COUNT));
	assert_null(vmic_service_by_id(200));
	assert_null(vmic_service_by_id(256 + VMIC_SVC_HEARTBEAT));
}

static void test_service_names(void **state)
{
	const char *names = vmic_service_names();
	size_t commas = 0;

	(void)state;
	assert_non_null(strstr(names, "heartbeat"));
	assert_non_null(strstr(names, "shutdown"));
	assert_int_equal(strncmp(names, vmic_services[0]->name,
				 strlen(vmic_services[0]->name)),
			 0);
	for (const char *p = names; (p = strstr(p, ", ")); p += 2)
		commas++;
	assert_int_equal(commas, vmic_service_count - 1);
	/* The same string each time. */
	assert_string_equal(vmic_service_names(), names);
}

static void test_msg_check_known(void **state)
{
	(void)state;
	/* Heartbeat: request host -> guest, reply guest -> host. */
	assert_int_equal(check(VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST,
			       VMIC_HB_REQUEST_LEN, VMIC_DIR_H2G),
			 0);
	assert_int_equal(check(VMIC_SVC_HEARTBEAT, VMIC_HB_REPLY,
			       VMIC_HB_REPLY_MIN_LEN, VMIC_DIR_G2H),
			 0);
	assert_int_equal(check(VMIC_SVC_HEARTBEAT, VMIC_HB_REPLY,
			       VMIC_HB_REPLY_MAX_LEN, VMIC_DIR_G2H),
			 0);
	assert_int_equal(check(VMIC_SVC_SHUTDOWN, VMIC_SD_REQUEST,
			       VMIC_SD_REQUEST_MAX_LEN, VMIC_DIR_H2G),
			 0);
	/* Hello goes both ways. */
	assert_int_equal(check(VMIC_SVC_CONTROL, VMIC_CTL_HELLO, 40,
			       VMIC_DIR_H2G),
			 0);
	assert_int_equal(check(VMIC_SVC_CONTROL, VMIC_CTL_HELLO, 40,
			       VMIC_DIR_G2H),
			 0);
	assert_int_equal(check(VMIC_SVC_CONTROL, VMIC_CTL_INFO,
			       VMIC_INFO_MIN_LEN, VMIC_DIR_G2H),
			 0);
	assert_int_equal(check(VMIC_SVC_CONTROL, VMIC_CTL_SERVICES,
			       VMIC_SERVICES_LEN, VMIC_DIR_H2G),
			 0);
}

static void test_msg_check_unknown(void **state)
{
	(void)state;
	/* Services without an entry in the table: reserved ids too. */
	assert_int_equal(check(unimplemented_id(), 1, 8, VMIC_DIR_H2G),
			 VMIC_E_UNKNOWN_SERVICE);
	assert_int_equal(check(unimplemented_id(), VMIC_T_ERROR, 8,
			       VMIC_DIR_G2H),
			 VMIC_E_UNKNOWN_SERVICE);
	assert_int_equal(check(VMIC_SVC_COUNT, 1, 8, VMIC_DIR_H2G),
			 VMIC_E_UNKNOWN_SERVICE);
	assert_int_equal(check(255, VMIC_T_ERROR, 8, VMIC_DIR_H2G),
			 VMIC_E_UNKNOWN_SERVICE);
	/* Known service, unknown type. */
	assert_int_equal(check(VMIC_SVC_HEARTBEAT, 3, 8, VMIC_DIR_H2G),
			 VMIC_E_UNKNOWN_TYPE);
	assert_int_equal(check(VMIC_SVC_HEARTBEAT, 0, 8, VMIC_DIR_H2G),
			 VMIC_E_UNKNOWN_TYPE);
	assert_int_equal(check(VMIC_SVC_CONTROL, 0x80, 8, VMIC_DIR_G2H),
			 VMIC_E_UNKNOWN_TYPE);
	assert_int_equal(check(VMIC_SVC_SHUTDOWN, 0xFB, 8, VMIC_DIR_G2H),
			 VMIC_E_UNKNOWN_TYPE);
	assert_null(vmic_msg_find(VMIC_SVC_HEARTBEAT, 3));
	assert_null(vmic_msg_find(unimplemented_id(), VMIC_T_ERROR));
	assert_null(vmic_msg_find(200, VMIC_T_STREAM_DATA));
}

static void test_msg_check_direction(void **state)
{
	(void)state;
	/* A guest sending a heartbeat request is a type the host does
	 * not accept; likewise a host sending a reply or guest info. */
	assert_int_equal(check(VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST,
			       VMIC_HB_REQUEST_LEN, VMIC_DIR_G2H),
			 VMIC_E_UNKNOWN_TYPE);
	assert_int_equal(check(VMIC_SVC_HEARTBEAT, VMIC_HB_REPLY,
			       VMIC_HB_REPLY_MIN_LEN, VMIC_DIR_H2G),
			 VMIC_E_UNKNOWN_TYPE);
	assert_int_equal(check(VMIC_SVC_SHUTDOWN, VMIC_SD_REQUEST,
			       VMIC_SD_REQUEST_MIN_LEN, VMIC_DIR_G2H),
			 VMIC_E_UNKNOWN_TYPE);
	assert_int_equal(check(VMIC_SVC_CONTROL, VMIC_CTL_INFO,
			       VMIC_INFO_MIN_LEN, VMIC_DIR_H2G),
			 VMIC_E_UNKNOWN_TYPE);
	assert_int_equal(check(VMIC_SVC_CONTROL, VMIC_CTL_SERVICES,
			       VMIC_SERVICES_LEN, VMIC_DIR_G2H),
			 VMIC_E_UNKNOWN_TYPE);
}

static void test_msg_check_length(void **state)
{
	(void)state;
	assert_int_equal(check(VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST,
			       VMIC_HB_REQUEST_LEN - 1, VMIC_DIR_H2G),
			 VMIC_E_BAD_LENGTH);
	assert_int_equal(check(VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST,
			       VMIC_HB_REQUEST_LEN + 1, VMIC_DIR_H2G),
			 VMIC_E_BAD_LENGTH);
	assert_int_equal(check(VMIC_SVC_HEARTBEAT, VMIC_HB_REPLY,
			       VMIC_HB_REPLY_MIN_LEN - 1, VMIC_DIR_G2H),
			 VMIC_E_BAD_LENGTH);
	assert_int_equal(check(VMIC_SVC_HEARTBEAT, VMIC_HB_REPLY,
			       VMIC_HB_REPLY_MAX_LEN + 1, VMIC_DIR_G2H),
			 VMIC_E_BAD_LENGTH);
	assert_int_equal(check(VMIC_SVC_SHUTDOWN, VMIC_SD_REQUEST,
			       VMIC_SD_REQUEST_MAX_LEN + 1, VMIC_DIR_H2G),
			 VMIC_E_BAD_LENGTH);
	assert_int_equal(check(VMIC_SVC_CONTROL, VMIC_CTL_SERVICES, 3,
			       VMIC_DIR_H2G),
			 VMIC_E_BAD_LENGTH);
	assert_int_equal(check(VMIC_SVC_CONTROL, VMIC_CTL_HELLO, 0,
			       VMIC_DIR_H2G),
			 VMIC_E_BAD_LENGTH);
	assert_int_equal(check(VMIC_SVC_CONTROL, VMIC_CTL_INFO,
			       VMIC_INFO_MAX_LEN + 1, VMIC_DIR_G2H),
			 VMIC_E_BAD_LENGTH);
	/* Length is checked only after service and type. */
	assert_int_equal(check(unimplemented_id(), 1, 0xFFFFFFF, VMIC_DIR_H2G),
			 VMIC_E_UNKNOWN_SERVICE);
}

/* Hello's bounds admit what hello.c actually produces. */
static void test_hello_bounds(void **state)
{
	struct vmic_hello h = { .framework = 1, .role = VMIC_ROLE_HOST,
				.nonce = 1 };
	uint8_t buf[1024];
	int n;

	(void)state;
	n = vmic_hello_encode(&h, buf, sizeof(buf));
	assert_int_equal(check(VMIC_SVC_CONTROL, VMIC_CTL_HELLO, (uint32_t)n,
			       VMIC_DIR_H2G),
			 0);
	assert_int_equal(check(VMIC_SVC_CONTROL, VMIC_CTL_HELLO,
			       (uint32_t)n - 1, VMIC_DIR_H2G),
			 VMIC_E_BAD_LENGTH);
	memset(h.software, 'x', VMIC_SOFTWARE_MAX);
	h.count = VMIC_HELLO_MAX_OFFERS;
	for (int i = 0; i < VMIC_HELLO_MAX_OFFERS; i++)
		h.offers[i] = (struct vmic_offer){ (uint8_t)i, 1, 1, 0 };
	n = vmic_hello_encode(&h, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(check(VMIC_SVC_CONTROL, VMIC_CTL_HELLO, (uint32_t)n,
			       VMIC_DIR_G2H),
			 0);
}

static void test_generic_types(void **state)
{
	static const uint8_t types[] = { VMIC_T_ERROR, VMIC_T_STREAM_DATA,
					 VMIC_T_STREAM_CREDIT,
					 VMIC_T_STREAM_RESET };
	const struct vmic_msg_desc *d;

	(void)state;
	/* Valid in every known service, both ways. */
	for (size_t s = 0; s < vmic_service_count; s++) {
		for (size_t t = 0; t < sizeof(types); t++) {
			d = vmic_msg_find(vmic_services[s]->id, types[t]);
			assert_non_null(d);
			assert_int_equal(d->dir, VMIC_DIR_BOTH);
		}
		assert_int_equal(check(vmic_services[s]->id, VMIC_T_ERROR,
				       VMIC_ERROR_MIN_LEN, VMIC_DIR_H2G),
				 0);
	}
	/* Errors and credits in the control service as well. */
	assert_int_equal(check(VMIC_SVC_CONTROL, VMIC_T_ERROR, 10,
			       VMIC_DIR_G2H),
			 0);
	/* Their own bounds. */
	assert_int_equal(check(VMIC_SVC_SHUTDOWN, VMIC_T_ERROR,
			       VMIC_ERROR_MIN_LEN - 1, VMIC_DIR_G2H),
			 VMIC_E_BAD_LENGTH);
	assert_int_equal(check(VMIC_SVC_SHUTDOWN, VMIC_T_ERROR,
			       VMIC_ERROR_MAX_LEN + 1, VMIC_DIR_G2H),
			 VMIC_E_BAD_LENGTH);
	assert_int_equal(check(VMIC_SVC_HEARTBEAT, VMIC_T_STREAM_CREDIT,
			       VMIC_CREDIT_LEN, VMIC_DIR_G2H),
			 0);
	assert_int_equal(check(VMIC_SVC_HEARTBEAT, VMIC_T_STREAM_CREDIT,
			       VMIC_CREDIT_LEN + 1, VMIC_DIR_G2H),
			 VMIC_E_BAD_LENGTH);
	assert_int_equal(check(VMIC_SVC_SHUTDOWN, VMIC_T_STREAM_DATA, 0,
			       VMIC_DIR_H2G),
			 0);
	assert_int_equal(check(VMIC_SVC_SHUTDOWN, VMIC_T_STREAM_DATA,
			       VMIC_STREAM_CHUNK, VMIC_DIR_H2G),
			 0);
	assert_int_equal(check(VMIC_SVC_SHUTDOWN, VMIC_T_STREAM_DATA,
			       VMIC_STREAM_CHUNK + 1, VMIC_DIR_H2G),
			 VMIC_E_BAD_LENGTH);
	/* Names of messages and errors. */
	d = vmic_msg_find(VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST);
	assert_string_equal(d->name, "heartbeat request");
	assert_string_equal(vmic_error_name(VMIC_E_DISABLED), "disabled");
	assert_string_equal(vmic_error_name(VMIC_E_UNKNOWN_SERVICE),
			    "unknown service");
	assert_string_equal(vmic_error_name(0), "unknown error");
	assert_string_equal(vmic_error_name(-1), "unknown error");
	assert_string_equal(vmic_error_name(VMIC_E_NO_STREAM),
			    "no such stream");
	assert_string_equal(vmic_error_name(VMIC_E_NO_STREAM + 1),
			    "unknown error");
	for (int code = VMIC_E_UNKNOWN_SERVICE; code <= VMIC_E_NO_STREAM; code++)
		assert_string_not_equal(vmic_error_name(code),
					"unknown error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_consistent),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_service_names),
		cmocka_unit_test(test_msg_check_known),
		cmocka_unit_test(test_msg_check_unknown),
		cmocka_unit_test(test_msg_check_direction),
		cmocka_unit_test(test_msg_check_length),
		cmocka_unit_test(test_hello_bounds),
		cmocka_unit_test(test_generic_types),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
