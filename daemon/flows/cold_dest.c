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
		m = migstore_find_role(id, MIG_ROLE_DEST);
		if (!m)
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
	old = migstore_find_role(m->id, MIG_ROLE_DEST);
	if (!old)
		old = migstore_active_for_vm(m->vm);
	/* Resizing onto the same host: the source's own record is not a rival. */
	if (old && old->role == MIG_ROLE_SOURCE && !strcmp(old->id, m->id))
		old = NULL;
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
		dest_cleanup(m, false);
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
		snprintf(path, sizeof(path), "%s", dest_copy_path(d));
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
	/* Same host: the staged disks take the place the source left. */
	ret = dest_unstage(m, err, errlen);
	if (ret)
		return ret;
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
	/* Only a revert follows a finish: an abort never defined the domain. */
	ret = dest_cleanup(m, via == MIG_STEP_REVERTING);
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
