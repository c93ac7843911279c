/* SPDX-License-Identifier: MIT */
/*
 * The backup service's pure parts: the freeze and thaw sequences
 * (engine.c) on a fake freezer that records every step and fails where
 * told, the mount selection (mounts.c) on made-up mount tables, and the
 * codecs (proto.c).
 */
#include <errno.h>

#include "testutil.h"

#include "services/backup/backup.h"
#include "services/backup/freezer.h"
#include "services/backup/mounts.h"

/* The fake: a log of steps ("hook 10-a freeze", "sync", "freeze /x"),
 * and which step fails with what. */
struct fake {
	char log[64][128];
	unsigned n;
	char fail_step[128]; /* the step that fails ("" none) */
	int fail_err;
	int freeze_err_for_all; /* e.g. -EBUSY on every freeze */
	int thaw_err_for_all;
	uint64_t clock_us;
};

/* One step: "WHAT A B" (B may be empty). */
static int note(struct fake *f, const char *what, const char *a,
		const char *b)
{
	char step[128];

	snprintf(step, sizeof(step), "%s%s%s%s%s", what, a[0] ? " " : "", a,
		 b[0] ? " " : "", b);
	if (f->n < 64)
		snprintf(f->log[f->n++], sizeof(f->log[0]), "%s", step);
	f->clock_us += 1000;
	return strcmp(step, f->fail_step) == 0 ? f->fail_err : 0;
}

static int fake_hook(void *ud, const char *name, const char *arg, char *out,
		     size_t n)
{
	int r = note(ud, "hook", name, arg);

	if (r < 0)
		snprintf(out, n, "exit status 3");
	return r;
}

static int fake_sync(void *ud, const struct vmic_bk_mounts *m)
{
	(void)m;
	return note(ud, "sync", "", "");
}

static int fake_freeze(void *ud, const char *path)
{
	struct fake *f = ud;
	int r = note(f, "freeze", path, "");

	return r ? r : f->freeze_err_for_all;
}

static int fake_thaw(void *ud, const char *path)
{
	struct fake *f = ud;
	int r = note(f, "thaw", path, "");

	return r ? r : f->thaw_err_for_all;
}

static uint64_t fake_now(void *ud)
{
	return ((struct fake *)ud)->clock_us;
}

static const struct bk_freezer_ops fake_ops = {
	.hook = fake_hook,
	.sync = fake_sync,
	.freeze = fake_freeze,
	.thaw = fake_thaw,
	.now_us = fake_now,
};

static void setup_plan(struct bk_hooks *h, struct vmic_bk_mounts *m)
{
	memset(h, 0, sizeof(*h));
	memset(m, 0, sizeof(*m));
	h->count = 2;
	strcpy(h->name[0], "10-db");
	strcpy(h->name[1], "20-app");
	m->count = 3;
	strcpy(m->path[0], "/srv");
	strcpy(m->path[1], "/var");
	strcpy(m->path[2], "/");
}

static void assert_log(const struct fake *f, const char *const *want,
		       unsigned n)
{
	for (unsigned i = 0; i < n && i < f->n; i++)
		assert_string_equal(f->log[i], want[i]);
	assert_int_equal(f->n, n);
}

static void test_freeze_then_thaw_order(void **state)
{
	static const char *const want_freeze[] = {
		"hook 10-db freeze", "hook 20-app freeze", "sync",
		"freeze /srv", "freeze /var", "freeze /",
	};
	static const char *const want_thaw[] = {
		"thaw /", "thaw /var", "thaw /srv",
		"hook 20-app thaw", "hook 10-db thaw",
	};
	struct fake f = { .clock_us = 1 };
	struct bk_hooks h;
	struct vmic_bk_mounts m;
	struct bk_freeze_result fr;
	struct bk_thaw_result tr;

	(void)state;
	setup_plan(&h, &m);
	bk_engine_freeze(&fake_ops, &f, &h, &m, &fr);
	assert_int_equal(fr.err, 0);
	assert_log(&f, want_freeze, 6);
	assert_int_equal(fr.frozen.count, 3);
	assert_string_equal(fr.frozen.path[2], "/");
	assert_int_equal(fr.hooks_ms, 2);
	assert_int_equal(fr.freeze_ms, 3);
	f.n = 0;
	bk_engine_thaw(&fake_ops, &f, &h, &fr.frozen, &tr);
	assert_int_equal(tr.err, 0);
	assert_log(&f, want_thaw, 5);
	assert_true(tr.last_thaw_us > fr.first_freeze_us);
}

/* FIFREEZE fails on the second mount: the first is thawed, every hook
 * hears freeze-fail in reverse, nothing is left frozen. */
static void test_freeze_fails_part_way(void **state)
{
	static const char *const want[] = {
		"hook 10-db freeze", "hook 20-app freeze", "sync",
		"freeze /srv", "freeze /var", "thaw /srv",
		"hook 20-app freeze-fail", "hook 10-db freeze-fail",
	};
	struct fake f = { .fail_err = -EOPNOTSUPP };
	struct bk_hooks h;
	struct vmic_bk_mounts m;
	struct bk_freeze_result fr;

	(void)state;
	setup_plan(&h, &m);
	strcpy(f.fail_step, "freeze /var");
	bk_engine_freeze(&fake_ops, &f, &h, &m, &fr);
	assert_int_equal(fr.err, -EOPNOTSUPP);
	assert_int_equal(fr.frozen.count, 0);
	assert_log(&f, want, 8);
	assert_non_null(strstr(fr.output, "FIFREEZE /var"));
}

/* A freeze hook fails: the hooks that ran (it too) hear freeze-fail, no
 * filesystem is touched. */
static void test_hook_fails(void **state)
{
	static const char *const want[] = {
		"hook 10-db freeze", "hook 20-app freeze",
		"hook 20-app freeze-fail", "hook 10-db freeze-fail",
	};
	struct fake f = { .fail_err = -EIO };
	struct bk_hooks h;
	struct vmic_bk_mounts m;
	struct bk_freeze_result fr;

	(void)state;
	setup_plan(&h, &m);
	strcpy(f.fail_step, "hook 20-app freeze");
	bk_engine_freeze(&fake_ops, &f, &h, &m, &fr);
	assert_int_equal(fr.err, -EIO);
	assert_log(&f, want, 4);
	assert_non_null(strstr(fr.output, "hook 20-app freeze failed: exit "
					  "status 3"));
}

/* EBUSY on freeze and EINVAL on thaw read as done (mounted twice); a
 * failed sync is noted, not fatal. */
static void test_busy_and_einval_are_fine(void **state)
{
	struct fake f = { .freeze_err_for_all = -EBUSY,
			  .thaw_err_for_all = -EINVAL,
			  .fail_err = -EIO };
	struct bk_hooks h;
	struct vmic_bk_mounts m;
	struct bk_freeze_result fr;
	struct bk_thaw_result tr;

	(void)state;
	setup_plan(&h, &m);
	strcpy(f.fail_step, "sync");
	bk_engine_freeze(&fake_ops, &f, &h, &m, &fr);
	assert_int_equal(fr.err, 0);
	assert_int_equal(fr.frozen.count, 3);
	assert_non_null(strstr(fr.output, "sync:"));
	bk_engine_thaw(&fake_ops, &f, &h, &fr.frozen, &tr);
	assert_int_equal(tr.err, 0);
}

/* A thaw step that fails does not stop the others. */
static void test_thaw_goes_on(void **state)
{
	static const char *const want[] = {
		"thaw /", "thaw /var", "thaw /srv",
		"hook 20-app thaw", "hook 10-db thaw",
	};
	struct fake f = { .fail_err = -EIO };
	struct bk_hooks h;
	struct vmic_bk_mounts m;
	struct bk_thaw_result tr;

	(void)state;
	setup_plan(&h, &m);
	strcpy(f.fail_step, "thaw /var");
	bk_engine_thaw(&fake_ops, &f, &h, &m, &tr);
	assert_int_equal(tr.err, -EIO);
	assert_log(&f, want, 5);
	assert_non_null(strstr(tr.output, "FITHAW /var"));
}

static const char table[] =
	"sysfs /sys sysfs rw,nosuid 0 0\n"
	"/dev/vda1 / ext4 rw,relatime 0 0\n"
	"tmpfs /run tmpfs rw 0 0\n"
	"/dev/vda2 /srv\\040data xfs rw 0 0\n"
	"/dev/vdb1 /boot/efi vfat rw 0 0\n"
	"/dev/loop0 /snap/core squashfs ro 0 0\n"
	"/dev/loop1 /mnt/scratch ext4 rw 0 0\n"
	"/dev/vdc /mnt/ro ext4 ro,relatime 0 0\n"
	"/dev/vdd /var ext4 rw 0 0\n"
	"/dev/vde /home ext4 rw 0 0\n"
	"/dev/vdf /home ext4 rw 0 0\n";

static void test_mounts_rules(void **state)
{
	struct vmic_bk_mounts m;
	char err[256];

	(void)state;
	assert_int_equal(bk_mounts_select(table, "", "/var", &m, err,
					  sizeof(err)),
			 0);
	/* /dev only, no loop, no ro, no vfat, excludes, once each, / last */
	assert_int_equal(m.count, 3);
	assert_string_equal(m.path[0], "/srv data");
	assert_string_equal(m.path[1], "/home");
	assert_string_equal(m.path[2], "/");
}

static void test_mounts_include(void **state)
{
	struct vmic_bk_mounts m;
	char err[256];

	(void)state;
	assert_int_equal(bk_mounts_select(table, " / , /mnt/scratch", "", &m,
					  err, sizeof(err)),
			 0);
	assert_int_equal(m.count, 2);
	assert_string_equal(m.path[0], "/mnt/scratch");
	assert_string_equal(m.path[1], "/");
	assert_int_equal(bk_mounts_select(table, "/nope", "", &m, err,
					  sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "'/nope'"));
	assert_int_equal(m.count, 0);
	assert_int_equal(bk_mounts_select(table, "/mnt/ro", "", &m, err,
					  sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "read-only"));
}

static void test_codecs(void **state)
{
	static struct vmic_bk_frozen in, out;
	static struct vmic_bk_thawed tin, tout;
	static uint8_t buf[VMIC_BK_THAWED_MAX_LEN];
	struct vmic_bk_freeze f = { .timeout_ms = 5000 }, f2;
	uint8_t flags;
	int n;

	(void)state;
	n = vmic_bk_freeze_encode(&f, buf, sizeof(buf));
	assert_int_equal(n, VMIC_BK_FREEZE_LEN);
	assert_int_equal(vmic_bk_freeze_decode(buf, (size_t)n, &f2), 0);
	assert_int_equal(f2.timeout_ms, 5000);
	buf[4] = 1; /* an unknown flag */
	assert_int_equal(vmic_bk_freeze_decode(buf, (size_t)n, &f2), -EBADMSG);
	in.mounts.count = 2;
	strcpy(in.mounts.path[0], "/srv");
	strcpy(in.mounts.path[1], "/");
	strcpy(in.output, "hook ok");
	in.timeout_ms = 60000;
	n = vmic_bk_frozen_encode(&in, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(vmic_bk_frozen_decode(buf, (size_t)n, &out), 0);
	assert_int_equal(memcmp(&in, &out, sizeof(in)), 0);
	/* short, long, an empty mount point */
	assert_int_equal(vmic_bk_frozen_decode(buf, (size_t)n - 1, &out),
			 -EBADMSG);
	assert_int_equal(vmic_bk_frozen_decode(buf, (size_t)n + 1, &out),
			 -EBADMSG);
	in.mounts.path[1][0] = '\0';
	n = vmic_bk_frozen_encode(&in, buf, sizeof(buf));
	assert_int_equal(vmic_bk_frozen_decode(buf, (size_t)n, &out), -EBADMSG);
	/* too many mounts: refused by both sides */
	in.mounts.count = VMIC_BK_MOUNTS_MAX + 1;
	assert_int_equal(vmic_bk_frozen_encode(&in, buf, sizeof(buf)),
			 -EMSGSIZE);
	tin.reason = VMIC_BK_WHY_SESSION;
	tin.frozen_ms = 7;
	n = vmic_bk_thawed_encode(&tin, buf, sizeof(buf));
	assert_int_equal(vmic_bk_thawed_decode(buf, (size_t)n, &tout), 0);
	assert_int_equal(tout.reason, VMIC_BK_WHY_SESSION);
	buf[0] = VMIC_BK_WHY_COUNT;
	assert_int_equal(vmic_bk_thawed_decode(buf, (size_t)n, &tout),
			 -EBADMSG);
	assert_int_equal(vmic_bk_thaw_encode(0, buf, sizeof(buf)), 1);
	assert_int_equal(vmic_bk_thaw_decode(buf, 1, &flags), 0);
	assert_string_equal(vmic_bk_why_name(VMIC_BK_WHY_TIMEOUT), "timeout");
	assert_null(vmic_bk_why_name(VMIC_BK_WHY_COUNT));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_freeze_then_thaw_order),
		cmocka_unit_test(test_freeze_fails_part_way),
		cmocka_unit_test(test_hook_fails),
		cmocka_unit_test(test_busy_and_einval_are_fine),
		cmocka_unit_test(test_thaw_goes_on),
		cmocka_unit_test(test_mounts_rules),
		cmocka_unit_test(test_mounts_include),
		cmocka_unit_test(test_codecs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
