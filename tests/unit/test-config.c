/* SPDX-License-Identifier: MIT */
/* src/common/config.c: INI files through a table of typed keys. */
#include <errno.h>
#include <stdbool.h>
#include <strings.h>

#include "testutil.h"

#include "common/config.h"
#include "common/log.h"

enum color { RED, GREEN, BLUE };

struct conf {
	bool enabled;
	unsigned count;
	unsigned big;
	unsigned interval_ms;
	char name[16];
	enum color color;
};

static const char *const color_names[] = { "red", "green", "blue" };

static int parse_color(const char *value, void *field, char *err,
		       size_t errsz)
{
	for (size_t i = 0; i < 3; i++)
		if (strcasecmp(value, color_names[i]) == 0) {
			*(enum color *)field = (enum color)i;
			return 0;
		}
	snprintf(err, errsz, "'%s' is not a color (red, green, blue)", value);
	return -EINVAL;
}

static void format_color(const void *field, char *buf, size_t n)
{
	snprintf(buf, n, "%s", color_names[*(const enum color *)field]);
}

static const struct vmic_conf_key keys[] = {
	{ "main", "enabled", VMIC_CONF_BOOL, offsetof(struct conf, enabled),
	  0, 0, 0, NULL, NULL, "switch" },
	{ "main", "count", VMIC_CONF_UINT, offsetof(struct conf, count), 0, 1,
	  100, NULL, NULL, "a count" },
	{ "main", "big", VMIC_CONF_UINT, offsetof(struct conf, big), 0, 0, 0,
	  NULL, NULL, NULL },
	{ "timing", "interval", VMIC_CONF_DURATION,
	  offsetof(struct conf, interval_ms), 0, 100, 3600000, NULL, NULL,
	  "how often" },
	{ "timing", "name", VMIC_CONF_STRING, offsetof(struct conf, name),
	  sizeof(((struct conf *)0)->name), 0, 0, NULL, NULL, NULL },
	{ "timing", "color", VMIC_CONF_CUSTOM, offsetof(struct conf, color), 0,
	  0, 0, parse_color, format_color, NULL },
};

static const struct vmic_conf_table table = { keys, 6 };

static const struct conf defaults = {
	.enabled = false,
	.count = 5,
	.big = 7,
	.interval_ms = 1000,
	.name = "default",
	.color = RED,
};

struct fixture {
	char *dir;
};

/* Field by field: struct padding is not part of the configuration. */
static void assert_conf_equal(const struct conf *a, const struct conf *b)
{
	assert_int_equal(a->enabled, b->enabled);
	assert_int_equal(a->count, b->count);
	assert_int_equal(a->big, b->big);
	assert_int_equal(a->interval_ms, b->interval_ms);
	assert_string_equal(a->name, b->name);
	assert_int_equal(a->color, b->color);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	fx->dir = tu_mkdtemp();
	log_init("test-config", LOG_TARGET_STDERR);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	tu_rmtree(fx->dir);
	free(fx);
	return 0;
}

/* Load `text` as a file; returns the result, fills *c and *log. */
static int load_text(struct fixture *fx, const char *text, struct conf *c,
		     char **log)
{
	struct tu_capture cap;
	char *path = tu_write_file(fx->dir, "test.conf", text, strlen(text));
	int r;

	*c = defaults;
	tu_capture_begin(&cap);
	r = vmic_conf_load(&table, c, path, false);
	*log = tu_capture_end(&cap);
	free(path);
	return r;
}

static void test_load_all_types(void **state)
{
	struct conf c;
	char *log;
	int r;

	r = load_text(*state,
		      "; a comment\n"
		      "# another\n"
		      "[main]\n"
		      "enabled = yes\n"
		      "count=42\n"
		      "big = 4000000000\n"
		      "\n"
		      "[timing]\n"
		      "interval = 1m30s\n"
		      "name = hello world\n"
		      "color = Blue\n",
		      &c, &log);
	assert_int_equal(r, 0);
	assert_string_equal(log, "");
	assert_true(c.enabled);
	assert_int_equal(c.count, 42);
	assert_int_equal(c.big, 4000000000u);
	assert_int_equal(c.interval_ms, 90000);
	assert_string_equal(c.name, "hello world");
	assert_int_equal(c.color, BLUE);
	free(log);
}

static void test_bool_words(void **state)
{
	static const char *const yes[] = { "yes", "TRUE", "on", "1", "Yes" };
	static const char *const no[] = { "no", "false", "OFF", "0" };
	bool b;

	(void)state;
	for (size_t i = 0; i < 5; i++) {
		b = false;
		assert_int_equal(vmic_parse_bool(yes[i], &b), 0);
		assert_true(b);
	}
	for (size_t i = 0; i < 4; i++) {
		b = true;
		assert_int_equal(vmic_parse_bool(no[i], &b), 0);
		assert_false(b);
	}
	assert_int_equal(vmic_parse_bool("y", &b), -EINVAL);
	assert_int_equal(vmic_parse_bool("2", &b), -EINVAL);
	assert_int_equal(vmic_parse_bool("", &b), -EINVAL);
}

static void test_defaults_stand(void **state)
{
	struct conf c;
	char *log;

	assert_int_equal(load_text(*state, "[main]\ncount = 9\n", &c, &log),
			 0);
	assert_int_equal(c.count, 9);
	assert_false(c.enabled);
	assert_int_equal(c.interval_ms, 1000);
	assert_string_equal(c.name, "default");
	free(log);
}

static void test_unknown_keys_warn(void **state)
{
	struct conf c;
	char *log;

	assert_int_equal(load_text(*state,
				   "[main]\n"
				   "count = 3\n"
				   "colour = red\n"
				   "[nosuch]\n"
				   "x = 1\n",
				   &c, &log),
			 0);
	assert_int_equal(c.count, 3);
	assert_non_null(strstr(log, "test.conf:3: unknown key 'colour' in "
				    "[main], ignored"));
	assert_non_null(strstr(log, "test.conf:5: unknown section [nosuch]"));
	assert_non_null(strstr(log, "warning"));
	free(log);
}

struct bad_case {
	const char *text;
	const char *expect; /* in the diagnostics */
};

static void test_bad_values_fail(void **state)
{
	static const struct bad_case cases[] = {
		{ "[main]\nenabled = maybe\n", "test.conf:2: [main] enabled: "
					       "'maybe' is not a boolean" },
		{ "[main]\ncount = 0\n", "0 is out of range (1..100)" },
		{ "[main]\ncount = 101\n", "101 is out of range (1..100)" },
		{ "[main]\ncount = -1\n", "'-1' is not a whole number" },
		{ "[main]\ncount = 1x\n", "'1x' is not a whole number" },
		{ "[main]\ncount = 99999999999999999999999\n",
		  "not a whole number" },
		/* No table maximum: still bounded by the field's type. */
		{ "[main]\nbig = 4294967296\n", "[main] big:" },
		{ "[main]\nbig = 18446744073709551615\n", "[main] big:" },
		{ "[timing]\ninterval = 50ms\n",
		  "'50ms' is out of range (100ms..1h)" },
		{ "[timing]\ninterval = 2h\n", "out of range (100ms..1h)" },
		{ "[timing]\ninterval = soon\n", "'soon' is not a duration" },
		{ "[timing]\nname = 0123456789abcdef\n",
		  "longer than 15 bytes" },
		{ "[timing]\ncolor = pink\n", "'pink' is not a color" },
		/* Would be printed as "name = ;x", which reads as empty. */
		{ "[timing]\nname =;x\n", "may not start with ';'" },
		{ "[timing]\nname =#x\n", "may not start with '#'" },
		{ "[main]\nthis line has no equals sign\n",
		  "test.conf:2: cannot parse this line" },
	};
	struct conf c;
	char *log;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = load_text(*state, cases[i].text, &c, &log);

		if (r != -EINVAL || !strstr(log, cases[i].expect))
			fail_msg("case %zu: r=%d, log '%s', expected '%s'", i,
				 r, log, cases[i].expect);
		free(log);
	}
}

static void test_string_at_limit(void **state)
{
	struct conf c;
	char *log;

	assert_int_equal(load_text(*state,
				   "[timing]\nname = 0123456789abcde\n", &c,
				   &log),
			 0);
	assert_string_equal(c.name, "0123456789abcde");
	free(log);
}

static void test_one_bad_value_rejects_file(void **state)
{
	struct conf c;
	char *log;

	/* Later good lines still load, but the file as a whole fails. */
	assert_int_equal(load_text(*state,
				   "[main]\ncount = 500\nenabled = on\n", &c,
				   &log),
			 -EINVAL);
	assert_true(c.enabled);
	assert_int_equal(c.count, 5);
	free(log);
}

static void test_overlong_line(void **state)
{
	char text[6000];
	struct conf c;
	char *log;
	int n;

	n = snprintf(text, sizeof(text), "[main]\nenabled = yes\nx = ");
	memset(text + n, 'a', 5000);
	snprintf(text + n + 5000, sizeof(text) - (size_t)n - 5000,
		 "\ncount = 7\n");
	assert_int_equal(load_text(*state, text, &c, &log), -EINVAL);
	assert_non_null(strstr(log, "test.conf:3: line longer than"));
	/* The line was skipped whole, and counting resumed after it. */
	assert_int_equal(c.count, 7);
	assert_null(strstr(log, "aaaa"));
	free(log);

	/* The same without a final newline. */
	n = snprintf(text, sizeof(text), "[main]\nx = ");
	memset(text + n, 'b', 3000);
	text[n + 3000] = '\0';
	assert_int_equal(load_text(*state, text, &c, &log), -EINVAL);
	assert_non_null(strstr(log, "test.conf:2: line longer than"));
	free(log);
}

static void test_missing_file(void **state)
{
	struct fixture *fx = *state;
	struct tu_capture cap;
	char *path, *log;
	struct conf c = defaults;

	assert_true(asprintf(&path, "%s/absent.conf", fx->dir) > 0);
	tu_capture_begin(&cap);
	assert_int_equal(vmic_conf_load(&table, &c, path, true), 0);
	log = tu_capture_end(&cap);
	assert_string_equal(log, "");
	free(log);
	assert_conf_equal(&c, &defaults);

	tu_capture_begin(&cap);
	assert_int_equal(vmic_conf_load(&table, &c, path, false), -ENOENT);
	log = tu_capture_end(&cap);
	assert_non_null(strstr(log, "absent.conf"));
	free(log);
	free(path);
}

static void test_set_and_dump(void **state)
{
	struct conf c = defaults;
	char err[256] = "";
	char *out = NULL;
	size_t outlen = 0;
	FILE *f;

	(void)state;
	assert_int_equal(vmic_conf_set(&table, &c, "MAIN", "Count", "77", err,
				       sizeof(err)),
			 0);
	assert_int_equal(c.count, 77);
	assert_int_equal(vmic_conf_set(&table, &c, "main", "nope", "1", err,
				       sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "unknown key [main] nope"));
	assert_int_equal(vmic_conf_set(&table, &c, "main", "count", "1000",
				       err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "out of range"));
	assert_int_equal(c.count, 77);
	assert_int_equal(vmic_conf_set(&table, &c, "timing", "interval",
				       "90s", err, sizeof(err)),
			 0);

	f = open_memstream(&out, &outlen);
	assert_non_null(f);
	vmic_conf_dump(&table, &c, f);
	fclose(f);
	assert_string_equal(out, "[main]\n"
				 "# switch\n"
				 "enabled = no\n"
				 "# a count\n"
				 "count = 77\n"
				 "big = 7\n"
				 "\n"
				 "[timing]\n"
				 "# how often\n"
				 "interval = 90s\n"
				 "name = default\n"
				 "color = red\n");
	free(out);
}

/* What --check-config prints loads back to the same configuration. */
static void test_dump_loads_back(void **state)
{
	struct fixture *fx = *state;
	struct conf c = defaults, back;
	char *out = NULL, *log;
	size_t outlen = 0;
	FILE *f;

	c.enabled = true;
	c.count = 100;
	c.interval_ms = 1500;
	c.color = GREEN;
	snprintf(c.name, sizeof(c.name), "x;y # z");
	f = open_memstream(&out, &outlen);
	vmic_conf_dump(&table, &c, f);
	fclose(f);
	assert_int_equal(load_text(fx, out, &back, &log), 0);
	assert_conf_equal(&back, &c);
	free(log);
	free(out);
}

/* Sizes and long durations: units, ranges, and the shortest spelling. */
struct big_conf {
	uint64_t size;
	uint64_t age_s;
};

static const struct vmic_conf_key big_keys[] = {
	{ "events", "max-size", VMIC_CONF_SIZE,
	  offsetof(struct big_conf, size), 0, 1ull << 20, 1ull << 40, NULL,
	  NULL, NULL },
	{ "events", "max-age", VMIC_CONF_SECONDS,
	  offsetof(struct big_conf, age_s), 0, 3600, 3650ull * 86400, NULL,
	  NULL, NULL },
};

static void test_size_and_seconds(void **state)
{
	static const struct {
		int key;
		const char *in;
		int r;
		uint64_t value;
		const char *out;
	} cases[] = {
		{ 0, "64M", 0, 64ull << 20, "64M" },
		{ 0, "64MiB", 0, 64ull << 20, "64M" },
		{ 0, "1g", 0, 1ull << 30, "1G" },
		{ 0, "1536K", 0, 1536ull << 10, "1536K" },
		{ 0, "1048576", 0, 1ull << 20, "1M" },
		{ 0, "1T", 0, 1ull << 40, "1T" },
		{ 0, "1025G", -EINVAL, 0, NULL },  /* over the maximum */
		{ 0, "1048575", -EINVAL, 0, NULL }, /* under the minimum */
		{ 0, "64 M", -EINVAL, 0, NULL },
		{ 0, "M", -EINVAL, 0, NULL },
		{ 0, "99999999999999999999", -EINVAL, 0, NULL },
		{ 0, "18014398509481984K", -EINVAL, 0, NULL }, /* 2^64 */
		{ 1, "90d", 0, 90ull * 86400, "90d" },
		{ 1, "14d", 0, 14ull * 86400, "2w" },
		{ 1, "36h", 0, 36ull * 3600, "36h" },
		{ 1, "3600", 0, 3600, "1h" },
		{ 1, "3650d", 0, 3650ull * 86400, "3650d" },
		{ 1, "59m", -EINVAL, 0, NULL },
		{ 1, "3651d", -EINVAL, 0, NULL },
		{ 1, "1y", -EINVAL, 0, NULL },
		{ 1, "500ms", -EINVAL, 0, NULL },
	};
	char err[256], out[64];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct big_conf c = { 7, 7 };
		const struct vmic_conf_key *k = &big_keys[cases[i].key];
		uint64_t *field = cases[i].key ? &c.age_s : &c.size;
		int r = vmic_conf_apply(k, &c, cases[i].in, err, sizeof(err));

		if (r != cases[i].r)
			fail_msg("%s: %d, expected %d (%s)", cases[i].in, r,
				 cases[i].r, err);
		if (r < 0) {
			assert_int_equal(*field, 7); /* left as it was */
			assert_true(strlen(err) > 0);
			continue;
		}
		assert_true(*field == cases[i].value);
		vmic_conf_format(k, &c, out, sizeof(out));
		assert_string_equal(out, cases[i].out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_load_all_types, setup,
						teardown),
		cmocka_unit_test(test_bool_words),
		cmocka_unit_test_setup_teardown(test_defaults_stand, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unknown_keys_warn, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_values_fail, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_string_at_limit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_one_bad_value_rejects_file,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_overlong_line, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup,
						teardown),
		cmocka_unit_test(test_set_and_dump),
		cmocka_unit_test(test_size_and_seconds),
		cmocka_unit_test_setup_teardown(test_dump_loads_back, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
