// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dirty_bitmap.c - pure helpers on the bitmaps tracker_drain() returns:
 * sizing, counting, turning bits into (offset, length) ranges for the mover,
 * and naming rescan reasons.  No BPF here, so unit tests link it alone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>

#include "common.h"
#include "bpf/bpf.h"
#include "bpf/dirty.h"

void tracker_bitmap_init(struct tracker_bitmap *bm)
{
	memset(bm, 0, sizeof(*bm));
}

void tracker_bitmap_fini(struct tracker_bitmap *bm)
{
	free(bm->words);
	memset(bm, 0, sizeof(*bm));
}

int tracker_bitmap_resize(struct tracker_bitmap *bm, uint64_t nbits)
{
	size_t need = DIV_ROUND_UP(nbits, 64);

	if (need > bm->cap_words) {
		uint64_t *w = realloc(bm->words, need * sizeof(*w));

		if (!w)
			return -ENOMEM;
		bm->words = w;
		bm->cap_words = need;
	}
	if (need)
		memset(bm->words, 0, need * sizeof(*bm->words));
	bm->nbits = nbits;
	return 0;
}

bool tracker_bitmap_test(const struct tracker_bitmap *bm, uint64_t bit)
{
	if (bit >= bm->nbits)
		return false;
	return (bm->words[bit / 64] >> (bit % 64)) & 1;
}

uint64_t tracker_bitmap_count(const struct tracker_bitmap *bm)
{
	uint64_t n = 0;
	size_t i, nw = DIV_ROUND_UP(bm->nbits, 64);

	for (i = 0; i < nw; i++) {
		uint64_t w = bm->words[i];

		if (i == nw - 1 && bm->nbits % 64)
			w &= (1ULL << (bm->nbits % 64)) - 1;
		n += (uint64_t)__builtin_popcountll(w);
	}
	return n;
}

/* First set bit at or after @from, or nbits. */
static uint64_t next_bit(const struct tracker_bitmap *bm, uint64_t from, bool set)
{
	while (from < bm->nbits) {
		uint64_t w = bm->words[from / 64];

		if (!set)
			w = ~w;
		w &= ~0ULL << (from % 64);
		if (w) {
			from = (from & ~63ULL) + (uint64_t)__builtin_ctzll(w);
			return MIN(from, bm->nbits);
		}
		from = (from & ~63ULL) + 64;
	}
	return bm->nbits;
}

static int ranges_push(struct ferry_range **v, size_t *n, size_t *cap, uint64_t off, uint64_t len)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct ferry_range *nv = realloc(*v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[*n].offset_bytes = off;
	(*v)[*n].length_bytes = len;
	(*n)++;
	return 0;
}

int tracker_bitmap_ranges(const struct tracker_bitmap *bm, uint64_t max_len_bytes,
			  struct ferry_range **out, size_t *n)
{
	uint64_t g = bm->granularity_bytes, chunk_blocks = 0, b = 0;
	struct ferry_range *v = NULL;
	size_t cnt = 0, cap = 0;
	int ret = 0;

	*out = NULL;
	*n = 0;
	if (!g || !bm->nbits)
		return 0;
	if (max_len_bytes)
		chunk_blocks = MAX(max_len_bytes / g, 1);
	for (;;) {
		uint64_t start = next_bit(bm, b, true), end, off, len;

		if (start >= bm->nbits)
			break;
		end = next_bit(bm, start, false);
		b = end;
		while (start < end) {
			uint64_t stop = chunk_blocks ? MIN(end, start + chunk_blocks) : end;

			off = start * g;
			len = (stop - start) * g;
			if (bm->size_bytes) {
				if (off >= bm->size_bytes)
					goto done;
				len = MIN(len, bm->size_bytes - off);
			}
			ret = ranges_push(&v, &cnt, &cap, off, len);
			if (ret)
				goto err;
			start = stop;
		}
	}
done:
	*out = v;
	*n = cnt;
	return 0;
err:
	free(v);
	return ret;
}

static const struct {
	uint32_t bit;
	const char *name;
} rescan_names[] = {
	{ DIRTY_RESCAN_MMAP, "mmap" },
	{ DIRTY_RESCAN_SHRINK, "shrink" },
	{ DIRTY_RESCAN_SHIFT, "collapse_insert" },
	{ DIRTY_RESCAN_OVERFLOW, "overflow" },
	{ DIRTY_RESCAN_CAPACITY, "capacity" },
	{ DIRTY_RESCAN_RANGE, "range" },
	{ DIRTY_RESCAN_POS_RACE, "pos_race" },
	{ DIRTY_RESCAN_IO_URING, "io_uring" },
	{ DIRTY_RESCAN_ASYNC_DIO, "async_dio" },
	{ DIRTY_RESCAN_IO_ERROR, "io_error" },
	{ DIRTY_RESCAN_TRUNCATE, "truncate" },
	{ DIRTY_RESCAN_REFLINK, "reflink" },
	{ DIRTY_RESCAN_APPEND, "append" },
	{ DIRTY_RESCAN_LOST, "lost" },
	{ DIRTY_RESCAN_STALE, "stale" },
	{ DIRTY_RESCAN_DETACHED, "detached" },
	{ DIRTY_RESCAN_UNCOVERED, "uncovered" },
	{ DIRTY_RESCAN_AIO, "aio" },
};

void tracker_rescan_foreach(uint32_t reasons, void (*fn)(const char *name, void *arg), void *arg)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(rescan_names); i++)
		if (reasons & rescan_names[i].bit)
			fn(rescan_names[i].name, arg);
	reasons &= ~(uint32_t)((DIRTY_RESCAN_AIO << 1) - 1);
	if (reasons)
		fn("unknown", arg);
}

struct rescan_buf {
	char *buf;
	size_t len, used;
};

static void rescan_buf_add(const char *name, void *arg)
{
	struct rescan_buf *b = arg;
	int n;

	if (b->used >= b->len)
		return;
	n = snprintf(b->buf + b->used, b->len - b->used, "%s%s", b->used ? "," : "", name);
	if (n > 0)
		b->used += (size_t)n;
}

const char *tracker_rescan_str(uint32_t reasons, char *buf, size_t len)
{
	struct rescan_buf b = { buf, len, 0 };

	if (!len)
		return buf;
	buf[0] = '\0';
	if (!reasons) {
		snprintf(buf, len, "none");
		return buf;
	}
	tracker_rescan_foreach(reasons, rescan_buf_add, &b);
	return buf;
}
