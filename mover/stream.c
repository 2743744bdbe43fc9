// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * stream.c - what one connection sends: work units as holes, zero runs and
 * data chunks; the acknowledgements and errors that come back; the verify
 * pass and the final commit.
 *
 * A unit is mapped when it is picked up (SEEK_DATA/SEEK_HOLE on its ranges),
 * its data extents are read through the reader (aio.c) in chunks of at most
 * 1 MiB, each chunk is cut into runs of zero and non-zero 4 KiB blocks,
 * non-zero runs are checksummed (XXH3, seeded with their offset), encoded
 * (codec.c) and sent with the header in one sendmsg.  Frames from the
 * receiver (UNIT_ACK, ERROR) are read without blocking after every chunk.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/tcp.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "common.h"
#include "mover/mover.h"

#define PROGRESS_EVERY_NS (200ULL * 1000000ULL)

int mover_sconn_init(struct mover_sconn *c)
{
	struct mover_xfer *x = c->x;
	int ret;

	ret = mover_codec_init(&c->codec, x->o->compress, x->o->compress_level);
	if (ret)
		return ret;
	ret = mover_reader_init(&c->rd, x->src_fd, x->o->source);
	if (ret) {
		mover_codec_fini(&c->codec);
		return ret;
	}
	c->ready = true;
	return 0;
}

void mover_sconn_fini(struct mover_sconn *c)
{
	if (!c->ready)
		return;
	mover_reader_fini(&c->rd);
	mover_codec_fini(&c->codec);
	mover_segs_free(&c->segs);
	free(c->reqs);
	c->reqs = NULL;
	c->ready = false;
}

void mover_progress_report(struct mover_xfer *x, bool final)
{
	struct mover_progress p;
	uint64_t now = now_ns();

	if (!x->o->progress)
		return;
	if (!final && now - atomic_load(&x->last_progress_ns) < PROGRESS_EVERY_NS)
		return;
	pthread_mutex_lock(&x->plock);
	if (final || now - atomic_load(&x->last_progress_ns) >= PROGRESS_EVERY_NS) {
		atomic_store(&x->last_progress_ns, now);
		pthread_mutex_lock(&x->lock);
		p.done_bytes = x->done_bytes + x->skipped_bytes;
		pthread_mutex_unlock(&x->lock);
		p.total_bytes = x->plan.total_bytes;
		p.acked_bytes = x->acked_bytes;
		p.wire_bytes = x->wire_bytes;
		p.elapsed_ms = (now - x->start_ns) / 1000000ULL;
		p.final = final;
		x->o->progress(&p, x->o->progress_ctx);
	}
	pthread_mutex_unlock(&x->plock);
}

static void sconn_ack(struct mover_xfer *x, uint64_t unit)
{
	size_t lo = 0, hi = x->plan.nr_units;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (x->plan.units[mid].index < unit)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= x->plan.nr_units || x->plan.units[lo].index != unit)
		return;
	pthread_mutex_lock(&x->lock);
	if (x->state[lo] == UNIT_SENT) {
		x->state[lo] = UNIT_ACKED;
		x->acked_bytes += x->plan.units[lo].bytes;
		x->units_acked++;
	}
	pthread_mutex_unlock(&x->lock);
}

/* Handle complete frames in c->in. */
static int sconn_parse(struct mover_sconn *c)
{
	struct mover_frame f;
	const char *why;
	int ret, rerr;

	while (c->inlen >= MOVER_HDR_BYTES) {
		ret = mover_frame_decode(c->in, &f, &why);
		if (!ret && f.len > sizeof(c->in) - MOVER_HDR_BYTES) {
			why = "frame too large";
			ret = -EPROTO;
		}
		if (ret) {
			snprintf(c->errmsg, sizeof(c->errmsg), "from the receiver: %s", why);
			return -EPROTO;
		}
		if (c->inlen < MOVER_HDR_BYTES + f.len)
			break;
		switch (f.type) {
		case MOVER_F_UNIT_ACK:
			sconn_ack(c->x, f.offset);
			break;
		case MOVER_F_FIN_OK:
			c->fin_ok = true;
			break;
		case MOVER_F_VERIFY_SUM:
			c->have_sum = true;
			c->sum_off = f.offset;
			c->sum = f.arg;
			break;
		case MOVER_F_ROUND_DONE:
			c->round_done = true;
			break;
		case MOVER_F_COMMIT_OK:
			c->commit_ok = true;
			memcpy(c->commit_info, c->in + MOVER_HDR_BYTES, sizeof(c->commit_info));
			break;
		case MOVER_F_ERROR:
			mover_error_decode(c->in + MOVER_HDR_BYTES, f.len, &rerr, c->errmsg,
					   sizeof(c->errmsg));
			return -rerr;
		default:
			snprintf(c->errmsg, sizeof(c->errmsg), "unexpected frame from the receiver");
			return -EPROTO;
		}
		c->inlen -= MOVER_HDR_BYTES + f.len;
		memmove(c->in, c->in + MOVER_HDR_BYTES + f.len, c->inlen);
	}
	return 0;
}

/* Read what the receiver sent; with *until, block until it becomes true. */
static int sconn_poll(struct mover_sconn *c, const bool *until)
{
	int ret;

	for (;;) {
		ssize_t n;

		ret = sconn_parse(c);
		if (ret || (until && *until))
			return ret;
		n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen,
			 until ? 0 : MSG_DONTWAIT);
		if (n > 0) {
			c->inlen += (size_t)n;
			continue;
		}
		if (n == 0) {
			snprintf(c->errmsg, sizeof(c->errmsg), "connection closed by the receiver");
			return -EPIPE;
		}
		if (errno == EINTR)
			continue;
		if ((errno == EAGAIN || errno == EWOULDBLOCK) && !until)
			return 0;
		ret = -errno;
		snprintf(c->errmsg, sizeof(c->errmsg), "%s",
			 ret == -EAGAIN ? "timed out waiting for the receiver" : strerror(-ret));
		return ret == -EAGAIN ? -ETIMEDOUT : ret;
	}
}

static int sconn_send(struct mover_sconn *c, const struct mover_frame *f, const void *payload)
{
	struct mover_xfer *x = c->x;
	uint8_t hdr[MOVER_HDR_BYTES];
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)payload, f->len } };
	int ret;

	mover_frame_encode(f, hdr);
	if (x->o->bwlimit_bps)
		mover_ratelimit_wait(&x->rl, MOVER_HDR_BYTES + f->len, &x->stop);
	ret = mover_sock_sendv(c->fd, iov, f->len ? 2 : 1);
	if (ret) {
		/* The receiver may have said why before closing. */
		int why = sconn_poll(c, NULL);

		if (why && why != -EPIPE)
			return why;
		snprintf(c->errmsg, sizeof(c->errmsg), "send: %s", strerror(-ret));
		return ret;
	}
	x->wire_bytes += MOVER_HDR_BYTES + f->len;
	return 0;
}

/*
 * A raw data frame straight from the page cache: the header, then
 * sendfile(2) of the bytes, which the kernel hands to the socket without
 * copying them.  The checksum was computed on a read of the same bytes; if
 * the image changed in between (a running VM), the receiver refuses the
 * chunk and the unit is sent again through the copying path.  (SIGPIPE is
 * blocked in the sending threads: sendfile has no MSG_NOSIGNAL.)
 */
static int sconn_sendfile(struct mover_sconn *c, const struct mover_frame *f)
{
	struct mover_xfer *x = c->x;
	uint8_t hdr[MOVER_HDR_BYTES];
	off_t o = (off_t)f->offset;
	size_t left = f->len, h = 0;
	int ret = 0;

	mover_frame_encode(f, hdr);
	if (x->o->bwlimit_bps)
		mover_ratelimit_wait(&x->rl, MOVER_HDR_BYTES + f->len, &x->stop);
	while (h < sizeof(hdr)) {
		ssize_t n = send(c->fd, hdr + h, sizeof(hdr) - h, MSG_MORE | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto err;
		}
		h += (size_t)n;
	}
	while (left) {
		ssize_t n = sendfile(c->fd, x->src_fd, &o, left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			goto err;
		}
		left -= (size_t)n;
	}
	x->wire_bytes += MOVER_HDR_BYTES + f->len;
	return 0;
err:
	if (sconn_poll(c, NULL) == 0 || ret == -EIO)
		snprintf(c->errmsg, sizeof(c->errmsg), "sendfile: %s", strerror(-ret));
	return ret;
}

static int send_zero(struct mover_sconn *c, uint64_t off, uint64_t len)
{
	struct mover_frame f = { .type = MOVER_F_ZERO, .offset = off, .arg = len };
	int ret = sconn_send(c, &f, NULL);

	if (!ret) {
		c->x->done_bytes += len;
		c->unit_done += len;
	}
	return ret;
}

/*
 * Publish this thread's link and compressor estimates and decide with the
 * averages over the transfer's connections: they share the link, and one
 * that compresses (sends less) lets the others send faster.
 */
static void sconn_share_estimates(struct mover_sconn *c)
{
	struct mover_xfer *x = c->x;
	uint64_t l = 0, nl = 0, z[MOVER_ZSTD_NLEVELS] = { 0 }, nz[MOVER_ZSTD_NLEVELS] = { 0 };
	uint64_t r[MOVER_ZSTD_NLEVELS] = { 0 }, nr[MOVER_ZSTD_NLEVELS] = { 0 };
	uint64_t e[MOVER_ZSTD_NLEVELS] = { 0 }, ne[MOVER_ZSTD_NLEVELS] = { 0 };
	int i, k, n = c->codec.nlevels;

	atomic_store(&c->pub_link_bps, (uint64_t)c->codec.own_link_bps);
	for (k = 0; k < n; k++) {
		atomic_store(&c->pub_zstd_bps[k], (uint64_t)c->codec.own_zstd_bps[k]);
		atomic_store(&c->pub_ratio_ppm[k], (uint64_t)(c->codec.own_ratio[k] * 1e6));
		atomic_store(&c->pub_rel_ppm[k], (uint64_t)(c->codec.own_rel[k] * 1e6));
	}
	for (i = 0; i < x->nconns; i++) {
		uint64_t a = atomic_load(&x->conns[i].pub_link_bps);

		l += a;
		nl += a != 0;
		for (k = 0; k < n; k++) {
			uint64_t b = atomic_load(&x->conns[i].pub_zstd_bps[k]);
			uint64_t q = atomic_load(&x->conns[i].pub_ratio_ppm[k]);
			uint64_t f = atomic_load(&x->conns[i].pub_rel_ppm[k]);

			z[k] += b;
			nz[k] += b != 0;
			r[k] += q;
			nr[k] += q != 0;
			e[k] += f;
			ne[k] += f != 0;
		}
	}
	c->codec.link_bps = nl ? (double)l / (double)nl : 0;
	for (k = 0; k < n; k++) {
		c->codec.zstd_bps[k] = nz[k] ? (double)z[k] / (double)nz[k] : 0;
		c->codec.ratio[k] = nr[k] ? (double)r[k] / (double)nr[k] / 1e6 : 0;
		c->codec.rel[k] = ne[k] ? (double)e[k] / (double)ne[k] / 1e6 : 0;
	}
}

/* What the link delivers for this connection, from the kernel. */
static void sconn_link_sample(struct mover_sconn *c)
{
	struct mover_xfer *x = c->x;
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	uint64_t cap = x->o->bwlimit_bps / (uint64_t)MAX(x->nconns, 1);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) < 0 ||
	    tl < offsetof(struct tcp_info, tcpi_delivery_rate) + sizeof(ti.tcpi_delivery_rate))
		ti.tcpi_delivery_rate = 0;
	mover_codec_link(&c->codec, ti.tcpi_delivery_rate, ti.tcpi_delivery_rate_app_limited, cap);
	sconn_share_estimates(c);
}

static bool fault_now(struct mover_xfer *x)
{
	uint64_t n = x->o->fault_corrupt_chunk, k;

	if (!n)
		return false;
	k = ++x->chunks;
	return x->o->fault_every ? k % n == 0 : k == n;
}

static int send_data(struct mover_sconn *c, uint8_t *p, uint64_t off, size_t len)
{
	struct mover_xfer *x = c->x;
	struct mover_frame f = { .type = MOVER_F_DATA, .raw_len = (uint32_t)len, .offset = off };
	const uint8_t *payload = p;
	bool zc;
	int zstd;
	uint64_t t0;
	size_t clen = 0;
	int ret;

	f.arg = mover_data_checksum(p, len, off);
	zc = c->zerocopy;
	if (fault_now(x)) {
		p[len / 2] ^= 0x5a; /* test only: damage it after the checksum */
		zc = false;
	}
	zstd = mover_codec_choose(&c->codec, p, len);
	if (zstd) {
		t0 = now_ns();
		clen = mover_codec_compress(&c->codec, p, len, zstd);
		mover_codec_account(&c->codec, zstd, len, clen, now_ns() - t0);
	}
	if (clen) {
		f.flags = MOVER_DATA_ZSTD;
		f.len = (uint32_t)clen;
		payload = c->codec.out;
	} else {
		f.len = (uint32_t)len;
	}
	ret = zc && !clen ? sconn_sendfile(c, &f) : sconn_send(c, &f, payload);
	if (ret)
		return ret;
	if (c->codec.mode == MOVER_COMPRESS_AUTO)
		sconn_link_sample(c);
	x->data_bytes += len;
	if (clen) {
		x->zstd_in_bytes += len;
		x->zstd_out_bytes += clen;
	} else {
		x->raw_bytes += len;
	}
	x->done_bytes += len;
	c->unit_done += len;
	return 0;
}

static int send_chunk(struct mover_sconn *c, uint8_t *p, uint64_t off, size_t len)
{
	struct mover_xfer *x = c->x;
	size_t pos = 0;
	int ret = 0;

	x->read_bytes += len;
	while (pos < len && !ret) {
		bool zero;
		size_t run = mover_run_len(p + pos, len - pos, off + pos, &zero);

		if (zero) {
			ret = send_zero(c, off + pos, run);
			if (!ret)
				x->zero_bytes += run;
		} else {
			ret = send_data(c, p + pos, off + pos, run);
		}
		pos += run;
	}
	if (!ret)
		ret = sconn_poll(c, NULL);
	mover_progress_report(x, false);
	return ret;
}

/* Read requests for the data segments of c->segs, cut at 1 MiB boundaries. */
static int build_reqs(struct mover_sconn *c, size_t *nr)
{
	size_t i, n = 0;

	for (i = 0; i < c->segs.n; i++) {
		const struct mover_seg *s = &c->segs.v[i];
		uint64_t off = s->off, end = s->off + s->len;

		if (!s->data)
			continue;
		while (off < end) {
			uint64_t next = MIN(ROUND_DOWN(off, MOVER_IO_BYTES) + MOVER_IO_BYTES, end);

			if (n == c->cap_reqs) {
				size_t nc = c->cap_reqs ? c->cap_reqs * 2 : 64;
				void *nq = realloc(c->reqs, nc * sizeof(*c->reqs));

				if (!nq)
					return -ENOMEM;
				c->reqs = nq;
				c->cap_reqs = nc;
			}
			c->reqs[n++] = (struct mover_rreq){ off, (uint32_t)(next - off) };
			off = next;
		}
	}
	*nr = n;
	return 0;
}

static int send_part(struct mover_sconn *c, const struct mover_part *pt)
{
	struct mover_xfer *x = c->x;
	size_t i, nr, k = 0;
	char ext[64];
	int ret;

	c->segs.n = 0;
	ret = mover_extent_map(x->src_fd, x->seekable, pt->off, pt->len, &c->segs);
	if (!ret)
		ret = build_reqs(c, &nr);
	if (ret) {
		snprintf(c->errmsg, sizeof(c->errmsg), "source extent %s: mapping: %s",
			 mover_extent_str(pt->off, pt->len, ext, sizeof(ext)), strerror(-ret));
		return ret == -ENOMEM ? ret : -EIO;
	}
	mover_reader_choose(&c->rd, pt->off, pt->len);
	/* Zero-copy sends from the page cache, unless a chunk sent that way
	 * failed its checksum (the image changing under us). */
	c->zerocopy = !c->rd.direct && !c->no_zerocopy && x->seekable;
	ret = mover_reader_start(&c->rd, c->reqs, nr);
	for (i = 0; i < c->segs.n && !ret; i++) {
		const struct mover_seg *s = &c->segs.v[i];
		uint64_t end = s->off + s->len;

		if (!s->data) {
			ret = send_zero(c, s->off, s->len);
			if (!ret)
				x->hole_bytes += s->len;
			continue;
		}
		while (k < nr && c->reqs[k].off < end && !ret) {
			const uint8_t *d;

			if (mover_stopped(x)) {
				ret = -ECANCELED;
				break;
			}
			ret = mover_reader_next(&c->rd, &d);
			if (ret) {
				snprintf(c->errmsg, sizeof(c->errmsg), "source extent %s: read: %s",
					 mover_extent_str(c->reqs[k].off, c->reqs[k].len, ext,
							  sizeof(ext)),
					 strerror(-ret));
				ret = -EIO; /* not worth a reconnect */
				break;
			}
			ret = send_chunk(c, (uint8_t *)d, c->reqs[k].off, c->reqs[k].len);
			k++;
		}
	}
	mover_reader_cancel(&c->rd);
	return ret;
}

int mover_unit_send(struct mover_sconn *c, size_t ui)
{
	struct mover_xfer *x = c->x;
	const struct mover_unit *u = &x->plan.units[ui];
	struct mover_frame f = { .type = MOVER_F_UNIT_END, .offset = u->index, .arg = u->bytes };
	uint32_t i;
	int ret = 0;

	c->unit_done = 0;
	for (i = 0; i < u->nr_parts && !ret; i++)
		ret = send_part(c, &x->plan.parts[u->first_part + i]);
	if (!ret)
		ret = sconn_send(c, &f, NULL);
	if (ret) {
		/* It will be sent again in full: do not count it twice. */
		x->done_bytes -= c->unit_done;
		return ret;
	}
	pthread_mutex_lock(&x->lock);
	x->state[ui] = UNIT_SENT;
	x->owner[ui] = c->index;
	pthread_mutex_unlock(&x->lock);
	x->units_sent++;
	return sconn_poll(c, NULL);
}

int mover_sconn_fin(struct mover_sconn *c)
{
	struct mover_frame f = { .type = MOVER_F_FIN };
	int ret;

	char lv[MOVER_ZSTD_NLEVELS * 48] = "";
	size_t o = 0;

	for (int k = 0; k < c->codec.nlevels && o < sizeof(lv); k++)
		o += (size_t)snprintf(lv + o, sizeof(lv) - o,
				      ", level %d %.0f MB/s r %.2f (x%.2f of level %d) x%" PRIu64,
				      c->codec.levels[k], c->codec.own_zstd_bps[k] / 1e6,
				      c->codec.own_ratio[k], k ? c->codec.own_rel[k] : 1.0,
				      c->codec.levels[0], c->codec.used[k]);
	log_debug(LOG_SUB_MOVER, "%s: connection %d: link %.0f MB/s%s, %s reads", c->x->label,
		  c->index, c->codec.own_link_bps / 1e6, lv, c->rd.direct ? "direct" : "buffered");

	c->fin_ok = false;
	ret = sconn_send(c, &f, NULL);
	if (!ret)
		ret = sconn_poll(c, &c->fin_ok);
	return ret;
}

/* Digest of [off, off+len) of the source, as the receiver computes it. */
static int source_digest(struct mover_sconn *c, uint64_t off, uint64_t len, uint64_t *sum)
{
	XXH3_state_t st;
	uint8_t *buf = c->rd.buf[0];
	int ret = 0;

	XXH3_64bits_reset(&st);
	while (len && !ret) {
		size_t n = (size_t)MIN(len, (uint64_t)MOVER_IO_BYTES);

		ret = pread_full(c->x->src_fd, buf, n, (off_t)off);
		XXH3_64bits_update(&st, buf, n);
		off += n;
		len -= n;
	}
	*sum = XXH3_64bits_digest(&st);
	return ret;
}

static int verify_part(struct mover_sconn *c, const struct mover_part *pt)
{
	struct mover_frame f = { .type = MOVER_F_VERIFY, .offset = pt->off, .arg = pt->len };
	uint64_t mine;
	char ext[64];
	int ret;

	c->have_sum = false;
	ret = sconn_send(c, &f, NULL);
	if (!ret && (ret = source_digest(c, pt->off, pt->len, &mine)))
		snprintf(c->errmsg, sizeof(c->errmsg), "source extent %s: read: %s",
			 mover_extent_str(pt->off, pt->len, ext, sizeof(ext)), strerror(-ret));
	if (!ret)
		ret = sconn_poll(c, &c->have_sum);
	if (ret)
		return ret;
	if (c->sum_off != pt->off || c->sum != mine) {
		snprintf(c->errmsg, sizeof(c->errmsg),
			 "extent %s: verify mismatch: the destination differs from the source",
			 mover_extent_str(pt->off, pt->len, ext, sizeof(ext)));
		return -EIO;
	}
	c->x->verified_bytes += pt->len;
	return 0;
}

static void *verify_main(void *arg)
{
	struct mover_sconn *c = arg;
	struct mover_xfer *x = c->x;
	int ret = 0;

	if (c->fd < 0)
		ret = mover_handshake(x, c, false);
	while (!ret && !mover_stopped(x)) {
		const struct mover_unit *u;
		size_t i;

		pthread_mutex_lock(&x->lock);
		i = x->verify_next++;
		pthread_mutex_unlock(&x->lock);
		if (i >= x->plan.nr_units)
			break;
		u = &x->plan.units[i];
		for (uint32_t k = 0; k < u->nr_parts && !ret; k++)
			ret = verify_part(c, &x->plan.parts[u->first_part + k]);
	}
	if (ret)
		mover_fail(x, ret, "%s", c->errmsg);
	return NULL;
}

void mover_verify_all(struct mover_xfer *x)
{
	int i;

	for (i = 0; i < x->nconns; i++) {
		x->conns[i].started = !pthread_create(&x->conns[i].thr, NULL, verify_main,
						      &x->conns[i]);
		if (!x->conns[i].started)
			mover_fail(x, -EAGAIN, "cannot start a verify thread");
	}
	for (i = 0; i < x->nconns; i++)
		if (x->conns[i].started)
			pthread_join(x->conns[i].thr, NULL);
}

void mover_commit(struct mover_xfer *x)
{
	struct mover_sconn *c = &x->conns[0];
	struct mover_frame f = { .type = MOVER_F_COMMIT };
	size_t i;
	int ret = 0;

	for (i = 0; i < x->plan.nr_units; i++) {
		if (x->state[i] < UNIT_SENT) {
			mover_fail(x, -EIO, "internal error: unit %zu was not sent", i);
			return;
		}
	}
	if (c->fd < 0)
		ret = mover_handshake(x, c, false);
	c->commit_ok = false;
	if (!ret)
		ret = sconn_send(c, &f, NULL);
	if (!ret)
		ret = sconn_poll(c, &c->commit_ok);
	if (ret)
		mover_fail(x, ret, "commit: %s", c->errmsg);
}

int mover_round_end(struct mover_xfer *x)
{
	struct mover_sconn *c = &x->conns[0];
	struct mover_frame f = { .type = MOVER_F_ROUND_END, .offset = x->round };
	int ret;

	c->round_done = false;
	ret = sconn_send(c, &f, NULL);
	if (!ret)
		ret = sconn_poll(c, &c->round_done);
	return ret;
}
