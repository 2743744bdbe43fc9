// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * stats.c - the transfer summary (plain and -j through common/output.c),
 * option parsers shared by ferry-copy and ferryd, token files, the content
 * digest used by tests and benchmarks, and the bandwidth limiter.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "common.h"
#include "mover/mover.h"

#define DIGEST_BLOCK (64u << 10)

/* One line in plain mode, one raw counter in JSON. */
static void sum_bytes(const char *key, const char *label, uint64_t v)
{
	char b[32];

	out_u64(key, NULL, v);
	out_plain("  %-20s %s\n", label, fmt_bytes(v, b, sizeof(b)));
}

void mover_stats_print(const struct mover_stats *st)
{
	double secs = st->wall_ms ? (double)st->wall_ms / 1000.0 : 0.001;
	double ratio = st->zstd_out_bytes ? (double)st->zstd_in_bytes / (double)st->zstd_out_bytes :
					    1.0;
	uint64_t rate = (uint64_t)((double)(st->total_bytes - st->skipped_bytes) / secs);
	char b[32];

	out_object_open(NULL);
	out_str("transfer_id", "  transfer id          %s\n", st->transfer_id);
	sum_bytes("image_bytes", "virtual size", st->image_bytes);
	sum_bytes("total_bytes", "covered", st->total_bytes);
	sum_bytes("allocated_bytes", "allocated", st->allocated_bytes);
	sum_bytes("read_bytes", "read", st->read_bytes);
	sum_bytes("hole_bytes", "holes skipped", st->hole_bytes);
	sum_bytes("zero_bytes", "zeros skipped", st->zero_bytes);
	sum_bytes("data_bytes", "data sent", st->data_bytes);
	sum_bytes("raw_bytes", "  as is", st->raw_bytes);
	sum_bytes("zstd_in_bytes", "  compressed", st->zstd_in_bytes);
	sum_bytes("zstd_out_bytes", "  to", st->zstd_out_bytes);
	out_double("compress_ratio", "  compression ratio    %.2f\n", ratio);
	sum_bytes("wire_bytes", "on the wire", st->wire_bytes);
	out_bool("resumed", "  resumed              %s\n", st->resumed);
	sum_bytes("skipped_bytes", "already there", st->skipped_bytes);
	sum_bytes("acked_bytes", "acknowledged", st->acked_bytes);
	if (st->verified_bytes || out_is_json())
		sum_bytes("verified_bytes", "verified", st->verified_bytes);
	out_u64("units_total", "  work units           %" PRIu64, st->units_total);
	out_u64("units_sent", " (%" PRIu64 " sent", st->units_sent);
	out_u64("units_skipped", ", %" PRIu64 " skipped", st->units_skipped);
	out_u64("units_acked", ", %" PRIu64 " acknowledged)", st->units_acked);
	out_u64("unit_bytes", NULL, st->unit_bytes);
	out_plain(" of %s\n", fmt_bytes(st->unit_bytes, b, sizeof(b)));
	out_u64("streams", "  streams              %" PRIu64 "\n", st->streams);
	out_u64("wall_ms", "  wall time            %" PRIu64 " ms", st->wall_ms);
	out_u64("wall_us", " (%" PRIu64 " us)\n", st->wall_us);
	out_u64("rate_bps", NULL, rate);
	out_plain("  %-20s %s/s\n", "rate", fmt_bytes(rate, b, sizeof(b)));
	out_u64("retries", "  retries              %" PRIu64 "\n", st->retries);
	out_bool("created", NULL, st->created);
	out_object_close();
	out_flush();
}

int mover_compress_parse(const char *s, enum mover_compress *mode, int *level)
{
	*level = 0;
	if (!strncmp(s, "auto", 4) && (!s[4] || s[4] == ':')) {
		/* auto:N: N is the strongest level of the ladder (codec.c) */
		*mode = MOVER_COMPRESS_AUTO;
		if (s[4] == ':' && parse_int(s + 5, 1, 19, level))
			return -EINVAL;
		return 0;
	}
	if (!strcmp(s, "none")) {
		*mode = MOVER_COMPRESS_NONE;
		return 0;
	}
	if (!strncmp(s, "zstd", 4) && (!s[4] || s[4] == ':')) {
		*mode = MOVER_COMPRESS_ZSTD;
		if (s[4] == ':' && parse_int(s + 5, -7, 19, level))
			return -EINVAL;
		return 0;
	}
	return -EINVAL;
}

static const char *const zero_names[] = {
	[MOVER_ZERO_AUTO] = "auto",	  [MOVER_ZERO_WRITE] = "write",
	[MOVER_ZERO_PUNCH] = "punch",	  [MOVER_ZERO_ZEROOUT] = "zeroout",
	[MOVER_ZERO_DISCARD] = "discard", [MOVER_ZERO_SKIP] = "skip",
};

int mover_zero_parse(const char *s, enum mover_zero *mode)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(zero_names); i++) {
		if (!strcmp(s, zero_names[i])) {
			*mode = (enum mover_zero)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *mover_zero_name(enum mover_zero mode)
{
	return (size_t)mode < ARRAY_SIZE(zero_names) ? zero_names[mode] : "?";
}

int mover_token_read(const char *path, uint8_t token[MOVER_TOKEN_BYTES])
{
	struct stat st;
	size_t len;
	char *buf;
	int ret;

	buf = file_read_all(path, 4096, &len);
	if (!buf)
		return -errno;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' ' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	ret = hex_decode(buf, token, MOVER_TOKEN_BYTES);
	explicit_bzero(buf, len);
	free(buf);
	if (ret)
		return -EBADMSG;
	if (stat(path, &st) == 0 && (st.st_mode & 077))
		log_warn("token file %s is readable by others (chmod 600 it)", path);
	return 0;
}

int mover_token_create(const char *path, uint8_t token[MOVER_TOKEN_BYTES])
{
	char hex[2 * MOVER_TOKEN_BYTES + 2];
	int fd, ret;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? mover_token_read(path, token) : -errno;
	ret = random_bytes(token, MOVER_TOKEN_BYTES);
	if (!ret) {
		hex_encode(token, MOVER_TOKEN_BYTES, hex);
		strcat(hex, "\n");
		ret = write_full(fd, hex, strlen(hex));
		explicit_bzero(hex, sizeof(hex));
	}
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	close(fd);
	if (ret)
		unlink(path);
	return ret;
}

/*
 * Content digest: XXH3-128 over (offset, XXH3-64) of every 64 KiB block
 * (aligned, the last one short) that is not all zeros, then the size.
 * Holes and zero blocks count the same, so a sparse copy and a dense one of
 * the same bytes agree, and holes cost nothing: only blocks that touch data
 * extents are read.
 */
int mover_checksum_fd(int fd, uint64_t size, char out[33])
{
	struct mover_segs segs = { 0 };
	XXH3_state_t *st = XXH3_createState();
	uint8_t *buf = malloc(DIGEST_BLOCK), rec[16];
	uint64_t pos = 0, next_blk = 0;
	XXH128_canonical_t can;
	struct stat sb;
	int ret = -ENOMEM;

	if (!st || !buf)
		goto out;
	ret = fstat(fd, &sb) < 0 ? -errno : 0;
	XXH3_128bits_reset(st);
	while (!ret && pos < size) {
		uint64_t step = MIN(size - pos, 1ULL << 30);
		size_t i;

		segs.n = 0;
		ret = mover_extent_map(fd, S_ISREG(sb.st_mode), pos, step, &segs);
		for (i = 0; i < segs.n && !ret; i++) {
			uint64_t b = MAX(ROUND_DOWN(segs.v[i].off, DIGEST_BLOCK), next_blk);
			uint64_t end = segs.v[i].off + segs.v[i].len;

			for (; segs.v[i].data && b < end && !ret; b += DIGEST_BLOCK) {
				size_t n = (size_t)MIN((uint64_t)DIGEST_BLOCK, size - b);

				/* The whole block: its holes read as zeros. */
				ret = pread_full(fd, buf, n, (off_t)b);
				if (!ret && !mover_is_zero(buf, n)) {
					put_le64(rec, b);
					put_le64(rec + 8, XXH3_64bits(buf, n));
					XXH3_128bits_update(st, rec, sizeof(rec));
				}
				next_blk = b + DIGEST_BLOCK;
			}
		}
		pos += step;
	}
	if (!ret) {
		put_le64(rec, size);
		XXH3_128bits_update(st, rec, 8);
		XXH128_canonicalFromHash(&can, XXH3_128bits_digest(st));
		hex_encode(can.digest, sizeof(can.digest), out);
	}
out:
	mover_segs_free(&segs);
	XXH3_freeState(st);
	free(buf);
	return ret;
}

void mover_ratelimit_init(struct mover_ratelimit *rl, uint64_t bps)
{
	pthread_mutex_init(&rl->lock, NULL);
	rl->bps = bps;
	rl->next_ns = now_ns();
}

void mover_ratelimit_wait(struct mover_ratelimit *rl, uint64_t bytes, const atomic_bool *stop)
{
	uint64_t now, at;

	if (!rl->bps)
		return;
	pthread_mutex_lock(&rl->lock);
	now = now_ns();
	/* No credit for idle time beyond 50 ms: a limit, not an average. */
	if (rl->next_ns + 50000000ULL < now)
		rl->next_ns = now - 50000000ULL;
	at = rl->next_ns;
	rl->next_ns += bytes * 1000000000ULL / rl->bps;
	pthread_mutex_unlock(&rl->lock);
	while (at > now && !(stop && atomic_load(stop))) {
		uint64_t d = MIN(at - now, 100000000ULL);
		struct timespec ts = { (time_t)(d / 1000000000ULL), (long)(d % 1000000000ULL) };

		nanosleep(&ts, NULL);
		now = now_ns();
	}
}

void mover_ratelimit_fini(struct mover_ratelimit *rl)
{
	pthread_mutex_destroy(&rl->lock);
}
