// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for mover/wire.c: frame headers, HELLO/WELCOME/ERROR payloads,
 * the per-connection receive checks and data decoding. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <xxhash.h>
#include <zstd.h>

#include "common.h"
#include "mover/mover.h"

static void test_frame_roundtrip(void **state)
{
	struct mover_frame f = { .type = MOVER_F_DATA, .flags = MOVER_DATA_ZSTD, .len = 100,
				 .raw_len = 4096, .offset = 0x123456789aULL, .arg = 42 };
	struct mover_frame g;
	uint8_t hdr[MOVER_HDR_BYTES];
	const char *why;

	mover_frame_encode(&f, hdr);
	assert_memory_equal(hdr, "FERY", 4);
	assert_int_equal(mover_frame_decode(hdr, &g, &why), 0);
	assert_int_equal(g.type, f.type);
	assert_int_equal(g.flags, f.flags);
	assert_int_equal(g.len, f.len);
	assert_int_equal(g.raw_len, f.raw_len);
	assert_true(g.offset == f.offset);
	assert_true(g.arg == f.arg);
}

static int decode_of(struct mover_frame f)
{
	uint8_t hdr[MOVER_HDR_BYTES];
	struct mover_frame g;
	const char *why;

	mover_frame_encode(&f, hdr);
	return mover_frame_decode(hdr, &g, &why);
}

static void test_frame_bounds(void **state)
{
	uint8_t hdr[MOVER_HDR_BYTES] = { 0 };
	struct mover_frame g;
	const char *why;

	/* Not our magic, not our version, unknown type. */
	assert_int_equal(mover_frame_decode(hdr, &g, &why), -EPROTO);
	mover_frame_encode(&(struct mover_frame){ .type = MOVER_F_FIN }, hdr);
	hdr[4] = MOVER_VERSION + 1;
	assert_int_equal(mover_frame_decode(hdr, &g, &why), -EPROTONOSUPPORT);
	assert_int_equal(decode_of((struct mover_frame){ .type = 0 }), -EPROTO);
	assert_int_equal(decode_of((struct mover_frame){ .type = 99 }), -EPROTO);
	/* Data: raw length must match, bounded, compressed bounded. */
	assert_int_equal(decode_of((struct mover_frame){ .type = MOVER_F_DATA, .len = 10,
							 .raw_len = 10 }),
			 0);
	assert_int_equal(decode_of((struct mover_frame){ .type = MOVER_F_DATA, .len = 9,
							 .raw_len = 10 }),
			 -EPROTO);
	assert_int_equal(decode_of((struct mover_frame){ .type = MOVER_F_DATA, .len = 0,
							 .raw_len = 0 }),
			 -EMSGSIZE);
	assert_int_equal(decode_of((struct mover_frame){ .type = MOVER_F_DATA,
							 .len = MOVER_CHUNK_MAX + 1,
							 .raw_len = MOVER_CHUNK_MAX + 1 }),
			 -EMSGSIZE);
	assert_int_equal(decode_of((struct mover_frame){ .type = MOVER_F_DATA,
							 .flags = MOVER_DATA_ZSTD, .len = 5000,
							 .raw_len = 10 }),
			 -EMSGSIZE);
	assert_int_equal(decode_of((struct mover_frame){ .type = MOVER_F_DATA, .flags = 0x80,
							 .len = 10, .raw_len = 10 }),
			 -EPROTO);
	/* Control frames carry no payload, reserved fields zero. */
	assert_int_equal(decode_of((struct mover_frame){ .type = MOVER_F_FIN, .len = 1 }),
			 -EMSGSIZE);
	assert_int_equal(decode_of((struct mover_frame){ .type = MOVER_F_FIN, .flags = 1 }),
			 -EPROTO);
	assert_int_equal(decode_of((struct mover_frame){ .type = MOVER_F_ZERO, .arg = 0 }),
			 -EMSGSIZE);
	assert_int_equal(decode_of((struct mover_frame){ .type = MOVER_F_ZERO,
							 .arg = MOVER_UNIT_MAX + 1 }),
			 -EMSGSIZE);
	assert_int_equal(decode_of((struct mover_frame){ .type = MOVER_F_HELLO, .len = 1 << 20 }),
			 -EMSGSIZE);
}

static struct mover_hello hello_example(void)
{
	struct mover_hello h = { 0 };

	memset(h.token, 0xab, sizeof(h.token));
	h.image_bytes = 10ULL << 30;
	h.unit_bytes = 32ULL << 20;
	h.units_total = 320;
	h.conns = 4;
	h.conn_index = 3;
	strcpy(h.transfer_id, "vm1-disk.0");
	strcpy(h.path, "dir/vm1.raw");
	return h;
}

static void test_hello(void **state)
{
	struct mover_hello h = hello_example(), g;
	uint8_t buf[8192];
	const char *why;
	size_t n;

	n = mover_hello_encode(&h, buf, sizeof(buf));
	assert_true(n > 88);
	assert_int_equal(mover_hello_decode(buf, n, &g, &why), 0);
	assert_memory_equal(g.token, h.token, MOVER_TOKEN_BYTES);
	assert_string_equal(g.transfer_id, "vm1-disk.0");
	assert_string_equal(g.path, "dir/vm1.raw");
	assert_true(g.units_total == 320);
	/* Truncated, trailing garbage. */
	assert_int_equal(mover_hello_decode(buf, n - 1, &g, &why), -EPROTO);
	assert_int_equal(mover_hello_decode(buf, 40, &g, &why), -EPROTO);
	/* Units must match the size for a whole-image copy. */
	h.units_total = 319;
	n = mover_hello_encode(&h, buf, sizeof(buf));
	assert_int_equal(mover_hello_decode(buf, n, &g, &why), -EPROTO);
	h.flags = MOVER_HELLO_RANGES;
	n = mover_hello_encode(&h, buf, sizeof(buf));
	assert_int_equal(mover_hello_decode(buf, n, &g, &why), 0);
	/* Unit size a power of two in bounds; ids of the allowed alphabet. */
	h = hello_example();
	h.unit_bytes = 3 << 20;
	n = mover_hello_encode(&h, buf, sizeof(buf));
	assert_int_equal(mover_hello_decode(buf, n, &g, &why), -EPROTO);
	h = hello_example();
	strcpy(h.transfer_id, "../x");
	n = mover_hello_encode(&h, buf, sizeof(buf));
	assert_int_equal(mover_hello_decode(buf, n, &g, &why), -EPROTO);
	/* A bitmap that would be too large: refused. */
	h = hello_example();
	h.unit_bytes = 1 << 20;
	h.image_bytes = 1ULL << 50;
	h.units_total = h.image_bytes >> 20;
	n = mover_hello_encode(&h, buf, sizeof(buf));
	assert_int_equal(mover_hello_decode(buf, n, &g, &why), -EFBIG);
}

static void test_welcome_error(void **state)
{
	uint8_t bm[3] = { 0xff, 0x01, 0x00 }, buf[128];
	struct mover_welcome w = { .flags = MOVER_WELCOME_RESUMED, .dest_bytes = 99,
				   .units_done = 9, .bitmap_bytes = 3, .bitmap = bm },
			     g;
	const char *why;
	char msg[16];
	size_t n;
	int err;

	n = mover_welcome_encode(&w, buf, sizeof(buf));
	assert_int_equal(mover_welcome_decode(buf, n, 20, &g, &why), 0);
	assert_int_equal(g.units_done, 9);
	assert_memory_equal(g.bitmap, bm, 3);
	/* The bitmap must fit the sender's unit count. */
	assert_int_equal(mover_welcome_decode(buf, n, 30, &g, &why), -EPROTO);

	n = mover_error_encode(-EACCES, "no\nway\x01 in here at all", buf, sizeof(buf));
	assert_int_equal(mover_error_decode(buf, n, &err, msg, sizeof(msg)), 0);
	assert_int_equal(err, EACCES);
	assert_string_equal(msg, "no?way? in here"); /* sanitized, truncated */
	put_le32(buf, 0);
	assert_int_equal(mover_error_decode(buf, n, &err, msg, sizeof(msg)), 0);
	assert_int_equal(err, EPROTO);
}

static int rx_frame(struct mover_rx *rx, uint8_t type, uint64_t off, uint64_t len)
{
	struct mover_frame f = { .type = type, .offset = off };
	const char *why;

	if (type == MOVER_F_DATA)
		f.raw_len = f.len = (uint32_t)len;
	else
		f.arg = len;
	return mover_rx_check(rx, &f, &why);
}

static void test_rx_check(void **state)
{
	struct mover_rx rx;
	uint64_t U = 1 << 20;

	mover_rx_init(&rx, 10 * U + 100, U);
	assert_int_equal(rx_frame(&rx, MOVER_F_ZERO, 0, 4096), 0);
	assert_int_equal(rx_frame(&rx, MOVER_F_DATA, 4096, 4096), 0);
	/* Backwards inside a unit, or into the next unit. */
	assert_int_equal(rx_frame(&rx, MOVER_F_DATA, 0, 4096), -ERANGE);
	assert_int_equal(rx_frame(&rx, MOVER_F_DATA, U, 4096), -ERANGE);
	assert_int_equal(rx_frame(&rx, MOVER_F_DATA, U - 4096, 8192), -ERANGE);
	/* Control frames inside a unit. */
	assert_int_equal(rx_frame(&rx, MOVER_F_FIN, 0, 0), -EPROTO);
	/* UNIT_END must match what was sent. */
	assert_int_equal(rx_frame(&rx, MOVER_F_UNIT_END, 0, 4096), -EPROTO);
	assert_int_equal(rx_frame(&rx, MOVER_F_UNIT_END, 1, 8192), -EPROTO);
	/* It adds up, but the unit is not all there: no unit done by halves. */
	assert_int_equal(rx_frame(&rx, MOVER_F_UNIT_END, 0, 8192), -EPROTO);
	assert_int_equal(rx_frame(&rx, MOVER_F_ZERO, 8192, U - 8192), 0);
	assert_int_equal(rx_frame(&rx, MOVER_F_UNIT_END, 0, U), 0);
	/* Outside the image, overflowing. */
	assert_int_equal(rx_frame(&rx, MOVER_F_DATA, 10 * U + 100, 1), -ERANGE);
	assert_int_equal(rx_frame(&rx, MOVER_F_DATA, 10 * U, 101), -ERANGE);
	assert_int_equal(rx_frame(&rx, MOVER_F_ZERO, UINT64_MAX - 10, 100), -ERANGE);
	assert_int_equal(rx_frame(&rx, MOVER_F_DATA, 10 * U, 100), 0);
	assert_int_equal(rx_frame(&rx, MOVER_F_UNIT_END, 10, 100), 0);
	assert_int_equal(rx_frame(&rx, MOVER_F_VERIFY, 0, 10 * U + 100), 0);
	assert_int_equal(rx_frame(&rx, MOVER_F_VERIFY, 0, 10 * U + 101), -ERANGE);
	/* Frames only a receiver sends. */
	assert_int_equal(rx_frame(&rx, MOVER_F_WELCOME, 0, 0), -EPROTO);
}

/* A range copy: nothing written or verified outside its ranges, and a
 * unit ends only once its share of them has all come. */
static void test_rx_ranges(void **state)
{
	const uint64_t U = 1 << 20;
	const struct ferry_range r[] = { { 4096, 8192 }, { U - 4096, 8192 }, { 5 * U, 10 } };
	struct mover_rx rx;

	mover_rx_init(&rx, 10 * U, U);
	rx.ranges = r;
	rx.nr_ranges = 3;
	assert_true(mover_rx_covered(&rx, 0, U) == 8192 + 4096);
	assert_true(mover_rx_covered(&rx, U, U) == 4096);
	assert_true(mover_rx_covered(&rx, 2 * U, 3 * U) == 0);
	assert_true(mover_rx_covered(&rx, 0, 10 * U) == 8192 + 8192 + 10);
	assert_int_equal(rx_frame(&rx, MOVER_F_ZERO, 0, 4096), -ERANGE);
	assert_int_equal(rx_frame(&rx, MOVER_F_DATA, 4096, 8192 + 1), -ERANGE);
	assert_int_equal(rx_frame(&rx, MOVER_F_DATA, 4096, 8192), 0);
	assert_int_equal(rx_frame(&rx, MOVER_F_UNIT_END, 0, 8192), -EPROTO);
	assert_int_equal(rx_frame(&rx, MOVER_F_ZERO, U - 4096, 4096), 0);
	assert_int_equal(rx_frame(&rx, MOVER_F_UNIT_END, 0, 8192 + 4096), 0);
	assert_int_equal(rx_frame(&rx, MOVER_F_VERIFY, 4096, 8192), 0);
	assert_int_equal(rx_frame(&rx, MOVER_F_VERIFY, 0, 8192), -ERANGE);
	assert_int_equal(rx_frame(&rx, MOVER_F_VERIFY, 4096, U), -ERANGE);
	assert_int_equal(rx_frame(&rx, MOVER_F_VERIFY, 5 * U, 10), 0);
	assert_true(mover_ranges_units(r, 3, U) == 3);
}

static void test_ranges_decode(void **state)
{
	const struct ferry_range r[] = { { 0, 4096 }, { 8192, 100 } };
	struct ferry_range out[4];
	uint8_t buf[64];
	const char *why;
	size_t n = 0, len;

	len = mover_ranges_encode(r, 2, buf, sizeof(buf));
	assert_int_equal(len, 32);
	assert_int_equal(mover_ranges_decode(buf, len, 1 << 20, out, &n, 4, &why), 0);
	assert_int_equal(n, 2);
	assert_true(out[1].offset_bytes == 8192 && out[1].length_bytes == 100);
	/* Too many for the room left, or past the image. */
	assert_int_equal(mover_ranges_decode(buf, len, 1 << 20, out, &n, 3, &why), -EPROTO);
	n = 0;
	assert_int_equal(mover_ranges_decode(buf, len, 8192 + 99, out, &n, 4, &why), -ERANGE);
	/* Not sorted, touching (not merged), empty. */
	n = 0;
	put_le64(buf + 16, 4096);
	assert_int_equal(mover_ranges_decode(buf, len, 1 << 20, out, &n, 4, &why), -EPROTO);
	n = 0;
	put_le64(buf + 16, 8192);
	put_le64(buf + 24, 0);
	assert_int_equal(mover_ranges_decode(buf, len, 1 << 20, out, &n, 4, &why), -ERANGE);
}

static void test_data_decode(void **state)
{
	uint8_t data[8192], out[8192], comp[16384];
	struct mover_frame f = { .type = MOVER_F_DATA, .raw_len = sizeof(data), .offset = 4096 };
	const uint8_t *d;
	const char *why;
	void *dctx = mover_dctx_new();
	size_t n;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i / 7);
	f.len = sizeof(data);
	f.arg = mover_data_checksum(data, sizeof(data), 4096);
	assert_int_equal(mover_data_decode(&f, data, dctx, out, &d, &why), 0);
	assert_ptr_equal(d, data);
	/* Same bytes at another offset: the seeded checksum catches it. */
	f.offset = 8192;
	assert_int_equal(mover_data_decode(&f, data, dctx, out, &d, &why), -EBADMSG);
	f.offset = 4096;
	data[100] ^= 1;
	assert_int_equal(mover_data_decode(&f, data, dctx, out, &d, &why), -EBADMSG);
	data[100] ^= 1;

	n = ZSTD_compress(comp, sizeof(comp), data, sizeof(data), 1);
	f.flags = MOVER_DATA_ZSTD;
	f.len = (uint32_t)n;
	assert_int_equal(mover_data_decode(&f, comp, dctx, out, &d, &why), 0);
	assert_memory_equal(d, data, sizeof(data));
	/* A frame declaring another size (a would-be bomb) is refused. */
	f.raw_len = 4096;
	assert_int_equal(mover_data_decode(&f, comp, dctx, out, &d, &why), -EBADMSG);
	f.raw_len = sizeof(data);
	comp[n / 2] ^= 0xff;
	assert_int_equal(mover_data_decode(&f, comp, dctx, out, &d, &why), -EBADMSG);
	mover_dctx_free(dctx);
}

static void test_checksum_avx2(void **state)
{
	uint8_t buf[5000];
	size_t lens[] = { 0, 1, 16, 17, 128, 129, 240, 241, 1024, 4095, 5000 };

	if (!__builtin_cpu_supports("avx2"))
		skip();
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	/* The AVX2 build must agree with libxxhash: peers may differ. */
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++)
		assert_true(mover_xxh3_avx2(buf, lens[i], 4096 * i) ==
			    XXH3_64bits_withSeed(buf, lens[i], 4096 * i));
}

static void test_strings(void **state)
{
	char b[64];

	assert_string_equal(mover_extent_str(0x40000000, 1 << 20, b, sizeof(b)), "0x40000000+1M");
	assert_string_equal(mover_extent_str(0, 1536, b, sizeof(b)), "0x0+1536");
	assert_string_equal(mover_size_str(32ULL << 30, b, sizeof(b)), "32G");
	assert_true(mover_id_valid("a.b_c-9"));
	assert_false(mover_id_valid(".hidden"));
	assert_false(mover_id_valid("a/b"));
	assert_false(mover_id_valid(""));
}

static void test_compress_parse(void **state)
{
	enum mover_compress mode;
	int level;

	assert_int_equal(mover_compress_parse("auto", &mode, &level), 0);
	assert_int_equal(mode, MOVER_COMPRESS_AUTO);
	assert_int_equal(level, 0);
	assert_int_equal(mover_compress_parse("auto:3", &mode, &level), 0);
	assert_int_equal(mode, MOVER_COMPRESS_AUTO);
	assert_int_equal(level, 3);
	assert_int_equal(mover_compress_parse("zstd:-3", &mode, &level), 0);
	assert_int_equal(mode, MOVER_COMPRESS_ZSTD);
	assert_int_equal(level, -3);
	assert_int_equal(mover_compress_parse("none", &mode, &level), 0);
	assert_int_equal(mode, MOVER_COMPRESS_NONE);
	/* auto's strong level is a real one: the fast level is its rival */
	assert_int_equal(mover_compress_parse("auto:0", &mode, &level), -EINVAL);
	assert_int_equal(mover_compress_parse("auto:20", &mode, &level), -EINVAL);
	assert_int_equal(mover_compress_parse("auto:", &mode, &level), -EINVAL);
	assert_int_equal(mover_compress_parse("autox", &mode, &level), -EINVAL);
	assert_int_equal(mover_compress_parse("zstd:20", &mode, &level), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_roundtrip), cmocka_unit_test(test_frame_bounds),
		cmocka_unit_test(test_hello),		cmocka_unit_test(test_welcome_error),
		cmocka_unit_test(test_rx_check),
		cmocka_unit_test(test_rx_ranges),
		cmocka_unit_test(test_ranges_decode),	cmocka_unit_test(test_data_decode),
		cmocka_unit_test(test_strings),		cmocka_unit_test(test_checksum_avx2),
		cmocka_unit_test(test_compress_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
