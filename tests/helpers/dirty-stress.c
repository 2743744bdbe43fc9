// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dirty-stress - drains interleaved with concurrent writers lose nothing.
 *
 * Writer threads write random ranges of a tracked file (pwrite, pwritev,
 * write at the file position on a private fd, and O_DIRECT libaio), while
 * one thread drains in a tight loop.  Drains are numbered; a writer reads
 * the number of drains started just before it writes (s0) and just after
 * the write completed (s1).  The write's blocks must then be in a drain
 * numbered s0 .. s1 + 1: drain s1 + 1 began after the write was complete.
 *
 * Usage: dirty-stress [-t THREADS] [-s SECONDS] [-g BYTES] [-P PIN_DIR] FILE
 * Prints one JSON object; exits 0 when nothing was missed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libaio.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common.h"
#include "bpf/bpf.h"

enum method { M_PWRITE, M_PWRITEV, M_WRITE, M_AIO_DIRECT, M_COUNT };
static const char *const method_names[] = { "pwrite", "pwritev", "write", "aio_direct" };

struct rec {
	uint64_t first, last; /* blocks */
	uint64_t s0, s1;
};

struct writer {
	pthread_t th;
	int id;
	enum method m;
	struct rec *recs;
	size_t n, cap;
	int err;
};

/* Per block, the drains (by number) that returned it. */
struct seen {
	uint32_t *v;
	uint32_t n, cap;
};

static const char *path;
static uint64_t file_size, gran;
static volatile int stop;
static uint64_t drains_started; /* atomic */
static struct seen *seen;
static uint64_t nblocks;
static uint8_t *rescan_drain; /* drains that said rescan_needed */
static size_t rescan_cap;

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int rec_push(struct writer *w, uint64_t off, uint64_t len, uint64_t s0, uint64_t s1)
{
	if (w->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 4096;
		struct rec *r = realloc(w->recs, nc * sizeof(*r));

		if (!r)
			return -ENOMEM;
		w->recs = r;
		w->cap = nc;
	}
	w->recs[w->n++] = (struct rec){ off / gran, (off + len - 1) / gran, s0, s1 };
	return 0;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint64_t seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(w->id + 1);
	static char buf[256 * 1024] __attribute__((aligned(4096)));
	io_context_t ctx = 0;
	int fd;

	fd = open(path, O_WRONLY | O_CLOEXEC | (w->m == M_AIO_DIRECT ? O_DIRECT : 0));
	if (fd < 0 || (w->m == M_AIO_DIRECT && io_setup(8, &ctx))) {
		w->err = errno ? errno : EIO;
		return NULL;
	}
	while (!stop) {
		uint64_t off = rnd(&seed) % file_size, len = 1 + rnd(&seed) % (128 * 1024), s0, s1;
		ssize_t n = 0;

		if (off + len > file_size)
			len = file_size - off;
		if (w->m == M_AIO_DIRECT) {
			off &= ~4095ULL;
			len = ROUND_UP(len, 4096);
			if (off + len > file_size)
				len = file_size - off;
		}
		s0 = __atomic_load_n(&drains_started, __ATOMIC_SEQ_CST);
		switch (w->m) {
		case M_PWRITE:
			n = pwrite(fd, buf, len, (off_t)off);
			break;
		case M_PWRITEV: {
			struct iovec iov[2] = { { buf, len / 2 },
						{ buf + len / 2, len - len / 2 } };

			n = pwritev(fd, iov, 2, (off_t)off);
			break;
		}
		case M_WRITE:
			if (lseek(fd, (off_t)off, SEEK_SET) < 0)
				n = -1;
			else
				n = write(fd, buf, len);
			break;
		case M_AIO_DIRECT: {
			struct iocb cb, *cbs[1] = { &cb };
			struct io_event ev;

			io_prep_pwrite(&cb, fd, buf, len, (long long)off);
			if (io_submit(ctx, 1, cbs) != 1 || io_getevents(ctx, 1, 1, &ev, NULL) != 1)
				n = -1;
			else
				n = (ssize_t)ev.res;
			break;
		}
		default:
			break;
		}
		s1 = __atomic_load_n(&drains_started, __ATOMIC_SEQ_CST);
		if (n < 0 || (uint64_t)n != len) {
			w->err = n < 0 ? errno : EIO;
			break;
		}
		if (rec_push(w, off, len, s0, s1)) {
			w->err = ENOMEM;
			break;
		}
	}
	if (ctx)
		io_destroy(ctx);
	close(fd);
	return NULL;
}

static int seen_add(uint64_t b, uint32_t drain)
{
	struct seen *s = &seen[b];

	if (s->n == s->cap) {
		uint32_t nc = s->cap ? s->cap * 2 : 4;
		uint32_t *v = realloc(s->v, nc * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = nc;
	}
	s->v[s->n++] = drain;
	return 0;
}

static int drain_once(struct tracker_disk *d, struct tracker_bitmap *bm)
{
	uint64_t k = __atomic_add_fetch(&drains_started, 1, __ATOMIC_SEQ_CST), b;
	int ret = tracker_drain(d, bm);

	if (ret)
		return ret;
	if (k >= rescan_cap) {
		size_t nc = MAX(rescan_cap * 2, 1024);
		uint8_t *r = realloc(rescan_drain, nc);

		if (!r)
			return -ENOMEM;
		memset(r + rescan_cap, 0, nc - rescan_cap);
		rescan_drain = r;
		rescan_cap = nc;
	}
	rescan_drain[k] = bm->rescan_needed;
	for (b = 0; b < bm->nbits && b < nblocks; b++)
		if (tracker_bitmap_test(bm, b) && seen_add(b, (uint32_t)k))
			return -ENOMEM;
	return 0;
}

/* Was block b in a drain numbered lo..hi (or did one of them say rescan)? */
static bool covered(uint64_t b, uint64_t lo, uint64_t hi)
{
	const struct seen *s = &seen[b];
	uint64_t k;
	uint32_t i;

	for (i = 0; i < s->n; i++)
		if (s->v[i] >= lo && s->v[i] <= hi)
			return true;
	for (k = lo; k <= hi && k < rescan_cap; k++)
		if (rescan_drain[k])
			return true;
	return false;
}

int main(int argc, char **argv)
{
	struct tracker_opts o = { .pin_dir = "" };
	uint64_t secs = 5, nthreads = 4, writes[M_COUNT] = { 0 }, missed = 0, total = 0,
		 rescans = 0;
	struct writer *w;
	struct tracker *t;
	struct tracker_disk *d;
	struct tracker_bitmap bm;
	struct stat st;
	uint64_t deadline, i, k;
	int c, ret, rc = 1;

	log_init(argv[0]);
	gran = 4096;
	while ((c = getopt(argc, argv, "t:s:g:P:")) != -1) {
		switch (c) {
		case 't':
			if (parse_u64(optarg, &nthreads) || !nthreads || nthreads > 64)
				goto usage;
			break;
		case 's':
			if (parse_u64(optarg, &secs))
				goto usage;
			break;
		case 'g':
			if (parse_size(optarg, &gran))
				goto usage;
			break;
		case 'P':
			o.pin_dir = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1)
		goto usage;
	path = argv[optind];
	if (stat(path, &st) < 0 || st.st_size < 1024 * 1024) {
		fprintf(stderr, "dirty-stress: %s: need an existing file of 1 MiB or more\n", path);
		return 2;
	}
	file_size = (uint64_t)st.st_size & ~4095ULL;
	nblocks = DIV_ROUND_UP(file_size, gran);
	seen = calloc(nblocks, sizeof(*seen));
	w = calloc(nthreads, sizeof(*w));
	if (!seen || !w)
		return 1;
	t = tracker_new(&o);
	if (!t)
		return 1;
	ret = tracker_start(t, path, (uint32_t)gran, &d);
	if (ret)
		goto out_free;
	tracker_bitmap_init(&bm);
	for (i = 0; i < nthreads; i++) {
		w[i].id = (int)i;
		w[i].m = (enum method)(i % M_COUNT);
		pthread_create(&w[i].th, NULL, writer_main, &w[i]);
	}
	deadline = now_ms() + secs * 1000;
	while (now_ms() < deadline) {
		ret = drain_once(d, &bm);
		if (ret)
			break;
	}
	stop = 1;
	for (i = 0; i < nthreads; i++)
		pthread_join(w[i].th, NULL);
	if (!ret)
		ret = drain_once(d, &bm); /* after every write returned */
	if (ret) {
		fprintf(stderr, "dirty-stress: drain: %s\n", strerror(-ret));
		goto out;
	}
	for (i = 0; i < nthreads; i++) {
		struct writer *x = &w[i];
		size_t j;

		if (x->err) {
			fprintf(stderr, "dirty-stress: writer %d (%s): %s\n", x->id,
				method_names[x->m], strerror(x->err));
			goto out;
		}
		for (j = 0; j < x->n; j++) {
			struct rec *r = &x->recs[j];
			uint64_t b;

			for (b = r->first; b <= r->last; b++) {
				if (!covered(b, r->s0 ? r->s0 : 1, r->s1 + 1)) {
					if (missed < 5)
						fprintf(stderr,
							"missed: block %" PRIu64
							" (%s) written between "
							"drains %" PRIu64 " and %" PRIu64 "\n",
							b, method_names[x->m], r->s0, r->s1 + 1);
					missed++;
				}
			}
		}
		writes[x->m] += x->n;
		total += x->n;
	}
	for (k = 0; k < rescan_cap; k++)
		rescans += rescan_drain[k];
	printf("{\"writes\": %" PRIu64 ", \"drains\": %" PRIu64 ", \"rescans\": %" PRIu64
	       ", \"missed\": %" PRIu64,
	       total, drains_started, rescans, missed);
	for (i = 0; i < M_COUNT; i++)
		printf(", \"%s\": %" PRIu64, method_names[i], writes[i]);
	printf("}\n");
	rc = missed || !total ? 1 : 0;
out:
	tracker_bitmap_fini(&bm);
	tracker_stop(d);
out_free:
	tracker_free(t);
	return rc;
usage:
	fprintf(stderr,
		"usage: dirty-stress [-t THREADS] [-s SECONDS] [-g BYTES] [-P PIN_DIR] FILE\n");
	return 2;
}
