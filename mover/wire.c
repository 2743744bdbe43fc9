// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * wire.c - the mover's frame format, version 3 (docs/wire-format.md).
 *
 * Every frame is a 32-byte little-endian header and a payload.  This file
 * is the only code that interprets bytes from the network: headers are
 * checked against fixed bounds before any payload is read, payloads are
 * decoded into structs with every length checked, and mover_rx_check()
 * holds each data frame to the declared image and to the work unit it
 * belongs to.  Nothing here does I/O; tests/fuzz/fuzz_frame.c drives it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>
#include <zstd.h>

#include "common.h"
#include "mover/mover.h"

#define HELLO_FIXED 88
#define WELCOME_FIXED 32
#define ERROR_MSG_MAX 1024
#define IMAGE_MAX (1ULL << 62)

void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

void put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}

void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)get_le16(p) | (uint32_t)get_le16(p + 2) << 16;
}

uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

void mover_frame_encode(const struct mover_frame *f, uint8_t hdr[MOVER_HDR_BYTES])
{
	put_le32(hdr, MOVER_MAGIC);
	hdr[4] = MOVER_VERSION;
	hdr[5] = f->type;
	put_le16(hdr + 6, f->flags);
	put_le32(hdr + 8, f->len);
	put_le32(hdr + 12, f->raw_len);
	put_le64(hdr + 16, f->offset);
	put_le64(hdr + 24, f->arg);
}

/* Payload length bounds per type; DATA is checked on its own. */
static const struct {
	uint32_t min, max;
} frame_len[MOVER_F_TYPE_MAX + 1] = {
	[MOVER_F_HELLO] = { HELLO_FIXED + 1 + 1, HELLO_FIXED + MOVER_ID_MAX + MOVER_PATH_MAX },
	[MOVER_F_WELCOME] = { WELCOME_FIXED, WELCOME_FIXED + MOVER_BITMAP_MAX },
	[MOVER_F_ERROR] = { 4, 4 + ERROR_MSG_MAX },
	[MOVER_F_ZERO] = { 0, 0 },
	[MOVER_F_UNIT_END] = { 0, 0 },
	[MOVER_F_UNIT_ACK] = { 0, 0 },
	[MOVER_F_FIN] = { 0, 0 },
	[MOVER_F_FIN_OK] = { 0, 0 },
	[MOVER_F_VERIFY] = { 0, 0 },
	[MOVER_F_VERIFY_SUM] = { 8, 8 },
	[MOVER_F_COMMIT] = { 0, 0 },
	[MOVER_F_COMMIT_OK] = { 32, 32 },
	[MOVER_F_RANGES] = { 16, MOVER_PAYLOAD_MAX / 16 * 16 },
	[MOVER_F_ROUND] = { MOVER_ROUND_BYTES, MOVER_ROUND_BYTES },
	[MOVER_F_ROUND_OK] = { WELCOME_FIXED, WELCOME_FIXED + MOVER_BITMAP_MAX },
	[MOVER_F_ROUND_END] = { 0, 0 },
	[MOVER_F_ROUND_DONE] = { 32, 32 },
};

int mover_frame_decode(const uint8_t hdr[MOVER_HDR_BYTES], struct mover_frame *f,
		       const char **why)
{
	if (get_le32(hdr) != MOVER_MAGIC) {
		*why = "bad frame magic (not a ferry mover peer?)";
		return -EPROTO;
	}
	if (hdr[4] != MOVER_VERSION) {
		*why = "unsupported wire format version";
		return -EPROTONOSUPPORT;
	}
	f->type = hdr[5];
	f->flags = get_le16(hdr + 6);
	f->len = get_le32(hdr + 8);
	f->raw_len = get_le32(hdr + 12);
	f->offset = get_le64(hdr + 16);
	f->arg = get_le64(hdr + 24);

	if (f->type == 0 || f->type > MOVER_F_TYPE_MAX) {
		*why = "unknown frame type";
		return -EPROTO;
	}
	if (f->type == MOVER_F_DATA) {
		if (f->flags & ~MOVER_DATA_ZSTD) {
			*why = "unknown data frame flags";
			return -EPROTO;
		}
		if (f->raw_len == 0 || f->raw_len > MOVER_CHUNK_MAX) {
			*why = "data frame length out of bounds";
			return -EMSGSIZE;
		}
		if (!(f->flags & MOVER_DATA_ZSTD) && f->len != f->raw_len) {
			*why = "raw data frame with payload length != data length";
			return -EPROTO;
		}
		if ((f->flags & MOVER_DATA_ZSTD) &&
		    (f->len == 0 || f->len > ZSTD_COMPRESSBOUND(f->raw_len) ||
		     f->len > MOVER_PAYLOAD_MAX)) {
			*why = "compressed frame larger than its bound";
			return -EMSGSIZE;
		}
		return 0;
	}
	if (f->flags || f->raw_len) {
		*why = "reserved header fields not zero";
		return -EPROTO;
	}
	if (f->len < frame_len[f->type].min || f->len > frame_len[f->type].max ||
	    (f->type == MOVER_F_RANGES && f->len % 16)) {
		*why = "frame payload length out of bounds";
		return -EMSGSIZE;
	}
	if ((f->type == MOVER_F_ZERO || f->type == MOVER_F_VERIFY) &&
	    (f->arg == 0 || f->arg > MOVER_UNIT_MAX)) {
		*why = "zero/verify length out of bounds";
		return -EMSGSIZE;
	}
	if ((f->type == MOVER_F_ROUND || f->type == MOVER_F_ROUND_END) &&
	    f->offset > MOVER_ROUND_MAX) {
		*why = "round number out of bounds";
		return -EPROTO;
	}
	return 0;
}

bool mover_id_valid(const char *id)
{
	size_t i, n = strlen(id);

	if (n == 0 || n > MOVER_ID_MAX || id[0] == '.')
		return false;
	for (i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

size_t mover_hello_encode(const struct mover_hello *h, uint8_t *buf, size_t cap)
{
	size_t il = strlen(h->transfer_id), pl = strlen(h->path);

	if (HELLO_FIXED + il + pl > cap)
		return 0;
	memcpy(buf, h->token, MOVER_TOKEN_BYTES);
	put_le64(buf + 32, h->image_bytes);
	put_le64(buf + 40, h->unit_bytes);
	put_le64(buf + 48, h->units_total);
	put_le64(buf + 56, h->ranges_digest);
	put_le32(buf + 64, h->flags);
	put_le32(buf + 68, h->zero_mode);
	put_le32(buf + 72, h->conn_index);
	put_le32(buf + 76, h->conns);
	put_le16(buf + 80, (uint16_t)il);
	put_le16(buf + 82, (uint16_t)pl);
	put_le32(buf + 84, h->nr_ranges);
	memcpy(buf + HELLO_FIXED, h->transfer_id, il);
	memcpy(buf + HELLO_FIXED + il, h->path, pl);
	return HELLO_FIXED + il + pl;
}

int mover_hello_decode(const uint8_t *p, size_t len, struct mover_hello *h, const char **why)
{
	size_t il, pl, i;
	uint64_t units_max;

	*why = "malformed hello";
	if (len < HELLO_FIXED)
		return -EPROTO;
	memset(h, 0, sizeof(*h));
	memcpy(h->token, p, MOVER_TOKEN_BYTES);
	h->image_bytes = get_le64(p + 32);
	h->unit_bytes = get_le64(p + 40);
	h->units_total = get_le64(p + 48);
	h->ranges_digest = get_le64(p + 56);
	h->flags = get_le32(p + 64);
	h->zero_mode = get_le32(p + 68);
	h->conn_index = get_le32(p + 72);
	h->conns = get_le32(p + 76);
	il = get_le16(p + 80);
	pl = get_le16(p + 82);
	h->nr_ranges = get_le32(p + 84);
	if (HELLO_FIXED + il + pl != len)
		return -EPROTO;
	if (h->nr_ranges > MOVER_RANGES_MAX ||
	    (h->nr_ranges && !(h->flags & MOVER_HELLO_RANGES)) ||
	    ((h->flags & MOVER_HELLO_SESSION) &&
	     ((h->flags & MOVER_HELLO_RANGES) || h->ranges_digest))) {
		*why = "invalid range count";
		return -EPROTO;
	}
	if (il == 0 || il > MOVER_ID_MAX || pl == 0 || pl > MOVER_PATH_MAX)
		return -EPROTO;
	memcpy(h->transfer_id, p + HELLO_FIXED, il);
	memcpy(h->path, p + HELLO_FIXED + il, pl);
	if (!mover_id_valid(h->transfer_id)) {
		*why = "invalid transfer id";
		return -EPROTO;
	}
	for (i = 0; i < pl; i++) {
		if (!h->path[i] || h->path[i] == '\n') {
			*why = "invalid path";
			return -EPROTO;
		}
	}
	if (h->flags & ~MOVER_HELLO_KNOWN || h->zero_mode > MOVER_ZERO_SKIP || h->conns == 0 ||
	    h->conns > MOVER_CONNS_MAX || h->conn_index >= h->conns)
		return -EPROTO;
	if (h->unit_bytes < MOVER_UNIT_MIN || h->unit_bytes > MOVER_UNIT_MAX ||
	    (h->unit_bytes & (h->unit_bytes - 1))) {
		*why = "invalid work unit size";
		return -EPROTO;
	}
	if (h->image_bytes > IMAGE_MAX) {
		*why = "image size out of bounds";
		return -EFBIG;
	}
	units_max = DIV_ROUND_UP(h->image_bytes, h->unit_bytes);
	if (units_max > (uint64_t)MOVER_BITMAP_MAX * 8) {
		*why = "image too large for the work unit size";
		return -EFBIG;
	}
	if (h->units_total > units_max || (!(h->flags & MOVER_HELLO_RANGES) &&
					   h->units_total != units_max)) {
		*why = "unit count does not match the image size";
		return -EPROTO;
	}
	return 0;
}

size_t mover_welcome_encode(const struct mover_welcome *w, uint8_t *buf, size_t cap)
{
	if (WELCOME_FIXED + (size_t)w->bitmap_bytes > cap)
		return 0;
	put_le32(buf, w->flags);
	put_le32(buf + 4, w->bitmap_bytes);
	put_le64(buf + 8, w->dest_bytes);
	put_le64(buf + 16, w->units_done);
	put_le32(buf + 24, w->flags & MOVER_WELCOME_ROUND ? w->round : 0);
	put_le32(buf + 28, w->flags & MOVER_WELCOME_ROUND ? w->round_digest : 0);
	if (w->bitmap_bytes)
		memcpy(buf + WELCOME_FIXED, w->bitmap, w->bitmap_bytes);
	return WELCOME_FIXED + w->bitmap_bytes;
}

int mover_welcome_decode(const uint8_t *p, size_t len, uint64_t units, struct mover_welcome *w,
			 const char **why)
{
	*why = "malformed welcome";
	if (len < WELCOME_FIXED)
		return -EPROTO;
	w->flags = get_le32(p);
	w->bitmap_bytes = get_le32(p + 4);
	w->dest_bytes = get_le64(p + 8);
	w->units_done = get_le64(p + 16);
	w->round = get_le32(p + 24);
	w->round_digest = get_le32(p + 28);
	if ((!(w->flags & MOVER_WELCOME_ROUND) && get_le64(p + 24)) ||
	    w->round > MOVER_ROUND_MAX || WELCOME_FIXED + (size_t)w->bitmap_bytes != len ||
	    w->bitmap_bytes != DIV_ROUND_UP(units, 8) || w->units_done > units)
		return -EPROTO;
	w->bitmap = w->bitmap_bytes ? p + WELCOME_FIXED : NULL;
	return 0;
}

size_t mover_round_encode(const struct mover_round *r, uint8_t *buf, size_t cap)
{
	if (cap < MOVER_ROUND_BYTES)
		return 0;
	put_le32(buf, r->nr_ranges);
	put_le32(buf + 4, 0);
	put_le64(buf + 8, r->units_total);
	return MOVER_ROUND_BYTES;
}

int mover_round_decode(const uint8_t *p, size_t len, struct mover_round *r, const char **why)
{
	*why = "malformed round";
	if (len != MOVER_ROUND_BYTES || get_le32(p + 4))
		return -EPROTO;
	r->nr_ranges = get_le32(p);
	r->units_total = get_le64(p + 8);
	if (r->nr_ranges > MOVER_RANGES_MAX || r->units_total > (uint64_t)MOVER_BITMAP_MAX * 8) {
		*why = "round with too many ranges or units";
		return -EPROTO;
	}
	return 0;
}

size_t mover_error_encode(int err, const char *msg, uint8_t *buf, size_t cap)
{
	size_t n = strlen(msg);

	if (n > ERROR_MSG_MAX)
		n = ERROR_MSG_MAX;
	if (cap < 4 + n)
		return 0;
	put_le32(buf, (uint32_t)(err < 0 ? -err : err));
	memcpy(buf + 4, msg, n);
	return 4 + n;
}

int mover_error_decode(const uint8_t *p, size_t len, int *err, char *msg, size_t msglen)
{
	size_t i, n;
	uint32_t e;

	if (len < 4 || !msglen)
		return -EPROTO;
	e = get_le32(p);
	*err = (e == 0 || e > 4095) ? EPROTO : (int)e;
	n = MIN(len - 4, msglen - 1);
	for (i = 0; i < n; i++) {
		unsigned char c = p[4 + i];

		/* A peer's words end up in our logs: printable ASCII only. */
		msg[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	msg[n] = '\0';
	return 0;
}

size_t mover_ranges_encode(const struct ferry_range *r, size_t n, uint8_t *buf, size_t cap)
{
	size_t i;

	if (n * 16 > cap)
		return 0;
	for (i = 0; i < n; i++) {
		put_le64(buf + i * 16, r[i].offset_bytes);
		put_le64(buf + i * 16 + 8, r[i].length_bytes);
	}
	return n * 16;
}

int mover_ranges_decode(const uint8_t *p, size_t len, uint64_t image_bytes,
			struct ferry_range *out, size_t *n, size_t cap, const char **why)
{
	size_t i;

	*why = "malformed ranges";
	if (len % 16 || len / 16 > cap - *n)
		return -EPROTO;
	for (i = 0; i < len / 16; i++) {
		uint64_t off = get_le64(p + i * 16), l = get_le64(p + i * 16 + 8);

		if (!l || off >= image_bytes || l > image_bytes - off) {
			*why = "range outside the image";
			return -ERANGE;
		}
		/* Normalized: sorted, apart (adjacent ones are merged). */
		if (*n && off <= out[*n - 1].offset_bytes + out[*n - 1].length_bytes) {
			*why = "ranges not sorted and merged";
			return -EPROTO;
		}
		out[(*n)++] = (struct ferry_range){ off, l };
	}
	return 0;
}

uint64_t mover_ranges_units(const struct ferry_range *r, size_t n, uint64_t unit_bytes)
{
	uint64_t units = 0, last = UINT64_MAX;
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t a = r[i].offset_bytes / unit_bytes;
		uint64_t b = (r[i].offset_bytes + r[i].length_bytes - 1) / unit_bytes;

		units += b - a + 1 - (a == last);
		last = b;
	}
	return units;
}

void mover_rx_init(struct mover_rx *rx, uint64_t image_bytes, uint64_t unit_bytes)
{
	memset(rx, 0, sizeof(*rx));
	rx->image_bytes = image_bytes;
	rx->unit_bytes = unit_bytes;
}

/* The range holding off (NULL: none); ranges are sorted and apart. */
static const struct ferry_range *rx_range_at(const struct mover_rx *rx, uint64_t off)
{
	size_t lo = 0, hi = rx->nr_ranges;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rx->ranges[mid].offset_bytes + rx->ranges[mid].length_bytes <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < rx->nr_ranges && rx->ranges[lo].offset_bytes <= off)
		return &rx->ranges[lo];
	return NULL;
}

/* [off, off+len) inside the image and inside one of the transfer's ranges. */
static bool rx_inside(const struct mover_rx *rx, uint64_t off, uint64_t len)
{
	const struct ferry_range *r;

	if (off >= rx->image_bytes || len > rx->image_bytes - off)
		return false;
	if (!rx->ranges)
		return true;
	r = rx_range_at(rx, off);
	return r && off + len <= r->offset_bytes + r->length_bytes;
}

uint64_t mover_rx_covered(const struct mover_rx *rx, uint64_t off, uint64_t len)
{
	uint64_t end, sum = 0;
	size_t lo = 0, hi = rx->nr_ranges;

	if (off >= rx->image_bytes)
		return 0;
	end = off + MIN(len, rx->image_bytes - off);
	if (!rx->ranges)
		return end - off;
	/* First range ending after off. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rx->ranges[mid].offset_bytes + rx->ranges[mid].length_bytes <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < rx->nr_ranges && rx->ranges[lo].offset_bytes < end; lo++) {
		uint64_t a = MAX(off, rx->ranges[lo].offset_bytes);
		uint64_t b = MIN(end, rx->ranges[lo].offset_bytes + rx->ranges[lo].length_bytes);

		sum += b - a;
	}
	return sum;
}

int mover_rx_check(struct mover_rx *rx, const struct mover_frame *f, const char **why)
{
	uint64_t len, unit;

	switch (f->type) {
	case MOVER_F_DATA:
	case MOVER_F_ZERO:
		len = f->type == MOVER_F_DATA ? f->raw_len : f->arg;
		if (f->offset >= rx->image_bytes || len > rx->image_bytes - f->offset) {
			*why = "extent outside the image";
			return -ERANGE;
		}
		if (!rx_inside(rx, f->offset, len)) {
			*why = "extent outside the transfer's ranges";
			return -ERANGE;
		}
		unit = f->offset / rx->unit_bytes;
		if ((f->offset + len - 1) / rx->unit_bytes != unit) {
			*why = "extent crosses a work unit boundary";
			return -ERANGE;
		}
		if (rx->in_unit && (unit != rx->unit_index || f->offset < rx->unit_next)) {
			*why = "extent out of order inside its work unit";
			return -ERANGE;
		}
		if (!rx->in_unit) {
			rx->in_unit = true;
			rx->unit_index = unit;
			rx->unit_covered = 0;
		}
		rx->unit_next = f->offset + len;
		rx->unit_covered += len;
		return 0;
	case MOVER_F_UNIT_END:
		if (!rx->in_unit || f->offset != rx->unit_index || f->arg != rx->unit_covered) {
			*why = "unit end does not match the extents sent";
			return -EPROTO;
		}
		/* In order and apart, the extents cover the unit's every byte
		 * of the transfer only if they add up to it. */
		if (rx->unit_covered != mover_rx_covered(rx, rx->unit_index * rx->unit_bytes,
							 rx->unit_bytes)) {
			*why = "unit end before the whole unit was sent";
			return -EPROTO;
		}
		rx->in_unit = false;
		return 0;
	case MOVER_F_VERIFY:
		if (!rx_inside(rx, f->offset, f->arg)) {
			*why = "verify range outside the transfer";
			return -ERANGE;
		}
		/* fall through */
	case MOVER_F_FIN:
	case MOVER_F_COMMIT:
	case MOVER_F_ROUND:
	case MOVER_F_ROUND_END:
		if (rx->in_unit) {
			*why = "frame inside an unfinished work unit";
			return -EPROTO;
		}
		return 0;
	default:
		*why = "frame not expected from a sender";
		return -EPROTO;
	}
}

void *mover_dctx_new(void)
{
	return ZSTD_createDCtx();
}

void mover_dctx_free(void *dctx)
{
	ZSTD_freeDCtx(dctx);
}

uint64_t mover_data_checksum(const void *p, size_t len, uint64_t offset)
{
	/* Seeded with the offset: data delivered to the wrong place fails.
	 * (__builtin_cpu_supports reads what libgcc filled in at startup.) */
	if (__builtin_cpu_supports("avx2"))
		return mover_xxh3_avx2(p, len, offset);
	return XXH3_64bits_withSeed(p, len, offset);
}

int mover_data_decode(const struct mover_frame *f, const uint8_t *payload, void *dctx,
		      uint8_t *out, const uint8_t **data, const char **why)
{
	const uint8_t *d = payload;

	if (f->flags & MOVER_DATA_ZSTD) {
		unsigned long long csize = ZSTD_getFrameContentSize(payload, f->len);
		size_t n;

		if (csize != f->raw_len) {
			*why = "compressed frame does not declare the data length";
			return -EBADMSG;
		}
		/* The output is bounded by raw_len: no decompression bomb. */
		n = ZSTD_decompressDCtx(dctx, out, f->raw_len, payload, f->len);
		if (ZSTD_isError(n) || n != f->raw_len) {
			*why = "corrupt compressed frame";
			return -EBADMSG;
		}
		d = out;
	}
	if (mover_data_checksum(d, f->raw_len, f->offset) != f->arg) {
		*why = "checksum mismatch";
		return -EBADMSG;
	}
	*data = d;
	return 0;
}

const char *mover_size_str(uint64_t v, char *buf, size_t len)
{
	static const char sfx[] = "KMGTP";
	int i = -1;

	while (v && v % 1024 == 0 && i < 4) {
		v /= 1024;
		i++;
	}
	if (i < 0)
		snprintf(buf, len, "%" PRIu64, v);
	else
		snprintf(buf, len, "%" PRIu64 "%c", v, sfx[i]);
	return buf;
}

const char *mover_extent_str(uint64_t off, uint64_t len, char *buf, size_t blen)
{
	char s[32];

	snprintf(buf, blen, "0x%" PRIx64 "+%s", off, mover_size_str(len, s, sizeof(s)));
	return buf;
}
