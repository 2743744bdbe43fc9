// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * journal.c - the receiver's resume journal.
 *
 * One file per transfer, DIR/<transfer id>.journal: a 144-byte header (what
 * is being copied, where to -- for a created part file, the random identity
 * stored in its xattr, which a new file reusing a deleted one's inode does
 * not have -- and a checksum of both) followed by 16-byte
 * records, one per work unit received, checked and written.  Records are
 * appended in group commits: the destination is fdatasync'd first, then the
 * records are written and the journal fdatasync'd, so a unit in the journal
 * is a unit on disk.  A torn tail (a record whose check does not match) ends
 * the journal.
 *
 * The file is made by the first group commit that has records, header and
 * records in one write: a transfer that ends sooner never has one.  That
 * commit's data sync was the transfer's durability point; a commit asked
 * for MOVER_JOURNAL_DATA_ONLY while no file exists (the last units of a
 * one-shot transfer, which commits next) syncs the data and keeps the
 * records in memory, to be written only if the transfer stops short of
 * its commit.  No directory is synced for the journal's name or the part
 * file's: a name lost in a crash costs a resume its head start (the
 * transfer begins afresh), never a unit believed on disk that is not.  A copy resumed with the same transfer id and the same
 * header skips the units found here; any difference starts afresh.
 *
 * A session's journal (header flag MOVER_JOURNAL_SESSION) holds rounds: a
 * round record (bit 63, the round in bits 32..62, the low 32 bits of the
 * round's ranges digest) and then unit records tagged with their round
 * (round << 32 | unit).  Replay keeps the last round's units: a resumed
 * round skips them, a new one starts from none.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "common.h"
#include "mover/mover.h"

static const char journal_magic[8] = { 'F', 'E', 'R', 'R', 'Y', 'J', 'N', 'L' };
#define JOURNAL_VERSION 2

size_t mover_journal_hdr_encode(const struct mover_journal_hdr *h, uint8_t *buf)
{
	memset(buf, 0, MOVER_JOURNAL_HDR_BYTES);
	memcpy(buf, journal_magic, 8);
	put_le32(buf + 8, JOURNAL_VERSION);
	put_le32(buf + 12, h->flags);
	put_le64(buf + 16, h->image_bytes);
	put_le64(buf + 24, h->unit_bytes);
	put_le64(buf + 32, h->units_total);
	put_le64(buf + 40, h->ranges_digest);
	put_le64(buf + 48, h->dest_dev);
	put_le64(buf + 56, h->dest_ino);
	memcpy(buf + 64, h->transfer_id, strnlen(h->transfer_id, MOVER_ID_MAX));
	put_le64(buf + 128, h->part_id);
	put_le64(buf + 136, XXH3_64bits(buf, 136));
	return MOVER_JOURNAL_HDR_BYTES;
}

int mover_journal_hdr_decode(const uint8_t *buf, struct mover_journal_hdr *h)
{
	memset(h, 0, sizeof(*h));
	if (memcmp(buf, journal_magic, 8) || get_le32(buf + 8) != JOURNAL_VERSION ||
	    get_le64(buf + 136) != XXH3_64bits(buf, 136))
		return -EBADMSG;
	h->flags = get_le32(buf + 12);
	h->image_bytes = get_le64(buf + 16);
	h->unit_bytes = get_le64(buf + 24);
	h->units_total = get_le64(buf + 32);
	h->ranges_digest = get_le64(buf + 40);
	h->dest_dev = get_le64(buf + 48);
	h->dest_ino = get_le64(buf + 56);
	memcpy(h->transfer_id, buf + 64, MOVER_ID_MAX);
	h->transfer_id[MOVER_ID_MAX] = '\0';
	h->part_id = get_le64(buf + 128);
	if (!mover_id_valid(h->transfer_id) || h->unit_bytes < MOVER_UNIT_MIN ||
	    h->unit_bytes > MOVER_UNIT_MAX || (h->unit_bytes & (h->unit_bytes - 1)) ||
	    DIV_ROUND_UP(h->image_bytes, h->unit_bytes) > (uint64_t)MOVER_BITMAP_MAX * 8)
		return -EBADMSG;
	return 0;
}

void mover_journal_rec_encode(uint64_t seed, uint64_t unit, uint8_t *buf)
{
	put_le64(buf, unit);
	put_le64(buf + 8, XXH3_64bits_withSeed(buf, 8, seed));
}

int mover_journal_rec_decode(uint64_t seed, const uint8_t *buf, uint64_t *unit)
{
	if (get_le64(buf + 8) != XXH3_64bits_withSeed(buf, 8, seed))
		return -EBADMSG;
	*unit = get_le64(buf);
	return 0;
}

static int journal_path(char *out, size_t len, const char *dir, const char *id)
{
	if (!mover_id_valid(id))
		return -EINVAL;
	if (snprintf(out, len, "%s/%s.journal", dir, id) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

static bool hdr_equal(const struct mover_journal_hdr *a, const struct mover_journal_hdr *b)
{
	return a->image_bytes == b->image_bytes && a->unit_bytes == b->unit_bytes &&
	       a->units_total == b->units_total && a->ranges_digest == b->ranges_digest &&
	       a->dest_dev == b->dest_dev && a->dest_ino == b->dest_ino &&
	       a->part_id == b->part_id &&
	       a->flags == b->flags && !strcmp(a->transfer_id, b->transfer_id);
}

int mover_journal_peek(const char *dir, const char *id, struct mover_journal_hdr *h)
{
	uint8_t buf[MOVER_JOURNAL_HDR_BYTES];
	char path[PATH_MAX];
	int fd, ret;

	ret = journal_path(path, sizeof(path), dir, id);
	if (ret)
		return ret;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	ret = pread_full(fd, buf, sizeof(buf), 0);
	if (!ret)
		ret = mover_journal_hdr_decode(buf, h);
	else if (ret == -ENODATA)
		ret = -EBADMSG;
	close(fd);
	return ret;
}

static int journal_push(struct mover_journal *j, uint64_t rec)
{
	if (j->nr_pending == j->cap_pending) {
		size_t nc = j->cap_pending ? j->cap_pending * 2 : 64;
		uint64_t *np = realloc(j->pending, nc * sizeof(*np));

		if (!np)
			return -ENOMEM;
		j->pending = np;
		j->cap_pending = nc;
	}
	j->pending[j->nr_pending++] = rec;
	return 0;
}

/* One record of a session's journal; false: not a valid one (torn). */
static bool journal_session_rec(struct mover_journal *j, uint64_t v)
{
	uint64_t u = v & 0xffffffffULL;

	if (v & MOVER_JOURNAL_ROUND_REC) {
		j->round = (uint32_t)((v >> 32) & MOVER_ROUND_MAX);
		j->round_digest = (uint32_t)v;
		j->have_round = true;
		memset(j->bitmap, 0, DIV_ROUND_UP(j->nbits, 8));
		j->done = 0;
		return true;
	}
	if (!j->have_round || (v >> 32) != j->round || u >= j->nbits)
		return false;
	if (!(j->bitmap[u / 8] & (1u << (u % 8)))) {
		j->bitmap[u / 8] |= (uint8_t)(1u << (u % 8));
		j->done++;
	}
	return true;
}

/* Replay the records of an open journal into the bitmap. */
static int journal_replay(struct mover_journal *j)
{
	uint8_t buf[MOVER_JOURNAL_REC_BYTES * 256];
	off_t pos = MOVER_JOURNAL_HDR_BYTES;

	for (;;) {
		ssize_t n = pread(j->fd, buf, sizeof(buf), pos);
		ssize_t i;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (i = 0; i + MOVER_JOURNAL_REC_BYTES <= n; i += MOVER_JOURNAL_REC_BYTES) {
			uint64_t u;

			if (mover_journal_rec_decode(j->seed, buf + i, &u))
				goto torn;
			if (j->session) {
				if (!journal_session_rec(j, u))
					goto torn;
				pos += MOVER_JOURNAL_REC_BYTES;
				continue;
			}
			if (u >= j->nbits)
				goto torn;
			if (!(j->bitmap[u / 8] & (1u << (u % 8)))) {
				j->bitmap[u / 8] |= (uint8_t)(1u << (u % 8));
				j->done++;
			}
			pos += MOVER_JOURNAL_REC_BYTES;
		}
		if (n < (ssize_t)sizeof(buf))
			break;
	}
torn:
	/* Drop a torn tail so that new records follow the last good one. */
	if (ftruncate(j->fd, pos) < 0)
		return -errno;
	j->end = pos;
	return 0;
}

int mover_journal_open(struct mover_journal **jp, const char *dir,
		       const struct mover_journal_hdr *want, bool *resumed, uint32_t *found_flags)
{
	uint8_t hbuf[MOVER_JOURNAL_HDR_BYTES];
	struct mover_journal_hdr old;
	struct mover_journal *j;
	int ret;

	*resumed = false;
	*found_flags = 0;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->fd = -1;
	/* Nothing synced yet, not even the destination's creation or size:
	 * the first commit syncs the data whether or not a unit came. */
	j->marks = 1;
	pthread_mutex_init(&j->lock, NULL);
	pthread_mutex_init(&j->commit_lock, NULL);
	j->hdr = *want;
	j->session = want->flags & MOVER_JOURNAL_SESSION;
	j->nbits = DIV_ROUND_UP(want->image_bytes, want->unit_bytes);
	j->bitmap = calloc(1, DIV_ROUND_UP(j->nbits, 8) + 1);
	ret = -ENOMEM;
	if (!j->bitmap)
		goto err;
	ret = journal_path(j->path, sizeof(j->path), dir, want->transfer_id);
	if (ret)
		goto err;
	mover_journal_hdr_encode(want, hbuf);
	j->seed = get_le64(hbuf + 136);

	j->fd = open(j->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (j->fd >= 0) {
		if (pread_full(j->fd, hbuf, sizeof(hbuf), 0) == 0 &&
		    mover_journal_hdr_decode(hbuf, &old) == 0) {
			*found_flags = old.flags;
			if (hdr_equal(&old, want)) {
				ret = journal_replay(j);
				if (ret)
					goto err;
				*resumed = true;
				*jp = j;
				return 0;
			}
		}
		/* Another copy's journal, or a damaged one: start afresh. */
		close(j->fd);
		j->fd = -1;
	} else if (errno != ENOENT) {
		ret = -errno;
		goto err;
	}
	/* The directory now, so that a journal that cannot be kept fails
	 * the HELLO, not the first commit; the file with that commit. */
	if (access(dir, F_OK) < 0) {
		ret = mkdir_p(dir, 0700);
		if (ret)
			goto err;
	}
	*jp = j;
	return 0;
err:
	mover_journal_close(j);
	return ret;
}

bool mover_journal_test(struct mover_journal *j, uint64_t unit)
{
	bool set;

	if (unit >= j->nbits)
		return false;
	pthread_mutex_lock(&j->lock);
	set = j->bitmap[unit / 8] & (1u << (unit % 8));
	pthread_mutex_unlock(&j->lock);
	return set;
}

uint64_t mover_journal_mark(struct mover_journal *j, uint64_t unit)
{
	uint64_t seq = 0;

	pthread_mutex_lock(&j->lock);
	j->marks++;
	if (unit < j->nbits && !(j->bitmap[unit / 8] & (1u << (unit % 8)))) {
		if (journal_push(j, j->session ? (uint64_t)j->round << 32 | unit : unit))
			goto out;
		j->bitmap[unit / 8] |= (uint8_t)(1u << (unit % 8));
		j->done++;
	}
	seq = j->taken_seq + 1;
out:
	pthread_mutex_unlock(&j->lock);
	return seq;
}

int mover_journal_round(struct mover_journal *j, uint32_t round, uint32_t digest)
{
	int ret;

	pthread_mutex_lock(&j->lock);
	ret = journal_push(j, MOVER_JOURNAL_ROUND_REC | (uint64_t)(round & MOVER_ROUND_MAX) << 32 |
				      digest);
	if (!ret) {
		j->round = round;
		j->round_digest = digest;
		j->have_round = true;
		memset(j->bitmap, 0, DIV_ROUND_UP(j->nbits, 8));
		j->done = 0;
	}
	pthread_mutex_unlock(&j->lock);
	return ret;
}

/* The journal's file, made by its first commit: header and records (the
 * n at buf + MOVER_JOURNAL_HDR_BYTES) in one write.  It replaces another
 * copy's journal of the same id. */
static int journal_create(struct mover_journal *j, uint8_t *buf, size_t n)
{
	size_t len = MOVER_JOURNAL_HDR_BYTES + n * MOVER_JOURNAL_REC_BYTES;
	int fd, ret;

	fd = open(j->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	mover_journal_hdr_encode(&j->hdr, buf);
	ret = pwrite_full(fd, buf, len, 0);
	if (ret) {
		close(fd);
		return ret;
	}
	j->fd = fd;
	j->end = (off_t)len;
	return 0;
}

int mover_journal_commit(struct mover_journal *j, int dest_fd, unsigned int flags)
{
	uint64_t *units = NULL, seq, marks;
	uint8_t *buf = NULL, *recs;
	const char *what = NULL;
	bool sync_data, keep;
	size_t n, i;
	int ret = 0;

	pthread_mutex_lock(&j->commit_lock);
	pthread_mutex_lock(&j->lock);
	if (j->err) {
		/* What the failed commit held may not be on disk: nothing is
		 * durable from then on (the session fails; a resume re-reads
		 * the journal). */
		ret = j->err;
		pthread_mutex_unlock(&j->lock);
		pthread_mutex_unlock(&j->commit_lock);
		return ret;
	}
	/* Records kept in memory stay pending; otherwise they are taken. */
	keep = (flags & MOVER_JOURNAL_DATA_ONLY) && j->fd < 0;
	n = j->nr_pending;
	if (!keep) {
		units = j->pending;
		j->pending = NULL;
		j->nr_pending = j->cap_pending = 0;
	}
	marks = j->marks;
	sync_data = dest_fd >= 0 && marks != j->marks_synced;
	seq = ++j->taken_seq;
	pthread_mutex_unlock(&j->lock);

	/* Data first: a unit in the journal must be a unit on disk.  Units
	 * marked since the last sync include any written again, with no new
	 * record; none marked since, nothing of theirs to sync. */
	if (sync_data) {
		if (fdatasync(dest_fd) < 0) {
			ret = -errno;
			what = "fdatasync of the destination";
			goto out;
		}
		pthread_mutex_lock(&j->lock);
		j->marks_synced = marks;
		pthread_mutex_unlock(&j->lock);
	}
	if (n && !keep) {
		buf = malloc(MOVER_JOURNAL_HDR_BYTES + n * MOVER_JOURNAL_REC_BYTES);
		if (!buf) {
			ret = -ENOMEM;
			what = "out of memory";
			goto out;
		}
		recs = buf + MOVER_JOURNAL_HDR_BYTES;
		for (i = 0; i < n; i++)
			mover_journal_rec_encode(j->seed, units[i], recs + i * MOVER_JOURNAL_REC_BYTES);
		if (j->fd < 0) {
			ret = journal_create(j, buf, n);
		} else {
			ret = pwrite_full(j->fd, recs, n * MOVER_JOURNAL_REC_BYTES, j->end);
			if (!ret)
				j->end += (off_t)(n * MOVER_JOURNAL_REC_BYTES);
		}
		if (ret) {
			what = "journal write";
			goto out;
		}
		if (fdatasync(j->fd) < 0) {
			ret = -errno;
			what = "fdatasync of the journal";
			goto out;
		}
	}
	pthread_mutex_lock(&j->lock);
	j->durable_seq = seq;
	j->commits++;
	pthread_mutex_unlock(&j->lock);
out:
	if (ret && keep) {
		/* The kept records were never taken: mark them not done. */
		pthread_mutex_lock(&j->lock);
		units = j->pending;
		j->pending = NULL;
		j->nr_pending = j->cap_pending = 0;
		pthread_mutex_unlock(&j->lock);
	}
	if (ret) {
		/* These units are not done: a COMMIT must not count them. */
		pthread_mutex_lock(&j->lock);
		for (i = 0; i < n; i++) {
			uint64_t u = units[i] & 0xffffffffULL;

			if ((units[i] & MOVER_JOURNAL_ROUND_REC) ||
			    (j->session && units[i] >> 32 != j->round))
				continue;
			if (j->bitmap[u / 8] & (1u << (u % 8))) {
				j->bitmap[u / 8] &= (uint8_t)~(1u << (u % 8));
				j->done--;
			}
		}
		j->err = ret;
		j->err_what = what;
		pthread_mutex_unlock(&j->lock);
	}
	free(buf);
	free(units);
	pthread_mutex_unlock(&j->commit_lock);
	return ret;
}

uint64_t mover_journal_durable(struct mover_journal *j)
{
	uint64_t s;

	pthread_mutex_lock(&j->lock);
	s = j->durable_seq;
	pthread_mutex_unlock(&j->lock);
	return s;
}

uint64_t mover_journal_done(struct mover_journal *j)
{
	uint64_t d;

	pthread_mutex_lock(&j->lock);
	d = j->done;
	pthread_mutex_unlock(&j->lock);
	return d;
}

int mover_journal_remove(struct mover_journal *j)
{
	/* Not synced: a journal back after a crash names a part file that
	 * is gone, and is not trusted. */
	if (unlink(j->path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

void mover_journal_close(struct mover_journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	pthread_mutex_destroy(&j->lock);
	pthread_mutex_destroy(&j->commit_lock);
	free(j->bitmap);
	free(j->pending);
	free(j);
}
