// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for mover/journal.c: header and record encoding, resume after
 * a reopen, a torn tail, a journal of another transfer replaced, and the
 * one durability point of a transfer that ends before its first commit. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "mover/mover.h"

static char dir[] = "/var/tmp/ferry-jnl-XXXXXX";

/* The journal's fdatasync, failing on demand (a mock of a failing disk),
 * and counted. */
static int fail_fdatasync, nr_fdatasync;

int fdatasync(int fd)
{
	nr_fdatasync++;
	if (fail_fdatasync) {
		errno = EIO;
		return -1;
	}
	return (int)syscall(SYS_fdatasync, fd);
}

static struct mover_journal_hdr hdr(void)
{
	struct mover_journal_hdr h = { .image_bytes = 100ULL << 20, .unit_bytes = 1 << 20,
				       .units_total = 100, .dest_dev = 7, .dest_ino = 9 };

	strcpy(h.transfer_id, "t1");
	return h;
}

static void test_encoding(void **state)
{
	struct mover_journal_hdr h = hdr(), g;
	uint8_t buf[MOVER_JOURNAL_HDR_BYTES], rec[MOVER_JOURNAL_REC_BYTES];
	uint64_t u;

	assert_int_equal(mover_journal_hdr_encode(&h, buf), MOVER_JOURNAL_HDR_BYTES);
	assert_int_equal(mover_journal_hdr_decode(buf, &g), 0);
	assert_string_equal(g.transfer_id, "t1");
	assert_true(g.image_bytes == h.image_bytes && g.dest_ino == 9);
	buf[20] ^= 1;
	assert_int_equal(mover_journal_hdr_decode(buf, &g), -EBADMSG);
	mover_journal_rec_encode(1234, 77, rec);
	assert_int_equal(mover_journal_rec_decode(1234, rec, &u), 0);
	assert_true(u == 77);
	assert_int_equal(mover_journal_rec_decode(1235, rec, &u), -EBADMSG);
}

static void test_resume(void **state)
{
	struct mover_journal_hdr h = hdr();
	struct mover_journal *j;
	char path[PATH_MAX];
	bool resumed;
	uint32_t flags;
	uint64_t seq;
	int fd;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(mover_journal_open(&j, dir, &h, &resumed, &flags), 0);
	assert_false(resumed);
	seq = mover_journal_mark(j, 3);
	mover_journal_mark(j, 5);
	assert_true(mover_journal_durable(j) < seq);
	assert_true(mover_journal_test(j, 3));
	assert_int_equal(mover_journal_commit(j, -1, 0), 0);
	assert_true(mover_journal_durable(j) >= seq);
	mover_journal_mark(j, 7); /* never committed: lost */
	mover_journal_close(j);

	assert_int_equal(mover_journal_open(&j, dir, &h, &resumed, &flags), 0);
	assert_true(resumed);
	assert_true(mover_journal_test(j, 3) && mover_journal_test(j, 5));
	assert_false(mover_journal_test(j, 7));
	assert_int_equal(mover_journal_done(j), 2);
	mover_journal_close(j);

	/* A torn record at the end is dropped, the rest kept. */
	snprintf(path, sizeof(path), "%s/t1.journal", dir);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "garbage!", 8), 8);
	close(fd);
	assert_int_equal(mover_journal_open(&j, dir, &h, &resumed, &flags), 0);
	assert_true(resumed);
	assert_int_equal(mover_journal_done(j), 2);
	mover_journal_mark(j, 9);
	assert_int_equal(mover_journal_commit(j, -1, 0), 0);
	mover_journal_close(j);
	assert_int_equal(mover_journal_open(&j, dir, &h, &resumed, &flags), 0);
	assert_int_equal(mover_journal_done(j), 3);
	mover_journal_close(j);

	/* Another destination (inode) with the same id: start afresh. */
	h.dest_ino = 10;
	assert_int_equal(mover_journal_open(&j, dir, &h, &resumed, &flags), 0);
	assert_false(resumed);
	assert_int_equal(mover_journal_done(j), 0);
	assert_int_equal(mover_journal_remove(j), 0);
	mover_journal_close(j);
	assert_int_equal(access(path, F_OK), -1);
	rmdir(dir);
}

/* A part file deleted and created again may have the same (dev, inode);
 * its random identity differs, and so the journal is not trusted. */
static void test_part_identity(void **state)
{
	char d[] = "/var/tmp/ferry-jnl-XXXXXX";
	struct mover_journal_hdr h = hdr();
	struct mover_journal *j;
	bool resumed;
	uint32_t flags;

	assert_non_null(mkdtemp(d));
	h.flags = MOVER_WELCOME_CREATED;
	h.part_id = 0x1111;
	assert_int_equal(mover_journal_open(&j, d, &h, &resumed, &flags), 0);
	mover_journal_mark(j, 1);
	assert_int_equal(mover_journal_commit(j, -1, 0), 0);
	mover_journal_close(j);
	h.part_id = 0x2222; /* same inode, another file */
	assert_int_equal(mover_journal_open(&j, d, &h, &resumed, &flags), 0);
	assert_false(resumed);
	assert_int_equal(mover_journal_done(j), 0);
	mover_journal_remove(j);
	mover_journal_close(j);
	rmdir(d);
}

/* A failed group commit leaves its units not done, and no later commit
 * makes anything durable. */
static void test_commit_fail(void **state)
{
	char d[] = "/var/tmp/ferry-jnl-XXXXXX";
	struct mover_journal_hdr h = hdr();
	struct mover_journal *j;
	bool resumed;
	uint32_t flags;
	uint64_t seq;
	int fd;

	assert_non_null(mkdtemp(d));
	assert_int_equal(mover_journal_open(&j, d, &h, &resumed, &flags), 0);
	fd = open(d, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	seq = mover_journal_mark(j, 4);
	fail_fdatasync = 1;
	assert_int_equal(mover_journal_commit(j, fd, 0), -EIO);
	fail_fdatasync = 0;
	assert_false(mover_journal_test(j, 4));
	assert_int_equal(mover_journal_done(j), 0);
	mover_journal_mark(j, 5);
	assert_int_equal(mover_journal_commit(j, fd, 0), -EIO);
	assert_true(mover_journal_durable(j) < seq);
	assert_int_equal(mover_journal_done(j), 1); /* 5, never durable */
	mover_journal_close(j);
	/* On disk: neither (no commit made the file). */
	assert_int_equal(mover_journal_open(&j, d, &h, &resumed, &flags), 0);
	assert_false(resumed);
	assert_int_equal(mover_journal_done(j), 0);
	mover_journal_remove(j);
	mover_journal_close(j);
	close(fd);
	rmdir(d);
}

/*
 * A journal has no file until a commit has records for it.  A DATA_ONLY
 * commit (the last units of a one-shot transfer) syncs the data once and
 * writes no file, keeping its records: a commit after it (the transfer
 * stopped short of its COMMIT) writes them.  A commit with nothing marked
 * since the last data sync does not sync the data again.
 */
static void test_lazy(void **state)
{
	char d[] = "/var/tmp/ferry-jnl-XXXXXX", path[PATH_MAX];
	struct mover_journal_hdr h = hdr();
	struct mover_journal *j;
	bool resumed;
	uint32_t flags;
	int fd;

	assert_non_null(mkdtemp(d));
	snprintf(path, sizeof(path), "%s/t1.journal", d);
	fd = open(d, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_int_equal(mover_journal_open(&j, d, &h, &resumed, &flags), 0);
	assert_int_equal(access(path, F_OK), -1);
	mover_journal_mark(j, 1);
	mover_journal_mark(j, 2);

	nr_fdatasync = 0;
	assert_int_equal(mover_journal_commit(j, fd, MOVER_JOURNAL_DATA_ONLY), 0);
	assert_int_equal(nr_fdatasync, 1); /* the data, no journal */
	assert_int_equal(access(path, F_OK), -1);
	assert_true(mover_journal_durable(j) >= 1);
	/* Again, with nothing marked since: nothing to sync. */
	assert_int_equal(mover_journal_commit(j, fd, MOVER_JOURNAL_DATA_ONLY), 0);
	assert_int_equal(nr_fdatasync, 1);

	/* The transfer stops short of its commit: its records go out. */
	assert_int_equal(mover_journal_commit(j, fd, 0), 0);
	assert_int_equal(nr_fdatasync, 2); /* the journal only */
	assert_int_equal(access(path, F_OK), 0);
	mover_journal_close(j);
	assert_int_equal(mover_journal_open(&j, d, &h, &resumed, &flags), 0);
	assert_true(resumed);
	assert_int_equal(mover_journal_done(j), 2);
	/* Once the file exists, DATA_ONLY writes the records as well. */
	mover_journal_mark(j, 3);
	nr_fdatasync = 0;
	assert_int_equal(mover_journal_commit(j, fd, MOVER_JOURNAL_DATA_ONLY), 0);
	assert_int_equal(nr_fdatasync, 2);
	mover_journal_close(j);
	assert_int_equal(mover_journal_open(&j, d, &h, &resumed, &flags), 0);
	assert_int_equal(mover_journal_done(j), 3);
	assert_int_equal(mover_journal_remove(j), 0);
	mover_journal_close(j);
	assert_int_equal(access(path, F_OK), -1);

	/* Closed with records never committed: no file, nothing resumed. */
	assert_int_equal(mover_journal_open(&j, d, &h, &resumed, &flags), 0);
	mover_journal_mark(j, 4);
	mover_journal_close(j);
	assert_int_equal(access(path, F_OK), -1);
	close(fd);
	rmdir(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encoding),
		cmocka_unit_test(test_resume),
		cmocka_unit_test(test_part_identity),
		cmocka_unit_test(test_commit_fail),
		cmocka_unit_test(test_lazy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
