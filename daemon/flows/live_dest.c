// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * live_dest.c - live migration, the destination host's side.  It shares
 * the preparation (record, disks, backing files, transfers, abort) with
 * cold migration (cold_dest.c); here are Nova's destination prechecks, the
 * backing chain put in place before libvirt's Prepare reads it, and the
 * resume once the source has sealed the residual.  Like every participant
 * it never decides to roll back on its own: it asks the coordinator.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/flows/flows.h"

static void live_version_str(uint64_t v, char *out, size_t len)
{
	snprintf(out, len, "%" PRIu64 ".%" PRIu64 ".%" PRIu64, v / 1000000, v / 1000 % 1000,
		 v % 1000);
}

/* Nova's check_can_live_migrate_destination, as far as this host can tell. */
static int live_check_host(struct json_object *req, const struct migration *m, char *err,
			   size_t errlen)
{
	const char *type = rpc_str(req, "hv_type"), *cpu = rpc_str(req, "cpu_xml");
	uint64_t hv = (uint64_t)rpc_int(req, "hv_version", 0);
	uint64_t lib = (uint64_t)rpc_int(req, "libvirt_version", 0);
	char have[32], want[32];
	struct virt_host h;
	bool ok;
	int ret;

	ret = virt_host_info(ferryd->virt, &h);
	if (ret) {
		snprintf(err, errlen, "%s: libvirtd does not answer (ComputeServiceUnavailable)",
			 ferryd->conf.host);
		return ret;
	}
	if (type && strcmp(type, h.type)) {
		snprintf(err, errlen, "%s: hypervisor %s, the source's is %s "
				      "(InvalidHypervisorType)",
			 ferryd->conf.host, h.type, type);
		return -EINVAL;
	}
	if (hv > h.hv_version || lib > h.libvirt_version) {
		bool q = hv > h.hv_version;

		live_version_str(q ? h.hv_version : h.libvirt_version, have, sizeof(have));
		live_version_str(q ? hv : lib, want, sizeof(want));
		snprintf(err, errlen, "%s: %s %s is older than %s's %s "
				      "(DestinationHypervisorTooOld)",
			 ferryd->conf.host, q ? h.type : "libvirt", have, m->src_host, want);
		return -EINVAL;
	}
	if (cpu) {
		ret = virt_cpu_compare(ferryd->virt, rpc_str(req, "virttype") ?: "qemu", cpu, &ok);
		if (ret || !ok) {
			snprintf(err, errlen, "%s: vm %s's CPU %s this host's hypervisor "
					      "(MigrationPreCheckError)",
				 ferryd->conf.host, m->vm,
				 ret ? "cannot be compared with" : "is not compatible with");
			return ret ? ret : -EINVAL;
		}
	}
	return 0;
}

struct json_object *live_dest_check(const struct rpc_ctx *ctx, struct json_object *req)
{
	const char *probe = rpc_str(req, "probe");
	struct json_object *mo, *rep;
	char err[1024] = "", path[PATH_MAX];
	struct migration *m;
	bool shared;
	int i, ret;

	if (!json_object_object_get_ex(req, "migration", &mo))
		return rpc_error(EINVAL, "live.check: no migration record");
	/* A name in our instances dir, nothing more: no path from a peer. */
	if (!probe || strchr(probe, '/') || strncmp(probe, ".ferry-shared-", 14))
		return rpc_error(EINVAL, "live.check: bad probe name");
	m = mig_new();
	if (!m)
		return rpc_error(ENOMEM, "out of memory");
	ret = mig_from_json(m, mo, err, sizeof(err));
	if (!ret && (m->type != MIG_TYPE_LIVE || strcmp(m->dst_host, ferryd->conf.host))) {
		snprintf(err, sizeof(err), "live.check: not a live migration to %s",
			 ferryd->conf.host);
		ret = -EINVAL;
	}
	if (!ret)
		ret = live_check_host(req, m, err, sizeof(err));
	if (!ret)
		ret = live_net_check_dest(m, req, err, sizeof(err));
	snprintf(path, sizeof(path), "%s/%s", ferryd->conf.instances_dir, probe);
	shared = access(path, F_OK) == 0;
	if (!ret) {
		/* Without over-commit a disk needs its whole virtual size here. */
		for (i = 0; i < m->ndisks; i++) {
			struct mig_disk *d = &m->disks[i];

			if (!m->live.disk_over_commit)
				d->alloc_bytes = MAX(d->alloc_bytes, d->virtual_bytes);
		}
		m->live.block = !shared; /* shared: only memory counts */
		ret = place_precheck(m, err, sizeof(err));
	}
	mig_free(m);
	if (ret) {
		log_warn("live.check from %s: refused: %s", ctx->peer ?: "?", err);
		return rpc_error(-ret, "%s", err);
	}
	rep = rpc_ok();
	json_object_object_add(rep, "shared", json_object_new_boolean(shared));
	return rep;
}

static struct json_object *__live_ready(struct migration *m)
{
	char err[1024] = "";
	int ret;

	if (m->step != LIVE_PREP)
		return rpc_error(EINVAL, "%s: not preparing: %s", m->id, mig_status_name(m));
	ret = cold_dest_backings_commit(m, err, sizeof(err));
	return ret ? rpc_error(-ret, "%s", err) : rpc_ok();
}

struct json_object *live_dest_ready(const struct rpc_ctx *ctx, struct json_object *req)
{
	struct json_object *rep = NULL;
	struct migration *m = cold_dest_hold(req, &live_flow, &rep);

	return m ? cold_dest_release(m, __live_ready(m)) : rep;
}

/* The source sealed the residual: run (unless the VM was paused). */
static struct json_object *__live_resume(struct migration *m, bool resume)
{
	struct json_object *rep;
	struct virt_job j;
	enum virt_power p;
	int ret;

	if (m->step != LIVE_COMPLETED) {
		if (m->step != LIVE_PREP && m->step != LIVE_RESUMING)
			return rpc_error(EINVAL, "%s: cannot resume: %s", m->id,
					 mig_status_name(m));
		ret = engine_step_set(m, LIVE_RESUMING);
		if (ret)
			return rpc_error(-ret, "%s: cannot journal", m->id);
		xfer_unregister_mig(m->id);
		ret = virt_domain_state(ferryd->virt, m->vm, &p);
		if (ret)
			return rpc_error(-ret, "%s: vm %s: %s", ferryd->conf.host, m->vm,
					 strerror(-ret));
		if (p == VIRT_PAUSED && resume) {
			ret = virt_domain_resume(ferryd->virt, m->vm);
			if (ret)
				return rpc_error(-ret, "%s: cannot resume vm %s", ferryd->conf.host,
						 m->vm);
		}
		mig_lock(m);
		m->live.t_resume_tai_ns = vif_now_ns();
		mig_unlock(m);
		live_net_resumed(m);
		/* libvirt's own account of the migration (read once: it then drops it). */
		if (!virt_domain_job(ferryd->virt, m->vm, true, &j)) {
			mig_lock(m);
			m->m.qemu_downtime_ms = j.downtime_ms;
			m->m.memory_total_bytes = j.memory_total;
			m->m.memory_processed_bytes = j.memory_processed;
			m->m.memory_bps = j.memory_bps;
			m->m.ram_iterations = j.memory_iteration;
			mig_unlock(m);
		}
		mig_lock(m);
		m->m.t_resumed_ms = wall_ms();
		mig_unlock(m);
		ret = engine_step_set(m, LIVE_COMPLETED);
		if (ret)
			return rpc_error(-ret, "%s: cannot journal", m->id);
		log_info("migration %s: vm %s %s here", m->id, m->vm,
			 resume ? "resumed" : "stays paused");
	}
	rep = rpc_ok();
	json_object_object_add(rep, "qemu_downtime_ms",
			       json_object_new_uint64(m->m.qemu_downtime_ms));
	json_object_object_add(rep, "memory_total_bytes",
			       json_object_new_uint64(m->m.memory_total_bytes));
	json_object_object_add(rep, "memory_processed_bytes",
			       json_object_new_uint64(m->m.memory_processed_bytes));
	json_object_object_add(rep, "memory_bps", json_object_new_uint64(m->m.memory_bps));
	json_object_object_add(rep, "ram_iterations", json_object_new_uint64(m->m.ram_iterations));
	return rep;
}

struct json_object *live_dest_resume(const struct rpc_ctx *ctx, struct json_object *req)
{
	struct json_object *rep = NULL;
	struct migration *m = cold_dest_hold(req, &live_flow, &rep);

	return m ? cold_dest_release(m, __live_resume(m, rpc_bool(req, "resume"))) : rep;
}

/* What libvirt here holds of the migration's VM, and whether it has arrived. */
struct json_object *live_dest_state(const struct rpc_ctx *ctx, struct json_object *req)
{
	const char *id = rpc_str(req, "id");
	struct migration *m = id ? store_find(id, MIG_ROLE_DEST) : NULL;
	struct json_object *rep;
	enum virt_power p;
	bool arrived;
	int ret;

	if (!m || m->flow != &live_flow)
		return rpc_error(ENOENT, "%s: no such live migration on %s", id ?: "?",
				 ferryd->conf.host);
	ret = virt_domain_arrived(ferryd->virt, m->vm, &p, &arrived);
	if (ret && ret != -ENOENT)
		return rpc_error(-ret, "%s: vm %s: %s", ferryd->conf.host, m->vm, strerror(-ret));
	rep = rpc_ok();
	json_object_object_add(rep, "power",
			       json_object_new_string(ret ? "absent" : virt_power_name(p)));
	json_object_object_add(rep, "arrived", json_object_new_boolean(!ret && arrived));
	json_object_object_add(rep, "vif_monitor", json_object_new_boolean(vifmon_enabled()));
	json_object_object_add(rep, "vifs_watched", json_object_new_boolean(live_net_watched(m->vm,
											     NULL)));
	return rep;
}

/* After a restart: tear down what the coordinator gave up, else wait for it. */
void live_dest_participant(struct migration *m)
{
	struct json_object *req, *rep;
	char err[1024];
	const char *s;
	int step;

	if (m->undoing) {
		cold_dest_teardown(m);
		return;
	}
	if (m->step != LIVE_PREP)
		return; /* resuming: the coordinator asks again */
	req = json_object_new_object();
	json_object_object_add(req, "op", json_object_new_string("status"));
	json_object_object_add(req, "id", json_object_new_string(m->id));
	rep = peer_call(m->coordinator, req, 5000, err, sizeof(err));
	json_object_put(req);
	if (!rep) {
		if (errno == ENOENT) {
			log_warn("migration %s: unknown to %s; removing what was prepared", m->id,
				 m->coordinator);
			cold_dest_teardown(m);
		}
		return;
	}
	s = rpc_str(rep, "step");
	step = s ? flow_step_find(&live_flow, s) : -1;
	if (step == LIVE_FAILED || step == LIVE_CANCELLED)
		cold_dest_teardown(m);
	json_object_put(rep);
}
