// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * xfer.c - ferryd's use of the disk mover.
 *
 * Receiving: one embedded mover server on mover_listen; a transfer is
 * accepted only if its token was handed out by xfer_register() (on a
 * source's authenticated xfer_open request) for exactly that transfer id
 * and destination path.  Tokens are random per transfer and forgotten
 * when the migration moves past copying.
 *
 * Sending: mover_send() with the migration's ranges, copy progress fed
 * into the migration's metrics (and so into `ferry show` and the pinned
 * map).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/copy/copy.h"
#include "mover/mover.h"

struct xfer_entry {
	char mig_id[FERRY_ID_LEN];
	char xfer_id[MOVER_ID_MAX + 1];
	char path[PATH_MAX];
	uint64_t size;
	bool is_block;
	uint8_t token[MOVER_TOKEN_BYTES];
};

static pthread_mutex_t xfer_lock = PTHREAD_MUTEX_INITIALIZER;
static struct xfer_entry *xfers;
static int nxfers;
static struct mover_server *xfer_srv;

static void xfer_journal_dir(const char *mig_id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/xfer/%s", ferryd->conf.state_dir, mig_id);
}

static int xfer_authorize(void *ctx, const struct mover_auth_req *req, struct mover_dest *dest)
{
	int i, ret = -EACCES;

	pthread_mutex_lock(&xfer_lock);
	for (i = 0; i < nxfers; i++) {
		struct xfer_entry *x = &xfers[i];

		if (ct_memcmp(x->token, req->token, MOVER_TOKEN_BYTES))
			continue;
		if (strcmp(x->xfer_id, req->transfer_id) || strcmp(x->path, req->path)) {
			snprintf(dest->reason, sizeof(dest->reason),
				 "token is for another transfer");
			break;
		}
		if (req->image_bytes > x->size) {
			snprintf(dest->reason, sizeof(dest->reason),
				 "declared size %llu exceeds the %llu bytes prepared",
				 (unsigned long long)req->image_bytes,
				 (unsigned long long)x->size);
			ret = -EFBIG;
			break;
		}
		snprintf(dest->path, sizeof(dest->path), "%s", x->path);
		dest->fd = -1;
		dest->dir_fd = -1;
		dest->may_create = false; /* prep created it; never anything else */
		xfer_journal_dir(x->mig_id, dest->journal_dir, sizeof(dest->journal_dir));
		ret = mkdir_p(dest->journal_dir, 0700);
		break;
	}
	pthread_mutex_unlock(&xfer_lock);
	if (ret == -EACCES && !dest->reason[0])
		snprintf(dest->reason, sizeof(dest->reason), "unknown or expired transfer token");
	if (ret)
		log_warn("mover: refused transfer %s from %s: %s", req->transfer_id, req->peer,
			 dest->reason);
	return ret;
}

static void xfer_done(void *ctx, const struct mover_result *res)
{
	if (res->status)
		log_warn("mover: transfer %s from %s into %s: %s%s", res->transfer_id, res->peer,
			 res->path, res->error, res->resumable ? " (resumable)" : "");
	else
		log_debug(LOG_SUB_MOVER, "mover: transfer %s into %s complete", res->transfer_id,
			  res->path);
}

int xfer_server_start(void)
{
	static const struct mover_server_ops ops = {
		.authorize = xfer_authorize,
		.done = xfer_done,
	};
	struct mover_server_conf sc = { .listen_fd = -1 };
	char addr[300];

	net_addr_str(&ferryd->conf.mover_listen, addr, sizeof(addr));
	sc.listen_addr = addr;
	xfer_srv = mover_server_new(&sc, &ops, NULL);
	if (!xfer_srv) {
		if (errno != EADDRINUSE)
			log_err("mover receiver on %s: %s", addr, strerror(errno));
		else
			log_warn("mover receiver on %s: address in use; retrying", addr);
		return -errno;
	}
	return 0;
}

void xfer_server_stop(void)
{
	mover_server_free(xfer_srv);
	xfer_srv = NULL;
}

int xfer_register(const char *mig_id, const char *xfer_id, const char *path, uint64_t size,
		  bool is_block, uint8_t token[32])
{
	struct xfer_entry *n, *x = NULL;
	int i, ret;

	if (strlen(xfer_id) > MOVER_ID_MAX)
		return -ENAMETOOLONG;
	ret = random_bytes(token, MOVER_TOKEN_BYTES);
	if (ret)
		return ret;
	pthread_mutex_lock(&xfer_lock);
	/* Asked again (a retry, a new round): a fresh token replaces the old. */
	for (i = 0; i < nxfers; i++)
		if (!strcmp(xfers[i].mig_id, mig_id) && !strcmp(xfers[i].path, path))
			x = &xfers[i];
	if (!x) {
		n = realloc(xfers, sizeof(*n) * (size_t)(nxfers + 1));
		if (!n) {
			pthread_mutex_unlock(&xfer_lock);
			return -ENOMEM;
		}
		xfers = n;
		x = &xfers[nxfers++];
	}
	memset(x, 0, sizeof(*x));
	snprintf(x->mig_id, sizeof(x->mig_id), "%s", mig_id);
	snprintf(x->xfer_id, sizeof(x->xfer_id), "%s", xfer_id);
	snprintf(x->path, sizeof(x->path), "%s", path);
	x->size = size;
	x->is_block = is_block;
	memcpy(x->token, token, MOVER_TOKEN_BYTES);
	pthread_mutex_unlock(&xfer_lock);
	return 0;
}

void xfer_unregister_mig(const char *mig_id)
{
	char dir[PATH_MAX];
	int i;

	pthread_mutex_lock(&xfer_lock);
	for (i = 0; i < nxfers;) {
		if (!strcmp(xfers[i].mig_id, mig_id)) {
			explicit_bzero(xfers[i].token, sizeof(xfers[i].token));
			xfers[i] = xfers[--nxfers];
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&xfer_lock);
	/* Resume journals of this migration's transfers: no longer wanted. */
	xfer_journal_dir(mig_id, dir, sizeof(dir));
	inst_dir_remove(dir);
}

struct xfer_ctx {
	struct migration *m;
	uint64_t base_done;  /* m's counters when this transfer started */
	uint64_t base_wire;
	uint64_t last_pub_ms;
};

static void xfer_progress(const struct mover_progress *p, void *arg)
{
	struct xfer_ctx *c = arg;
	struct migration *m = c->m;

	mig_lock(m);
	m->m.disk_processed_bytes = c->base_done + p->done_bytes;
	m->m.wire_bytes = c->base_wire + p->wire_bytes;
	m->m.disk_remaining_bytes = p->total_bytes - MIN(p->done_bytes, p->total_bytes);
	mig_unlock(m);
	if (p->final || now_ms() - c->last_pub_ms >= 500) {
		c->last_pub_ms = now_ms();
		metrics_publish(m);
	}
}

/*
 * The options of a transfer into @dest_path through @token at the
 * destination's mover port: @label must outlive them.
 */
static int xfer_opts(struct mover_send_opts *o, struct migration *m, const char *src,
		     const char *dest_path, const char *xfer_id, const char *dst_host,
		     uint16_t port, const uint8_t token[32], char *label, size_t labellen,
		     char *err, size_t errlen)
{
	const struct peer_conf *peer = conf_peer(&ferryd->conf, dst_host);
	bool self = !strcmp(dst_host, ferryd->conf.host);

	if (!peer && !self) {
		snprintf(err, errlen, "unknown host '%s'", dst_host);
		return -ENOENT;
	}
	memset(o, 0, sizeof(*o));
	o->source_fd = -1;
	snprintf(label, labellen, "ferry://%s/%s", dst_host, xfer_id);
	o->source = src;
	o->label = label;
	/* To ourselves (same-host resize): our own receiver. */
	o->host = self ? ferryd->conf.mover_listen.host : peer->addr.host;
	o->port = port;
	o->transfer_id = xfer_id;
	memcpy(o->token, token, MOVER_TOKEN_BYTES);
	o->connections = ferryd->conf.mover_connections;
	mover_compress_parse(ferryd->conf.mover_compress, &o->compress, &o->compress_level);
	o->bwlimit_bps = ferryd->conf.mover_bwlimit_bps;
	o->progress = xfer_progress;
	o->cancel = &m->stop; /* an abort or a shutdown stops the copy at once */
	o->dest_path = dest_path;
	/*
	 * Zero runs must reach the destination (it may hold other data): files
	 * get holes punched; a new LV may hold an old volume's bytes, and
	 * BLKZEROOUT clears them far faster than written zero blocks.
	 */
	o->zero_mode = strncmp(dest_path, "/dev/", 5) ? MOVER_ZERO_AUTO : MOVER_ZERO_ZEROOUT;
	/*
	 * A qcow2 file keeps growing while the VM runs: its copy may grow too,
	 * up to the bound the destination registered for the transfer.
	 */
	o->grow = o->zero_mode == MOVER_ZERO_AUTO;
	return 0;
}

static void xfer_ctx_start(struct xfer_ctx *c, struct migration *m)
{
	c->m = m;
	c->last_pub_ms = 0;
	mig_lock(m);
	c->base_done = m->m.disk_processed_bytes;
	c->base_wire = m->m.wire_bytes;
	mig_unlock(m);
}

/* A transfer (or a round) ended: its figures into the migration's metrics. */
static void xfer_ctx_end(struct xfer_ctx *c, int ret, const struct mover_stats *st)
{
	struct migration *m = c->m;

	mig_lock(m);
	m->m.disk_processed_bytes = c->base_done + (ret ? 0 : st->total_bytes);
	m->m.wire_bytes = c->base_wire + st->wire_bytes;
	m->m.raw_bytes += st->data_bytes;
	m->m.disk_remaining_bytes = 0;
	mig_unlock(m);
	metrics_publish(m);
}

int xfer_send(struct migration *m, const char *src, const char *dest_path, const char *xfer_id,
	      const char *dst_host, uint16_t port, const uint8_t token[32],
	      const struct ferry_range *ranges, long nranges, char *err, size_t errlen)
{
	struct mover_send_opts o;
	struct mover_stats st;
	struct xfer_ctx ctx;
	char label[PATH_MAX + 80];
	int ret;

	if (nranges == 0)
		return 0;
	ret = xfer_opts(&o, m, src, dest_path, xfer_id, dst_host, port, token, label,
			sizeof(label), err, errlen);
	if (ret)
		return ret;
	o.ranges = nranges > 0 ? ranges : NULL;
	o.nr_ranges = nranges > 0 ? (size_t)nranges : 0;
	o.progress_ctx = &ctx;
	xfer_ctx_start(&ctx, m);
	ret = mover_send(&o, &st);
	xfer_ctx_end(&ctx, ret, &st);
	if (ret)
		snprintf(err, errlen, "%s: %s", label, st.error[0] ? st.error : strerror(-ret));
	return ret;
}

/* ---- sessions: one set-up, many rounds ------------------------------ */

struct xfer_session {
	struct mover_send_opts o;       /* outlives the mover's session */
	struct mover_send_session *ss;
	struct xfer_ctx ctx;
	char label[PATH_MAX + 80];
	char src[PATH_MAX];
	char dest_path[PATH_MAX];
	char xfer_id[MOVER_ID_MAX + 1];
	char host[FERRY_NAME_MAX];
	uint64_t image_bytes;           /* fixed at open */
};

struct xfer_session *xfer_session_open(struct migration *m, const char *src,
				       const char *dest_path, const char *xfer_id,
				       const char *dst_host, uint16_t port, const uint8_t token[32],
				       char *err, size_t errlen)
{
	struct xfer_session *xs = calloc(1, sizeof(*xs));
	struct mover_stats st;
	int ret;

	if (!xs) {
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	snprintf(xs->src, sizeof(xs->src), "%s", src);
	snprintf(xs->dest_path, sizeof(xs->dest_path), "%s", dest_path);
	snprintf(xs->xfer_id, sizeof(xs->xfer_id), "%s", xfer_id);
	snprintf(xs->host, sizeof(xs->host), "%s", dst_host);
	ret = xfer_opts(&xs->o, m, xs->src, xs->dest_path, xs->xfer_id, xs->host, port, token,
			xs->label, sizeof(xs->label), err, errlen);
	if (ret)
		goto err;
	xs->o.progress_ctx = &xs->ctx;
	xs->ctx.m = m;
	memset(&st, 0, sizeof(st));
	xs->ss = mover_send_open(&xs->o, &st);
	if (!xs->ss) {
		ret = errno ? -errno : -EIO;
		snprintf(err, errlen, "%s: %s", xs->label, st.error[0] ? st.error : strerror(-ret));
		goto err;
	}
	xs->image_bytes = st.image_bytes;
	return xs;
err:
	free(xs);
	errno = -ret;
	return NULL;
}

uint64_t xfer_session_image_bytes(const struct xfer_session *xs)
{
	return xs->image_bytes;
}

int xfer_session_round(struct xfer_session *xs, const struct ferry_range *ranges, long nranges,
		       char *err, size_t errlen)
{
	struct mover_stats st;
	int ret;

	if (nranges == 0)
		return 0;
	memset(&st, 0, sizeof(st));
	xfer_ctx_start(&xs->ctx, xs->ctx.m);
	ret = mover_send_round(xs->ss, nranges > 0 ? ranges : NULL,
			       nranges > 0 ? (size_t)nranges : 0, &st);
	xfer_ctx_end(&xs->ctx, ret, &st);
	if (ret)
		snprintf(err, errlen, "%s: %s", xs->label, st.error[0] ? st.error : strerror(-ret));
	return ret;
}

int xfer_session_commit(struct xfer_session *xs, char *err, size_t errlen)
{
	struct mover_stats st;
	int ret;

	memset(&st, 0, sizeof(st));
	ret = mover_send_commit(xs->ss, &st);
	if (ret)
		snprintf(err, errlen, "%s: commit: %s", xs->label,
			 st.error[0] ? st.error : strerror(-ret));
	return ret;
}

void xfer_session_close(struct xfer_session *xs)
{
	if (!xs)
		return;
	mover_send_close(xs->ss);
	free(xs);
}
