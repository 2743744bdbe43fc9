// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * aio.c - the source reader of a sender thread.
 *
 * Reads come back in order with MOVER_READ_DEPTH of them in flight, so the
 * disk works while the thread checksums, compresses and sends.  They go
 * through libaio on an O_DIRECT descriptor (a migration should not push the
 * hypervisor's page cache out with a VM's disk, and the kernel DMAs straight
 * into our buffers), except where that does not help: a work unit whose data
 * is mostly in the page cache already (cachestat(2)) is read buffered, and
 * so is everything on a file system that refuses O_DIRECT.
 */
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/fs.h>

#include "common.h"
#include "mover/mover.h"

#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif

struct mover_cachestat_range {
	uint64_t off;
	uint64_t len;
};

struct mover_cachestat {
	uint64_t nr_cache;
	uint64_t nr_dirty;
	uint64_t nr_writeback;
	uint64_t nr_evicted;
	uint64_t nr_recently_evicted;
};

/* Per slot: the aligned read made for a request. */
struct slot_state {
	struct iocb cb;
	uint64_t aoff;
	long res;
	bool busy, done;
};

struct reader_priv {
	io_context_t ctx;
	bool ctx_ok; /* set up at the first direct read: not at all for a copy
		      * read from the page cache */
	struct slot_state slot[MOVER_READ_DEPTH];
};

/*
 * io_destroy(2) waits for an RCU grace period: tens of milliseconds, which
 * a small copy would spend waiting for nothing at its end (strace: two
 * 40 ms io_destroy calls in a 1 MiB copy).  Nothing is in flight any more,
 * so a detached thread does it; at process exit the kernel does it
 * without waiting.
 */
static void *aio_destroy_main(void *arg)
{
	io_destroy((io_context_t)arg);
	return NULL;
}

static void aio_ctx_release(io_context_t ctx)
{
	pthread_attr_t a;
	pthread_t t;
	int ret;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 64 << 10);
	ret = pthread_create(&t, &a, aio_destroy_main, ctx);
	pthread_attr_destroy(&a);
	if (ret)
		io_destroy(ctx);
}

static int reader_probe_direct(struct mover_reader *r)
{
	struct stat st;
	ssize_t n;

	if (fstat(r->direct_fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		int ss = 0;

		if (ioctl(r->direct_fd, BLKSSZGET, &ss) == 0 && ss > 0)
			r->align = (uint32_t)MAX(ss, 512);
	}
	/* Some file systems accept O_DIRECT at open and refuse the read. */
	n = pread(r->direct_fd, r->buf[0], r->align, 0);
	if (n < 0)
		return -errno;
	return 0;
}

int mover_reader_init(struct mover_reader *r, int fd, const char *path)
{
	struct reader_priv *p;
	char proc[64];
	int i, ret;

	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->direct_fd = -1;
	r->align = 4096;
	r->cachestat_ok = true;
	r->buf_cap = MOVER_IO_BYTES + 2 * 4096;
	for (i = 0; i < MOVER_READ_DEPTH; i++) {
		if (posix_memalign((void **)&r->buf[i], 4096, r->buf_cap)) {
			ret = -ENOMEM;
			goto err;
		}
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		ret = -ENOMEM;
		goto err;
	}
	r->aio = p;
	if (!path) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		path = proc;
	}
	r->direct_fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (r->direct_fd >= 0 && reader_probe_direct(r) < 0) {
		log_debug(LOG_SUB_MOVER, "%s: O_DIRECT reads not possible, reading buffered",
			  path);
		close(r->direct_fd);
		r->direct_fd = -1;
	}
	return 0;
err:
	mover_reader_fini(r);
	return ret;
}

void mover_reader_fini(struct mover_reader *r)
{
	struct reader_priv *p = r->aio;
	int i;

	if (p) {
		mover_reader_cancel(r);
		if (p->ctx_ok)
			aio_ctx_release(p->ctx);
		free(p);
	}
	if (r->direct_fd >= 0)
		close(r->direct_fd);
	for (i = 0; i < MOVER_READ_DEPTH; i++)
		free(r->buf[i]);
	memset(r, 0, sizeof(*r));
	r->fd = r->direct_fd = -1;
}

static void __reader_choose(struct mover_reader *r, uint64_t off, uint64_t len)
{
	struct mover_cachestat_range cr = { off, len };
	struct mover_cachestat cs;

	r->direct = r->direct_fd >= 0;
	if (!r->direct || !r->cachestat_ok || !len)
		return;
	if (syscall(__NR_cachestat, r->fd, &cr, &cs, 0) < 0) {
		if (errno == ENOSYS || errno == EOPNOTSUPP)
			r->cachestat_ok = false;
		return;
	}
	/* Mostly cached already: a memory copy beats going to the disk. */
	if ((cs.nr_cache + cs.nr_dirty) * 4096 >= len / 2)
		r->direct = false;
}

/* The aio context, the first time a direct read is wanted. */
static void reader_want_aio(struct mover_reader *r)
{
	struct reader_priv *p = r->aio;

	if (!r->direct || p->ctx_ok)
		return;
	if (io_setup(MOVER_READ_DEPTH, &p->ctx)) {
		log_debug(LOG_SUB_MOVER, "io_setup: %s: reading buffered", strerror(errno));
		close(r->direct_fd);
		r->direct_fd = -1;
		r->direct = false;
		return;
	}
	p->ctx_ok = true;
}

void mover_reader_choose(struct mover_reader *r, uint64_t off, uint64_t len)
{
	__reader_choose(r, off, len);
	reader_want_aio(r);
}

static int reader_submit(struct mover_reader *r, size_t k)
{
	struct reader_priv *p = r->aio;
	struct slot_state *s = &p->slot[k % MOVER_READ_DEPTH];
	const struct mover_rreq *q = &r->reqs[k];
	struct iocb *cbs[1] = { &s->cb };
	uint64_t aend;
	int ret;

	s->aoff = ROUND_DOWN(q->off, r->align);
	aend = ROUND_UP(q->off + q->len, r->align);
	io_prep_pread(&s->cb, r->direct_fd, r->buf[k % MOVER_READ_DEPTH], aend - s->aoff,
		      (long long)s->aoff);
	s->busy = true;
	s->done = false;
	ret = io_submit(p->ctx, 1, cbs);
	if (ret != 1) {
		s->busy = false;
		return ret < 0 ? ret : -EIO;
	}
	return 0;
}

int mover_reader_start(struct mover_reader *r, const struct mover_rreq *reqs, size_t nr)
{
	int ret = 0;

	mover_reader_cancel(r);
	r->reqs = reqs;
	r->nr = nr;
	r->next_submit = r->next_done = 0;
	if (!r->direct)
		return 0;
	while (r->next_submit < nr && r->next_submit < MOVER_READ_DEPTH && !ret)
		ret = reader_submit(r, r->next_submit++);
	return ret;
}

static int reader_wait(struct mover_reader *r, struct slot_state *want)
{
	struct reader_priv *p = r->aio;
	struct io_event ev[MOVER_READ_DEPTH];
	int i, n;

	while (!want->done) {
		n = io_getevents(p->ctx, 1, MOVER_READ_DEPTH, ev, NULL);
		if (n == -EINTR)
			continue;
		if (n < 0)
			return n;
		for (i = 0; i < n; i++) {
			struct slot_state *s = (struct slot_state *)(void *)ev[i].obj;

			s->res = (long)ev[i].res;
			s->done = true;
			s->busy = false;
		}
	}
	return 0;
}

int mover_reader_next(struct mover_reader *r, const uint8_t **data)
{
	struct reader_priv *p = r->aio;
	size_t k = r->next_done;
	const struct mover_rreq *q;
	struct slot_state *s;
	uint8_t *buf;
	int ret;

	if (k >= r->nr)
		return -ENODATA;
	q = &r->reqs[k];
	buf = r->buf[k % MOVER_READ_DEPTH];
	if (!r->direct) {
		ret = pread_full(r->fd, buf, q->len, (off_t)q->off);
		if (ret)
			return ret == -ENODATA ? -EIO : ret;
		r->buffered_bytes += q->len;
		*data = buf;
		r->next_done++;
		return 0;
	}
	/* The buffer returned last time is free again: reuse it. */
	if (k > 0 && r->next_submit < r->nr) {
		ret = reader_submit(r, r->next_submit++);
		if (ret)
			return ret;
	}
	s = &p->slot[k % MOVER_READ_DEPTH];
	ret = reader_wait(r, s);
	if (ret)
		return ret;
	if (s->res < 0)
		return (int)s->res;
	if ((uint64_t)s->res < q->off + q->len - s->aoff)
		return -EIO; /* the source shrank under us */
	r->direct_bytes += q->len;
	*data = buf + (q->off - s->aoff);
	r->next_done++;
	return 0;
}

void mover_reader_cancel(struct mover_reader *r)
{
	struct reader_priv *p = r->aio;
	int i;

	if (!p || r->direct_fd < 0)
		return;
	for (i = 0; i < MOVER_READ_DEPTH; i++)
		if (p->slot[i].busy)
			reader_wait(r, &p->slot[i]);
	r->nr = r->next_submit = r->next_done = 0;
}

/* ---- the receiver's writes ---- */

struct writer_priv {
	io_context_t ctx;
	bool ctx_ok;	  /* set up at the second direct write */
	bool ctx_failed;  /* io_setup refused: synchronous writes */
	unsigned int nr_sync; /* direct writes done without it */
	struct iocb cb[MOVER_WRITE_DEPTH];
};

int mover_writer_init(struct mover_writer *w)
{
	struct writer_priv *p;

	memset(w, 0, sizeof(*w));
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	w->aio = p;
	return 0;
}

static int writer_reap(struct mover_writer *w, unsigned int want)
{
	struct writer_priv *p = w->aio;
	struct io_event ev[MOVER_WRITE_DEPTH];
	int i, n;

	while (w->slot[want].busy) {
		n = io_getevents(p->ctx, 1, MOVER_WRITE_DEPTH, ev, NULL);
		if (n == -EINTR)
			continue;
		if (n < 0)
			return n;
		for (i = 0; i < n; i++) {
			struct mover_wslot *s = &w->slot[(struct iocb *)ev[i].obj - p->cb];
			long res = (long)ev[i].res;

			s->busy = false;
			w->inflight--;
			/* O_DIRECT refused after all (alignment rules of this file
			 * system or device): write it through the page cache, and
			 * stop trying O_DIRECT on this destination. */
			if (res == -EINVAL && w->dst) {
				atomic_store(&w->dst->dio_off, true);
				res = mover_dst_write(w->dst, s->buf, s->len, s->off) ? -EIO :
											 (long)s->len;
			}
			if ((res < 0 || (size_t)res != s->len) && !w->err) {
				w->err = res < 0 ? (int)res : -EIO;
				w->err_off = s->off;
				w->err_len = s->len;
			}
		}
	}
	return 0;
}

int mover_writer_buf(struct mover_writer *w, size_t len, uint8_t **buf)
{
	struct mover_wslot *s = &w->slot[w->next];
	size_t cap = ROUND_UP(MAX(len, (size_t)MOVER_IO_BYTES), 4096);
	int ret;

	ret = writer_reap(w, w->next);
	if (ret)
		return ret;
	if (w->err)
		return w->err;
	if (s->cap < cap) {
		free(s->buf);
		s->buf = NULL;
		s->cap = 0;
		if (posix_memalign((void **)&s->buf, 4096, cap))
			return -ENOMEM;
		s->cap = cap;
	}
	*buf = s->buf;
	return 0;
}

int mover_writer_submit(struct mover_writer *w, struct mover_dst *dst, size_t len, uint64_t off)
{
	struct writer_priv *p = w->aio;
	unsigned int k = w->next;
	struct mover_wslot *s = &w->slot[k];
	struct iocb *cbs[1] = { &p->cb[k] };

	/* Aligned: O_DIRECT, asynchronously; else through the page cache. */
	if (dst->dfd < 0 || atomic_load(&dst->dio_off) || off % dst->dio_align ||
	    len % dst->dio_align)
		return mover_dst_write(dst, s->buf, len, off);
	w->dst = dst;
	/* A connection that writes one chunk (a small copy, a short round)
	 * needs no aio context, whose io_destroy costs a grace period. */
	if (!p->ctx_ok && !p->ctx_failed && p->nr_sync &&
	    io_setup(MOVER_WRITE_DEPTH, &p->ctx) == 0)
		p->ctx_ok = true;
	else if (!p->ctx_ok && p->nr_sync)
		p->ctx_failed = true;
	if (!p->ctx_ok) {
		int ret;

		p->nr_sync++;
		ret = pwrite_full(dst->dfd, s->buf, len, (off_t)off);
		if (ret != -EINVAL)
			return ret;
		atomic_store(&dst->dio_off, true); /* refused: the page cache */
		return mover_dst_write(dst, s->buf, len, off);
	}
	io_prep_pwrite(&p->cb[k], dst->dfd, s->buf, len, (long long)off);
	s->off = off;
	s->len = len;
	if (io_submit(p->ctx, 1, cbs) != 1)
		return mover_dst_write(dst, s->buf, len, off);
	s->busy = true;
	w->inflight++;
	w->next = (k + 1) % MOVER_WRITE_DEPTH;
	return 0;
}

int mover_writer_drain(struct mover_writer *w)
{
	unsigned int i;
	int ret = 0;

	for (i = 0; i < MOVER_WRITE_DEPTH && !ret; i++)
		ret = writer_reap(w, i);
	return ret ? ret : w->err;
}

void mover_writer_fini(struct mover_writer *w)
{
	struct writer_priv *p = w->aio;
	unsigned int i;

	if (!p)
		return;
	mover_writer_drain(w);
	if (p->ctx_ok)
		aio_ctx_release(p->ctx);
	free(p);
	for (i = 0; i < MOVER_WRITE_DEPTH; i++)
		free(w->slot[i].buf);
	memset(w, 0, sizeof(*w));
}
