// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ops.c - the operator's requests that belong to no one flow: show,
 * migrations, hosts, and confirm, revert and abort of any flow's operation
 * wherever it is coordinated; and the peers' questions behind them.  Flows
 * register their own requests (flows/cold.c: migrate, resize, cold.*).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "daemon/cluster/cluster.h"

#define OPS_CALL_MS 5000
#define OPS_ASK_MS 3000 /* asking every peer: one deadline for all */

static struct json_object *ops_json(struct migration *m, bool full)
{
	struct json_object *o;

	mig_lock(m);
	o = mig_to_json(m, full);
	mig_unlock(m);
	return o;
}

/* Ask every peer at once; an array of the replies (unreachable ones skipped). */
static struct json_object *ops_ask_peers(struct json_object *req)
{
	struct peer_reply r[FERRYD_MAX_PEERS];
	struct json_object *all = json_object_new_array();
	int i, n = ferryd->conf.npeers;

	for (i = 0; i < n; i++)
		r[i].host = ferryd->conf.peers[i].name;
	peer_call_all(r, n, req, OPS_ASK_MS);
	for (i = 0; i < n; i++) {
		if (r[i].rep)
			json_object_array_add(all, r[i].rep);
		else
			log_debug(LOG_SUB_PEER, "%s", r[i].msg);
	}
	return all;
}

/* The locally known operation for "id" or "vm" (most recent). */
static struct migration *ops_find_local(struct json_object *req)
{
	const char *id = rpc_str(req, "id"), *vm = rpc_str(req, "vm");

	if (id)
		return store_find_any(id);
	if (vm)
		return store_latest_for_vm(vm);
	return NULL;
}

static struct json_object *op_find_migration(const struct rpc_ctx *ctx, struct json_object *req)
{
	struct json_object *rep;
	struct migration *m = ops_find_local(req);

	if (!m || (rpc_bool(req, "coordinating_only") && !m->coordinating))
		return rpc_error(ENOENT, "no such migration");
	rep = rpc_ok();
	json_object_object_add(rep, "migration", ops_json(m, false));
	return rep;
}

/*
 * Where is this operation coordinated?  Here ("" in host), on a peer (its
 * name), or nowhere known (-ENOENT).
 */
static int ops_locate(struct json_object *req, char *host, size_t len, char *id, size_t idlen)
{
	struct json_object *q, *all;
	struct migration *m = ops_find_local(req);
	size_t i;
	int ret = -ENOENT;

	if (m) {
		snprintf(id, idlen, "%s", m->id);
		snprintf(host, len, "%s", m->coordinating ? "" : m->coordinator);
		return 0;
	}
	q = json_object_new_object();
	json_object_object_add(q, "op", json_object_new_string("find_migration"));
	if (rpc_str(req, "id"))
		json_object_object_add(q, "id", json_object_new_string(rpc_str(req, "id")));
	if (rpc_str(req, "vm"))
		json_object_object_add(q, "vm", json_object_new_string(rpc_str(req, "vm")));
	json_object_object_add(q, "coordinating_only", json_object_new_boolean(true));
	all = ops_ask_peers(q);
	for (i = 0; i < json_object_array_length(all) && ret; i++) {
		struct json_object *r = json_object_array_get_idx(all, i), *mo;

		if (!json_object_object_get_ex(r, "migration", &mo) || !rpc_str(mo, "coordinator") ||
		    !rpc_str(mo, "id"))
			continue;
		snprintf(host, len, "%s", rpc_str(mo, "coordinator"));
		snprintf(id, idlen, "%s", rpc_str(mo, "id"));
		ret = 0;
	}
	json_object_put(all);
	json_object_put(q);
	return ret;
}

/* confirm, revert, abort, force_complete: wherever the coordinator is. */
static struct json_object *ops_act(struct json_object *req, const char *what)
{
	char host[FERRY_NAME_MAX], id[FERRY_ID_LEN], err[1024];
	const char *which = rpc_str(req, "id") ? rpc_str(req, "id") : rpc_str(req, "vm");
	struct json_object *fwd, *rep;
	struct migration *m;
	int ret;

	if (!which)
		return rpc_error(EINVAL, "%s: need a VM name or migration id", what);
	if (ops_locate(req, host, sizeof(host), id, sizeof(id)))
		return rpc_error(ENOENT, "%s: no migration found on any reachable host", which);
	if (host[0] && strcmp(host, ferryd->conf.host)) {
		fwd = json_object_new_object();
		json_object_object_add(fwd, "op", json_object_new_string(what));
		json_object_object_add(fwd, "id", json_object_new_string(id));
		rep = peer_call(host, fwd, OPS_CALL_MS, err, sizeof(err));
		json_object_put(fwd);
		return rep ? rep : rpc_error(errno, "%s", err);
	}
	m = store_find_any(id);
	if (!m || !m->coordinating)
		return rpc_error(ENOENT, "%s: no such migration coordinated here", id);
	if (!strcmp(what, "abort"))
		ret = engine_abort(m, err, sizeof(err));
	else if (!strcmp(what, "force_complete"))
		ret = engine_control(m, what, err, sizeof(err));
	else
		ret = engine_action(m, what, err, sizeof(err));
	if (ret)
		return rpc_error(-ret, "%s", err);
	rep = rpc_ok();
	json_object_object_add(rep, "id", json_object_new_string(id));
	return rep;
}

static struct json_object *op_confirm(const struct rpc_ctx *ctx, struct json_object *req)
{
	return ops_act(req, "confirm");
}

static struct json_object *op_revert(const struct rpc_ctx *ctx, struct json_object *req)
{
	return ops_act(req, "revert");
}

static struct json_object *op_abort(const struct rpc_ctx *ctx, struct json_object *req)
{
	return ops_act(req, "abort");
}

static struct json_object *op_force_complete(const struct rpc_ctx *ctx, struct json_object *req)
{
	return ops_act(req, "force_complete");
}

static struct json_object *op_show(const struct rpc_ctx *ctx, struct json_object *req)
{
	char coord[FERRY_NAME_MAX] = "", id[FERRY_ID_LEN] = "", err[512];
	struct json_object *rep = NULL, *q, *all;
	struct migration *m = ops_find_local(req);
	size_t i;

	if (m) {
		rep = rpc_ok();
		json_object_object_add(rep, "migration", ops_json(m, true));
		if (!m->coordinating && m->flow) {
			snprintf(coord, sizeof(coord), "%s", m->coordinator);
			snprintf(id, sizeof(id), "%s", m->id);
		}
	}
	/* The coordinator's record has the copy metrics; prefer it. */
	if (ctx->origin == RPC_LOCAL && coord[0] && strcmp(coord, ferryd->conf.host)) {
		q = json_object_new_object();
		json_object_object_add(q, "op", json_object_new_string("show"));
		json_object_object_add(q, "id", json_object_new_string(id));
		all = peer_call(coord, q, OPS_CALL_MS, err, sizeof(err));
		json_object_put(q);
		if (all) {
			json_object_put(rep);
			return all;
		}
	}
	if (rep || ctx->origin != RPC_LOCAL)
		return rep ? rep : rpc_error(ENOENT, "no such migration");
	all = ops_ask_peers(req);
	for (i = 0; i < json_object_array_length(all); i++) {
		struct json_object *r = json_object_array_get_idx(all, i), *mo;

		if (!json_object_object_get_ex(r, "migration", &mo))
			continue;
		json_object_put(rep);
		rep = json_object_get(r);
		if (rpc_bool(mo, "coordinating"))
			break;
	}
	json_object_put(all);
	if (!rep)
		return rpc_error(ENOENT, "%s: no such migration on any reachable host",
				 rpc_str(req, "id") ?: rpc_str(req, "vm") ?: "?");
	return rep;
}

/* Operations known here, optionally for one VM (a same-host resize once). */
static void ops_local_migrations(struct json_object *arr, const char *vm)
{
	struct migration **all = NULL;
	int i, n = store_list(&all);

	for (i = 0; i < n; i++) {
		struct migration *m = all[i];

		if ((vm && strcmp(m->vm, vm)) || (m->same_host && m->role == MIG_ROLE_DEST))
			continue;
		json_object_array_add(arr, ops_json(m, false));
	}
	free(all);
}

static bool ops_has_id(struct json_object *arr, const char *id, size_t *at)
{
	size_t i;

	for (i = 0; i < json_object_array_length(arr); i++) {
		if (!strcmp(rpc_str(json_object_array_get_idx(arr, i), "id") ?: "", id)) {
			*at = i;
			return true;
		}
	}
	return false;
}

static struct json_object *op_migrations(const struct rpc_ctx *ctx, struct json_object *req)
{
	struct json_object *rep = rpc_ok(), *arr = json_object_new_array(), *q, *all;
	const char *vm = rpc_str(req, "vm");
	size_t i, j, at;

	ops_local_migrations(arr, vm);
	if (ctx->origin == RPC_LOCAL && !rpc_bool(req, "local")) {
		q = json_object_get(req);
		json_object_object_add(q, "local", json_object_new_boolean(true));
		all = ops_ask_peers(q);
		for (i = 0; i < json_object_array_length(all); i++) {
			struct json_object *ms;

			if (!json_object_object_get_ex(json_object_array_get_idx(all, i),
						       "migrations", &ms))
				continue;
			for (j = 0; j < json_object_array_length(ms); j++) {
				struct json_object *m = json_object_array_get_idx(ms, j);
				const char *id = rpc_str(m, "id") ?: "";

				if (!ops_has_id(arr, id, &at))
					json_object_array_add(arr, json_object_get(m));
				else if (rpc_bool(m, "coordinating"))
					/* The coordinator's view wins. */
					json_object_array_put_idx(arr, at, json_object_get(m));
			}
		}
		json_object_put(all);
		json_object_put(q);
		/* Those of hosts that did not answer: the cluster's record. */
		if (migrec_merge(arr, vm))
			json_object_object_add(rep, "cluster_error",
					       json_object_new_string(etcd_error(ferryd->etcd)));
	}
	json_object_object_add(rep, "migrations", arr);
	return rep;
}

struct json_object *ops_host_info(void)
{
	struct json_object *rep = rpc_ok(), *vms;
	struct virt_domain_info *doms = NULL;
	struct migration **all = NULL;
	uint64_t free_mib = 0;
	struct statvfs sv;
	int i, n = 0, active = 0;

	json_object_object_add(rep, "host", json_object_new_string(ferryd->conf.host));
	json_object_object_add(rep, "version", json_object_new_string(FERRY_VERSION));
	json_object_object_add(rep, "peer_protocol", json_object_new_int(PEER_PROTO_VERSION));
	if (!virt_node_free_memory_mib(ferryd->virt, &free_mib))
		json_object_object_add(rep, "free_memory_mib", json_object_new_uint64(free_mib));
	json_object_object_add(rep, "reserved_memory_mib",
			       json_object_new_uint64(ferryd->conf.reserved_host_memory_mib));
	if (statvfs(ferryd->conf.instances_dir, &sv) == 0)
		json_object_object_add(rep, "free_disk_bytes",
				       json_object_new_uint64((uint64_t)sv.f_bavail * sv.f_frsize));
	vms = json_object_new_array();
	if (!virt_domain_list(ferryd->virt, &doms, &n)) {
		for (i = 0; i < n; i++) {
			struct json_object *d = json_object_new_object();
			struct migration *m = store_active_for_vm(doms[i].name);
			const char *task = NULL;

			json_object_object_add(d, "name", json_object_new_string(doms[i].name));
			json_object_object_add(d, "uuid", json_object_new_string(doms[i].uuid));
			json_object_object_add(d, "state",
					       json_object_new_string(virt_power_name(doms[i].state)));
			json_object_object_add(d, "vcpus", json_object_new_int(doms[i].vcpus));
			json_object_object_add(d, "memory_mib",
					       json_object_new_uint64(doms[i].memory_mib));
			if (m && m->flow) {
				mig_lock(m);
				task = mig_task_state(m);
				json_object_object_add(d, "migration",
						       json_object_new_string(m->id));
				json_object_object_add(d, "vm_state",
						       json_object_new_string(mig_vm_state(m)));
				mig_unlock(m);
			}
			json_object_object_add(d, "task_state",
					       task ? json_object_new_string(task) : NULL);
			json_object_array_add(vms, d);
		}
	}
	free(doms);
	n = store_list(&all);
	for (i = 0; i < n; i++) {
		mig_lock(all[i]);
		active += !mig_terminal(all[i]);
		mig_unlock(all[i]);
	}
	free(all);
	json_object_object_add(rep, "active_migrations", json_object_new_int(active));
	json_object_object_add(rep, "vms", vms);
	return rep;
}

static struct json_object *op_host_info(const struct rpc_ctx *ctx, struct json_object *req)
{
	return ops_host_info();
}

/* Every host at once, under one deadline: a dead peer costs it once. */
/* This host's own view of its lease: it may know it is out first. */
static struct json_object *ops_membership_json(void)
{
	struct json_object *c = json_object_new_object();
	struct member_state st;

	member_state_get(&st);
	json_object_object_add(c, "alive", json_object_new_boolean(st.alive));
	json_object_object_add(c, "lease", json_object_new_int64(st.lease));
	json_object_object_add(c, "renewals", json_object_new_uint64(st.renewals));
	json_object_object_add(c, "registrations", json_object_new_uint64(st.registrations));
	json_object_object_add(c, "deadline_in_ms",
			       json_object_new_int64(st.deadline_ms ? (int64_t)st.deadline_ms -
								      (int64_t)now_ms() :
								      0));
	if (st.err[0])
		json_object_object_add(c, "error", json_object_new_string(st.err));
	return c;
}

/* `ferry cluster`: this host's membership and etcd's list of hosts. */
static struct json_object *op_cluster(const struct rpc_ctx *ctx, struct json_object *req)
{
	struct json_object *rep = rpc_ok(), *cl;
	char msg[600];
	int err;

	json_object_object_add(rep, "host", json_object_new_string(ferryd->conf.host));
	json_object_object_add(rep, "etcd", json_object_new_string(ferryd->conf.etcd));
	if (!ferryd->etcd)
		return rep;
	json_object_object_add(rep, "endpoint",
			       json_object_new_string(etcd_endpoint(ferryd->etcd)));
	json_object_object_add(rep, "lease_ttl_s",
			       json_object_new_int(ferryd->conf.cluster_lease_ttl_s));
	json_object_object_add(rep, "membership", ops_membership_json());
	fence_state_json(rep);
	cl = member_list(&err);
	if (cl) {
		json_object_object_add(rep, "hosts", cl);
	} else {
		snprintf(msg, sizeof(msg), "%s", etcd_error(ferryd->etcd));
		json_object_object_add(rep, "etcd_error", json_object_new_string(msg));
	}
	return rep;
}

/* `ferry quarantine list|purge ID|restore ID --as NAME`, on the copy's host. */
static struct json_object *op_quarantine(const struct rpc_ctx *ctx, struct json_object *req)
{
	const char *action = rpc_str(req, "action") ?: "list", *id = rpc_str(req, "id");
	struct json_object *all, *rep;
	char err[1024] = "";
	size_t i;
	int ret;

	all = quarantine_list(err, sizeof(err));
	if (!all)
		return rpc_error(EIO, "%s", err);
	if (!strcmp(action, "list")) {
		rep = rpc_ok();
		json_object_object_add(rep, "quarantine", all);
		return rep;
	}
	if (strcmp(action, "purge") && strcmp(action, "restore")) {
		json_object_put(all);
		return rpc_error(EINVAL, "quarantine: '%s': list, purge or restore", action);
	}
	/* Held by another host: it acts on its own files. */
	for (i = 0; id && i < json_object_array_length(all); i++) {
		struct json_object *q = json_object_array_get_idx(all, i);
		const char *host = rpc_str(q, "host");

		if (!strcmp(rpc_str(q, "id") ?: "", id) && host &&
		    strcmp(host, ferryd->conf.host) && !rpc_bool(req, "forwarded")) {
			json_object_put(all);
			return rpc_forward(host, req);
		}
	}
	json_object_put(all);
	ret = !strcmp(action, "purge") ? quarantine_purge(id, err, sizeof(err)) :
					  quarantine_restore(id, rpc_str(req, "as"), err, sizeof(err));
	return ret ? rpc_error(-ret, "%s", err) : rpc_ok();
}

/* `ferry vms`: every VM record in etcd, and the stale copies on this host. */
static struct json_object *op_vms(const struct rpc_ctx *ctx, struct json_object *req)
{
	struct json_object *rep, *arr, *st;
	struct vmrec_stale stale[64];
	struct etcd_kv *kv;
	int i, n, ret;

	if (!ferryd->etcd)
		return rpc_error(-ENOTCONN, "%s: no etcd configured: no VM records",
				 ferryd->conf.host);
	ret = etcd_get(ferryd->etcd, VMREC_PREFIX, true, &kv, &n, NULL);
	if (ret)
		return rpc_error(ret, "VM records: %s", etcd_error(ferryd->etcd));
	rep = rpc_ok();
	arr = json_object_new_array();
	for (i = 0; i < n; i++) {
		struct json_object *o = json_tokener_parse(kv[i].value);

		if (!o || !json_object_is_type(o, json_type_object)) {
			json_object_put(o);
			continue;
		}
		/* The definition is for a rebuild, not for a table. */
		json_object_object_del(o, "xml");
		json_object_object_add(o, "mod_revision", json_object_new_int64(kv[i].mod_revision));
		json_object_array_add(arr, o);
	}
	etcd_kvs_free(kv, n);
	json_object_object_add(rep, "vms", arr);
	st = json_object_new_array();
	n = vmrec_stale_list(stale, (int)ARRAY_SIZE(stale));
	for (i = 0; i < n; i++) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "vm", json_object_new_string(stale[i].vm));
		json_object_object_add(o, "host", json_object_new_string(ferryd->conf.host));
		json_object_object_add(o, "owner", json_object_new_string(stale[i].owner));
		json_object_object_add(o, "generation", json_object_new_int64(stale[i].generation));
		json_object_object_add(o, "here_generation",
				       json_object_new_int64(stale[i].here_generation));
		json_object_array_add(st, o);
	}
	json_object_object_add(rep, "stale", st);
	return rep;
}

/*
 * What etcd says of each host, beside what the host said itself: its alive
 * key and the lease's time left, and hosts etcd knows that are no peer of
 * ours.  Without etcd in the configuration: "etcd": false, nothing else.
 */
static void ops_hosts_cluster(struct json_object *rep, struct json_object *arr)
{
	struct json_object *cl, *c;
	int err, i;
	char msg[300];

	json_object_object_add(rep, "etcd", json_object_new_boolean(ferryd->etcd != NULL));
	if (!ferryd->etcd)
		return;
	cl = member_list(&err);
	if (!cl) {
		snprintf(msg, sizeof(msg), "etcd: %s", etcd_error(ferryd->etcd));
		json_object_object_add(rep, "etcd_error", json_object_new_string(msg));
	}
	for (i = 0; i < (int)json_object_array_length(arr); i++) {
		struct json_object *h = json_object_array_get_idx(arr, i);
		const char *name = rpc_str(h, "host");

		if (!cl || !name)
			continue;
		if (json_object_object_get_ex(cl, name, &c)) {
			json_object_object_add(h, "cluster", json_object_get(c));
			json_object_object_del(cl, name);
		} else {
			c = json_object_new_object();
			json_object_object_add(c, "alive", json_object_new_boolean(false));
			json_object_object_add(h, "cluster", c);
		}
	}
	/* Known to etcd, not to our configuration. */
	if (cl) {
		json_object_object_foreach(cl, k, v) {
			struct json_object *h = json_object_new_object();

			json_object_object_add(h, "host", json_object_new_string(k));
			json_object_object_add(h, "addr", json_object_get(json_object_object_get(v, "addr")));
			json_object_object_add(h, "reachable", json_object_new_boolean(false));
			json_object_object_add(h, "error", json_object_new_string("not a peer of this host"));
			json_object_object_add(h, "self", json_object_new_boolean(false));
			json_object_object_add(h, "cluster", json_object_get(v));
			json_object_array_add(arr, h);
		}
		json_object_put(cl);
	}
	json_object_object_add(rep, "membership", ops_membership_json());
}

static struct json_object *op_hosts(const struct rpc_ctx *ctx, struct json_object *req)
{
	struct json_object *rep = rpc_ok(), *arr = json_object_new_array(), *self, *q;
	struct peer_reply r[FERRYD_MAX_PEERS];
	int i, n = ferryd->conf.npeers;
	char buf[300];

	for (i = 0; i < n; i++)
		r[i].host = ferryd->conf.peers[i].name;
	q = json_object_new_object();
	json_object_object_add(q, "op", json_object_new_string("host_info"));
	peer_call_all(r, n, q, OPS_ASK_MS);
	json_object_put(q);
	self = ops_host_info();
	json_object_object_del(self, "ok");
	json_object_object_add(self, "addr",
			       json_object_new_string(net_addr_str(&ferryd->conf.listen, buf,
								    sizeof(buf))));
	json_object_object_add(self, "reachable", json_object_new_boolean(true));
	json_object_object_add(self, "self", json_object_new_boolean(true));
	json_object_array_add(arr, self);
	for (i = 0; i < n; i++) {
		const struct peer_conf *p = &ferryd->conf.peers[i];
		struct json_object *h = r[i].rep;

		if (!h) {
			h = json_object_new_object();
			json_object_object_add(h, "host", json_object_new_string(p->name));
			json_object_object_add(h, "error", json_object_new_string(r[i].msg));
		}
		json_object_object_del(h, "ok");
		json_object_object_add(h, "addr", json_object_new_string(
							  net_addr_str(&p->addr, buf, sizeof(buf))));
		json_object_object_add(h, "reachable", json_object_new_boolean(r[i].rep != NULL));
		json_object_object_add(h, "self", json_object_new_boolean(false));
		json_object_array_add(arr, h);
	}
	ops_hosts_cluster(rep, arr);
	json_object_object_add(rep, "hosts", arr);
	return rep;
}

/* A peer asks: does @vm live here? */
static struct json_object *op_vm_owner(const struct rpc_ctx *ctx, struct json_object *req)
{
	struct json_object *rep = rpc_ok();
	const char *vm = rpc_str(req, "vm");
	enum virt_power p;

	json_object_object_add(rep, "here",
			       json_object_new_boolean(vm && virt_domain_state(ferryd->virt, vm,
									       &p) == 0));
	return rep;
}

/* A participant asks the coordinator where an operation stands. */
static struct json_object *op_status(const struct rpc_ctx *ctx, struct json_object *req)
{
	const char *id = rpc_str(req, "id");
	struct migration *m = id ? store_find_any(id) : NULL;
	struct json_object *rep;

	if (!m || !m->flow)
		return rpc_error(ENOENT, "%s: no such migration", id ? id : "?");
	rep = rpc_ok();
	mig_lock(m);
	json_object_object_add(rep, "flow", json_object_new_string(m->flow->name));
	json_object_object_add(rep, "step", json_object_new_string(m->flow->steps[m->step].name));
	json_object_object_add(rep, "phase", json_object_new_string(m->undoing ? "undo" : "run"));
	json_object_object_add(rep, "status", json_object_new_string(mig_status_name(m)));
	json_object_object_add(rep, "terminal", json_object_new_boolean(mig_terminal(m)));
	mig_unlock(m);
	return rep;
}

/* The VIF monitor's taps, of one VM or all, with their counters. */
static struct json_object *op_vifs(const struct rpc_ctx *ctx, struct json_object *req)
{
	const char *vm = rpc_str(req, "vm");
	struct vifmon_stat *st;
	struct json_object *rep, *a;
	char mac[24];
	int i, n;

	(void)ctx;
	if (!vifmon_enabled())
		return rpc_error(ENOTSUP, "%s: the VIF monitor is off (net_watch, or BPF failed: "
					  "see ferryd's log)",
				 ferryd->conf.host);
	st = calloc(256, sizeof(*st));
	if (!st)
		return rpc_error(ENOMEM, "out of memory");
	n = vifmon_vm_read(vm, st, 256);
	rep = rpc_ok();
	a = json_object_new_array();
	for (i = 0; i < n; i++) {
		struct json_object *o = json_object_new_object();
		const struct vifmon_stat *s = &st[i];

		json_object_object_add(o, "vm", json_object_new_string(s->vm));
		json_object_object_add(o, "tap", json_object_new_string(s->ifname));
		json_object_object_add(o, "ifindex", json_object_new_int(s->ifindex));
		json_object_object_add(o, "mac",
				       json_object_new_string(fmt_mac(s->mac, mac, sizeof(mac))));
		json_object_object_add(o, "bridge", json_object_new_string(s->bridge));
		json_object_object_add(o, "state",
				       json_object_new_string(s->gone ? "gone" :
							      s->attached ? "watched" :
							      s->expected ? "expected" :
									    "unwatched"));
		json_object_object_add(o, "reattaches", json_object_new_uint64(s->reattaches));
		json_object_object_add(o, "rx_counted",
				       json_object_new_boolean(s->hooks & VIF_HOOK_EGRESS));
		json_object_object_add(o, "attach_lag_ns", json_object_new_uint64(s->attach_lag_ns));
#define VIF_JSON(name, comment) \
	json_object_object_add(o, #name, json_object_new_uint64(s->have ? s->v.name : 0));
		FERRY_VIF_COUNTERS(VIF_JSON)
#undef VIF_JSON
		json_object_array_add(a, o);
	}
	free(st);
	json_object_object_add(rep, "host", json_object_new_string(ferryd->conf.host));
	json_object_object_add(rep, "now_ns", json_object_new_uint64(vif_now_ns()));
	json_object_object_add(rep, "vifs", a);
	return rep;
}

const struct rpc_cmd ops_cmds[] = {
	{ "confirm", RPC_FROM_ANY, op_confirm },
	{ "revert", RPC_FROM_ANY, op_revert },
	{ "abort", RPC_FROM_ANY, op_abort },
	{ "force_complete", RPC_FROM_ANY, op_force_complete },
	{ "show", RPC_FROM_ANY, op_show },
	{ "migrations", RPC_FROM_ANY, op_migrations },
	{ "hosts", RPC_FROM_ANY, op_hosts },
	{ "cluster", RPC_FROM_ANY, op_cluster },
	{ "vms", RPC_FROM_ANY, op_vms },
	{ "quarantine", RPC_FROM_ANY, op_quarantine },
	{ "host_info", RPC_FROM_ANY, op_host_info },
	{ "list", RPC_FROM_ANY, op_host_info },
	{ "find_migration", RPC_FROM_ANY, op_find_migration },
	{ "vm_owner", RPC_FROM_PEER, op_vm_owner },
	{ "status", RPC_FROM_PEER, op_status },
	{ "vifs", RPC_FROM_ANY, op_vifs },
};
const int ops_ncmds = ARRAY_SIZE(ops_cmds);
