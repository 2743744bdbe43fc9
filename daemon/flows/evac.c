// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * evac.c - evacuate: rebuild on this host a VM whose owner is dead, from
 * the cluster's record of it (Nova's evacuate).  This host coordinates;
 * the dead one takes no part.
 *
 *   new -> check (the record, the owner's alive key gone, room)  accepted
 *       -> grace (the owner's key stays gone evacuate_grace_s)   pre-migrating
 *       -> claim (one etcd transaction: the record's revision as
 *                 checked and the owner's key still absent; owner =
 *                 this host, generation + 1)                      pre-migrating
 *       -> rebuild (disks: reused on shared storage, made anew
 *                   otherwise; the definition, with the generation) (ponr)
 *       -> start (the record's power state, or --target-state; on shared
 *                 storage it waits for a disk lease held elsewhere)
 *       -> done
 *
 * The grace covers a dead host's fence: its VMs are destroyed from before
 * its lease's expiry, and a TCG guest's destroy takes seconds here
 * (cluster/fence.c).  Once the claim is taken the VM is this host's: the
 * flow only goes forward.  Without shared storage the disks are new and
 * empty: the VM's data is lost, as with Nova, and the record and the CLI
 * say so.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/flows/flows.h"

#define REBUILDING "rebuilding"
#define SPAWNING "rebuild_spawning"
#define EVAC_POLL_MS 100
#define EVAC_LEASE_POLL_MS 1000

/* 1 with the lease's seconds left when @host's alive key exists, else 0. */
static int evac_owner_alive(const char *host, int64_t *left, char *err, size_t errlen)
{
	struct etcd_kv *kv = NULL;
	char key[128];
	int n = 0, ret;

	*left = -1;
	if (!ferryd->etcd) {
		snprintf(err, errlen, "host %s's alive key: no cluster record (etcd)", host);
		return -ENOTCONN;
	}
	member_key(host, key, sizeof(key));
	ret = etcd_get(ferryd->etcd, key, false, &kv, &n, NULL);
	if (ret) {
		snprintf(err, errlen, "host %s's alive key: %s", host, etcd_error(ferryd->etcd));
		return ret;
	}
	if (n && kv[0].lease)
		etcd_lease_ttl(ferryd->etcd, kv[0].lease, left);
	etcd_kvs_free(kv, n);
	return n > 0;
}

/* Disks and flavor from the record into the migration record. */
static int evac_take_disks(struct migration *m, struct json_object *rec, char *err,
			   size_t errlen)
{
	struct json_object *disks = json_object_object_get(rec, "disks");
	size_t i, n = disks ? json_object_array_length(disks) : 0;
	bool any_local = false, any_shared = false;

	if (n > FERRYD_MAX_DISKS) {
		snprintf(err, errlen, "vm %s: %zu disks in its record, at most %d", m->vm, n,
			 FERRYD_MAX_DISKS);
		return -E2BIG;
	}
	m->ndisks = 0;
	for (i = 0; i < n; i++) {
		struct json_object *j = json_object_array_get_idx(disks, i);
		struct mig_disk *d = &m->disks[m->ndisks++];

		memset(d, 0, sizeof(*d));
		snprintf(d->target, sizeof(d->target), "%s", rpc_str(j, "target") ?: "?");
		snprintf(d->format, sizeof(d->format), "%s", rpc_str(j, "format") ?: "raw");
		snprintf(d->dst_path, sizeof(d->dst_path), "%s", rpc_str(j, "path") ?: "");
		memcpy(d->src_path, d->dst_path, sizeof(d->src_path));
		snprintf(d->backend, sizeof(d->backend), "%s", disk_file_ops.name);
		d->kind = rpc_bool(j, "swap") ? MIG_DISK_SWAP : MIG_DISK_DATA;
		d->virtual_bytes = d->new_virtual_bytes = (uint64_t)rpc_int(j, "size_bytes", 0);
		snprintf(d->backing, sizeof(d->backing), "%s", rpc_str(j, "backing") ?: "");
		if (strcmp(rpc_str(j, "type") ?: "file", "file") || d->dst_path[0] != '/') {
			snprintf(err, errlen, "vm %s: disk %s (%s) is not a file: only file disks "
					      "can be evacuated",
				 m->vm, d->target, d->dst_path);
			return -EOPNOTSUPP;
		}
		if (rpc_bool(j, "shared"))
			any_shared = true;
		else
			any_local = true;
	}
	if (any_shared && any_local) {
		snprintf(err, errlen, "vm %s: some disks on shared storage, some not: cannot "
				      "evacuate mixed storage",
			 m->vm);
		return -EINVAL;
	}
	m->evac.shared = any_shared;
	return 0;
}

/* Each disk there (shared storage) or none in the way (made anew). */
static int evac_check_disks(struct migration *m, char *err, size_t errlen)
{
	struct stat st;
	int i;

	for (i = 0; i < m->ndisks; i++) {
		const struct mig_disk *d = &m->disks[i];
		bool there = stat(d->dst_path, &st) == 0;

		if (m->evac.shared && !there) {
			snprintf(err, errlen, "vm %s: disk %s: %s is on shared storage per its record, "
					      "but not here (InvalidSharedStorage)",
				 m->vm, d->target, d->dst_path);
			return -ENOENT;
		}
		if (!m->evac.shared && there) {
			snprintf(err, errlen, "vm %s: disk %s: %s exists here; the record says it is "
					      "not shared: refusing to overwrite it",
				 m->vm, d->target, d->dst_path);
			return -EEXIST;
		}
		if (!m->evac.shared && !d->virtual_bytes) {
			snprintf(err, errlen, "vm %s: disk %s: its record has no size", m->vm,
				 d->target);
			return -EINVAL;
		}
	}
	return 0;
}

static int evac_run_check(struct migration *m, char *err, size_t errlen)
{
	struct json_object *rec = NULL;
	const char *owner, *power;
	enum virt_power pw;
	uint64_t free_mib = 0;
	int64_t left;
	int ret;

	if (!ferryd->etcd) {
		snprintf(err, errlen, "vm %s: host %s has no cluster record (etcd in ferryd.conf): "
				      "evacuate needs one",
			 m->vm, ferryd->conf.host);
		return -ENOTCONN;
	}
	ret = vmrec_get(m->vm, &rec, &m->evac.record_rev, err, errlen);
	if (ret)
		return ret;
	owner = rpc_str(rec, "owner") ?: "";
	snprintf(m->src_host, sizeof(m->src_host), "%s", owner);
	if (!strcmp(owner, ferryd->conf.host)) {
		snprintf(err, errlen, "vm %s: its host is %s: the target host can't be the same one",
			 m->vm, owner);
		ret = -EINVAL;
		goto out;
	}
	ret = evac_owner_alive(owner, &left, err, errlen);
	if (ret < 0)
		goto out;
	if (ret) {
		snprintf(err, errlen, "vm %s: host %s is alive: its lease is held for %lld s more "
				      "(Compute service of %s is still in use)",
			 m->vm, owner, (long long)left, owner);
		ret = -EBUSY;
		goto out;
	}
	m->evac.owner_gone_ms = wall_ms();
	if (virt_domain_state(ferryd->virt, m->vm, &pw) != -ENOENT) {
		snprintf(err, errlen, "vm %s is defined on %s already: undefine it first", m->vm,
			 ferryd->conf.host);
		ret = -EEXIST;
		goto out;
	}
	snprintf(m->uuid, sizeof(m->uuid), "%s", rpc_str(rec, "uuid") ?: "");
	m->old_flavor.vcpus = m->new_flavor.vcpus = (int)rpc_int(rec, "vcpus", 0);
	m->old_flavor.memory_mib = m->new_flavor.memory_mib =
		(uint64_t)rpc_int(rec, "memory_mib", 0);
	if (!virt_node_free_memory_mib(ferryd->virt, &free_mib) &&
	    free_mib < m->new_flavor.memory_mib + ferryd->conf.reserved_host_memory_mib) {
		snprintf(err, errlen, "vm %s: %s has %llu MiB free, it needs %llu MiB (and %llu "
				      "reserved): no room (NoValidHost)",
			 m->vm, ferryd->conf.host, (unsigned long long)free_mib,
			 (unsigned long long)m->new_flavor.memory_mib,
			 (unsigned long long)ferryd->conf.reserved_host_memory_mib);
		ret = -ENOSPC;
		goto out;
	}
	ret = evac_take_disks(m, rec, err, errlen);
	if (ret)
		goto out;
	if (m->evac.ask_shared && !m->evac.shared) {
		snprintf(err, errlen, "vm %s: --on-shared-storage, but its record says its disks "
				      "are not on shared storage",
			 m->vm);
		ret = -EINVAL;
		goto out;
	}
	ret = evac_check_disks(m, err, errlen);
	if (ret)
		goto out;
	power = rpc_str(rec, "power") ?: "";
	m->evac.start = m->evac.target == 1 ||
			(!m->evac.target && (!strcmp(power, "running") || !strcmp(power, "paused")));
	m->was_running = m->evac.start;
	m->evac.generation = rpc_int(rec, "generation", 0) + 1;
	m->evac.data_lost = !m->evac.shared;
	free(m->dst_xml);
	m->dst_xml = strdup(rpc_str(rec, "xml") ?: "");
	if (!m->dst_xml || !m->dst_xml[0]) {
		snprintf(err, errlen, "vm %s: its record has no definition", m->vm);
		ret = -EINVAL;
	}
out:
	json_object_put(rec);
	return ret;
}

/* The owner's key stays gone for the grace (its fence has had its time). */
static int evac_run_grace(struct migration *m, char *err, size_t errlen)
{
	uint64_t until = now_ms() + (uint64_t)ferryd->conf.evacuate_grace_s * 1000;
	int64_t left;
	int ret;

	log_info("migration %s: vm %s: host %s's key is gone; waiting %d s for its fence", m->id,
		 m->vm, m->src_host, ferryd->conf.evacuate_grace_s);
	do {
		if (atomic_load(&m->stop)) {
			snprintf(err, errlen, "stopped while waiting for host %s's fence", m->src_host);
			return -ECANCELED;
		}
		ret = evac_owner_alive(m->src_host, &left, err, errlen);
		if (ret < 0)
			return ret;
		if (ret) {
			snprintf(err, errlen, "vm %s: host %s is back in the cluster: not evacuated",
				 m->vm, m->src_host);
			return -EBUSY;
		}
		usleep(EVAC_POLL_MS * 1000);
	} while (now_ms() < until);
	return 0;
}

/* The record as this evacuation writes it. */
static char *evac_claim_value(struct migration *m, struct json_object *rec)
{
	char *s;

	json_object_object_add(rec, "owner", json_object_new_string(ferryd->conf.host));
	json_object_object_add(rec, "generation", json_object_new_int64(m->evac.generation));
	json_object_object_add(rec, "power",
			       json_object_new_string(m->evac.start ? "running" : "shutoff"));
	json_object_object_add(rec, "evacuated_from", json_object_new_string(m->src_host));
	json_object_object_add(rec, "evacuation", json_object_new_string(m->id));
	json_object_object_add(rec, "data_lost", json_object_new_boolean(m->evac.data_lost));
	json_object_object_add(rec, "updated_ms", json_object_new_uint64(wall_ms()));
	json_object_object_add(rec, "updated_by", json_object_new_string(ferryd->conf.host));
	s = strdup(json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN));
	return s;
}

/* Is the record ours by this evacuation (a claim that went through)? */
static bool evac_claimed(struct migration *m, struct json_object *rec)
{
	return !strcmp(rpc_str(rec, "owner") ?: "", ferryd->conf.host) &&
	       !strcmp(rpc_str(rec, "evacuation") ?: "", m->id);
}

static int evac_run_claim(struct migration *m, char *err, size_t errlen)
{
	char vkey[128], hkey[128], *val;
	struct json_object *rec = NULL;
	struct etcd_cmp cmp[2];
	struct etcd_op op = {};
	int64_t rev;
	int ret;

	ret = vmrec_get(m->vm, &rec, &rev, err, errlen);
	if (ret)
		return ret;
	if (evac_claimed(m, rec)) {
		json_object_put(rec);
		engine_commit(m);
		return 0; /* taken before a restart */
	}
	vmrec_key(m->vm, vkey, sizeof(vkey));
	member_key(m->src_host, hkey, sizeof(hkey));
	cmp[0] = (struct etcd_cmp){ .key = vkey, .what = ETCD_CMP_MOD,
				    .revision = m->evac.record_rev };
	cmp[1] = (struct etcd_cmp){ .key = hkey, .what = ETCD_CMP_CREATE, .revision = 0 };
	val = evac_claim_value(m, rec);
	json_object_put(rec);
	if (!val)
		return -ENOMEM;
	op.key = vkey;
	op.value = val;
	ret = etcd_txn(ferryd->etcd, cmp, 2, &op, 1);
	free(val);
	if (ret == -ESTALE) {
		snprintf(err, errlen, "vm %s: its record changed, or host %s came back, since the "
				      "check: not evacuated (another host may have taken it)",
			 m->vm, m->src_host);
		return ret;
	}
	if (ret) {
		snprintf(err, errlen, "vm %s: claiming its record: %s", m->vm,
			 etcd_error(ferryd->etcd));
		return ret;
	}
	engine_crash_point(m, "claimed"); /* taken, not journaled yet: the settle's case */
	engine_commit(m);
	log_info("migration %s: vm %s is %s's now: generation %lld (was on %s)%s", m->id, m->vm,
		 ferryd->conf.host, (long long)m->evac.generation, m->src_host,
		 m->evac.data_lost ? "; its disks are made anew: its data is lost" : "");
	return 0;
}

/* After a restart in the claim: go on if it went through, else walk back. */
static int evac_settle_claim(struct migration *m, char *err, size_t errlen)
{
	struct json_object *rec = NULL;
	int64_t rev;
	bool ours;

	if (vmrec_get(m->vm, &rec, &rev, err, errlen))
		return EVAC_CLAIM; /* cannot tell: try the claim again */
	ours = evac_claimed(m, rec);
	json_object_put(rec);
	if (ours) {
		engine_commit(m);
		snprintf(err, 64, "the claim went through");
		return EVAC_REBUILD;
	}
	return EVAC_CLAIM; /* not taken: the claim's comparisons decide again */
}

static int evac_make_disk(const struct migration *m, const struct mig_disk *d, char *err,
			  size_t errlen)
{
	char dir[PATH_MAX], size[32];
	struct stat st;
	int ret;

	snprintf(dir, sizeof(dir), "%s", d->dst_path);
	ret = mkdir_p(dirname(dir), 0755);
	if (ret) {
		snprintf(err, errlen, "vm %s: disk %s: %s: %s", m->vm, d->target, dir,
			 strerror(-ret));
		return ret;
	}
	if (stat(d->dst_path, &st) == 0 && (uint64_t)st.st_size > 0)
		return 0; /* made before a restart */
	snprintf(size, sizeof(size), "%llu", (unsigned long long)d->virtual_bytes);
	if (!strcmp(d->format, "qcow2") && d->backing[0]) {
		/* On its base image, as Nova rebuilds: the base must be here. */
		char bfmt[16];
		char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", bfmt, "-b",
				 (char *)d->backing, (char *)d->dst_path, size, NULL };

		if (access(d->backing, R_OK) || disk_image_format(d->backing, bfmt, sizeof(bfmt))) {
			snprintf(err, errlen, "vm %s: disk %s: its base image %s is not on this host",
				 m->vm, d->target, d->backing);
			return -ENOENT;
		}
		ret = run_cmd(argv, err, errlen);
	} else if (!strcmp(d->format, "qcow2")) {
		char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", (char *)d->dst_path,
				 size, NULL };

		ret = run_cmd(argv, err, errlen);
	} else {
		ret = disk_file_ops.create(&ferryd->conf, d->dst_path, d->virtual_bytes);
		if (ret)
			snprintf(err, errlen, "vm %s: disk %s: create %s: %s", m->vm, d->target,
				 d->dst_path, strerror(-ret));
	}
	return ret;
}

static int evac_run_rebuild(struct migration *m, char *err, size_t errlen)
{
	enum virt_power pw;
	int i, ret;

	for (i = 0; !m->evac.shared && i < m->ndisks; i++) {
		ret = evac_make_disk(m, &m->disks[i], err, errlen);
		if (ret)
			return ret;
	}
	if (virt_domain_state(ferryd->virt, m->vm, &pw) == -ENOENT) {
		ret = virt_domain_define(ferryd->virt, m->dst_xml);
		if (ret) {
			snprintf(err, errlen, "vm %s: define from its record: %s", m->vm,
				 strerror(-ret));
			return ret;
		}
	}
	ret = vmrec_meta_set(m->vm, m->evac.generation);
	if (ret)
		snprintf(err, errlen, "vm %s: generation %lld into its definition: %s", m->vm,
			 (long long)m->evac.generation, strerror(-ret));
	return ret;
}

/*
 * On shared storage under libvirt's sanlock lock manager, a disk's lease is
 * taken before QEMU's vCPUs first run (libvirt starts QEMU paused), and a
 * start whose lease another host holds fails with VIR_ERR_RESOURCE_BUSY
 * (-EBUSY), that QEMU killed unrun: the old host's QEMU runs
 * on (its ferryd frozen, say), or that host's sanlock lease has not expired
 * yet (8 x io_timeout + 60 s after its last renewal; libvirt may also block
 * in the start until then).  The VM is this host's now: wait for its old
 * copy to go, up to evacuate_lease_wait_s, then fail without starting it.
 */
static int evac_run_start(struct migration *m, char *err, size_t errlen)
{
	uint64_t t0 = now_ms(), until = t0 + (uint64_t)ferryd->conf.evacuate_lease_wait_s * 1000;
	enum virt_power pw;
	int ret;

	if (!m->evac.start)
		return 0;
	ret = virt_domain_state(ferryd->virt, m->vm, &pw);
	if (!ret && (pw == VIRT_RUNNING || pw == VIRT_PAUSED))
		return 0;
	while ((ret = virt_domain_start(ferryd->virt, m->vm)) == -EBUSY) {
		if (!m->evac.lease_wait_ms)
			log_warn("migration %s: vm %s: its disk lease is held by another host "
				 "(sanlock; %s's copy may still run): waiting up to %d s for it",
				 m->id, m->vm, m->src_host, ferryd->conf.evacuate_lease_wait_s);
		mig_lock(m);
		m->evac.lease_wait_ms = (now_ms() - t0) ?: 1;
		mig_unlock(m);
		if (atomic_load(&m->stop)) {
			snprintf(err, errlen, "vm %s: stopped while its disk lease was held elsewhere",
				 m->vm);
			return -ECANCELED;
		}
		if (now_ms() >= until) {
			snprintf(err, errlen,
				 "vm %s: its disk lease is still held by another host after %d s "
				 "(sanlock): %s's copy may still run; not started here",
				 m->vm, ferryd->conf.evacuate_lease_wait_s, m->src_host);
			return -EBUSY;
		}
		usleep(EVAC_LEASE_POLL_MS * 1000);
	}
	if (ret) {
		snprintf(err, errlen, "vm %s: start: %s", m->vm, strerror(-ret));
		return ret;
	}
	mig_lock(m);
	m->evac.start_ms = now_ms() - t0;
	if (m->evac.lease_wait_ms)
		m->evac.lease_wait_ms = m->evac.start_ms;
	mig_unlock(m);
	if (m->evac.lease_wait_ms)
		log_info("migration %s: vm %s: started once its disk lease was free, after %llu ms",
			 m->id, m->vm, (unsigned long long)m->evac.lease_wait_ms);
	return 0;
}

static const struct flow_step evac_steps[EVAC__NSTEPS] = {
	[EVAC_NEW] = { "new", "accepted", REBUILDING, NULL, NULL, NULL, FLOW_RESUME_UNDO,
		       FLOW_STEP_SYNC },
	[EVAC_CHECK] = { "check", "accepted", REBUILDING, NULL, evac_run_check, NULL,
			 FLOW_RESUME_UNDO, FLOW_STEP_SYNC },
	[EVAC_GRACE] = { "grace", "pre-migrating", REBUILDING, NULL, evac_run_grace, NULL,
			 FLOW_RESUME_UNDO, 0 },
	[EVAC_CLAIM] = { "claim", "pre-migrating", REBUILDING, NULL, evac_run_claim, NULL,
			 FLOW_RESUME_SETTLE, 0, evac_settle_claim },
	[EVAC_REBUILD] = { "rebuild", "pre-migrating", REBUILDING, NULL, evac_run_rebuild, NULL,
			   FLOW_RESUME_RERUN, 0 },
	[EVAC_START] = { "start", "pre-migrating", SPAWNING, NULL, evac_run_start, NULL,
			 FLOW_RESUME_RERUN, 0 },
	[EVAC_DONE] = { "done", "done", NULL, NULL, NULL, NULL, FLOW_RESUME_RERUN,
			FLOW_STEP_TERMINAL },
	[EVAC_FAILED] = { "failed", "failed", NULL, NULL, NULL, NULL, FLOW_RESUME_RERUN,
			  FLOW_STEP_TERMINAL },
	[EVAC_CANCELLED] = { "cancelled", "cancelled", NULL, NULL, NULL, NULL, FLOW_RESUME_RERUN,
			     FLOW_STEP_TERMINAL },
};

/* ferry evacuate VM [--to HOST] [--on-shared-storage] [--target-state S] */
static struct json_object *evac_request(const struct rpc_ctx *ctx, struct json_object *req)
{
	const char *vm = rpc_str(req, "vm"), *to = rpc_str(req, "to");
	const char *state = rpc_str(req, "target_state");
	struct json_object *rep;
	struct migration *m;
	char err[1024];
	int ret;

	if (!vm || !*vm || strlen(vm) >= FERRY_NAME_MAX)
		return rpc_error(EINVAL, "evacuate: need a VM name");
	if (state && strcmp(state, "active") && strcmp(state, "stopped"))
		return rpc_error(EINVAL, "vm %s: --target-state '%s': active or stopped", vm, state);
	/* The evacuating host coordinates: ask it. */
	if (to && *to && strcmp(to, ferryd->conf.host)) {
		if (!conf_peer(&ferryd->conf, to))
			return rpc_error(ENOENT, "vm %s: unknown host '%s'", vm, to);
		return rpc_forward(to, req);
	}
	m = mig_new();
	if (!m)
		return rpc_error(ENOMEM, "out of memory");
	m->flow = &evac_flow;
	m->type = MIG_TYPE_EVACUATE;
	m->role = MIG_ROLE_DEST;
	snprintf(m->vm, sizeof(m->vm), "%s", vm);
	snprintf(m->dst_host, sizeof(m->dst_host), "%s", ferryd->conf.host);
	snprintf(m->src_host, sizeof(m->src_host), "?");
	/* --target-state given: it decides; else the record's power state. */
	m->evac.target = !state ? 0 : !strcmp(state, "active") ? 1 : 2;
	m->evac.ask_shared = rpc_bool(req, "on_shared_storage");
	ret = mig_id_generate(m->id, sizeof(m->id));
	if (ret) {
		mig_free(m);
		return rpc_error(-ret, "vm %s: %s", vm, strerror(-ret));
	}
	ret = engine_start(m, err, sizeof(err));
	if (ret)
		return rpc_error(-ret, "%s", err);
	rep = rpc_ok();
	json_object_object_add(rep, "id", json_object_new_string(m->id));
	return rep;
}

/* A live host that may take VMs, and its room as placing goes. */
struct evac_place {
	char host[FERRY_NAME_MAX];
	int64_t free_mib;               /* free memory less the host's own reserve */
};

/* Alive hosts but @dead, with their room (this one and its peers). */
static int evac_candidates(const char *dead, struct evac_place *c, int max)
{
	struct peer_reply r[FERRYD_MAX_PEERS];
	struct json_object *alive, *q;
	uint64_t mib = 0;
	int i, n = 0, np = 0, err;

	alive = member_list(&err);
	if (!alive)
		return err;
	for (i = 0; i < ferryd->conf.npeers && np < FERRYD_MAX_PEERS; i++) {
		const char *h = ferryd->conf.peers[i].name;
		struct json_object *v;

		if (strcmp(h, dead) && json_object_object_get_ex(alive, h, &v) &&
		    rpc_bool(v, "alive"))
			r[np++].host = h;
	}
	q = json_object_new_object();
	json_object_object_add(q, "op", json_object_new_string("host_info"));
	peer_call_all(r, np, q, 3000);
	json_object_put(q);
	if (strcmp(ferryd->conf.host, dead) && !virt_node_free_memory_mib(ferryd->virt, &mib) &&
	    n < max) {
		snprintf(c[n].host, sizeof(c[n].host), "%s", ferryd->conf.host);
		c[n++].free_mib = (int64_t)mib - (int64_t)ferryd->conf.reserved_host_memory_mib;
	}
	for (i = 0; i < np; i++) {
		if (r[i].rep && n < max) {
			snprintf(c[n].host, sizeof(c[n].host), "%s", r[i].host);
			c[n++].free_mib = rpc_int(r[i].rep, "free_memory_mib", 0) -
					  rpc_int(r[i].rep, "reserved_memory_mib", 0);
		}
		json_object_put(r[i].rep);
	}
	json_object_put(alive);
	return n;
}

static int evac_by_memory(const void *a, const void *b)
{
	int64_t x = rpc_int(*(struct json_object *const *)a, "memory_mib", 0);
	int64_t y = rpc_int(*(struct json_object *const *)b, "memory_mib", 0);

	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * ferry host-evacuate HOST: every VM a dead HOST owns, each evacuated to
 * the live host with the most free memory left as they are placed (the
 * largest first), each its own evacuation on that host.
 */
static struct json_object *evac_host_request(const struct rpc_ctx *ctx, struct json_object *req)
{
	const char *dead = rpc_str(req, "dead_host"), *state = rpc_str(req, "target_state");
	struct json_object *rep, *arr, *vms[256];
	struct evac_place c[FERRYD_MAX_PEERS + 1];
	struct etcd_kv *kv = NULL;
	char err[512];
	int i, j, n = 0, nc, nv = 0, ret;
	int64_t left;

	if (!ferryd->etcd)
		return rpc_error(ENOTCONN, "host-evacuate: %s has no cluster record (etcd)",
				 ferryd->conf.host);
	if (!dead || !*dead)
		return rpc_error(EINVAL, "host-evacuate: need a HOST");
	ret = evac_owner_alive(dead, &left, err, sizeof(err));
	if (ret < 0)
		return rpc_error(-ret, "%s", err);
	if (ret)
		return rpc_error(EBUSY, "host %s is alive: its lease is held for %lld s more "
					"(Compute service of %s is still in use)",
				 dead, (long long)left, dead);
	ret = etcd_get(ferryd->etcd, VMREC_PREFIX, true, &kv, &n, NULL);
	if (ret)
		return rpc_error(-ret, "host-evacuate: %s", etcd_error(ferryd->etcd));
	for (i = 0; i < n && nv < (int)ARRAY_SIZE(vms); i++) {
		struct json_object *o = json_tokener_parse(kv[i].value);

		if (o && !strcmp(rpc_str(o, "owner") ?: "", dead) &&
		    strcmp(rpc_str(o, "power") ?: "", "undefined"))
			vms[nv++] = o;
		else
			json_object_put(o);
	}
	etcd_kvs_free(kv, n);
	nc = evac_candidates(dead, c, (int)ARRAY_SIZE(c));
	qsort(vms, (size_t)nv, sizeof(vms[0]), evac_by_memory);
	rep = rpc_ok();
	arr = json_object_new_array();
	for (i = 0; i < nv; i++) {
		struct json_object *one = json_object_new_object(), *sub, *r;
		int64_t mem = rpc_int(vms[i], "memory_mib", 0);
		int best = -1;

		json_object_object_add(one, "vm", json_object_new_string(rpc_str(vms[i], "vm") ?: "?"));
		for (j = 0; j < nc; j++)
			if (c[j].free_mib >= mem && (best < 0 || c[j].free_mib > c[best].free_mib))
				best = j;
		if (best < 0) {
			json_object_object_add(one, "error", json_object_new_string(
							     "no live host has room (NoValidHost)"));
			json_object_array_add(arr, one);
			continue;
		}
		c[best].free_mib -= mem;
		json_object_object_add(one, "to", json_object_new_string(c[best].host));
		sub = json_object_new_object();
		json_object_object_add(sub, "op", json_object_new_string("evacuate"));
		json_object_object_add(sub, "vm", json_object_new_string(rpc_str(vms[i], "vm") ?: ""));
		json_object_object_add(sub, "to", json_object_new_string(c[best].host));
		if (state)
			json_object_object_add(sub, "target_state", json_object_new_string(state));
		r = evac_request(ctx, sub);
		json_object_put(sub);
		if (rpc_bool(r, "ok"))
			json_object_object_add(one, "id", json_object_new_string(rpc_str(r, "id") ?: ""));
		else
			json_object_object_add(one, "error",
					       json_object_new_string(rpc_str(r, "error") ?: "?"));
		json_object_put(r);
		json_object_array_add(arr, one);
	}
	for (i = 0; i < nv; i++)
		json_object_put(vms[i]);
	json_object_object_add(rep, "host", json_object_new_string(dead));
	json_object_object_add(rep, "vms", arr);
	return rep;
}

static const struct rpc_cmd evac_cmds[] = {
	{ "evacuate", RPC_FROM_ANY | RPC_STARTS, evac_request },
	{ "host-evacuate", RPC_FROM_LOCAL | RPC_STARTS, evac_host_request },
};

static const enum mig_type evac_types[] = { MIG_TYPE_EVACUATE };

static const char *evac_vm_host(const struct migration *m)
{
	return m->step == EVAC_DONE ? m->dst_host : m->src_host;
}

const struct flow evac_flow = {
	.name = "evacuate",
	.version = 1,
	.steps = evac_steps,
	.nsteps = EVAC__NSTEPS,
	.ponr = EVAC_REBUILD,
	.failed = EVAC_FAILED,
	.cancelled = EVAC_CANCELLED,
	.cmds = evac_cmds,
	.ncmds = ARRAY_SIZE(evac_cmds),
	.types = evac_types,
	.ntypes = ARRAY_SIZE(evac_types),
	.vm_host = evac_vm_host,
};
