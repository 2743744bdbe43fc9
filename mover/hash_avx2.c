// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * hash_avx2.c - XXH3-64 compiled for AVX2 (the Makefile builds this file
 * with -mavx2).  libxxhash is built for the x86-64 baseline (SSE2); the
 * checksum of every data chunk, on both sides, is a large part of the
 * mover's CPU time, and AVX2 halves it.  mover_data_checksum() (wire.c)
 * calls this only on CPUs that have AVX2.  Same function, same values.
 */
#include <stddef.h>
#include <stdint.h>

/* xxhash.h inlined: gcc 12 sees false out-of-bounds accesses in it. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#ifndef __clang__
#pragma GCC diagnostic ignored "-Wstringop-overread"
#endif
#define XXH_INLINE_ALL
#include <xxhash.h>
#pragma GCC diagnostic pop

#include "mover/mover.h"

uint64_t mover_xxh3_avx2(const void *p, size_t len, uint64_t seed)
{
	return XXH3_64bits_withSeed(p, len, seed);
}
