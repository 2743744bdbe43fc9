// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * codec.c - per-chunk encoding: raw or one independent zstd frame.
 *
 * Each sender thread owns a zstd context.  In auto mode every chunk is first
 * sampled (a few 4 KiB slices compressed at the fast level, about 1.5% of
 * the chunk): data that does not shrink goes raw at once.  For data that
 * does, the thread keeps what each way has cost it lately, per input byte,
 * measured from the time spent encoding and sending (a send blocks while
 * the link is busy, so a slow link shows up as a high raw cost, a fast one
 * as a cost close to a memory copy).  It compresses when that is cheaper
 * than sending raw, and every 64 chunks it tries the other way for a few
 * chunks so that both estimates follow the link and the CPU during the copy.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "common.h"
#include "mover/mover.h"

#define SAMPLE_SLICES 4
#define SAMPLE_SLICE_BYTES 4096
#define SAMPLE_INCOMPRESSIBLE 0.90 /* sample ratio above which: raw */
#define WORTH_RATIO_DIV 16	   /* compressed must save 1/16 or go raw */
#define EWMA_ALPHA 0.2
#define PROBE_EVERY 64
#define PROBE_CHUNKS 3
#define ZSTD_BIAS 0.95 /* compress only when clearly cheaper */

int mover_codec_init(struct mover_codec *c, enum mover_compress mode, int level)
{
	memset(c, 0, sizeof(*c));
	c->mode = mode;
	c->level = level ? level : 1;
	if (mode == MOVER_COMPRESS_NONE)
		return 0;
	c->cctx = ZSTD_createCCtx();
	if (!c->cctx)
		return -ENOMEM;
	c->out_cap = ZSTD_compressBound(MOVER_IO_BYTES);
	c->out = malloc(c->out_cap);
	if (!c->out) {
		ZSTD_freeCCtx(c->cctx);
		c->cctx = NULL;
		return -ENOMEM;
	}
	if (ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, c->level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_contentSizeFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_checksumFlag, 0))) {
		mover_codec_fini(c);
		return -EINVAL;
	}
	return 0;
}

void mover_codec_fini(struct mover_codec *c)
{
	ZSTD_freeCCtx(c->cctx);
	free(c->out);
	c->cctx = NULL;
	c->out = NULL;
}

double mover_codec_sample(struct mover_codec *c, const uint8_t *p, size_t len)
{
	size_t in = 0, out = 0, i, step, n;

	if (!c->cctx || !len)
		return 1.0;
	n = len <= SAMPLE_SLICES * SAMPLE_SLICE_BYTES ? 1 : SAMPLE_SLICES;
	step = n == 1 ? 0 : (len - SAMPLE_SLICE_BYTES) / (n - 1);
	for (i = 0; i < n; i++) {
		size_t sl = n == 1 ? len : SAMPLE_SLICE_BYTES;
		size_t r = ZSTD_compress2(c->cctx, c->out, c->out_cap, p + i * step, sl);

		if (ZSTD_isError(r))
			return 1.0;
		in += sl;
		out += r;
	}
	return (double)out / (double)in;
}

bool mover_policy_zstd(double sample_ratio, double raw_ns_per_byte, double zstd_ns_per_byte)
{
	if (sample_ratio > SAMPLE_INCOMPRESSIBLE)
		return false;
	if (raw_ns_per_byte <= 0)
		return false; /* measure raw first */
	if (zstd_ns_per_byte <= 0)
		return true; /* then measure zstd */
	return zstd_ns_per_byte < raw_ns_per_byte * ZSTD_BIAS;
}

bool mover_codec_choose(struct mover_codec *c, const uint8_t *p, size_t len)
{
	bool z;

	switch (c->mode) {
	case MOVER_COMPRESS_NONE:
		return false;
	case MOVER_COMPRESS_ZSTD:
		return true;
	case MOVER_COMPRESS_AUTO:
		break;
	}
	if (mover_codec_sample(c, p, len) > SAMPLE_INCOMPRESSIBLE)
		return false;
	z = mover_policy_zstd(0.0, c->raw_ns_per_byte, c->zstd_ns_per_byte);
	c->chunks++;
	if (c->explore) {
		c->explore--;
		z = !z;
	} else if (c->chunks % PROBE_EVERY == 0 && c->raw_ns_per_byte > 0 &&
		   c->zstd_ns_per_byte > 0) {
		c->explore = PROBE_CHUNKS - 1;
		z = !z;
	}
	return z;
}

size_t mover_codec_compress(struct mover_codec *c, const uint8_t *p, size_t len)
{
	size_t n;

	if (!c->cctx || len > c->out_cap)
		return 0;
	n = ZSTD_compress2(c->cctx, c->out, c->out_cap, p, len);
	if (ZSTD_isError(n) || n >= len - len / WORTH_RATIO_DIV)
		return 0;
	return n;
}

void mover_codec_account(struct mover_codec *c, bool zstd, size_t len, uint64_t ns)
{
	double *e = zstd ? &c->zstd_ns_per_byte : &c->raw_ns_per_byte;
	double v;

	if (!len)
		return;
	v = (double)ns / (double)len;
	*e = *e <= 0 ? v : *e * (1 - EWMA_ALPHA) + v * EWMA_ALPHA;
	c->last_zstd = zstd;
}
