// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * recv.c - the receiver: an embeddable server with its own threads.
 *
 * An accept thread hands each connection to a thread of its own.  The first
 * frame must be a HELLO, whole within hello_timeout_ms; until it is
 * authorized a connection counts against the unauthenticated limits (the
 * oldest is pushed out when they are reached), never against the
 * authenticated ones.  The embedding program's authorize callback decides
 * where it goes.  Connections with the same transfer id join one session
 * (destination + journal).  Every frame is checked by wire.c before it is
 * acted upon; a data frame is decompressed into a bounded buffer and its
 * checksum verified before it is written.  Units are journaled in group
 * commits and acknowledged once durable.  A bad frame ends that connection
 * with an ERROR frame naming the extent; the session lives on for the
 * sender's other connections and for a retry.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>


#include "common.h"
#include "net/net.h"
#include "mover/mover.h"

/* ---- frames out ---- */

int mover_rconn_send(struct mover_rconn *c, uint8_t type, uint64_t off, uint64_t arg,
		     const void *payload, uint32_t len)
{
	struct mover_frame f = { .type = type, .len = len, .offset = off, .arg = arg };
	uint8_t hdr[MOVER_HDR_BYTES];
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)payload, len } };

	mover_frame_encode(&f, hdr);
	return mover_sock_sendv(c->fd, iov, len ? 2 : 1);
}

static void rconn_send_error(struct mover_rconn *c, int err, const char *msg)
{
	uint8_t buf[1100];
	size_t n = mover_error_encode(err, msg, buf, sizeof(buf));

	mover_rconn_send(c, MOVER_F_ERROR, 0, 0, buf, (uint32_t)n);
}

/* After an ERROR: let the sender read it instead of a reset. */
static void conn_linger_close(struct mover_rconn *c)
{
	char sink[4096];
	uint64_t end = now_ms() + 2000, total = 0;

	shutdown(c->fd, SHUT_WR);
	net_sock_timeouts(c->fd, 500, 500);
	while (now_ms() < end && total < (64u << 20)) {
		ssize_t n = recv(c->fd, sink, sizeof(sink), 0);

		if (n <= 0)
			break;
		total += (uint64_t)n;
	}
}

/* Every read of a frame ends by its deadline, however slowly bytes come. */
int mover_rconn_read(struct mover_rconn *c, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = recv(c->fd, p, len, MSG_DONTWAIT);
		struct pollfd pfd = { c->fd, POLLIN, 0 };
		int64_t left;

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0)
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		left = (int64_t)c->deadline_ms - (int64_t)now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)MIN(left, (int64_t)INT32_MAX)) < 0 && errno != EINTR)
			return -errno;
	}
	return 0;
}

static int conn_read_header(struct mover_rconn *c, struct mover_frame *f, const char **why)
{
	uint8_t hdr[MOVER_HDR_BYTES];
	int ret;

	*why = NULL;
	ret = mover_rconn_read(c, hdr, sizeof(hdr));
	if (!ret)
		ret = mover_frame_decode(hdr, f, why);
	return ret;
}

static int conn_read_payload(struct mover_rconn *c, const struct mover_frame *f, uint8_t *buf,
			     const char **why)
{
	int ret = f->len ? mover_rconn_read(c, buf, f->len) : 0;

	if (ret == -EPIPE) {
		*why = "truncated frame (the connection ended inside it)";
		ret = -EPROTO;
	}
	return ret;
}

/* Read one frame: header checked, payload (bounded by the check) read. */
int mover_rconn_read_frame(struct mover_rconn *c, struct mover_frame *f, const char **why)
{
	int ret = conn_read_header(c, f, why);

	if (!ret)
		ret = conn_read_payload(c, f, c->payload, why);
	return ret;
}

int mover_rconn_drain(struct mover_rconn *c)
{
	char ext[64];
	int ret = mover_writer_drain(&c->w);

	if (ret && c->s) {
		snprintf(c->err, sizeof(c->err), "extent %s: write: %s",
			 mover_extent_str(c->w.err_off, c->w.err_len, ext, sizeof(ext)),
			 strerror(-ret));
		mover_session_fail(c->s, c->err);
	}
	return ret;
}

/* DATA: into a writer slot (raw: read there; zstd: decompressed there),
 * checked there, then written. */
static int conn_data(struct mover_rconn *c, const struct mover_frame *f, const char **why)
{
	struct mover_rsession *s = c->s;
	bool raw = !(f->flags & MOVER_DATA_ZSTD);
	const uint8_t *data;
	uint8_t *buf;
	char ext[64];
	int ret;

	ret = mover_writer_buf(&c->w, f->raw_len, &buf);
	if (ret) {
		/* The payload was not read: the stream cannot go on. */
		if (c->w.err)
			mover_rconn_drain(c);
		else
			snprintf(c->err, sizeof(c->err), "extent %s: no buffer for it: %s",
				 mover_extent_str(f->offset, f->raw_len, ext, sizeof(ext)),
				 strerror(-ret));
		return ret;
	}
	ret = conn_read_payload(c, f, raw ? buf : c->payload, why);
	if (!ret)
		ret = mover_data_decode(f, raw ? buf : c->payload, c->dctx, buf, &data, why);
	if (ret)
		return ret;
	ret = mover_writer_submit(&c->w, &s->dst, f->raw_len, f->offset);
	if (ret) {
		snprintf(c->err, sizeof(c->err), "extent %s: write: %s",
			 mover_extent_str(f->offset, f->raw_len, ext, sizeof(ext)), strerror(-ret));
		mover_session_fail(s, c->err);
		return ret;
	}
	atomic_fetch_add(&s->written_bytes, f->raw_len);
	return 0;
}

static int conn_frame(struct mover_rconn *c, const struct mover_frame *f, const char **why)
{
	struct mover_rsession *s = c->s;
	char ext[64];
	int ret;

	/* Checked before its payload is even read. */
	ret = mover_rx_check(&c->rx, f, why);
	if (ret)
		return ret;
	if ((f->type == MOVER_F_DATA || f->type == MOVER_F_ZERO) && !c->unit_open) {
		/* Counted before looking: a COMMIT elsewhere sees it, or we
		 * see the COMMIT. */
		atomic_fetch_add(&s->units_open, 1);
		c->unit_open = true;
		if (atomic_load(&s->committed)) {
			*why = "the transfer is complete";
			return -EALREADY;
		}
		/* Checked against this round's ranges, and still in it. */
		if (s->session && c->rx_gen != atomic_load(&s->round_gen)) {
			*why = "extent of a round that is over";
			return -EPROTO;
		}
	}
	/* Anything but data and zeros waits for the writes in flight. */
	if (f->type != MOVER_F_DATA && f->type != MOVER_F_ZERO) {
		ret = mover_rconn_drain(c);
		if (ret)
			return ret;
	}
	switch (f->type) {
	case MOVER_F_DATA:
		return conn_data(c, f, why);
	case MOVER_F_ZERO:
		ret = mover_dst_zero(&s->dst, f->offset, f->arg);
		if (ret) {
			snprintf(c->err, sizeof(c->err), "extent %s: zeroing: %s",
				 mover_extent_str(f->offset, f->arg, ext, sizeof(ext)),
				 strerror(-ret));
			mover_session_fail(s, c->err);
			return ret;
		}
		atomic_fetch_add(&s->zeroed_bytes, f->arg);
		return 0;
	case MOVER_F_UNIT_END:
		if (f->offset >= s->j->nbits) {
			*why = "unit index outside the image";
			return -ERANGE;
		}
		ret = mover_session_unit_end(c, f->offset);
		if (c->unit_open) {
			atomic_fetch_sub(&s->units_open, 1);
			c->unit_open = false;
		}
		return ret;
	case MOVER_F_FIN:
		/* A session's FIN only says its units are written: the round
		 * end makes them durable, all at once. */
		ret = s->session ? 0 : mover_session_commit(c, true);
		if (!ret)
			ret = mover_session_acks(c);
		if (!ret)
			ret = mover_rconn_send(c, MOVER_F_FIN_OK, 0, 0, NULL, 0);
		return ret;
	case MOVER_F_ROUND:
		ret = conn_read_payload(c, f, c->payload, why);
		return ret ? ret : mover_session_round(c, f);
	case MOVER_F_ROUND_END:
		return mover_session_round_end(c, f);
	case MOVER_F_VERIFY:
		return mover_session_verify(c, f->offset, f->arg);
	case MOVER_F_COMMIT:
		return mover_session_finish(c);
	default:
		*why = "unexpected frame";
		return -EPROTO;
	}
}

static void *conn_main(void *arg)
{
	struct mover_rconn *c = arg;
	struct mover_frame f = { 0 };
	const char *why = NULL;
	char ext[64];
	int ret;

	ret = mover_session_hello(c);
	while (!ret && !atomic_load(&c->srv->stopping)) {
		c->deadline_ms = now_ms() + (uint64_t)c->srv->conf.io_timeout_ms;
		ret = conn_read_header(c, &f, &why);
		/* A failed or committed transfer takes no frame, from any of
		 * its connections. */
		if (atomic_load(&c->s->failed)) {
			snprintf(c->err, sizeof(c->err), "%s", c->s->error);
			ret = -EIO;
			break;
		}
		if (!ret && atomic_load(&c->s->committed)) {
			snprintf(c->err, sizeof(c->err), "transfer %s is complete: frame refused",
				 c->s->id);
			ret = -EALREADY;
			break;
		}
		if (!ret) {
			mover_session_rx_sync(c);
			ret = conn_frame(c, &f, &why);
		}
		if (ret == 1) {
			ret = 0; /* committed: this connection is done */
			break;
		}
		if (!ret)
			ret = mover_session_acks(c);
	}
	if (ret == -EPIPE && (!c->s || !c->rx.in_unit)) {
		/* The sender closed between frames: normal after COMMIT. */
		log_debug(LOG_SUB_MOVER, "%s: connection closed", c->peer);
	} else if (ret && ret != -ENOTCONN) {
		if (why && (f.type == MOVER_F_DATA || f.type == MOVER_F_ZERO))
			snprintf(c->err, sizeof(c->err), "extent %s: %s",
				 mover_extent_str(f.offset, f.type == MOVER_F_DATA ? f.raw_len : f.arg,
						  ext, sizeof(ext)),
				 why);
		else if (why)
			snprintf(c->err, sizeof(c->err), "%s", why);
		else if (ret == -EPIPE || ret == -ECONNRESET)
			snprintf(c->err, sizeof(c->err), "connection lost in the middle of a unit");
		else if (!c->err[0])
			snprintf(c->err, sizeof(c->err), "%s",
				 ret == -ETIMEDOUT ? "timed out waiting for the sender" : strerror(-ret));
		/* The peer gets the message; our log also names the file. */
		log_msg(c->srv->conf.quiet ? LOG_LVL_DEBUG : LOG_LVL_ERR, LOG_SUB_MOVER,
			"%s: %s (from %s)", c->s && c->s->ready ? c->s->dst.display : "receiver",
			c->err, c->peer);
		if (ret != -EPIPE && ret != -ECONNRESET) {
			rconn_send_error(c, ret, c->err);
			conn_linger_close(c);
		}
	}
	/* Nothing of this connection may still be in flight when the session
	 * commits and closes. */
	mover_writer_drain(&c->w);
	if (c->s && c->unit_open)
		atomic_fetch_sub(&c->s->units_open, 1);
	c->unit_open = false;
	if (c->s)
		mover_session_release(c->srv, c->s, c->err[0] ? c->err : NULL);
	pthread_mutex_lock(&c->srv->lock);
	c->s = NULL;
	pthread_mutex_unlock(&c->srv->lock);
	/* The fd is closed by conn_free(), after the join: no reuse races. */
	atomic_store(&c->finished, true);
	return NULL;
}

static void conn_free(struct mover_rconn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	mover_writer_fini(&c->w);
	free(c->payload);
	free(c->out);
	free(c->acks);
	mover_dctx_free(c->dctx);
	free(c);
}

/* Join the threads of connections that ended. */
static void server_reap(struct mover_server *srv, bool all)
{
	struct mover_rconn **pp = &srv->conns, *c;

	pthread_mutex_lock(&srv->lock);
	while ((c = *pp)) {
		if (all || atomic_load(&c->finished)) {
			*pp = c->next;
			srv->nr_conns--;
			pthread_mutex_unlock(&srv->lock);
			pthread_join(c->thr, NULL);
			conn_free(c);
			pthread_mutex_lock(&srv->lock);
			pp = &srv->conns;
			continue;
		}
		pp = &c->next;
	}
	pthread_mutex_unlock(&srv->lock);
}

/* The peer's address without its port: what the per-address limit counts. */
static void conn_addr(struct mover_rconn *c)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) < 0 || ss.ss_family == AF_UNIX ||
	    getnameinfo((struct sockaddr *)&ss, sl, c->addr, sizeof(c->addr), NULL, 0,
			NI_NUMERICHOST))
		snprintf(c->addr, sizeof(c->addr), "local");
}

/*
 * Room for one more connection before its HELLO (srv->lock held): past the
 * per-address limit the oldest unauthenticated connection of that address
 * goes, past the global one the oldest of all.  A real sender's HELLO takes
 * a round trip; a peer that trickles or says nothing is the oldest soon.
 */
static void server_make_room(struct mover_server *srv, const char *addr)
{
	struct mover_rconn *c, *old_addr = NULL, *old_all = NULL, *victim = NULL;
	int n_addr = 0, n_all = 0;

	for (c = srv->conns; c; c = c->next) {
		if (c->authed || c->evicted || atomic_load(&c->finished))
			continue;
		n_all++;
		if (!old_all || c->accepted_ms <= old_all->accepted_ms)
			old_all = c;
		if (!strcmp(c->addr, addr)) {
			n_addr++;
			if (!old_addr || c->accepted_ms <= old_addr->accepted_ms)
				old_addr = c;
		}
	}
	if (n_addr >= srv->conf.max_unauth_per_addr)
		victim = old_addr;
	else if (n_all >= srv->conf.max_unauth)
		victim = old_all;
	if (victim) {
		victim->evicted = true;
		shutdown(victim->fd, SHUT_RDWR);
		log_debug(LOG_SUB_MOVER, "%s: no hello yet after %" PRIu64 " ms: pushed out",
			  victim->peer, now_ms() - victim->accepted_ms);
	}
}

int mover_server_add_conn(struct mover_server *srv, int fd)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl = sizeof(ss);
	struct mover_rconn *c;
	int ret, one = 1;

	server_reap(srv, false);
	if (atomic_load(&srv->stopping)) {
		close(fd);
		return -EBUSY;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->srv = srv;
	c->fd = fd;
	fd = -1;
	c->accepted_ms = now_ms();
	c->deadline_ms = c->accepted_ms + (uint64_t)srv->conf.hello_timeout_ms;
	c->payload = malloc(MOVER_PAYLOAD_MAX);
	c->out = malloc(MOVER_CHUNK_MAX);
	c->dctx = mover_dctx_new();
	if (!c->payload || !c->out || !c->dctx) {
		ret = -ENOMEM;
		goto err;
	}
	ret = mover_writer_init(&c->w);
	if (ret)
		goto err;
	if (getsockname(c->fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_UNIX)
		snprintf(c->peer, sizeof(c->peer), "local");
	else
		net_peer_str(c->fd, c->peer, sizeof(c->peer));
	conn_addr(c);
	/* Small replies (UNIT_ACK, then FIN_OK) must not wait for the peer's
	 * delayed ACK (Nagle): that was 40 ms of every transfer. */
	if (ss.ss_family != AF_UNIX)
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Sends may block (a full socket buffer); reads keep their deadlines. */
	net_sock_timeouts(c->fd, srv->conf.io_timeout_ms, srv->conf.io_timeout_ms);
	pthread_mutex_lock(&srv->lock);
	server_make_room(srv, c->addr);
	ret = -pthread_create(&c->thr, NULL, conn_main, c);
	if (!ret) {
		c->next = srv->conns;
		srv->conns = c;
		srv->nr_conns++;
	}
	pthread_mutex_unlock(&srv->lock);
	if (ret)
		goto err;
	return 0;
err:
	conn_free(c);
	return ret;
}

static void *server_accept_main(void *arg)
{
	struct mover_server *srv = arg;
	struct pollfd pfd[2] = { { srv->lfd, POLLIN, 0 }, { srv->wake[0], POLLIN, 0 } };

	while (!atomic_load(&srv->stopping)) {
		int fd, n = poll(pfd, 2, 1000);

		server_reap(srv, false);
		if (n <= 0 || !(pfd[0].revents & POLLIN))
			continue;
		fd = net_accept(srv->lfd, NULL, NULL);
		if (fd < 0) {
			if (fd != -EAGAIN)
				log_warn("accept: %s", strerror(-fd));
			continue;
		}
		mover_server_add_conn(srv, fd);
	}
	return NULL;
}

struct mover_server *mover_server_new(const struct mover_server_conf *conf,
				      const struct mover_server_ops *ops, void *ctx)
{
	struct mover_server *srv;
	struct net_addr a;
	int ret;

	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return NULL;
	srv->conf = *conf;
	srv->ops = *ops;
	srv->ctx = ctx;
	srv->lfd = conf->listen_fd;
	srv->wake[0] = srv->wake[1] = -1;
	if (!srv->conf.max_conns)
		srv->conf.max_conns = 64;
	if (!srv->conf.max_unauth)
		srv->conf.max_unauth = 32;
	if (!srv->conf.max_unauth_per_addr)
		srv->conf.max_unauth_per_addr = MOVER_CONNS_MAX;
	if (!srv->conf.hello_timeout_ms)
		srv->conf.hello_timeout_ms = 10000;
	if (!srv->conf.io_timeout_ms)
		srv->conf.io_timeout_ms = 120000;
	if (!srv->conf.commit_ms)
		srv->conf.commit_ms = 1000;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->closed, NULL);
	srv->done_keys = calloc(MOVER_DONE_IDS, sizeof(*srv->done_keys));
	if (srv->lfd < 0 && conf->listen_addr) {
		ret = net_addr_parse(conf->listen_addr, MOVER_DEFAULT_PORT, &a);
		if (!ret)
			ret = net_tcp_listen(&a, 64);
		if (ret < 0)
			goto err;
		srv->lfd = ret;
	}
	if (srv->lfd >= 0) {
		if (pipe2(srv->wake, O_CLOEXEC) < 0) {
			ret = -errno;
			goto err;
		}
		ret = -pthread_create(&srv->accept_thr, NULL, server_accept_main, srv);
		if (ret)
			goto err;
		srv->accept_started = true;
	}
	return srv;
err:
	mover_server_free(srv);
	errno = -ret;
	return NULL;
}

const char *mover_server_addr(struct mover_server *srv, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[64], port[8];

	if (srv->lfd < 0 || getsockname(srv->lfd, (struct sockaddr *)&ss, &sl) < 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV))
		snprintf(buf, len, "-");
	else if (ss.ss_family == AF_INET6)
		snprintf(buf, len, "[%s]:%s", host, port);
	else
		snprintf(buf, len, "%s:%s", host, port);
	return buf;
}

uint64_t mover_server_completed(struct mover_server *srv)
{
	return atomic_load(&srv->completed);
}

void mover_server_free(struct mover_server *srv)
{
	struct mover_rconn *c;

	if (!srv)
		return;
	atomic_store(&srv->stopping, true);
	if (srv->wake[1] >= 0 && write(srv->wake[1], "x", 1) < 0)
		log_debug(LOG_SUB_MOVER, "wake: %s", strerror(errno));
	if (srv->accept_started)
		pthread_join(srv->accept_thr, NULL);
	/* Unblock every connection thread, then join them. */
	pthread_mutex_lock(&srv->lock);
	for (c = srv->conns; c; c = c->next)
		if (!atomic_load(&c->finished) && c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&srv->lock);
	server_reap(srv, true);
	if (srv->lfd >= 0)
		close(srv->lfd);
	if (srv->wake[0] >= 0)
		close(srv->wake[0]);
	if (srv->wake[1] >= 0)
		close(srv->wake[1]);
	pthread_mutex_destroy(&srv->lock);
	pthread_cond_destroy(&srv->closed);
	free(srv->done_keys);
	free(srv);
}
