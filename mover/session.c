// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * session.c - the receiver's transfers.  Connections that present the same
 * transfer id share one session: the destination (dest.c) and the journal
 * (journal.c), opened by the first connection after the embedding
 * program's authorize callback said where the data goes.  Here too: units
 * marked done, group commits and the acknowledgements they release, the
 * verify reads and the final commit that makes a created file appear.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "common.h"
#include "mover/mover.h"

void mover_session_release(struct mover_server *srv, struct mover_rsession *s, const char *why)
{
	struct mover_result res = { 0 };
	struct mover_rsession **pp;
	bool last;
	int ret = 0;

	pthread_mutex_lock(&srv->lock);
	last = --s->refs == 0;
	if (last)
		s->closing = true; /* a new HELLO for it waits until it is gone */
	pthread_mutex_unlock(&srv->lock);
	if (!last)
		return;

	if (s->ready && !s->committed && s->j)
		ret = mover_journal_commit(s->j, s->dst.fd, 0);
	res.transfer_id = s->id;
	res.path = s->ready ? s->dst.display : s->params.path;
	res.peer = s->peer;
	res.image_bytes = s->params.image_bytes;
	res.written_bytes = s->written_bytes;
	res.zeroed_bytes = s->zeroed_bytes;
	res.units_total = s->session ? s->round_units : s->params.units_total;
	res.units_done = s->j ? mover_journal_done(s->j) : 0;
	if (s->committed) {
		res.units_done = res.units_total;
		res.error = "";
	} else {
		res.status = atomic_load(&s->failed) ? -EIO : ret ? ret : -ECONNABORTED;
		res.error = atomic_load(&s->failed) ? s->error : why ? why : "interrupted";
		res.resumable = s->j != NULL;
		if (s->ready)
			log_info("%s: transfer %s interrupted at %" PRIu64 " of %" PRIu64
				 " units (%s)%s", s->dst.display, s->id, res.units_done,
				 res.units_total, res.error,
				 res.resumable ? "; the journal keeps it resumable" : "");
	}
	if (srv->ops.done)
		srv->ops.done(srv->ctx, &res);
	mover_journal_close(s->j);
	mover_dst_close(&s->dst);

	pthread_mutex_lock(&srv->lock);
	for (pp = &srv->sessions; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	pthread_cond_broadcast(&srv->closed);
	pthread_mutex_unlock(&srv->lock);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->fail_lock);
	free(s->ranges);
	for (size_t i = 0; i < s->nr_rounds; i++)
		free(s->rounds[i]);
	free(s->rounds);
	free(s);
}

/* End the session's other connections (blocked in a read, or idle). */
/* End the session's other connections' reads; srv->lock held. */
static void session_kick_locked(struct mover_rsession *s)
{
	struct mover_rconn *c;

	for (c = s->srv->conns; c; c = c->next)
		if (c->s == s && !atomic_load(&c->finished) && !pthread_equal(c->thr, pthread_self()))
			shutdown(c->fd, SHUT_RD);
}

static void session_kick(struct mover_rsession *s)
{
	pthread_mutex_lock(&s->srv->lock);
	session_kick_locked(s);
	pthread_mutex_unlock(&s->srv->lock);
}

/* Mark the session failed with msg; true the first time. */
static bool session_mark_failed(struct mover_rsession *s, const char *msg)
{
	bool first = false;

	pthread_mutex_lock(&s->fail_lock);
	if (!atomic_load(&s->failed)) {
		snprintf(s->error, sizeof(s->error), "%s", msg);
		atomic_store(&s->failed, true);
		first = true;
	}
	pthread_mutex_unlock(&s->fail_lock);
	return first;
}

/* Where the journal goes: as authorize said, else beside the file. */
static int journal_dir_of(const struct mover_dest *d, char *out, size_t len)
{
	char tmp[PATH_MAX], proc[64];
	ssize_t n;

	if (d->journal_dir[0]) {
		snprintf(out, len, "%s", d->journal_dir);
		return 0;
	}
	if (d->path[0]) {
		snprintf(tmp, sizeof(tmp), "%s", d->path);
		snprintf(out, len, "%s", dirname(tmp));
		return 0;
	}
	if (d->dir_fd < 0)
		return -EINVAL; /* an fd alone: authorize must name a journal dir */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", d->dir_fd);
	n = readlink(proc, out, len - 1);
	if (n < 0)
		return -errno;
	out[n] = '\0';
	return 0;
}

/* The session's first failure: kept, and every connection ends. */
void mover_session_fail(struct mover_rsession *s, const char *msg)
{
	if (session_mark_failed(s, msg) && s->srv)
		session_kick(s);
}

/* Open the destination and the journal of a new session. */
static int session_init(struct mover_rsession *s, const struct mover_hello *h, struct mover_dest *d,
			char *err, size_t errlen)
{
	struct mover_journal_hdr want = { 0 }, old;
	char jdir[PATH_MAX];
	bool resume_part = false;
	uint32_t found;
	int ret;

	want.image_bytes = h->image_bytes;
	want.unit_bytes = h->unit_bytes;
	want.units_total = h->units_total;
	want.ranges_digest = h->ranges_digest;
	snprintf(want.transfer_id, sizeof(want.transfer_id), "%s", h->transfer_id);
	ret = journal_dir_of(d, jdir, sizeof(jdir));
	if (ret) {
		snprintf(err, errlen, "%s: no journal directory given", h->path);
		return ret;
	}
	/* An interrupted copy into a file it created: reopen that part file. */
	if (mover_journal_peek(jdir, h->transfer_id, &old) == 0 &&
	    old.image_bytes == want.image_bytes && old.unit_bytes == want.unit_bytes &&
	    old.units_total == want.units_total && old.ranges_digest == want.ranges_digest)
		resume_part = old.flags & MOVER_WELCOME_CREATED;
	ret = mover_dst_open(&s->dst, d, h->transfer_id, h->image_bytes, resume_part,
			     h->flags & MOVER_HELLO_GROW, err, errlen);
	if (ret)
		return ret;
	s->dst.zero_mode = (enum mover_zero)h->zero_mode;
	/*
	 * One destination, one transfer writing it at a time.  A committed or
	 * failed one writes nothing more (every frame for it is refused) even
	 * while its last connections close: the next round may begin.
	 */
	pthread_mutex_lock(&s->srv->lock);
	for (struct mover_rsession *o = s->srv->sessions; o; o = o->next)
		if (o != s && o->ready && !o->closing && !atomic_load(&o->committed) &&
		    !atomic_load(&o->failed) && o->dst.dev == s->dst.dev &&
		    o->dst.ino == s->dst.ino)
			ret = -EBUSY;
	pthread_mutex_unlock(&s->srv->lock);
	if (ret) {
		snprintf(err, errlen, "%s: another transfer is writing it", s->dst.display);
		return ret;
	}
	want.dest_dev = s->dst.dev;
	want.dest_ino = s->dst.ino;
	want.part_id = s->dst.part_id;
	want.flags = (s->dst.created ? MOVER_WELCOME_CREATED : 0) |
		     (h->flags & MOVER_HELLO_SESSION ? MOVER_JOURNAL_SESSION : 0);
	/* A journal of another file (or another copy) is replaced; a part
	 * file reopened without its journal holds stale data and is not
	 * "fresh" (dest.c): its zero runs are punched. */
	ret = mover_journal_open(&s->j, jdir, &want, &s->resumed, &found);
	if (ret) {
		snprintf(err, errlen, "%s: journal in %s: %s", s->dst.display, jdir, strerror(-ret));
		return ret;
	}
	atomic_store(&s->last_commit_ns, now_ns());
	log_info("%s: transfer %s from %s: %s%s, %" PRIu64 " of %" PRIu64 " units done",
		 s->dst.display, s->id, s->peer, s->dst.created ? "new file" : "in place",
		 s->resumed ? ", resumed" : "", mover_journal_done(s->j), h->units_total);
	return 0;
}

static bool hello_same(const struct mover_hello *a, const struct mover_hello *b)
{
	return a->image_bytes == b->image_bytes && a->unit_bytes == b->unit_bytes &&
	       a->units_total == b->units_total && a->ranges_digest == b->ranges_digest &&
	       a->flags == b->flags && !strcmp(a->path, b->path);
}

/* Committed ids, with the token they came with: not taken again. */
static uint64_t done_key(const char *id, uint64_t tok)
{
	return XXH3_64bits_withSeed(id, strlen(id), tok);
}

static bool server_done_find(struct mover_server *srv, uint64_t key)
{
	size_t i;

	for (i = 0; i < srv->nr_done_ids; i++)
		if (srv->done_keys[i] == key)
			return true;
	return false;
}

static void server_done_add(struct mover_server *srv, uint64_t key)
{
	pthread_mutex_lock(&srv->lock);
	if (srv->done_keys) {
		srv->done_keys[srv->next_done_id] = key;
		srv->next_done_id = (srv->next_done_id + 1) % MOVER_DONE_IDS;
		srv->nr_done_ids = MIN(srv->nr_done_ids + 1, (size_t)MOVER_DONE_IDS);
	}
	pthread_mutex_unlock(&srv->lock);
}

/* The HELLO was authorized: count the connection as authenticated. */
static int hello_admit(struct mover_rconn *c)
{
	struct mover_server *srv = c->srv;
	struct mover_rconn *o;
	int n = 0, ret = 0;

	pthread_mutex_lock(&srv->lock);
	for (o = srv->conns; o; o = o->next)
		n += o->authed && !atomic_load(&o->finished);
	if (n >= srv->conf.max_conns)
		ret = -EBUSY;
	else
		c->authed = true;
	pthread_mutex_unlock(&srv->lock);
	if (ret)
		snprintf(c->err, sizeof(c->err), "too many connections (%d)", srv->conf.max_conns);
	return ret;
}

/* The RANGES frames after a range HELLO or a ROUND: exactly what its
 * digest and unit count promised. */
static int read_ranges(struct mover_rconn *c, uint64_t image_bytes, uint64_t unit_bytes,
		       uint32_t nr_ranges, uint64_t digest, uint64_t units,
		       struct ferry_range **rp, size_t *np)
{
	struct ferry_range *r;
	struct mover_frame f;
	const char *why = NULL;
	size_t n = 0;
	int ret = 0;

	r = malloc(MAX((size_t)nr_ranges, (size_t)1) * sizeof(*r));
	if (!r)
		return -ENOMEM;
	while (!ret && n < nr_ranges) {
		c->deadline_ms = now_ms() + (uint64_t)c->srv->conf.io_timeout_ms;
		ret = mover_rconn_read_frame(c, &f, &why);
		if (!ret && f.type != MOVER_F_RANGES) {
			why = "expected the transfer's ranges";
			ret = -EPROTO;
		}
		if (!ret)
			ret = mover_ranges_decode(c->payload, f.len, image_bytes, r, &n,
						  nr_ranges, &why);
	}
	if (!ret && (mover_ranges_digest(r, n) != digest ||
		     mover_ranges_units(r, n, unit_bytes) != units)) {
		why = "ranges do not match what was announced";
		ret = -EPROTO;
	}
	if (ret) {
		snprintf(c->err, sizeof(c->err), "%s", why ? why : strerror(-ret));
		free(r);
		return ret;
	}
	*rp = r;
	*np = n;
	return 0;
}

/* Find or create the session for this HELLO; reply WELCOME. */
int mover_session_hello(struct mover_rconn *c)
{
	struct mover_server *srv = c->srv;
	struct mover_hello h;
	struct mover_dest d;
	struct mover_auth_req req;
	struct mover_welcome w = { 0 };
	struct mover_frame f;
	struct mover_rsession *s;
	struct ferry_range *ranges = NULL;
	size_t nr_ranges = 0;
	struct timespec until;
	const char *why;
	uint8_t *wbuf = NULL;
	uint64_t key;
	size_t wlen;
	bool creator = false;
	int ret;

	/* The whole HELLO by the deadline set when it was accepted. */
	ret = mover_rconn_read_frame(c, &f, &why);
	if (ret == -EPIPE)
		return -ENOTCONN; /* closed before saying anything: a port probe */
	if (ret == -ETIMEDOUT)
		why = "no hello in time";
	if (!ret && f.type != MOVER_F_HELLO) {
		why = "expected a hello";
		ret = -EPROTO;
	}
	if (!ret)
		ret = mover_hello_decode(c->payload, f.len, &h, &why);
	if (ret) {
		snprintf(c->err, sizeof(c->err), "%s", why ? why : strerror(-ret));
		return ret;
	}
	memset(&d, 0, sizeof(d));
	d.fd = d.dir_fd = -1;
	req = (struct mover_auth_req){ .token = h.token, .path = h.path,
				       .transfer_id = h.transfer_id,
				       .image_bytes = h.image_bytes,
				       .ranges = h.flags & MOVER_HELLO_RANGES,
				       .grow = h.flags & MOVER_HELLO_GROW,
				       .session = h.flags & MOVER_HELLO_SESSION, .peer = c->peer };
	if (req.session)
		req.ranges = true; /* rounds of ranges into the destination */
	ret = srv->ops.authorize ? srv->ops.authorize(srv->ctx, &req, &d) : -EACCES;
	key = done_key(h.transfer_id, XXH3_64bits(h.token, sizeof(h.token)));
	memset(h.token, 0, sizeof(h.token));
	if (ret) {
		ret = ret < 0 ? ret : -EACCES;
		snprintf(c->err, sizeof(c->err), "transfer %s to %s refused: %s", h.transfer_id,
			 h.path, d.reason[0] ? d.reason : strerror(-ret));
		goto out;
	}
	ret = hello_admit(c);
	if (!ret && (h.flags & MOVER_HELLO_RANGES))
		ret = read_ranges(c, h.image_bytes, h.unit_bytes, h.nr_ranges, h.ranges_digest,
				  h.units_total, &ranges, &nr_ranges);
	if (ret)
		goto out;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&srv->lock);
	for (;;) {
		for (s = srv->sessions; s; s = s->next)
			if (!strcmp(s->id, h.transfer_id))
				break;
		/*
		 * A session whose part file was removed (its sender killed, the
		 * file deleted, the copy run again before the old connections
		 * closed) writes a file no one will see: it is stale, not one to
		 * join.  Fail it and wait for it to close like any failed one.
		 */
		if (s && s->ready && !s->closing && !atomic_load(&s->failed) &&
		    !mover_dst_part_linked(&s->dst)) {
			char msg[MOVER_ERR_MAX];

			snprintf(msg, sizeof(msg), "%s: part file %s was removed: transfer %s ended",
				 s->dst.display, s->dst.part, s->id);
			if (session_mark_failed(s, msg))
				session_kick_locked(s);
			log_info("%s", msg);
		}
		/* A failed session ends its connections and closes: wait. */
		if (!s || !(s->closing || atomic_load(&s->failed)) ||
		    pthread_cond_timedwait(&srv->closed, &srv->lock, &until))
			break;
	}
	if (server_done_find(srv, key)) {
		pthread_mutex_unlock(&srv->lock);
		ret = -EALREADY;
		snprintf(c->err, sizeof(c->err),
			 "transfer %s is complete: its id is not taken again with this token",
			 h.transfer_id);
		goto out;
	}
	if (s && (s->closing || atomic_load(&s->failed))) {
		pthread_mutex_unlock(&srv->lock);
		ret = -EAGAIN;
		snprintf(c->err, sizeof(c->err), "transfer %s is still closing", h.transfer_id);
		goto out;
	}
	if (s && (!hello_same(&s->params, &h) || s->committed)) {
		pthread_mutex_unlock(&srv->lock);
		ret = -EBUSY;
		snprintf(c->err, sizeof(c->err), "transfer %s is in progress with other parameters",
			 h.transfer_id);
		goto out;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s) {
			pthread_mutex_unlock(&srv->lock);
			ret = -ENOMEM;
			goto out;
		}
		pthread_mutex_init(&s->lock, NULL);
		pthread_mutex_init(&s->fail_lock, NULL);
		s->srv = srv;
		s->done_key = key;
		snprintf(s->id, sizeof(s->id), "%s", h.transfer_id);
		snprintf(s->peer, sizeof(s->peer), "%s", c->peer);
		s->params = h;
		s->session = h.flags & MOVER_HELLO_SESSION;
		s->ranges = ranges;
		s->nr_ranges = nr_ranges;
		ranges = NULL;
		s->dst.fd = s->dst.dir_fd = s->dst.dfd = -1;
		s->next = srv->sessions;
		srv->sessions = s;
		creator = true;
	}
	s->refs++;
	c->s = s;
	/* Joiners wait here until the creator has opened everything. */
	pthread_mutex_lock(&s->lock);
	pthread_mutex_unlock(&srv->lock);
	if (creator) {
		char err[MOVER_ERR_MAX] = "";

		ret = session_init(s, &h, &d, err, sizeof(err));
		if (ret)
			mover_session_fail(s, err);
		s->ready = ret == 0;
	}
	if (atomic_load(&s->failed)) {
		pthread_mutex_unlock(&s->lock);
		ret = ret ? ret : -EIO;
		snprintf(c->err, sizeof(c->err), "%s", s->error);
		goto out;
	}
	pthread_mutex_unlock(&s->lock);

	mover_rx_init(&c->rx, h.image_bytes, h.unit_bytes);
	if (h.flags & MOVER_HELLO_RANGES) {
		c->rx.ranges = s->ranges;
		c->rx.nr_ranges = s->nr_ranges;
	}
	mover_session_rx_sync(c);
	log_debug(LOG_SUB_MOVER, "%s: transfer %s: hello from %s accepted (%s)", s->dst.display,
		  s->id, c->peer, creator ? "new" : "joined");
	w.flags = (s->dst.created ? MOVER_WELCOME_CREATED : 0) |
		  (s->resumed ? MOVER_WELCOME_RESUMED : 0) |
		  (s->dst.blockdev ? MOVER_WELCOME_BLOCKDEV : 0) |
		  (creator ? 0 : MOVER_WELCOME_JOINED);
	w.dest_bytes = s->dst.size;
	w.bitmap_bytes = (uint32_t)DIV_ROUND_UP(s->j->nbits, 8);
	wbuf = malloc(64 + w.bitmap_bytes);
	if (!wbuf) {
		ret = -ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&s->j->lock);
	w.units_done = s->j->done;
	w.bitmap = s->j->bitmap;
	if (s->session && s->j->have_round) {
		/* Where the sender's rounds go on from. */
		w.flags |= MOVER_WELCOME_ROUND;
		w.round = s->j->round;
		w.round_digest = s->j->round_digest;
	}
	wlen = mover_welcome_encode(&w, wbuf, 64 + w.bitmap_bytes);
	pthread_mutex_unlock(&s->j->lock);
	ret = mover_rconn_send(c, MOVER_F_WELCOME, 0, 0, wbuf, (uint32_t)wlen);
out:
	free(wbuf);
	free(ranges);
	if (d.fd >= 0)
		close(d.fd);
	if (d.dir_fd >= 0)
		close(d.dir_fd);
	return ret;
}

int mover_session_acks(struct mover_rconn *c)
{
	uint64_t durable;
	size_t i, kept = 0;
	int ret = 0;

	if (!c->nr_acks)
		return 0;
	durable = mover_journal_durable(c->s->j);
	for (i = 0; i < c->nr_acks; i++) {
		if (c->acks[i].seq <= durable && !ret)
			ret = mover_rconn_send(c, MOVER_F_UNIT_ACK, c->acks[i].unit, 0, NULL, 0);
		else if (c->acks[i].seq > durable)
			c->acks[kept++] = c->acks[i];
	}
	c->nr_acks = kept;
	return ret;
}

int mover_session_commit(struct mover_rconn *c, bool force)
{
	struct mover_rsession *s = c->s;
	uint64_t now = now_ns(), last = atomic_load(&s->last_commit_ns);
	uint64_t every = (uint64_t)c->srv->conf.commit_ms * 1000000ULL;
	unsigned int flags = 0;
	int ret;

	if (!force && (now - last < every ||
		       !atomic_compare_exchange_strong(&s->last_commit_ns, &last, now)))
		return 0;
	/* Every unit of a one-shot transfer is here (its FIN, its COMMIT):
	 * the data's sync is the durability point; the COMMIT that follows
	 * makes the name.  No journal is begun for it. */
	if (force && !s->session && mover_journal_done(s->j) == s->params.units_total)
		flags |= MOVER_JOURNAL_DATA_ONLY;
	ret = mover_journal_commit(s->j, s->dst.fd, flags);
	if (ret) {
		/* Its units are not done any more, and nothing is durable
		 * after it: the transfer fails (a resume sends them again). */
		snprintf(c->err, sizeof(c->err), "group commit: %s: %s",
			 s->j->err_what ? s->j->err_what : "journal", strerror(-ret));
		mover_session_fail(s, c->err);
	}
	return ret;
}

int mover_session_unit_end(struct mover_rconn *c, uint64_t unit)
{
	uint64_t seq = mover_journal_mark(c->s->j, unit);

	if (!seq)
		return -ENOMEM;
	if (c->s->session) /* a session acknowledges whole rounds */
		return mover_session_commit(c, false);
	if (c->nr_acks == c->cap_acks) {
		size_t nc = c->cap_acks ? c->cap_acks * 2 : 16;
		struct mover_rack *na = realloc(c->acks, nc * sizeof(*na));

		if (!na)
			return -ENOMEM;
		c->acks = na;
		c->cap_acks = nc;
	}
	c->acks[c->nr_acks++] = (struct mover_rack){ unit, seq };
	return mover_session_commit(c, false);
}

int mover_session_verify(struct mover_rconn *c, uint64_t off, uint64_t len)
{
	struct mover_rsession *s = c->s;
	uint64_t off0 = off, len0 = len, u, ub = s->params.unit_bytes;
	XXH3_state_t st;
	uint8_t sum[8];
	char ext[64];
	int ret = 0;

	/* Only what this transfer wrote (wire.c held the range to the
	 * transfer's ranges; a done unit has all of its part written). */
	for (u = off / ub; u <= (off + len - 1) / ub; u++) {
		if (!mover_journal_test(s->j, u)) {
			snprintf(c->err, sizeof(c->err),
				 "verify of extent %s: not written by this transfer",
				 mover_extent_str(off, len, ext, sizeof(ext)));
			return -EPERM;
		}
	}
	pthread_mutex_lock(&s->lock);
	if (!s->verify_synced) {
		/* Re-read from the disk, not from what we just wrote. */
		if (fdatasync(s->dst.fd) < 0) {
			ret = -errno;
			snprintf(c->err, sizeof(c->err), "verify: fdatasync: %s", strerror(-ret));
		} else {
			posix_fadvise(s->dst.fd, 0, 0, POSIX_FADV_DONTNEED);
			s->verify_synced = true;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (ret) {
		/* The data may not be on disk: no verify can pass now. */
		mover_session_fail(s, c->err);
		return ret;
	}
	XXH3_64bits_reset(&st);
	while (len && !ret) {
		size_t n = (size_t)MIN(len, (uint64_t)MOVER_CHUNK_MAX);

		ret = pread_full(s->dst.fd, c->out, n, (off_t)off);
		XXH3_64bits_update(&st, c->out, n);
		off += n;
		len -= n;
	}
	if (ret)
		return ret;
	put_le64(sum, len0);
	return mover_rconn_send(c, MOVER_F_VERIFY_SUM, off0, XXH3_64bits_digest(&st), sum, 8);
}

int mover_session_finish(struct mover_rconn *c)
{
	struct mover_rsession *s = c->s;
	uint64_t done, total;
	uint8_t p[32] = { 0 };
	int ret;

	ret = mover_session_commit(c, true);
	if (ret)
		return ret;
	pthread_mutex_lock(&s->lock);
	/* From here no frame is taken; a unit being written elsewhere
	 * (which counted itself before looking) stops the commit. */
	atomic_store(&s->committed, true);
	if (atomic_load(&s->units_open) > 0) {
		atomic_store(&s->committed, false);
		pthread_mutex_unlock(&s->lock);
		snprintf(c->err, sizeof(c->err),
			 "commit while a unit is being written on another connection");
		return -EBUSY;
	}
	done = mover_journal_done(s->j);
	total = s->session ? s->round_units : s->params.units_total;
	if (done != total || (s->session && !s->round_ranges)) {
		atomic_store(&s->committed, false);
		pthread_mutex_unlock(&s->lock);
		if (s->session && !s->round_ranges)
			snprintf(c->err, sizeof(c->err), "commit of a session before its round");
		else
			snprintf(c->err, sizeof(c->err),
				 "commit with %" PRIu64 " of %" PRIu64 " units received", done,
				 total);
		return -EPROTO;
	}
	ret = mover_dst_finish(&s->dst);
	if (ret) {
		pthread_mutex_unlock(&s->lock);
		snprintf(c->err, sizeof(c->err), "cannot complete: %s",
			 ret == -EEXIST ? "the file appeared during the copy" : strerror(-ret));
		mover_session_fail(s, c->err);
		return ret;
	}
	mover_journal_remove(s->j);
	pthread_mutex_unlock(&s->lock);
	server_done_add(c->srv, s->done_key);
	session_kick(s);
	atomic_fetch_add(&c->srv->completed, 1);
	log_info("%s: transfer %s complete: %" PRIu64 " bytes written, %" PRIu64 " zeroed",
		 s->dst.display, s->id, (uint64_t)s->written_bytes, (uint64_t)s->zeroed_bytes);
	put_le64(p, s->written_bytes);
	put_le64(p + 8, s->zeroed_bytes);
	put_le64(p + 16, done);
	ret = mover_rconn_send(c, MOVER_F_COMMIT_OK, 0, 0, p, sizeof(p));
	return ret ? ret : 1; /* the transfer is over: so is the connection */
}


static const struct ferry_range no_ranges[1];

void mover_session_rx_sync(struct mover_rconn *c)
{
	struct mover_rsession *s = c->s;

	if (!s || !s->session || (c->rx_set && c->rx_gen == atomic_load(&s->round_gen)))
		return;
	pthread_mutex_lock(&s->lock);
	/* Before its first round a session takes no data anywhere. */
	c->rx.ranges = s->round_ranges ? s->round_ranges : no_ranges;
	c->rx.nr_ranges = s->round_ranges ? s->round_nr : 0;
	c->rx_gen = atomic_load(&s->round_gen);
	c->rx_set = true;
	pthread_mutex_unlock(&s->lock);
}

/* Keep a round's ranges for the session's life. */
static int session_keep_round(struct mover_rsession *s, struct ferry_range *r)
{
	struct ferry_range **nr = realloc(s->rounds, (s->nr_rounds + 1) * sizeof(*nr));

	if (!nr)
		return -ENOMEM;
	s->rounds = nr;
	s->rounds[s->nr_rounds++] = r;
	return 0;
}

int mover_session_round(struct mover_rconn *c, const struct mover_frame *f)
{
	struct mover_rsession *s = c->s;
	struct mover_journal *j = s->j;
	struct mover_welcome w = { 0 };
	struct mover_round rd;
	struct ferry_range *r = NULL;
	uint32_t round = (uint32_t)f->offset, digest32 = (uint32_t)f->arg;
	const char *why = NULL;
	uint8_t *wbuf = NULL;
	size_t n = 0, wlen;
	bool live, found;
	int ret;

	if (!s->session) {
		snprintf(c->err, sizeof(c->err), "a round in a transfer that is not a session");
		return -EPROTO;
	}
	ret = mover_round_decode(c->payload, f->len, &rd, &why);
	if (ret) {
		snprintf(c->err, sizeof(c->err), "%s", why);
		return ret;
	}
	ret = read_ranges(c, s->params.image_bytes, s->params.unit_bytes, rd.nr_ranges, f->arg,
			  rd.units_total, &r, &n);
	if (ret)
		return ret;
	pthread_mutex_lock(&s->lock);
	live = s->round_ranges && j->round == round && s->round_digest == f->arg;
	found = !s->round_ranges && j->have_round && j->round == round &&
		j->round_digest == digest32;
	if (live) {
		/* Another connection of the round, or this one again. */
		w.flags = MOVER_WELCOME_JOINED | MOVER_WELCOME_RESUMED;
		free(r);
		r = NULL;
	} else if (j->have_round && round < j->round) {
		snprintf(c->err, sizeof(c->err), "round %u is behind the receiver's round %u",
			 round, j->round);
		ret = -EPROTO;
	} else if (atomic_load(&s->units_open) > 0) {
		snprintf(c->err, sizeof(c->err), "round %u while units are being written", round);
		ret = -EBUSY;
	} else {
		/* found: the round the journal holds (a receiver restarted in
		 * it) goes on from its units; else a new round starts empty.
		 * Only a created file's first round may skip zero runs: later
		 * ones write where an earlier round put data. */
		if (found)
			w.flags = MOVER_WELCOME_RESUMED;
		else if (j->have_round)
			s->dst.fresh = false;
		ret = found ? 0 : mover_journal_round(j, round, digest32);
		if (!ret)
			ret = session_keep_round(s, r);
		if (!ret) {
			s->round_ranges = r;
			s->round_nr = n;
			s->round_units = rd.units_total;
			s->round_digest = f->arg;
			r = NULL;
			atomic_fetch_add(&s->round_gen, 1);
			log_debug(LOG_SUB_MOVER, "%s: transfer %s: round %u, %zu ranges, %" PRIu64
				  " units%s", s->dst.display, s->id, round, n, rd.units_total,
				  found ? " (resumed)" : "");
		} else if (!c->err[0]) {
			snprintf(c->err, sizeof(c->err), "round %u: %s", round, strerror(-ret));
		}
	}
	pthread_mutex_unlock(&s->lock);
	free(r);
	if (ret)
		return ret;
	mover_session_rx_sync(c);
	w.bitmap_bytes = (uint32_t)DIV_ROUND_UP(j->nbits, 8);
	wbuf = malloc(64 + w.bitmap_bytes);
	if (!wbuf)
		return -ENOMEM;
	pthread_mutex_lock(&j->lock);
	w.dest_bytes = s->dst.size;
	w.units_done = j->done;
	w.bitmap = j->bitmap;
	wlen = mover_welcome_encode(&w, wbuf, 64 + w.bitmap_bytes);
	pthread_mutex_unlock(&j->lock);
	ret = mover_rconn_send(c, MOVER_F_ROUND_OK, round, 0, wbuf, (uint32_t)wlen);
	free(wbuf);
	return ret;
}

int mover_session_round_end(struct mover_rconn *c, const struct mover_frame *f)
{
	struct mover_rsession *s = c->s;
	uint64_t done;
	uint8_t p[32] = { 0 };
	int ret;

	if (!s->session || !s->round_ranges || f->offset != s->j->round) {
		snprintf(c->err, sizeof(c->err), "end of round %" PRIu64 ", not the current one",
			 f->offset);
		return -EPROTO;
	}
	if (atomic_load(&s->units_open) > 0) {
		snprintf(c->err, sizeof(c->err), "round end while units are being written");
		return -EPROTO;
	}
	/* The round's one durability point: its data, then its records. */
	ret = mover_session_commit(c, true);
	if (ret)
		return ret;
	done = mover_journal_done(s->j);
	if (done != s->round_units) {
		snprintf(c->err, sizeof(c->err),
			 "end of round %" PRIu64 " with %" PRIu64 " of %" PRIu64 " units received",
			 f->offset, done, s->round_units);
		return -EPROTO;
	}
	put_le64(p, s->written_bytes);
	put_le64(p + 8, s->zeroed_bytes);
	put_le64(p + 16, done);
	return mover_rconn_send(c, MOVER_F_ROUND_DONE, f->offset, 0, p, sizeof(p));
}
