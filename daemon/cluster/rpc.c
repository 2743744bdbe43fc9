// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rpc.c - one dispatcher for requests from the local control socket (the
 * ferry CLI, root only) and from authenticated peers.  Requests are JSON
 * objects {"op": NAME, ...}; replies {"ok": true, ...} or {"ok": false,
 * "error": MESSAGE, "errno": N}.  The table holds {request, who may send
 * it, handler}: the core's (ops.c) and each registered flow's own.  A local
 * request naming another "host" is forwarded to that host's ferryd.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/cluster/cluster.h"

#define RPC_CMDS_MAX 64
#define RPC_LOCATE_MS 3000

static const struct rpc_cmd *rpc_cmds[RPC_CMDS_MAX];
static int rpc_ncmds;

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

const char *rpc_str(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int64_t rpc_int(struct json_object *o, const char *k, int64_t def)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
		return def;
	return json_object_get_int64(v);
}

bool rpc_bool(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_get_boolean(v);
}

struct json_object *rpc_req(const char *op, const struct migration *m)
{
	struct json_object *r = json_object_new_object();

	json_object_object_add(r, "op", json_object_new_string(op));
	json_object_object_add(r, "id", json_object_new_string(m->id));
	return r;
}

static int rpc_add(const struct rpc_cmd *c)
{
	int i;

	for (i = 0; i < rpc_ncmds; i++) {
		if (!strcmp(rpc_cmds[i]->name, c->name)) {
			log_err("rpc: request '%s' registered twice", c->name);
			return -EEXIST;
		}
	}
	if (rpc_ncmds == RPC_CMDS_MAX)
		return -ENOSPC;
	rpc_cmds[rpc_ncmds++] = c;
	return 0;
}

static int rpc_add_flow(const struct flow *f, void *ctx)
{
	int i, ret;

	for (i = 0; i < f->ncmds; i++) {
		ret = rpc_add(&f->cmds[i]);
		if (ret)
			return ret;
	}
	return 0;
}

int rpc_init(void)
{
	int i, ret;

	rpc_ncmds = 0;
	for (i = 0; i < ops_ncmds; i++) {
		ret = rpc_add(&ops_cmds[i]);
		if (ret)
			return ret;
	}
	return flow_for_each(rpc_add_flow, NULL);
}

struct json_object *rpc_forward(const char *host, struct json_object *req)
{
	struct json_object *fwd = json_object_get(req), *rep;
	char err[1024];

	json_object_object_del(fwd, "host");
	json_object_object_add(fwd, "forwarded", json_object_new_boolean(true));
	rep = peer_call(host, fwd, 600000, err, sizeof(err));
	json_object_put(fwd);
	return rep ? rep : rpc_error(errno, "%s", err);
}

int rpc_vm_owner(const char *vm, char *host, size_t len)
{
	struct peer_reply r[FERRYD_MAX_PEERS];
	struct json_object *q;
	enum virt_power p;
	int i, n = ferryd->conf.npeers, ret = -ENOENT;

	if (virt_domain_state(ferryd->virt, vm, &p) == 0) {
		host[0] = '\0';
		return 0;
	}
	for (i = 0; i < n; i++)
		r[i].host = ferryd->conf.peers[i].name;
	q = json_object_new_object();
	json_object_object_add(q, "op", json_object_new_string("vm_owner"));
	json_object_object_add(q, "vm", json_object_new_string(vm));
	peer_call_all(r, n, q, RPC_LOCATE_MS);
	json_object_put(q);
	for (i = 0; i < n; i++) {
		if (r[i].rep && rpc_bool(r[i].rep, "here") && ret) {
			snprintf(host, len, "%s", r[i].host);
			ret = 0;
		}
		json_object_put(r[i].rep);
	}
	return ret;
}

struct json_object *rpc_handle(struct json_object *req, enum rpc_origin origin, const char *peer)
{
	const char *op = rpc_str(req, "op"), *host = rpc_str(req, "host");
	struct rpc_ctx ctx = { .origin = origin, .peer = peer };
	int i;

	if (!op)
		return rpc_error(EINVAL, "request without \"op\"");
	log_debug(LOG_SUB_DAEMON, "%s request '%s'%s%s", origin == RPC_LOCAL ? "local" : peer, op,
		  host ? " for " : "", host ?: "");
	if (origin == RPC_LOCAL && host && strcmp(host, ferryd->conf.host)) {
		if (!conf_peer(&ferryd->conf, host))
			return rpc_error(ENOENT, "unknown host '%s'", host);
		return rpc_forward(host, req);
	}
	for (i = 0; i < rpc_ncmds; i++) {
		const struct rpc_cmd *c = rpc_cmds[i];

		if (strcmp(c->name, op))
			continue;
		if (!(c->from & (1u << origin)))
			return rpc_error(EPERM, "'%s' is %s request", op,
					 origin == RPC_LOCAL ? "a peer" : "an operator's");
		if ((c->from & RPC_STARTS) && ferryd->fenced)
			return rpc_error(EPERM, "%s: host %s is fenced (out of the cluster, see %s): "
						"no operation starts here until it is back in",
					 op, ferryd->conf.host, FERRYD_FENCE_FILE);
		return c->fn(&ctx, req);
	}
	return rpc_error(EOPNOTSUPP, "unknown request '%s'", op);
}
