// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * live.c - live migration (Nova's os-migrateLive), as a flow of the
 * engine.  The source host coordinates; the destination's side is
 * live_dest.c plus the preparation it shares with cold migration
 * (cold_dest.c).  The RAM phase and its controller are live_ram.c.
 *
 *   new -> precheck (Nova's checks; shared storage or block)  accepted
 *       -> queued (a slot of live_max_concurrent)              queued
 *       -> prep (destination disks, backing files)             preparing
 *       -> precopy (block: tracked disk rounds, VM running)    running
 *       -> ram (libvirt moves RAM to a paused destination;
 *               ferry keeps copying dirty disk ranges)         running
 *       -> switched (source done: the residual delta, durable) post-migrating (ponr)
 *       -> resuming (the destination runs)                     post-migrating
 *       -> cleanup (the source's disks removed)                post-migrating
 *       -> completed
 *
 * Before "switched" an abort or a failure walks back and the VM keeps
 * running on the source; libvirt's switchover is the point of no return,
 * and a restart in "ram" settles by what libvirt left (live_settle_ram).
 * With shared storage there is nothing to copy: libvirt resumes the
 * destination itself.  See docs/live-migration.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/flows/flows.h"

#define LIVE_CALL_MS 5000

enum live_block_choice {
	LIVE_BLOCK_AUTO = 0,
	LIVE_BLOCK_YES,
	LIVE_BLOCK_NO,
};

struct live_priv *live_priv(struct migration *m)
{
	if (!m->priv)
		m->priv = calloc(1, sizeof(struct live_priv));
	return m->priv;
}

static pthread_mutex_t live_slots_lock = PTHREAD_MUTEX_INITIALIZER;
static int live_slots_used;

static void live_slot_release(struct live_priv *p)
{
	if (!p->slot)
		return;
	pthread_mutex_lock(&live_slots_lock);
	live_slots_used--;
	pthread_mutex_unlock(&live_slots_lock);
	p->slot = false;
}

static void live_priv_free(struct migration *m)
{
	struct live_priv *p = m->priv;

	live_ram_join(m, false);
	cold_sessions_close(p->cold.st, m->ndisks);
	cold_tracking_stop(p->cold.st, m->ndisks);
	live_slot_release(p);
	free(p);
	m->priv = NULL;
}

/* ---- precheck -------------------------------------------------------- */

/* A file only this migration makes, in the instances dir (Nova's test file). */
static void live_probe_name(const struct migration *m, char *out, size_t len)
{
	snprintf(out, len, ".ferry-shared-%s", m->id);
}

static int live_probe_create(const struct migration *m, char *path, size_t len)
{
	char name[64];
	int fd;

	live_probe_name(m, name, sizeof(name));
	snprintf(path, len, "%s/%s", ferryd->conf.instances_dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/*
 * Which disks could a shared instances dir hold?  Files under it.  Any
 * other disk (an LV, a file elsewhere) is local to this host.
 */
static int live_local_disk(const struct migration *m)
{
	size_t n = strlen(ferryd->conf.instances_dir);
	int i;

	for (i = 0; i < m->ndisks; i++) {
		const struct mig_disk *d = &m->disks[i];

		if (disk_has(d, DISK_CAP_BLOCK) || strncmp(d->src_path, ferryd->conf.instances_dir, n) ||
		    d->src_path[n] != '/')
			return i;
	}
	return -1;
}

/* What the destination must judge: our hypervisor, the VM's CPU, the probe. */
static struct json_object *live_check_req(struct migration *m, const char *probe)
{
	struct json_object *req = rpc_req("live.check", m);
	struct live_priv *p = m->priv;
	int ret;
	char virttype[16] = "", *xml, *cpu = NULL;
	struct virt_host h;

	xml = virt_domain_live_xml(ferryd->virt, m->vm);
	if (xml)
		cpu = domxml_cpu(xml, virttype, sizeof(virttype));
	free(xml);
	mig_lock(m);
	json_object_object_add(req, "migration", mig_to_json(m, true));
	mig_unlock(m);
	json_object_object_add(req, "probe", json_object_new_string(probe));
	ret = live_net_check_req(m, req);
	if (p)
		p->nnics = MAX(ret, 0);
	if (!virt_host_info(ferryd->virt, &h)) {
		json_object_object_add(req, "hv_type", json_object_new_string(h.type));
		json_object_object_add(req, "hv_version", json_object_new_uint64(h.hv_version));
		json_object_object_add(req, "libvirt_version",
				       json_object_new_uint64(h.libvirt_version));
	}
	if (cpu) {
		json_object_object_add(req, "cpu_xml", json_object_new_string(cpu));
		json_object_object_add(req, "virttype", json_object_new_string(virttype));
	}
	free(cpu);
	return req;
}

/* Shared storage or block migration, as asked and as found. */
static int live_storage_decide(struct migration *m, enum live_block_choice choice, bool seen,
			       char *err, size_t errlen)
{
	int local = live_local_disk(m);
	bool shared = seen && local < 0;

	if (seen && local >= 0) {
		snprintf(err, errlen, "vm %s: disk %s (%s) is not in the instances dir %s shares "
				      "with %s: mixed storage cannot be live-migrated "
				      "(InvalidSharedStorage)",
			 m->vm, m->disks[local].target, m->disks[local].src_path,
			 ferryd->conf.instances_dir, m->dst_host);
		return -EINVAL;
	}
	if (choice == LIVE_BLOCK_YES && shared) {
		snprintf(err, errlen, "vm %s: %s and %s share %s: block migration is not possible "
				      "on shared storage (InvalidSharedStorage)",
			 m->vm, ferryd->conf.host, m->dst_host, ferryd->conf.instances_dir);
		return -EINVAL;
	}
	if (choice == LIVE_BLOCK_NO && !shared) {
		snprintf(err, errlen, "vm %s: its disks are not on storage %s shares with %s: "
				      "live migration needs --block-migrate (InvalidLocalStorage)",
			 m->vm, ferryd->conf.host, m->dst_host);
		return -EINVAL;
	}
	m->live.block = !shared;
	return 0;
}

static int live_run_precheck(struct migration *m, char *err, size_t errlen)
{
	struct live_priv *p = live_priv(m);
	struct json_object *req, *rep;
	char probe[PATH_MAX], name[64];
	enum virt_power pw;
	int ret;

	if (!p)
		return -ENOMEM;
	ret = virt_domain_state(ferryd->virt, m->vm, &pw);
	if (ret) {
		snprintf(err, errlen, "vm %s: %s (InstanceNotFound)", m->vm, strerror(-ret));
		return ret;
	}
	if (pw != VIRT_RUNNING && pw != VIRT_PAUSED) {
		snprintf(err, errlen, "vm %s is %s: only an ACTIVE or PAUSED VM can be "
				      "live-migrated (InstanceInvalidState)",
			 m->vm, virt_power_name(pw));
		return -EINVAL;
	}
	ret = live_probe_create(m, probe, sizeof(probe));
	if (ret) {
		snprintf(err, errlen, "%s: cannot create the shared-storage test file %s: %s",
			 ferryd->conf.host, probe, strerror(-ret));
		return ret;
	}
	live_probe_name(m, name, sizeof(name));
	req = live_check_req(m, name);
	rep = peer_call(m->dst_host, req, LIVE_CALL_MS, err, errlen);
	ret = rep ? 0 : (errno ? -errno : -EIO);
	json_object_put(req); /* peer_call does not take it */
	unlink(probe);
	if (!rep) {
		if (cold_transient(-ret) && !strstr(err, "(ComputeServiceUnavailable)"))
			snprintf(err + strlen(err), errlen - strlen(err),
				 " (ComputeServiceUnavailable)");
		return ret;
	}
	ret = live_storage_decide(m, (enum live_block_choice)p->block_choice,
				  rpc_bool(rep, "shared"), err, errlen);
	json_object_put(rep);
	/* The source's taps carry the programs already, unless ferryd came later. */
	if (!ret && p->nnics && vifmon_enabled() && vifmon_vm_watch(m->vm) < 0)
		log_warn("migration %s: vm %s: not every VIF is watched here", m->id, m->vm);
	return ret;
}

/* ---- queued ---------------------------------------------------------- */

/* Older live migrations still waiting here go first. */
static bool live_queue_first(const struct migration *m)
{
	struct migration **all = NULL;
	bool first = true;
	int i, n;

	n = store_list(&all);
	for (i = 0; i < n && first; i++) {
		const struct migration *o = all[i];

		if (o == m || o->flow != &live_flow || !o->coordinating)
			continue;
		mig_lock(o);
		if (o->step == LIVE_QUEUED && !o->undoing &&
		    (o->m.t_created_ms < m->m.t_created_ms ||
		     (o->m.t_created_ms == m->m.t_created_ms && strcmp(o->id, m->id) < 0)))
			first = false;
		mig_unlock(o);
	}
	free(all);
	return first;
}

static int live_run_queued(struct migration *m, char *err, size_t errlen)
{
	struct live_priv *p = live_priv(m);
	bool logged = false;

	if (!p)
		return -ENOMEM;
	for (;;) {
		if (engine_stopping(m))
			return -ECANCELED;
		if (live_queue_first(m)) {
			pthread_mutex_lock(&live_slots_lock);
			if (live_slots_used < ferryd->conf.live_max_concurrent) {
				live_slots_used++;
				p->slot = true;
			}
			pthread_mutex_unlock(&live_slots_lock);
			if (p->slot)
				return 0;
		}
		if (!logged)
			log_info("migration %s: queued behind %d live migration(s) "
				 "(live_max_concurrent %d)",
				 m->id, live_slots_used, ferryd->conf.live_max_concurrent);
		logged = true;
		usleep(200 * 1000);
	}
}

/* ---- prep and pre-copy ----------------------------------------------- */

static int live_run_prep(struct migration *m, char *err, size_t errlen)
{
	struct json_object *rep;
	int ret;

	ret = cold_prep(m, err, errlen);
	if (ret || !m->live.block)
		return ret;
	/* libvirt's Prepare reads the backing chain: it must be in place now. */
	rep = cold_call(m, rpc_req("live.ready", m), false, err, errlen);
	if (!rep)
		return errno ? -errno : -EIO;
	json_object_put(rep);
	return 0;
}

static int live_run_precopy(struct migration *m, char *err, size_t errlen)
{
	struct live_priv *p = live_priv(m);

	if (!p)
		return -ENOMEM;
	if (!m->live.block)
		return 0;
	mig_lock(m);
	m->m.t_precopy_ms = wall_ms();
	mig_unlock(m);
	return cold_precopy(m, p->cold.st, err, errlen);
}

/* ---- after the switchover (only forward) ---------------------------- */

/*
 * The source's QEMU has completed the migration (the destination's Finish
 * ran), so the tracker has seen its last write, the flush and qcow2's
 * inactivation included: copy the residual and make it durable.  After a
 * restart nothing was tracked: copy the disks whole.
 */
static int live_run_switched(struct migration *m, char *err, size_t errlen)
{
	struct live_priv *p = live_priv(m);
	uint64_t t0 = now_ms(), copied = 0;
	bool whole = false;
	int i, ret;

	if (!p)
		return -ENOMEM;
	if (!m->live.block)
		return 0;
	engine_crash_point(m, "before-seal");
	for (i = 0; i < m->ndisks; i++)
		if (m->disks[i].kind == MIG_DISK_DATA && !p->cold.st[i].track)
			whole = true;
	if (whole)
		log_warn("migration %s: no tracker state after a restart: copying vm %s's disks "
			 "whole while it is paused on %s",
			 m->id, m->vm, m->dst_host);
	ret = cold_round(m, p->cold.st, whole, &copied, err, errlen);
	if (!ret)
		ret = cold_sessions_commit(m, p->cold.st, err, errlen);
	if (ret)
		return ret;
	mig_lock(m);
	m->m.seal_ms = now_ms() - t0;
	m->m.seal_bytes = copied;
	m->m.last_delta_bytes = copied;
	mig_unlock(m);
	log_info("migration %s: residual %" PRIu64 " bytes sealed in %" PRIu64 " ms", m->id,
		 copied, m->m.seal_ms);
	engine_crash_point(m, "sealed");
	return 0;
}

static int live_run_resuming(struct migration *m, char *err, size_t errlen)
{
	struct json_object *req = rpc_req("live.resume", m), *rep;
	uint64_t t0 = now_ms();

	json_object_object_add(req, "resume", json_object_new_boolean(!m->was_paused));
	rep = cold_call(m, req, true, err, errlen);
	if (!rep)
		return errno ? -errno : -EIO;
	mig_lock(m);
	m->m.resume_ms = now_ms() - t0;
	m->m.t_resumed_ms = wall_ms();
	m->m.t_finished_ms = m->m.t_resumed_ms;
	m->m.qemu_downtime_ms = (uint64_t)rpc_int(rep, "qemu_downtime_ms", 0);
	/* libvirt's final account, from the destination that received it all. */
	if (rpc_int(rep, "memory_total_bytes", 0) > 0) {
		m->m.memory_total_bytes = (uint64_t)rpc_int(rep, "memory_total_bytes", 0);
		m->m.memory_processed_bytes = (uint64_t)rpc_int(rep, "memory_processed_bytes", 0);
		m->m.memory_bps = (uint64_t)rpc_int(rep, "memory_bps", 0);
		m->m.ram_iterations = (uint64_t)rpc_int(rep, "ram_iterations", 0);
		m->m.memory_remaining_bytes = 0;
	}
	/*
	 * The guest stopped when the source was seen paused, and runs again
	 * now.  libvirt may report the pause late (its domain state follows
	 * QEMU's STOP event), so QEMU's own pause plus what followed the
	 * switchover bounds it from below as well: the larger counts.
	 * Without the moment (a restart) only the latter is known.
	 */
	if (m->was_paused) {
		m->m.downtime_ms = 0;
	} else {
		uint64_t seen = 0, parts = 0;

		if (m->m.t_off_ms && m->m.t_resumed_ms >= m->m.t_off_ms)
			seen = m->m.t_resumed_ms - m->m.t_off_ms;
		if (m->m.t_switch_ms && m->m.t_resumed_ms >= m->m.t_switch_ms)
			parts = m->m.qemu_downtime_ms + m->m.t_resumed_ms - m->m.t_switch_ms;
		m->m.downtime_ms = MAX(seen, parts);
	}
	mig_unlock(m);
	json_object_put(rep);
	return 0;
}

/* The VM runs on the destination: the source's copy of it goes. */
static int live_run_cleanup(struct migration *m, char *err, size_t errlen)
{
	struct live_priv *p = m->priv;
	enum virt_power pw;
	int i, ret = 0;

	if (p)
		cold_tracking_stop(p->cold.st, m->ndisks);
	live_net_cutover(m);
	live_ram_join(m, true);
	/* libvirt undefined it (UNDEFINE_SOURCE); a leftover definition goes. */
	if (!virt_domain_state(ferryd->virt, m->vm, &pw) && pw == VIRT_SHUTOFF)
		virt_domain_undefine(ferryd->virt, m->vm);
	if (!m->live.block)
		return 0;
	for (i = 0; i < m->ndisks && !ret; i++) {
		const struct mig_disk *d = &m->disks[i];

		if (!d->in_inst_dir)
			ret = disk_ops_find(d->backend)->remove(d->src_path, false);
	}
	if (!ret && m->inst_dir[0])
		ret = inst_dir_remove(m->inst_dir);
	if (ret)
		snprintf(err, errlen, "vm %s: removing the source's disks: %s", m->vm,
			 strerror(-ret));
	return ret;
}

#define MIGRATING "migrating"

static const struct flow_step live_steps[LIVE__NSTEPS] = {
	[LIVE_NEW] = { "new", "accepted", MIGRATING, NULL, NULL, NULL, FLOW_RESUME_UNDO,
		       FLOW_STEP_SYNC },
	[LIVE_PRECHECK] = { "precheck", "accepted", MIGRATING, NULL, live_run_precheck, NULL,
			    FLOW_RESUME_UNDO, FLOW_STEP_SYNC },
	[LIVE_QUEUED] = { "queued", "queued", MIGRATING, NULL, live_run_queued, NULL,
			  FLOW_RESUME_UNDO, 0 },
	[LIVE_PREP] = { "prep", "preparing", MIGRATING, NULL, live_run_prep, cold_prep_undo,
			FLOW_RESUME_UNDO, 0 },
	[LIVE_PRECOPY] = { "precopy", "running", MIGRATING, NULL, live_run_precopy, NULL,
			   FLOW_RESUME_UNDO, 0 },
	[LIVE_RAM] = { "ram", "running", MIGRATING, NULL, live_run_ram, live_undo_ram,
		       FLOW_RESUME_SETTLE, 0, live_settle_ram },
	[LIVE_SWITCHED] = { "switched", "post-migrating", MIGRATING, NULL, live_run_switched,
			    NULL, FLOW_RESUME_RERUN, 0 },
	[LIVE_RESUMING] = { "resuming", "post-migrating", MIGRATING, NULL, live_run_resuming,
			    NULL, FLOW_RESUME_RERUN, 0 },
	[LIVE_CLEANUP] = { "cleanup", "post-migrating", MIGRATING, NULL, live_run_cleanup, NULL,
			   FLOW_RESUME_RERUN, 0 },
	[LIVE_COMPLETED] = { "completed", "completed", NULL, NULL, NULL, NULL, FLOW_RESUME_RERUN,
			     FLOW_STEP_TERMINAL },
	[LIVE_FAILED] = { "failed", "failed", NULL, NULL, NULL, NULL, FLOW_RESUME_RERUN,
			  FLOW_STEP_TERMINAL },
	[LIVE_CANCELLED] = { "cancelled", "cancelled", NULL, NULL, NULL, NULL, FLOW_RESUME_RERUN,
			     FLOW_STEP_TERMINAL },
};

/* ---- the operator's requests ---------------------------------------- */

static int live_block_parse(const char *s, enum live_block_choice *out)
{
	if (!s || !strcmp(s, "auto"))
		*out = LIVE_BLOCK_AUTO;
	else if (!strcmp(s, "yes"))
		*out = LIVE_BLOCK_YES;
	else if (!strcmp(s, "no"))
		*out = LIVE_BLOCK_NO;
	else
		return -EINVAL;
	return 0;
}

static struct json_object *live_migrate(const struct rpc_ctx *ctx, struct json_object *req)
{
	const char *vm = rpc_str(req, "vm"), *to = rpc_str(req, "to");
	struct cold_request r = { .type = MIG_TYPE_LIVE };
	int64_t downtime = rpc_int(req, "max_downtime_ms", 0);
	int64_t bw = rpc_int(req, "bandwidth_bps", 0);
	char err[1024], owner[FERRY_NAME_MAX];
	enum live_block_choice choice;
	struct json_object *rep;
	struct migration *m;
	int ret;

	if (!vm || strlen(vm) >= sizeof(r.vm))
		return rpc_error(EINVAL, "live-migrate: need a VM name");
	if (live_block_parse(rpc_str(req, "block_migrate"), &choice))
		return rpc_error(EINVAL, "vm %s: --block-migrate '%s': auto, yes or no", vm,
				 rpc_str(req, "block_migrate"));
	if (downtime < 0 || downtime > 60000 || bw < 0)
		return rpc_error(EINVAL, "vm %s: max downtime 1-60000 ms, bandwidth >= 0", vm);
	if (!rpc_bool(req, "forwarded") && rpc_vm_owner(vm, owner, sizeof(owner)) == 0 &&
	    owner[0])
		return rpc_forward(owner, req);
	snprintf(r.vm, sizeof(r.vm), "%s", vm);
	if (to)
		snprintf(r.to, sizeof(r.to), "%s", to);
	if (to && !strcmp(to, ferryd->conf.host))
		return rpc_error(EINVAL, "vm %s: cannot live-migrate to its own host %s "
					 "(UnableToMigrateToSelf)",
				 vm, ferryd->conf.host);

	m = mig_new();
	if (!m)
		return rpc_error(ENOMEM, "out of memory");
	m->flow = &live_flow;
	m->type = MIG_TYPE_LIVE;
	m->role = MIG_ROLE_SOURCE;
	snprintf(m->vm, sizeof(m->vm), "%s", r.vm);
	snprintf(m->src_host, sizeof(m->src_host), "%s", ferryd->conf.host);
	snprintf(m->src_instances_dir, sizeof(m->src_instances_dir), "%s",
		 ferryd->conf.instances_dir);
	m->live.disk_over_commit = rpc_bool(req, "disk_over_commit");
	m->live.max_downtime_ms = downtime ? (uint32_t)downtime :
					     (uint32_t)ferryd->conf.live_max_downtime_ms;
	m->live.bandwidth_bps = (uint64_t)bw;
	ret = cold_gather(m, &r, err, sizeof(err));
	if (!ret) {
		enum virt_power pw;

		m->was_paused = !virt_domain_state(ferryd->virt, m->vm, &pw) && pw == VIRT_PAUSED;
		ret = cold_pick_dest(&r, m, err, sizeof(err));
	}
	if (!ret)
		ret = mig_id_generate(m->id, sizeof(m->id));
	if (!ret && !live_priv(m))
		ret = -ENOMEM;
	if (ret) {
		if (ret == -ENOENT && strstr(err, "no such VM"))
			snprintf(err + strlen(err), sizeof(err) - strlen(err), " (InstanceNotFound)");
		else if (cold_transient(-ret))
			snprintf(err + strlen(err), sizeof(err) - strlen(err),
				 " (ComputeServiceUnavailable)");
		mig_free(m);
		return rpc_error(-ret, "%s", err);
	}
	live_priv(m)->block_choice = (int)choice; /* the precheck decides */
	ret = engine_start(m, err, sizeof(err));
	if (ret)
		return rpc_error(-ret, "%s", err);
	rep = rpc_ok();
	json_object_object_add(rep, "id", json_object_new_string(m->id));
	return rep;
}

static int live_control(struct migration *m, const char *what, char *err, size_t errlen)
{
	int ret = 0;

	if (strcmp(what, "force_complete")) {
		snprintf(err, errlen, "%s: no such control: %s", m->id, what);
		return -EINVAL;
	}
	mig_lock(m);
	if (m->undoing || mig_terminal(m) || m->step < LIVE_QUEUED || m->step > LIVE_RAM) {
		snprintf(err, errlen, "live migration %s of vm %s is %s: force-complete applies "
				      "while it is queued or running",
			 m->id, m->vm, mig_status_name(m));
		ret = -EINVAL;
	} else {
		m->live.force_complete = true;
	}
	mig_unlock(m);
	if (!ret)
		log_warn("migration %s: force-complete requested by the operator", m->id);
	return ret;
}

static const struct rpc_cmd live_cmds[] = {
	{ "live-migrate", RPC_FROM_ANY | RPC_STARTS, live_migrate },
	{ "live.check", RPC_FROM_PEER | RPC_STARTS, live_dest_check },
	{ "live.ready", RPC_FROM_PEER, live_dest_ready },
	{ "live.resume", RPC_FROM_PEER, live_dest_resume },
	{ "live.state", RPC_FROM_PEER, live_dest_state },
	{ "live.net", RPC_FROM_PEER, live_dest_net },
};

static const enum mig_type live_types[] = { MIG_TYPE_LIVE };

/* Completed: on the destination; failed or cancelled: rolled back home. */
static const char *live_vm_host(const struct migration *m)
{
	return m->step == LIVE_COMPLETED ? m->dst_host : m->src_host;
}

const struct flow live_flow = {
	.name = "live",
	.version = 1,
	.steps = live_steps,
	.nsteps = LIVE__NSTEPS,
	.ponr = LIVE_SWITCHED,
	.failed = LIVE_FAILED,
	.cancelled = LIVE_CANCELLED,
	.cmds = live_cmds,
	.ncmds = ARRAY_SIZE(live_cmds),
	.types = live_types,
	.ntypes = ARRAY_SIZE(live_types),
	.participant_resume = live_dest_participant,
	.priv_free = live_priv_free,
	.control = live_control,
	.vm_host = live_vm_host,
};
