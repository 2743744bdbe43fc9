// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * send.c - the sender: mover_send() and its connection threads.
 *
 * The main thread opens the source, plans the work units, and makes the
 * first connection, whose WELCOME says which units the receiver already
 * has (resume).  Then one thread per connection takes units from a shared
 * queue and streams it (stream.c); a connection that fails puts its
 * unit back, reconnects within a retry budget and re-reads the receiver's
 * bitmap.  When the queue is empty every connection says FIN and waits until
 * its units are journaled; then the optional verify pass, then COMMIT.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#include "common.h"
#include "net/net.h"
#include "mover/mover.h"

int mover_sock_sendv(int fd, struct iovec *iov, int n)
{
	struct msghdr mh = { 0 };

	while (n > 0) {
		ssize_t w;

		mh.msg_iov = iov;
		mh.msg_iovlen = (size_t)n;
		w = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

int mover_default_conns(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	/* Each connection's thread alternates CPU work (checksums, zstd) and
	 * waits (disk, socket): two per core keep the cores busy. */
	return (int)MIN(MAX(2 * n, 4), 8);
}

bool mover_retryable(int err)
{
	switch (-err) {
	case EPIPE:
	case ECONNRESET:
	case ECONNREFUSED:
	case ECONNABORTED:
	case ETIMEDOUT:
	case EAGAIN:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EBADMSG: /* a chunk damaged on the way: send it again */
		return true;
	default:
		return false;
	}
}

void mover_fail(struct mover_xfer *x, int err, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&x->lock);
	if (!x->err) {
		x->err = err;
		va_start(ap, fmt);
		vsnprintf(x->errmsg, sizeof(x->errmsg), fmt, ap);
		va_end(ap);
	}
	atomic_store(&x->stop, true);
	/*
	 * Unblock the other connections.  A cancel also drops what they have
	 * queued (an abortive close): on a slow link megabytes of it would
	 * hold the link for seconds after the operation was stopped.
	 */
	for (int i = 0; i < x->nconns; i++) {
		if (x->conns[i].fd < 0)
			continue;
		if (err == -ECANCELED) {
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };

			setsockopt(x->conns[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		shutdown(x->conns[i].fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&x->lock);
}

bool mover_stopped(struct mover_xfer *x)
{
	if (x->o->cancel && atomic_load(x->o->cancel) && !atomic_load(&x->stop))
		mover_fail(x, -ECANCELED, "cancelled");
	return atomic_load(&x->stop);
}

static int xfer_connect(struct mover_xfer *x)
{
	struct net_addr a = { 0 };
	int sv[2], ret;

	if (x->o->local) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			return -errno;
		ret = mover_server_add_conn(x->o->local, sv[1]);
		if (ret) {
			close(sv[0]);
			return ret;
		}
		return sv[0];
	}
	snprintf(a.host, sizeof(a.host), "%s", x->o->host);
	a.port = x->o->port ? x->o->port : MOVER_DEFAULT_PORT;
	return net_tcp_connect(&a, x->o->connect_timeout_ms ? x->o->connect_timeout_ms : 10000);
}

/*
 * Apply a WELCOME bitmap: skip units the receiver has, and (after a
 * reconnect) send again those it lost.  A connection that joined a live
 * transfer resyncs only the units it sent itself before it dropped: those
 * in flight on other connections are simply not marked yet, while its own
 * may have been behind the frame the receiver dropped it for.
 */
static void xfer_apply_bitmap(struct mover_xfer *x, const struct mover_welcome *w, bool first,
			      int conn)
{
	bool joined = w->flags & MOVER_WELCOME_JOINED;
	size_t i;

	pthread_mutex_lock(&x->lock);
	for (i = 0; i < x->plan.nr_units; i++) {
		uint64_t u = x->plan.units[i].index;
		bool have = w->bitmap && (w->bitmap[u / 8] & (1u << (u % 8)));

		if (first) {
			if (have) {
				x->state[i] = UNIT_SKIPPED;
				x->skipped_bytes += x->plan.units[i].bytes;
				x->units_skipped++;
			}
		} else if (joined && (x->state[i] != UNIT_SENT || x->owner[i] != conn)) {
			continue;
		} else if (!have && x->state[i] >= UNIT_SENT) {
			x->state[i] = UNIT_TODO;
			x->requeue[x->nr_requeue++] = i;
		} else if (have && joined) {
			/* Written; its acknowledgement went with the old connection. */
			x->state[i] = UNIT_ACKED;
			x->acked_bytes += x->plan.units[i].bytes;
			x->units_acked++;
		}
	}
	pthread_mutex_unlock(&x->lock);
}

/*
 * The first @nr of the transfer's ranges as RANGES frames, then the
 * receiver's answer into @f (its payload into @p): the tail of a HELLO
 * and of a ROUND alike.
 */
static int mover_ranges_exchange(struct mover_xfer *x, int fd, size_t nr,
				 uint8_t hdr[MOVER_HDR_BYTES], uint8_t *p, struct mover_frame *f,
				 const char **why)
{
	struct iovec iov[2];
	int ret = 0;

	for (size_t i = 0; !ret && i < nr;) {
		size_t n = MIN(nr - i, (size_t)(MOVER_PAYLOAD_MAX / 16));

		*f = (struct mover_frame){ .type = MOVER_F_RANGES };
		f->len = (uint32_t)mover_ranges_encode(x->ranges + i, n, p, MOVER_PAYLOAD_MAX);
		mover_frame_encode(f, hdr);
		iov[0] = (struct iovec){ hdr, MOVER_HDR_BYTES };
		iov[1] = (struct iovec){ p, f->len };
		ret = mover_sock_sendv(fd, iov, 2);
		i += n;
	}
	if (!ret)
		ret = read_full(fd, hdr, MOVER_HDR_BYTES);
	if (!ret)
		ret = mover_frame_decode(hdr, f, why);
	if (!ret && f->len)
		ret = read_full(fd, p, f->len);
	return ret;
}

int mover_handshake(struct mover_xfer *x, struct mover_sconn *c, bool first)
{
	struct mover_hello h = { 0 };
	struct mover_welcome w;
	struct mover_frame f = { .type = MOVER_F_HELLO };
	uint8_t hdr[MOVER_HDR_BYTES], *p = NULL;
	struct iovec iov[2];
	const char *why;
	int fd, ret, rerr;

	fd = xfer_connect(x);
	if (fd < 0) {
		snprintf(c->errmsg, sizeof(c->errmsg), "cannot connect: %s%s", strerror(-fd),
			 fd == -ECONNREFUSED ? " (is the receiver running?)" : "");
		return fd;
	}
	net_sock_timeouts(fd, x->io_timeout_ms, x->io_timeout_ms);
	memcpy(h.token, x->o->token, MOVER_TOKEN_BYTES);
	h.image_bytes = x->image_bytes;
	h.unit_bytes = x->unit_bytes;
	h.flags = (x->o->verify ? MOVER_HELLO_VERIFY : 0) | (x->o->grow ? MOVER_HELLO_GROW : 0);
	if (x->session) {
		/* The session's ranges come per round (ROUND). */
		h.units_total = DIV_ROUND_UP(x->image_bytes, x->unit_bytes);
		h.flags |= MOVER_HELLO_SESSION;
	} else {
		h.units_total = x->plan.nr_units;
		h.ranges_digest = x->plan.digest;
		h.flags |= x->plan.ranges ? MOVER_HELLO_RANGES : 0;
		h.nr_ranges = x->plan.ranges ? (uint32_t)x->nr_ranges : 0;
	}
	h.zero_mode = x->o->zero_mode;
	h.conn_index = (uint32_t)c->index;
	h.conns = (uint32_t)x->nconns;
	snprintf(h.transfer_id, sizeof(h.transfer_id), "%s", x->id);
	snprintf(h.path, sizeof(h.path), "%s", x->o->dest_path);
	p = malloc(MOVER_PAYLOAD_MAX);
	ret = -ENOMEM;
	if (!p)
		goto err;
	f.len = (uint32_t)mover_hello_encode(&h, p, MOVER_PAYLOAD_MAX);
	explicit_bzero(h.token, sizeof(h.token));
	mover_frame_encode(&f, hdr);
	iov[0] = (struct iovec){ hdr, sizeof(hdr) };
	iov[1] = (struct iovec){ p, f.len };
	ret = mover_sock_sendv(fd, iov, 2);
	explicit_bzero(p, f.len);
	/* A range copy tells the receiver its ranges: nothing is written,
	 * and nothing verified, outside them. */
	if (!ret)
		ret = mover_ranges_exchange(x, fd, h.nr_ranges ? x->nr_ranges : 0, hdr, p, &f, &why);
	if (ret) {
		snprintf(c->errmsg, sizeof(c->errmsg), "handshake: %s",
			 ret == -EPIPE ? "connection closed by the receiver" : strerror(-ret));
		goto err;
	}
	if (f.type == MOVER_F_ERROR) {
		char msg[MOVER_ERR_MAX];

		mover_error_decode(p, f.len, &rerr, msg, sizeof(msg));
		snprintf(c->errmsg, sizeof(c->errmsg), "%s", msg);
		ret = -rerr;
		/* Refusals are final; a checksum error cannot happen here. */
		if (mover_retryable(ret))
			ret = -EPROTO;
		goto err;
	}
	ret = f.type == MOVER_F_WELCOME ?
		      mover_welcome_decode(p, f.len, DIV_ROUND_UP(x->image_bytes, x->unit_bytes),
					   &w, &why) :
		      -EPROTO;
	if (ret) {
		snprintf(c->errmsg, sizeof(c->errmsg), "handshake: bad welcome from the receiver");
		goto err;
	}
	if (first) {
		x->resumed = w.flags & MOVER_WELCOME_RESUMED;
		x->created = w.flags & MOVER_WELCOME_CREATED;
		x->peer_round_known = w.flags & MOVER_WELCOME_ROUND;
		x->peer_round = w.round;
		x->peer_round_digest = w.round_digest;
	}
	if (x->session) {
		/* A session's bitmap is its round's: ROUND_OK brings it. */
		free(p);
		p = NULL;
		if (x->in_round) {
			bool rfirst = x->round_first;

			x->round_first = false;
			ret = mover_round_send(x, c, fd, rfirst);
			if (ret)
				goto err;
		}
	} else {
		xfer_apply_bitmap(x, &w, first, c->index);
	}
	free(p);
	pthread_mutex_lock(&x->lock);
	c->fd = fd;
	c->inlen = 0;
	pthread_mutex_unlock(&x->lock);
	return 0;
err:
	free(p);
	close(fd);
	return ret;
}

/*
 * A session's round on connection fd (idle: nothing from the receiver is
 * pending on it): ROUND and its ranges, then ROUND_OK and its bitmap.  The
 * round's first ROUND skips what the receiver has (a round it holds from
 * before); a later one (a reconnection) sends again what it lost.
 */
int mover_round_send(struct mover_xfer *x, struct mover_sconn *c, int fd, bool first)
{
	struct mover_round rd = { .nr_ranges = (uint32_t)x->nr_ranges,
				  .units_total = x->plan.nr_units };
	struct mover_frame f = { .type = MOVER_F_ROUND, .offset = x->round, .arg = x->plan.digest };
	uint8_t hdr[MOVER_HDR_BYTES], *p;
	struct mover_welcome w;
	struct iovec iov[2];
	const char *why = "bad round reply";
	int ret, rerr;

	p = malloc(MOVER_PAYLOAD_MAX);
	if (!p) {
		snprintf(c->errmsg, sizeof(c->errmsg), "out of memory");
		return -ENOMEM;
	}
	f.len = (uint32_t)mover_round_encode(&rd, p, MOVER_PAYLOAD_MAX);
	mover_frame_encode(&f, hdr);
	iov[0] = (struct iovec){ hdr, sizeof(hdr) };
	iov[1] = (struct iovec){ p, f.len };
	ret = mover_sock_sendv(fd, iov, 2);
	if (!ret)
		ret = mover_ranges_exchange(x, fd, x->nr_ranges, hdr, p, &f, &why);
	if (ret) {
		snprintf(c->errmsg, sizeof(c->errmsg), "round %u: %s", x->round,
			 ret == -EPIPE ? "connection closed by the receiver" : strerror(-ret));
		goto out;
	}
	if (f.type == MOVER_F_ERROR) {
		char msg[MOVER_ERR_MAX];

		mover_error_decode(p, f.len, &rerr, msg, sizeof(msg));
		snprintf(c->errmsg, sizeof(c->errmsg), "%s", msg);
		ret = mover_retryable(-rerr) ? -EPROTO : -rerr;
		goto out;
	}
	ret = f.type == MOVER_F_ROUND_OK && f.offset == x->round ?
		      mover_welcome_decode(p, f.len, DIV_ROUND_UP(x->image_bytes, x->unit_bytes),
					   &w, &why) :
		      -EPROTO;
	if (ret) {
		snprintf(c->errmsg, sizeof(c->errmsg), "round %u: %s", x->round, why);
		goto out;
	}
	xfer_apply_bitmap(x, &w, first, c->index);
out:
	free(p);
	return ret;
}

void mover_sconn_close(struct mover_xfer *x, struct mover_sconn *c)
{
	int fd;

	pthread_mutex_lock(&x->lock);
	fd = c->fd;
	c->fd = -1;
	pthread_mutex_unlock(&x->lock);
	if (fd >= 0)
		close(fd);
}

/* Next unit to send (plan index), or -1 when there is none. */
static ssize_t xfer_next_unit(struct mover_xfer *x)
{
	ssize_t i = -1;

	pthread_mutex_lock(&x->lock);
	if (x->nr_requeue) {
		i = (ssize_t)x->requeue[--x->nr_requeue];
	} else {
		while (x->next < x->plan.nr_units && x->state[x->order[x->next]] != UNIT_TODO)
			x->next++;
		if (x->next < x->plan.nr_units)
			i = (ssize_t)x->order[x->next++];
	}
	if (i >= 0)
		x->state[i] = UNIT_INFLIGHT;
	pthread_mutex_unlock(&x->lock);
	return i;
}

bool mover_xfer_take_retry(struct mover_xfer *x)
{
	bool ok;

	pthread_mutex_lock(&x->lock);
	ok = (int)x->retries < x->max_retries;
	if (ok)
		x->retries++;
	pthread_mutex_unlock(&x->lock);
	return ok;
}

void mover_xfer_backoff(struct mover_xfer *x, unsigned int attempt)
{
	uint64_t ms = MIN(100ULL << MIN(attempt, 5u), 2000ULL), end = now_ms() + ms;

	while (now_ms() < end && !mover_stopped(x)) {
		struct timespec ts = { 0, 50 * 1000000L };

		nanosleep(&ts, NULL);
	}
}

void *mover_sconn_main(void *arg)
{
	struct mover_sconn *c = arg;
	struct mover_xfer *x = c->x;
	unsigned int attempt = 0;
	sigset_t pipe;
	ssize_t u;
	int ret = 0;

	/* sendfile(2) has no MSG_NOSIGNAL: keep SIGPIPE from the process. */
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);

	for (;;) {
		if (mover_stopped(x))
			break;
		if (c->fd < 0) {
			ret = mover_handshake(x, c, false);
			if (ret)
				goto failed;
		}
		while ((u = xfer_next_unit(x)) >= 0) {
			ret = mover_unit_send(c, (size_t)u);
			if (ret) {
				pthread_mutex_lock(&x->lock);
				x->state[u] = UNIT_TODO;
				x->requeue[x->nr_requeue++] = (size_t)u;
				pthread_mutex_unlock(&x->lock);
				goto failed;
			}
			attempt = 0;
		}
		ret = mover_sconn_fin(c);
		if (!ret)
			break;
failed:
		if (mover_stopped(x))
			break;
		mover_sconn_close(x, c);
		if (ret == -EBADMSG)
			c->no_zerocopy = true; /* read and send our own copy from now on */
		if (!mover_retryable(ret) || !mover_xfer_take_retry(x)) {
			mover_fail(x, ret, "%s", c->errmsg);
			break;
		}
		log_warn("%s: %s; reconnecting (retry %u)", x->label, c->errmsg, x->retries);
		mover_xfer_backoff(x, attempt++);
	}
	return NULL;
}

/*
 * Without a unit size: 32 MiB, halved for a small image until it has 16
 * units (1 MiB at least) -- a 64 MiB image cut in two units kept two of
 * four connections idle.  From the image's size alone, so that a resume
 * cuts the same units.
 */
static uint64_t xfer_unit_default(uint64_t image_bytes)
{
	uint64_t u = MOVER_UNIT_DEFAULT;

	while (u > MOVER_UNIT_MIN && image_bytes < u * 16)
		u >>= 1;
	return u;
}

int mover_xfer_open_source(struct mover_xfer *x, struct mover_stats *st)
{
	const struct mover_send_opts *o = x->o;
	struct stat sb;

	if (o->source) {
		x->src_fd = open(o->source, O_RDONLY | O_CLOEXEC);
		if (x->src_fd < 0)
			return -errno;
		x->own_src = true;
	} else {
		x->src_fd = o->source_fd;
	}
	if (fstat(x->src_fd, &sb) < 0)
		return -errno;
	if (S_ISBLK(sb.st_mode)) {
		if (ioctl(x->src_fd, BLKGETSIZE64, &x->image_bytes) < 0)
			return -errno;
		st->allocated_bytes = x->image_bytes;
	} else if (S_ISREG(sb.st_mode)) {
		x->image_bytes = (uint64_t)sb.st_size;
		x->seekable = true;
		st->allocated_bytes = (uint64_t)sb.st_blocks * 512;
	} else {
		return -EINVAL;
	}
	if (!o->unit_bytes)
		x->unit_bytes = xfer_unit_default(x->image_bytes);
	return 0;
}

/*
 * The order units are handed out in: shuffled (a fixed seed: runs are
 * reproducible), so that the units in flight at any moment come from all
 * over the image.  Images are made of regions (zeros, text, compressed or
 * encrypted data); a mix keeps the compressor and the link busy together,
 * where neighbouring units would have every connection compress at once,
 * then every connection wait on the link.  Each unit is still read
 * sequentially.
 */
static void xfer_order(struct mover_xfer *x)
{
	uint64_t r = 0x2545f4914f6cdd1dULL;
	size_t i;

	for (i = 0; i < x->plan.nr_units; i++)
		x->order[i] = i;
	for (i = x->plan.nr_units; i > 1; i--) {
		size_t j, t;

		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		j = (size_t)(r % i);
		t = x->order[i - 1];
		x->order[i - 1] = x->order[j];
		x->order[j] = t;
	}
}

void mover_xfer_plan_free(struct mover_xfer *x)
{
	mover_plan_free(&x->plan);
	free(x->ranges);
	free(x->state);
	free(x->owner);
	free(x->requeue);
	free(x->order);
	x->ranges = NULL;
	x->state = NULL;
	x->owner = NULL;
	x->requeue = x->order = NULL;
	x->nr_ranges = x->nr_requeue = x->next = x->verify_next = 0;
}

/* Copy, sort and merge the caller's ranges, then cut the work units. */
int mover_xfer_plan(struct mover_xfer *x, const struct ferry_range *ranges, size_t n)
{
	struct ferry_range *r = NULL;
	int ret;

	if (ranges) {
		r = malloc(MAX(n, (size_t)1) * sizeof(*r));
		if (!r)
			return -ENOMEM;
		memcpy(r, ranges, n * sizeof(*r));
		ret = mover_ranges_normalize(r, &n, x->image_bytes);
		if (ret) {
			free(r);
			return ret;
		}
	}
	ret = mover_plan_build(&x->plan, x->image_bytes, x->unit_bytes, r, n);
	x->ranges = r; /* normalized, for the receiver */
	x->nr_ranges = n;
	if (ret)
		return ret;
	if (n > MOVER_RANGES_MAX)
		return -E2BIG;
	if (DIV_ROUND_UP(x->image_bytes, x->unit_bytes) > (uint64_t)MOVER_BITMAP_MAX * 8)
		return -EFBIG;
	x->state = calloc(x->plan.nr_units + 1, sizeof(*x->state));
	x->requeue = calloc(x->plan.nr_units + 1, sizeof(*x->requeue));
	x->owner = calloc(x->plan.nr_units + 1, sizeof(*x->owner));
	x->order = calloc(x->plan.nr_units + 1, sizeof(*x->order));
	if (!x->state || !x->requeue || !x->owner || !x->order)
		return -ENOMEM;
	xfer_order(x);
	return 0;
}

void mover_xfer_stats(struct mover_xfer *x, struct mover_stats *st)
{
	st->image_bytes = x->image_bytes;
	st->total_bytes = x->plan.total_bytes;
	st->read_bytes = x->read_bytes;
	st->hole_bytes = x->hole_bytes;
	st->zero_bytes = x->zero_bytes;
	st->data_bytes = x->data_bytes;
	st->raw_bytes = x->raw_bytes;
	st->zstd_in_bytes = x->zstd_in_bytes;
	st->zstd_out_bytes = x->zstd_out_bytes;
	st->wire_bytes = x->wire_bytes;
	st->skipped_bytes = x->skipped_bytes;
	st->acked_bytes = x->acked_bytes;
	st->verified_bytes = x->verified_bytes;
	st->units_total = x->plan.nr_units;
	st->units_sent = x->units_sent;
	st->units_skipped = x->units_skipped;
	st->units_acked = x->units_acked;
	st->unit_bytes = x->unit_bytes;
	st->wall_us = (now_ns() - x->start_ns) / 1000ULL;
	st->wall_ms = st->wall_us / 1000ULL;
	st->streams = (uint32_t)x->nconns;
	st->retries = x->retries;
	st->resumed = x->resumed;
	st->created = x->created;
	snprintf(st->transfer_id, sizeof(st->transfer_id), "%s", x->id);
}

int mover_xfer_check_opts(struct mover_xfer *x, struct mover_stats *st)
{
	const struct mover_send_opts *o = x->o;
	uint8_t rnd[8];

	if ((!o->source && o->source_fd < 0) || !o->dest_path || (!o->host && !o->local) ||
	    o->connections < 0 || o->connections > MOVER_CONNS_MAX ||
	    strlen(o->dest_path) > MOVER_PATH_MAX || !o->dest_path[0]) {
		snprintf(st->error, sizeof(st->error), "invalid options");
		return -EINVAL;
	}
	x->unit_bytes = o->unit_bytes ? o->unit_bytes : MOVER_UNIT_DEFAULT;
	if (x->unit_bytes < MOVER_UNIT_MIN || x->unit_bytes > MOVER_UNIT_MAX ||
	    (x->unit_bytes & (x->unit_bytes - 1))) {
		snprintf(st->error, sizeof(st->error),
			 "work unit size must be a power of two between 1M and 1G");
		return -EINVAL;
	}
	if (o->transfer_id) {
		if (!mover_id_valid(o->transfer_id)) {
			snprintf(st->error, sizeof(st->error),
				 "invalid transfer id '%s' (1-64 of A-Z a-z 0-9 . _ -)",
				 o->transfer_id);
			return -EINVAL;
		}
		snprintf(x->id, sizeof(x->id), "%s", o->transfer_id);
	} else {
		if (random_bytes(rnd, sizeof(rnd)))
			return -EIO;
		hex_encode(rnd, sizeof(rnd), x->id);
	}
	if (o->label)
		snprintf(x->label, sizeof(x->label), "%s", o->label);
	else if (o->local)
		snprintf(x->label, sizeof(x->label), "%s", o->dest_path);
	else
		snprintf(x->label, sizeof(x->label), "ferry://%s:%u/%s", o->host,
			 o->port ? o->port : MOVER_DEFAULT_PORT,
			 o->dest_path[0] == '/' ? o->dest_path + 1 : o->dest_path);
	x->io_timeout_ms = o->io_timeout_ms ? o->io_timeout_ms : 120000;
	x->max_retries = o->max_retries < 0 ? 0 : o->max_retries ? o->max_retries : 5;
	return 0;
}

int mover_send(const struct mover_send_opts *o, struct mover_stats *st)
{
	struct mover_xfer *x;
	size_t todo, i;
	int ret, n;

	memset(st, 0, sizeof(*st));
	x = calloc(1, sizeof(*x));
	if (!x) {
		snprintf(st->error, sizeof(st->error), "out of memory");
		return -ENOMEM;
	}
	x->o = o;
	x->src_fd = -1;
	x->start_ns = now_ns();
	pthread_mutex_init(&x->lock, NULL);
	pthread_mutex_init(&x->plock, NULL);
	for (i = 0; i < MOVER_CONNS_MAX; i++)
		x->conns[i] = (struct mover_sconn){ .x = x, .index = (int)i, .fd = -1 };
	ret = mover_xfer_check_opts(x, st);
	if (ret)
		goto out_free;
	mover_ratelimit_init(&x->rl, o->bwlimit_bps);

	ret = mover_xfer_open_source(x, st);
	if (ret) {
		mover_fail(x, ret, "%s: %s", o->source ? o->source : "source",
			   ret == -EINVAL ? "not a regular file or block device" : strerror(-ret));
		goto out;
	}
	ret = mover_xfer_plan(x, o->ranges, o->nr_ranges);
	if (ret) {
		mover_fail(x, ret, "%s", ret == -ERANGE ? "a range lies outside the image" :
					  ret == -EINVAL ? "an empty range" :
					  ret == -EFBIG ? "image too large for the work unit size" :
					  ret == -E2BIG ? "too many ranges (merge them)" :
							  strerror(-ret));
		goto out;
	}
	n = o->connections ? o->connections : mover_default_conns();
	x->nconns = (int)MIN((size_t)n, MAX(x->plan.nr_units, (size_t)1));

	/* The first connection learns what the receiver has. */
	for (unsigned int attempt = 0;; attempt++) {
		ret = mover_handshake(x, &x->conns[0], true);
		if (!ret || !mover_retryable(ret) || !mover_xfer_take_retry(x))
			break;
		log_warn("%s: %s; retrying", x->label, x->conns[0].errmsg);
		mover_xfer_backoff(x, attempt);
	}
	if (ret) {
		mover_fail(x, ret, "%s", x->conns[0].errmsg);
		goto out;
	}
	for (todo = 0, i = 0; i < x->plan.nr_units; i++)
		todo += x->state[i] == UNIT_TODO;
	x->nconns = (int)MIN((size_t)x->nconns, MAX(todo, (size_t)1));

	for (i = 0; i < (size_t)x->nconns; i++) {
		ret = mover_sconn_init(&x->conns[i]);
		if (!ret)
			ret = -pthread_create(&x->conns[i].thr, NULL, mover_sconn_main, &x->conns[i]);
		if (ret) {
			mover_fail(x, ret, "cannot start a connection thread: %s", strerror(-ret));
			break;
		}
		x->conns[i].started = true;
	}
	for (i = 0; i < (size_t)x->nconns; i++)
		if (x->conns[i].started)
			pthread_join(x->conns[i].thr, NULL);
	if (!x->err && o->verify)
		mover_verify_all(x);
	if (!x->err)
		mover_commit(x);
out:
	mover_progress_report(x, true);
	for (i = 0; i < MOVER_CONNS_MAX; i++) {
		mover_sconn_close(x, &x->conns[i]);
		mover_sconn_fini(&x->conns[i]);
	}
	mover_xfer_stats(x, st);
	ret = x->err;
	if (ret)
		snprintf(st->error, sizeof(st->error), "%s", x->errmsg);
	mover_ratelimit_fini(&x->rl);
	if (x->own_src)
		close(x->src_fd);
	mover_xfer_plan_free(x);
out_free:
	pthread_mutex_destroy(&x->lock);
	pthread_mutex_destroy(&x->plock);
	free(x);
	return ret;
}
