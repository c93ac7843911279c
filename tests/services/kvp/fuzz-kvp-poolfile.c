/* SPDX-License-Identifier: MIT */
/*
 * The pool-file reader on any bytes, as another program may leave a
 * .kvp_pool_N: what it keeps is valid (a non-empty key, UTF-8, within
 * the limits, in order), every whole record is counted as kept, skipped
 * or a repeated key, and writing the table and reading it again gives
 * the same table; a set and a delete on the file keep it readable (a
 * half record at its end, a writer still at work, may stay).
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/utf8.h"
#include "fuzz.h"
#include "services/kvp/kvp.h"
#include "services/kvp/poolfile.h"

static int fd = -1;

static void load(const uint8_t *data, size_t size)
{
	FUZZ_CHECK(ftruncate(fd, 0) == 0);
	FUZZ_CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);
}

static void check_same(const struct kvp_table *a, const struct kvp_table *b)
{
	FUZZ_CHECK(a->n == b->n && a->bytes == b->bytes);
	for (size_t i = 0; i < a->n; i++)
		FUZZ_CHECK(strcmp(kvp_rec_key(a->recs[i]),
				  kvp_rec_key(b->recs[i])) == 0 &&
			   strcmp(kvp_rec_value(a->recs[i]),
				  kvp_rec_value(b->recs[i])) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvp_table t, again;
	struct kvp_file_stats st;

	if (size > 64 * VMIC_KVP_RECORD)
		return 0;
	kvp_table_init(&t);
	kvp_table_init(&again);
	load(data, size);
	FUZZ_CHECK(kvp_file_read(fd, &t, 0, &st) == 0);
	FUZZ_CHECK(st.records == size / VMIC_KVP_RECORD);
	FUZZ_CHECK(st.partial == (size % VMIC_KVP_RECORD != 0));
	FUZZ_CHECK(t.n + st.skipped <= st.records);
	for (size_t i = 0; i < t.n; i++) {
		const struct kvp_rec *r = t.recs[i];

		FUZZ_CHECK(vmic_kvp_check(kvp_rec_key(r), r->klen,
					  kvp_rec_value(r), r->vlen) == NULL);
	}
	FUZZ_CHECK(kvp_file_write(fd, &t) == 0);
	FUZZ_CHECK(kvp_file_read(fd, &again, 0, &st) == 0);
	FUZZ_CHECK(st.skipped == 0 && !st.partial);
	check_same(&t, &again);

	/* The file as it came, then a set, and a delete of its first key
	 * (unless that is the key just set). */
	load(data, size);
	FUZZ_CHECK(kvp_file_set(fd, "fuzz", 4, "value", 5) == 0);
	if (t.n && strcmp(kvp_rec_key(t.recs[0]), "fuzz") != 0)
		FUZZ_CHECK(kvp_file_delete(fd, kvp_rec_key(t.recs[0]),
					   t.recs[0]->klen) == 1);
	FUZZ_CHECK(kvp_file_read(fd, &again, 0, &st) == 0);
	FUZZ_CHECK(kvp_table_get(&again, "fuzz", 4) != NULL);
	if (t.n && strcmp(kvp_rec_key(t.recs[0]), "fuzz") != 0)
		FUZZ_CHECK(kvp_table_get(&again, kvp_rec_key(t.recs[0]),
					 t.recs[0]->klen) == NULL);
	/* Changes applied record by record read as the table with them. */
	{
		struct kvp_table sets, dels;

		kvp_table_init(&sets);
		kvp_table_init(&dels);
		kvp_table_set(&sets, "fuzz", 4, "v2", 2, 0, NULL, NULL);
		kvp_table_set(&t, "fuzz", 4, "v2", 2, 0, NULL, NULL);
		if (t.n > 1) {
			const struct kvp_rec *d = t.recs[t.n / 2];

			if (strcmp(kvp_rec_key(d), "fuzz") != 0) {
				kvp_table_set(&dels, kvp_rec_key(d), d->klen,
					      "", 0, 0, NULL, NULL);
				kvp_table_delete(&t, kvp_rec_key(d), d->klen);
			}
		}
		load(data, size);
		FUZZ_CHECK(kvp_file_apply(fd, &sets, &dels) == 0);
		FUZZ_CHECK(kvp_file_read(fd, &again, 0, &st) == 0);
		check_same(&t, &again);
		kvp_table_clear(&sets);
		kvp_table_clear(&dels);
	}
	kvp_table_clear(&t);
	kvp_table_clear(&again);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fd = memfd_create("kvp_pool", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	return 0;
}
