// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * codec.c - per-chunk encoding: raw or one independent zstd frame.
 *
 * Compressing pays when the compressor is faster than the link: raw, a
 * connection moves data at its share L of the link; compressed, at
 * min(Z, L / r) (Z: this thread's compressor speed, r: compressed/raw),
 * the kernel draining one chunk from the socket buffer while the next one
 * is compressed.  So: compress when Z > L and the chunk shrinks.  Each
 * sender thread measures both during the copy:
 *   - L, from the kernel: TCP_INFO's delivery rate of this connection,
 *     the median of its recent samples that were not application-limited
 *     (when we kept the pipe full: the rate is the link's share, not ours);
 *     with --bwlimit, at most the limit's share;
 *   - Z, from its own zstd calls (input bytes per second of wall time, so
 *     a CPU busy with other work shows up as a slower compressor).
 * The connections of a transfer share the link and the CPU, and one going
 * slower (compressing) speeds the others up: decisions use the average of
 * every connection's estimates (stream.c), not the thread's own alone.
 * Two levels compete: the strong one (auto: 3, or auto:N; zstd:N) and a
 * fast one (-3):
 * the stronger is used where it outruns the link, the faster where only it
 * does (a link slower than the CPU, but a CPU too busy for the strong one).
 * r is sampled per chunk (a few 4 KiB slices, ~1.5% of it), and only when
 * compression could pay at all: on a fast link nothing is sampled.  Every
 * 64 chunks a compressible chunk goes to the level not in use, to keep both
 * estimates current.  Unknown L (not link-bound yet, a Unix socket): raw.
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
#define ZSTD_MARGIN 1.2 /* compress only when clearly faster */

int mover_codec_init(struct mover_codec *c, enum mover_compress mode, int level)
{
	memset(c, 0, sizeof(*c));
	c->mode = mode;
	c->level = level ? level : mode == MOVER_COMPRESS_AUTO ? MOVER_ZSTD_AUTO_LEVEL : 1;
	c->cur_level = c->level;
	return 0;
}

/*
 * The compressor, made when a chunk is first sampled or compressed: a
 * transfer that never compresses (a fast link, a small copy) does not pay
 * its tables (milliseconds, a 1 MiB copy's fixed cost).  zstd sizes them
 * here, in a call of its own, not in the first measured one.
 */
static int codec_ready(struct mover_codec *c)
{
	void *zeros;

	if (c->cctx)
		return 0;
	if (c->mode == MOVER_COMPRESS_NONE)
		return -EINVAL;
	c->cctx = ZSTD_createCCtx();
	c->out_cap = ZSTD_compressBound(MOVER_IO_BYTES);
	c->out = malloc(c->out_cap);
	if (!c->cctx || !c->out ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, c->level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_contentSizeFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_checksumFlag, 0))) {
		mover_codec_fini(c);
		return -ENOMEM;
	}
	c->cur_level = c->level;
	zeros = calloc(1, MOVER_IO_BYTES);
	if (zeros) {
		ZSTD_compress2(c->cctx, c->out, c->out_cap, zeros, MOVER_IO_BYTES);
		free(zeros);
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

	if (!len || codec_ready(c))
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

int mover_policy_zstd(double sample_ratio, double link_bps, const double zstd_bps[2])
{
	int k;

	if (sample_ratio > SAMPLE_INCOMPRESSIBLE || link_bps <= 0)
		return 0;
	/* The stronger level if it outruns the link, else the faster one. */
	for (k = 0; k < 2; k++)
		if (zstd_bps[k] <= 0 || zstd_bps[k] > link_bps * ZSTD_MARGIN)
			return k + 1; /* unknown: measure it */
	return 0;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void mover_codec_link(struct mover_codec *c, uint64_t delivery_bps, bool app_limited,
		      uint64_t cap_bps)
{
	uint64_t sorted[MOVER_LINK_SAMPLES];
	double l = c->own_link_bps;

	/* The median of recent samples: a burst through a shaper or an ACK
	 * compression spike must not flip the decisions. */
	if (delivery_bps && !app_limited) {
		c->link_samples[c->nr_link_samples++ % MOVER_LINK_SAMPLES] = delivery_bps;
		size_t n = MIN(c->nr_link_samples, (size_t)MOVER_LINK_SAMPLES);

		memcpy(sorted, c->link_samples, n * sizeof(*sorted));
		qsort(sorted, n, sizeof(*sorted), u64_cmp);
		l = (double)sorted[n / 2];
	}
	if (cap_bps && (l <= 0 || l > (double)cap_bps))
		l = (double)cap_bps;
	c->own_link_bps = c->link_bps = l;
}

int mover_codec_choose(struct mover_codec *c, const uint8_t *p, size_t len)
{
	uint32_t every;
	double best;
	bool probe;
	int k;

	switch (c->mode) {
	case MOVER_COMPRESS_NONE:
		return 0;
	case MOVER_COMPRESS_ZSTD:
		return codec_ready(c) ? 0 : 1;
	case MOVER_COMPRESS_AUTO:
		break;
	}
	if (c->link_bps <= 0)
		return 0;
	/* Not even perfect compression would pay: do not even sample. */
	k = mover_policy_zstd(0.0, c->link_bps, c->zstd_bps);
	/* Now and then the level not in use, so both estimates stay fresh:
	 * often while a compressor and the link are close, rarely when the
	 * link is far faster than both. */
	best = MAX(c->zstd_bps[0], c->zstd_bps[1]);
	every = !c->zstd_bps[0] || !c->zstd_bps[1] ? PROBE_EVERY :
		best * 4 < c->link_bps		  ? PROBE_EVERY * 4 :
		best < 2 * c->link_bps		  ? PROBE_EVERY / 4 :
						    PROBE_EVERY;
	probe = ++c->chunks % every == 0;
	if (probe)
		k = k == 1 ? 2 : 1;
	/* Sampling makes the compressor: the chunk is timed after it. */
	if (!k || mover_codec_sample(c, p, len) > SAMPLE_INCOMPRESSIBLE)
		return 0;
	return k;
}

size_t mover_codec_compress(struct mover_codec *c, const uint8_t *p, size_t len, int which)
{
	int level = which == 2 ? MOVER_ZSTD_FAST_LEVEL : c->level;
	size_t n;

	if (!c->cctx || len > c->out_cap)
		return 0;
	if (level != c->cur_level &&
	    !ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, level)))
		c->cur_level = level;
	n = ZSTD_compress2(c->cctx, c->out, c->out_cap, p, len);
	if (ZSTD_isError(n) || n >= len - len / WORTH_RATIO_DIV)
		return 0;
	return n;
}

void mover_codec_account(struct mover_codec *c, int which, size_t len, uint64_t ns)
{
	double v, *z;

	if (!len || !ns || which < 1 || which > 2)
		return;
	z = &c->own_zstd_bps[which - 1];
	v = (double)len * 1e9 / (double)ns;
	*z = *z <= 0 ? v : *z * (1 - EWMA_ALPHA) + v * EWMA_ALPHA;
	c->zstd_bps[which - 1] = *z;
}
