/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * storage.h - disks: the backends (one file each, ending in its struct
 * disk_ops), what each can do (caps), and where an incoming VM's disks go
 * on this host (place.c).  Adding a backend = adding a file and its entry
 * in disk.c's table.
 */
#ifndef FERRY_DAEMON_STORAGE_H
#define FERRY_DAEMON_STORAGE_H

#include "daemon/engine/engine.h"
#include "daemon/host/host.h"

/* disk.c + disk_file.c + disk_lvm.c: storage backends. */
/* What a backend can do; flows ask for these, never for a backend's name. */
#define DISK_CAP_BLOCK    (1u << 0) /* a block device (libvirt <disk type='block'>) */
#define DISK_CAP_INST_DIR (1u << 1) /* may live in, and move with, an instance dir */
#define DISK_CAP_GROW     (1u << 2) /* the container can be grown to a declared size */
#define DISK_CAP_SPARSE   (1u << 3) /* allocation can be below the size */
#define DISK_CAP_SHARED   (1u << 4) /* every host sees the same bytes */

struct disk_ops {
	const char *name;               /* journaled in each disk */
	unsigned int caps;              /* DISK_CAP_* */
	/* Is this libvirt disk one of ours?  0, or -EOPNOTSUPP with @why. */
	int (*claims)(const struct domxml_disk *dd, char *why, size_t len);
	/* Container size in bytes (file size or device size). */
	int (*size)(const char *path, uint64_t *bytes);
	/* Bytes allocated (DISK_CAP_SPARSE; else the size). */
	int (*alloc)(const char *path, uint64_t *bytes);
	/* Create an empty disk able to hold @bytes at @path (sparse). */
	int (*create)(const struct ferryd_conf *c, const char *path, uint64_t bytes);
	/* Grow the guest-visible size (raw: truncate, qcow2: qemu-img, LV). */
	int (*grow)(const char *path, const char *format, uint64_t new_virtual_bytes);
	/* Rename aside for revert and back; idempotent. */
	int (*keep)(const char *path);
	/* Rename @from to @to (same backend and volume group); idempotent. */
	int (*rename)(const char *from, const char *to);
	int (*restore)(const char *path);
	/* Remove (the kept copy with @kept); -ENOENT is success. */
	int (*remove)(const char *path, bool kept);
	bool (*exists)(const char *path);
	/*
	 * Where a disk named @base goes on this host, when the backend decides
	 * (a volume group); NULL: beside the instance dir.  -errno with @err.
	 */
	int (*dest_path)(const struct ferryd_conf *c, const char *base, char *out, size_t len,
			 char *err, size_t errlen);
	/* Beside @path, where a same-host resize stages the new copy. */
	void (*stage_path)(const char *path, char *out, size_t len);
	/* Free space where this host puts such disks; *where names it. */
	int (*space)(const struct ferryd_conf *c, uint64_t *free_bytes, char *where,
		     size_t len);
};

extern const struct disk_ops disk_file_ops;
extern const struct disk_ops disk_lvm_ops;
const struct disk_ops *disk_ops_find(const char *name);
/* The backend claiming a libvirt disk; NULL with the reason in @why. */
const struct disk_ops *disk_ops_for(const struct domxml_disk *dd, char *why, size_t len);
bool disk_has(const struct mig_disk *d, unsigned int cap);
/* Iterate the backends: NULL past the last. */
const struct disk_ops *disk_ops_at(int i);
/* Path of the copy kept aside for revert. */
void disk_kept_path(const char *path, char *out, size_t len);
/* Virtual size of an image and its backing file ("" if none, or NULL),
 * from one qemu-img info for qcow2. */
int disk_image_info(const char *path, const char *format, uint64_t *bytes, char *backing,
		    size_t blen);
/* Virtual size of an image (qemu-img info for qcow2). */
int disk_virtual_size(const char *path, const char *format, uint64_t *bytes);
/* qcow2 backing file of @path, "" if none. */
int disk_backing_file(const char *path, char *out, size_t len);
/* The image format qemu-img finds in @path ("raw", "qcow2"). */
int disk_image_format(const char *path, char *out, size_t len);
/* SHA-256 of a whole file or device, hex. */
int disk_sha256(const char *path, char out[65]);
/* Run a program (argv, no shell); captures stderr into err.  0 or -EIO. */
int run_cmd(char *const argv[], char *err, size_t errlen);
/* The same, also capturing stdout into out. */
int run_cmd_out(char *const argv[], char *out, size_t outlen, char *err, size_t errlen);
/* Instance dirs: rename dir <-> dir_resize (idempotent), remove trees. */
int inst_dir_keep(const char *dir);
int inst_dir_restore(const char *dir);
int inst_dir_remove(const char *dir);

/* place.c: where an incoming VM's disks go, and their life here */
/* Where a backing file lives here: same place relative to instances_dir. */
int place_backing_path(const char *src_instances, const char *backing, char *out, size_t len,
		       char *err, size_t errlen);
/* -EPERM (message in @err) unless @path is one of this host's own places. */
int place_confine(const char *path, char *err, size_t errlen);
/* Choose destination paths for every disk; -EEXIST if any is taken. */
int place_paths(struct migration *m, const char *src_instances, char *err, size_t errlen);
/* Capacity and sanity, before anything is created. */
int place_precheck(struct migration *m, char *err, size_t errlen);
/* Backing files: add the indexes of those missing here to @need. */
int place_backings(struct migration *m, const char *src_instances, struct json_object *need,
		  char *err, size_t errlen);
/* The instance dir and empty disks (sparse, sized); idempotent. */
int place_create(struct migration *m, char *err, size_t errlen);
/* Where copies go until finished: the staging path, or the final one. */
const char *place_copy_path(const struct mig_disk *d);
/* Same host: move the staged disks into place (the source is kept aside). */
int place_unstage(struct migration *m, char *err, size_t errlen);
/*
 * Remove everything this record created here; idempotent.  @defined: it
 * got as far as defining the domain (a revert), else it never did (an
 * abort, which on the same host must not touch the source's domain).
 */
int place_cleanup(struct migration *m, bool defined);

#endif /* FERRY_DAEMON_STORAGE_H */
