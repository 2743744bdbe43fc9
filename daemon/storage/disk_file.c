// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * disk_file.c - the file backend: raw and qcow2 image files, usually inside
 * a Nova-style instance directory (which the flows keep aside as a whole).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/statvfs.h>

#include "daemon/storage/storage.h"

static int file_size(const char *path, uint64_t *bytes)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	*bytes = (uint64_t)st.st_size;
	return 0;
}

static int file_create(const struct ferryd_conf *c, const char *path, uint64_t bytes)
{
	char dir[PATH_MAX], *slash;
	int fd, ret = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		ret = mkdir_p(dir, 0755);
		if (ret)
			return ret;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	/* Sparse: the mover writes only what holds data. */
	if (ftruncate(fd, (off_t)bytes) < 0 || fsync(fd) < 0)
		ret = -errno;
	close(fd);
	if (!ret)
		ret = fsync_dir_of(path);
	return ret;
}

static int file_grow(const char *path, const char *format, uint64_t new_virtual_bytes)
{
	char size[32], err[512];
	uint64_t cur;
	int ret;

	ret = disk_virtual_size(path, format, &cur);
	if (ret)
		return ret;
	if (new_virtual_bytes <= cur)
		return new_virtual_bytes == cur ? 0 : -EINVAL;
	if (!strcmp(format, "qcow2")) {
		char *argv[] = { "qemu-img", "resize", "-f", "qcow2", (char *)path, size, NULL };

		snprintf(size, sizeof(size), "%" PRIu64, new_virtual_bytes);
		ret = run_cmd(argv, err, sizeof(err));
		if (ret)
			log_err("%s: qemu-img resize: %s", path, err);
		return ret;
	}
	if (truncate(path, (off_t)new_virtual_bytes) < 0)
		return -errno;
	return 0;
}

static int file_keep(const char *path)
{
	char kept[PATH_MAX];

	disk_kept_path(path, kept, sizeof(kept));
	if (access(kept, F_OK) == 0 && access(path, F_OK) != 0)
		return 0;
	if (rename(path, kept) < 0)
		return -errno;
	return fsync_dir_of(path);
}

static int file_rename(const char *from, const char *to)
{
	if (access(from, F_OK) != 0 && access(to, F_OK) == 0)
		return 0;
	if (rename(from, to) < 0)
		return -errno;
	return fsync_dir_of(to);
}

static int file_restore(const char *path)
{
	char kept[PATH_MAX];

	disk_kept_path(path, kept, sizeof(kept));
	if (access(kept, F_OK) != 0)
		return access(path, F_OK) == 0 ? 0 : -ENOENT;
	if (rename(kept, path) < 0)
		return -errno;
	return fsync_dir_of(path);
}

static int file_remove(const char *path, bool kept)
{
	char p[PATH_MAX];

	if (kept)
		disk_kept_path(path, p, sizeof(p));
	else
		snprintf(p, sizeof(p), "%s", path);
	if (unlink(p) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static bool file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static int file_claims(const struct domxml_disk *dd, char *why, size_t len)
{
	if (strcmp(dd->type, "file")) {
		snprintf(why, len, "not an image file");
		return -EOPNOTSUPP;
	}
	return 0;
}

static int file_alloc(const char *path, uint64_t *bytes)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	*bytes = (uint64_t)st.st_blocks * 512;
	return 0;
}

static void file_stage_path(const char *path, char *out, size_t len)
{
	snprintf(out, len, "%s.ferry-new", path);
}

static int file_space(const struct ferryd_conf *c, uint64_t *free_bytes, char *where, size_t len)
{
	struct statvfs sv;

	snprintf(where, len, "disk space in %s", c->instances_dir);
	if (statvfs(c->instances_dir, &sv) < 0)
		return -errno;
	*free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}

const struct disk_ops disk_file_ops = {
	.name = "file",
	.caps = DISK_CAP_INST_DIR | DISK_CAP_GROW | DISK_CAP_SPARSE,
	.claims = file_claims,
	.size = file_size,
	.alloc = file_alloc,
	.stage_path = file_stage_path,
	.space = file_space,
	.create = file_create,
	.grow = file_grow,
	.keep = file_keep,
	.rename = file_rename,
	.restore = file_restore,
	.remove = file_remove,
	.exists = file_exists,
};
