// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * extent.c - what to send: ranges and work units, holes and zero runs.
 *
 * A transfer is split into work units (aligned blocks of the image, tens of
 * MiB): the unit of parallelism, of acknowledgement and of resume.  Each
 * unit is mapped with SEEK_DATA/SEEK_HOLE when a sender thread picks it up
 * (not once up front: the image may change under a running VM), holes are
 * never read, and the data that is read is cut into runs of zero and
 * non-zero 4 KiB blocks in the same pass that checksums it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "common.h"
#include "mover/mover.h"

static int range_cmp(const void *a, const void *b)
{
	const struct ferry_range *x = a, *y = b;

	return x->offset_bytes < y->offset_bytes ? -1 : x->offset_bytes > y->offset_bytes;
}

int mover_ranges_normalize(struct ferry_range *r, size_t *n, uint64_t image_bytes)
{
	size_t i, out = 0;

	for (i = 0; i < *n; i++) {
		if (r[i].length_bytes == 0)
			return -EINVAL;
		if (r[i].offset_bytes >= image_bytes || r[i].length_bytes > image_bytes - r[i].offset_bytes)
			return -ERANGE;
	}
	qsort(r, *n, sizeof(*r), range_cmp);
	for (i = 0; i < *n; i++) {
		if (out && r[i].offset_bytes <= r[out - 1].offset_bytes + r[out - 1].length_bytes) {
			uint64_t end = MAX(r[out - 1].offset_bytes + r[out - 1].length_bytes,
					   r[i].offset_bytes + r[i].length_bytes);

			r[out - 1].length_bytes = end - r[out - 1].offset_bytes;
			continue;
		}
		r[out++] = r[i];
	}
	*n = out;
	return 0;
}

uint64_t mover_ranges_digest(const struct ferry_range *r, size_t n)
{
	XXH3_state_t st;
	uint8_t b[16];
	uint64_t d;
	size_t i;

	XXH3_64bits_reset(&st);
	for (i = 0; i < n; i++) {
		put_le64(b, r[i].offset_bytes);
		put_le64(b + 8, r[i].length_bytes);
		XXH3_64bits_update(&st, b, sizeof(b));
	}
	d = XXH3_64bits_digest(&st);
	return d ? d : 1; /* 0 means "the whole image" */
}

static int plan_add(struct mover_plan *p, size_t *cap_u, size_t *cap_p, uint64_t off, uint64_t len)
{
	uint64_t idx = off / p->unit_bytes;
	struct mover_unit *u;

	if (p->nr_parts == *cap_p) {
		size_t nc = *cap_p ? *cap_p * 2 : 64;
		void *np = realloc(p->parts, nc * sizeof(*p->parts));

		if (!np)
			return -ENOMEM;
		p->parts = np;
		*cap_p = nc;
	}
	p->parts[p->nr_parts] = (struct mover_part){ off, len };
	u = p->nr_units ? &p->units[p->nr_units - 1] : NULL;
	if (!u || u->index != idx) {
		if (p->nr_units == *cap_u) {
			size_t nc = *cap_u ? *cap_u * 2 : 64;
			void *nu = realloc(p->units, nc * sizeof(*p->units));

			if (!nu)
				return -ENOMEM;
			p->units = nu;
			*cap_u = nc;
		}
		u = &p->units[p->nr_units++];
		*u = (struct mover_unit){ .index = idx, .first_part = (uint32_t)p->nr_parts };
	}
	u->nr_parts++;
	u->bytes += len;
	p->nr_parts++;
	p->total_bytes += len;
	return 0;
}

int mover_plan_build(struct mover_plan *p, uint64_t image_bytes, uint64_t unit_bytes,
		     const struct ferry_range *ranges, size_t nr_ranges)
{
	struct ferry_range whole = { 0, image_bytes };
	size_t cap_u = 0, cap_p = 0, i;
	int ret = 0;

	memset(p, 0, sizeof(*p));
	p->image_bytes = image_bytes;
	p->unit_bytes = unit_bytes;
	p->ranges = ranges != NULL;
	p->digest = ranges ? mover_ranges_digest(ranges, nr_ranges) : 0;
	if (!ranges) {
		ranges = &whole;
		nr_ranges = image_bytes ? 1 : 0;
	}
	for (i = 0; i < nr_ranges && !ret; i++) {
		uint64_t off = ranges[i].offset_bytes, end = off + ranges[i].length_bytes;

		while (off < end && !ret) {
			uint64_t next = MIN(ROUND_DOWN(off, unit_bytes) + unit_bytes, end);

			ret = plan_add(p, &cap_u, &cap_p, off, next - off);
			off = next;
		}
	}
	if (ret)
		mover_plan_free(p);
	return ret;
}

void mover_plan_free(struct mover_plan *p)
{
	free(p->units);
	free(p->parts);
	p->units = NULL;
	p->parts = NULL;
	p->nr_units = p->nr_parts = 0;
}

static int segs_add(struct mover_segs *s, uint64_t off, uint64_t len, bool data)
{
	struct mover_seg *last = s->n ? &s->v[s->n - 1] : NULL;

	if (!len)
		return 0;
	if (last && last->data == data && last->off + last->len == off) {
		last->len += len;
		return 0;
	}
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 16;
		void *nv = realloc(s->v, nc * sizeof(*s->v));

		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = nc;
	}
	s->v[s->n++] = (struct mover_seg){ off, len, data };
	return 0;
}

int mover_extent_map(int fd, bool seekable, uint64_t off, uint64_t len, struct mover_segs *s)
{
	uint64_t pos = off, end = off + len;
	int ret = 0;

	if (!seekable)
		return segs_add(s, off, len, true);
	while (pos < end && !ret) {
		off_t d, h;

		d = lseek(fd, (off_t)pos, SEEK_DATA);
		if (d < 0) {
			if (errno == ENXIO) {
				/* No data after pos: a hole to the end. */
				ret = segs_add(s, pos, end - pos, false);
				break;
			}
			if (errno == EINVAL || errno == EOPNOTSUPP) {
				/* No SEEK_DATA here: everything is data. */
				ret = segs_add(s, pos, end - pos, true);
				break;
			}
			return -errno;
		}
		if ((uint64_t)d > pos) {
			uint64_t hend = MIN((uint64_t)d, end);

			ret = segs_add(s, pos, hend - pos, false);
			pos = hend;
			continue;
		}
		h = lseek(fd, (off_t)pos, SEEK_HOLE);
		if (h < 0 || (uint64_t)h <= pos)
			h = (off_t)end;
		ret = segs_add(s, pos, MIN((uint64_t)h, end) - pos, true);
		pos = MIN((uint64_t)h, end);
	}
	return ret;
}

void mover_segs_free(struct mover_segs *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

bool mover_is_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	/* Bytes up to 8-byte alignment, then 64-byte strides, then the tail. */
	while (len && ((uintptr_t)p & 7)) {
		if (*p)
			return false;
		p++;
		len--;
	}
	while (len >= 64) {
		const uint64_t *w = (const uint64_t *)(const void *)p;

		if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])
			return false;
		p += 64;
		len -= 64;
	}
	while (len) {
		if (*p)
			return false;
		p++;
		len--;
	}
	return true;
}

size_t mover_run_len(const uint8_t *p, size_t len, uint64_t off, bool *zero)
{
	size_t pos, blk;

	blk = MIN((size_t)(MOVER_BLOCK - off % MOVER_BLOCK), len);
	*zero = mover_is_zero(p, blk);
	pos = blk;
	while (pos < len) {
		blk = MIN((size_t)MOVER_BLOCK, len - pos);
		if (mover_is_zero(p + pos, blk) != *zero)
			break;
		pos += blk;
	}
	return pos;
}
