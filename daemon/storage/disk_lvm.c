// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * disk_lvm.c - the LVM backend: raw disks on logical volumes /dev/VG/LV.
 * Nova refuses to cold-migrate these; ferry copies them like files (the
 * mover writes zero runs explicitly, since a new LV may hold old data) and
 * keeps the source LV aside as LV_resize for revert.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <libgen.h>
#include <stdlib.h>

#include "daemon/storage/storage.h"

/* "/dev/VG/LV" -> vg, lv */
static int lvm_split(const char *path, char *vg, size_t vlen, char *lv, size_t llen)
{
	const char *p = path, *slash;

	if (strncmp(p, "/dev/", 5))
		return -EINVAL;
	p += 5;
	slash = strchr(p, '/');
	if (!slash || slash == p || strchr(slash + 1, '/') || !slash[1])
		return -EINVAL;
	if ((size_t)(slash - p) >= vlen || strlen(slash + 1) >= llen)
		return -ENAMETOOLONG;
	memcpy(vg, p, (size_t)(slash - p));
	vg[slash - p] = '\0';
	strcpy(lv, slash + 1);
	return 0;
}

static int lvm_size(const char *path, uint64_t *bytes)
{
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, BLKGETSIZE64, bytes) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static int lvm_run(char *const argv[], const char *what, const char *path)
{
	char err[512];
	int ret;

	ret = run_cmd(argv, err, sizeof(err));
	if (ret)
		log_err("%s: %s: %s", path, what, err);
	return ret;
}

static int lvm_create(const struct ferryd_conf *c, const char *path, uint64_t bytes)
{
	char vg[128], lv[128], size[32];
	char *argv[] = { "lvcreate", "-q", "-y", "-Wy", "-Zy", "-L", size, "-n", lv, vg, NULL };
	int ret;

	ret = lvm_split(path, vg, sizeof(vg), lv, sizeof(lv));
	if (ret)
		return ret;
	if (access(path, F_OK) == 0) {
		uint64_t have = 0;

		/* Made before a restart. */
		if (lvm_size(path, &have) == 0 && have >= bytes)
			return 0;
		return -EEXIST;
	}
	snprintf(size, sizeof(size), "%" PRIu64 "b", bytes);
	return lvm_run(argv, "lvcreate", path);
}

static int lvm_grow(const char *path, const char *format, uint64_t new_virtual_bytes)
{
	char size[32];
	char *argv[] = { "lvextend", "-q", "-L", size, (char *)path, NULL };
	uint64_t cur;
	int ret;

	ret = lvm_size(path, &cur);
	if (ret)
		return ret;
	if (new_virtual_bytes <= cur)
		return 0; /* LVs round up to extents */
	snprintf(size, sizeof(size), "%" PRIu64 "b", new_virtual_bytes);
	return lvm_run(argv, "lvextend", path);
}

static int lvm_rename(const char *from, const char *to)
{
	char vg[128], lv_from[128], lv_to[128], vg2[128];
	char *argv[] = { "lvrename", "-q", vg, lv_from, lv_to, NULL };
	int ret;

	ret = lvm_split(from, vg, sizeof(vg), lv_from, sizeof(lv_from));
	if (!ret)
		ret = lvm_split(to, vg2, sizeof(vg2), lv_to, sizeof(lv_to));
	if (ret)
		return ret;
	return lvm_run(argv, "lvrename", from);
}

static int lvm_move(const char *from, const char *to)
{
	if (access(from, F_OK) != 0 && access(to, F_OK) == 0)
		return 0;
	return lvm_rename(from, to);
}

static int lvm_keep(const char *path)
{
	char kept[PATH_MAX];

	disk_kept_path(path, kept, sizeof(kept));
	if (access(kept, F_OK) == 0 && access(path, F_OK) != 0)
		return 0;
	return lvm_rename(path, kept);
}

static int lvm_restore(const char *path)
{
	char kept[PATH_MAX];

	disk_kept_path(path, kept, sizeof(kept));
	if (access(kept, F_OK) != 0)
		return access(path, F_OK) == 0 ? 0 : -ENOENT;
	return lvm_rename(kept, path);
}

static int lvm_remove(const char *path, bool kept)
{
	char p[PATH_MAX];
	char *argv[] = { "lvremove", "-q", "-y", p, NULL };

	if (kept)
		disk_kept_path(path, p, sizeof(p));
	else
		snprintf(p, sizeof(p), "%s", path);
	if (access(p, F_OK) != 0)
		return 0;
	return lvm_run(argv, "lvremove", p);
}

static bool lvm_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static int lvm_claims(const struct domxml_disk *dd, char *why, size_t len)
{
	char vg[128], lv[128];

	if (strcmp(dd->type, "block") || lvm_split(dd->path, vg, sizeof(vg), lv, sizeof(lv)) ||
	    strcmp(dd->format, "raw")) {
		snprintf(why, len, "%s is not a raw LVM volume (/dev/VG/LV); ferry moves image "
				   "files and LVs",
			 dd->path);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int lvm_dest_path(const struct ferryd_conf *c, const char *base, char *out, size_t len,
			 char *err, size_t errlen)
{
	if (!c->lvm_vg[0]) {
		snprintf(err, errlen, "%s: an LVM volume needs a volume group on this host "
				      "(lvm_vg in ferryd.conf)",
			 c->host);
		return -EOPNOTSUPP;
	}
	snprintf(out, len, "/dev/%s/%s", c->lvm_vg, base);
	return 0;
}

static void lvm_stage_path(const char *path, char *out, size_t len)
{
	snprintf(out, len, "%s_ferrynew", path);
}

static int lvm_space(const struct ferryd_conf *c, uint64_t *free_bytes, char *where, size_t len)
{
	char *argv[] = { "vgs", "--noheadings", "--nosuffix", "--units", "b", "-o", "vg_free",
			 (char *)c->lvm_vg, NULL };
	char out[128], err[256];
	int ret;

	snprintf(where, len, "space in volume group %s", c->lvm_vg);
	if (!c->lvm_vg[0])
		return -ENOENT;
	ret = run_cmd_out(argv, out, sizeof(out), err, sizeof(err));
	if (ret) {
		log_warn("volume group %s: %s", c->lvm_vg, err);
		return ret;
	}
	*free_bytes = strtoull(out, NULL, 10);
	return 0;
}

const struct disk_ops disk_lvm_ops = {
	.name = "lvm",
	.caps = DISK_CAP_BLOCK,
	.claims = lvm_claims,
	.size = lvm_size,
	.dest_path = lvm_dest_path,
	.stage_path = lvm_stage_path,
	.space = lvm_space,
	.create = lvm_create,
	.grow = lvm_grow,
	.keep = lvm_keep,
	.rename = lvm_move,
	.restore = lvm_restore,
	.remove = lvm_remove,
	.exists = lvm_exists,
};
