// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * place.c - the destination's storage for an incoming VM:
 * where each disk goes, whether it fits (memory, disk space, volume group),
 * which backing files it lacks, creating the instance dir and empty disks,
 * and removing exactly what its record says it created.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "daemon/copy/copy.h"
#include "daemon/storage/storage.h"

/* Absolute, and no empty, "." or ".." component. */
static bool place_path_plain(const char *path)
{
	const char *p = path;

	if (p[0] != '/')
		return false;
	while (*p) {
		const char *c = p + 1, *end = strchr(c, '/');
		size_t n = end ? (size_t)(end - c) : strlen(c);

		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		p = c + n;
	}
	return true;
}

/*
 * Every path a peer's record makes us create, write or remove must be one
 * of this host's own places: inside instances_dir (through no symlinked
 * directory), or an LV of its volume group.  A cluster key is not a licence
 * to write anywhere as root (issue 9, item 10).
 */
int place_confine(const char *path, char *err, size_t errlen)
{
	const struct ferryd_conf *c = &ferryd->conf;
	char top[PATH_MAX], dir[PATH_MAX], real[PATH_MAX], *slash;
	size_t n = strlen(c->instances_dir);

	if (!place_path_plain(path))
		goto refuse;
	if (c->lvm_vg[0] && !strncmp(path, "/dev/", 5) && !strncmp(path + 5, c->lvm_vg,
								     strlen(c->lvm_vg)) &&
	    path[5 + strlen(c->lvm_vg)] == '/' && !strchr(path + 6 + strlen(c->lvm_vg), '/') &&
	    path[6 + strlen(c->lvm_vg)] != '-')
		return 0;
	if (strncmp(path, c->instances_dir, n) || path[n] != '/' || !realpath(c->instances_dir, top))
		goto refuse;
	/* The deepest existing parent must resolve inside too. */
	snprintf(dir, sizeof(dir), "%s", path);
	while ((slash = strrchr(dir, '/')) && slash != dir) {
		*slash = '\0';
		if (realpath(dir, real)) {
			if (strncmp(real, top, strlen(top)) ||
			    (real[strlen(top)] && real[strlen(top)] != '/'))
				goto refuse;
			return 0;
		}
	}
refuse:
	snprintf(err, errlen, "%s: %s is outside this host's instances dir %s%s%s", c->host, path,
		 c->instances_dir, c->lvm_vg[0] ? " and volume group " : "", c->lvm_vg);
	return -EPERM;
}

/* Where a backing file lives here: the same place relative to instances_dir. */
int place_backing_path(const char *src_instances, const char *backing, char *out, size_t len,
		       char *err, size_t errlen)
{
	size_t n = strlen(src_instances);

	if (n && !strncmp(backing, src_instances, n) && backing[n] == '/')
		snprintf(out, len, "%s%s", ferryd->conf.instances_dir, backing + n);
	else
		snprintf(out, len, "%s", backing);
	return place_confine(out, err, errlen);
}

/* Choose destination paths for every disk; -EEXIST if any is taken. */
/* Same host: the new disks are staged beside the source's until finished. */
static int dest_paths_same_host(struct migration *m, char *err, size_t errlen)
{
	int i;

	if (m->inst_dir[0]) {
		snprintf(m->dst_inst_dir, sizeof(m->dst_inst_dir), "%s", m->inst_dir);
		snprintf(m->stage_inst_dir, sizeof(m->stage_inst_dir), "%s.ferry-new", m->inst_dir);
		if (access(m->stage_inst_dir, F_OK) == 0) {
			snprintf(err, errlen, "%s: %s already exists", ferryd->conf.host,
				 m->stage_inst_dir);
			return -EEXIST;
		}
	}
	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];
		char tmp[PATH_MAX];

		snprintf(d->dst_path, sizeof(d->dst_path), "%s", d->src_path);
		snprintf(tmp, sizeof(tmp), "%s", d->src_path);
		if (d->in_inst_dir)
			snprintf(d->stage_path, sizeof(d->stage_path), "%s/%s", m->stage_inst_dir,
				 basename(tmp));
		else
			disk_ops_find(d->backend)->stage_path(d->src_path, d->stage_path,
							     sizeof(d->stage_path));
		if (access(d->stage_path, F_OK) == 0) {
			snprintf(err, errlen, "%s: disk %s: %s already exists", ferryd->conf.host,
				 d->target, d->stage_path);
			return -EEXIST;
		}
	}
	return 0;
}

int place_paths(struct migration *m, const char *src_instances, char *err, size_t errlen)
{
	int i, ret;

	m->dst_inst_dir[0] = '\0';
	m->stage_inst_dir[0] = '\0';
	if (m->same_host)
		return dest_paths_same_host(m, err, errlen);
	if (m->inst_dir[0]) {
		char tmp[PATH_MAX];

		snprintf(tmp, sizeof(tmp), "%s", m->inst_dir);
		snprintf(m->dst_inst_dir, sizeof(m->dst_inst_dir), "%s/%s",
			 ferryd->conf.instances_dir, basename(tmp));
		ret = place_confine(m->dst_inst_dir, err, errlen);
		if (ret)
			return ret;
		if (access(m->dst_inst_dir, F_OK) == 0) {
			snprintf(err, errlen, "%s: instance directory %s already exists",
				 ferryd->conf.host, m->dst_inst_dir);
			return -EEXIST;
		}
	}
	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];
		char tmp[PATH_MAX];

		const struct disk_ops *ops = disk_ops_find(d->backend);

		d->stage_path[0] = '\0';
		snprintf(tmp, sizeof(tmp), "%s", d->src_path);
		if (ops->dest_path) {
			/* The backend decides (a volume group). */
			ret = ops->dest_path(&ferryd->conf, basename(tmp), d->dst_path,
					     sizeof(d->dst_path), err, errlen);
			if (ret)
				return ret;
		} else if (m->dst_inst_dir[0]) {
			snprintf(d->dst_path, sizeof(d->dst_path), "%s/%s", m->dst_inst_dir,
				 basename(tmp));
		} else {
			ret = place_backing_path(src_instances, d->src_path, d->dst_path,
						 sizeof(d->dst_path), err, errlen);
			if (ret)
				return ret;
		}
		ret = place_confine(d->dst_path, err, errlen);
		if (ret)
			return ret;
		if (access(d->dst_path, F_OK) == 0) {
			snprintf(err, errlen, "%s: disk %s: %s already exists", ferryd->conf.host,
				 d->target, d->dst_path);
			return -EEXIST;
		}
	}
	return 0;
}

const char *place_copy_path(const struct mig_disk *d)
{
	return d->stage_path[0] ? d->stage_path : d->dst_path;
}

int place_unstage(struct migration *m, char *err, size_t errlen)
{
	int i, ret;

	if (!m->same_host)
		return 0;
	if (m->stage_inst_dir[0] && access(m->stage_inst_dir, F_OK) == 0) {
		if (access(m->dst_inst_dir, F_OK) == 0) {
			snprintf(err, errlen, "%s: %s is still there; the source was not kept aside",
				 ferryd->conf.host, m->dst_inst_dir);
			return -EEXIST;
		}
		if (rename(m->stage_inst_dir, m->dst_inst_dir) < 0 ||
		    fsync_dir_of(m->dst_inst_dir)) {
			snprintf(err, errlen, "%s: rename %s: %s", ferryd->conf.host,
				 m->stage_inst_dir, strerror(errno));
			return -errno;
		}
	}
	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];

		if (!d->stage_path[0] || (d->in_inst_dir && m->stage_inst_dir[0]))
			continue; /* none, or moved with the dir */
		ret = disk_ops_find(d->backend)->rename(d->stage_path, d->dst_path);
		if (ret) {
			snprintf(err, errlen, "%s: rename %s: %s", ferryd->conf.host, d->stage_path,
				 strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* Capacity and sanity, before anything is created. */
int place_precheck(struct migration *m, char *err, size_t errlen)
{
	uint64_t free_mib = 0, need_mib, need[8] = { 0 };
	const struct disk_ops *ops;
	enum virt_power p;
	int i, j, ret;

	ret = virt_domain_state(ferryd->virt, m->vm, &p);
	if (ret == 0 && !m->same_host) {
		snprintf(err, errlen, "%s: a VM named %s already exists here", ferryd->conf.host,
			 m->vm);
		return -EEXIST;
	}
	ret = virt_node_free_memory_mib(ferryd->virt, &free_mib);
	if (ret) {
		snprintf(err, errlen, "%s: cannot read free memory", ferryd->conf.host);
		return ret;
	}
	/* On the same host the VM's current memory is freed at power-off. */
	need_mib = m->new_flavor.memory_mib;
	if (m->same_host)
		need_mib = need_mib > m->old_flavor.memory_mib ?
				   need_mib - m->old_flavor.memory_mib :
				   0;
	if (need_mib + ferryd->conf.reserved_host_memory_mib > free_mib) {
		snprintf(err, errlen, "%s: insufficient memory: vm %s needs %" PRIu64
				      " MiB, %" PRIu64 " MiB available (%" PRIu64 " MiB reserved)",
			 ferryd->conf.host, m->vm, m->new_flavor.memory_mib,
			 free_mib > ferryd->conf.reserved_host_memory_mib ?
				 free_mib - ferryd->conf.reserved_host_memory_mib :
				 0,
			 ferryd->conf.reserved_host_memory_mib);
		return -ENOSPC;
	}
	/* A live migration on shared storage places no disk here. */
	for (i = 0; i < m->ndisks && (m->type != MIG_TYPE_LIVE || m->live.block); i++) {
		struct mig_disk *d = &m->disks[i];

		if (strcmp(d->format, "raw") && strcmp(d->format, "qcow2")) {
			snprintf(err, errlen, "%s: disk %s: unsupported format %s",
				 ferryd->conf.host, d->target, d->format);
			return -EOPNOTSUPP;
		}
		if (!disk_ops_find(d->backend)) {
			snprintf(err, errlen, "%s: disk %s: unknown backend %s", ferryd->conf.host,
				 d->target, d->backend);
			return -EOPNOTSUPP;
		}
		if (d->new_virtual_bytes < d->virtual_bytes) {
			snprintf(err, errlen, "vm %s: unable to resize disk down (%s)", m->vm,
				 d->target);
			return -EINVAL;
		}
		/* A sparse disk needs what it holds (and a share of its growth). */
		for (j = 0; (ops = disk_ops_at(j)) && j < (int)ARRAY_SIZE(need); j++) {
			if (strcmp(ops->name, d->backend))
				continue;
			if (!(ops->caps & DISK_CAP_SPARSE))
				need[j] += MAX(d->size_bytes, d->new_virtual_bytes);
			else if (d->kind == MIG_DISK_DATA)
				need[j] += d->alloc_bytes + (d->new_virtual_bytes - d->virtual_bytes) / 16;
		}
	}
	for (j = 0; (ops = disk_ops_at(j)) && j < (int)ARRAY_SIZE(need); j++) {
		char where[PATH_MAX + 32];
		uint64_t avail;

		if (!need[j] || ops->space(&ferryd->conf, &avail, where, sizeof(where)))
			continue;
		if (avail < need[j]) {
			snprintf(err, errlen, "%s: insufficient %s: need %" PRIu64 " bytes, %" PRIu64
					      " free",
				 ferryd->conf.host, where, need[j], avail);
			return -ENOSPC;
		}
	}
	return 0;
}

/* Remove everything this record created here; idempotent. */
int place_cleanup(struct migration *m, bool defined)
{
	enum virt_power p;
	int i, ret, first = 0;

	xfer_unregister_mig(m->id);
	if (defined && !virt_domain_state(ferryd->virt, m->vm, &p)) {
		ret = virt_domain_destroy(ferryd->virt, m->vm);
		if (!ret)
			ret = virt_domain_undefine(ferryd->virt, m->vm);
		if (ret && ret != -ENOENT)
			return ret;
	}
	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];
		const struct disk_ops *ops = disk_ops_find(d->backend);

		if (d->stage_path[0]) {
			ret = ops->remove(d->stage_path, false);
			if (ret && !first)
				first = ret;
		}
		/* On the same host the final path is the source's until finished. */
		if (!d->dst_path[0] || (m->same_host && !defined))
			continue;
		ret = ops->remove(d->dst_path, false);
		if (ret && !first)
			first = ret;
	}
	for (i = 0; i < m->ndisks; i++) {
		char here[PATH_MAX], part[PATH_MAX];

		if (!m->disks[i].backing[0])
			continue;
		if (place_backing_path(m->src_instances_dir, m->disks[i].backing, here,
				       sizeof(here), NULL, 0))
			continue;
		snprintf(part, sizeof(part), "%s.part", here);
		unlink(part);
	}
	if (m->stage_inst_dir[0]) {
		ret = inst_dir_remove(m->stage_inst_dir);
		if (ret && !first)
			first = ret;
	}
	if (m->dst_inst_dir[0] && (!m->same_host || defined)) {
		ret = inst_dir_remove(m->dst_inst_dir);
		if (ret && !first)
			first = ret;
	}
	return first;
}

/* Backing files: present and identical, absent (need a copy), or in conflict. */
int place_backings(struct migration *m, const char *src_instances, struct json_object *need,
			 char *err, size_t errlen)
{
	int i, ret;

	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];
		char here[PATH_MAX], sum[65];

		if (!d->backing[0])
			continue;
		ret = place_backing_path(src_instances, d->backing, here, sizeof(here), err,
					 errlen);
		if (ret)
			return ret;
		if (access(here, F_OK) != 0) {
			json_object_array_add(need, json_object_new_int(i));
			continue;
		}
		if (disk_sha256(here, sum) || strcmp(sum, d->backing_sha256)) {
			snprintf(err, errlen, "%s: backing file %s exists but differs from the "
					      "source's",
				 ferryd->conf.host, here);
			return -EEXIST;
		}
	}
	return 0;
}

/* The instance dir and empty disks (sparse, sized); idempotent. */
int place_create(struct migration *m, char *err, size_t errlen)
{
	int i, ret = 0;

	if (m->stage_inst_dir[0])
		ret = mkdir_p(m->stage_inst_dir, 0755);
	else if (m->dst_inst_dir[0])
		ret = mkdir_p(m->dst_inst_dir, 0755);
	for (i = 0; !ret && i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];
		uint64_t size = d->kind == MIG_DISK_SWAP ? d->virtual_bytes : d->size_bytes;

		ret = disk_ops_find(d->backend)->create(&ferryd->conf, place_copy_path(d), size);
		if (ret)
			snprintf(err, errlen, "%s: create %s: %s", ferryd->conf.host,
				 place_copy_path(d), strerror(-ret));
	}
	for (i = 0; !ret && i < m->ndisks; i++) {
		char here[PATH_MAX], dir[PATH_MAX];

		if (!m->disks[i].backing[0])
			continue;
		ret = place_backing_path(m->src_instances_dir, m->disks[i].backing, here,
					 sizeof(here), err, errlen);
		if (ret)
			break;
		snprintf(dir, sizeof(dir), "%s", here);
		ret = mkdir_p(dirname(dir), 0755);
		if (ret)
			snprintf(err, errlen, "%s: %s: %s", ferryd->conf.host, dir, strerror(-ret));
	}
	return ret;
}

