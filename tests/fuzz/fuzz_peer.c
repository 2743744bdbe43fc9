// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuzz_peer.c - libFuzzer harness for the server side of ferryd's peer
 * link (daemon/cluster/peer.c): peer_accept reading a client's answer to
 * its hello, then peer_recv of MAC'd messages and their dispatch
 * (rpc_handle), as ferryd_peer_conn runs them on an accepted socket.
 *
 * The input plays the client.  Its first byte holds flags, the rest is
 * chunks separated by "\n@@\n":
 *
 *   PEER_FZ_RAW    the rest is written to the socket as is (framing, length
 *                  prefixes and all);
 *   otherwise chunk 0 is the client's answer and each further chunk a
 *   message, each sent as one net_msg frame;
 *   PEER_FZ_PROOF  the answer's "mac" is set to the right proof for its
 *                  "host" and "nonce" (if it is a JSON object with them);
 *   PEER_FZ_MAC    each message gets its right session MAC appended.
 *
 * Without those two a MAC cannot be right, so the fuzzer can reach past
 * the handshake and past the message MAC only through them.  The server's
 * nonce comes from random_bytes, which this harness replaces (the link
 * wraps it: -Wl,--wrap=random_bytes) with a fixed value; peer.c has no
 * seam.  The proof is computed here as the protocol defines it (peer.c's
 * header), so a change to either side is caught.
 *
 * auth_mac is wrapped too (-Wl,--wrap=auth_mac), for speed only: OpenSSL's
 * one-shot HMAC allocates a dozen times a call, and under ASan that made
 * it most of an execution.  The wrapper reads the same bytes into the
 * same buffer and keys four XXH3 hashes with the key; nothing in the
 * harness's feedback hints at its value, so it is as unforgeable here as
 * HMAC.  auth_session_key (auth.c) still runs the real HMAC: its call to
 * auth_mac is inside auth.c, which the wrap does not reach.
 *
 * All input is written, and the write side shut down, before peer_accept
 * runs: a read never waits for more (EOF instead), so PEER_HANDSHAKE_MS is
 * never waited for.  The server's socket is non-blocking for writes too
 * (its replies are small and the harness never reads them).
 *
 * Invariants asserted: no authentication without the right proof; an
 * authenticated peer has the name it claimed, terminated; no message
 * accepted without the right MAC; every accepted message is a JSON
 * object; never a crash, a leak or a wait.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xxhash.h>

#include "daemon/cluster/cluster.h"

#define PEER_FZ_RAW 0x01
#define PEER_FZ_PROOF 0x02
#define PEER_FZ_MAC 0x04
#define PEER_FZ_SEP "\n@@\n"
#define PEER_FZ_MAX_BYTES (64 * 1024) /* below the socket's buffer */
#define PEER_FZ_MAX_MSGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int __wrap_random_bytes(void *buf, size_t len);
void __wrap_auth_mac(const uint8_t key[AUTH_KEY_LEN], const void *a, size_t alen, const void *b,
		     size_t blen, uint8_t out[AUTH_MAC_LEN]);

static struct ferryd fz_ferryd = { .conf = { .host = "hA" } };
struct ferryd *ferryd = &fz_ferryd;

/* The only randomness peer_accept draws is its nonce: fixed here. */
int __wrap_random_bytes(void *buf, size_t len)
{
	memset(buf, 0x5a, len);
	return 0;
}

/* A keyed 256-bit hash of a || b, as auth_mac lays them out (see above). */
void __wrap_auth_mac(const uint8_t key[AUTH_KEY_LEN], const void *a, size_t alen, const void *b,
		     size_t blen, uint8_t out[AUTH_MAC_LEN])
{
	unsigned char *msg = malloc(alen + blen + 1);
	uint64_t seed, h;
	int i;

	assert(msg);
	memcpy(msg, a, alen);
	if (blen)
		memcpy(msg + alen, b, blen);
	for (i = 0; i < AUTH_MAC_LEN / 8; i++) {
		memcpy(&seed, key + 8 * i, 8);
		h = XXH3_64bits_withSeed(msg, alen + blen, seed);
		memcpy(out + 8 * i, &h, 8);
	}
	free(msg);
}

/* What rpc.c links to, beyond the link: a peer request, an operator's. */
static struct json_object *fz_echo(const struct rpc_ctx *ctx, struct json_object *req)
{
	struct json_object *r = rpc_ok();

	assert(ctx->origin == RPC_PEER && ctx->peer);
	json_object_object_add(r, "vm", json_object_new_string(rpc_str(req, "vm") ?: ""));
	json_object_object_add(r, "n", json_object_new_int64(rpc_int(req, "n", -1)));
	json_object_object_add(r, "here", json_object_new_boolean(rpc_bool(req, "here")));
	return r;
}

const struct rpc_cmd ops_cmds[] = {
	{ "vm_owner", RPC_FROM_PEER, fz_echo },
	{ "status", RPC_FROM_LOCAL, fz_echo },
};
const int ops_ncmds = ARRAY_SIZE(ops_cmds);

int flow_for_each(int (*fn)(const struct flow *f, void *ctx), void *ctx)
{
	return 0;
}

int virt_domain_state(struct virt *v, const char *name, enum virt_power *state)
{
	return -ENOENT;
}

static const uint8_t fz_key[AUTH_KEY_LEN] = "ferry-fuzz-cluster-key-32-bytes";

/* The client's proof, as peer.c's header defines it. */
static void fz_proof(const uint8_t sn[AUTH_NONCE_LEN], const uint8_t cn[AUTH_NONCE_LEN],
		     const char *client, uint8_t out[AUTH_MAC_LEN])
{
	uint8_t buf[1 + 2 * AUTH_NONCE_LEN + 2 * FERRY_NAME_MAX + 2];
	size_t lc = strnlen(client, FERRY_NAME_MAX - 1), ls = strlen(ferryd->conf.host), n = 0;

	buf[n++] = 'C';
	memcpy(buf + n, sn, AUTH_NONCE_LEN);
	n += AUTH_NONCE_LEN;
	memcpy(buf + n, cn, AUTH_NONCE_LEN);
	n += AUTH_NONCE_LEN;
	memcpy(buf + n, client, lc);
	n += lc;
	buf[n++] = 0;
	memcpy(buf + n, ferryd->conf.host, ls);
	n += ls;
	buf[n++] = 0;
	auth_mac(fz_key, buf, n, NULL, 0, out);
}

struct fz_out {
	uint8_t buf[PEER_FZ_MAX_BYTES];
	size_t len;
	bool full;
};

static char fz_claimed[FERRY_NAME_MAX + 1]; /* the answer's "host" */

static void fz_put(struct fz_out *o, const void *p, size_t len)
{
	if (o->full || len > sizeof(o->buf) - o->len) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->len, p, len);
	o->len += len;
}

static void fz_frame(struct fz_out *o, const void *p, size_t len, const uint8_t *mac)
{
	uint32_t be = htonl((uint32_t)(len + (mac ? AUTH_MAC_LEN : 0)));

	fz_put(o, &be, sizeof(be));
	fz_put(o, p, len);
	if (mac)
		fz_put(o, mac, AUTH_MAC_LEN);
}

/*
 * The client's answer, its proof made right if asked and possible; the
 * session key it leads to in @session.  True if the proof is right.
 */
static bool fz_answer(struct fz_out *o, const char *s, size_t len, bool prove,
		      uint8_t session[AUTH_KEY_LEN])
{
	static const uint8_t sn[AUTH_NONCE_LEN] = {
		[0 ... AUTH_NONCE_LEN - 1] = 0x5a,
	};
	uint8_t cn[AUTH_NONCE_LEN], mac[AUTH_MAC_LEN];
	char hex[2 * AUTH_MAC_LEN + 1];
	struct json_object *a, *v;
	const char *host, *nonce;

	memset(session, 0, AUTH_KEY_LEN);
	a = prove ? json_tokener_parse(s) : NULL;
	if (!a || !json_object_is_type(a, json_type_object) ||
	    !json_object_object_get_ex(a, "host", &v) ||
	    !json_object_is_type(v, json_type_string) || !(host = json_object_get_string(v)) ||
	    !json_object_object_get_ex(a, "nonce", &v) ||
	    !json_object_is_type(v, json_type_string) || !(nonce = json_object_get_string(v)) ||
	    hex_decode(nonce, cn, sizeof(cn))) {
		fz_frame(o, s, len, NULL);
		json_object_put(a);
		return false;
	}
	snprintf(fz_claimed, sizeof(fz_claimed), "%s", host);
	fz_proof(sn, cn, host, mac);
	hex_encode(mac, sizeof(mac), hex);
	json_object_object_add(a, "mac", json_object_new_string(hex));
	s = json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN);
	fz_frame(o, s, strlen(s), NULL);
	auth_session_key(fz_key, cn, sn, session);
	json_object_put(a);
	return true;
}

static void fz_message(struct fz_out *o, const uint8_t session[AUTH_KEY_LEN], uint64_t seq,
		       const char *p, size_t len, bool sign)
{
	uint8_t hdr[9], mac[AUTH_MAC_LEN];
	uint64_t be = htobe64(seq);

	if (!sign) {
		fz_frame(o, p, len, NULL);
		return;
	}
	hdr[0] = 'c';
	memcpy(hdr + 1, &be, 8);
	auth_mac(session, hdr, sizeof(hdr), p, len, mac);
	fz_frame(o, p, len, mac);
}

/* The chunk at *pos up to the next separator (or the end). */
static const char *fz_chunk(const char *s, size_t size, size_t *pos, size_t *len)
{
	const char *p = s + *pos, *sep = memmem(p, size - *pos, PEER_FZ_SEP, strlen(PEER_FZ_SEP));

	*len = sep ? (size_t)(sep - p) : size - *pos;
	*pos += *len + (sep ? strlen(PEER_FZ_SEP) : 0);
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz_out o;
	static bool fz_ready;
	uint8_t session[AUTH_KEY_LEN];
	bool proved = false, signed_msgs;
	struct peer_conn *pc;
	char err[512], *s;
	size_t pos = 1, len;
	int sv[2], i, ret;
	uint64_t seq = 0;

	if (!fz_ready) {
		assert(rpc_init() == 0);
		log_quiet_set(true);
		fz_ready = true;
	}
	if (size < 1 || size > PEER_FZ_MAX_BYTES / 2)
		return 0;
	s = malloc(size + 1); /* chunks are read as strings: a NUL after the last */
	assert(s);
	memcpy(s, data, size);
	s[size] = '\0';
	o.len = 0;
	o.full = false;
	signed_msgs = data[0] & PEER_FZ_MAC;
	if (data[0] & PEER_FZ_RAW) {
		fz_put(&o, s + 1, size - 1);
	} else {
		const char *c = fz_chunk(s, size, &pos, &len);
		char *hello = malloc(len + 1); /* NUL-terminated, NULs inside kept */

		assert(hello);
		memcpy(hello, c, len);
		hello[len] = '\0';
		proved = fz_answer(&o, hello, len, data[0] & PEER_FZ_PROOF, session);
		free(hello);
		for (i = 0; pos < size && i < PEER_FZ_MAX_MSGS; i++) {
			c = fz_chunk(s, size, &pos, &len);
			fz_message(&o, session, seq++, c, len, proved && signed_msgs);
		}
	}
	free(s);
	if (o.full)
		return 0;

	assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	assert(write(sv[1], o.buf, o.len) == (ssize_t)o.len);
	shutdown(sv[1], SHUT_WR);
	/* Replies never block the server: the harness does not read them. */
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);

	pc = peer_accept(sv[0], ferryd->conf.host, fz_key, err, sizeof(err));
	if (!pc) {
		assert(strnlen(err, sizeof(err)) < sizeof(err));
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	assert(proved);
	assert(strnlen(peer_name(pc), FERRY_NAME_MAX) < FERRY_NAME_MAX);
	assert(!strcmp(peer_name(pc), fz_claimed));
	for (i = 0; i < PEER_FZ_MAX_MSGS; i++) {
		struct json_object *req, *rep;

		ret = peer_recv(pc, &req);
		if (ret) {
			assert(!req);
			break;
		}
		assert(signed_msgs);
		assert(json_object_is_type(req, json_type_object));
		rep = rpc_handle(req, RPC_PEER, peer_name(pc));
		assert(rep);
		ret = peer_send(pc, rep);
		json_object_put(rep);
		json_object_put(req);
		if (ret)
			break;
	}
	peer_close(pc); /* closes sv[0] */
	close(sv[1]);
	return 0;
}
