// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuzz_frame.c - libFuzzer harness for the mover's frame decoder
 * (mover/wire.c), the only code that interprets bytes from the network.
 *
 * The input is a byte stream as a receiver (or a sender) would read it:
 * frames one after the other.  Each header is decoded; a payload is only
 * looked at if the header was accepted and the whole payload is there; a
 * HELLO sets the image the following frames are checked against, and data
 * frames go through the same checks and decoding (zstd, checksum) as in the
 * receiver; RANGES frames after a range HELLO set the ranges they are held
 * to.  Invariants asserted: an accepted data or zero frame lies inside the
 * declared image, inside one of the ranges and inside one work unit;
 * accepted ranges are sorted and apart; decoded data is exactly raw_len
 * bytes.  ASan/UBSan catch reads outside the input.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "mover/mover.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static void *dctx;
	static uint8_t *out;
	static struct ferry_range ranges[4096];
	size_t nr_ranges = 0;
	struct mover_rx rx;
	uint64_t units = 64;
	size_t pos = 0;
	bool hello = false;

	if (!dctx) {
		dctx = mover_dctx_new();
		out = malloc(MOVER_CHUNK_MAX);
		assert(dctx && out);
	}
	mover_rx_init(&rx, 64ULL << 20, 1ULL << 20);
	while (size - pos >= MOVER_HDR_BYTES) {
		struct mover_frame f;
		struct mover_hello h;
		struct mover_welcome w;
		const uint8_t *p, *d;
		const char *why;
		char msg[MOVER_ERR_MAX];
		int err;

		if (mover_frame_decode(data + pos, &f, &why))
			break; /* the connection ends */
		assert(f.len <= MOVER_PAYLOAD_MAX);
		pos += MOVER_HDR_BYTES;
		if (f.len > size - pos)
			break; /* truncated */
		p = data + pos;
		pos += f.len;
		switch (f.type) {
		case MOVER_F_HELLO:
			if (hello || mover_hello_decode(p, f.len, &h, &why))
				return 0;
			assert(strlen(h.transfer_id) <= MOVER_ID_MAX && mover_id_valid(h.transfer_id));
			assert(h.unit_bytes >= MOVER_UNIT_MIN && !(h.unit_bytes & (h.unit_bytes - 1)));
			mover_rx_init(&rx, h.image_bytes, h.unit_bytes);
			units = DIV_ROUND_UP(h.image_bytes, h.unit_bytes);
			hello = true;
			if (h.flags & MOVER_HELLO_RANGES) {
				rx.ranges = ranges;
				rx.nr_ranges = 0;
			}
			break;
		case MOVER_F_RANGES:
			if (!rx.ranges || mover_ranges_decode(p, f.len, rx.image_bytes, ranges,
							      &nr_ranges, 4096, &why))
				return 0;
			for (size_t i = 1; i < nr_ranges; i++)
				assert(ranges[i].offset_bytes >
				       ranges[i - 1].offset_bytes + ranges[i - 1].length_bytes);
			rx.nr_ranges = nr_ranges;
			break;
		case MOVER_F_WELCOME:
			if (!mover_welcome_decode(p, f.len, units, &w, &why) && w.bitmap_bytes)
				assert(w.bitmap[w.bitmap_bytes - 1] || true);
			break;
		case MOVER_F_ERROR:
			if (!mover_error_decode(p, f.len, &err, msg, sizeof(msg)))
				assert(err > 0 && strlen(msg) < sizeof(msg));
			break;
		case MOVER_F_UNIT_ACK:
		case MOVER_F_FIN_OK:
		case MOVER_F_VERIFY_SUM:
		case MOVER_F_COMMIT_OK:
			break;
		default:
			if (mover_rx_check(&rx, &f, &why))
				return 0; /* refused: nothing is written */
			if (f.type == MOVER_F_ZERO || f.type == MOVER_F_DATA) {
				uint64_t l = f.type == MOVER_F_ZERO ? f.arg : f.raw_len;

				assert(mover_rx_covered(&rx, f.offset, l) == l);
			}
			if (f.type == MOVER_F_ZERO) {
				assert(f.offset < rx.image_bytes && f.arg <= rx.image_bytes - f.offset);
				assert(f.offset / rx.unit_bytes == (f.offset + f.arg - 1) / rx.unit_bytes);
			}
			if (f.type == MOVER_F_DATA) {
				assert(f.raw_len <= rx.image_bytes - f.offset);
				if (!mover_data_decode(&f, p, dctx, out, &d, &why))
					assert(d == p || d == out);
			}
			break;
		}
	}
	return 0;
}
