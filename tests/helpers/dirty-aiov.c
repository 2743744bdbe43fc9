// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dirty-aiov - vectored O_DIRECT aio writes, as QEMU's aio=native sends
 * them: each io_submit carries one IOCB_CMD_PWRITEV with many 4 KiB iovecs
 * (more than the tracker reads back from user memory).  Logs every write
 * in fio's iolog format, for tests/helpers/dirty-oracle.c.
 *
 * Usage: dirty-aiov PATH LOG COUNT IOVECS
 * Writes COUNT times, IOVECS * 4 KiB each, at random 4 KiB-aligned offsets
 * inside PATH (a file or block device).  Exits 0 when all were written.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libaio.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define BLK 4096

static int aiov_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, size) ? -errno : 0;
	*size = (uint64_t)st.st_size;
	return 0;
}

int main(int argc, char **argv)
{
	struct iocb cb, *cbs[1] = { &cb };
	struct io_event ev;
	io_context_t ctx = 0;
	struct iovec *iov = NULL;
	unsigned long count, niov, i, j;
	uint64_t size, off;
	char *buf = NULL;
	FILE *log = NULL;
	int fd = -1, ret = 1, err;

	if (argc != 5) {
		fprintf(stderr, "usage: dirty-aiov PATH LOG COUNT IOVECS\n");
		return 2;
	}
	count = strtoul(argv[3], NULL, 0);
	niov = strtoul(argv[4], NULL, 0);
	if (!count || !niov || niov > 1024) {
		fprintf(stderr, "dirty-aiov: COUNT > 0 and 1 <= IOVECS <= 1024\n");
		return 2;
	}
	fd = open(argv[1], O_WRONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "dirty-aiov: %s: %s\n", argv[1], strerror(errno));
		goto out;
	}
	err = aiov_size(fd, &size);
	if (err || size < niov * BLK) {
		fprintf(stderr, "dirty-aiov: %s: too small or unreadable size\n", argv[1]);
		goto out;
	}
	log = fopen(argv[2], "w");
	iov = calloc(niov, sizeof(*iov));
	if (!log || !iov || posix_memalign((void **)&buf, BLK, niov * BLK)) {
		fprintf(stderr, "dirty-aiov: %s: %s\n", argv[2], strerror(errno));
		goto out;
	}
	memset(buf, 0xa5, niov * BLK);
	/* Scatter the iovecs over the buffer in reverse, as a guest's pages. */
	for (j = 0; j < niov; j++) {
		iov[j].iov_base = buf + (niov - 1 - j) * BLK;
		iov[j].iov_len = BLK;
	}
	err = io_setup(1, &ctx);
	if (err) {
		fprintf(stderr, "dirty-aiov: io_setup: %s\n", strerror(-err));
		goto out;
	}
	fprintf(log, "fio version 2 iolog\n");
	srandom(12345);
	for (i = 0; i < count; i++) {
		off = ((uint64_t)random() % (size / BLK - niov + 1)) * BLK;
		io_prep_pwritev(&cb, fd, iov, (int)niov, (long long)off);
		err = io_submit(ctx, 1, cbs);
		if (err != 1 || io_getevents(ctx, 1, 1, &ev, NULL) != 1 ||
		    ev.res != niov * BLK) {
			fprintf(stderr, "dirty-aiov: %s: write at %" PRIu64 " failed\n", argv[1],
				off);
			goto out;
		}
		fprintf(log, "%s write %" PRIu64 " %lu\n", argv[1], off, niov * BLK);
	}
	ret = 0;
out:
	if (ctx)
		io_destroy(ctx);
	if (log && fclose(log))
		ret = 1;
	free(iov);
	free(buf);
	if (fd >= 0)
		close(fd);
	return ret;
}
