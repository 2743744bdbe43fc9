// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * peer.c - authenticated connections between ferryd instances.
 *
 * Handshake (JSON messages, net_msg framing):
 *   server -> {"proto": "ferry-peer", "version": 1, "host": S, "nonce": sn}
 *   client -> {"host": C, "nonce": cn, "mac": HMAC(key, "C" sn cn C S)}
 *   server -> {"ok": true, "mac": HMAC(key, "S" cn sn S C)}  (or an error)
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

#include "daemon/daemon.h"

#define PEER_PROTO "ferry-peer"
#define PEER_VERSION 1

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

static int peer_recv_plain(int fd, struct json_object **o)
{
	uint32_t len;
	char *buf;
	int ret;

	ret = net_msg_recv(fd, 64 * 1024, &buf, &len);
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
	const char *s, *sname;
	int fd, ret;

	fd = net_tcp_connect(&p->addr, timeout_ms);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot connect to %s:%u: %s (is ferryd running on %s?)",
			 p->name, p->addr.host, p->addr.port, strerror(-fd), p->name);
		errno = -fd;
		return NULL;
	}
	net_sock_timeouts(fd, 30000, 300000);
	ret = peer_recv_plain(fd, &hello);
	if (ret)
		goto proto;
	s = jstr(hello, "proto");
	sname = jstr(hello, "host");
	if (!s || strcmp(s, PEER_PROTO) || !sname || !jstr(hello, "nonce") ||
	    hex_decode(jstr(hello, "nonce"), sn, sizeof(sn)))
		goto proto;
	random_bytes(cn, sizeof(cn));
	peer_proof(key, 'C', sn, cn, self, sname, mac);
	o = json_object_new_object();
	json_object_object_add(o, "host", json_object_new_string(self));
	hex_encode(cn, sizeof(cn), hex);
	json_object_object_add(o, "nonce", json_object_new_string(hex));
	hex_encode(mac, sizeof(mac), hex);
	json_object_object_add(o, "mac", json_object_new_string(hex));
	ret = peer_send_plain(fd, o);
	json_object_put(o);
	o = NULL;
	if (ret || peer_recv_plain(fd, &o))
		goto proto;
	if (!json_object_object_get_ex(o, "ok", &ok) || !json_object_get_boolean(ok)) {
		snprintf(err, errlen, "%s: peer authentication failed: %s (cluster key mismatch?)",
			 p->name, jstr(o, "error") ? jstr(o, "error") : "refused");
		errno = EACCES;
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
	struct json_object *o = NULL, *r;
	struct peer_conn *pc;
	const char *cname;

	net_peer_str(fd, who, sizeof(who));
	net_sock_timeouts(fd, 30000, 10000); /* the handshake must be quick */
	random_bytes(sn, sizeof(sn));
	r = json_object_new_object();
	json_object_object_add(r, "proto", json_object_new_string(PEER_PROTO));
	json_object_object_add(r, "version", json_object_new_int(PEER_VERSION));
	json_object_object_add(r, "host", json_object_new_string(self));
	hex_encode(sn, sizeof(sn), hex);
	json_object_object_add(r, "nonce", json_object_new_string(hex));
	if (peer_send_plain(fd, r) || peer_recv_plain(fd, &o)) {
		json_object_put(r);
		snprintf(err, errlen, "peer %s: handshake: protocol error", who);
		goto err;
	}
	json_object_put(r);
	cname = jstr(o, "host");
	if (!cname || strlen(cname) >= FERRY_NAME_MAX || !jstr(o, "nonce") ||
	    hex_decode(jstr(o, "nonce"), cn, sizeof(cn)) || !jstr(o, "mac") ||
	    hex_decode(jstr(o, "mac"), mac, sizeof(mac))) {
		snprintf(err, errlen, "peer %s: handshake: malformed", who);
		goto err;
	}
	peer_proof(key, 'C', sn, cn, cname, self, want);
	if (ct_memcmp(mac, want, sizeof(mac))) {
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
	net_sock_timeouts(fd, 30000, 0);
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

struct json_object *peer_call(const char *host, struct json_object *req, int timeout_ms,
			      char *err, size_t errlen)
{
	const struct peer_conf *p = conf_peer(&ferryd->conf, host);
	struct json_object *rep = NULL, *ok, *e;
	struct peer_conn *pc;
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
	pc = peer_connect(p, ferryd->conf.host, ferryd->key, timeout_ms, err, errlen);
	if (!pc)
		return NULL;
	ret = peer_send(pc, req);
	if (!ret)
		ret = peer_recv(pc, &rep);
	peer_close(pc);
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
