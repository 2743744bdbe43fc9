// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * cold_dest.c - cold migration and resize, the destination host's side:
 * a participant, whose handlers are the flow's peer requests (cold.*).
 *
 * Every handler is idempotent: the coordinator repeats a request after
 * either side restarts and must get the same answer.  The destination
 * journals before it creates anything, never decides to roll back on its
 * own before "finishing" (it asks the coordinator, cold_dest_resume), and
 * only ever deletes what its own record says it created.  A handler holds
 * its record for the request (engine_hold): records of other VMs proceed
 * at the same time.
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

#include "daemon/flows/flows.h"

#define jstr rpc_str

static const struct dest_steps dest_flows[] = {
	{ &cold_flow, COLD_PREP, COLD_FAILED },
	{ &live_flow, LIVE_PREP, LIVE_FAILED },
};

const struct dest_steps *cold_dest_steps(const struct migration *m)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(dest_flows); i++)
		if (dest_flows[i].flow == m->flow)
			return &dest_flows[i];
	return NULL;
}

/* A live migration on shared storage: the disks stay where they are. */
static bool dest_shared(const struct migration *m)
{
	return m->type == MIG_TYPE_LIVE && !m->live.block;
}

/*
 * The destination record named by req's "id", of flow @f (NULL: any flow
 * that prepares here), held for this request (NULL: reply set; EAGAIN
 * while another thread works on it).
 */
struct migration *cold_dest_hold(struct json_object *req, const struct flow *f,
				 struct json_object **rep)
{
	const char *id = jstr(req, "id");
	struct migration *m = NULL;

	if (id) {
		m = store_find(id, MIG_ROLE_DEST);
		if (!m)
			m = store_find_any(id);
	}
	if (!m)
		*rep = rpc_error(ENOENT, "%s: no such migration on %s", id ? id : "?",
				 ferryd->conf.host);
	else if (m->role != MIG_ROLE_DEST || !cold_dest_steps(m) || (f && m->flow != f))
		*rep = rpc_error(EINVAL, "%s: %s is not its destination%s%s", m->id,
				 ferryd->conf.host, f ? " in a " : "", f ? f->name : "");
	else if (engine_hold(m))
		*rep = rpc_error(EAGAIN, "%s: %s is busy with it; try again", m->id,
				 ferryd->conf.host);
	else
		return m;
	return NULL;
}

/* Release the record, then reply. */
struct json_object *cold_dest_release(struct migration *m, struct json_object *rep)
{
	engine_unhold(m);
	return rep;
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

/* Asked again (our reply was lost, or we restarted midway): same answer. */
static struct json_object *dest_prep_again(struct migration *old)
{
	struct json_object *need = json_object_new_array();
	char err[1024] = "";
	int ret;

	if (engine_hold(old)) {
		json_object_put(need);
		return rpc_error(EAGAIN, "%s: %s is busy with it; try again", old->id,
				 ferryd->conf.host);
	}
	ret = place_backings(old, old->src_instances_dir, need, err, sizeof(err));
	if (!ret)
		ret = place_create(old, err, sizeof(err));
	if (ret) {
		json_object_put(need);
		return cold_dest_release(old, rpc_error(-ret, "%s", err));
	}
	return cold_dest_release(old, dest_prep_reply(old, need));
}

struct json_object *cold_dest_prep(const struct rpc_ctx *ctx, struct json_object *req)
{
	struct json_object *mo, *need = NULL;
	char err[1024] = "", rival[256];
	struct migration *m, *old;
	int ret;

	if (!json_object_object_get_ex(req, "migration", &mo))
		return rpc_error(EINVAL, "prep: no migration record");
	m = mig_new();
	if (!m)
		return rpc_error(ENOMEM, "out of memory");
	ret = mig_from_json(m, mo, err, sizeof(err));
	if (ret || !cold_dest_steps(m)) {
		mig_free(m);
		return rpc_error(EINVAL, "prep: %s",
				 err[0] ? err : "not an operation that prepares a destination");
	}
	old = store_find(m->id, MIG_ROLE_DEST);
	if (old && old->step == cold_dest_steps(old)->prep && !old->undoing) {
		mig_free(m);
		return dest_prep_again(old);
	}
	if (old) {
		snprintf(err, sizeof(err), "%s: %s is already %s here", ferryd->conf.host, m->id,
			 mig_status_name(old));
		mig_free(m);
		return rpc_error(EEXIST, "%s", err);
	}
	/*
	 * Staying on its host is the host's own request (peer_call to itself):
	 * from anyone else its paths are the sender's, not ours.
	 */
	if (m->same_host && strcmp(ctx->peer ?: "", ferryd->conf.host)) {
		snprintf(err, sizeof(err), "%s: a resize onto its own host can only come from %s",
			 ferryd->conf.host, ferryd->conf.host);
		mig_free(m);
		return rpc_error(EPERM, "%s", err);
	}
	/* A participant: the sender coordinates. */
	m->role = MIG_ROLE_DEST;
	m->coordinating = false;
	m->step = cold_dest_steps(m)->prep;
	m->undoing = false;
	m->error[0] = '\0';
	snprintf(m->src_instances_dir, sizeof(m->src_instances_dir), "%s",
		 jstr(req, "src_instances_dir") ?: "");
	need = json_object_new_array();
	if (dest_shared(m)) {
		/* Nothing is placed, so nothing can ever be removed here. */
		m->dst_inst_dir[0] = '\0';
		for (ret = 0; ret < m->ndisks; ret++) {
			m->disks[ret].dst_path[0] = '\0';
			m->disks[ret].stage_path[0] = '\0';
		}
		ret = place_precheck(m, err, sizeof(err));
	} else {
		ret = place_precheck(m, err, sizeof(err));
		if (!ret)
			ret = place_paths(m, m->src_instances_dir, err, sizeof(err));
		if (!ret)
			ret = place_backings(m, m->src_instances_dir, need, err, sizeof(err));
	}
	if (ret)
		goto refuse;
	/* Claim the VM here (atomically), journal, and only then create. */
	m->busy = true;
	ret = store_claim(m, rival, sizeof(rival));
	if (ret) {
		snprintf(err, sizeof(err), "%s: vm %s: operation already in progress (%s)",
			 ferryd->conf.host, m->vm, rival);
		goto refuse;
	}
	ret = journal_save(m);
	if (ret) {
		snprintf(err, sizeof(err), "%s: cannot journal: %s", ferryd->conf.host,
			 strerror(-ret));
		mig_lock(m);
		m->step = cold_dest_steps(m)->failed;
		mig_unlock(m);
		json_object_put(need);
		return cold_dest_release(m, rpc_error(-ret, "%s", err));
	}
	engine_crash_point(m, "prep");
	ret = dest_shared(m) ? 0 : place_create(m, err, sizeof(err));
	if (ret) {
		place_cleanup(m, false);
		engine_step_set(m, cold_dest_steps(m)->failed);
		json_object_put(need);
		return cold_dest_release(m, rpc_error(-ret, "%s", err));
	}
	log_info("migration %s: prepared vm %s from %s", m->id, m->vm, m->src_host);
	return cold_dest_release(m, dest_prep_reply(m, need));
refuse:
	log_warn("migration %s: refused: %s", m->id, err);
	json_object_put(need);
	mig_free(m);
	return rpc_error(-ret, "%s", err);
}

static struct json_object *__dest_xfer_open(struct migration *m, struct json_object *req)
{
	struct json_object *rep = NULL, *v;
	char path[PATH_MAX], hex[65], id[80];
	uint8_t token[32];
	struct mig_disk *d;
	uint64_t size, limit, have = 0;
	bool backing;
	int disk, ret;

	if (m->step != cold_dest_steps(m)->prep)
		return rpc_error(EINVAL, "%s: no transfers once %s", m->id, mig_status_name(m));
	if (dest_shared(m))
		return rpc_error(EINVAL, "%s: shared storage: nothing to copy", m->id);
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

		char why[PATH_MAX + 128];

		if (place_backing_path(jstr(req, "src_instances_dir") ?: "", d->backing, here,
				       sizeof(here), why, sizeof(why)))
			return rpc_error(EPERM, "%s: backing file: %s", m->id, why);
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
		snprintf(path, sizeof(path), "%s", place_copy_path(d));
		snprintf(id, sizeof(id), "%s", jstr(req, "xfer_id") ?: d->target);
		ret = disk_ops_find(d->backend)->size(path, &have);
		if (ret)
			return rpc_error(-ret, "%s: %s: %s", ferryd->conf.host, path,
					 strerror(-ret));
		if (have < size) {
			/* The source grew (qcow2 allocating while the VM runs). */
			if (!disk_has(d, DISK_CAP_GROW))
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
	ret = xfer_register(m->id, id, path, limit, disk_has(d, DISK_CAP_BLOCK) && !backing,
			    token);
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

int cold_dest_backings_commit(struct migration *m, char *err, size_t errlen)
{
	int i, ret;

	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];
		char here[PATH_MAX], part[PATH_MAX], sum[65];

		if (!d->backing[0])
			continue;
		ret = place_backing_path(m->src_instances_dir, d->backing, here, sizeof(here), err,
					 errlen);
		if (ret)
			return ret;
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
	return 0;
}

/* Define and start the VM here; idempotent (reconcile runs it again). */
static int dest_do_finish(struct migration *m, char *err, size_t errlen)
{
	int i, ret;

	xfer_unregister_mig(m->id);
	/* Same host: the staged disks take the place the source left. */
	ret = place_unstage(m, err, errlen);
	if (ret)
		return ret;
	ret = cold_dest_backings_commit(m, err, errlen);
	if (ret)
		return ret;
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
	engine_crash_point(m, "finish-grown");
	ret = virt_domain_define(ferryd->virt, m->dst_xml);
	if (ret) {
		snprintf(err, errlen, "%s: cannot define vm %s", ferryd->conf.host, m->vm);
		return ret;
	}
	engine_crash_point(m, "finish-defined");
	if (m->was_running) {
		ret = virt_domain_start(ferryd->virt, m->vm);
		if (ret) {
			snprintf(err, errlen, "%s: cannot start vm %s", ferryd->conf.host, m->vm);
			return ret;
		}
	}
	mig_lock(m);
	m->m.t_finished_ms = wall_ms();
	mig_unlock(m);
	return engine_step_set(m, COLD_FINISHED);
}

static struct json_object *__dest_finish(struct migration *m, struct json_object *req)
{
	struct json_object *mo;
	struct migration tmp;
	char err[1024] = "";
	int ret;

	if (m->step == COLD_FINISHED)
		return rpc_ok();
	if (m->step != COLD_PREP && m->step != COLD_FINISHING)
		return rpc_error(EINVAL, "%s: cannot finish: %s", m->id, mig_status_name(m));
	memset(&tmp, 0, sizeof(tmp));
	if (!json_object_object_get_ex(req, "migration", &mo) ||
	    mig_from_json(&tmp, mo, err, sizeof(err)) || !tmp.dst_xml) {
		free(tmp.src_xml);
		free(tmp.dst_xml);
		json_object_put(tmp.raw);
		return rpc_error(EINVAL, "finish: bad migration record %s", err);
	}
	mig_lock(m);
	free(m->dst_xml);
	m->dst_xml = tmp.dst_xml;
	m->was_running = tmp.was_running;
	m->new_flavor = tmp.new_flavor;
	mig_unlock(m);
	free(tmp.src_xml);
	ret = engine_step_set(m, COLD_FINISHING);
	if (!ret)
		ret = dest_do_finish(m, err, sizeof(err));
	if (ret)
		return rpc_error(-ret, "%s", err[0] ? err : strerror(-ret));
	return rpc_ok();
}

static struct json_object *__dest_confirm(struct migration *m, struct json_object *req)
{
	if (m->step == COLD_CONFIRMED)
		return rpc_ok();
	if (m->step != COLD_FINISHED)
		return rpc_error(EINVAL, "%s: cannot confirm: %s", m->id, mig_status_name(m));
	if (engine_step_set(m, COLD_CONFIRMED))
		return rpc_error(EIO, "%s: cannot journal", m->id);
	return rpc_ok();
}

/* Tear down what we made for a revert (journaled reverting), to reverted. */
static int dest_revert_teardown(struct migration *m)
{
	int ret;

	if (m->step != COLD_REVERTING) {
		ret = engine_step_set(m, COLD_REVERTING);
		if (ret)
			return ret;
	}
	ret = place_cleanup(m, true);
	if (ret)
		return ret;
	return engine_step_set(m, COLD_REVERTED);
}

/*
 * Walk back a prepared record (journaled), to failed.  A cold migration
 * never defined the VM here; a live one may have left libvirt's incoming
 * domain (paused, never resumed by us): that goes too, but a running one
 * is never touched.
 */
int cold_dest_teardown(struct migration *m)
{
	enum virt_power p;
	bool incoming;
	int ret;

	incoming = m->type == MIG_TYPE_LIVE && !virt_domain_state(ferryd->virt, m->vm, &p);
	if (incoming && p == VIRT_RUNNING) {
		log_err("migration %s: vm %s runs here: not removing it", m->id, m->vm);
		return -EBUSY;
	}
	ret = engine_undo_mark(m);
	if (ret)
		return ret;
	ret = place_cleanup(m, incoming);
	if (ret)
		return ret;
	return engine_step_set(m, cold_dest_steps(m)->failed);
}

static struct json_object *__dest_revert(struct migration *m, struct json_object *req)
{
	int ret;

	if (m->step == COLD_REVERTED)
		return rpc_ok();
	if (m->step != COLD_FINISHED && m->step != COLD_REVERTING)
		return rpc_error(EINVAL, "%s: cannot revert: %s", m->id, mig_status_name(m));
	ret = dest_revert_teardown(m);
	if (ret)
		return rpc_error(-ret, "%s: revert of vm %s failed: %s", ferryd->conf.host, m->vm,
				 strerror(-ret));
	return rpc_ok();
}

static struct json_object *__dest_abort(struct migration *m, struct json_object *req)
{
	int ret;

	if (m->step == cold_dest_steps(m)->failed)
		return rpc_ok();
	if (m->step != cold_dest_steps(m)->prep)
		return rpc_error(EINVAL, "%s: cannot abort: %s", m->id, mig_status_name(m));
	ret = cold_dest_teardown(m);
	if (ret)
		return rpc_error(-ret, "%s: abort of vm %s incomplete: %s", ferryd->conf.host,
				 m->vm, strerror(-ret));
	return rpc_ok();
}

/*
 * After a restart, or periodically for a record waiting on the source:
 * finish or tear down what the journal says was under way, and otherwise
 * ask the source (the authority) what became of the migration.
 */
static void __dest_resume(struct migration *m)
{
	struct json_object *req, *rep;
	int src_step;
	char err[1024];
	const char *s;

	if (m->undoing) {
		cold_dest_teardown(m);
		return;
	}
	switch (m->step) {
	case COLD_FINISHING:
		if (dest_do_finish(m, err, sizeof(err)))
			log_err("migration %s: finish: %s (will retry)", m->id, err);
		return;
	case COLD_REVERTING:
		dest_revert_teardown(m);
		return;
	case COLD_PREP:
	case COLD_FINISHED:
		break;
	default:
		return;
	}
	req = json_object_new_object();
	json_object_object_add(req, "op", json_object_new_string("status"));
	json_object_object_add(req, "id", json_object_new_string(m->id));
	rep = peer_call(m->coordinator, req, 5000, err, sizeof(err));
	json_object_put(req);
	if (!rep) {
		/* The coordinator has no record: it never got past journaling "new". */
		if (errno == ENOENT && m->step == COLD_PREP) {
			log_warn("migration %s: unknown to %s; removing what was prepared", m->id,
				 m->coordinator);
			cold_dest_teardown(m);
		}
		return;
	}
	s = rpc_str(rep, "step");
	src_step = s ? flow_step_find(&cold_flow, s) : -1;
	if (src_step >= 0) {
		if ((src_step == COLD_FAILED || src_step == COLD_CANCELLED) &&
		    m->step == COLD_PREP)
			cold_dest_teardown(m);
		else if (src_step == COLD_CONFIRMED && m->step == COLD_FINISHED)
			engine_step_set(m, COLD_CONFIRMED);
		else if ((src_step == COLD_REVERTED || src_step == COLD_REVERT_SOURCE) &&
			 m->step == COLD_FINISHED)
			dest_revert_teardown(m);
	}
	json_object_put(rep);
}

/* @flow: the handler's only flow, or NULL for any that prepares here. */
#define COLD_DEST_HANDLER(name, flow)                                                  \
	struct json_object *cold_dest_##name(const struct rpc_ctx *ctx,                \
					     struct json_object *req)                  \
	{                                                                              \
		struct json_object *rep = NULL;                                        \
		struct migration *m = cold_dest_hold(req, flow, &rep);                 \
                                                                                       \
		return m ? cold_dest_release(m, __dest_##name(m, req)) : rep;          \
	}

COLD_DEST_HANDLER(xfer_open, NULL)
COLD_DEST_HANDLER(finish, &cold_flow)
COLD_DEST_HANDLER(confirm, &cold_flow)
COLD_DEST_HANDLER(revert, &cold_flow)

struct json_object *cold_dest_abort(const struct rpc_ctx *ctx, struct json_object *req)
{
	struct json_object *rep = NULL;
	struct migration *m = cold_dest_hold(req, NULL, &rep);

	if (!m && rpc_int(rep, "errno", 0) == ENOENT) {
		json_object_put(rep);
		return rpc_ok(); /* never prepared: nothing here */
	}
	return m ? cold_dest_release(m, __dest_abort(m, req)) : rep;
}

void cold_dest_resume(struct migration *m)
{
	__dest_resume(m);
}
