// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for bpf/dirty_bitmap.c: the drained bitmap turned into the
 * byte ranges the mover copies, counting, and rescan reason names.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <linux/types.h>

#include "common.h"
#include "bpf/bpf.h"
#include "bpf/dirty.h"

static void set_bits(struct tracker_bitmap *bm, const uint64_t *bits, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		bm->words[bits[i] / 64] |= 1ULL << (bits[i] % 64);
}

static struct tracker_bitmap make(uint64_t gran, uint64_t nbits, uint64_t size)
{
	struct tracker_bitmap bm;

	tracker_bitmap_init(&bm);
	assert_int_equal(tracker_bitmap_resize(&bm, nbits), 0);
	bm.granularity_bytes = gran;
	bm.size_bytes = size;
	return bm;
}

static void test_empty(void **state)
{
	struct tracker_bitmap bm = make(4096, 1000, 0);
	struct ferry_range *r = (void *)1;
	size_t n = 7;

	assert_int_equal(tracker_bitmap_ranges(&bm, 0, &r, &n), 0);
	assert_int_equal(n, 0);
	assert_null(r);
	assert_int_equal(tracker_bitmap_count(&bm), 0);
	tracker_bitmap_fini(&bm);
}

static void test_merge_adjacent(void **state)
{
	/* Runs across a word boundary (63, 64, 65) merge into one range. */
	static const uint64_t bits[] = { 0, 1, 2, 10, 63, 64, 65, 200 };
	struct tracker_bitmap bm = make(65536, 256, 0);
	struct ferry_range *r;
	size_t n;

	set_bits(&bm, bits, ARRAY_SIZE(bits));
	assert_int_equal(tracker_bitmap_count(&bm), ARRAY_SIZE(bits));
	assert_true(tracker_bitmap_test(&bm, 64));
	assert_false(tracker_bitmap_test(&bm, 66));
	assert_false(tracker_bitmap_test(&bm, 100000));
	assert_int_equal(tracker_bitmap_ranges(&bm, 0, &r, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(r[0].offset_bytes, 0);
	assert_int_equal(r[0].length_bytes, 3 * 65536);
	assert_int_equal(r[1].offset_bytes, 10 * 65536);
	assert_int_equal(r[1].length_bytes, 65536);
	assert_int_equal(r[2].offset_bytes, 63 * 65536);
	assert_int_equal(r[2].length_bytes, 3 * 65536);
	assert_int_equal(r[3].offset_bytes, 200 * 65536);
	assert_int_equal(r[3].length_bytes, 65536);
	free(r);
	tracker_bitmap_fini(&bm);
}

static void test_full_words(void **state)
{
	struct tracker_bitmap bm = make(4096, 64 * 3, 0);
	struct ferry_range *r;
	size_t n;

	memset(bm.words, 0xff, 3 * sizeof(uint64_t));
	assert_int_equal(tracker_bitmap_count(&bm), 192);
	assert_int_equal(tracker_bitmap_ranges(&bm, 0, &r, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(r[0].offset_bytes, 0);
	assert_int_equal(r[0].length_bytes, 192 * 4096);
	free(r);
	tracker_bitmap_fini(&bm);
}

static void test_bits_past_nbits_ignored(void **state)
{
	/* nbits not a multiple of 64: stray bits in the last word do not count. */
	struct tracker_bitmap bm = make(4096, 70, 0);
	struct ferry_range *r;
	size_t n;

	bm.words[1] = ~0ULL;
	assert_int_equal(tracker_bitmap_count(&bm), 6);
	assert_int_equal(tracker_bitmap_ranges(&bm, 0, &r, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(r[0].offset_bytes, 64 * 4096);
	assert_int_equal(r[0].length_bytes, 6 * 4096);
	free(r);
	tracker_bitmap_fini(&bm);
}

static void test_max_len_split(void **state)
{
	/* 10 blocks of 64 KiB in a row, at most 256 KiB per range: 4 + 4 + 2. */
	struct tracker_bitmap bm = make(65536, 64, 0);
	struct ferry_range *r;
	size_t n;

	bm.words[0] = 0x3ffULL << 5;
	assert_int_equal(tracker_bitmap_ranges(&bm, 256 * 1024, &r, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(r[0].offset_bytes, 5 * 65536);
	assert_int_equal(r[0].length_bytes, 4 * 65536);
	assert_int_equal(r[1].offset_bytes, 9 * 65536);
	assert_int_equal(r[2].offset_bytes, 13 * 65536);
	assert_int_equal(r[2].length_bytes, 2 * 65536);
	free(r);
	/* A limit below one block still yields whole blocks. */
	assert_int_equal(tracker_bitmap_ranges(&bm, 1000, &r, &n), 0);
	assert_int_equal(n, 10);
	assert_int_equal(r[9].length_bytes, 65536);
	free(r);
	tracker_bitmap_fini(&bm);
}

static void test_clip_at_size(void **state)
{
	/* A 100 KiB disk at 64 KiB: the last block is cut to the size. */
	struct tracker_bitmap bm = make(65536, 2, 100 * 1024);
	struct ferry_range *r;
	size_t n;

	bm.words[0] = 3;
	assert_int_equal(tracker_bitmap_ranges(&bm, 0, &r, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(r[0].offset_bytes, 0);
	assert_int_equal(r[0].length_bytes, 100 * 1024);
	free(r);
	/* Blocks entirely past the size are dropped. */
	bm.size_bytes = 1024;
	bm.words[0] = 2;
	assert_int_equal(tracker_bitmap_ranges(&bm, 0, &r, &n), 0);
	assert_int_equal(n, 0);
	tracker_bitmap_fini(&bm);
}

static void test_resize_zeroes(void **state)
{
	struct tracker_bitmap bm = make(4096, 128, 0);

	bm.words[1] = 5;
	assert_int_equal(tracker_bitmap_resize(&bm, 64 * 100), 0);
	assert_int_equal(bm.nbits, 6400);
	assert_int_equal(tracker_bitmap_count(&bm), 0);
	assert_int_equal(tracker_bitmap_resize(&bm, 10), 0);
	assert_int_equal(bm.nbits, 10);
	tracker_bitmap_fini(&bm);
	assert_null(bm.words);
}

static void test_rescan_str(void **state)
{
	char buf[128];

	assert_string_equal(tracker_rescan_str(0, buf, sizeof(buf)), "none");
	assert_string_equal(tracker_rescan_str(DIRTY_RESCAN_MMAP, buf, sizeof(buf)), "mmap");
	assert_string_equal(tracker_rescan_str(DIRTY_RESCAN_SHRINK | DIRTY_RESCAN_IO_URING, buf,
					       sizeof(buf)),
			    "shrink,io_uring");
	assert_string_equal(tracker_rescan_str(1u << 30, buf, sizeof(buf)), "unknown");
	/* Truncated, never overrun. */
	assert_string_equal(tracker_rescan_str(DIRTY_RESCAN_MMAP | DIRTY_RESCAN_SHRINK, buf, 7),
			    "mmap,s");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_merge_adjacent),
		cmocka_unit_test(test_full_words),
		cmocka_unit_test(test_bits_past_nbits_ignored),
		cmocka_unit_test(test_max_len_split),
		cmocka_unit_test(test_clip_at_size),
		cmocka_unit_test(test_resize_zeroes),
		cmocka_unit_test(test_rescan_str),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
