// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * peer.c - the peer link: authenticated connections between ferryd
 * instances, pooled per peer and reused across calls.
 *
 * Handshake (JSON messages, net_msg framing), all of it within
 * PEER_HANDSHAKE_MS on the server:
 *   server -> {"proto": "ferry-peer", "version": 2, "host": S, "nonce": sn}
 *   client -> {"version": 2, "host": C, "nonce": cn, "mac": HMAC(key, "C" sn cn C S)}
 *   server -> {"ok": true, "mac": HMAC(key, "S" cn sn S C)}  (or an error)
 * Each side refuses another protocol version, naming both.
 * Both sides prove they hold the cluster key without sending it; then each
 * message is payload || HMAC(session, direction seq payload), session =
 * HMAC(key, "session:" cn sn), so a connection cannot be hijacked or
 * replayed.  No confidentiality: run migration traffic on a private network.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/cluster/cluster.h"

#define PEER_PROTO "ferry-peer"
#define PEER_POOL_IDLE_MS 30000 /* reuse a link idle less than this (< PEER_IDLE_S) */
#define PEER_POOL_MAX 4         /* idle links kept per peer */

struct peer_conn {
	int fd;
	bool client;
	char name[FERRY_NAME_MAX]; /* the other side */
	uint8_t session[AUTH_KEY_LEN];
	uint64_t send_seq;
	uint64_t recv_seq;
};

static int peer_send_plain(int fd, struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

	return net_msg_send(fd, s, (uint32_t)strlen(s));
}

static int peer_recv_plain(int fd, uint64_t deadline_ms, struct json_object **o)
{
	uint32_t len;
	char *buf;
	int ret;

	*o = NULL;
	ret = net_msg_recv_by(fd, 64 * 1024, deadline_ms, &buf, &len);
	if (ret)
		return ret;
	*o = json_tokener_parse(buf);
	free(buf);
	return *o && json_object_is_type(*o, json_type_object) ? 0 : -EPROTO;
}

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* HMAC over tag || n1 || n2 || h1 || h2 (names NUL-separated). */
static void peer_proof(const uint8_t key[AUTH_KEY_LEN], char tag, const uint8_t *n1,
		       const uint8_t *n2, const char *h1, const char *h2, uint8_t out[AUTH_MAC_LEN])
{
	uint8_t buf[1 + 2 * AUTH_NONCE_LEN + 2 * FERRY_NAME_MAX + 2];
	size_t l1 = strnlen(h1, FERRY_NAME_MAX - 1), l2 = strnlen(h2, FERRY_NAME_MAX - 1);
	size_t n = 0;

	buf[n++] = (uint8_t)tag;
	memcpy(buf + n, n1, AUTH_NONCE_LEN);
	n += AUTH_NONCE_LEN;
	memcpy(buf + n, n2, AUTH_NONCE_LEN);
	n += AUTH_NONCE_LEN;
	memcpy(buf + n, h1, l1);
	n += l1;
	buf[n++] = 0;
	memcpy(buf + n, h2, l2);
	n += l2;
	buf[n++] = 0;
	auth_mac(key, buf, n, NULL, 0, out);
}

static struct peer_conn *peer_conn_new(int fd, bool client)
{
	struct peer_conn *pc = calloc(1, sizeof(*pc));

	if (pc) {
		pc->fd = fd;
		pc->client = client;
	}
	return pc;
}

struct peer_conn *peer_connect(const struct peer_conf *p, const char *self,
			       const uint8_t key[AUTH_KEY_LEN], int timeout_ms, char *err,
			       size_t errlen)
{
	uint8_t sn[AUTH_NONCE_LEN], cn[AUTH_NONCE_LEN], mac[AUTH_MAC_LEN], want[AUTH_MAC_LEN];
	char hex[2 * AUTH_MAC_LEN + 1];
	struct json_object *hello = NULL, *o = NULL, *ok;
	struct peer_conn *pc = NULL;
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	const char *s, *sname;
	struct json_object *v;
	int fd, ret, version;

	fd = net_tcp_connect(&p->addr, timeout_ms);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot connect to %s:%u: %s (is ferryd running on %s?)",
			 p->name, p->addr.host, p->addr.port, strerror(-fd), p->name);
		errno = -fd;
		return NULL;
	}
	net_sock_timeouts(fd, 30000, 300000);
	ret = peer_recv_plain(fd, deadline, &hello);
	if (ret == -ETIMEDOUT) {
		snprintf(err, errlen, "%s: no handshake from %s:%u within %d ms (is ferryd "
				      "running on %s?)",
			 p->name, p->addr.host, p->addr.port, timeout_ms, p->name);
		errno = ETIMEDOUT;
		goto err;
	}
	if (ret)
		goto proto;
	s = jstr(hello, "proto");
	sname = jstr(hello, "host");
	if (!s || strcmp(s, PEER_PROTO) || !sname || !jstr(hello, "nonce") ||
	    hex_decode(jstr(hello, "nonce"), sn, sizeof(sn)))
		goto proto;
	version = json_object_object_get_ex(hello, "version", &v) ? json_object_get_int(v) : 0;
	if (version != PEER_PROTO_VERSION) {
		snprintf(err, errlen, "%s: speaks ferry-peer protocol version %d, this ferryd (%s) "
				      "speaks version %d: run one ferry version on every host",
			 p->name, version, self, PEER_PROTO_VERSION);
		errno = EPROTONOSUPPORT;
		goto err;
	}
	random_bytes(cn, sizeof(cn));
	peer_proof(key, 'C', sn, cn, self, sname, mac);
	o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_int(PEER_PROTO_VERSION));
	json_object_object_add(o, "host", json_object_new_string(self));
	hex_encode(cn, sizeof(cn), hex);
	json_object_object_add(o, "nonce", json_object_new_string(hex));
	hex_encode(mac, sizeof(mac), hex);
	json_object_object_add(o, "mac", json_object_new_string(hex));
	ret = peer_send_plain(fd, o);
	json_object_put(o);
	o = NULL;
	if (ret || peer_recv_plain(fd, deadline, &o))
		goto proto;
	if (!json_object_object_get_ex(o, "ok", &ok) || !json_object_get_boolean(ok)) {
		bool vers = json_object_object_get_ex(o, "errno", &v) &&
			    json_object_get_int(v) == EPROTONOSUPPORT;

		if (vers)
			snprintf(err, errlen, "%s: %s", p->name, jstr(o, "error") ?: "?");
		else
			snprintf(err, errlen, "%s: peer authentication failed: %s (cluster key "
					      "mismatch?)",
				 p->name, jstr(o, "error") ? jstr(o, "error") : "refused");
		errno = vers ? EPROTONOSUPPORT : EACCES;
		goto err;
	}
	peer_proof(key, 'S', cn, sn, sname, self, want);
	if (!jstr(o, "mac") || hex_decode(jstr(o, "mac"), mac, sizeof(mac)) ||
	    ct_memcmp(mac, want, sizeof(mac))) {
		snprintf(err, errlen, "%s: peer failed to prove the cluster key (cluster key "
				      "mismatch, or not ferryd at %s?)",
			 p->name, p->addr.host);
		errno = EACCES;
		goto err;
	}
	pc = peer_conn_new(fd, true);
	if (!pc)
		goto err;
	snprintf(pc->name, sizeof(pc->name), "%s", sname);
	auth_session_key(key, cn, sn, pc->session);
	json_object_put(hello);
	json_object_put(o);
	return pc;
proto:
	snprintf(err, errlen, "%s: protocol error during handshake with %s:%u (not ferryd?)",
		 p->name, p->addr.host, p->addr.port);
	errno = EPROTO;
err:
	json_object_put(hello);
	json_object_put(o);
	close(fd);
	return NULL;
}

struct peer_conn *peer_accept(int fd, const char *self, const uint8_t key[AUTH_KEY_LEN],
			      char *err, size_t errlen)
{
	uint8_t sn[AUTH_NONCE_LEN], cn[AUTH_NONCE_LEN], mac[AUTH_MAC_LEN], want[AUTH_MAC_LEN];
	char hex[2 * AUTH_MAC_LEN + 1], who[80];
	uint64_t deadline = now_ms() + PEER_HANDSHAKE_MS;
	struct json_object *o = NULL, *r, *v;
	struct peer_conn *pc;
	const char *cname;
	int version;

	net_peer_str(fd, who, sizeof(who));
	/* The whole handshake within PEER_HANDSHAKE_MS, however it trickles. */
	net_sock_timeouts(fd, PEER_HANDSHAKE_MS, PEER_HANDSHAKE_MS);
	random_bytes(sn, sizeof(sn));
	r = json_object_new_object();
	json_object_object_add(r, "proto", json_object_new_string(PEER_PROTO));
	json_object_object_add(r, "version", json_object_new_int(PEER_PROTO_VERSION));
	json_object_object_add(r, "host", json_object_new_string(self));
	hex_encode(sn, sizeof(sn), hex);
	json_object_object_add(r, "nonce", json_object_new_string(hex));
	if (peer_send_plain(fd, r) || peer_recv_plain(fd, deadline, &o)) {
		json_object_put(r);
		snprintf(err, errlen, "peer %s: handshake: protocol error or no answer within %d ms",
			 who, PEER_HANDSHAKE_MS);
		goto err;
	}
	json_object_put(r);
	cname = jstr(o, "host");
	version = json_object_object_get_ex(o, "version", &v) ? json_object_get_int(v) : 1;
	if (version != PEER_PROTO_VERSION) {
		r = rpc_error(EPROTONOSUPPORT,
			      "%s speaks ferry-peer protocol version %d, %s speaks version %d: run "
			      "one ferry version on every host",
			      cname && strlen(cname) < FERRY_NAME_MAX ? cname : who, version, self,
			      PEER_PROTO_VERSION);
		peer_send_plain(fd, r);
		json_object_put(r);
		snprintf(err, errlen, "peer %s: speaks ferry-peer protocol version %d, this ferryd "
				      "speaks %d; refused",
			 who, version, PEER_PROTO_VERSION);
		goto err;
	}
	if (!cname || strlen(cname) >= FERRY_NAME_MAX || !jstr(o, "nonce") ||
	    hex_decode(jstr(o, "nonce"), cn, sizeof(cn)) || !jstr(o, "mac") ||
	    hex_decode(jstr(o, "mac"), mac, sizeof(mac))) {
		snprintf(err, errlen, "peer %s: handshake: malformed", who);
		goto err;
	}
	peer_proof(key, 'C', sn, cn, cname, self, want);
	/* Our own name is ours: a peer that claims it is refused like a forger. */
	if (ct_memcmp(mac, want, sizeof(mac)) || !strcmp(cname, self)) {
		r = rpc_error(EACCES, "authentication failed");
		peer_send_plain(fd, r);
		json_object_put(r);
		snprintf(err, errlen, "peer %s (claims '%s'): authentication failed (wrong cluster "
				      "key)",
			 who, cname);
		goto err;
	}
	peer_proof(key, 'S', cn, sn, self, cname, mac);
	r = rpc_ok();
	hex_encode(mac, sizeof(mac), hex);
	json_object_object_add(r, "mac", json_object_new_string(hex));
	if (peer_send_plain(fd, r)) {
		json_object_put(r);
		snprintf(err, errlen, "peer %s: handshake: connection lost", who);
		goto err;
	}
	json_object_put(r);
	pc = peer_conn_new(fd, false);
	if (!pc)
		goto err;
	snprintf(pc->name, sizeof(pc->name), "%s", cname);
	auth_session_key(key, cn, sn, pc->session);
	json_object_put(o);
	/* Authenticated: an idle link is closed (the client's pool expires first). */
	net_sock_timeouts(fd, 30000, PEER_IDLE_S * 1000);
	return pc;
err:
	json_object_put(o);
	errno = EACCES;
	return NULL;
}

void peer_close(struct peer_conn *pc)
{
	if (!pc)
		return;
	close(pc->fd);
	explicit_bzero(pc->session, sizeof(pc->session));
	free(pc);
}

const char *peer_name(const struct peer_conn *pc)
{
	return pc->name;
}

static void peer_msg_mac(const struct peer_conn *pc, bool from_client, uint64_t seq,
			 const char *payload, size_t len, uint8_t out[AUTH_MAC_LEN])
{
	uint8_t hdr[9];
	uint64_t be = htobe64(seq);

	hdr[0] = from_client ? 'c' : 's';
	memcpy(hdr + 1, &be, 8);
	auth_mac(pc->session, hdr, sizeof(hdr), payload, len, out);
}

int peer_send(struct peer_conn *pc, struct json_object *msg)
{
	const char *s = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);
	size_t len = strlen(s);
	char *buf;
	int ret;

	if (len + AUTH_MAC_LEN > NET_MSG_MAX)
		return -EMSGSIZE;
	buf = malloc(len + AUTH_MAC_LEN);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, s, len);
	peer_msg_mac(pc, pc->client, pc->send_seq++, s, len, (uint8_t *)buf + len);
	ret = net_msg_send(pc->fd, buf, (uint32_t)(len + AUTH_MAC_LEN));
	free(buf);
	return ret;
}

int peer_recv(struct peer_conn *pc, struct json_object **msg)
{
	uint8_t want[AUTH_MAC_LEN];
	uint32_t len;
	char *buf;
	int ret;

	*msg = NULL;
	ret = net_msg_recv(pc->fd, NET_MSG_MAX, &buf, &len);
	if (ret)
		return ret;
	if (len < AUTH_MAC_LEN) {
		ret = -EPROTO;
		goto out;
	}
	len -= AUTH_MAC_LEN;
	peer_msg_mac(pc, !pc->client, pc->recv_seq++, buf, len, want);
	if (ct_memcmp(buf + len, want, AUTH_MAC_LEN)) {
		log_err("peer %s: message authentication failed; dropping connection", pc->name);
		ret = -EBADMSG;
		goto out;
	}
	buf[len] = '\0';
	*msg = json_tokener_parse(buf);
	if (!*msg || !json_object_is_type(*msg, json_type_object)) {
		json_object_put(*msg);
		*msg = NULL;
		ret = -EPROTO;
	}
out:
	free(buf);
	return ret;
}

/* ---- the pool: idle authenticated links per peer ------------------- */

struct peer_pool {
	char host[FERRY_NAME_MAX];
	struct peer_conn *idle[PEER_POOL_MAX];
	uint64_t idle_since_ms[PEER_POOL_MAX];
	int nidle;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct peer_pool pools[FERRYD_MAX_PEERS];

static struct peer_pool *peer_pool_of(const char *host)
{
	int i;

	for (i = 0; i < FERRYD_MAX_PEERS; i++)
		if (!strcmp(pools[i].host, host))
			return &pools[i];
	for (i = 0; i < FERRYD_MAX_PEERS; i++) {
		if (!pools[i].host[0]) {
			snprintf(pools[i].host, sizeof(pools[i].host), "%s", host);
			return &pools[i];
		}
	}
	return NULL;
}

/* A pooled link to @host idle for less than PEER_POOL_IDLE_MS, or NULL. */
static struct peer_conn *peer_pool_get(const char *host)
{
	struct peer_conn *pc = NULL, *stale[PEER_POOL_MAX];
	struct peer_pool *p;
	int nstale = 0, i;

	pthread_mutex_lock(&pool_lock);
	p = peer_pool_of(host);
	while (p && p->nidle && !pc) {
		p->nidle--;
		if (now_ms() - p->idle_since_ms[p->nidle] < PEER_POOL_IDLE_MS)
			pc = p->idle[p->nidle];
		else
			stale[nstale++] = p->idle[p->nidle];
	}
	pthread_mutex_unlock(&pool_lock);
	for (i = 0; i < nstale; i++)
		peer_close(stale[i]);
	return pc;
}

static void peer_pool_put(const char *host, struct peer_conn *pc)
{
	struct peer_pool *p;

	pthread_mutex_lock(&pool_lock);
	p = peer_pool_of(host);
	if (p && p->nidle < PEER_POOL_MAX) {
		p->idle[p->nidle] = pc;
		p->idle_since_ms[p->nidle++] = now_ms();
		pc = NULL;
	}
	pthread_mutex_unlock(&pool_lock);
	peer_close(pc);
}

void peer_pool_fini(void)
{
	int i, j;

	pthread_mutex_lock(&pool_lock);
	for (i = 0; i < FERRYD_MAX_PEERS; i++) {
		for (j = 0; j < pools[i].nidle; j++)
			peer_close(pools[i].idle[j]);
		pools[i].nidle = 0;
	}
	pthread_mutex_unlock(&pool_lock);
}

/* One request on @pc, its reply before @deadline_ms. */
static int peer_exchange(struct peer_conn *pc, struct json_object *req, uint64_t deadline_ms,
			 struct json_object **rep)
{
	uint64_t now = now_ms();
	int ms = now < deadline_ms ? (int)MIN(deadline_ms - now, (uint64_t)INT_MAX) : 1;
	int ret;

	net_sock_timeouts(pc->fd, ms, ms);
	ret = peer_send(pc, req);
	if (!ret)
		ret = peer_recv(pc, rep);
	return ret == -EAGAIN ? -ETIMEDOUT : ret;
}

struct json_object *peer_call(const char *host, struct json_object *req, int timeout_ms,
			      char *err, size_t errlen)
{
	const struct peer_conf *p = conf_peer(&ferryd->conf, host);
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	struct json_object *rep = NULL, *ok, *e;
	struct peer_conn *pc;
	bool pooled;
	int ret;

	if (!strcmp(host, ferryd->conf.host)) {
		/* This host is its own peer (a resize onto the same host). */
		rep = rpc_handle(req, RPC_PEER, host);
		goto reply;
	}
	if (!p) {
		snprintf(err, errlen, "unknown host '%s'", host);
		errno = ENOENT;
		return NULL;
	}
	pc = peer_pool_get(host);
	pooled = pc != NULL;
	for (;;) {
		if (!pc)
			pc = peer_connect(p, ferryd->conf.host, ferryd->key, timeout_ms, err,
					  errlen);
		if (!pc)
			return NULL;
		ret = peer_exchange(pc, req, deadline, &rep);
		if (!ret) {
			peer_pool_put(host, pc);
			break;
		}
		peer_close(pc);
		pc = NULL;
		/*
		 * A pooled link the peer closed (it restarted, or timed the link
		 * out): once more on a new one.  Handlers are idempotent, so a
		 * request that did arrive may be repeated.
		 */
		if (!pooled || (ret != -EPIPE && ret != -ECONNRESET))
			break;
		pooled = false;
		log_debug(LOG_SUB_PEER, "%s: pooled link dropped; reconnecting", host);
	}
	if (ret) {
		snprintf(err, errlen, "%s: %s", host,
			 ret == -EPIPE ? "connection closed (ferryd restarted?)" : strerror(-ret));
		errno = ret == -EPIPE ? ECONNRESET : -ret;
		return NULL;
	}
reply:
	if (!json_object_object_get_ex(rep, "ok", &ok) || !json_object_get_boolean(ok)) {
		int en = EIO;

		if (json_object_object_get_ex(rep, "errno", &e))
			en = json_object_get_int(e);
		/* The peer's messages name their host already. */
		snprintf(err, errlen, "%s", jstr(rep, "error") ? jstr(rep, "error") : "?");
		json_object_put(rep);
		errno = en > 0 ? en : EIO;
		return NULL;
	}
	return rep;
}

struct peer_call_arg {
	struct peer_reply *r;
	struct json_object *req;
	int timeout_ms;
};

static void *peer_call_thread(void *p)
{
	struct peer_call_arg *a = p;

	a->r->rep = peer_call(a->r->host, a->req, a->timeout_ms, a->r->msg, sizeof(a->r->msg));
	a->r->err = a->r->rep ? 0 : errno;
	return NULL;
}

void peer_call_all(struct peer_reply *r, int n, struct json_object *req, int timeout_ms)
{
	struct peer_call_arg *args = calloc((size_t)n, sizeof(*args));
	pthread_t *t = calloc((size_t)n, sizeof(*t));
	bool *started = calloc((size_t)n, sizeof(*started));
	const char *s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	int i;

	for (i = 0; i < n; i++) {
		r[i].rep = NULL;
		r[i].err = ENOMEM;
		snprintf(r[i].msg, sizeof(r[i].msg), "%s: out of memory", r[i].host);
	}
	if (!args || !t || !started)
		goto out;
	/* One thread per peer: the slowest (a dead one) sets the time, once. */
	for (i = 0; i < n; i++) {
		/* A copy each: json-c's objects are not for several threads. */
		args[i] = (struct peer_call_arg){ .r = &r[i], .req = json_tokener_parse(s),
						  .timeout_ms = timeout_ms };
		if (!args[i].req)
			continue;
		started[i] = pthread_create(&t[i], NULL, peer_call_thread, &args[i]) == 0;
		if (!started[i])
			peer_call_thread(&args[i]);
	}
	for (i = 0; i < n; i++) {
		if (started[i])
			pthread_join(t[i], NULL);
		json_object_put(args[i].req);
	}
out:
	free(args);
	free(t);
	free(started);
}

/* ---- the server's gate: bounded handshakes, bounded links ----------- */

struct peer_gate_addr {
	char ip[INET6_ADDRSTRLEN];
	int preauth;
};

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static struct peer_gate_addr gate_addrs[PEER_PREAUTH_MAX];
static int gate_preauth, gate_authed;

static void peer_gate_ip(const struct sockaddr_storage *ss, char *ip, size_t len)
{
	const void *a = ss->ss_family == AF_INET6 ?
				(const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr :
				(const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	if (!inet_ntop(ss->ss_family, a, ip, (socklen_t)len))
		snprintf(ip, len, "?");
}

int peer_gate_enter(const struct sockaddr_storage *ss)
{
	struct peer_gate_addr *slot = NULL, *free_slot = NULL;
	char ip[INET6_ADDRSTRLEN];
	int i, ret = 0;

	peer_gate_ip(ss, ip, sizeof(ip));
	pthread_mutex_lock(&gate_lock);
	for (i = 0; i < PEER_PREAUTH_MAX; i++) {
		if (gate_addrs[i].preauth && !strcmp(gate_addrs[i].ip, ip))
			slot = &gate_addrs[i];
		else if (!gate_addrs[i].preauth && !free_slot)
			free_slot = &gate_addrs[i];
	}
	if (gate_preauth >= PEER_PREAUTH_MAX || gate_authed >= PEER_CONN_MAX ||
	    (slot && slot->preauth >= PEER_PREAUTH_PER_ADDR) || (!slot && !free_slot)) {
		ret = -EBUSY;
	} else {
		if (!slot) {
			slot = free_slot;
			snprintf(slot->ip, sizeof(slot->ip), "%s", ip);
		}
		slot->preauth++;
		gate_preauth++;
	}
	pthread_mutex_unlock(&gate_lock);
	return ret;
}

void peer_gate_leave(const struct sockaddr_storage *ss, bool authed)
{
	char ip[INET6_ADDRSTRLEN];
	int i;

	peer_gate_ip(ss, ip, sizeof(ip));
	pthread_mutex_lock(&gate_lock);
	if (authed) {
		gate_authed--;
	} else {
		for (i = 0; i < PEER_PREAUTH_MAX; i++) {
			if (gate_addrs[i].preauth && !strcmp(gate_addrs[i].ip, ip)) {
				gate_addrs[i].preauth--;
				break;
			}
		}
		gate_preauth--;
	}
	pthread_mutex_unlock(&gate_lock);
}

void peer_gate_authed(const struct sockaddr_storage *ss)
{
	peer_gate_leave(ss, false);
	pthread_mutex_lock(&gate_lock);
	gate_authed++;
	pthread_mutex_unlock(&gate_lock);
}
