// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * cold.c - cold migration and resize (Nova's migrate and resize, with
 * confirm and revert), as a flow of the engine.  The source host
 * coordinates; the destination's side is cold_dest.c.
 *
 *   new -> prep (destination prechecks, dirs/LVs)          pre-migrating
 *       -> precopy (VM running: whole disks, then dirty     migrating
 *          rounds from the tracker until the delta is small)
 *       -> poweroff (clean shutdown, retries, then destroy)
 *       -> final-copy (the last delta, VM off)
 *       -> keep-source (<dir> -> <dir>_resize)              post-migrating
 *       -> finishing (destination defines and starts)       point of no return
 *       -> finished                                         finished
 *       -> confirming -> confirmed | reverting -> revert-source -> reverted
 *
 * Before "finishing" a failure or an abort walks back (the source disks
 * were never touched, only set aside); from "finishing" on, the flow only
 * rolls forward.  Every run and undo is idempotent.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/flows/flows.h"

#define COLD_CALL_MS 5000

bool cold_transient(int err)
{
	switch (err) {
	case ECONNREFUSED:
	case ECONNRESET:
	case EPIPE:
	case ETIMEDOUT:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ECONNABORTED:
	case EAGAIN:
	case EPROTO:
		return true;
	default:
		return false;
	}
}

/*
 * A request to the destination, retried while it is restarting (up to
 * peer_retry_s, or forever when @forever: past the point of no return).
 * Before the point of no return an abort stops the retries.
 */
struct json_object *cold_call(struct migration *m, struct json_object *req, bool forever,
			      char *err, size_t errlen)
{
	uint64_t deadline = now_ms() + (uint64_t)ferryd->conf.peer_retry_s * 1000;
	unsigned int delay_ms = 200;
	struct json_object *rep;

	for (;;) {
		rep = peer_call(m->dst_host, req, COLD_CALL_MS, err, errlen);
		if (rep || !cold_transient(errno) || ferryd->stopping)
			break;
		if (!forever && (now_ms() >= deadline || engine_stopping(m)))
			break;
		log_warn("migration %s: %s; retrying", m->id, err);
		usleep(delay_ms * 1000);
		delay_ms = MIN(delay_ms * 2, 5000u);
	}
	json_object_put(req);
	return rep;
}

struct cold_priv *cold_priv(struct migration *m)
{
	if (!m->priv)
		m->priv = calloc(1, sizeof(struct cold_priv));
	return m->priv;
}

static void cold_priv_free(struct migration *m)
{
	struct cold_priv *p = m->priv;

	cold_sessions_close(p->st, m->ndisks);
	cold_tracking_stop(p->st, m->ndisks);
	free(p);
	m->priv = NULL;
}

/* ---- keeping and restoring the source ------------------------------- */

static int cold_keep_source(struct migration *m, char *err, size_t errlen)
{
	int i, ret = 0;

	if (m->inst_dir[0])
		ret = inst_dir_keep(m->inst_dir);
	for (i = 0; i < m->ndisks && !ret; i++) {
		struct mig_disk *d = &m->disks[i];

		if (d->in_inst_dir)
			continue; /* moved with the dir */
		ret = disk_ops_find(d->backend)->keep(d->src_path);
	}
	if (ret)
		snprintf(err, errlen, "vm %s: cannot keep the source disks aside: %s", m->vm,
			 strerror(-ret));
	return ret;
}

static int cold_restore_source(struct migration *m, char *err, size_t errlen)
{
	int i, ret;

	if (m->inst_dir[0]) {
		ret = inst_dir_restore(m->inst_dir);
		if (ret && ret != -ENOENT) {
			snprintf(err, errlen, "restore %s: %s", m->inst_dir, strerror(-ret));
			return ret;
		}
	}
	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];

		if (d->in_inst_dir)
			continue;
		ret = disk_ops_find(d->backend)->restore(d->src_path);
		if (ret && ret != -ENOENT) {
			snprintf(err, errlen, "restore %s: %s", d->src_path, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static void cold_kept_path(const struct migration *m, const struct mig_disk *d, char *out,
			   size_t len)
{
	if (d->in_inst_dir) {
		char kept[PATH_MAX];

		disk_kept_path(m->inst_dir, kept, sizeof(kept));
		snprintf(out, len, "%s%s", kept, d->src_path + strlen(m->inst_dir));
	} else {
		disk_kept_path(d->src_path, out, len);
	}
}

/* Start the VM again on the source if it ran before. */
static int cold_power_restore(struct migration *m, char *err, size_t errlen)
{
	enum virt_power p;
	int ret;

	if (!m->was_running)
		return 0;
	ret = virt_domain_state(ferryd->virt, m->vm, &p);
	if (!ret && p != VIRT_RUNNING)
		ret = virt_domain_start(ferryd->virt, m->vm);
	if (ret)
		snprintf(err, errlen, "vm %s: cannot start it again: %s", m->vm, strerror(-ret));
	return ret;
}

/* ---- steps ----------------------------------------------------------- */

static int cold_run_prep(struct migration *m, char *err, size_t errlen)
{
	return cold_prep(m, err, errlen);
}

/* The destination removes what it prepared now, or when it asks us later. */
int cold_prep_undo(struct migration *m, char *err, size_t errlen)
{
	struct json_object *req = rpc_req("cold.abort", m), *rep;
	char e[1024];

	rep = peer_call(m->dst_host, req, COLD_CALL_MS, e, sizeof(e));
	json_object_put(req);
	if (!rep)
		log_warn("migration %s: %s; it will clean up when it asks", m->id, e);
	json_object_put(rep);
	return 0;
}

static int cold_run_precopy(struct migration *m, char *err, size_t errlen)
{
	struct cold_priv *p = cold_priv(m);

	if (!p)
		return -ENOMEM;
	mig_lock(m);
	m->m.t_precopy_ms = wall_ms();
	mig_unlock(m);
	return cold_precopy(m, p->st, err, errlen);
}

static int cold_run_poweroff(struct migration *m, char *err, size_t errlen)
{
	bool forced;
	int ret;

	if (!m->was_running)
		return 0;
	mig_lock(m);
	m->m.t_poweroff_ms = wall_ms();
	mig_unlock(m);
	ret = virt_domain_poweroff(ferryd->virt, m->vm, ferryd->conf.shutdown_timeout_s,
				   ferryd->conf.shutdown_retries, &forced);
	if (ret) {
		snprintf(err, errlen, "vm %s: power off failed", m->vm);
		return ret;
	}
	if (forced)
		log_warn("migration %s: vm %s did not shut down cleanly; destroyed", m->id, m->vm);
	mig_lock(m);
	m->m.t_off_ms = wall_ms();
	m->m.shutdown_ms = m->m.t_off_ms - m->m.t_poweroff_ms;
	mig_unlock(m);
	return 0;
}

/*
 * Power back on.  A guest caught halfway through the shutdown we asked for
 * (never seen off) finishes it first (bounded, then destroy); one we have
 * already started again is left running.
 */
static int cold_undo_poweroff(struct migration *m, char *err, size_t errlen)
{
	enum virt_power p;
	bool forced;
	int ret;

	if (!m->was_running)
		return 0;
	ret = virt_domain_state(ferryd->virt, m->vm, &p);
	if (ret) {
		snprintf(err, errlen, "vm %s: %s", m->vm, strerror(-ret));
		return ret;
	}
	if (p == VIRT_RUNNING && !m->m.t_off_ms) {
		ret = virt_domain_poweroff(ferryd->virt, m->vm, ferryd->conf.shutdown_timeout_s,
					   ferryd->conf.shutdown_retries, &forced);
		if (ret) {
			snprintf(err, errlen, "vm %s: power off failed", m->vm);
			return ret;
		}
	}
	return cold_power_restore(m, err, errlen);
}

static int cold_run_final_copy(struct migration *m, char *err, size_t errlen)
{
	struct cold_priv *p = cold_priv(m);
	uint64_t copied;
	int ret;

	if (!p)
		return -ENOMEM;
	mig_lock(m);
	m->m.t_final_copy_ms = wall_ms();
	mig_unlock(m);
	if (m->was_running) {
		ret = cold_round(m, p->st, false, &copied, err, errlen);
		if (ret)
			return ret;
		mig_lock(m);
		m->m.last_delta_bytes = copied;
		mig_unlock(m);
	}
	ret = cold_sessions_commit(m, p->st, err, errlen);
	if (ret)
		return ret;
	/*
	 * The trackers stay attached until the VM runs on the destination:
	 * detaching the syscall tracepoints waits for RCU grace periods
	 * (seconds on a busy host), and nothing writes the disks now.
	 */
	engine_crash_point(m, "final-copied");
	return 0;
}

static int cold_run_keep_source(struct migration *m, char *err, size_t errlen)
{
	return cold_keep_source(m, err, errlen);
}

static int cold_undo_keep_source(struct migration *m, char *err, size_t errlen)
{
	return cold_restore_source(m, err, errlen);
}

/* Checksums of the kept copy, so that a revert can prove it restored it. */
static void cold_checksum_kept(struct migration *m)
{
	int i;

	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];
		char kept[PATH_MAX], sum[65];

		if (d->kind != MIG_DISK_DATA || d->src_sha256[0])
			continue;
		cold_kept_path(m, d, kept, sizeof(kept));
		if (disk_sha256(kept, sum))
			continue;
		mig_lock(m);
		snprintf(d->src_sha256, sizeof(d->src_sha256), "%s", sum);
		mig_unlock(m);
	}
	mig_save(m);
}

/*
 * The destination defines and starts the VM (retried forever: past the
 * point of no return).  The trackers stop once it runs: detaching waits
 * for RCU grace periods, which must not count as downtime.
 */
static int cold_run_finishing(struct migration *m, char *err, size_t errlen)
{
	struct cold_priv *p = m->priv;
	struct json_object *req, *rep;

	if (!m->dst_xml) {
		char *xml = domxml_adapt(m->src_xml, &m->new_flavor, m->disks, m->ndisks);

		if (!xml) {
			snprintf(err, errlen, "vm %s: cannot adapt its definition", m->vm);
			return -EINVAL;
		}
		mig_lock(m);
		m->dst_xml = xml;
		mig_unlock(m);
	}
	req = rpc_req("cold.finish", m);
	mig_lock(m);
	json_object_object_add(req, "migration", mig_to_json(m, true));
	mig_unlock(m);
	rep = cold_call(m, req, true, err, errlen);
	if (!rep)
		return -errno;
	json_object_put(rep);
	mig_lock(m);
	/*
	 * VM off -> running on the destination (wall clock: survives restarts).
	 * A crash during the power-off left no t_off_ms: count from the request.
	 */
	if (m->was_running && (m->m.t_off_ms || m->m.t_poweroff_ms))
		m->m.downtime_ms = wall_ms() - (m->m.t_off_ms ? m->m.t_off_ms : m->m.t_poweroff_ms);
	mig_unlock(m);
	/* The VM runs on the destination: what follows is not downtime. */
	if (p)
		cold_tracking_stop(p->st, m->ndisks);
	if (!m->auto_confirm)
		cold_checksum_kept(m);
	mig_lock(m);
	m->m.t_finished_ms = wall_ms();
	if (ferryd->conf.resize_confirm_window_s)
		m->confirm_deadline_ms =
			wall_ms() + (uint64_t)ferryd->conf.resize_confirm_window_s * 1000;
	mig_unlock(m);
	return 0;
}

/* Finished: confirm now if asked to, or once the confirm window is over. */
static const char *cold_rest_action(struct migration *m)
{
	if (m->step != COLD_FINISHED)
		return NULL;
	if (m->auto_confirm || (m->confirm_deadline_ms && wall_ms() >= m->confirm_deadline_ms))
		return "confirm";
	return NULL;
}

static int cold_run_confirming(struct migration *m, char *err, size_t errlen)
{
	struct json_object *rep;
	char e[1024];
	int i, ret;

	/* On the same host the definition is the resized VM's own. */
	ret = m->same_host ? 0 : virt_domain_undefine(ferryd->virt, m->vm);
	if (ret && ret != -ENOENT)
		goto fail;
	ret = 0;
	if (m->inst_dir[0]) {
		char kept[PATH_MAX];

		disk_kept_path(m->inst_dir, kept, sizeof(kept));
		ret = inst_dir_remove(kept);
	}
	for (i = 0; i < m->ndisks && !ret; i++) {
		struct mig_disk *d = &m->disks[i];

		if (!d->in_inst_dir)
			ret = disk_ops_find(d->backend)->remove(d->src_path, true);
	}
	if (ret)
		goto fail;
	rep = cold_call(m, rpc_req("cold.confirm", m), false, e, sizeof(e));
	if (!rep)
		log_warn("migration %s: %s; it will learn of the confirm when it asks", m->id, e);
	json_object_put(rep);
	return 0;
fail:
	snprintf(err, errlen, "confirm: removing the source copy of vm %s: %s", m->vm,
		 strerror(-ret));
	return ret;
}

/* The destination's copy must be gone before the source runs again. */
static int cold_run_reverting(struct migration *m, char *err, size_t errlen)
{
	struct json_object *rep = cold_call(m, rpc_req("cold.revert", m), false, err, errlen);

	if (!rep)
		return errno ? -errno : -EIO;
	json_object_put(rep);
	return 0;
}

static int cold_run_revert_source(struct migration *m, char *err, size_t errlen)
{
	int i, ret;

	ret = cold_restore_source(m, err, errlen);
	if (ret)
		return ret;
	ret = virt_domain_define(ferryd->virt, m->src_xml);
	if (ret) {
		snprintf(err, errlen, "vm %s: cannot define it again", m->vm);
		return ret;
	}
	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];
		char sum[65];

		if (d->kind != MIG_DISK_DATA || !d->src_sha256[0])
			continue;
		if (disk_sha256(d->src_path, sum) || strcmp(sum, d->src_sha256)) {
			log_err("migration %s: revert: %s differs from the copy kept at power-off",
				m->id, d->src_path);
			mig_lock(m);
			if (!m->error[0])
				snprintf(m->error, sizeof(m->error),
					 "revert: restored disk differs from the kept copy");
			mig_unlock(m);
		}
	}
	return cold_power_restore(m, err, errlen);
}

#define RESIZED "resized"

static const struct flow_step cold_steps[COLD__NSTEPS] = {
	[COLD_NEW] = { "new", "pre-migrating", "resize_prep", NULL, NULL, NULL,
		       FLOW_RESUME_UNDO, FLOW_STEP_SYNC },
	[COLD_PREP] = { "prep", "pre-migrating", "resize_prep", NULL, cold_run_prep,
			cold_prep_undo, FLOW_RESUME_UNDO, FLOW_STEP_SYNC },
	[COLD_PRECOPY] = { "precopy", "migrating", "resize_migrating", NULL, cold_run_precopy,
			   NULL, FLOW_RESUME_UNDO, 0 },
	[COLD_POWEROFF] = { "poweroff", "migrating", "resize_migrating", NULL, cold_run_poweroff,
			    cold_undo_poweroff, FLOW_RESUME_UNDO, 0 },
	[COLD_FINAL_COPY] = { "final-copy", "migrating", "resize_migrating", NULL,
			      cold_run_final_copy, NULL, FLOW_RESUME_UNDO, 0 },
	[COLD_KEEP_SOURCE] = { "keep-source", "post-migrating", "resize_migrated", NULL,
			       cold_run_keep_source, cold_undo_keep_source, FLOW_RESUME_UNDO, 0 },
	[COLD_FINISHING] = { "finishing", "post-migrating", "resize_finish", NULL,
			     cold_run_finishing, NULL, FLOW_RESUME_RERUN, 0 },
	[COLD_FINISHED] = { "finished", "finished", NULL, RESIZED, NULL, NULL, FLOW_RESUME_RERUN,
			    FLOW_STEP_REST },
	[COLD_CONFIRMING] = { "confirming", "confirming", "resize_confirming", RESIZED,
			      cold_run_confirming, NULL, FLOW_RESUME_RERUN, 0 },
	[COLD_CONFIRMED] = { "confirmed", "confirmed", NULL, NULL, NULL, NULL, FLOW_RESUME_RERUN,
			     FLOW_STEP_TERMINAL },
	[COLD_REVERTING] = { "reverting", "reverting", "resize_reverting", RESIZED,
			     cold_run_reverting, NULL, FLOW_RESUME_RERUN, 0 },
	[COLD_REVERT_SOURCE] = { "revert-source", "reverting", "resize_reverting", RESIZED,
				 cold_run_revert_source, NULL, FLOW_RESUME_RERUN, 0 },
	[COLD_REVERTED] = { "reverted", "reverted", NULL, NULL, NULL, NULL, FLOW_RESUME_RERUN,
			    FLOW_STEP_TERMINAL },
	[COLD_FAILED] = { "failed", "error", NULL, NULL, NULL, NULL, FLOW_RESUME_RERUN,
			  FLOW_STEP_TERMINAL },
	[COLD_CANCELLED] = { "cancelled", "cancelled", NULL, NULL, NULL, NULL, FLOW_RESUME_RERUN,
			     FLOW_STEP_TERMINAL },
};

static const struct flow_action cold_actions[] = {
	{ "confirm", "confirmed", COLD_FINISHED, COLD_CONFIRMING },
	{ "revert", "reverted", COLD_FINISHED, COLD_REVERTING },
};

/* ---- the operator's requests ---------------------------------------- */

static struct json_object *cold_start(const struct rpc_ctx *ctx, struct json_object *req,
				      enum mig_type type)
{
	struct cold_request r = { .type = type };
	const char *vm = rpc_str(req, "vm"), *to = rpc_str(req, "to");
	char err[1024], owner[FERRY_NAME_MAX];
	struct json_object *rep;
	struct migration *m;
	int64_t disk_gib;
	int ret;

	if (!vm || strlen(vm) >= sizeof(r.vm))
		return rpc_error(EINVAL, "%s: need a VM name", mig_type_name(type));
	/* Asked on another host than the VM's: the VM's host coordinates. */
	if (!rpc_bool(req, "forwarded") && rpc_vm_owner(vm, owner, sizeof(owner)) == 0 &&
	    owner[0])
		return rpc_forward(owner, req);
	snprintf(r.vm, sizeof(r.vm), "%s", vm);
	if (to)
		snprintf(r.to, sizeof(r.to), "%s", to);
	r.flavor.vcpus = (int)rpc_int(req, "vcpus", 0);
	r.flavor.memory_mib = (uint64_t)rpc_int(req, "memory_mib", 0);
	disk_gib = rpc_int(req, "disk_gib", 0);
	if (r.flavor.vcpus < 0 || rpc_int(req, "memory_mib", 0) < 0 || disk_gib < 0)
		return rpc_error(EINVAL, "%s: negative flavor values", vm);
	r.flavor.root_disk_bytes = (uint64_t)disk_gib * GIB;
	r.confirm = rpc_bool(req, "confirm");

	m = mig_new();
	if (!m)
		return rpc_error(ENOMEM, "out of memory");
	m->flow = &cold_flow;
	m->type = r.type;
	m->role = MIG_ROLE_SOURCE;
	m->auto_confirm = r.confirm;
	snprintf(m->vm, sizeof(m->vm), "%s", r.vm);
	snprintf(m->src_host, sizeof(m->src_host), "%s", ferryd->conf.host);
	snprintf(m->src_instances_dir, sizeof(m->src_instances_dir), "%s",
		 ferryd->conf.instances_dir);
	ret = cold_gather(m, &r, err, sizeof(err));
	if (!ret)
		ret = cold_pick_dest(&r, m, err, sizeof(err));
	if (!ret)
		ret = mig_id_generate(m->id, sizeof(m->id));
	if (ret) {
		mig_free(m);
		return rpc_error(-ret, "%s", err);
	}
	ret = engine_start(m, err, sizeof(err));
	if (ret)
		return rpc_error(-ret, "%s", err);
	rep = rpc_ok();
	json_object_object_add(rep, "id", json_object_new_string(m->id));
	return rep;
}

static struct json_object *cold_migrate(const struct rpc_ctx *ctx, struct json_object *req)
{
	return cold_start(ctx, req, MIG_TYPE_MIGRATION);
}

static struct json_object *cold_resize(const struct rpc_ctx *ctx, struct json_object *req)
{
	return cold_start(ctx, req, MIG_TYPE_RESIZE);
}

static const struct rpc_cmd cold_cmds[] = {
	{ "migrate", RPC_FROM_ANY | RPC_STARTS, cold_migrate },
	{ "resize", RPC_FROM_ANY | RPC_STARTS, cold_resize },
	{ "cold.prep", RPC_FROM_PEER | RPC_STARTS, cold_dest_prep },
	{ "cold.xfer_open", RPC_FROM_PEER, cold_dest_xfer_open },
	{ "cold.finish", RPC_FROM_PEER, cold_dest_finish },
	{ "cold.confirm", RPC_FROM_PEER, cold_dest_confirm },
	{ "cold.revert", RPC_FROM_PEER, cold_dest_revert },
	{ "cold.abort", RPC_FROM_PEER, cold_dest_abort },
};

static const enum mig_type cold_types[] = { MIG_TYPE_MIGRATION, MIG_TYPE_RESIZE };

/* Confirmed: on the destination; reverted, failed or cancelled: back home. */
static const char *cold_vm_host(const struct migration *m)
{
	return m->step == COLD_CONFIRMED ? m->dst_host : m->src_host;
}

const struct flow cold_flow = {
	.name = "cold",
	.version = 1,
	.steps = cold_steps,
	.nsteps = COLD__NSTEPS,
	.ponr = COLD_FINISHING,
	.failed = COLD_FAILED,
	.cancelled = COLD_CANCELLED,
	.actions = cold_actions,
	.nactions = ARRAY_SIZE(cold_actions),
	.cmds = cold_cmds,
	.ncmds = ARRAY_SIZE(cold_cmds),
	.types = cold_types,
	.ntypes = ARRAY_SIZE(cold_types),
	.rest_action = cold_rest_action,
	.participant_resume = cold_dest_resume,
	.priv_free = cold_priv_free,
	.vm_host = cold_vm_host,
};
