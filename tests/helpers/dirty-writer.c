// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dirty-writer - the write loops of tests/bench/dirty.sh: 4 KiB random
 * writes, as fio's psync, pvsync and libaio engines issue them, measured in
 * short windows so that a shared machine's bursts can be told from a
 * steady cost.  Per window it takes the writing thread's own CPU time
 * (CLOCK_THREAD_CPUTIME_ID: the syscalls, their tracepoints and the
 * programs that run in them, not other tasks' time) divided by the writes
 * completed in it.
 *
 * Usage: dirty-writer [-e psync|pvsync|libaio] [-d] [-q DEPTH] [-t SECS]
 *                     [-w WINDOW_MS] [-s SIZE_MIB] PATH
 * PATH is a file, a block device, or a character device such as /dev/null
 * (then -s gives the range of offsets).
 * Prints one JSON object: writes, syscalls (the writes' own, in the timed
 * part), iops, and the 10th, 50th and 90th
 * percentiles of the CPU ns per write over the windows.  Like fio, it
 * drops the target's clean cached pages first.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libaio.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BLK 4096
#define MAX_WINDOWS 100000
#define MAX_DEPTH 256

enum engine { ENG_PSYNC, ENG_PVSYNC, ENG_LIBAIO };

static uint64_t clock_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int target_blocks(int fd, uint64_t want_mib, uint64_t *blocks)
{
	struct stat st;
	uint64_t size;

	if (fstat(fd, &st))
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size))
			return -errno;
	} else if (S_ISCHR(st.st_mode)) {
		size = want_mib * 1024 * 1024; /* /dev/null: the cost of the path alone */
	} else {
		size = (uint64_t)st.st_size;
	}
	if (want_mib && want_mib * 1024 * 1024 < size)
		size = want_mib * 1024 * 1024;
	*blocks = size / BLK;
	return *blocks ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
	enum engine eng = ENG_PSYNC;
	unsigned int depth = 1, inflight = 0, nfree = 0, i;
	uint64_t blocks = 0, seed = 88172645463325252ULL, done = 0, win_done = 0, calls = 0;
	uint64_t t0, t_end, win_ns, win_start, cpu_start, size_mib = 0;
	double secs = 2, *win;
	long window_ms = 20;
	int c, fd, direct = 0, nwin = 0, ret;
	struct iocb cbs[MAX_DEPTH], *cbp[1], *freecb[MAX_DEPTH];
	struct io_event ev[MAX_DEPTH];
	io_context_t ctx = 0;
	struct iovec iov;
	char *buf;

	while ((c = getopt(argc, argv, "e:dq:t:w:s:")) != -1) {
		switch (c) {
		case 'e':
			if (!strcmp(optarg, "psync"))
				eng = ENG_PSYNC;
			else if (!strcmp(optarg, "pvsync"))
				eng = ENG_PVSYNC;
			else if (!strcmp(optarg, "libaio"))
				eng = ENG_LIBAIO;
			else
				goto usage;
			break;
		case 'd':
			direct = 1;
			break;
		case 'q':
			depth = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 't':
			secs = strtod(optarg, NULL);
			break;
		case 'w':
			window_ms = strtol(optarg, NULL, 0);
			break;
		case 's':
			size_mib = strtoull(optarg, NULL, 0);
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1 || !depth || depth > MAX_DEPTH || secs <= 0 || window_ms <= 0)
		goto usage;
	if (eng != ENG_LIBAIO)
		depth = 1;
	fd = open(argv[optind], O_WRONLY | (direct ? O_DIRECT : 0));
	if (fd < 0) {
		fprintf(stderr, "dirty-writer: %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	ret = target_blocks(fd, size_mib, &blocks);
	if (ret) {
		fprintf(stderr, "dirty-writer: %s: cannot size: %s\n", argv[optind], strerror(-ret));
		return 1;
	}
	/*
	 * As fio does (invalidate=1): drop the target's clean cached pages,
	 * so that runs start alike (large folios left by a sequential fill
	 * make each 4 KiB buffered write ten times dearer than 4 KiB ones).
	 */
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	buf = aligned_alloc(BLK, BLK);
	win = calloc(MAX_WINDOWS, sizeof(*win));
	if (!buf || !win)
		return 1;
	memset(buf, 0x5a, BLK);
	if (eng == ENG_LIBAIO && (ret = io_setup((int)depth, &ctx))) {
		fprintf(stderr, "dirty-writer: io_setup: %s\n", strerror(-ret));
		return 1;
	}
	for (i = 0; i < depth; i++)
		freecb[nfree++] = &cbs[i];

	win_ns = (uint64_t)window_ms * 1000000ULL;
	t0 = clock_ns(CLOCK_MONOTONIC);
	t_end = t0 + (uint64_t)(secs * 1e9);
	win_start = t0;
	cpu_start = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	for (;;) {
		uint64_t now;
		off_t off = (off_t)(xorshift(&seed) % blocks) * BLK;

		switch (eng) {
		case ENG_PSYNC:
			calls++;
			if (pwrite(fd, buf, BLK, off) != BLK)
				goto io_err;
			done++, win_done++;
			break;
		case ENG_PVSYNC:
			iov.iov_base = buf;
			iov.iov_len = BLK;
			calls++;
			if (pwritev(fd, &iov, 1, off) != BLK)
				goto io_err;
			done++, win_done++;
			break;
		case ENG_LIBAIO:
			if (inflight == depth) {
				int n = io_getevents(ctx, 1, (long)depth, ev, NULL);

				calls++;
				if (n < 0) {
					errno = -n;
					goto io_err;
				}
				for (i = 0; i < (unsigned int)n; i++) {
					if (ev[i].res != BLK)
						goto io_err;
					freecb[nfree++] = ev[i].obj;
				}
				inflight -= (unsigned int)n;
				done += (uint64_t)n, win_done += (uint64_t)n;
			}
			/* One iocb per io_submit, as fio's libaio engine does by default. */
			cbp[0] = freecb[--nfree];
			io_prep_pwrite(cbp[0], fd, buf, BLK, off);
			calls++;
			ret = io_submit(ctx, 1, cbp);
			if (ret != 1) {
				errno = ret < 0 ? -ret : EIO;
				goto io_err;
			}
			inflight++;
			break;
		}
		now = clock_ns(CLOCK_MONOTONIC);
		if (now - win_start >= win_ns) {
			uint64_t cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);

			if (win_done && nwin < MAX_WINDOWS)
				win[nwin++] = (double)(cpu - cpu_start) / (double)win_done;
			win_done = 0;
			win_start = now;
			cpu_start = cpu;
			if (now >= t_end)
				break;
		}
	}
	while (inflight) {
		int n = io_getevents(ctx, 1, (long)depth, ev, NULL);

		if (n <= 0)
			break;
		inflight -= (unsigned int)n;
		done += (uint64_t)n;
	}
	if (!nwin) {
		fprintf(stderr, "dirty-writer: no window completed\n");
		return 1;
	}
	qsort(win, (size_t)nwin, sizeof(*win), cmp_double);
	printf("{\"writes\":%" PRIu64 ",\"syscalls\":%" PRIu64 ",\"iops\":%.0f,\"windows\":%d,"
	       "\"cpu_ns_p10\":%.1f,\"cpu_ns_p50\":%.1f,\"cpu_ns_p90\":%.1f}\n",
	       done, calls, (double)done * 1e9 / (double)(clock_ns(CLOCK_MONOTONIC) - t0), nwin,
	       win[nwin / 10], win[nwin / 2], win[nwin * 9 / 10]);
	return 0;
io_err:
	fprintf(stderr, "dirty-writer: %s: write: %s\n", argv[optind], strerror(errno));
	return 1;
usage:
	fprintf(stderr, "usage: dirty-writer [-e psync|pvsync|libaio] [-d] [-q DEPTH] [-t SECS] "
			"[-w WINDOW_MS] [-s SIZE_MIB] PATH\n");
	return 2;
}
