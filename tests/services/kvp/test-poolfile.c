/* SPDX-License-Identifier: MIT */
/*
 * src/services/kvp/poolfile.c: the hv_kvp_daemon pool files, read and
 * written in a temporary directory, and the locks against writers of
 * both styles (checked from a child process, since locks of one process
 * do not exclude each other).
 */
#include <errno.h>
#include <sys/file.h>
#include <sys/wait.h>

#include "testutil.h"

#include "common/safe-file.h"
#include "services/kvp/kvp.h"
#include "services/kvp/poolfile.h"

struct fixture {
	char *dir;
	int fd;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	umask(022);
	f->dir = tu_mkdtemp();
	f->fd = kvp_file_open(f->dir, 1);
	assert_true(f->fd >= 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close(f->fd);
	tu_rmtree(f->dir);
	free(f);
	return 0;
}

static off_t file_size(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_size;
}

static void append_raw(int fd, const void *rec, size_t n)
{
	assert_int_equal(pwrite(fd, rec, n, file_size(fd)), (ssize_t)n);
}

static void append(int fd, const char *k, const char *v)
{
	uint8_t rec[VMIC_KVP_RECORD];

	kvp_file_record(rec, k, strlen(k), v, strlen(v));
	append_raw(fd, rec, sizeof(rec));
}

static const char *get(const struct kvp_table *t, const char *k)
{
	const struct kvp_rec *r = kvp_table_get(t, k, strlen(k));

	return r ? kvp_rec_value(r) : NULL;
}

static void read_all(int fd, struct kvp_table *t, struct kvp_file_stats *st)
{
	assert_int_equal(kvp_file_read(fd, t, 0, st), 0);
}

static void test_layout(void **state)
{
	uint8_t rec[VMIC_KVP_RECORD];
	char path[4096];
	struct stat st;
	struct fixture *f = *state;

	assert_int_equal(VMIC_KVP_RECORD, 2560);
	memset(rec, 0xAA, sizeof(rec));
	kvp_file_record(rec, "Key", 3, "Value", 5);
	assert_memory_equal(rec, "Key\0\0", 5);
	assert_memory_equal(rec + 512, "Value\0\0", 7);
	for (size_t i = 3; i < 512; i++)
		assert_int_equal(rec[i], 0);
	for (size_t i = 512 + 5; i < sizeof(rec); i++)
		assert_int_equal(rec[i], 0);
	assert_int_equal(kvp_file_path(f->dir, 3, path, sizeof(path)), 0);
	assert_non_null(strstr(path, "/.kvp_pool_3"));
	assert_int_equal(stat(f->dir, &st), 0);
	assert_int_equal(kvp_file_path(f->dir, 1, path, sizeof(path)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(kvp_file_path(f->dir, 1, path, 8), -ENAMETOOLONG);
}

static void test_write_read(void **state)
{
	struct fixture *f = *state;
	struct kvp_table t, back;
	struct kvp_file_stats st;

	kvp_table_init(&t);
	kvp_table_init(&back);
	for (int i = 0; i < 500; i++) {
		char k[32], v[64];

		snprintf(k, sizeof(k), "key %d", i);
		snprintf(v, sizeof(v), "välue %d", i);
		kvp_table_set(&t, k, strlen(k), v, strlen(v), 0, NULL, NULL);
	}
	assert_int_equal(kvp_file_write(f->fd, &t), 0);
	assert_int_equal(file_size(f->fd), 500 * VMIC_KVP_RECORD);
	read_all(f->fd, &back, &st);
	assert_int_equal(st.records, 500);
	assert_int_equal(st.skipped, 0);
	assert_false(st.partial);
	assert_int_equal(back.n, 500);
	assert_string_equal(get(&back, "key 42"), "välue 42");
	/* A smaller table cuts the file. */
	kvp_table_clear(&t);
	assert_int_equal(kvp_file_write(f->fd, &t), 0);
	assert_int_equal(file_size(f->fd), 0);
	read_all(f->fd, &back, &st);
	assert_int_equal(back.n, 0);
	kvp_table_clear(&back);
}

/* Records another writer may leave: invalid ones are skipped, a repeated
 * key counts with its last value, a half record waits. */
static void test_read_what_others_write(void **state)
{
	struct fixture *f = *state;
	uint8_t rec[VMIC_KVP_RECORD];
	struct kvp_table t;
	struct kvp_file_stats st;

	kvp_table_init(&t);
	append(f->fd, "first", "1");
	memset(rec, 'k', sizeof(rec)); /* no NUL in either field */
	append_raw(f->fd, rec, sizeof(rec));
	memset(rec, 0, sizeof(rec)); /* an empty key */
	append_raw(f->fd, rec, sizeof(rec));
	kvp_file_record(rec, "bad", 3, "\xff\xfe", 2); /* not UTF-8 */
	append_raw(f->fd, rec, sizeof(rec));
	append(f->fd, "dup", "old");
	append(f->fd, "dup", "new");
	kvp_file_record(rec, "half", 4, "written", 7);
	append_raw(f->fd, rec, 1000);
	read_all(f->fd, &t, &st);
	assert_int_equal(st.records, 6);
	assert_int_equal(st.skipped, 3);
	assert_true(st.partial);
	assert_int_equal(t.n, 2);
	assert_string_equal(get(&t, "first"), "1");
	assert_string_equal(get(&t, "dup"), "new");
	assert_null(get(&t, "half"));
	/* A bound on what is read. */
	assert_int_equal(kvp_file_read(f->fd, &t, 1, &st), 0);
	assert_int_equal(t.n, 1);
	assert_int_equal(st.over, 2); /* both records of "dup" */
	kvp_table_clear(&t);
}

static void test_set_delete(void **state)
{
	struct fixture *f = *state;
	uint8_t rec[VMIC_KVP_RECORD];
	struct kvp_table t;
	struct kvp_file_stats st;

	kvp_table_init(&t);
	append(f->fd, "a", "1");
	append(f->fd, "b", "2");
	/* In place: same size, same position. */
	assert_int_equal(kvp_file_set(f->fd, "a", 1, "one", 3), 0);
	assert_int_equal(file_size(f->fd), 2 * VMIC_KVP_RECORD);
	assert_int_equal(pread(f->fd, rec, sizeof(rec), 0), (ssize_t)sizeof(rec));
	assert_memory_equal(rec + 512, "one", 4);
	/* New: appended. */
	assert_int_equal(kvp_file_set(f->fd, "c", 1, "3", 1), 0);
	assert_int_equal(file_size(f->fd), 3 * VMIC_KVP_RECORD);
	/* Twice in the file: left once. */
	append(f->fd, "b", "again");
	assert_int_equal(kvp_file_set(f->fd, "b", 1, "two", 3), 0);
	assert_int_equal(file_size(f->fd), 3 * VMIC_KVP_RECORD);
	read_all(f->fd, &t, &st);
	assert_int_equal(st.records, 3);
	assert_string_equal(get(&t, "b"), "two");
	/* Delete: every record of the key, the rest kept in order. */
	append(f->fd, "a", "dup");
	assert_int_equal(kvp_file_delete(f->fd, "a", 1), 1);
	assert_int_equal(kvp_file_delete(f->fd, "a", 1), 0);
	assert_int_equal(file_size(f->fd), 2 * VMIC_KVP_RECORD);
	assert_int_equal(pread(f->fd, rec, sizeof(rec), 0), (ssize_t)sizeof(rec));
	assert_memory_equal(rec, "c\0", 2);
	/* A half record at the end is overwritten by an append. */
	kvp_file_record(rec, "half", 4, "x", 1);
	append_raw(f->fd, rec, 100);
	assert_int_equal(kvp_file_set(f->fd, "d", 1, "4", 1), 0);
	assert_int_equal(file_size(f->fd), 3 * VMIC_KVP_RECORD);
	read_all(f->fd, &t, &st);
	assert_false(st.partial);
	assert_string_equal(get(&t, "d"), "4");
	kvp_table_clear(&t);
}

static void tset(struct kvp_table *t, const char *k, const char *v)
{
	assert_true(kvp_table_set(t, k, strlen(k), v, strlen(v), 0, NULL,
				  NULL) >= 0);
}

/* Changes applied record by record: in place when nothing goes, the rest
 * moved up when something does; the result is what a whole write of the
 * new table would read as. */
static void test_apply(void **state)
{
	struct fixture *f = *state;
	uint8_t rec[VMIC_KVP_RECORD];
	struct kvp_table t, sets, dels;
	struct kvp_file_stats st;

	kvp_table_init(&t);
	kvp_table_init(&sets);
	kvp_table_init(&dels);
	for (int i = 0; i < 200; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%03d", i);
		append(f->fd, k, "old");
	}
	/* Sets only: in place and appended; the file only grows by the new
	 * ones. */
	tset(&sets, "k007", "seven");
	tset(&sets, "k150", "one-fifty");
	tset(&sets, "new", "n");
	assert_int_equal(kvp_file_apply(f->fd, &sets, &dels), 0);
	assert_int_equal(file_size(f->fd), 201 * VMIC_KVP_RECORD);
	assert_int_equal(pread(f->fd, rec, sizeof(rec), 7 * VMIC_KVP_RECORD),
			 (ssize_t)sizeof(rec));
	assert_memory_equal(rec + 512, "seven", 6);
	read_all(f->fd, &t, &st);
	assert_int_equal(t.n, 201);
	assert_string_equal(get(&t, "k150"), "one-fifty");
	assert_string_equal(get(&t, "new"), "n");
	/* Deletes and a duplicate: the rest moves up, one record per key. */
	kvp_table_clear(&sets);
	append(f->fd, "k020", "dup");
	tset(&sets, "k020", "twenty");
	tset(&dels, "k000", "");
	tset(&dels, "k199", "");
	tset(&dels, "missing", "");
	assert_int_equal(kvp_file_apply(f->fd, &sets, &dels), 0);
	read_all(f->fd, &t, &st);
	assert_int_equal(st.records, 199);
	assert_int_equal(t.n, 199);
	assert_int_equal(file_size(f->fd), 199 * VMIC_KVP_RECORD);
	assert_null(get(&t, "k000"));
	assert_null(get(&t, "k199"));
	assert_string_equal(get(&t, "k020"), "twenty");
	assert_string_equal(get(&t, "k007"), "seven");
	/* Nothing to do: nothing changes. */
	kvp_table_clear(&sets);
	kvp_table_clear(&dels);
	assert_int_equal(kvp_file_apply(f->fd, &sets, &dels), 0);
	assert_int_equal(file_size(f->fd), 199 * VMIC_KVP_RECORD);
	kvp_table_clear(&t);
}

/* In a child: try the other lock styles on path without waiting. The
 * exit status says which got through: bit 0 flock, bit 1 fcntl. */
static int try_locks(const char *path)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int fd = open(path, O_RDWR);
		int got = 0;

		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			got |= 1;
		if (fcntl(fd, F_SETLK, &fl) == 0)
			got |= 2;
		_exit(got);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_locks_exclude_both_styles(void **state)
{
	struct fixture *f = *state;
	char path[4096];

	assert_int_equal(kvp_file_path(f->dir, 1, path, sizeof(path)), 0);
	assert_int_equal(try_locks(path), 3);
	assert_int_equal(kvp_file_lock(f->fd, true), 0);
	assert_int_equal(try_locks(path), 0);
	kvp_file_unlock(f->fd);
	assert_int_equal(try_locks(path), 3);
	/* A shared lock keeps writers of either style out as well. */
	assert_int_equal(kvp_file_lock(f->fd, false), 0);
	assert_int_equal(try_locks(path), 0);
	kvp_file_unlock(f->fd);
}

/* A pool file beyond KVP_FILE_MAX_BYTES (sparse: no disk) is refused
 * before it is read, by every function that reads it; a whole write
 * cuts it back to size. */
static void test_size_bound(void **state)
{
	struct fixture *f = *state;
	struct kvp_file_stats st;
	struct kvp_table t, none;

	kvp_table_init(&t);
	kvp_table_init(&none);
	append(f->fd, "k", "v");
	assert_int_equal(ftruncate(f->fd, (off_t)KVP_FILE_MAX_BYTES +
						VMIC_KVP_RECORD),
			 0);
	assert_int_equal(kvp_file_read(f->fd, &t, 0, &st), -EFBIG);
	assert_int_equal(kvp_file_set(f->fd, "a", 1, "b", 1), -EFBIG);
	assert_int_equal(kvp_file_delete(f->fd, "k", 1), -EFBIG);
	assert_int_equal(kvp_file_apply(f->fd, &none, &none), -EFBIG);
	/* 16 GB. */
	assert_int_equal(ftruncate(f->fd, 16LL << 30), 0);
	assert_int_equal(kvp_file_read(f->fd, &t, 0, &st), -EFBIG);
	assert_int_equal(kvp_table_set(&t, "x", 1, "y", 1, 0, NULL, NULL), 1);
	assert_int_equal(kvp_file_write(f->fd, &t), 0);
	assert_int_equal(file_size(f->fd), VMIC_KVP_RECORD);
	read_all(f->fd, &t, &st);
	assert_string_equal(get(&t, "x"), "y");
	kvp_table_clear(&t);
}

/* What others may plant at a pool file's path: a FIFO (never waited
 * on), a symbolic link (never followed); a missing file is not created
 * by a read. */
static void test_foreign_files(void **state)
{
	struct fixture *f = *state;
	char path[4096], target[4096];
	struct stat st;

	assert_int_equal(kvp_file_path(f->dir, 0, path, sizeof(path)), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(kvp_file_open(f->dir, 0), -VMIC_ENOTREG);
	assert_int_equal(kvp_file_open_read(f->dir, 0), -VMIC_ENOTREG);
	assert_int_equal(kvp_file_path(f->dir, 2, path, sizeof(path)), 0);
	snprintf(target, sizeof(target), "%s/elsewhere", f->dir);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(kvp_file_open(f->dir, 2), -ELOOP);
	assert_int_equal(lstat(target, &st), -1); /* not created */
	assert_int_equal(kvp_file_open_read(f->dir, 3), -ENOENT);
	assert_int_equal(kvp_file_path(f->dir, 3, path, sizeof(path)), 0);
	assert_int_equal(lstat(path, &st), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_read, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_read_what_others_write,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_delete, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_apply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locks_exclude_both_styles,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_bound, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_foreign_files, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
