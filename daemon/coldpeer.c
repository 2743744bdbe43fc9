// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * coldpeer.c - cold migration and resize, the destination host's side.
 *
 * Every handler is idempotent: the source repeats a request after either
 * side restarts and must get the same answer.  The destination journals
 * before it creates anything, never decides to roll back on its own before
 * "finishing" (it asks the source, dest_resume), and only ever deletes what
 * its own record says it created.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "daemon/daemon.h"

/*
 * One destination-side action at a time: a handler and reconcile never
 * work on the same record concurrently.
 */
static pthread_mutex_t dest_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* The destination record named by req's "id" (NULL: reply set). */
static struct migration *dest_lookup(struct json_object *req, struct json_object **rep)
{
	const char *id = jstr(req, "id");
	struct migration *m = NULL;

	if (id) {
		pthread_mutex_lock(&ferryd->lock);
		m = migstore_find(id);
		pthread_mutex_unlock(&ferryd->lock);
	}
	if (!m)
		*rep = rpc_error(ENOENT, "%s: no such migration on %s", id ? id : "?",
				 ferryd->conf.host);
	else if (m->role != MIG_ROLE_DEST)
		*rep = rpc_error(EINVAL, "%s: %s is not its destination", m->id, ferryd->conf.host);
	else
		return m;
	return NULL;
}

/* Where a backing file lives here: same place relative to instances_dir. */
static void dest_backing_path(const char *src_instances, const char *backing, char *out,
			      size_t len)
{
	size_t n = strlen(src_instances);

	if (!strncmp(backing, src_instances, n) && backing[n] == '/')
		snprintf(out, len, "%s%s", ferryd->conf.instances_dir, backing + n);
	else
		snprintf(out, len, "%s", backing);
}

/* Choose destination paths for every disk; -EEXIST if any is taken. */
static int dest_paths(struct migration *m, const char *src_instances, char *err, size_t errlen)
{
	int i;

	m->dst_inst_dir[0] = '\0';
	if (m->inst_dir[0]) {
		char tmp[PATH_MAX];

		snprintf(tmp, sizeof(tmp), "%s", m->inst_dir);
		snprintf(m->dst_inst_dir, sizeof(m->dst_inst_dir), "%s/%s",
			 ferryd->conf.instances_dir, basename(tmp));
		if (access(m->dst_inst_dir, F_OK) == 0) {
			snprintf(err, errlen, "%s: instance directory %s already exists",
				 ferryd->conf.host, m->dst_inst_dir);
			return -EEXIST;
		}
	}
	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];
		char tmp[PATH_MAX];

		snprintf(tmp, sizeof(tmp), "%s", d->src_path);
		if (!strcmp(d->backend, "lvm")) {
			if (!ferryd->conf.lvm_vg[0]) {
				snprintf(err, errlen, "%s: disk %s is an LVM volume but this host "
						      "has no volume group (lvm_vg in ferryd.conf)",
					 ferryd->conf.host, d->target);
				return -EOPNOTSUPP;
			}
			snprintf(d->dst_path, sizeof(d->dst_path), "/dev/%s/%s",
				 ferryd->conf.lvm_vg, basename(tmp));
		} else if (m->dst_inst_dir[0]) {
			snprintf(d->dst_path, sizeof(d->dst_path), "%s/%s", m->dst_inst_dir,
				 basename(tmp));
		} else {
			dest_backing_path(src_instances, d->src_path, d->dst_path,
					  sizeof(d->dst_path));
		}
		if (access(d->dst_path, F_OK) == 0) {
			snprintf(err, errlen, "%s: disk %s: %s already exists", ferryd->conf.host,
				 d->target, d->dst_path);
			return -EEXIST;
		}
	}
	return 0;
}

static int dest_vg_free(uint64_t *bytes)
{
	char *argv[] = { "vgs", "--noheadings", "--nosuffix", "--units", "b", "-o", "vg_free",
			 ferryd->conf.lvm_vg, NULL };
	char out[128], err[256];
	int ret;

	ret = run_cmd_out(argv, out, sizeof(out), err, sizeof(err));
	if (ret) {
		log_warn("volume group %s: %s", ferryd->conf.lvm_vg, err);
		return ret;
	}
	*bytes = strtoull(out, NULL, 10);
	return 0;
}

/* Capacity and sanity, before anything is created. */
static int dest_precheck(struct migration *m, char *err, size_t errlen)
{
	uint64_t free_mib = 0, need_file = 0, need_lvm = 0, vg_free = 0;
	enum virt_power p;
	struct statvfs sv;
	int i, ret;

	ret = virt_domain_state(ferryd->virt, m->vm, &p);
	if (ret == 0) {
		snprintf(err, errlen, "%s: a VM named %s already exists here", ferryd->conf.host,
			 m->vm);
		return -EEXIST;
	}
	ret = virt_node_free_memory_mib(ferryd->virt, &free_mib);
	if (ret) {
		snprintf(err, errlen, "%s: cannot read free memory", ferryd->conf.host);
		return ret;
	}
	if (m->new_flavor.memory_mib + ferryd->conf.reserved_host_memory_mib > free_mib) {
		snprintf(err, errlen, "%s: insufficient memory: vm %s needs %" PRIu64
				      " MiB, %" PRIu64 " MiB available (%" PRIu64 " MiB reserved)",
			 ferryd->conf.host, m->vm, m->new_flavor.memory_mib,
			 free_mib > ferryd->conf.reserved_host_memory_mib ?
				 free_mib - ferryd->conf.reserved_host_memory_mib :
				 0,
			 ferryd->conf.reserved_host_memory_mib);
		return -ENOSPC;
	}
	for (i = 0; i < m->ndisks; i++) {
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
		if (!strcmp(d->backend, "lvm"))
			need_lvm += MAX(d->size_bytes, d->new_virtual_bytes);
		else if (d->kind == MIG_DISK_DATA)
			need_file += d->alloc_bytes + (d->new_virtual_bytes - d->virtual_bytes) / 16;
	}
	if (statvfs(ferryd->conf.instances_dir, &sv) == 0 &&
	    (uint64_t)sv.f_bavail * sv.f_frsize < need_file) {
		snprintf(err, errlen, "%s: insufficient disk space in %s: need %" PRIu64
				      " bytes, %" PRIu64 " free",
			 ferryd->conf.host, ferryd->conf.instances_dir, need_file,
			 (uint64_t)sv.f_bavail * sv.f_frsize);
		return -ENOSPC;
	}
	if (need_lvm && ferryd->conf.lvm_vg[0] && !dest_vg_free(&vg_free) && vg_free < need_lvm) {
		snprintf(err, errlen, "%s: insufficient space in volume group %s: need %" PRIu64
				      " bytes, %" PRIu64 " free",
			 ferryd->conf.host, ferryd->conf.lvm_vg, need_lvm, vg_free);
		return -ENOSPC;
	}
	return 0;
}

/* Remove everything this record created here; idempotent. */
static int dest_cleanup(struct migration *m)
{
	enum virt_power p;
	int i, ret, first = 0;

	xfer_unregister_mig(m->id);
	if (m->step >= MIG_STEP_FINISHING && !virt_domain_state(ferryd->virt, m->vm, &p)) {
		/* Ours only if the destination defined it for this migration. */
		ret = virt_domain_destroy(ferryd->virt, m->vm);
		if (!ret)
			ret = virt_domain_undefine(ferryd->virt, m->vm);
		if (ret && ret != -ENOENT)
			return ret;
	}
	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];

		if (!d->dst_path[0])
			continue;
		ret = disk_ops_find(d->backend)->remove(d->dst_path, false);
		if (ret && !first)
			first = ret;
	}
	for (i = 0; i < m->ndisks; i++) {
		char here[PATH_MAX], part[PATH_MAX];

		if (!m->disks[i].backing[0])
			continue;
		dest_backing_path(m->src_instances_dir, m->disks[i].backing, here, sizeof(here));
		snprintf(part, sizeof(part), "%s.part", here);
		unlink(part);
	}
	if (m->dst_inst_dir[0]) {
		ret = inst_dir_remove(m->dst_inst_dir);
		if (ret && !first)
			first = ret;
	}
	return first;
}

static struct json_object *dest_prep_reply(const struct migration *m, struct json_object *need)
{
	struct json_object *rep = rpc_ok(), *paths = json_object_new_array();
	int i;

	for (i = 0; i < m->ndisks; i++)
		json_object_array_add(paths, json_object_new_string(m->disks[i].dst_path));
	json_object_object_add(rep, "dst_paths", paths);
	json_object_object_add(rep, "dst_inst_dir", json_object_new_string(m->dst_inst_dir));
	json_object_object_add(rep, "need_backing", need ? need : json_object_new_array());
	return rep;
}

/* Backing files: present and identical, absent (need a copy), or in conflict. */
static int dest_backings(struct migration *m, const char *src_instances, struct json_object *need,
			 char *err, size_t errlen)
{
	int i;

	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];
		char here[PATH_MAX], sum[65];

		if (!d->backing[0])
			continue;
		dest_backing_path(src_instances, d->backing, here, sizeof(here));
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
static int dest_create(struct migration *m, char *err, size_t errlen)
{
	int i, ret = 0;

	if (m->dst_inst_dir[0])
		ret = mkdir_p(m->dst_inst_dir, 0755);
	for (i = 0; !ret && i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];
		uint64_t size = d->kind == MIG_DISK_SWAP ? d->virtual_bytes : d->size_bytes;

		ret = disk_ops_find(d->backend)->create(&ferryd->conf, d->dst_path, size);
		if (ret)
			snprintf(err, errlen, "%s: create %s: %s", ferryd->conf.host, d->dst_path,
				 strerror(-ret));
	}
	for (i = 0; !ret && i < m->ndisks; i++) {
		char here[PATH_MAX], dir[PATH_MAX];

		if (!m->disks[i].backing[0])
			continue;
		dest_backing_path(m->src_instances_dir, m->disks[i].backing, here, sizeof(here));
		snprintf(dir, sizeof(dir), "%s", here);
		ret = mkdir_p(dirname(dir), 0755);
		if (ret)
			snprintf(err, errlen, "%s: %s: %s", ferryd->conf.host, dir, strerror(-ret));
	}
	return ret;
}

static struct json_object *__dest_prep(struct json_object *req)
{
	struct json_object *mo, *need = NULL;
	char err[1024] = "", src_instances[PATH_MAX] = "";
	struct migration *m, *old;
	int ret;

	if (!json_object_object_get_ex(req, "migration", &mo))
		return rpc_error(EINVAL, "prep: no migration record");
	m = mig_new();
	if (!m)
		return rpc_error(ENOMEM, "out of memory");
	if (mig_from_json(m, mo, err, sizeof(err))) {
		mig_free(m);
		return rpc_error(EINVAL, "prep: %s", err);
	}
	pthread_mutex_lock(&ferryd->lock);
	old = migstore_find(m->id);
	if (!old)
		old = migstore_active_for_vm(m->vm);
	pthread_mutex_unlock(&ferryd->lock);
	if (old && !strcmp(old->id, m->id) && old->role == MIG_ROLE_DEST &&
	    old->step == MIG_STEP_PREP) {
		/* Asked again (our reply was lost, or we restarted midway). */
		mig_free(m);
		need = json_object_new_array();
		ret = dest_backings(old, old->src_instances_dir, need, err, sizeof(err));
		if (!ret)
			ret = dest_create(old, err, sizeof(err));
		if (ret) {
			json_object_put(need);
			return rpc_error(-ret, "%s", err);
		}
		return dest_prep_reply(old, need);
	}
	if (old) {
		ret = -EBUSY;
		snprintf(err, sizeof(err), "%s: vm %s: operation already in progress (%s)",
			 ferryd->conf.host, m->vm, old->id);
		goto refuse;
	}
	m->role = MIG_ROLE_DEST;
	m->step = MIG_STEP_PREP;
	m->error[0] = '\0';
	if (jstr(req, "src_instances_dir"))
		snprintf(src_instances, sizeof(src_instances), "%s",
			 jstr(req, "src_instances_dir"));
	snprintf(m->src_instances_dir, sizeof(m->src_instances_dir), "%s", src_instances);
	need = json_object_new_array();
	ret = dest_precheck(m, err, sizeof(err));
	if (!ret)
		ret = dest_paths(m, src_instances, err, sizeof(err));
	if (!ret)
		ret = dest_backings(m, src_instances, need, err, sizeof(err));
	if (ret)
		goto refuse;
	/* Journal first: from here on we may create things. */
	pthread_mutex_lock(&ferryd->lock);
	ret = journal_save(m);
	pthread_mutex_unlock(&ferryd->lock);
	if (ret) {
		snprintf(err, sizeof(err), "%s: cannot journal: %s", ferryd->conf.host,
			 strerror(-ret));
		goto refuse;
	}
	migstore_add(m);
	mig_crash_point(m, "prep");
	ret = dest_create(m, err, sizeof(err));
	if (ret) {
		dest_cleanup(m);
		mig_set_step(m, MIG_STEP_FAILED);
		json_object_put(need);
		return rpc_error(-ret, "%s", err);
	}
	log_info("migration %s: prepared vm %s from %s", m->id, m->vm, m->src_host);
	return dest_prep_reply(m, need);
refuse:
	log_warn("migration %s: refused: %s", m->id, err);
	json_object_put(need);
	mig_free(m);
	return rpc_error(-ret, "%s", err);
}

static struct json_object *__dest_xfer_open(struct json_object *req)
{
	struct json_object *rep = NULL, *v;
	char path[PATH_MAX], hex[65], id[80];
	uint8_t token[32];
	struct migration *m;
	struct mig_disk *d;
	uint64_t size, limit, have = 0;
	bool backing;
	int disk, ret;

	m = dest_lookup(req, &rep);
	if (!m)
		return rep;
	if (m->step != MIG_STEP_PREP)
		return rpc_error(EINVAL, "%s: no transfers once %s", m->id, mig_status_name(m->step));
	if (!json_object_object_get_ex(req, "disk", &v) || !json_object_object_get_ex(req, "size",
										     NULL))
		return rpc_error(EINVAL, "xfer_open: need disk and size");
	disk = json_object_get_int(v);
	size = json_object_get_uint64(json_object_object_get(req, "size"));
	backing = json_object_get_boolean(json_object_object_get(req, "backing"));
	if (disk < 0 || disk >= m->ndisks)
		return rpc_error(EINVAL, "%s: no disk %d", m->id, disk);
	d = &m->disks[disk];
	if (backing) {
		if (!d->backing[0])
			return rpc_error(EINVAL, "%s: disk %s has no backing file", m->id,
					 d->target);
		char here[PATH_MAX];

		dest_backing_path(jstr(req, "src_instances_dir") ?: "", d->backing, here,
				  sizeof(here));
		if (access(here, F_OK) == 0)
			return rpc_error(EEXIST, "%s: backing file %s already present", m->id,
					 here);
		/* Into <file>.part; finish checks it and renames it into place. */
		snprintf(path, sizeof(path), "%s.part", here);
		snprintf(id, sizeof(id), "%s-%s-backing", m->id, d->target);
		ret = disk_file_ops.create(&ferryd->conf, path, size);
		if (ret)
			return rpc_error(-ret, "%s: %s: %s", ferryd->conf.host, path,
					 strerror(-ret));
	} else {
		if (d->kind != MIG_DISK_DATA)
			return rpc_error(EINVAL, "%s: disk %s is not copied", m->id, d->target);
		snprintf(path, sizeof(path), "%s", d->dst_path);
		snprintf(id, sizeof(id), "%s", jstr(req, "xfer_id") ?: d->target);
		ret = disk_ops_find(d->backend)->size(path, &have);
		if (ret)
			return rpc_error(-ret, "%s: %s: %s", ferryd->conf.host, path,
					 strerror(-ret));
		if (have < size) {
			/* The source grew (qcow2 allocating while the VM runs). */
			if (!strcmp(d->backend, "lvm"))
				return rpc_error(ENOSPC, "%s: %s is smaller than the source",
						 ferryd->conf.host, path);
			if (truncate(path, (off_t)size) < 0)
				return rpc_error(errno, "%s: grow %s: %s", ferryd->conf.host, path,
						 strerror(errno));
		}
	}
	/*
	 * The bound on what the sender may declare: a qcow2 container keeps
	 * growing while the VM runs, up to its virtual size plus metadata.
	 */
	limit = size;
	if (!backing && !strcmp(d->format, "qcow2"))
		limit = MAX(size, d->virtual_bytes + d->virtual_bytes / 8 + 64 * MIB);
	ret = xfer_register(m->id, id, path, limit, !strcmp(d->backend, "lvm") && !backing, token);
	if (ret)
		return rpc_error(-ret, "%s: cannot register transfer: %s", ferryd->conf.host,
				 strerror(-ret));
	rep = rpc_ok();
	hex_encode(token, sizeof(token), hex);
	json_object_object_add(rep, "token", json_object_new_string(hex));
	json_object_object_add(rep, "path", json_object_new_string(path));
	json_object_object_add(rep, "port", json_object_new_int(ferryd->conf.mover_listen.port));
	return rep;
}

/* Define and start the VM here; idempotent (reconcile runs it again). */
static int dest_do_finish(struct migration *m, char *err, size_t errlen)
{
	int i, ret;

	xfer_unregister_mig(m->id);
	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];
		char here[PATH_MAX], part[PATH_MAX], sum[65];

		if (!d->backing[0])
			continue;
		dest_backing_path(m->src_instances_dir, d->backing, here, sizeof(here));
		snprintf(part, sizeof(part), "%s.part", here);
		if (access(here, F_OK) == 0 || access(part, F_OK) != 0)
			continue;
		if (disk_sha256(part, sum) || strcmp(sum, d->backing_sha256)) {
			snprintf(err, errlen, "%s: backing file %s: copy does not match the source",
				 ferryd->conf.host, here);
			return -EIO;
		}
		if (rename(part, here) < 0 || fsync_dir_of(here)) {
			snprintf(err, errlen, "%s: %s: %s", ferryd->conf.host, here,
				 strerror(errno));
			return -errno;
		}
	}
	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];

		if (d->new_virtual_bytes <= d->virtual_bytes)
			continue;
		ret = disk_ops_find(d->backend)->grow(d->dst_path, d->format,
						      d->new_virtual_bytes);
		if (ret) {
			snprintf(err, errlen, "%s: grow %s to %" PRIu64 " bytes failed",
				 ferryd->conf.host, d->dst_path, d->new_virtual_bytes);
			return ret;
		}
	}
	mig_crash_point(m, "finish-grown");
	ret = virt_domain_define(ferryd->virt, m->dst_xml);
	if (ret) {
		snprintf(err, errlen, "%s: cannot define vm %s", ferryd->conf.host, m->vm);
		return ret;
	}
	mig_crash_point(m, "finish-defined");
	if (m->was_running) {
		ret = virt_domain_start(ferryd->virt, m->vm);
		if (ret) {
			snprintf(err, errlen, "%s: cannot start vm %s", ferryd->conf.host, m->vm);
			return ret;
		}
	}
	pthread_mutex_lock(&ferryd->lock);
	m->m.t_finished_ms = wall_ms();
	pthread_mutex_unlock(&ferryd->lock);
	return mig_set_step(m, MIG_STEP_FINISHED);
}

static struct json_object *__dest_finish(struct json_object *req)
{
	struct json_object *rep = NULL, *mo;
	struct migration *m, tmp;
	char err[1024] = "";
	int ret;

	m = dest_lookup(req, &rep);
	if (!m)
		return rep;
	if (m->step == MIG_STEP_FINISHED)
		return rpc_ok();
	if (m->step != MIG_STEP_PREP && m->step != MIG_STEP_FINISHING)
		return rpc_error(EINVAL, "%s: cannot finish: %s", m->id, mig_status_name(m->step));
	memset(&tmp, 0, sizeof(tmp));
	if (!json_object_object_get_ex(req, "migration", &mo) ||
	    mig_from_json(&tmp, mo, err, sizeof(err)) || !tmp.dst_xml) {
		free(tmp.src_xml);
		free(tmp.dst_xml);
		return rpc_error(EINVAL, "finish: bad migration record %s", err);
	}
	pthread_mutex_lock(&ferryd->lock);
	free(m->dst_xml);
	m->dst_xml = tmp.dst_xml;
	m->was_running = tmp.was_running;
	m->new_flavor = tmp.new_flavor;
	pthread_mutex_unlock(&ferryd->lock);
	free(tmp.src_xml);
	ret = mig_set_step(m, MIG_STEP_FINISHING);
	if (!ret)
		ret = dest_do_finish(m, err, sizeof(err));
	if (ret)
		return rpc_error(-ret, "%s", err[0] ? err : strerror(-ret));
	return rpc_ok();
}

static struct json_object *__dest_confirm(struct json_object *req)
{
	struct json_object *rep = NULL;
	struct migration *m;

	m = dest_lookup(req, &rep);
	if (!m)
		return rep;
	if (m->step == MIG_STEP_CONFIRMED)
		return rpc_ok();
	if (m->step != MIG_STEP_FINISHED)
		return rpc_error(EINVAL, "%s: cannot confirm: %s", m->id, mig_status_name(m->step));
	if (mig_set_step(m, MIG_STEP_CONFIRMED))
		return rpc_error(EIO, "%s: cannot journal", m->id);
	return rpc_ok();
}

/* Tear down what we made, through @via (journaled) to @done. */
static int dest_teardown(struct migration *m, enum mig_step via, enum mig_step done)
{
	int ret;

	if (m->step != via) {
		ret = mig_set_step(m, via);
		if (ret)
			return ret;
	}
	ret = dest_cleanup(m);
	if (ret)
		return ret;
	return mig_set_step(m, done);
}

static struct json_object *__dest_revert(struct json_object *req)
{
	struct json_object *rep = NULL;
	struct migration *m;
	int ret;

	m = dest_lookup(req, &rep);
	if (!m)
		return rep;
	if (m->step == MIG_STEP_REVERTED)
		return rpc_ok();
	if (m->step != MIG_STEP_FINISHED && m->step != MIG_STEP_REVERTING)
		return rpc_error(EINVAL, "%s: cannot revert: %s", m->id, mig_status_name(m->step));
	ret = dest_teardown(m, MIG_STEP_REVERTING, MIG_STEP_REVERTED);
	if (ret)
		return rpc_error(-ret, "%s: revert of vm %s failed: %s", ferryd->conf.host, m->vm,
				 strerror(-ret));
	return rpc_ok();
}

static struct json_object *__dest_abort(struct json_object *req)
{
	struct json_object *rep = NULL;
	struct migration *m;
	int ret;

	m = dest_lookup(req, &rep);
	if (!m) {
		json_object_put(rep);
		return rpc_ok(); /* never prepared: nothing here */
	}
	if (m->step == MIG_STEP_FAILED)
		return rpc_ok();
	if (m->step != MIG_STEP_PREP && m->step != MIG_STEP_ROLLBACK)
		return rpc_error(EINVAL, "%s: cannot abort: %s", m->id, mig_status_name(m->step));
	ret = dest_teardown(m, MIG_STEP_ROLLBACK, MIG_STEP_FAILED);
	if (ret)
		return rpc_error(-ret, "%s: abort of vm %s incomplete: %s", ferryd->conf.host,
				 m->vm, strerror(-ret));
	return rpc_ok();
}

struct json_object *dest_status(struct json_object *req)
{
	const char *id = jstr(req, "id");
	struct json_object *rep;
	struct migration *m;

	pthread_mutex_lock(&ferryd->lock);
	m = id ? migstore_find(id) : NULL;
	if (!m) {
		pthread_mutex_unlock(&ferryd->lock);
		return rpc_error(ENOENT, "%s: no such migration", id ? id : "?");
	}
	rep = rpc_ok();
	json_object_object_add(rep, "step", json_object_new_string(mig_step_name(m->step)));
	json_object_object_add(rep, "status", json_object_new_string(mig_status_name(m->step)));
	pthread_mutex_unlock(&ferryd->lock);
	return rep;
}

/*
 * After a restart, or periodically for a record waiting on the source:
 * finish or tear down what the journal says was under way, and otherwise
 * ask the source (the authority) what became of the migration.
 */
static void __dest_resume(struct migration *m)
{
	struct json_object *req, *rep;
	enum mig_step src_step;
	char err[1024];
	const char *s;

	switch (m->step) {
	case MIG_STEP_FINISHING:
		if (dest_do_finish(m, err, sizeof(err)))
			log_err("migration %s: finish: %s (will retry)", m->id, err);
		return;
	case MIG_STEP_REVERTING:
		dest_teardown(m, MIG_STEP_REVERTING, MIG_STEP_REVERTED);
		return;
	case MIG_STEP_ROLLBACK:
		dest_teardown(m, MIG_STEP_ROLLBACK, MIG_STEP_FAILED);
		return;
	case MIG_STEP_PREP:
	case MIG_STEP_FINISHED:
		break;
	default:
		return;
	}
	req = json_object_new_object();
	json_object_object_add(req, "op", json_object_new_string("status"));
	json_object_object_add(req, "id", json_object_new_string(m->id));
	rep = peer_call(m->src_host, req, 5000, err, sizeof(err));
	json_object_put(req);
	if (!rep) {
		/* The source has no record: it never got past journaling "new". */
		if (errno == ENOENT && m->step == MIG_STEP_PREP) {
			log_warn("migration %s: unknown to %s; removing what was prepared", m->id,
				 m->src_host);
			dest_teardown(m, MIG_STEP_ROLLBACK, MIG_STEP_FAILED);
		}
		return;
	}
	s = json_object_get_string(json_object_object_get(rep, "step"));
	if (s && !mig_step_parse(s, &src_step)) {
		if (src_step == MIG_STEP_FAILED && m->step == MIG_STEP_PREP)
			dest_teardown(m, MIG_STEP_ROLLBACK, MIG_STEP_FAILED);
		else if (src_step == MIG_STEP_CONFIRMED && m->step == MIG_STEP_FINISHED)
			mig_set_step(m, MIG_STEP_CONFIRMED);
		else if ((src_step == MIG_STEP_REVERTED || src_step == MIG_STEP_REVERT_SOURCE) &&
			 m->step == MIG_STEP_FINISHED)
			dest_teardown(m, MIG_STEP_REVERTING, MIG_STEP_REVERTED);
	}
	json_object_put(rep);
}

struct json_object *dest_prep(struct json_object *req)
{
	struct json_object *rep;

	pthread_mutex_lock(&dest_lock);
	rep = __dest_prep(req);
	pthread_mutex_unlock(&dest_lock);
	return rep;
}

struct json_object *dest_xfer_open(struct json_object *req)
{
	struct json_object *rep;

	pthread_mutex_lock(&dest_lock);
	rep = __dest_xfer_open(req);
	pthread_mutex_unlock(&dest_lock);
	return rep;
}

struct json_object *dest_finish(struct json_object *req)
{
	struct json_object *rep;

	pthread_mutex_lock(&dest_lock);
	rep = __dest_finish(req);
	pthread_mutex_unlock(&dest_lock);
	return rep;
}

struct json_object *dest_confirm(struct json_object *req)
{
	struct json_object *rep;

	pthread_mutex_lock(&dest_lock);
	rep = __dest_confirm(req);
	pthread_mutex_unlock(&dest_lock);
	return rep;
}

struct json_object *dest_revert(struct json_object *req)
{
	struct json_object *rep;

	pthread_mutex_lock(&dest_lock);
	rep = __dest_revert(req);
	pthread_mutex_unlock(&dest_lock);
	return rep;
}

struct json_object *dest_abort(struct json_object *req)
{
	struct json_object *rep;

	pthread_mutex_lock(&dest_lock);
	rep = __dest_abort(req);
	pthread_mutex_unlock(&dest_lock);
	return rep;
}

void dest_resume(struct migration *m)
{
	pthread_mutex_lock(&dest_lock);
	__dest_resume(m);
	pthread_mutex_unlock(&dest_lock);
}
