// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * codec.c - per-chunk encoding: raw or one independent zstd frame.
 *
 * Compressing pays when the compressor is faster than the link: raw, a
 * connection moves data at its share L of the link; compressed at level k,
 * at min(Z_k, L / r_k) (Z_k: this thread's compressor speed at k, r_k:
 * compressed/raw at k), the kernel draining one chunk from the socket
 * buffer while the next one is compressed.  Each sender thread measures
 * them during the copy:
 *   - L, from the kernel: TCP_INFO's delivery rate of this connection,
 *     the median of its recent samples that were not application-limited
 *     (when we kept the pipe full: the rate is the link's share, not ours);
 *     with --bwlimit, at most the limit's share;
 *   - Z_k, from its own zstd calls (input bytes per second of wall time,
 *     so a CPU busy with other work, or shared by more connections than
 *     cores, shows up as a slower compressor), and r_k from their output.
 * The connections of a transfer share the link and the CPU, and one going
 * slower (compressing) speeds the others up: decisions use the average of
 * every connection's estimates (stream.c), not the thread's own alone.
 * auto's levels are a ladder, 3 (measured first), -3, 6 and 9 (auto:N: up
 * to N), and each chunk goes at the one with the best min(Z_k, L / r_k):
 * where the link is the limit that is the strongest level the CPU still
 * outruns it with (fewer bytes on the wire), where the CPU is, the fastest
 * (-3: a link slower than the CPU, but a CPU too busy for level 3), and
 * raw where no level beats the link.  Whether a chunk shrinks at all is
 * sampled (a few 4 KiB slices, ~1.5% of it), and only when compression
 * could pay: on a fast link nothing is sampled.  Every 64 chunks a
 * compressible chunk goes to another level of the ladder in turn, to keep
 * the estimates current; it is compressed at level 3 (the ladder's first)
 * too, untimed, so that each level's ratio is known relative to 3's on the
 * same data, whatever mix of data the probes landed on.  Unknown L (not
 * link-bound yet, a Unix socket): raw.
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
	static const int ladder[] = { MOVER_ZSTD_AUTO_LEVEL, MOVER_ZSTD_FAST_LEVEL, 6, 9 };
	size_t i;

	memset(c, 0, sizeof(*c));
	c->mode = mode;
	if (mode != MOVER_COMPRESS_AUTO) {
		c->level = level ? level : 1;
		c->levels[c->nlevels++] = c->level;
	} else {
		/* up to N: 3 (or N below it), -3, then 6 and 9 below N, N */
		c->level = level ? level : MOVER_ZSTD_AUTO_MAX;
		c->levels[c->nlevels++] = MIN(c->level, MOVER_ZSTD_AUTO_LEVEL);
		for (i = 1; i < ARRAY_SIZE(ladder); i++)
			if (ladder[i] < c->level && ladder[i] != c->levels[0])
				c->levels[c->nlevels++] = ladder[i];
		if (c->level > MOVER_ZSTD_AUTO_LEVEL)
			c->levels[c->nlevels++] = c->level;
	}
	c->cur_level = c->levels[0];
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
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, c->levels[0])) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_contentSizeFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_checksumFlag, 0))) {
		mover_codec_fini(c);
		return -ENOMEM;
	}
	c->cur_level = c->levels[0];
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

int mover_policy_zstd(double sample_ratio, double link_bps, const double *zstd_bps,
		      const double *ratio, int n)
{
	double best = link_bps * ZSTD_MARGIN, rate, r;
	int k, pick = 0;

	if (sample_ratio > SAMPLE_INCOMPRESSIBLE || link_bps <= 0 || n <= 0)
		return 0;
	if (zstd_bps[0] <= 0)
		return 1; /* measure it */
	for (k = 0; k < n; k++) {
		if (zstd_bps[k] <= 0)
			continue;
		r = sample_ratio <= 0 ? 0 : ratio[k] > 0 ? ratio[k] : sample_ratio;
		rate = r > 0 ? MIN(zstd_bps[k], link_bps / r) : zstd_bps[k];
		if (rate > best) {
			best = rate;
			pick = k + 1;
		}
	}
	return pick;
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
	double best = 0, r, ratio[MOVER_ZSTD_NLEVELS] = { 0 };
	uint32_t every;
	bool probe;
	int k, i;

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
	/* Each level's ratio: levels[0]'s, times what the level makes of the
	 * same chunks relative to it (probes measure both on one chunk, so the
	 * mix of data they happened to land on does not count). */
	for (i = 0; i < c->nlevels; i++)
		ratio[i] = i && c->rel[i] > 0 && c->ratio[0] > 0 ? c->ratio[0] * c->rel[i] : c->ratio[i];
	/* Not even perfect compression would pay: do not even sample. */
	k = mover_policy_zstd(0.0, c->link_bps, c->zstd_bps, ratio, c->nlevels);
	/* Now and then another level, so every estimate stays fresh: often
	 * while a compressor and the link are close, rarely when the link is
	 * far faster than all of them. */
	for (i = 0; i < c->nlevels; i++)
		best = MAX(best, c->zstd_bps[i]);
	every = best * 4 < c->link_bps	   ? PROBE_EVERY * 4 :
		best < 2 * c->link_bps	   ? PROBE_EVERY / 4 :
					     PROBE_EVERY;
	probe = c->nlevels > 1 && ++c->chunks % every == 0;
	if (!k && !probe)
		return 0;
	/* Sampling makes the compressor: the chunk is timed after it. */
	r = mover_codec_sample(c, p, len);
	if (r > SAMPLE_INCOMPRESSIBLE)
		return 0;
	if (k)
		k = mover_policy_zstd(r, c->link_bps, c->zstd_bps, ratio, c->nlevels);
	c->ref_len = 0;
	if (probe) {
		/* the levels in turn, skipping the one chosen */
		i = (int)(c->probes++ % (uint32_t)c->nlevels);
		k = i + 1 == k ? (i + 1) % c->nlevels + 1 : i + 1;
		/* and the chunk at levels[0] too, untimed, to compare with */
		if (k > 1 && mover_codec_compress(c, p, len, 1) && c->last_len)
			c->ref_len = c->last_len;
	}
	return k;
}

size_t mover_codec_compress(struct mover_codec *c, const uint8_t *p, size_t len, int which)
{
	int level;
	size_t n;

	if (!c->cctx || len > c->out_cap || which < 1 || which > c->nlevels)
		return 0;
	level = c->levels[which - 1];
	if (level != c->cur_level &&
	    !ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, level)))
		c->cur_level = level;
	n = ZSTD_compress2(c->cctx, c->out, c->out_cap, p, len);
	c->last_len = ZSTD_isError(n) ? 0 : n;
	if (ZSTD_isError(n) || n >= len - len / WORTH_RATIO_DIV)
		return 0;
	return n;
}

static void ewma(double *z, double v)
{
	*z = *z <= 0 ? v : *z * (1 - EWMA_ALPHA) + v * EWMA_ALPHA;
}

void mover_codec_account(struct mover_codec *c, int which, size_t len, size_t clen, uint64_t ns)
{
	int k = which - 1;

	if (!len || !ns || k < 0 || k >= c->nlevels)
		return;
	c->used[k]++;
	ewma(&c->own_zstd_bps[k], (double)len * 1e9 / (double)ns);
	/* one that did not shrink enough went raw: it moved at ratio 1 */
	ewma(&c->own_ratio[k], clen ? (double)clen / (double)len : 1.0);
	c->zstd_bps[k] = c->own_zstd_bps[k];
	c->ratio[k] = c->own_ratio[k];
	/* a probe: this level against levels[0] on the same chunk */
	if (c->ref_len && k > 0 && c->last_len) {
		ewma(&c->own_rel[k], (double)c->last_len / (double)c->ref_len);
		ewma(&c->own_ratio[0], (double)c->ref_len / (double)len);
		c->rel[k] = c->own_rel[k];
		c->ratio[0] = c->own_ratio[0];
	}
	c->ref_len = 0;
}
