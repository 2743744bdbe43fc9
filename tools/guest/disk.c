// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-agent: records, the state region and scans of the working set.
 *
 * Disk layout (4 KiB blocks, absolute block numbers):
 *   0                      state header (struct agent_state_hdr)
 *   1 .. data_start-1      expectation table, one u64 per working-set block
 *   data_start .. +span-1  the working set: zero, or one record per block
 *   beyond                 untouched (a grown disk's new space)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "agent.h"

#define AGENT_IOBUF_BYTES (1u << 20)
#define AGENT_EXPECT_BAD UINT64_MAX /* matches nothing: block known to be bad */

_Static_assert(sizeof(struct agent_rec) <= 64, "record header must fit 64 bytes");
_Static_assert(sizeof(struct agent_state_hdr) <= 512, "state header must fit a sector");

static uint64_t agent_div_up(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

static bool agent_buf_is_zero(const void *buf, size_t len)
{
	const uint64_t *p = buf;
	size_t i;

	for (i = 0; i < len / 8; i++)
		if (p[i])
			return false;
	return true;
}

/* Total guest RAM, to cap the working set so that its table fits. */
static uint64_t agent_mem_total_bytes(void)
{
	unsigned long long kib = 0;
	char line[128];
	FILE *f;

	f = fopen("/proc/meminfo", "r");
	if (!f)
		return 128ull << 20;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kib) == 1)
			break;
	fclose(f);
	return kib ? kib * 1024 : 128ull << 20;
}

static uint64_t agent_rec_csum(const void *blk)
{
	return XXH64(blk, AGENT_REC_CSUM_OFF, 0);
}

static uint64_t agent_hdr_csum(const struct agent_state_hdr *h)
{
	return XXH64(h, offsetof(struct agent_state_hdr, hdr_csum), 0);
}

const char *agent_boot_kind_name(enum agent_boot_kind k)
{
	switch (k) {
	case AGENT_BOOT_FRESH:
		return "fresh";
	case AGENT_BOOT_CLEAN:
		return "clean";
	case AGENT_BOOT_UNCLEAN:
		return "unclean";
	}
	return "?";
}

void agent_got_format(const struct agent_got_val *g, char *buf, size_t len)
{
	switch (g->kind) {
	case AGENT_GOT_ZERO:
		snprintf(buf, len, "zero");
		break;
	case AGENT_GOT_SEQ:
		snprintf(buf, len, "seq:%" PRIu64, g->value);
		break;
	case AGENT_GOT_BADMAGIC:
		snprintf(buf, len, "garbage");
		break;
	case AGENT_GOT_BADCSUM:
		snprintf(buf, len, "badcsum");
		break;
	case AGENT_GOT_MISPLACED:
		snprintf(buf, len, "block:%" PRIu64, g->value);
		break;
	case AGENT_GOT_FOREIGN:
		snprintf(buf, len, "disk:%016" PRIx64, g->value);
		break;
	case AGENT_GOT_IOERR:
		snprintf(buf, len, "ioerr:%" PRIu64, g->value);
		break;
	case AGENT_GOT_EOF:
		snprintf(buf, len, "eof");
		break;
	}
}

static void agent_expect_format(uint64_t expect, bool at_least, char *buf, size_t len)
{
	if (expect == AGENT_EXPECT_BAD)
		snprintf(buf, len, "unknown");
	else if (at_least)
		snprintf(buf, len, "seq>=%" PRIu64, expect);
	else if (expect == 0)
		snprintf(buf, len, "zero");
	else
		snprintf(buf, len, "seq:%" PRIu64, expect);
}

/* Record a bad block; only the first one is described. */
static void agent_fail_add(struct agent_fail *f, uint64_t block, const char *expected,
			   const struct agent_got_val *got)
{
	if (f->count++ == 0) {
		f->block = block;
		snprintf(f->expected, sizeof(f->expected), "%s", expected);
		agent_got_format(got, f->got, sizeof(f->got));
	}
}

/* What does this 4 KiB block hold? */
static void agent_rec_classify(const struct agent *a, const void *blk, uint64_t block,
			       struct agent_got_val *got)
{
	const struct agent_rec *r = blk;
	uint64_t csum;

	got->value = 0;
	if (r->magic != AGENT_REC_MAGIC) {
		got->kind = agent_buf_is_zero(blk, AGENT_BLOCK_BYTES) ? AGENT_GOT_ZERO :
									AGENT_GOT_BADMAGIC;
		return;
	}
	memcpy(&csum, (const char *)blk + AGENT_REC_CSUM_OFF, sizeof(csum));
	if (csum != agent_rec_csum(blk)) {
		got->kind = AGENT_GOT_BADCSUM;
	} else if (r->block != block) {
		got->kind = AGENT_GOT_MISPLACED;
		got->value = r->block;
	} else if (r->disk_id != a->hdr.disk_id) {
		got->kind = AGENT_GOT_FOREIGN;
		got->value = r->disk_id;
	} else {
		got->kind = AGENT_GOT_SEQ;
		got->value = r->seq;
	}
}

/*
 * Fill one block with its record.  The filler is half pseudo-random and
 * half a repeated word, so the data compresses about 2:1 like a real disk.
 */
static void agent_rec_fill(const struct agent *a, void *blk, uint64_t block, uint64_t seq,
			   uint64_t time_ns)
{
	struct agent_rec *r = blk;
	uint64_t *w = blk, x, csum;
	size_t i, n = AGENT_REC_CSUM_OFF / 8;

	memset(r, 0, 64);
	r->magic = AGENT_REC_MAGIC;
	r->seq = seq;
	r->block = block;
	r->disk_id = a->hdr.disk_id;
	r->boot = a->hdr.boot;
	r->version = AGENT_REC_VERSION;
	r->time_ns = time_ns;
	x = seq * 0x9e3779b97f4a7c15ull ^ block ^ a->hdr.disk_id;
	x |= 1;
	for (i = 8; i < n / 2; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
	for (; i < n; i++)
		w[i] = seq;
	csum = agent_rec_csum(blk);
	memcpy((char *)blk + AGENT_REC_CSUM_OFF, &csum, sizeof(csum));
}

static int agent_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, (char *)buf + done, len - done, off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		done += n;
	}
	return 0;
}

static int agent_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pwrite(fd, (const char *)buf + done, len - done, off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENOSPC;
		done += n;
	}
	return 0;
}

int agent_disk_open(struct agent *a)
{
	struct stat st;
	uint64_t bytes;
	int fd, err;

	fd = open(a->disk_path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		agent_log("%s: open: %s", a->disk_path, strerror(errno));
		return err;
	}
	if (fstat(fd, &st) < 0)
		goto err_errno;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &bytes) < 0)
			goto err_errno;
	} else {
		bytes = st.st_size;
	}
	if (posix_memalign(&a->iobuf, AGENT_BLOCK_BYTES, AGENT_IOBUF_BYTES)) {
		errno = ENOMEM;
		goto err_errno;
	}
	a->iobuf_bytes = AGENT_IOBUF_BYTES;
	a->disk_fd = fd;
	a->disk_blocks = bytes / AGENT_BLOCK_BYTES;
	return 0;

err_errno:
	err = -errno;
	agent_log("%s: %s", a->disk_path, strerror(errno));
	close(fd);
	return err;
}

static int agent_hdr_write(struct agent *a)
{
	int err;

	a->hdr.hdr_csum = agent_hdr_csum(&a->hdr);
	memset(a->iobuf, 0, AGENT_BLOCK_BYTES);
	memcpy(a->iobuf, &a->hdr, sizeof(a->hdr));
	err = agent_pwrite_full(a->disk_fd, a->iobuf, AGENT_BLOCK_BYTES, 0);
	if (!err && fdatasync(a->disk_fd) < 0)
		err = -errno;
	if (err)
		agent_log("%s: writing the state header: %s", a->disk_path, strerror(-err));
	return err;
}

static int agent_table_alloc(struct agent *a, uint64_t **table)
{
	void *p;

	a->expect_bytes =
		agent_div_up(a->hdr.span_blocks * 8, AGENT_BLOCK_BYTES) * AGENT_BLOCK_BYTES;
	if (posix_memalign(&p, AGENT_BLOCK_BYTES, a->expect_bytes))
		return -ENOMEM;
	memset(p, 0, a->expect_bytes);
	*table = p;
	return 0;
}

/* Read the table saved at the last clean stop into *table. */
static int agent_table_read(struct agent *a, uint64_t *table)
{
	int err;

	err = agent_pread_full(a->disk_fd, table, a->expect_bytes,
			       a->hdr.table_start * AGENT_BLOCK_BYTES);
	if (err) {
		agent_log("%s: reading the expectation table: %s", a->disk_path, strerror(-err));
		return err;
	}
	if (XXH64(table, a->hdr.span_blocks * 8, 0) != a->hdr.table_csum)
		return -EBADMSG;
	return 0;
}

/* Lay out a blank disk and write its header. */
static int agent_disk_format(struct agent *a)
{
	uint64_t t = a->disk_blocks, span, cap, table_blocks, data_start;
	int err;

	span = a->span_req_bytes ? a->span_req_bytes / AGENT_BLOCK_BYTES : t;
	cap = agent_mem_total_bytes() / 8 / 8; /* table <= 1/8 of RAM */
	if (span > cap)
		span = cap;
	if (span > t)
		span = t;
	table_blocks = agent_div_up(span * 8, AGENT_BLOCK_BYTES);
	data_start = agent_div_up(1 + table_blocks, AGENT_ALIGN_BLOCKS) * AGENT_ALIGN_BLOCKS;
	if (data_start + 1 > t) {
		snprintf(a->fatal, sizeof(a->fatal), "disk of %" PRIu64 " blocks is too small", t);
		return -ENOSPC;
	}
	if (span > t - data_start)
		span = t - data_start;

	memset(&a->hdr, 0, sizeof(a->hdr));
	a->hdr.magic = AGENT_STATE_MAGIC;
	a->hdr.version = AGENT_STATE_VERSION;
	a->hdr.block_bytes = AGENT_BLOCK_BYTES;
	/* GRND_INSECURE: early in boot the pool may not be ready, do not wait */
	if (getrandom(&a->hdr.disk_id, sizeof(a->hdr.disk_id), GRND_INSECURE) !=
	    sizeof(a->hdr.disk_id))
		a->hdr.disk_id = agent_now_ns() ^ ((uint64_t)getpid() << 32);
	a->hdr.table_start = 1;
	a->hdr.data_start = data_start;
	a->hdr.span_blocks = span;
	a->hdr.format_disk_blocks = t;
	a->hdr.state = AGENT_STATE_RUNNING;
	a->hdr.boot = 1;
	err = agent_table_alloc(a, &a->expect);
	if (err)
		return err;
	a->boot_kind = AGENT_BOOT_FRESH;
	return agent_hdr_write(a);
}

/* Describe why block 0 is not a usable header, as a sticky failure. */
static int agent_hdr_reject(struct agent *a, const char *why, enum agent_got kind)
{
	struct agent_got_val got = { .kind = kind };

	agent_fail_add(&a->boot_scan.fail, 0, "header", &got);
	snprintf(a->fatal, sizeof(a->fatal), "state header: %s", why);
	return -EBADMSG;
}

/* Check a header read from block 0 and load (or take a floor from) its table. */
static int agent_disk_load(struct agent *a)
{
	struct agent_state_hdr *h = &a->hdr;
	struct agent_got_val got = { .kind = AGENT_GOT_BADCSUM };
	uint64_t **table;
	int err;

	if (h->magic != AGENT_STATE_MAGIC)
		return agent_hdr_reject(a, "not a ferry disk", AGENT_GOT_BADMAGIC);
	if (h->hdr_csum != agent_hdr_csum(h))
		return agent_hdr_reject(a, "checksum mismatch", AGENT_GOT_BADCSUM);
	if (h->version != AGENT_STATE_VERSION || h->block_bytes != AGENT_BLOCK_BYTES ||
	    h->table_start != 1 || h->data_start <= h->table_start ||
	    (h->state != AGENT_STATE_RUNNING && h->state != AGENT_STATE_CLEAN))
		return agent_hdr_reject(a, "unsupported version or layout", AGENT_GOT_BADMAGIC);
	if (h->span_blocks * 8 > agent_mem_total_bytes() / 2) {
		snprintf(a->fatal, sizeof(a->fatal),
			 "working set of %" PRIu64 " blocks needs more RAM", h->span_blocks);
		return -ENOMEM;
	}
	if (h->data_start + h->span_blocks > a->disk_blocks) {
		got.kind = AGENT_GOT_EOF;
		a->boot_scan.fail.count = h->data_start + h->span_blocks - a->disk_blocks;
		a->boot_scan.fail.block = a->disk_blocks;
		snprintf(a->boot_scan.fail.expected, sizeof(a->boot_scan.fail.expected), "block");
		agent_got_format(&got, a->boot_scan.fail.got, sizeof(a->boot_scan.fail.got));
		snprintf(a->fatal, sizeof(a->fatal),
			 "disk shrank: %" PRIu64 " blocks, working set ends at %" PRIu64,
			 a->disk_blocks, h->data_start + h->span_blocks);
		return -ENOSPC;
	}

	a->boot_kind = h->state == AGENT_STATE_CLEAN && h->table_valid ? AGENT_BOOT_CLEAN :
									 AGENT_BOOT_UNCLEAN;
	err = agent_table_alloc(a, &a->expect);
	if (err)
		return err;
	if (h->table_valid) {
		table = a->boot_kind == AGENT_BOOT_CLEAN ? &a->expect : &a->floor;
		if (!*table) {
			err = agent_table_alloc(a, table);
			if (err)
				return err;
		}
		err = agent_table_read(a, *table);
		if (err == -EBADMSG) {
			agent_fail_add(&a->boot_scan.fail, h->table_start, "table", &got);
			snprintf(a->fatal, sizeof(a->fatal),
				 "expectation table: checksum mismatch");
		}
		if (err)
			return err;
	}
	a->seq = h->seq;
	h->boot++;
	if (a->boot_kind == AGENT_BOOT_UNCLEAN)
		h->unclean_boots++;
	/* Consume the saved state: from now on a stop without a save is unclean. */
	h->state = AGENT_STATE_RUNNING;
	return agent_hdr_write(a);
}

/*
 * Find out what kind of boot this is and set up the expectations: format a
 * blank disk, restore a clean stop's table, or adopt what an unclean stop
 * left (with the last clean table as a lower bound).  Then scan.
 */
int agent_disk_boot(struct agent *a)
{
	int err;

	err = agent_pread_full(a->disk_fd, a->iobuf, AGENT_BLOCK_BYTES, 0);
	if (err) {
		snprintf(a->fatal, sizeof(a->fatal), "reading block 0: %s", strerror(-err));
		return err;
	}
	if (agent_buf_is_zero(a->iobuf, AGENT_BLOCK_BYTES)) {
		err = agent_disk_format(a);
	} else {
		memcpy(&a->hdr, a->iobuf, sizeof(a->hdr));
		err = agent_disk_load(a);
	}
	if (err) {
		if (!a->fatal[0])
			snprintf(a->fatal, sizeof(a->fatal), "%s", strerror(-err));
		return err;
	}

	if (a->boot_kind == AGENT_BOOT_UNCLEAN || a->boot_scan_on) {
		enum agent_scan_mode mode = AGENT_SCAN_EXACT;

		if (a->boot_kind == AGENT_BOOT_UNCLEAN)
			mode = AGENT_SCAN_ADOPT;
		err = agent_disk_scan(a, mode, &a->boot_scan);
		if (err)
			return err;
	}
	if (a->boot_scan.max_seq > a->seq)
		a->seq = a->boot_scan.max_seq;
	free(a->floor);
	a->floor = NULL;
	return 0;
}

/* Compare one block with what it must hold; on adopt, learn it. */
static bool agent_block_check(struct agent *a, enum agent_scan_mode mode, uint64_t idx,
			      const struct agent_got_val *got, struct agent_scan *sc)
{
	uint64_t block = a->hdr.data_start + idx;
	uint64_t want = a->expect[idx];
	char expected[48];
	bool ok;

	if (got->kind == AGENT_GOT_SEQ) {
		sc->records++;
		if (got->value > sc->max_seq)
			sc->max_seq = got->value;
	} else if (got->kind == AGENT_GOT_ZERO) {
		sc->zero++;
	}

	if (mode == AGENT_SCAN_ADOPT) {
		want = a->floor ? a->floor[idx] : 0;
		if (want == AGENT_EXPECT_BAD) /* already unknown at the clean stop */
			want = 0;
		ok = (got->kind == AGENT_GOT_ZERO && want == 0) ||
		     (got->kind == AGENT_GOT_SEQ && got->value >= want);
		if (!ok)
			a->expect[idx] = AGENT_EXPECT_BAD;
		else
			a->expect[idx] = got->kind == AGENT_GOT_SEQ ? got->value : 0;
		if (!ok) {
			agent_expect_format(want, want != 0, expected, sizeof(expected));
			if (want == 0)
				snprintf(expected, sizeof(expected), "zero|record");
			agent_fail_add(&sc->fail, block, expected, got);
		}
		return ok;
	}

	ok = want == 0 ? got->kind == AGENT_GOT_ZERO :
			 got->kind == AGENT_GOT_SEQ && got->value == want;
	if (!ok) {
		agent_expect_format(want, false, expected, sizeof(expected));
		if (mode == AGENT_SCAN_MEMORY && want != AGENT_EXPECT_BAD &&
		    got->kind == AGENT_GOT_SEQ && got->value > want) {
			/* Learn it: the next verdict is exact again. */
			agent_fail_add(&sc->ram_lost, block, expected, got);
			a->expect[idx] = got->value;
		} else
			agent_fail_add(&sc->fail, block, expected, got);
	}
	return ok;
}

/*
 * Read the whole working set back and check every block.  Returns 0 when
 * the scan ran (its verdict is in *sc), -errno if it could not.
 */
int agent_disk_scan(struct agent *a, enum agent_scan_mode mode, struct agent_scan *sc)
{
	uint64_t chunk = a->iobuf_bytes / AGENT_BLOCK_BYTES, idx, n, k, start_ns;
	struct agent_got_val got;
	int err;

	start_ns = agent_now_ns();
	memset(sc, 0, sizeof(*sc));
	for (idx = 0; idx < a->hdr.span_blocks; idx += n) {
		n = a->hdr.span_blocks - idx;
		if (n > chunk)
			n = chunk;
		err = agent_pread_full(a->disk_fd, a->iobuf, n * AGENT_BLOCK_BYTES,
				       (a->hdr.data_start + idx) * AGENT_BLOCK_BYTES);
		for (k = 0; k < n; k++) {
			void *blk = (char *)a->iobuf + k * AGENT_BLOCK_BYTES;

			if (err) {
				/* Retry block by block to name the bad one. */
				int e = agent_pread_full(a->disk_fd, blk, AGENT_BLOCK_BYTES,
							 (a->hdr.data_start + idx + k) *
								 AGENT_BLOCK_BYTES);
				if (e) {
					got.kind = e == -ENODATA ? AGENT_GOT_EOF : AGENT_GOT_IOERR;
					got.value = -e;
					agent_block_check(a, mode, idx + k, &got, sc);
					sc->blocks++;
					continue;
				}
			}
			agent_rec_classify(a, blk, a->hdr.data_start + idx + k, &got);
			agent_block_check(a, mode, idx + k, &got, sc);
			sc->blocks++;
		}
	}
	sc->ms = (agent_now_ns() - start_ns) / 1000000;
	return 0;
}

/*
 * Write records to nblocks consecutive working-set blocks from idx, each
 * with the next sequence number, and remember them.  A failed write makes
 * those blocks unknown and is kept as a failure for the next verdict.
 */
int agent_disk_write(struct agent *a, uint64_t idx, uint32_t nblocks)
{
	uint64_t block = a->hdr.data_start + idx, now, seq = a->seq;
	struct timespec ts;
	uint32_t k;
	int err;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	for (k = 0; k < nblocks; k++)
		agent_rec_fill(a, (char *)a->iobuf + (size_t)k * AGENT_BLOCK_BYTES, block + k,
			       seq + 1 + k, now);
	err = agent_pwrite_full(a->disk_fd, a->iobuf, (size_t)nblocks * AGENT_BLOCK_BYTES,
				block * AGENT_BLOCK_BYTES);
	a->seq += nblocks;
	a->write_calls++;
	for (k = 0; k < nblocks; k++) {
		if (err) {
			struct agent_got_val got = { .kind = AGENT_GOT_IOERR, .value = -err };
			char expected[48];

			snprintf(expected, sizeof(expected), "seq:%" PRIu64, seq + 1 + k);
			agent_fail_add(&a->write_fail, block + k, expected, &got);
			a->expect[idx + k] = AGENT_EXPECT_BAD;
		} else {
			a->expect[idx + k] = seq + 1 + k;
		}
	}
	if (err) {
		agent_log("write of block %" PRIu64 "+%u failed: %s", block, nblocks,
			  strerror(-err));
		return err;
	}
	a->written_blocks += nblocks;
	a->hdr.total_written += nblocks;
	return 0;
}

/*
 * Save the expectations for the next boot: mark the table invalid, write
 * it, then write the header as CLEAN.  A crash at any point leaves a
 * header that says RUNNING (unclean) or a complete CLEAN state.
 */
int agent_disk_save(struct agent *a)
{
	int err;

	if (!a->expect || a->fatal[0])
		return -EINVAL;
	a->hdr.table_valid = 0;
	a->hdr.seq = a->seq;
	err = agent_hdr_write(a);
	if (err)
		return err;
	err = agent_pwrite_full(a->disk_fd, a->expect, a->expect_bytes,
				a->hdr.table_start * AGENT_BLOCK_BYTES);
	if (!err && fdatasync(a->disk_fd) < 0)
		err = -errno;
	if (err) {
		agent_log("%s: writing the expectation table: %s", a->disk_path, strerror(-err));
		return err;
	}
	a->hdr.table_csum = XXH64(a->expect, a->hdr.span_blocks * 8, 0);
	a->hdr.table_valid = 1;
	a->hdr.state = AGENT_STATE_CLEAN;
	return agent_hdr_write(a);
}
