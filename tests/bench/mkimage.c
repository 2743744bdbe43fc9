// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * mkimage.c - the mover benchmark's disk image, byte for byte reproducible.
 *
 *   mkimage FILE VIRTUAL ALLOCATED     sizes in GiB, or with a K, M or G suffix
 *
 * The image is sparse: its allocated part is made of slots (64 MiB, or a
 * quarter of the allocated size if that is less) spread
 * evenly over the virtual size, cycling through four kinds, so that of the
 * allocated bytes a quarter are zeros (written, so allocated), a quarter
 * text (log-like lines from a word list), a quarter binary (records of
 * counters, small integers and pointers, like program data) and a quarter
 * pseudo-random (incompressible).  A fixed xorshift seed makes every run
 * produce the same bytes.  Built and run by tests/bench/mover.sh.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOT_MAX (64ULL << 20)
#define BUF_MAX (1u << 20)

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static const char *const words[] = {
	"the",	   "disk",    "guest",	"kernel",  "migrate", "block",	 "write",   "read",
	"page",	   "cache",   "error",	"warning", "info",    "debug",	 "host",    "network",
	"packet",  "session", "user",	"login",   "service", "started", "stopped", "request",
	"response", "time",   "ms",	"bytes",   "file",    "open",	 "close",   "sync",
	"queue",   "device",  "volume", "mount",   "table",   "index",	 "commit",  "rollback",
};

static size_t fill_text(char *b, size_t len)
{
	size_t n = 0;

	while (n + 160 < len) {
		uint64_t r = next();
		int w, k = 4 + (int)(r % 9);

		n += (size_t)sprintf(b + n, "2024-%02d-%02d %02d:%02d:%02d.%03d h%02d ",
				     (int)((r >> 8) % 12) + 1, (int)((r >> 12) % 28) + 1,
				     (int)((r >> 17) % 24), (int)((r >> 22) % 60), (int)((r >> 28) % 60),
				     (int)((r >> 34) % 1000), (int)((r >> 44) % 16));
		for (w = 0; w < k; w++)
			n += (size_t)sprintf(b + n, "%s ",
					     words[next() % (sizeof(words) / sizeof(words[0]))]);
		n += (size_t)sprintf(b + n, "%u\n", (unsigned int)(next() % 100000));
	}
	memset(b + n, ' ', len - n);
	b[len - 1] = '\n';
	return len;
}

static void fill_binary(uint8_t *b, size_t len, uint64_t *ctr)
{
	size_t i;

	for (i = 0; i + 32 <= len; i += 32) {
		uint64_t r = next();
		uint64_t rec[4] = { (*ctr)++, r % 100000, 0x00007f0000000000ULL | (r & 0xffffff00),
				    (r >> 40) & 0xffff };

		memcpy(b + i, rec, sizeof(rec));
	}
}

/* "16" is 16 GiB; "384M", "1M", "2G" say their unit. */
static uint64_t parse_size(const char *a)
{
	char *end;
	uint64_t v = strtoull(a, &end, 10);

	switch (*end) {
	case 'K':
		return v << 10;
	case 'M':
		return v << 20;
	case 'G':
	case '\0':
		return v << 30;
	default:
		return 0;
	}
}

int main(int argc, char **argv)
{
	uint64_t SLOT;
	size_t BUF;
	uint64_t virt, alloc, slots, every, s, ctr = 0;
	uint8_t *buf;
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: mkimage FILE VIRTUAL ALLOCATED (GiB, or K/M/G suffix)\n");
		return 2;
	}
	virt = parse_size(argv[2]);
	alloc = parse_size(argv[3]);
	SLOT = alloc / 4 < SLOT_MAX ? alloc / 4 : SLOT_MAX;
	BUF = SLOT < BUF_MAX ? (size_t)SLOT : BUF_MAX;
	if (!SLOT || SLOT % 4096 || alloc > virt) {
		fprintf(stderr, "mkimage: sizes %s %s: allocated must be 16 KiB or more, "
				"4 KiB-aligned slots, at most the virtual size\n", argv[2], argv[3]);
		return 2;
	}
	slots = alloc / SLOT;
	every = virt / SLOT / slots;
	buf = malloc(BUF);
	fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || !buf || !every || ftruncate(fd, (off_t)virt) < 0) {
		perror(argv[1]);
		return 1;
	}
	for (s = 0; s < slots; s++) {
		uint64_t base = s * every * SLOT, off;

		for (off = 0; off < SLOT; off += BUF) {
			size_t i;

			switch (s % 4) {
			case 0:
				memset(buf, 0, BUF);
				break;
			case 1:
				fill_text((char *)buf, BUF);
				break;
			case 2:
				fill_binary(buf, BUF, &ctr);
				break;
			default:
				for (i = 0; i < BUF; i += 8) {
					uint64_t r = next();

					memcpy(buf + i, &r, 8);
				}
			}
			if (pwrite(fd, buf, BUF, (off_t)(base + off)) != (ssize_t)BUF) {
				perror("pwrite");
				return 1;
			}
		}
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		perror(argv[1]);
		return 1;
	}
	free(buf);
	return 0;
}
