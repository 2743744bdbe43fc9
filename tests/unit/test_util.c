// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for common/util.c: size and rate parsing, hex, compare. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"

static void test_parse_size(void **state)
{
	uint64_t v;

	assert_int_equal(parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(parse_size("4k", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(parse_size("16G", &v), 0);
	assert_int_equal(v, 16ULL << 30);
	assert_int_equal(parse_size("1TiB", &v), 0);
	assert_int_equal(v, 1ULL << 40);
	assert_int_equal(parse_size("", &v), -EINVAL);
	assert_int_equal(parse_size("-1", &v), -EINVAL);
	assert_int_equal(parse_size("12q", &v), -EINVAL);
	assert_int_equal(parse_size("99999999999999999999", &v), -ERANGE);
	assert_int_equal(parse_size("99999999999T", &v), -ERANGE);
}

static void test_parse_rate(void **state)
{
	uint64_t v;

	assert_int_equal(parse_rate("500M", &v), 0);
	assert_int_equal(v, 500ULL << 20);
	assert_int_equal(parse_rate("1gbit", &v), 0);
	assert_int_equal(v, 125000000ULL);
	assert_int_equal(parse_rate("100mbit", &v), 0);
	assert_int_equal(v, 12500000ULL);
	assert_int_equal(parse_rate("fast", &v), -EINVAL);
}

static void test_hex(void **state)
{
	unsigned char in[4] = { 0x00, 0xab, 0x10, 0xff }, out[4];
	char s[9];

	hex_encode(in, sizeof(in), s);
	assert_string_equal(s, "00ab10ff");
	assert_int_equal(hex_decode(s, out, sizeof(out)), 0);
	assert_memory_equal(in, out, sizeof(in));
	assert_int_equal(hex_decode("00ab10f", out, sizeof(out)), -EINVAL);
	assert_int_equal(hex_decode("00ab10fg", out, sizeof(out)), -EINVAL);
}

static void test_ct_memcmp(void **state)
{
	assert_int_equal(ct_memcmp("abcd", "abcd", 4), 0);
	assert_int_not_equal(ct_memcmp("abcd", "abce", 4), 0);
}

/*
 * file_write_atomic writes through no planted name: a symlink at the name
 * it used to use (<path>.tmp.<pid>), pointing at a victim, is not followed,
 * and the victim is untouched (issue 9, item 11).
 */
static void test_write_atomic_no_follow(void **state)
{
	char dir[] = "/tmp/ferry-util-XXXXXX", path[256], victim[256], trap[256], *got;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/record.json", dir);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	snprintf(trap, sizeof(trap), "%s.tmp.%d", path, (int)getpid());
	assert_int_equal(file_write_atomic(victim, "precious", 8, 0600), 0);
	assert_int_equal(symlink(victim, trap), 0);
	assert_int_equal(file_write_atomic(path, "{}", 2, 0600), 0);
	got = file_read_all(victim, 64, NULL);
	assert_string_equal(got, "precious");
	free(got);
	got = file_read_all(path, 64, NULL);
	assert_string_equal(got, "{}");
	free(got);
	/* file_write_new never writes through a link or over a file. */
	assert_int_equal(file_write_new(trap, "x", 1, 0600), -EEXIST);
	unlink(trap);
	unlink(path);
	unlink(victim);
	assert_int_equal(rmdir(dir), 0);
}

static void test_parse_int(void **state)
{
	int v;

	assert_int_equal(parse_int("8", 1, 64, &v), 0);
	assert_int_equal(v, 8);
	assert_int_equal(parse_int("0", 1, 64, &v), -ERANGE);
	assert_int_equal(parse_int("8x", 1, 64, &v), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size), cmocka_unit_test(test_parse_rate),
		cmocka_unit_test(test_hex),	   cmocka_unit_test(test_ct_memcmp),
		cmocka_unit_test(test_parse_int), cmocka_unit_test(test_write_atomic_no_follow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
