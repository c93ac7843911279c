/* SPDX-License-Identifier: MIT */
/*
 * Files in places the agent does not own (src/common/safe-file.c): a
 * FIFO, a symbolic link, a directory or a huge sparse file at the path
 * is refused at once, never waited on, followed or read.
 */
#include "testutil.h"

#include <errno.h>

#include "common/safe-file.h"

static char *path_in(const char *dir, const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static void test_regular_file(void **state)
{
	char *dir = tu_mkdtemp();
	char *f = tu_write_file(dir, "pid", "1234\n", 5);
	char buf[4];
	char big[64];
	int fd;

	(void)state;
	assert_int_equal(vmic_file_read_small(f, big, sizeof(big), 64), 5);
	assert_string_equal(big, "1234\n");
	/* The buffer bounds the read. */
	assert_int_equal(vmic_file_read_small(f, buf, sizeof(buf), 64), 3);
	assert_string_equal(buf, "123");
	assert_int_equal(vmic_file_read_small(f, buf, 0, 64), -EINVAL);
	/* Larger than the caller allows. */
	assert_int_equal(vmic_file_read_small(f, big, sizeof(big), 4), -EFBIG);
	fd = vmic_file_open(f, O_RDWR, 0, 0);
	assert_true(fd >= 0);
	close(fd);
	free(f);
	tu_rmtree(dir);
}

/* A FIFO with no writer: open and read would block for ever. */
static void test_fifo_refused(void **state)
{
	char *dir = tu_mkdtemp();
	char *f = path_in(dir, "fifo");
	char buf[32];

	(void)state;
	assert_int_equal(mkfifo(f, 0600), 0);
	assert_int_equal(vmic_file_read_small(f, buf, sizeof(buf), 0),
			 -VMIC_ENOTREG);
	assert_int_equal(vmic_file_open(f, O_RDWR, 0, 0), -VMIC_ENOTREG);
	assert_int_equal(vmic_file_open(f, O_RDWR | O_CREAT, 0644, 0),
			 -VMIC_ENOTREG);
	assert_non_null(strstr(vmic_file_strerror(-VMIC_ENOTREG), "FIFO"));
	free(f);
	tu_rmtree(dir);
}

static void test_symlink_and_directory_refused(void **state)
{
	char *dir = tu_mkdtemp();
	char *target = tu_write_file(dir, "target", "secret", 6);
	char *link = path_in(dir, "link");
	char buf[32];

	(void)state;
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(vmic_file_read_small(link, buf, sizeof(buf), 0),
			 -ELOOP);
	assert_int_equal(vmic_file_open(link, O_RDWR | O_CREAT, 0644, 0),
			 -ELOOP);
	assert_non_null(strstr(vmic_file_strerror(-ELOOP), "symbolic link"));
	assert_int_equal(vmic_file_read_small(dir, buf, sizeof(buf), 0),
			 -VMIC_ENOTREG);
	free(target);
	free(link);
	tu_rmtree(dir);
}

/* 16 GB that take no disk: refused by its size, not read. */
static void test_sparse_giant_refused(void **state)
{
	char *dir = tu_mkdtemp();
	char *f = tu_write_file(dir, "huge", "", 0);
	char buf[32];

	(void)state;
	assert_int_equal(truncate(f, 16LL << 30), 0);
	assert_int_equal(vmic_file_open(f, O_RDONLY, 0, 1 << 20), -EFBIG);
	assert_int_equal(vmic_file_read_small(f, buf, sizeof(buf), 4096),
			 -EFBIG);
	free(f);
	tu_rmtree(dir);
}

/* A new file where a FIFO or a symbolic link was planted: the name is
 * replaced, the link's target left alone. */
static void test_create_new_replaces(void **state)
{
	char *dir = tu_mkdtemp();
	char *target = tu_write_file(dir, "target", "secret", 6);
	char *fifo = path_in(dir, "id.new");
	char *link = path_in(dir, "other.new");
	char buf[32];
	struct stat st;
	int fd;

	(void)state;
	assert_int_equal(mkfifo(fifo, 0600), 0);
	fd = vmic_file_create_new(fifo, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "id\n", 3), 3);
	close(fd);
	assert_int_equal(lstat(fifo, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(symlink(target, link), 0);
	fd = vmic_file_create_new(link, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	assert_int_equal(vmic_file_read_small(target, buf, sizeof(buf), 0), 6);
	assert_string_equal(buf, "secret");
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	free(target);
	free(fifo);
	free(link);
	tu_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_regular_file),
		cmocka_unit_test(test_fifo_refused),
		cmocka_unit_test(test_symlink_and_directory_refused),
		cmocka_unit_test(test_sparse_giant_refused),
		cmocka_unit_test(test_create_new_replaces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
