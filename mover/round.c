// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * round.c - the sender's persistent session: one transfer whose ranges
 * come in rounds (pre-copy rounds, then the final delta), over connections
 * opened once.
 *
 * mover_send_open() connects and says HELLO once: the receiver authorizes
 * the transfer, opens the destination and creates its journal.  Each
 * mover_send_round() sends ROUND (the round's ranges) on connection 0 and
 * gets the round's bitmap (ROUND_OK), lets every connection's thread
 * (send.c) take units until none is left and say FIN (its units are
 * written), then sends ROUND_END: the receiver's one group commit of the
 * round (data, then journal), answered by ROUND_DONE.  A connection that
 * drops is reconnected by its thread, which sends ROUND again and resyncs
 * from the bitmap, as a one-shot transfer does from WELCOME.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "mover/mover.h"

struct mover_send_session {
	struct mover_send_opts o; /* the caller's, copied (not what it points to) */
	struct mover_xfer *x;
	bool rl_init;
	bool committed;
};

static void session_free(struct mover_send_session *ss)
{
	struct mover_xfer *x = ss->x;
	int i;

	if (x) {
		for (i = 0; i < MOVER_CONNS_MAX; i++) {
			mover_sconn_close(x, &x->conns[i]);
			mover_sconn_fini(&x->conns[i]);
		}
		if (ss->rl_init)
			mover_ratelimit_fini(&x->rl);
		if (x->own_src && x->src_fd >= 0)
			close(x->src_fd);
		mover_xfer_plan_free(x);
		pthread_mutex_destroy(&x->lock);
		pthread_mutex_destroy(&x->plock);
		free(x);
	}
	free(ss);
}

enum conn0_step {
	CONN0_OPEN,	 /* HELLO: the session's first */
	CONN0_ROUND,	 /* the round's ROUND: skip what the receiver has */
	CONN0_RECONNECT, /* in a round: HELLO, ROUND, resync from the bitmap */
};

/* Connection 0's step, reconnecting within the retry budget. */
static int session_conn0(struct mover_xfer *x, enum conn0_step step)
{
	bool round = step == CONN0_ROUND;

	struct mover_sconn *c = &x->conns[0];
	int ret;

	for (unsigned int attempt = 0;; attempt++) {
		if (round && c->fd >= 0) {
			ret = mover_round_send(x, c, c->fd, true);
		} else {
			x->round_first = round;
			ret = mover_handshake(x, c, step == CONN0_OPEN);
		}
		if (!ret || !mover_retryable(ret) || !mover_xfer_take_retry(x))
			break;
		mover_sconn_close(x, c);
		log_warn("%s: %s; retrying", x->label, c->errmsg);
		mover_xfer_backoff(x, attempt);
	}
	if (ret) {
		mover_sconn_close(x, c);
		mover_fail(x, ret, "%s", c->errmsg);
	}
	return ret;
}

struct mover_send_session *mover_send_open(const struct mover_send_opts *o, struct mover_stats *st)
{
	struct mover_send_session *ss;
	struct mover_xfer *x;
	int ret, i;

	memset(st, 0, sizeof(*st));
	ss = calloc(1, sizeof(*ss));
	x = calloc(1, sizeof(*x));
	if (!ss || !x) {
		free(ss);
		free(x);
		snprintf(st->error, sizeof(st->error), "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	ss->o = *o;
	ss->x = x;
	x->o = &ss->o;
	x->session = true;
	x->src_fd = -1;
	x->start_ns = now_ns();
	pthread_mutex_init(&x->lock, NULL);
	pthread_mutex_init(&x->plock, NULL);
	for (i = 0; i < MOVER_CONNS_MAX; i++)
		x->conns[i] = (struct mover_sconn){ .x = x, .index = i, .fd = -1 };
	ret = mover_xfer_check_opts(x, st);
	if (!ret && o->ranges) {
		snprintf(st->error, sizeof(st->error), "a session takes its ranges per round");
		ret = -EINVAL;
	}
	if (ret)
		goto err;
	mover_ratelimit_init(&x->rl, o->bwlimit_bps);
	ss->rl_init = true;
	ret = mover_xfer_open_source(x, st);
	if (ret) {
		mover_fail(x, ret, "%s: %s", o->source ? o->source : "source",
			   ret == -EINVAL ? "not a regular file or block device" : strerror(-ret));
		goto err_x;
	}
	if (DIV_ROUND_UP(x->image_bytes, x->unit_bytes) > (uint64_t)MOVER_BITMAP_MAX * 8) {
		ret = -EFBIG;
		mover_fail(x, ret, "image too large for the work unit size");
		goto err_x;
	}
	x->nconns = o->connections ? o->connections : mover_default_conns();
	/* One HELLO: the receiver authorizes, opens, creates its journal. */
	ret = session_conn0(x, CONN0_OPEN);
	if (ret)
		goto err_x;
	mover_xfer_stats(x, st);
	return ss;
err_x:
	mover_xfer_stats(x, st);
	snprintf(st->error, sizeof(st->error), "%s", x->errmsg);
err:
	session_free(ss);
	errno = -ret;
	return NULL;
}

/* A round's figures start from zero. */
static void round_reset(struct mover_xfer *x)
{
	atomic_store(&x->read_bytes, 0);
	atomic_store(&x->hole_bytes, 0);
	atomic_store(&x->zero_bytes, 0);
	atomic_store(&x->data_bytes, 0);
	atomic_store(&x->raw_bytes, 0);
	atomic_store(&x->zstd_in_bytes, 0);
	atomic_store(&x->zstd_out_bytes, 0);
	atomic_store(&x->wire_bytes, 0);
	atomic_store(&x->acked_bytes, 0);
	atomic_store(&x->verified_bytes, 0);
	atomic_store(&x->units_sent, 0);
	atomic_store(&x->units_acked, 0);
	atomic_store(&x->done_bytes, 0);
	atomic_store(&x->last_progress_ns, 0);
	x->skipped_bytes = x->units_skipped = 0;
	x->retries = 0;
	x->start_ns = now_ns();
}

/* Every connection that has work takes units until none is left, then FIN. */
static int round_run(struct mover_xfer *x)
{
	size_t todo = 0, i, k;
	int ret;

	for (i = 0; i < x->plan.nr_units; i++)
		todo += x->state[i] == UNIT_TODO;
	todo += x->nr_requeue;
	k = MIN((size_t)x->nconns, MAX(todo, (size_t)1));
	for (i = 0; i < k; i++) {
		struct mover_sconn *c = &x->conns[i];

		ret = c->ready ? 0 : mover_sconn_init(c);
		if (!ret)
			ret = -pthread_create(&c->thr, NULL, mover_sconn_main, c);
		if (ret) {
			mover_fail(x, ret, "cannot start a connection thread: %s", strerror(-ret));
			break;
		}
		c->started = true;
	}
	for (i = 0; i < k; i++) {
		if (x->conns[i].started)
			pthread_join(x->conns[i].thr, NULL);
		x->conns[i].started = false;
	}
	return x->err;
}

static bool round_sent(struct mover_xfer *x)
{
	bool all = true;

	pthread_mutex_lock(&x->lock);
	for (size_t i = 0; i < x->plan.nr_units; i++)
		all &= x->state[i] >= UNIT_SENT;
	pthread_mutex_unlock(&x->lock);
	return all;
}

int mover_send_round(struct mover_send_session *ss, const struct ferry_range *ranges, size_t n,
		     struct mover_stats *st)
{
	struct mover_xfer *x = ss->x;
	struct ferry_range whole = { 0, x->image_bytes };
	struct mover_sconn *c0 = &x->conns[0];
	uint32_t digest32;
	int ret;

	memset(st, 0, sizeof(*st));
	if (ss->committed || x->err) {
		snprintf(st->error, sizeof(st->error), "%s",
			 x->err ? x->errmsg : "the session is committed");
		return x->err ? x->err : -EINVAL;
	}
	round_reset(x);
	mover_xfer_plan_free(x);
	if (!ranges) {
		ranges = &whole;
		n = x->image_bytes ? 1 : 0;
	}
	/* Always as ranges: the receiver holds the round's frames to them. */
	ret = mover_xfer_plan(x, ranges, n);
	if (ret) {
		mover_fail(x, ret, "%s", ret == -ERANGE ? "a range lies outside the image" :
					  ret == -EINVAL ? "an empty range" :
					  ret == -E2BIG ? "too many ranges (merge them)" :
							  strerror(-ret));
		goto out;
	}
	/* The first round of a session opened again goes on with the
	 * receiver's last round if it is the same one (same ranges). */
	digest32 = (uint32_t)x->plan.digest;
	if (x->round_started)
		x->round++;
	else if (x->peer_round_known)
		x->round = x->peer_round + (x->peer_round_digest != digest32);
	else
		x->round = 0;
	if (x->round > MOVER_ROUND_MAX) {
		mover_fail(x, -E2BIG, "too many rounds");
		goto out;
	}
	x->round_started = x->in_round = true;
	if (session_conn0(x, CONN0_ROUND))
		goto out;
	for (unsigned int attempt = 0;; attempt++) {
		if (round_run(x))
			goto out;
		/* A reconnection may have found units lost: send those first. */
		if (c0->fd < 0 && session_conn0(x, CONN0_RECONNECT))
			goto out;
		if (!round_sent(x))
			continue;
		ret = mover_round_end(x);
		if (!ret)
			break;
		mover_sconn_close(x, c0);
		if (!mover_retryable(ret) || !mover_xfer_take_retry(x)) {
			mover_fail(x, ret, "round %u: %s", x->round, c0->errmsg);
			goto out;
		}
		log_warn("%s: round %u: %s; reconnecting", x->label, x->round, c0->errmsg);
		mover_xfer_backoff(x, attempt);
	}
	/* Durable on the receiver: every unit of the round. */
	pthread_mutex_lock(&x->lock);
	for (size_t i = 0; i < x->plan.nr_units; i++) {
		if (x->state[i] != UNIT_SENT)
			continue;
		x->state[i] = UNIT_ACKED;
		x->acked_bytes += x->plan.units[i].bytes;
		x->units_acked++;
	}
	pthread_mutex_unlock(&x->lock);
	if (x->o->verify)
		mover_verify_all(x);
out:
	mover_progress_report(x, true);
	mover_xfer_stats(x, st);
	if (x->err)
		snprintf(st->error, sizeof(st->error), "%s", x->errmsg);
	return x->err;
}

int mover_send_commit(struct mover_send_session *ss, struct mover_stats *st)
{
	struct mover_xfer *x = ss->x;

	memset(st, 0, sizeof(*st));
	if (!x->err && !x->round_started)
		mover_fail(x, -EINVAL, "commit of a session before its first round");
	if (!x->err && !ss->committed) {
		round_reset(x);
		mover_commit(x);
		ss->committed = !x->err;
	}
	mover_xfer_stats(x, st);
	if (x->err)
		snprintf(st->error, sizeof(st->error), "%s", x->errmsg);
	return x->err;
}

void mover_send_close(struct mover_send_session *ss)
{
	if (ss)
		session_free(ss);
}
