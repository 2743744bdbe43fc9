// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dest.c - the receiver's side of the disk: open or create the destination,
 * write data, materialize zero runs, and make a created file appear under
 * its name only once the copy is complete.
 *
 * A destination that does not exist yet is written as ".NAME.ID.ferry-part"
 * next to it and renamed (RENAME_NOREPLACE) on commit, so an interrupted copy
 * never leaves a file that looks complete.  Only such a fresh file may skip
 * zero runs: anything else held other data, so zeros are punched (files) or
 * written (devices; BLKZEROOUT or an unmapping zero-out when asked).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/fs.h>

#include "common.h"
#include "mover/mover.h"

static const uint8_t zero_buf[MOVER_ZERO_BUF];

#define PART_XATTR "user.ferry.part"

/*
 * A part file's identity: random, in its xattr, and in the journal.  A part
 * file deleted and created again (whose inode number the file system may
 * well reuse) has another, so its old journal is not trusted.  Where
 * xattrs are refused the identity lives only in the journal: the part file
 * cannot prove it and is never resumed.
 */
static int part_id_new(struct mover_dst *dst)
{
	uint8_t b[8];
	int ret;

	do {
		ret = random_bytes(&dst->part_id, sizeof(dst->part_id));
		if (ret)
			return ret;
	} while (!dst->part_id);
	put_le64(b, dst->part_id);
	if (fsetxattr(dst->fd, PART_XATTR, b, sizeof(b), 0) < 0 && errno != ENOTSUP &&
	    errno != EOPNOTSUPP)
		return -errno;
	return 0;
}

static int part_id_read(struct mover_dst *dst)
{
	uint8_t b[8];

	if (fgetxattr(dst->fd, PART_XATTR, b, sizeof(b)) == sizeof(b) && get_le64(b))
		dst->part_id = get_le64(b);
	else
		return part_id_new(dst); /* cannot be the journal's */
	return 0;
}

static void dst_display(struct mover_dst *dst, const char *path)
{
	char proc[64], dir[PATH_MAX];
	ssize_t n;

	if (path && *path) {
		snprintf(dst->display, sizeof(dst->display), "%s", path);
		return;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dst->dir_fd >= 0 ? dst->dir_fd : dst->fd);
	n = readlink(proc, dir, sizeof(dir) - 1);
	dir[n > 0 ? n : 0] = '\0';
	if (dst->dir_fd >= 0)
		snprintf(dst->display, sizeof(dst->display), "%.*s/%s", (int)(PATH_MAX - NAME_MAX - 2),
			 dir, dst->name);
	else
		snprintf(dst->display, sizeof(dst->display), "%s", n > 0 ? dir : "(fd)");
}

static int dst_split_path(struct mover_dst *dst, const char *path)
{
	char a[PATH_MAX], b[PATH_MAX];

	if (path[0] != '/' || strlen(path) >= PATH_MAX)
		return -EINVAL;
	strcpy(a, path);
	strcpy(b, path);
	if (strlen(basename(b)) > NAME_MAX || !strcmp(basename(b), "/"))
		return -EINVAL;
	strcpy(dst->name, basename(b));
	dst->dir_fd = open(dirname(a), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return dst->dir_fd < 0 ? -errno : 0;
}

int mover_dst_open(struct mover_dst *dst, struct mover_dest *d, const char *transfer_id,
		   uint64_t image_bytes, bool resume_part, bool grow, char *err, size_t errlen)
{
	char s1[32], s2[32], proc[64];
	bool trusted = false;
	struct stat st;
	int ret, nofollow;

	memset(dst, 0, sizeof(*dst));
	dst->fd = dst->dir_fd = dst->dfd = -1;
	if (d->fd >= 0) {
		dst->fd = d->fd;
		d->fd = -1;
	} else if (d->path[0]) {
		trusted = true; /* named by the embedding program, symlinks allowed */
		ret = dst_split_path(dst, d->path);
		if (ret) {
			snprintf(err, errlen, "%s: cannot open its directory: %s", d->path,
				 strerror(-ret));
			goto err;
		}
	} else if (d->dir_fd >= 0 && d->name[0]) {
		dst->dir_fd = d->dir_fd;
		d->dir_fd = -1;
		snprintf(dst->name, sizeof(dst->name), "%s", d->name);
	} else {
		snprintf(err, errlen, "no destination given by the authorizer");
		ret = -EINVAL;
		goto err;
	}
	dst_display(dst, d->path);
	nofollow = trusted ? 0 : O_NOFOLLOW;

	if (dst->fd < 0) {
		snprintf(dst->part, sizeof(dst->part), ".%.*s.%s.ferry-part",
			 (int)(NAME_MAX - MOVER_ID_MAX - 13), dst->name, transfer_id);
		if (resume_part) {
			dst->fd = openat(dst->dir_fd, dst->part, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
			if (dst->fd >= 0)
				dst->created = true;
		}
		if (dst->fd < 0)
			dst->fd = openat(dst->dir_fd, dst->name, O_RDWR | O_CLOEXEC | nofollow);
		if (dst->fd < 0 && errno == ENOENT && d->may_create) {
			dst->fd = openat(dst->dir_fd, dst->part,
					 O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
					 d->mode ? d->mode : 0600);
			dst->created = dst->fresh = dst->fd >= 0;
		}
		if (dst->fd < 0) {
			ret = -errno;
			snprintf(err, errlen, "%s: %s", dst->display,
				 ret == -ELOOP ? "is a symbolic link (refused)" : strerror(-ret));
			goto err;
		}
		if (dst->created) {
			/* Its name is not synced: a journal naming a part
			 * file lost in a crash finds another identity there,
			 * or none, and is not trusted (journal.c). */
			ret = dst->fresh ? part_id_new(dst) : part_id_read(dst);
			if (ret) {
				snprintf(err, errlen, "%s: part file: %s", dst->display,
					 strerror(-ret));
				goto err;
			}
		}
	}
	if (fstat(dst->fd, &st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", dst->display, strerror(-ret));
		goto err;
	}
	dst->dev = st.st_dev;
	dst->ino = st.st_ino;
	if (S_ISBLK(st.st_mode)) {
		int ss = 512;

		dst->blockdev = true;
		if (ioctl(dst->fd, BLKGETSIZE64, &dst->size) < 0) {
			ret = -errno;
			snprintf(err, errlen, "%s: cannot get the device size: %s", dst->display,
				 strerror(-ret));
			goto err;
		}
		ioctl(dst->fd, BLKSSZGET, &ss);
		dst->logical_block = (uint32_t)MAX(ss, 512);
		if (dst->size < image_bytes) {
			ret = -ENOSPC;
			snprintf(err, errlen, "%s: device is %s, smaller than the image (%s)",
				 dst->display, fmt_bytes(dst->size, s1, sizeof(s1)),
				 fmt_bytes(image_bytes, s2, sizeof(s2)));
			goto err;
		}
	} else if (S_ISREG(st.st_mode)) {
		dst->size = (uint64_t)st.st_size;
		dst->punch_ok = true;
		if (dst->size < image_bytes && !dst->created && !grow) {
			ret = -ENOSPC;
			snprintf(err, errlen,
				 "%s: file is %s, smaller than the image (%s); the sender "
				 "must ask for it to grow (ferry-copy --grow)",
				 dst->display, fmt_bytes(dst->size, s1, sizeof(s1)),
				 fmt_bytes(image_bytes, s2, sizeof(s2)));
			goto err;
		}
		if (dst->size < image_bytes) {
			/* Created files are sized to the source; others grow
			 * only when asked. */
			if (ftruncate(dst->fd, (off_t)image_bytes) < 0) {
				ret = -errno;
				snprintf(err, errlen, "%s: cannot size to %" PRIu64 ": %s",
					 dst->display, image_bytes, strerror(-ret));
				goto err;
			}
			dst->size = image_bytes;
		}
	} else {
		ret = -EINVAL;
		snprintf(err, errlen, "%s: not a regular file or block device", dst->display);
		goto err;
	}
	/* Aligned data goes around the page cache (aio.c); where O_DIRECT is
	 * refused, everything goes through it. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dst->fd);
	dst->dfd = open(proc, O_RDWR | O_DIRECT | O_CLOEXEC);
	dst->dio_align = dst->blockdev ? dst->logical_block : MAX((uint32_t)st.st_blksize, 4096u);
	return 0;
err:
	if (dst->created && dst->fresh && dst->dir_fd >= 0)
		unlinkat(dst->dir_fd, dst->part, 0);
	mover_dst_close(dst);
	return ret;
}

int mover_dst_write(struct mover_dst *dst, const void *buf, size_t len, uint64_t off)
{
	return pwrite_full(dst->fd, buf, len, (off_t)off);
}

static int dst_write_zeros(struct mover_dst *dst, uint64_t off, uint64_t len)
{
	int ret = 0;

	while (len && !ret) {
		size_t n = (size_t)MIN(len, (uint64_t)sizeof(zero_buf));

		ret = pwrite_full(dst->fd, zero_buf, n, (off_t)off);
		off += n;
		len -= n;
	}
	return ret;
}

/* BLKZEROOUT on the aligned middle, zeros written at the edges. */
static int dst_zeroout(struct mover_dst *dst, uint64_t off, uint64_t len, bool unmap)
{
	uint64_t a = ROUND_UP(off, dst->logical_block), b = ROUND_DOWN(off + len, dst->logical_block);
	uint64_t r[2];
	int ret;

	if (a >= b)
		return dst_write_zeros(dst, off, len);
	r[0] = a;
	r[1] = b - a;
	/* An unmapping zero-out (discard that reads back zeros), else BLKZEROOUT. */
	if (!unmap || fallocate(dst->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)a,
				(off_t)(b - a)) < 0) {
		if (ioctl(dst->fd, BLKZEROOUT, r) < 0)
			return dst_write_zeros(dst, off, len);
	}
	ret = dst_write_zeros(dst, off, a - off);
	if (!ret)
		ret = dst_write_zeros(dst, b, off + len - b);
	return ret;
}

int mover_dst_zero(struct mover_dst *dst, uint64_t off, uint64_t len)
{
	enum mover_zero m = dst->zero_mode;

	if (m == MOVER_ZERO_AUTO)
		m = dst->fresh ? MOVER_ZERO_SKIP : dst->blockdev ? MOVER_ZERO_WRITE : MOVER_ZERO_PUNCH;
	if (!dst->blockdev && (m == MOVER_ZERO_ZEROOUT || m == MOVER_ZERO_DISCARD))
		m = MOVER_ZERO_PUNCH;
	if (dst->blockdev && m == MOVER_ZERO_PUNCH)
		m = MOVER_ZERO_WRITE;

	switch (m) {
	case MOVER_ZERO_SKIP:
		return 0;
	case MOVER_ZERO_PUNCH:
		if (dst->punch_ok && fallocate(dst->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					       (off_t)off, (off_t)len) == 0)
			return 0;
		if (dst->punch_ok && errno != EOPNOTSUPP)
			return -errno;
		dst->punch_ok = false;
		return dst_write_zeros(dst, off, len);
	case MOVER_ZERO_ZEROOUT:
		return dst_zeroout(dst, off, len, false);
	case MOVER_ZERO_DISCARD:
		return dst_zeroout(dst, off, len, true);
	default:
		return dst_write_zeros(dst, off, len);
	}
}

bool mover_dst_part_linked(const struct mover_dst *dst)
{
	struct stat st;

	if (!dst->created || dst->dir_fd < 0)
		return true;
	/* While dst->fd is open its inode number cannot be given to another
	 * file: the same number under the name is the same file. */
	if (fstatat(dst->dir_fd, dst->part, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return false;
	return st.st_dev == dst->dev && st.st_ino == dst->ino;
}

int mover_dst_finish(struct mover_dst *dst)
{
	/* The data was synced by the transfer's last group commit. */
	if (!dst->created)
		return 0;
	/* A part file removed (or replaced by another transfer's) is not
	 * renamed into place: that name is not this transfer's data. */
	if (!mover_dst_part_linked(dst))
		return -ESTALE;
	if (renameat2(dst->dir_fd, dst->part, dst->dir_fd, dst->name, RENAME_NOREPLACE) < 0)
		return -errno;
	dst->created = false;
	if (fsync(dst->dir_fd) < 0)
		return -errno;
	return 0;
}

void mover_dst_close(struct mover_dst *dst)
{
	if (dst->dfd >= 0)
		close(dst->dfd);
	if (dst->fd >= 0)
		close(dst->fd);
	if (dst->dir_fd >= 0)
		close(dst->dir_fd);
	dst->fd = dst->dir_fd = dst->dfd = -1;
}
