// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * cold.c - cold migration and resize, the source host's side: it is the
 * coordinator and decides every roll forward or back.
 *
 *   new -> prep (destination prechecks, dirs/LVs)          pre-migrating
 *       -> precopy (VM running: whole disks, then dirty     migrating
 *          rounds from the tracker until the delta is small)
 *       -> poweroff (clean shutdown, retries, then destroy)
 *       -> final-copy (the last delta, VM off)
 *       -> keep-source (<dir> -> <dir>_resize)              post-migrating
 *       -> finishing (destination defines and starts)
 *       -> finished                                         finished
 *       -> confirming -> confirmed | reverting -> revert-source -> reverted
 *
 * Before "finishing" any failure rolls back (the source disks were never
 * touched); from "finishing" on, the flow only rolls forward.  Each step is
 * journaled before its side effect and every side effect is idempotent, so
 * reconcile (after a crash) simply runs the same code again.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon.h"

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

void cold_set_error(struct migration *m, const char *msg)
{
	pthread_mutex_lock(&ferryd->lock);
	if (!m->error[0])
		snprintf(m->error, sizeof(m->error), "%s", msg);
	pthread_mutex_unlock(&ferryd->lock);
}

struct json_object *cold_req(const char *op, const struct migration *m)
{
	struct json_object *r = json_object_new_object();

	json_object_object_add(r, "op", json_object_new_string(op));
	json_object_object_add(r, "id", json_object_new_string(m->id));
	return r;
}

/*
 * A request to the destination, retried while it is restarting (up to
 * peer_retry_s, or forever when @forever: past the point of no return).
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
		if (!forever && now_ms() >= deadline)
			break;
		log_warn("migration %s: %s; retrying", m->id, err);
		usleep(delay_ms * 1000);
		delay_ms = MIN(delay_ms * 2, 5000u);
	}
	json_object_put(req);
	return rep;
}

const char *cold_jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* ---- keeping and restoring the source ------------------------------- */

static int cold_keep_source(struct migration *m)
{
	int i, ret;

	if (m->inst_dir[0]) {
		ret = inst_dir_keep(m->inst_dir);
		if (ret)
			return ret;
	}
	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];

		if (!strcmp(d->backend, "file") && m->inst_dir[0])
			continue; /* moved with the dir */
		ret = disk_ops_find(d->backend)->keep(d->src_path);
		if (ret) {
			log_err("migration %s: keep %s: %s", m->id, d->src_path, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int cold_restore_source(struct migration *m)
{
	int i, ret;

	if (m->inst_dir[0]) {
		ret = inst_dir_restore(m->inst_dir);
		if (ret && ret != -ENOENT)
			return ret;
	}
	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];

		if (!strcmp(d->backend, "file") && m->inst_dir[0])
			continue;
		ret = disk_ops_find(d->backend)->restore(d->src_path);
		if (ret && ret != -ENOENT) {
			log_err("migration %s: restore %s: %s", m->id, d->src_path,
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static void cold_kept_path(const struct migration *m, const struct mig_disk *d, char *out,
			   size_t len)
{
	if (!strcmp(d->backend, "file") && m->inst_dir[0]) {
		char kept[PATH_MAX];

		disk_kept_path(m->inst_dir, kept, sizeof(kept));
		snprintf(out, len, "%s%s", kept, d->src_path + strlen(m->inst_dir));
	} else {
		disk_kept_path(d->src_path, out, len);
	}
}

/*
 * Restore the VM's power state on the source.  A rollback from the power-off
 * step may find the guest halfway through the shutdown we asked for: let it
 * finish (bounded, then destroy) before starting it again.
 */
static int cold_power_restore(struct migration *m)
{
	enum virt_power p;
	bool forced;
	int ret;

	if (!m->was_running)
		return 0;
	ret = virt_domain_state(ferryd->virt, m->vm, &p);
	if (ret)
		return ret;
	if (p == VIRT_RUNNING && m->step == MIG_STEP_ROLLBACK &&
	    m->rollback_from == MIG_STEP_POWEROFF) {
		ret = virt_domain_poweroff(ferryd->virt, m->vm, ferryd->conf.shutdown_timeout_s,
					   ferryd->conf.shutdown_retries, &forced);
		if (ret)
			return ret;
		p = VIRT_SHUTOFF;
	}
	return p == VIRT_RUNNING ? 0 : virt_domain_start(ferryd->virt, m->vm);
}

/* Undo a flow that failed before "finishing": the source was never touched. */
static void cold_rollback(struct migration *m)
{
	char err[1024];
	struct json_object *rep;
	int ret;

	if (m->step != MIG_STEP_ROLLBACK) {
		pthread_mutex_lock(&ferryd->lock);
		m->rollback_from = m->step;
		pthread_mutex_unlock(&ferryd->lock);
		if (mig_set_step(m, MIG_STEP_ROLLBACK))
			return;
	}
	ret = cold_restore_source(m);
	if (!ret)
		ret = cold_power_restore(m);
	if (ret) {
		/* Leave it in rollback: reconcile tries again; never lose the VM. */
		log_err("migration %s: rollback of vm %s incomplete: %s", m->id, m->vm,
			strerror(-ret));
		return;
	}
	/* The destination cleans up now, or asks us later (dest_resume). */
	rep = peer_call(m->dst_host, cold_req("abort", m), COLD_CALL_MS, err, sizeof(err));
	if (!rep)
		log_warn("migration %s: %s; it will clean up when it asks", m->id, err);
	json_object_put(rep);
	mig_set_step(m, MIG_STEP_FAILED);
}

/* ---- the flow -------------------------------------------------------- */

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
		pthread_mutex_lock(&ferryd->lock);
		snprintf(d->src_sha256, sizeof(d->src_sha256), "%s", sum);
		pthread_mutex_unlock(&ferryd->lock);
	}
	mig_save(m);
}

/*
 * Ask the destination to define and start the VM.  The trackers in st are
 * stopped once it runs: detaching waits for RCU grace periods, which must
 * not count as downtime, but the migration rests (finished) only after.
 */
static int cold_finish(struct migration *m, struct cold_disk_state *st, char *err,
		       size_t errlen)
{
	struct json_object *req, *rep;
	int ret;

	if (!m->dst_xml) {
		char *xml = domxml_adapt(m->src_xml, &m->new_flavor, m->disks, m->ndisks);

		if (!xml) {
			snprintf(err, errlen, "vm %s: cannot adapt its definition", m->vm);
			return -EINVAL;
		}
		pthread_mutex_lock(&ferryd->lock);
		m->dst_xml = xml;
		pthread_mutex_unlock(&ferryd->lock);
	}
	ret = mig_set_step(m, MIG_STEP_FINISHING);
	if (ret)
		return ret;
	req = cold_req("finish", m);
	json_object_object_add(req, "migration", mig_to_json(m, true));
	rep = cold_call(m, req, true, err, errlen);
	if (!rep)
		return -errno;
	json_object_put(rep);
	pthread_mutex_lock(&ferryd->lock);
	/*
	 * VM off -> running on the destination (wall clock: survives restarts).
	 * A crash during the power-off left no t_off_ms: count from the request.
	 */
	if (m->was_running && (m->m.t_off_ms || m->m.t_poweroff_ms))
		m->m.downtime_ms = wall_ms() - (m->m.t_off_ms ? m->m.t_off_ms : m->m.t_poweroff_ms);
	pthread_mutex_unlock(&ferryd->lock);
	/* The VM runs on the destination: what follows is not downtime. */
	cold_tracking_stop(st, m->ndisks);
	if (!m->auto_confirm)
		cold_checksum_kept(m);
	pthread_mutex_lock(&ferryd->lock);
	m->m.t_finished_ms = wall_ms();
	if (ferryd->conf.resize_confirm_window_s)
		m->confirm_deadline_ms =
			wall_ms() + (uint64_t)ferryd->conf.resize_confirm_window_s * 1000;
	pthread_mutex_unlock(&ferryd->lock);
	return mig_set_step(m, MIG_STEP_FINISHED);
}

static int cold_do_confirm(struct migration *m);

static void cold_run(struct migration *m)
{
	struct cold_disk_state st[FERRYD_MAX_DISKS] = {};
	char err[1024] = "";
	uint64_t copied;
	bool forced;
	int ret;

	if (m->step >= MIG_STEP_FINISHING)
		goto finishing;
	ret = mig_set_step(m, MIG_STEP_PRECOPY);
	if (ret)
		goto fail;
	pthread_mutex_lock(&ferryd->lock);
	m->m.t_precopy_ms = wall_ms();
	pthread_mutex_unlock(&ferryd->lock);
	ret = cold_precopy(m, st, err, sizeof(err));
	if (ret)
		goto fail;

	ret = mig_set_step(m, MIG_STEP_POWEROFF);
	if (ret)
		goto fail;
	if (m->was_running) {
		pthread_mutex_lock(&ferryd->lock);
		m->m.t_poweroff_ms = wall_ms();
		pthread_mutex_unlock(&ferryd->lock);
		ret = virt_domain_poweroff(ferryd->virt, m->vm, ferryd->conf.shutdown_timeout_s,
					   ferryd->conf.shutdown_retries, &forced);
		if (ret) {
			snprintf(err, sizeof(err), "vm %s: power off failed", m->vm);
			goto fail;
		}
		if (forced)
			log_warn("migration %s: vm %s did not shut down cleanly; destroyed", m->id,
				 m->vm);
		pthread_mutex_lock(&ferryd->lock);
		m->m.t_off_ms = wall_ms();
		m->m.shutdown_ms = m->m.t_off_ms - m->m.t_poweroff_ms;
		pthread_mutex_unlock(&ferryd->lock);
	}

	ret = mig_set_step(m, MIG_STEP_FINAL_COPY);
	if (ret)
		goto fail;
	pthread_mutex_lock(&ferryd->lock);
	m->m.t_final_copy_ms = wall_ms();
	pthread_mutex_unlock(&ferryd->lock);
	if (m->was_running) {
		ret = cold_round(m, st, false, &copied, err, sizeof(err));
		if (ret)
			goto fail;
		pthread_mutex_lock(&ferryd->lock);
		m->m.last_delta_bytes = copied;
		pthread_mutex_unlock(&ferryd->lock);
	}
	/*
	 * The trackers stay attached until the VM runs on the destination:
	 * detaching the syscall tracepoints waits for RCU grace periods
	 * (seconds on a busy host), and nothing writes the disks now.
	 */
	mig_crash_point(m, "final-copied");

	ret = mig_set_step(m, MIG_STEP_KEEP_SOURCE);
	if (!ret)
		ret = cold_keep_source(m);
	if (ret) {
		snprintf(err, sizeof(err), "vm %s: cannot keep the source disks aside: %s", m->vm,
			 strerror(-ret));
		goto fail;
	}

finishing:
	if (m->step <= MIG_STEP_FINISHING) {
		/* Past the point of no return: only forward. */
		ret = cold_finish(m, st, err, sizeof(err));
		cold_tracking_stop(st, m->ndisks); /* when finish failed first */
		if (ret) {
			cold_set_error(m, err);
			log_err("migration %s: finish on %s: %s (will retry)", m->id, m->dst_host,
				err);
			return;
		}
	}
	if (m->step == MIG_STEP_FINISHED && m->auto_confirm)
		cold_do_confirm(m);
	return;
fail:
	cold_tracking_stop(st, m->ndisks);
	if (!err[0])
		snprintf(err, sizeof(err), "%s", strerror(-ret));
	log_err("migration %s: %s; rolling back", m->id, err);
	cold_set_error(m, err);
	cold_rollback(m);
}

/* ---- confirm and revert --------------------------------------------- */

static int cold_do_confirm(struct migration *m)
{
	char err[1024];
	struct json_object *rep;
	int i, ret;

	ret = mig_set_step(m, MIG_STEP_CONFIRMING);
	if (ret)
		return ret;
	/* On the same host the definition is the resized VM's own. */
	ret = m->same_host ? 0 : virt_domain_undefine(ferryd->virt, m->vm);
	if (ret && ret != -ENOENT)
		return ret;
	if (m->inst_dir[0]) {
		char kept[PATH_MAX];

		disk_kept_path(m->inst_dir, kept, sizeof(kept));
		ret = inst_dir_remove(kept);
		if (ret)
			return ret;
	}
	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];

		if (!strcmp(d->backend, "file") && m->inst_dir[0])
			continue;
		ret = disk_ops_find(d->backend)->remove(d->src_path, true);
		if (ret)
			return ret;
	}
	rep = cold_call(m, cold_req("confirm_dest", m), false, err, sizeof(err));
	if (!rep)
		log_warn("migration %s: %s; it will learn of the confirm when it asks", m->id,
			 err);
	json_object_put(rep);
	return mig_set_step(m, MIG_STEP_CONFIRMED);
}

static int cold_do_revert(struct migration *m)
{
	char err[1024];
	struct json_object *rep;
	int i, ret;

	if (m->step != MIG_STEP_REVERT_SOURCE) {
		ret = mig_set_step(m, MIG_STEP_REVERTING);
		if (ret)
			return ret;
		/* The destination's copy must be gone before the source runs again. */
		rep = cold_call(m, cold_req("revert_dest", m), false, err, sizeof(err));
		if (!rep) {
			cold_set_error(m, err);
			log_err("migration %s: revert: %s (will retry)", m->id, err);
			return -errno;
		}
		json_object_put(rep);
		ret = mig_set_step(m, MIG_STEP_REVERT_SOURCE);
		if (ret)
			return ret;
	}
	ret = cold_restore_source(m);
	if (!ret)
		ret = virt_domain_define(ferryd->virt, m->src_xml);
	if (ret)
		return ret;
	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];
		char sum[65];

		if (d->kind != MIG_DISK_DATA || !d->src_sha256[0])
			continue;
		if (disk_sha256(d->src_path, sum) || strcmp(sum, d->src_sha256)) {
			log_err("migration %s: revert: %s differs from the copy kept at power-off",
				m->id, d->src_path);
			cold_set_error(m, "revert: restored disk differs from the kept copy");
		}
	}
	ret = cold_power_restore(m);
	if (ret)
		return ret;
	return mig_set_step(m, MIG_STEP_REVERTED);
}

/* ---- threads and entry points --------------------------------------- */

enum cold_job {
	COLD_JOB_RUN,
	COLD_JOB_CONFIRM,
	COLD_JOB_REVERT,
	COLD_JOB_ROLLBACK,
};

struct cold_thread_arg {
	struct migration *m;
	enum cold_job job;
};

static void *cold_thread(void *p)
{
	struct cold_thread_arg *a = p;
	struct migration *m = a->m;

	switch (a->job) {
	case COLD_JOB_RUN:
		cold_run(m);
		break;
	case COLD_JOB_CONFIRM:
		if (cold_do_confirm(m))
			log_err("migration %s: confirm incomplete (will retry)", m->id);
		break;
	case COLD_JOB_REVERT:
		if (cold_do_revert(m))
			log_err("migration %s: revert incomplete (will retry)", m->id);
		break;
	case COLD_JOB_ROLLBACK:
		cold_rollback(m);
		break;
	}
	pthread_mutex_lock(&ferryd->lock);
	m->busy = false;
	pthread_mutex_unlock(&ferryd->lock);
	free(a);
	return NULL;
}

/* Start @job on @m unless a thread already drives it; caller holds no lock. */
static int cold_spawn(struct migration *m, enum cold_job job)
{
	struct cold_thread_arg *a;
	pthread_attr_t attr;
	pthread_t t;
	int ret;

	pthread_mutex_lock(&ferryd->lock);
	if (m->busy) {
		pthread_mutex_unlock(&ferryd->lock);
		return -EBUSY;
	}
	m->busy = true;
	pthread_mutex_unlock(&ferryd->lock);
	a = calloc(1, sizeof(*a));
	if (!a) {
		ret = -ENOMEM;
		goto err;
	}
	a->m = m;
	a->job = job;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = -pthread_create(&t, &attr, cold_thread, a);
	pthread_attr_destroy(&attr);
	if (!ret)
		return 0;
	free(a);
err:
	pthread_mutex_lock(&ferryd->lock);
	m->busy = false;
	pthread_mutex_unlock(&ferryd->lock);
	return ret;
}

int cold_start(const struct cold_request *r, char *id, char *err, size_t errlen)
{
	struct migration *m, *busy;
	int ret;

	pthread_mutex_lock(&ferryd->lock);
	busy = migstore_active_for_vm(r->vm);
	if (busy) {
		snprintf(err, errlen, "vm %s: operation already in progress (%s %s, status %s)",
			 r->vm, mig_type_name(busy->type), busy->id, mig_status_name(busy->step));
		pthread_mutex_unlock(&ferryd->lock);
		errno = EBUSY;
		return -EBUSY;
	}
	pthread_mutex_unlock(&ferryd->lock);

	m = mig_new();
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -(errno = ENOMEM);
	}
	m->type = r->type;
	m->role = MIG_ROLE_SOURCE;
	m->step = MIG_STEP_NEW;
	m->auto_confirm = r->confirm;
	snprintf(m->vm, sizeof(m->vm), "%s", r->vm);
	snprintf(m->src_host, sizeof(m->src_host), "%s", ferryd->conf.host);
	snprintf(m->src_instances_dir, sizeof(m->src_instances_dir), "%s",
		 ferryd->conf.instances_dir);
	ret = cold_gather(m, r, err, errlen);
	if (!ret)
		ret = cold_pick_dest(r, m, err, errlen);
	if (!ret)
		ret = mig_id_generate(m->id, sizeof(m->id));
	if (ret)
		goto err;
	m->m.t_created_ms = wall_ms();

	/* Journal it, then claim the VM (a second request now sees it busy). */
	pthread_mutex_lock(&ferryd->lock);
	busy = migstore_active_for_vm(r->vm);
	if (busy) {
		pthread_mutex_unlock(&ferryd->lock);
		snprintf(err, errlen, "vm %s: operation already in progress (%s)", r->vm,
			 busy->id);
		ret = -EBUSY;
		goto err;
	}
	ret = journal_save(m);
	pthread_mutex_unlock(&ferryd->lock);
	if (ret) {
		snprintf(err, errlen, "migration %s: cannot journal: %s", m->id, strerror(-ret));
		goto err;
	}
	m->busy = true; /* prep below runs in this thread */
	migstore_add(m);
	snprintf(id, FERRY_ID_LEN, "%s", m->id);
	log_info("migration %s: %s of vm %s from %s to %s", m->id, mig_type_name(m->type), m->vm,
		 m->src_host, m->dst_host);

	ret = mig_set_step(m, MIG_STEP_PREP);
	if (!ret)
		ret = cold_prep(m, err, errlen);
	pthread_mutex_lock(&ferryd->lock);
	m->busy = false;
	pthread_mutex_unlock(&ferryd->lock);
	if (ret) {
		/* Prechecks refused: nothing was done on either side worth keeping. */
		cold_set_error(m, err);
		cold_rollback(m);
		errno = -ret;
		return ret;
	}
	ret = cold_spawn(m, COLD_JOB_RUN);
	if (ret) {
		snprintf(err, errlen, "migration %s: cannot start: %s", m->id, strerror(-ret));
		errno = -ret;
	}
	return ret;
err:
	mig_free(m);
	errno = -ret;
	return ret;
}

static int cold_lookup(const char *id, struct migration **out, char *err, size_t errlen)
{
	struct migration *m;

	pthread_mutex_lock(&ferryd->lock);
	m = migstore_find_role(id, MIG_ROLE_SOURCE);
	if (!m)
		m = migstore_find(id);
	pthread_mutex_unlock(&ferryd->lock);
	if (!m) {
		snprintf(err, errlen, "%s: no such migration", id);
		return -ENOENT;
	}
	if (m->role != MIG_ROLE_SOURCE) {
		snprintf(err, errlen, "%s: coordinated by %s", id, m->src_host);
		return -EINVAL;
	}
	*out = m;
	return 0;
}

int cold_confirm(const char *id, char *err, size_t errlen)
{
	struct migration *m;
	int ret;

	ret = cold_lookup(id, &m, err, errlen);
	if (ret)
		return ret;
	if (m->step != MIG_STEP_FINISHED && m->step != MIG_STEP_CONFIRMING) {
		snprintf(err, errlen, "%s %s of vm %s is %s: only a finished one can be confirmed",
			 mig_type_name(m->type), m->id, m->vm, mig_status_name(m->step));
		return -EINVAL;
	}
	ret = cold_spawn(m, COLD_JOB_CONFIRM);
	if (ret == -EBUSY)
		snprintf(err, errlen, "%s: operation already in progress", m->id);
	return ret;
}

int cold_revert(const char *id, char *err, size_t errlen)
{
	struct migration *m;
	int ret;

	ret = cold_lookup(id, &m, err, errlen);
	if (ret)
		return ret;
	if (m->step != MIG_STEP_FINISHED && m->step != MIG_STEP_REVERTING &&
	    m->step != MIG_STEP_REVERT_SOURCE) {
		snprintf(err, errlen, "%s %s of vm %s is %s: only a finished one can be reverted",
			 mig_type_name(m->type), m->id, m->vm, mig_status_name(m->step));
		return -EINVAL;
	}
	ret = cold_spawn(m, COLD_JOB_REVERT);
	if (ret == -EBUSY)
		snprintf(err, errlen, "%s: operation already in progress", m->id);
	return ret;
}

void cold_resume(struct migration *m)
{
	enum cold_job job;

	switch (m->step) {
	case MIG_STEP_NEW:
	case MIG_STEP_PREP:
	case MIG_STEP_PRECOPY:
	case MIG_STEP_POWEROFF:
	case MIG_STEP_FINAL_COPY:
	case MIG_STEP_KEEP_SOURCE:
	case MIG_STEP_ROLLBACK:
		if (!m->error[0])
			snprintf(m->error, sizeof(m->error),
				 "interrupted at %s (ferryd restarted); rolled back",
				 mig_step_name(m->step));
		job = COLD_JOB_ROLLBACK;
		break;
	case MIG_STEP_FINISHING:
		job = COLD_JOB_RUN;
		break;
	case MIG_STEP_FINISHED:
		if (!m->auto_confirm &&
		    !(m->confirm_deadline_ms && wall_ms() >= m->confirm_deadline_ms))
			return;
		job = COLD_JOB_CONFIRM;
		break;
	case MIG_STEP_CONFIRMING:
		job = COLD_JOB_CONFIRM;
		break;
	case MIG_STEP_REVERTING:
	case MIG_STEP_REVERT_SOURCE:
		job = COLD_JOB_REVERT;
		break;
	default:
		return;
	}
	cold_spawn(m, job);
}
