// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for mover/extent.c and mover/codec.c: ranges, work units,
 * hole mapping, zero runs, and the compression policy. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "mover/mover.h"

static void test_ranges(void **state)
{
	struct ferry_range r[] = { { 100, 10 }, { 0, 50 }, { 40, 20 }, { 110, 5 }, { 200, 1 } };
	size_t n = ARRAY_SIZE(r);
	struct ferry_range bad = { 10, 0 }, out = { 990, 11 };
	size_t one = 1;

	assert_int_equal(mover_ranges_normalize(r, &n, 1000), 0);
	assert_int_equal(n, 3);
	assert_true(r[0].offset_bytes == 0 && r[0].length_bytes == 60);
	assert_true(r[1].offset_bytes == 100 && r[1].length_bytes == 15); /* adjacent: merged */
	assert_true(r[2].offset_bytes == 200 && r[2].length_bytes == 1);
	assert_int_equal(mover_ranges_normalize(&bad, &one, 1000), -EINVAL);
	assert_int_equal(mover_ranges_normalize(&out, &one, 1000), -ERANGE);
	out = (struct ferry_range){ 1, UINT64_MAX };
	assert_int_equal(mover_ranges_normalize(&out, &one, 1000), -ERANGE);
	assert_true(mover_ranges_digest(r, n) != 0);
	assert_true(mover_ranges_digest(r, n) != mover_ranges_digest(r, n - 1));
}

static void test_plan(void **state)
{
	struct ferry_range r[] = { { 1, 10 }, { (2 << 20) - 5, 10 }, { 5 << 20, 3 << 20 } };
	struct mover_plan p;
	uint64_t U = 1 << 20;

	/* Whole image: one part per unit, the last one short. */
	assert_int_equal(mover_plan_build(&p, 3 * U + 7, U, NULL, 0), 0);
	assert_int_equal(p.nr_units, 4);
	assert_true(p.units[3].bytes == 7 && p.total_bytes == 3 * U + 7 && p.digest == 0);
	mover_plan_free(&p);
	/* Empty image: nothing to send. */
	assert_int_equal(mover_plan_build(&p, 0, U, NULL, 0), 0);
	assert_int_equal(p.nr_units, 0);
	mover_plan_free(&p);
	/* Ranges are cut at unit boundaries and grouped per unit. */
	assert_int_equal(mover_plan_build(&p, 10 * U, U, r, ARRAY_SIZE(r)), 0);
	assert_true(p.ranges && p.digest);
	assert_int_equal(p.nr_units, 1 + 2 + 3);
	assert_true(p.units[0].index == 0 && p.units[0].bytes == 10);
	assert_true(p.units[1].index == 1 && p.units[1].bytes == 5);
	assert_true(p.units[2].index == 2 && p.units[2].bytes == 5);
	assert_true(p.units[3].index == 5 && p.units[5].index == 7);
	assert_true(p.total_bytes == 10 + 10 + 3 * U);
	mover_plan_free(&p);
}

static void test_zero_runs(void **state)
{
	size_t len = 5 * MOVER_BLOCK + 100, n;
	uint8_t *b = calloc(1, len);
	bool zero;

	assert_true(mover_is_zero(b, len));
	b[len - 1] = 1;
	assert_false(mover_is_zero(b, len));
	b[2 * MOVER_BLOCK + 7] = 9;
	/* 2 zero blocks, 1 data block, 2 zero blocks, data tail */
	n = mover_run_len(b, len, 0, &zero);
	assert_true(zero && n == 2 * MOVER_BLOCK);
	n = mover_run_len(b + 2 * MOVER_BLOCK, len - 2 * MOVER_BLOCK, 2 * MOVER_BLOCK, &zero);
	assert_true(!zero && n == MOVER_BLOCK);
	n = mover_run_len(b + 3 * MOVER_BLOCK, len - 3 * MOVER_BLOCK, 3 * MOVER_BLOCK, &zero);
	assert_true(zero && n == 2 * MOVER_BLOCK);
	n = mover_run_len(b + 5 * MOVER_BLOCK, 100, 5 * MOVER_BLOCK, &zero);
	assert_true(!zero && n == 100);
	/* Blocks follow absolute offsets: a buffer starting mid-block. */
	memset(b, 0, len);
	b[10] = 1;
	n = mover_run_len(b, len, 100, &zero);
	assert_true(!zero && n == MOVER_BLOCK - 100);
	n = mover_run_len(b + 2 * MOVER_BLOCK - 100, len - 2 * MOVER_BLOCK + 100, 2 * MOVER_BLOCK,
			  &zero);
	assert_true(zero);
	free(b);
}

static void test_extent_map(void **state)
{
	char path[] = "/var/tmp/ferry-unit-XXXXXX";
	struct mover_segs s = { 0 };
	uint8_t buf[65536];
	uint64_t data = 0, hole = 0;
	int fd = mkstemp(path);
	size_t i;

	assert_true(fd >= 0);
	unlink(path);
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(ftruncate(fd, 8 << 20), 0);
	assert_int_equal(pwrite_full(fd, buf, sizeof(buf), 1 << 20), 0);
	assert_int_equal(pwrite_full(fd, buf, sizeof(buf), 5 << 20), 0);
	assert_int_equal(mover_extent_map(fd, true, 0, 8 << 20, &s), 0);
	for (i = 0; i < s.n; i++) {
		if (s.v[i].data)
			data += s.v[i].len;
		else
			hole += s.v[i].len;
		if (i)
			assert_true(s.v[i].off == s.v[i - 1].off + s.v[i - 1].len);
	}
	assert_true(data + hole == 8 << 20);
	assert_true(data >= 2 * sizeof(buf) && data < (1 << 20)); /* file system granules */
	/* Not seekable (a device): all data. */
	s.n = 0;
	assert_int_equal(mover_extent_map(fd, false, 4096, 100, &s), 0);
	assert_true(s.n == 1 && s.v[0].data && s.v[0].len == 100);
	mover_segs_free(&s);
	close(fd);
}

static void test_policy(void **state)
{
	struct mover_codec c;
	uint8_t *rnd = malloc(1 << 20), *txt = malloc(1 << 20);

	/* Two levels, [0] 3 and [1] -3, at one ratio (none measured per level). */
	const double nr[2] = { 0, 0 };

	/* Incompressible: raw whatever the link. */
	assert_int_equal(mover_policy_zstd(0.99, 50e6, (double[]){ 300e6, 500e6 }, nr, 2), 0);
	/* Link rate not known (not link-bound yet, or a Unix socket): raw. */
	assert_int_equal(mover_policy_zstd(0.3, 0, (double[]){ 300e6, 500e6 }, nr, 2), 0);
	/* Compressor not measured yet: measure the first level. */
	assert_int_equal(mover_policy_zstd(0.3, 50e6, (double[]){ 0, 0 }, nr, 2), 1);
	/* 1 Gbit/s shared by two connections, both outrun it: at one ratio the
	 * rates are the same, L / r, and the first (stronger) level keeps it. */
	assert_int_equal(mover_policy_zstd(0.35, 59e6, (double[]){ 300e6, 500e6 }, nr, 2), 1);
	/* A busy CPU: level 3 at 60 MB/s is too slow, the fast level is not. */
	assert_int_equal(mover_policy_zstd(0.35, 59e6, (double[]){ 60e6, 0 }, nr, 2), 0);
	assert_int_equal(mover_policy_zstd(0.35, 59e6, (double[]){ 60e6, 110e6 }, nr, 2), 2);
	/* 10 Gbit/s: the link outruns both: raw. */
	assert_int_equal(mover_policy_zstd(0.35, 560e6, (double[]){ 300e6, 500e6 }, nr, 2), 0);
	/* Perfect ratio (could anything pay?): the compressors' own speeds. */
	assert_int_equal(mover_policy_zstd(0.0, 100e6, (double[]){ 110e6, 400e6 }, nr, 2), 2);
	assert_int_equal(mover_policy_zstd(0.0, 500e6, (double[]){ 300e6, 400e6 }, nr, 2), 0);

	/*
	 * The ladder 3, -3, 6, 9 with each level's measured ratio, 15 MB/s of
	 * link per connection (1 Gbit/s over 8).  9 is CPU-bound, min(40,
	 * 15 / 0.30) = 40 MB/s of data; 6 fills the link at its ratio,
	 * min(90, 15 / 0.32) = 47, with fewer bytes than 3 (15 / 0.35 = 43):
	 * 6 wins.
	 */
	const double r4[4] = { 0.35, 0.50, 0.32, 0.30 };

	assert_int_equal(mover_policy_zstd(0.4, 15e6, (double[]){ 300e6, 600e6, 90e6, 40e6 }, r4, 4),
			 3);
	/* A faster CPU: 9 fills the link too (15 / 0.30 = 50 MB/s). */
	assert_int_equal(mover_policy_zstd(0.4, 15e6, (double[]){ 300e6, 600e6, 160e6, 80e6 }, r4, 4),
			 4);
	/* A busy CPU: 3 at 20 MB/s, 6 and 9 slower, -3 fills the link at 30. */
	assert_int_equal(mover_policy_zstd(0.4, 15e6, (double[]){ 20e6, 60e6, 8e6, 3e6 }, r4, 4), 2);
	/* Levels not measured yet (0) are left to probes. */
	assert_int_equal(mover_policy_zstd(0.4, 15e6, (double[]){ 300e6, 0, 0, 0 }, r4, 4), 1);
	/* A level that did not shrink its chunks (ratio 1) never beats raw. */
	assert_int_equal(mover_policy_zstd(0.4, 15e6, (double[]){ 300e6, 0, 0, 0 },
					   (double[]){ 1.0, 0, 0, 0 }, 4),
			 0);

	/* The ladders: auto 3, -3, 6, 9; auto:N up to N; zstd:N only N. */
	assert_int_equal(mover_codec_init(&c, MOVER_COMPRESS_AUTO, 0), 0);
	assert_int_equal(c.nlevels, 4);
	assert_true(c.levels[0] == 3 && c.levels[1] == -3 && c.levels[2] == 6 && c.levels[3] == 9);
	assert_int_equal(mover_codec_init(&c, MOVER_COMPRESS_AUTO, 3), 0);
	assert_true(c.nlevels == 2 && c.levels[0] == 3 && c.levels[1] == -3);
	assert_int_equal(mover_codec_init(&c, MOVER_COMPRESS_AUTO, 1), 0);
	assert_true(c.nlevels == 2 && c.levels[0] == 1 && c.levels[1] == -3);
	assert_int_equal(mover_codec_init(&c, MOVER_COMPRESS_AUTO, 19), 0);
	assert_true(c.nlevels == 5 && c.levels[3] == 9 && c.levels[4] == 19);
	assert_int_equal(mover_codec_init(&c, MOVER_COMPRESS_ZSTD, 7), 0);
	assert_true(c.nlevels == 1 && c.levels[0] == 7);

	assert_int_equal(mover_codec_init(&c, MOVER_COMPRESS_AUTO, 0), 0);
	assert_int_equal(random_bytes(rnd, 1 << 20), 0);
	for (size_t i = 0; i < (1 << 20); i++)
		txt[i] = "the quick brown fox jumps over the lazy dog\n"[i % 44];
	assert_true(mover_codec_sample(&c, rnd, 1 << 20) > 0.95);
	assert_true(mover_codec_sample(&c, txt, 1 << 20) < 0.2);
	assert_int_equal(mover_codec_compress(&c, rnd, 1 << 20, 1), 0); /* not worth it */
	assert_true(mover_codec_compress(&c, txt, 1 << 20, 1) > 0);
	assert_true(mover_codec_compress(&c, txt, 1 << 20, 2) > 0);
	assert_int_equal(mover_codec_choose(&c, txt, 1 << 20), 0); /* link unknown */
	mover_codec_link(&c, 50000000, false, 0);
	assert_int_equal(mover_codec_choose(&c, txt, 1 << 20), 1); /* zstd speed unknown */
	assert_int_equal(mover_codec_choose(&c, rnd, 1 << 20), 0); /* incompressible */
	mover_codec_account(&c, 1, 1 << 20, 1 << 18, 10000000); /* 105 MB/s, r 0.25 */
	assert_true(c.zstd_bps[0] > 104e6 && c.zstd_bps[0] < 105e6 && c.ratio[0] == 0.25);
	assert_int_equal(c.used[0], 1);
	mover_codec_account(&c, 9, 1 << 20, 0, 10000000); /* no such level */
	/* A probe at 6 (index 2) of a chunk that level 3 took to 1/4: 6 makes
	 * 0.9 of 3's size, and 3's ratio learns from the reference too. */
	c.ref_len = 1 << 18;
	c.last_len = (size_t)((1 << 18) * 0.9);
	mover_codec_account(&c, 3, 1 << 20, c.last_len, 40000000);
	assert_true(c.rel[2] > 0.899 && c.rel[2] < 0.901 && c.ratio[0] == 0.25);
	assert_int_equal(c.ref_len, 0);
	/* a chunk that was no probe leaves the relative figure alone */
	c.last_len = 1 << 17;
	mover_codec_account(&c, 3, 1 << 20, c.last_len, 40000000);
	assert_true(c.rel[2] > 0.899 && c.rel[2] < 0.901);
	mover_codec_link(&c, 900000000, true, 0);	     /* app-limited: ignored */
	assert_true(c.link_bps < 60e6);
	mover_codec_link(&c, 0, false, 10000000);	     /* --bwlimit share caps it */
	assert_true(c.link_bps <= 10e6);
	mover_codec_fini(&c);
	free(rnd);
	free(txt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ranges),	   cmocka_unit_test(test_plan),
		cmocka_unit_test(test_zero_runs),  cmocka_unit_test(test_extent_map),
		cmocka_unit_test(test_policy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
