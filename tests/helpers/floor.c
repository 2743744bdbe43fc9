// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * floor - the least work any tool must do to move an image's data to
 * another host: the benchmark's floor row (tests/bench/mover.sh), not a
 * product feature.
 *
 *   floor ranges FILE                     print FILE's non-zero extents
 *   floor recv PORT DEST CONNS            take CONNS connections, write
 *   floor send HOST:PORT FILE RANGES CONNS
 *
 * The extents (`OFFSET LENGTH` lines, the allocated data less its zero
 * 4 KiB blocks) are found by `ranges`, before the run: no tool gets away
 * with less than reading them once, and the floor does not time it.  The
 * sender deals them out in turn to CONNS TCP connections, each a thread
 * sending a 16-byte header (offset, length) and the bytes with sendfile(2)
 * from the page cache; a header of length 0 ends the connection.  The
 * receiver reads each extent from the socket into aligned buffers and
 * writes them with O_DIRECT through libaio, 4 in flight per connection
 * (one copy, none through the page cache: the disk works while the
 * network does; ferry's receiver does the same); an extent that is not 4 KiB-aligned
 * is spliced through a pipe into the page cache instead.  It fdatasyncs
 * DEST once every connection has ended, and answers one byte on each: the sender's clock
 * stops there.  No checksums, no compression, no resume, no
 * authentication; it trusts its peer.  `send` prints one JSON line:
 * {"extents","bytes","wall_us"}.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libaio.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "net/net.h"

#define FLOOR_BLOCK 4096u
#define FLOOR_CONNS_MAX 64
#define FLOOR_CHUNK (1u << 20)
#define FLOOR_DEPTH 4

struct floor_ext {
	uint64_t off, len;
};

struct floor_conn {
	int sock, fd, dfd; /* dfd: DEST with O_DIRECT (recv) */
	/* recv: writes in flight, a pipe for unaligned extents */
	io_context_t aio;
	struct iocb cbs[FLOOR_DEPTH];
	void *bufs[FLOOR_DEPTH];
	int free[FLOOR_DEPTH], nr_free, inflight;
	int pfd[2];
	struct floor_ext *ext; /* send: this connection's extents */
	size_t nr_ext;
	uint64_t bytes;
	int err; /* -errno */
};

static bool floor_is_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* ranges FILE: the allocated extents less their zero blocks. */
static int floor_ranges(const char *path)
{
	uint8_t *buf = aligned_alloc(FLOOR_BLOCK, 1u << 20);
	uint64_t run_off = 0, run_len = 0;
	off_t data = 0, hole, size;
	struct stat st;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !buf) {
		fprintf(stderr, "floor: %s: %s\n", path, strerror(errno));
		return 1;
	}
	size = st.st_size;
	while ((data = lseek(fd, data, SEEK_DATA)) >= 0 && data < size) {
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			hole = size;
		for (off_t o = data; o < hole;) {
			size_t n = (size_t)(hole - o < (1 << 20) ? hole - o : (1 << 20)), i;
			ssize_t r = pread(fd, buf, n, o);

			if (r <= 0) {
				fprintf(stderr, "floor: %s: read at %jd: %s\n", path, (intmax_t)o,
					r < 0 ? strerror(errno) : "end of file");
				return 1;
			}
			for (i = 0; i < (size_t)r; i += FLOOR_BLOCK) {
				size_t b = (size_t)r - i < FLOOR_BLOCK ? (size_t)r - i : FLOOR_BLOCK;
				uint64_t at = (uint64_t)o + i;

				if (floor_is_zero(buf + i, b))
					continue;
				if (run_len && run_off + run_len == at) {
					run_len += b;
					continue;
				}
				if (run_len)
					printf("%" PRIu64 " %" PRIu64 "\n", run_off, run_len);
				run_off = at;
				run_len = b;
			}
			o += r;
		}
		data = hole;
	}
	if (run_len)
		printf("%" PRIu64 " %" PRIu64 "\n", run_off, run_len);
	close(fd);
	free(buf);
	return 0;
}

/* Wait for at least min of the writes in flight; their buffers are free. */
static int floor_aio_reap(struct floor_conn *c, int min)
{
	struct io_event ev[FLOOR_DEPTH];
	int n, i, err = 0;

	do
		n = io_getevents(c->aio, min, FLOOR_DEPTH, ev, NULL);
	while (n == -EINTR);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		struct iocb *cb = ev[i].obj;

		if ((long)ev[i].res < 0)
			err = (int)(long)ev[i].res;
		else if (ev[i].res != cb->u.c.nbytes)
			err = -EIO;
		c->free[c->nr_free++] = (int)(cb - c->cbs);
		c->inflight--;
	}
	return err;
}

/*
 * One aligned extent: socket -> buffer -> O_DIRECT write, FLOOR_DEPTH
 * writes in flight through libaio (a synchronous direct write that
 * allocates holds the inode's lock until it completes: no other
 * connection's could start meanwhile).
 */
static int floor_recv_direct(struct floor_conn *c, uint64_t off, uint64_t len)
{
	int err;

	/* One write: no aio context (its teardown waits for an RCU grace
	 * period, tens of ms: more than a small copy takes). */
	if (!c->aio && len <= FLOOR_CHUNK) {
		err = read_full(c->sock, c->bufs[0], len);
		if (!err && pwrite(c->dfd, c->bufs[0], len, (off_t)off) != (ssize_t)len)
			err = -errno ?: -EIO;
		if (!err)
			c->bytes += len;
		return err;
	}
	if (!c->aio) {
		err = io_setup(FLOOR_DEPTH, &c->aio);
		if (err)
			return err;
	}
	while (len) {
		size_t k = len < FLOOR_CHUNK ? (size_t)len : FLOOR_CHUNK;
		struct iocb *cb;
		int i, n;

		if (!c->nr_free) {
			err = floor_aio_reap(c, 1);
			if (err)
				return err;
		}
		i = c->free[--c->nr_free];
		cb = &c->cbs[i];
		err = read_full(c->sock, c->bufs[i], k);
		if (err)
			return err;
		io_prep_pwrite(cb, c->dfd, c->bufs[i], k, (long long)off);
		n = io_submit(c->aio, 1, &cb);
		if (n != 1)
			return n < 0 ? n : -EIO;
		c->inflight++;
		c->bytes += k;
		off += k;
		len -= k;
	}
	return 0;
}

/* An extent that is not aligned: socket -> pipe -> page cache. */
static int floor_recv_splice(struct floor_conn *c, uint64_t off, uint64_t len)
{
	loff_t at = (loff_t)off;

	while (len) {
		ssize_t in = splice(c->sock, NULL, c->pfd[1], NULL, len, SPLICE_F_MOVE), out;

		if (in <= 0)
			return in < 0 ? -errno : -EPIPE;
		len -= (uint64_t)in;
		c->bytes += (uint64_t)in;
		while (in > 0) {
			out = splice(c->pfd[0], NULL, c->fd, &at, (size_t)in, SPLICE_F_MOVE);
			if (out <= 0)
				return out < 0 ? -errno : -EIO;
			in -= out;
		}
	}
	return 0;
}

static void *floor_recv_conn(void *arg)
{
	struct floor_conn *c = arg;
	uint64_t off, len;
	uint8_t h[16];
	int i;

	c->err = pipe2(c->pfd, O_CLOEXEC) < 0 ? -errno : 0;
	for (i = 0; i < FLOOR_DEPTH && !c->err; i++) {
		c->bufs[i] = aligned_alloc(FLOOR_BLOCK, FLOOR_CHUNK);
		c->free[c->nr_free++] = i;
		if (!c->bufs[i])
			c->err = -ENOMEM;
	}
	while (!c->err) {
		c->err = read_full(c->sock, h, sizeof(h));
		if (c->err)
			break;
		memcpy(&off, h, 8);
		memcpy(&len, h + 8, 8);
		if (!len)
			break;
		if (c->dfd >= 0 && off % FLOOR_BLOCK == 0 && len % FLOOR_BLOCK == 0)
			c->err = floor_recv_direct(c, off, len);
		else
			c->err = floor_recv_splice(c, off, len);
	}
	while (c->inflight) {
		int err = floor_aio_reap(c, c->inflight);

		if (err && !c->err)
			c->err = err;
	}
	/* No io_destroy(): it waits for an RCU grace period (tens of ms),
	 * which is not the copy's time; the exit, after the answer, frees
	 * the context. */
	for (i = 0; i < FLOOR_DEPTH; i++)
		free(c->bufs[i]);
	close(c->pfd[0]);
	close(c->pfd[1]);
	return NULL;
}

static int floor_listen(const char *port)
{
	struct net_addr a = { .port = (uint16_t)atoi(port) };
	int s = net_tcp_listen(&a, FLOOR_CONNS_MAX);

	if (s < 0)
		fprintf(stderr, "floor: listen on port %s: %s\n", port, strerror(-s));
	return s;
}

/* recv PORT DEST CONNS */
static int floor_recv(const char *port, const char *dest, int nconns)
{
	struct floor_conn c[FLOOR_CONNS_MAX] = { 0 };
	pthread_t t[FLOOR_CONNS_MAX];
	int ls, fd, dfd, i, err = 0;
	uint8_t ok = 1;

	ls = floor_listen(port);
	fd = open(dest, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	dfd = open(dest, O_WRONLY | O_DIRECT | O_CLOEXEC); /* -1: page cache only */
	if (ls < 0 || fd < 0) {
		if (fd < 0)
			fprintf(stderr, "floor: %s: %s\n", dest, strerror(errno));
		return 1;
	}
	for (i = 0; i < nconns; i++) {
		c[i].sock = net_accept(ls, NULL, NULL);
		c[i].fd = fd;
		c[i].dfd = dfd;
		if (c[i].sock < 0 || pthread_create(&t[i], NULL, floor_recv_conn, &c[i])) {
			fprintf(stderr, "floor: accept: %s\n", strerror(errno));
			return 1;
		}
	}
	for (i = 0; i < nconns; i++) {
		pthread_join(t[i], NULL);
		if (c[i].err && !err)
			err = c[i].err;
	}
	if (!err && fdatasync(fd) < 0)
		err = -errno;
	for (i = 0; i < nconns; i++) {
		if (!err)
			write_full(c[i].sock, &ok, 1);
		close(c[i].sock);
	}
	close(fd);
	if (dfd >= 0)
		close(dfd);
	close(ls);
	if (err)
		fprintf(stderr, "floor: %s: %s\n", dest, strerror(-err));
	return err ? 1 : 0;
}

static void *floor_send_conn(void *arg)
{
	struct floor_conn *c = arg;
	uint8_t h[16] = { 0 }, ok;
	size_t i;

	for (i = 0; i < c->nr_ext && !c->err; i++) {
		off_t off = (off_t)c->ext[i].off;
		uint64_t len = c->ext[i].len;

		memcpy(h, &c->ext[i].off, 8);
		memcpy(h + 8, &len, 8);
		c->err = write_full(c->sock, h, sizeof(h));
		while (!c->err && len) {
			ssize_t n = sendfile(c->sock, c->fd, &off, len);

			if (n <= 0)
				c->err = n < 0 ? -errno : -EPIPE;
			else
				len -= (uint64_t)n;
		}
		c->bytes += c->ext[i].len;
	}
	memset(h, 0, sizeof(h));
	if (!c->err)
		c->err = write_full(c->sock, h, sizeof(h));
	if (!c->err)
		c->err = read_full(c->sock, &ok, 1);
	return NULL;
}

static int floor_connect(const char *hostport)
{
	struct net_addr a;
	int ret = net_addr_parse(hostport, 0, &a);

	return ret ? ret : net_tcp_connect(&a, 10000);
}

/* send HOST:PORT FILE RANGES CONNS */
static int floor_send(const char *to, const char *path, const char *ranges, int nconns)
{
	struct floor_conn c[FLOOR_CONNS_MAX] = { 0 };
	pthread_t t[FLOOR_CONNS_MAX];
	uint64_t off, len, bytes = 0, t0;
	size_t nr = 0, i;
	FILE *rf;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	rf = fopen(ranges, "r");
	if (fd < 0 || !rf) {
		fprintf(stderr, "floor: %s: %s\n", fd < 0 ? path : ranges, strerror(errno));
		return 1;
	}
	/* Dealt out in turn: every connection gets a share of the image. */
	while (fscanf(rf, "%" SCNu64 " %" SCNu64, &off, &len) == 2) {
		struct floor_conn *k = &c[nr++ % (size_t)nconns];
		struct floor_ext *e = realloc(k->ext, (k->nr_ext + 1) * sizeof(*e));

		if (!e)
			return 1;
		e[k->nr_ext++] = (struct floor_ext){ off, len };
		k->ext = e;
	}
	fclose(rf);
	t0 = now_ns();
	for (i = 0; i < (size_t)nconns; i++) {
		c[i].fd = fd;
		c[i].sock = floor_connect(to);
		if (c[i].sock < 0) {
			fprintf(stderr, "floor: connect to %s: %s\n", to, strerror(-c[i].sock));
			return 1;
		}
		if (pthread_create(&t[i], NULL, floor_send_conn, &c[i]))
			return 1;
	}
	for (i = 0; i < (size_t)nconns; i++) {
		pthread_join(t[i], NULL);
		if (c[i].err && !err)
			err = c[i].err;
		bytes += c[i].bytes;
		close(c[i].sock);
		free(c[i].ext);
	}
	if (err) {
		fprintf(stderr, "floor: send to %s: %s\n", to, strerror(-err));
		return 1;
	}
	printf("{\"extents\":%zu,\"bytes\":%" PRIu64 ",\"wall_us\":%" PRIu64 "}\n", nr, bytes,
	       (now_ns() - t0) / 1000);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	int n = argc > 4 ? atoi(argv[argc - 1]) : 0;

	if (argc == 3 && !strcmp(argv[1], "ranges"))
		return floor_ranges(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "recv") && n > 0 && n <= FLOOR_CONNS_MAX)
		return floor_recv(argv[2], argv[3], n);
	if (argc == 6 && !strcmp(argv[1], "send") && n > 0 && n <= FLOOR_CONNS_MAX)
		return floor_send(argv[2], argv[3], argv[4], n);
	fprintf(stderr, "usage: floor ranges FILE\n"
			"       floor recv PORT DEST CONNS\n"
			"       floor send HOST:PORT FILE RANGES CONNS\n");
	return 2;
}
