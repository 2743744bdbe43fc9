/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cluster.h - ferryd to ferryd: authentication, the peer link, request dispatch and
 * the operator's requests.
 */
#ifndef FERRY_DAEMON_CLUSTER_H
#define FERRY_DAEMON_CLUSTER_H

#include "daemon/engine/engine.h"
#include "daemon/host/host.h"

/* auth.c: cluster-key challenge-response and message MACs. */
#define AUTH_NONCE_LEN 32
#define AUTH_MAC_LEN 32

int auth_key_load(const char *path, uint8_t key[AUTH_KEY_LEN]);
void auth_mac(const uint8_t key[AUTH_KEY_LEN], const void *a, size_t alen, const void *b,
	      size_t blen, uint8_t out[AUTH_MAC_LEN]);
void auth_session_key(const uint8_t key[AUTH_KEY_LEN], const uint8_t cn[AUTH_NONCE_LEN],
		      const uint8_t sn[AUTH_NONCE_LEN], uint8_t out[AUTH_KEY_LEN]);

/* peer.c: the peer link between ferryd instances. */
#define PEER_PROTO_VERSION 2
#define PEER_HANDSHAKE_MS 5000     /* the whole handshake, not each read */
#define PEER_IDLE_S 60             /* an authenticated link with no request */
#define PEER_PREAUTH_MAX 32        /* handshakes in progress, all clients */
#define PEER_PREAUTH_PER_ADDR 4    /* ... from one address */
#define PEER_CONN_MAX 256          /* authenticated links served */

struct peer_conn;
/* Connect and authenticate (mutual); NULL + errno, message in err. */
struct peer_conn *peer_connect(const struct peer_conf *p, const char *self,
			       const uint8_t key[AUTH_KEY_LEN], int timeout_ms, char *err,
			       size_t errlen);
/* Server side of the handshake on an accepted socket, within PEER_HANDSHAKE_MS. */
struct peer_conn *peer_accept(int fd, const char *self, const uint8_t key[AUTH_KEY_LEN],
			      char *err, size_t errlen);
void peer_close(struct peer_conn *pc);
const char *peer_name(const struct peer_conn *pc);
/* One MAC'd JSON message each way. */
int peer_send(struct peer_conn *pc, struct json_object *msg);
int peer_recv(struct peer_conn *pc, struct json_object **msg);
/*
 * Request/response to a named peer over its pooled link (authenticated
 * once, reused, re-established once when it dropped): the reply object
 * (caller puts) or NULL with errno and a message in err.  A reply
 * {"ok": false, "error": ...} gives NULL, errno from "errno".
 */
struct json_object *peer_call(const char *host, struct json_object *req, int timeout_ms,
			      char *err, size_t errlen);
/* Ask several hosts at once: every call runs in parallel under one deadline. */
struct peer_reply {
	const char *host;               /* in */
	struct json_object *rep;        /* out: the reply, or NULL */
	int err;                        /* out: errno when NULL */
	char msg[512];                  /* out: why */
};
void peer_call_all(struct peer_reply *r, int n, struct json_object *req, int timeout_ms);
/* Close every pooled link (shutdown). */
void peer_pool_fini(void);
/*
 * The server's gate: a connection enters before its handshake (-EBUSY
 * over PEER_PREAUTH_MAX, PEER_PREAUTH_PER_ADDR from its address or
 * PEER_CONN_MAX links), moves to authed after it, and leaves when closed,
 * so unauthenticated clients can never take the authenticated ones' room.
 */
struct sockaddr_storage;
int peer_gate_enter(const struct sockaddr_storage *ss);
void peer_gate_authed(const struct sockaddr_storage *ss);
void peer_gate_leave(const struct sockaddr_storage *ss, bool authed);

/* rpc.c: requests from the control socket (the ferry CLI) and peers. */
enum rpc_origin {
	RPC_LOCAL = 0, /* root on this host, through the control socket */
	RPC_PEER,      /* an authenticated ferryd */
};

#define RPC_FROM_LOCAL (1u << RPC_LOCAL)
#define RPC_FROM_PEER  (1u << RPC_PEER)
#define RPC_FROM_ANY   (RPC_FROM_LOCAL | RPC_FROM_PEER)
/* It begins an operation, or takes one in: refused while fenced (fence.c). */
#define RPC_STARTS     (1u << 8)

struct rpc_ctx {
	enum rpc_origin origin;
	const char *peer;               /* the peer's name, for RPC_PEER */
};

/* Build the dispatch table: the core's requests and every flow's. */
int rpc_init(void);
/* Handle one request; always returns a reply object (ok or error). */
struct json_object *rpc_handle(struct json_object *req, enum rpc_origin origin,
			       const char *peer);
struct json_object *rpc_error(int err, const char *fmt, ...) __printf(2, 3);
struct json_object *rpc_ok(void);
const char *rpc_str(struct json_object *o, const char *k);
int64_t rpc_int(struct json_object *o, const char *k, int64_t def);
bool rpc_bool(struct json_object *o, const char *k);
/* {"op": OP, "id": m->id} */
struct json_object *rpc_req(const char *op, const struct migration *m);
/* Send @req on to @host (put by the caller) and return its reply. */
struct json_object *rpc_forward(const char *host, struct json_object *req);
/*
 * Where does @vm live?  This host (""), a peer (its name), or nowhere
 * (-ENOENT); every peer is asked at once.
 */
int rpc_vm_owner(const char *vm, char *host, size_t len);

/* etcd.c: the cluster's record, through etcd v3's JSON gateway. */
struct etcd;
struct etcd_kv {
	char *key;
	char *value;                    /* NUL-terminated */
	size_t value_len;
	int64_t create_revision;        /* 0: the key does not exist */
	int64_t mod_revision;
	int64_t version;
	int64_t lease;
};

enum etcd_cmp_what { ETCD_CMP_MOD, ETCD_CMP_CREATE };
struct etcd_cmp {                       /* key's revision == revision */
	const char *key;
	enum etcd_cmp_what what;
	int64_t revision;               /* CREATE 0: the key is absent */
};
struct etcd_op {                        /* put (value) or delete (value NULL) */
	const char *key;
	const char *value;
	int64_t lease;
};

/* "http://a:2379, http://b:2379": NULL + errno on a bad list. */
struct etcd *etcd_open(const char *endpoints, int timeout_ms);
void etcd_close(struct etcd *e);
/* Why the last request failed, naming the endpoint. */
const char *etcd_error(const struct etcd *e);
const char *etcd_endpoint(const struct etcd *e);
/*
 * Every call: 0, or -EHOSTUNREACH (no endpoint answered), -EBUSY (no
 * leader or quorum), -ENOENT (an expired or unknown lease), -ESTALE (a
 * transaction's comparison failed), -EPROTO, -EINVAL.
 */
int etcd_lease_grant(struct etcd *e, int ttl_s, int64_t *id);
int etcd_lease_keepalive(struct etcd *e, int64_t id, int64_t *ttl_s);
int etcd_lease_ttl(struct etcd *e, int64_t id, int64_t *ttl_s); /* -1: gone */
int etcd_lease_revoke(struct etcd *e, int64_t id);
int etcd_put(struct etcd *e, const char *key, const char *val, int64_t lease);
int etcd_delete(struct etcd *e, const char *key);
/* One key, or every key under a prefix; *revision: the store's (or NULL). */
int etcd_get(struct etcd *e, const char *key, bool prefix, struct etcd_kv **kv, int *n,
	     int64_t *revision);
void etcd_kvs_free(struct etcd_kv *kv, int n);
/* All comparisons hold: every op, atomically; else -ESTALE and none. */
int etcd_txn(struct etcd *e, const struct etcd_cmp *cmp, int ncmp, const struct etcd_op *ops,
	     int nops);

/* members.c: this host's alive key on its own lease. */
#define MEMBER_PREFIX "/ferry/hosts/"
struct member_state {
	bool enabled;                   /* etcd configured */
	bool alive;                     /* the lease held, not past its deadline */
	int64_t lease;
	uint64_t renewed_ms;            /* now_ms() of the last renewal */
	uint64_t deadline_ms;           /* ... plus the TTL etcd gave */
	uint64_t renewals;
	uint64_t registrations;         /* leases granted (1 + re-joins) */
	char err[512];                  /* why the last renewal failed */
};
void member_key(const char *host, char *key, size_t len);
/* Start renewing (no-op without etcd in the configuration); 0 or -errno. */
int member_start(void);
void member_stop(void);
void member_state_get(struct member_state *st);
/* Every host's alive key, by name; NULL and *err when etcd cannot answer. */
struct json_object *member_list(int *err);

/* fence.c: a host out of the cluster stops its VMs and refuses starts. */
int fence_start(void);
void fence_stop(void);
bool fence_active(void);
void fence_state_json(struct json_object *o);

/* records.c: each VM's record, /ferry/vms/NAME, kept by its owner. */
#define VMREC_PREFIX "/ferry/vms/"
#define VMREC_META_URI DOMXML_CLUSTER_NS
struct vmrec_stale {                    /* a copy here the record does not own */
	char vm[FERRY_NAME_MAX];
	char owner[FERRY_NAME_MAX];     /* the record's */
	int64_t generation;             /* the record's */
	int64_t here_generation;        /* in this copy's metadata (0: none) */
};
void vmrec_key(const char *vm, char *key, size_t len);
/* @vm's record, parsed, with its revision: 0, -ENOENT when there is none,
 * -EPROTO when it is not a JSON object, -ENOTCONN without etcd, or the
 * etcd error; @err says which. */
int vmrec_get(const char *vm, struct json_object **rec, int64_t *rev, char *err, size_t errlen);
/* Start keeping this host's records (no-op without etcd); 0 or -errno. */
int vmrec_start(void);
void vmrec_stop(void);
/* Look at @vm again soon (NULL: everything). */
void vmrec_kick(const char *vm);
/* Write <ferry:owner host=THIS generation=@gen> into @vm's definition. */
int vmrec_meta_set(const char *vm, int64_t gen);
/* generation='N' of a <ferry:owner> element naming @host its owner, else 0. */
int64_t vmrec_meta_of(const char *meta, const char *host);
/* generation='N' of a <ferry:owner> metadata element, 0 if none. */
int64_t vmrec_meta_generation(const char *meta);
int vmrec_stale_list(struct vmrec_stale *out, int max);

/* migrec.c: each migration's coordinator view, /ferry/migrations/ID. */
#define MIGREC_PREFIX "/ferry/migrations/"
void migrec_key(const char *id, char *key, size_t len);
/* Start mirroring this host's migrations (no-op without etcd); 0 or -errno. */
int migrec_start(void);
void migrec_stop(void);
void migrec_kick(const char *vm);
/* The cluster's records @arr lacks, added ("mirrored": true); 0 or -errno. */
int migrec_merge(struct json_object *arr, const char *vm);

/* quarantine.c: stale copies moved aside, never destroyed. */
#define QUAR_PREFIX "/ferry/quarantine/"
/* Move @vm's stale copy aside (destroyed first if running), undefine it. */
int quarantine_take(const char *vm, const char *owner, int64_t gen, int64_t here_gen,
		    bool shared);
/* Every host's quarantined copies (this host's without etcd); NULL + err. */
struct json_object *quarantine_list(char *err, size_t errlen);
/* The only deletion: the copy's files and its entry. */
int quarantine_purge(const char *id, char *err, size_t errlen);
/* Define the copy again as a new VM @name (its disks into name's dir). */
int quarantine_restore(const char *id, const char *name, char *err, size_t errlen);

/* ops.c: the operator's requests that are no flow's own. */
extern const struct rpc_cmd ops_cmds[];
extern const int ops_ncmds;
/* host_info, as `ferry hosts` shows each host. */
struct json_object *ops_host_info(void);

#endif /* FERRY_DAEMON_CLUSTER_H */
