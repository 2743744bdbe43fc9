// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rpc.c - one dispatcher for requests from the local control socket (the
 * ferry CLI, root only) and from authenticated peers.  Requests are JSON
 * objects {"op": NAME, ...}; replies {"ok": true, ...} or {"ok": false,
 * "error": MESSAGE, "errno": N}.  A local request naming another "host" is
 * forwarded to that host's ferryd over the peer protocol.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "daemon/daemon.h"

#define PEER_CALL_MS 5000

struct json_object *rpc_error(int err, const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "ok", json_object_new_boolean(false));
	json_object_object_add(o, "error", json_object_new_string(msg));
	json_object_object_add(o, "errno", json_object_new_int(err > 0 ? err : -err));
	return o;
}

struct json_object *rpc_ok(void)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(true));
	return o;
}

static const char *req_str(struct json_object *req, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(req, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int64_t req_int(struct json_object *req, const char *k, int64_t def)
{
	struct json_object *v;

	if (!json_object_object_get_ex(req, k, &v) || !json_object_is_type(v, json_type_int))
		return def;
	return json_object_get_int64(v);
}

static bool req_bool(struct json_object *req, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(req, k, &v) && json_object_get_boolean(v);
}

/* Ask every peer; returns an array of replies (unreachable ones skipped). */
static struct json_object *rpc_ask_peers(struct json_object *req)
{
	struct json_object *all = json_object_new_array();
	int i;

	for (i = 0; i < ferryd->conf.npeers; i++) {
		char err[512];
		struct json_object *r;

		r = peer_call(ferryd->conf.peers[i].name, req, PEER_CALL_MS, err, sizeof(err));
		if (r)
			json_object_array_add(all, r);
		else
			log_debug(LOG_SUB_PEER, "%s", err);
	}
	return all;
}

/* The locally known migration for "id" or "vm" (most recent). */
static struct migration *rpc_find_local(struct json_object *req)
{
	const char *id = req_str(req, "id"), *vm = req_str(req, "vm");

	if (id)
		return migstore_find(id);
	if (vm)
		return migstore_latest_for_vm(vm);
	return NULL;
}

static struct json_object *op_find_migration(struct json_object *req)
{
	struct json_object *rep;
	struct migration *m;

	pthread_mutex_lock(&ferryd->lock);
	m = rpc_find_local(req);
	if (!m || (req_bool(req, "source_only") && m->role != MIG_ROLE_SOURCE)) {
		pthread_mutex_unlock(&ferryd->lock);
		return rpc_error(ENOENT, "no such migration");
	}
	rep = rpc_ok();
	json_object_object_add(rep, "migration", mig_to_json(m, false));
	pthread_mutex_unlock(&ferryd->lock);
	return rep;
}

/*
 * Where does the coordinator of this migration live?  Here (returns ""),
 * on a peer (its name), or nowhere (-ENOENT).
 */
static int rpc_locate(struct json_object *req, char *host, size_t len, char *id, size_t idlen)
{
	struct json_object *q, *all;
	struct migration *m;
	size_t i;
	int ret = -ENOENT;

	pthread_mutex_lock(&ferryd->lock);
	m = rpc_find_local(req);
	if (m) {
		snprintf(id, idlen, "%s", m->id);
		snprintf(host, len, "%s", m->role == MIG_ROLE_SOURCE ? "" : m->src_host);
		ret = 0;
	}
	pthread_mutex_unlock(&ferryd->lock);
	if (!ret)
		return 0;
	q = json_object_new_object();
	json_object_object_add(q, "op", json_object_new_string("find_migration"));
	if (req_str(req, "id"))
		json_object_object_add(q, "id", json_object_new_string(req_str(req, "id")));
	if (req_str(req, "vm"))
		json_object_object_add(q, "vm", json_object_new_string(req_str(req, "vm")));
	json_object_object_add(q, "source_only", json_object_new_boolean(true));
	all = rpc_ask_peers(q);
	for (i = 0; i < json_object_array_length(all); i++) {
		struct json_object *r = json_object_array_get_idx(all, i), *mo;
		const char *src, *mid;

		if (!json_object_object_get_ex(r, "migration", &mo))
			continue;
		src = req_str(mo, "source");
		mid = req_str(mo, "id");
		if (src && mid) {
			snprintf(host, len, "%s", src);
			snprintf(id, idlen, "%s", mid);
			ret = 0;
			break;
		}
	}
	json_object_put(all);
	json_object_put(q);
	return ret;
}

/* confirm / revert, wherever the coordinator lives. */
static struct json_object *op_confirm_revert(struct json_object *req, bool confirm)
{
	char host[FERRY_NAME_MAX], id[FERRY_ID_LEN], err[1024];
	struct json_object *fwd, *rep;
	const char *what = req_str(req, "id") ? req_str(req, "id") : req_str(req, "vm");
	int ret;

	if (!what)
		return rpc_error(EINVAL, "%s: need a VM name or migration id",
				 confirm ? "confirm" : "revert");
	if (rpc_locate(req, host, sizeof(host), id, sizeof(id)))
		return rpc_error(ENOENT, "%s: no migration found on any reachable host", what);
	if (host[0] && strcmp(host, ferryd->conf.host)) {
		fwd = json_object_new_object();
		json_object_object_add(fwd, "op",
				       json_object_new_string(confirm ? "confirm" : "revert"));
		json_object_object_add(fwd, "id", json_object_new_string(id));
		rep = peer_call(host, fwd, PEER_CALL_MS, err, sizeof(err));
		json_object_put(fwd);
		return rep ? rep : rpc_error(errno, "%s", err);
	}
	ret = confirm ? cold_confirm(id, err, sizeof(err)) : cold_revert(id, err, sizeof(err));
	if (ret)
		return rpc_error(-ret, "%s", err);
	rep = rpc_ok();
	json_object_object_add(rep, "id", json_object_new_string(id));
	return rep;
}

static struct json_object *op_cold_start(struct json_object *req, enum mig_type type)
{
	struct cold_request r = { .type = type };
	char id[FERRY_ID_LEN], err[1024];
	struct json_object *rep;
	const char *vm = req_str(req, "vm"), *to = req_str(req, "to");
	int64_t disk_gib;

	if (!vm || strlen(vm) >= sizeof(r.vm))
		return rpc_error(EINVAL, "%s: need a VM name", mig_type_name(type));
	snprintf(r.vm, sizeof(r.vm), "%s", vm);
	if (to)
		snprintf(r.to, sizeof(r.to), "%s", to);
	r.flavor.vcpus = (int)req_int(req, "vcpus", 0);
	r.flavor.memory_mib = (uint64_t)req_int(req, "memory_mib", 0);
	disk_gib = req_int(req, "disk_gib", 0);
	if (r.flavor.vcpus < 0 || req_int(req, "memory_mib", 0) < 0 || disk_gib < 0)
		return rpc_error(EINVAL, "%s: negative flavor values", vm);
	r.flavor.root_disk_bytes = (uint64_t)disk_gib * GIB;
	r.confirm = req_bool(req, "confirm");
	if (cold_start(&r, id, err, sizeof(err)))
		return rpc_error(errno, "%s", err);
	rep = rpc_ok();
	json_object_object_add(rep, "id", json_object_new_string(id));
	return rep;
}

static struct json_object *op_show(struct json_object *req, enum rpc_origin origin)
{
	char src[FERRY_NAME_MAX] = "", id[FERRY_ID_LEN] = "", err[512];
	struct json_object *rep = NULL, *q, *all;
	struct migration *m;
	size_t i;

	pthread_mutex_lock(&ferryd->lock);
	m = rpc_find_local(req);
	if (m) {
		rep = rpc_ok();
		json_object_object_add(rep, "migration", mig_to_json(m, true));
		if (m->role == MIG_ROLE_DEST) {
			snprintf(src, sizeof(src), "%s", m->src_host);
			snprintf(id, sizeof(id), "%s", m->id);
		}
	}
	pthread_mutex_unlock(&ferryd->lock);
	/* The coordinator's record has the copy metrics; prefer it. */
	if (origin == RPC_LOCAL && src[0]) {
		q = json_object_new_object();
		json_object_object_add(q, "op", json_object_new_string("show"));
		json_object_object_add(q, "id", json_object_new_string(id));
		all = peer_call(src, q, PEER_CALL_MS, err, sizeof(err));
		json_object_put(q);
		if (all) {
			json_object_put(rep);
			return all;
		}
	}
	if (rep || origin != RPC_LOCAL)
		return rep ? rep : rpc_error(ENOENT, "no such migration");
	all = rpc_ask_peers(req);
	for (i = 0; i < json_object_array_length(all); i++) {
		struct json_object *r = json_object_array_get_idx(all, i), *mo;

		if (!json_object_object_get_ex(r, "migration", &mo))
			continue;
		json_object_put(rep);
		rep = json_object_get(r);
		if (!strcmp(req_str(mo, "role") ?: "", "source"))
			break;
	}
	json_object_put(all);
	if (!rep)
		return rpc_error(ENOENT, "%s: no such migration on any reachable host",
				 req_str(req, "id") ?: req_str(req, "vm") ?: "?");
	return rep;
}

/* Migrations known here (as source or destination), optionally for one VM. */
static void rpc_local_migrations(struct json_object *arr, const char *vm)
{
	int i;

	pthread_mutex_lock(&ferryd->lock);
	for (i = 0; i < ferryd->nmigs; i++) {
		struct migration *m = ferryd->migs[i];

		if ((vm && strcmp(m->vm, vm)) || (m->same_host && m->role == MIG_ROLE_DEST))
			continue;
		json_object_array_add(arr, mig_to_json(m, false));
	}
	pthread_mutex_unlock(&ferryd->lock);
}

static bool rpc_has_id(struct json_object *arr, const char *id, size_t *at)
{
	size_t i;

	for (i = 0; i < json_object_array_length(arr); i++) {
		if (!strcmp(req_str(json_object_array_get_idx(arr, i), "id") ?: "", id)) {
			*at = i;
			return true;
		}
	}
	return false;
}

static struct json_object *op_migrations(struct json_object *req, enum rpc_origin origin)
{
	struct json_object *rep = rpc_ok(), *arr = json_object_new_array(), *q, *all;
	const char *vm = req_str(req, "vm");
	size_t i, j, at;

	rpc_local_migrations(arr, vm);
	if (origin == RPC_LOCAL && !req_bool(req, "local")) {
		q = json_object_get(req);
		json_object_object_add(q, "local", json_object_new_boolean(true));
		all = rpc_ask_peers(q);
		for (i = 0; i < json_object_array_length(all); i++) {
			struct json_object *ms;

			if (!json_object_object_get_ex(json_object_array_get_idx(all, i),
						       "migrations", &ms))
				continue;
			for (j = 0; j < json_object_array_length(ms); j++) {
				struct json_object *m = json_object_array_get_idx(ms, j);
				const char *id = req_str(m, "id") ?: "";

				if (!rpc_has_id(arr, id, &at)) {
					json_object_array_add(arr, json_object_get(m));
				} else if (!strcmp(req_str(m, "role") ?: "", "source")) {
					/* The coordinator's view wins. */
					json_object_array_put_idx(arr, at, json_object_get(m));
				}
			}
		}
		json_object_put(all);
		json_object_put(q);
	}
	json_object_object_add(rep, "migrations", arr);
	return rep;
}

static struct json_object *op_host_info(void)
{
	struct json_object *rep = rpc_ok(), *vms;
	struct virt_domain_info *doms = NULL;
	uint64_t free_mib = 0;
	struct statvfs sv;
	int i, n = 0, active = 0;

	json_object_object_add(rep, "host", json_object_new_string(ferryd->conf.host));
	json_object_object_add(rep, "version", json_object_new_string(FERRY_VERSION));
	if (!virt_node_free_memory_mib(ferryd->virt, &free_mib))
		json_object_object_add(rep, "free_memory_mib", json_object_new_uint64(free_mib));
	if (statvfs(ferryd->conf.instances_dir, &sv) == 0)
		json_object_object_add(rep, "free_disk_bytes",
				       json_object_new_uint64((uint64_t)sv.f_bavail * sv.f_frsize));
	vms = json_object_new_array();
	if (!virt_domain_list(ferryd->virt, &doms, &n)) {
		for (i = 0; i < n; i++) {
			struct json_object *d = json_object_new_object();
			struct migration *m;
			const char *task = NULL;

			json_object_object_add(d, "name", json_object_new_string(doms[i].name));
			json_object_object_add(d, "uuid", json_object_new_string(doms[i].uuid));
			json_object_object_add(d, "state",
					       json_object_new_string(virt_power_name(doms[i].state)));
			json_object_object_add(d, "vcpus", json_object_new_int(doms[i].vcpus));
			json_object_object_add(d, "memory_mib",
					       json_object_new_uint64(doms[i].memory_mib));
			pthread_mutex_lock(&ferryd->lock);
			m = migstore_active_for_vm(doms[i].name);
			if (m) {
				task = mig_task_state(m);
				json_object_object_add(d, "migration",
						       json_object_new_string(m->id));
				json_object_object_add(d, "vm_state",
						       json_object_new_string(mig_vm_state(m)));
			}
			pthread_mutex_unlock(&ferryd->lock);
			json_object_object_add(d, "task_state",
					       task ? json_object_new_string(task) : NULL);
			json_object_array_add(vms, d);
		}
	}
	free(doms);
	pthread_mutex_lock(&ferryd->lock);
	for (i = 0; i < ferryd->nmigs; i++)
		active += !mig_step_terminal(ferryd->migs[i]->step);
	pthread_mutex_unlock(&ferryd->lock);
	json_object_object_add(rep, "active_migrations", json_object_new_int(active));
	json_object_object_add(rep, "vms", vms);
	return rep;
}

static struct json_object *op_hosts(void)
{
	struct json_object *rep = rpc_ok(), *arr = json_object_new_array(), *self, *q;
	char buf[300];
	int i;

	self = op_host_info();
	json_object_object_add(self, "addr",
			       json_object_new_string(net_addr_str(&ferryd->conf.listen, buf,
								    sizeof(buf))));
	json_object_object_add(self, "reachable", json_object_new_boolean(true));
	json_object_object_add(self, "self", json_object_new_boolean(true));
	json_object_array_add(arr, self);
	q = json_object_new_object();
	json_object_object_add(q, "op", json_object_new_string("host_info"));
	for (i = 0; i < ferryd->conf.npeers; i++) {
		const struct peer_conf *p = &ferryd->conf.peers[i];
		char err[512];
		struct json_object *r;

		r = peer_call(p->name, q, PEER_CALL_MS, err, sizeof(err));
		if (!r) {
			r = json_object_new_object();
			json_object_object_add(r, "host", json_object_new_string(p->name));
			json_object_object_add(r, "error", json_object_new_string(err));
		}
		json_object_object_del(r, "ok");
		json_object_object_add(r, "addr", json_object_new_string(
							  net_addr_str(&p->addr, buf, sizeof(buf))));
		json_object_object_add(r, "reachable",
				       json_object_new_boolean(!json_object_object_get_ex(r, "error",
											  NULL)));
		json_object_object_add(r, "self", json_object_new_boolean(false));
		json_object_array_add(arr, r);
	}
	json_object_put(q);
	json_object_object_add(rep, "hosts", arr);
	return rep;
}

static struct json_object *rpc_forward(const char *host, struct json_object *req)
{
	struct json_object *fwd = json_object_get(req), *rep;
	char err[1024];

	json_object_object_del(fwd, "host");
	rep = peer_call(host, fwd, 600000, err, sizeof(err));
	json_object_put(fwd);
	return rep ? rep : rpc_error(errno, "%s", err);
}

struct json_object *rpc_handle(struct json_object *req, enum rpc_origin origin, const char *peer)
{
	const char *op = req_str(req, "op"), *host = req_str(req, "host");

	if (!op)
		return rpc_error(EINVAL, "request without \"op\"");
	log_debug(LOG_SUB_DAEMON, "%s request '%s'%s%s", origin == RPC_LOCAL ? "local" : peer, op,
		  host ? " for " : "", host ?: "");
	if (origin == RPC_LOCAL && host && strcmp(host, ferryd->conf.host)) {
		if (!conf_peer(&ferryd->conf, host))
			return rpc_error(ENOENT, "unknown host '%s'", host);
		return rpc_forward(host, req);
	}

	/* Operator requests: from the CLI, or forwarded by a peer for it. */
	if (!strcmp(op, "migrate"))
		return op_cold_start(req, MIG_TYPE_MIGRATION);
	if (!strcmp(op, "resize"))
		return op_cold_start(req, MIG_TYPE_RESIZE);
	if (!strcmp(op, "confirm"))
		return op_confirm_revert(req, true);
	if (!strcmp(op, "revert"))
		return op_confirm_revert(req, false);
	if (!strcmp(op, "show"))
		return op_show(req, origin);
	if (!strcmp(op, "migrations"))
		return op_migrations(req, origin);
	if (!strcmp(op, "hosts"))
		return op_hosts();
	if (!strcmp(op, "host_info") || !strcmp(op, "list"))
		return op_host_info();
	if (!strcmp(op, "find_migration"))
		return op_find_migration(req);

	/* Between ferryd instances only. */
	if (origin != RPC_PEER)
		return rpc_error(EPERM, "'%s' is a peer request", op);
	if (!strcmp(op, "prep"))
		return dest_prep(req);
	if (!strcmp(op, "xfer_open"))
		return dest_xfer_open(req);
	if (!strcmp(op, "finish"))
		return dest_finish(req);
	if (!strcmp(op, "confirm_dest"))
		return dest_confirm(req);
	if (!strcmp(op, "revert_dest"))
		return dest_revert(req);
	if (!strcmp(op, "abort"))
		return dest_abort(req);
	if (!strcmp(op, "status"))
		return dest_status(req);
	return rpc_error(EOPNOTSUPP, "unknown request '%s'", op);
}
