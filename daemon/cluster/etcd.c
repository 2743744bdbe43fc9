// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * etcd.c - the cluster's record: a client of etcd v3's JSON gateway.
 *
 * etcd 3.4 (Debian's etcd-server) serves its gRPC API as JSON over HTTP
 * (POST /v3/kv/range, /v3/kv/put, /v3/kv/txn, /v3/kv/deleterange,
 * /v3/lease/grant, /v3/lease/keepalive, /v3/lease/revoke); there is no C
 * client in Debian.  Keys and values travel base64-encoded, int64 fields as
 * JSON strings, and proto3 leaves out fields at their default (a failed
 * transaction has no "succeeded", an expired lease's keepalive no "TTL").
 *
 * One struct etcd is one libcurl handle (keep-alive connection) behind a
 * mutex; a request goes to the endpoint that answered last and, when that
 * one cannot be reached, to the next one in turn: any member serves a
 * linearizable request or forwards it to the leader.  An answer from etcd
 * that is an error (HTTP status not 200, {"error": ...}) is not retried
 * elsewhere: every member would say the same.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "daemon/cluster/cluster.h"

#define ETCD_MAX_ENDPOINTS 8
#define ETCD_REPLY_MAX (16u << 20) /* a range of every VM record, with XML */

struct etcd {
	pthread_mutex_t lock;
	CURL *curl;
	struct curl_slist *headers;
	char *endpoints[ETCD_MAX_ENDPOINTS];
	int nendpoints;
	int cur;	/* the endpoint that answered last */
	int timeout_ms;
	char err[512];	/* the last failure, for messages */
};

struct etcd_buf {
	char *p;
	size_t len;
	bool overflow;
};

static size_t etcd_write_cb(char *data, size_t sz, size_t n, void *arg)
{
	struct etcd_buf *b = arg;
	size_t len = sz * n;
	char *p;

	if (b->len + len > ETCD_REPLY_MAX) {
		b->overflow = true;
		return 0;
	}
	p = realloc(b->p, b->len + len + 1);
	if (!p)
		return 0;
	memcpy(p + b->len, data, len);
	b->p = p;
	b->len += len;
	b->p[b->len] = '\0';
	return len;
}

static int curl_global_ret = -1;
static pthread_once_t curl_global_once = PTHREAD_ONCE_INIT;

static void etcd_curl_global(void)
{
	curl_global_ret = curl_global_init(CURL_GLOBAL_NOTHING) == CURLE_OK ? 0 : -ENOMEM;
}

struct etcd *etcd_open(const char *endpoints, int timeout_ms)
{
	struct etcd *e;
	char *list, *tok, *save = NULL;

	pthread_once(&curl_global_once, etcd_curl_global);
	if (curl_global_ret) {
		errno = -curl_global_ret;
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	list = strdup(endpoints);
	if (!e || !list)
		goto fail;
	pthread_mutex_init(&e->lock, NULL);
	e->timeout_ms = timeout_ms;
	for (tok = strtok_r(list, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		size_t l = strlen(tok);

		if (e->nendpoints == ETCD_MAX_ENDPOINTS) {
			errno = E2BIG;
			goto fail;
		}
		while (l && tok[l - 1] == '/')
			tok[--l] = '\0';
		if (strncmp(tok, "http://", 7) && strncmp(tok, "https://", 8)) {
			errno = EINVAL;
			goto fail;
		}
		e->endpoints[e->nendpoints] = strdup(tok);
		if (!e->endpoints[e->nendpoints++])
			goto fail;
	}
	if (!e->nendpoints) {
		errno = EINVAL;
		goto fail;
	}
	e->curl = curl_easy_init();
	e->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (!e->curl || !e->headers) {
		errno = ENOMEM;
		goto fail;
	}
	free(list);
	return e;
fail:
	free(list);
	etcd_close(e);
	return NULL;
}

void etcd_close(struct etcd *e)
{
	int i;

	if (!e)
		return;
	if (e->curl)
		curl_easy_cleanup(e->curl);
	curl_slist_free_all(e->headers);
	for (i = 0; i < e->nendpoints; i++)
		free(e->endpoints[i]);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

const char *etcd_error(const struct etcd *e)
{
	return e->err;
}

const char *etcd_endpoint(const struct etcd *e)
{
	return e->endpoints[e->cur];
}

/* ---- base64 (OpenSSL's) and JSON helpers -------------------------------- */

static char *etcd_b64(const void *p, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, p, (int)len);
	return out;
}

/* Decoded bytes, NUL-terminated (values are text), length in *len. */
static char *etcd_unb64(const char *s, size_t *len)
{
	size_t n = strlen(s), pad = 0;
	char *out = malloc(3 * (n / 4) + 1);
	int r;

	if (!out)
		return NULL;
	r = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
	if (r < 0 || n % 4) {
		free(out);
		return NULL;
	}
	/* EVP_DecodeBlock counts the padding's bytes too. */
	if (n && s[n - 1] == '=')
		pad++;
	if (n > 1 && s[n - 2] == '=')
		pad++;
	*len = (size_t)r - pad;
	out[*len] = '\0';
	return out;
}

static void etcd_add_b64(struct json_object *o, const char *k, const void *p, size_t len)
{
	char *b = etcd_b64(p, len);

	json_object_object_add(o, k, json_object_new_string(b ? b : ""));
	free(b);
}

static void etcd_add_i64(struct json_object *o, const char *k, int64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%lld", (long long)v);
	json_object_object_add(o, k, json_object_new_string(s));
}

/* An int64 field: a string in the gateway's JSON, 0 when left out. */
static int64_t etcd_i64(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, k, &v))
		return 0;
	return json_object_is_type(v, json_type_string) ?
		       strtoll(json_object_get_string(v), NULL, 10) :
		       json_object_get_int64(v);
}

/* The end of the range of keys that start with @prefix. */
static size_t etcd_prefix_end(const char *prefix, char *end, size_t cap)
{
	size_t n = strlen(prefix);

	if (!n || n >= cap)
		return 0;
	memcpy(end, prefix, n);
	while (n && (unsigned char)end[n - 1] == 0xff)
		n--;
	if (!n) {
		end[0] = '\0'; /* every key: "\0" */
		return 1;
	}
	end[n - 1]++;
	return n;
}

/* ---- the request -------------------------------------------------------- */

/*
 * POST @body to @path; the reply's JSON in *rep.  -EHOSTUNREACH when no
 * endpoint answered, -EPROTO for a reply that is no JSON object, and for
 * an error etcd returned: -ENOENT (code 5, NotFound: a lease that expired),
 * -EBUSY (14, Unavailable: no leader, no quorum), -EINVAL otherwise.
 */
static int etcd_post(struct etcd *e, const char *path, struct json_object *body,
		     struct json_object **rep)
{
	const char *data = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	struct etcd_buf b = {};
	char url[512];
	long status = 0;
	CURLcode cc = CURLE_OK;
	int i, idx = 0, ret;
	size_t used;

	*rep = NULL;
	pthread_mutex_lock(&e->lock);
	e->err[0] = '\0';
	for (i = 0; i < e->nendpoints; i++) {
		idx = (e->cur + i) % e->nendpoints;
		snprintf(url, sizeof(url), "%s%s", e->endpoints[idx], path);
		free(b.p);
		b = (struct etcd_buf){};
		curl_easy_reset(e->curl);
		curl_easy_setopt(e->curl, CURLOPT_URL, url);
		curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, e->headers);
		curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, data);
		curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, etcd_write_cb);
		curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &b);
		curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
		curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)MIN(e->timeout_ms, 500));
		curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e->curl, CURLOPT_NOPROXY, "*");
		curl_easy_setopt(e->curl, CURLOPT_TCP_NODELAY, 1L);
		cc = curl_easy_perform(e->curl);
		if (cc == CURLE_OK)
			break;
		/* Every endpoint's failure, in the order tried. */
		used = strlen(e->err);
		snprintf(e->err + used, sizeof(e->err) - used, "%s%s: %s", used ? "; " : "",
			 e->endpoints[idx], curl_easy_strerror(cc));
	}
	if (cc != CURLE_OK) {
		ret = b.overflow ? -EFBIG : -EHOSTUNREACH;
		goto out;
	}
	e->cur = idx;
	curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
	*rep = b.p ? json_tokener_parse(b.p) : NULL;
	if (!*rep || !json_object_is_type(*rep, json_type_object)) {
		snprintf(e->err, sizeof(e->err), "%s%s: HTTP %ld, not a JSON object",
			 e->endpoints[idx], path, status);
		ret = -EPROTO;
		goto fail;
	}
	if (status != 200 || json_object_object_get_ex(*rep, "error", NULL)) {
		int64_t code = etcd_i64(*rep, "code");
		const char *msg = rpc_str(*rep, "message") ?: rpc_str(*rep, "error");

		snprintf(e->err, sizeof(e->err), "%s%s: HTTP %ld: %s", e->endpoints[idx], path,
			 status, msg ?: "error");
		ret = code == 5 ? -ENOENT : code == 14 ? -EBUSY : -EINVAL;
		goto fail;
	}
	ret = 0;
	goto out;
fail:
	json_object_put(*rep);
	*rep = NULL;
out:
	pthread_mutex_unlock(&e->lock);
	free(b.p);
	return ret;
}

/* ---- leases ------------------------------------------------------------- */

int etcd_lease_grant(struct etcd *e, int ttl_s, int64_t *id)
{
	struct json_object *req = json_object_new_object(), *rep;
	int ret;

	etcd_add_i64(req, "TTL", ttl_s);
	ret = etcd_post(e, "/v3/lease/grant", req, &rep);
	json_object_put(req);
	if (ret)
		return ret;
	*id = etcd_i64(rep, "ID");
	json_object_put(rep);
	return *id ? 0 : -EPROTO;
}

int etcd_lease_keepalive(struct etcd *e, int64_t id, int64_t *ttl_s)
{
	struct json_object *req = json_object_new_object(), *rep, *res;
	int ret;

	etcd_add_i64(req, "ID", id);
	ret = etcd_post(e, "/v3/lease/keepalive", req, &rep);
	json_object_put(req);
	if (ret)
		return ret;
	res = json_object_object_get_ex(rep, "result", &res) ? res : NULL;
	*ttl_s = etcd_i64(res, "TTL");
	json_object_put(rep);
	if (*ttl_s <= 0) {
		snprintf(e->err, sizeof(e->err), "lease %llx expired", (unsigned long long)id);
		return -ENOENT;
	}
	return 0;
}

int etcd_lease_revoke(struct etcd *e, int64_t id)
{
	struct json_object *req = json_object_new_object(), *rep;
	int ret;

	etcd_add_i64(req, "ID", id);
	ret = etcd_post(e, "/v3/lease/revoke", req, &rep);
	json_object_put(req);
	json_object_put(rep);
	return ret;
}

int etcd_lease_ttl(struct etcd *e, int64_t id, int64_t *ttl_s)
{
	struct json_object *req = json_object_new_object(), *rep;
	int ret;

	etcd_add_i64(req, "ID", id);
	ret = etcd_post(e, "/v3/lease/timetolive", req, &rep);
	json_object_put(req);
	if (ret)
		return ret;
	*ttl_s = etcd_i64(rep, "TTL"); /* -1: expired or never granted */
	json_object_put(rep);
	return 0;
}

/* ---- keys --------------------------------------------------------------- */

static struct json_object *etcd_put_req(const char *key, const char *val, int64_t lease)
{
	struct json_object *p = json_object_new_object();

	etcd_add_b64(p, "key", key, strlen(key));
	etcd_add_b64(p, "value", val, strlen(val));
	if (lease)
		etcd_add_i64(p, "lease", lease);
	return p;
}

int etcd_put(struct etcd *e, const char *key, const char *val, int64_t lease)
{
	struct json_object *req = etcd_put_req(key, val, lease), *rep;
	int ret;

	ret = etcd_post(e, "/v3/kv/put", req, &rep);
	json_object_put(req);
	json_object_put(rep);
	return ret;
}

int etcd_delete(struct etcd *e, const char *key)
{
	struct json_object *req = json_object_new_object(), *rep;
	int ret;

	etcd_add_b64(req, "key", key, strlen(key));
	ret = etcd_post(e, "/v3/kv/deleterange", req, &rep);
	json_object_put(req);
	json_object_put(rep);
	return ret;
}

void etcd_kvs_free(struct etcd_kv *kv, int n)
{
	int i;

	for (i = 0; kv && i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

int etcd_get(struct etcd *e, const char *key, bool prefix, struct etcd_kv **out, int *nout,
	     int64_t *revision)
{
	struct json_object *req = json_object_new_object(), *rep, *kvs, *h;
	struct etcd_kv *kv = NULL;
	char end[512];
	size_t i, n = 0, len;
	int ret;

	*out = NULL;
	*nout = 0;
	etcd_add_b64(req, "key", key, strlen(key));
	if (prefix) {
		len = etcd_prefix_end(key, end, sizeof(end));
		if (!len) {
			json_object_put(req);
			return -EINVAL;
		}
		etcd_add_b64(req, "range_end", end, len);
	}
	ret = etcd_post(e, "/v3/kv/range", req, &rep);
	json_object_put(req);
	if (ret)
		return ret;
	if (revision)
		*revision = json_object_object_get_ex(rep, "header", &h) ? etcd_i64(h, "revision") : 0;
	if (json_object_object_get_ex(rep, "kvs", &kvs) && json_object_is_type(kvs, json_type_array))
		n = json_object_array_length(kvs);
	if (n) {
		kv = calloc(n, sizeof(*kv));
		if (!kv) {
			ret = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		struct json_object *o = json_object_array_get_idx(kvs, i);

		kv[i].key = etcd_unb64(rpc_str(o, "key") ?: "", &len);
		/* A value put empty is left out of the reply. */
		kv[i].value = etcd_unb64(rpc_str(o, "value") ?: "", &len);
		kv[i].value_len = len;
		kv[i].create_revision = etcd_i64(o, "create_revision");
		kv[i].mod_revision = etcd_i64(o, "mod_revision");
		kv[i].version = etcd_i64(o, "version");
		kv[i].lease = etcd_i64(o, "lease");
		if (!kv[i].key || !kv[i].value) {
			etcd_kvs_free(kv, (int)n);
			snprintf(e->err, sizeof(e->err), "range %s: a key or value not in base64", key);
			ret = -EPROTO;
			goto out;
		}
	}
	*out = kv;
	*nout = (int)n;
out:
	json_object_put(rep);
	return ret;
}

int etcd_txn(struct etcd *e, const struct etcd_cmp *cmp, int ncmp, const struct etcd_op *ops,
	     int nops)
{
	struct json_object *req = json_object_new_object(), *c = json_object_new_array(),
			   *s = json_object_new_array(), *rep, *o, *w;
	int i, ret;

	for (i = 0; i < ncmp; i++) {
		o = json_object_new_object();
		etcd_add_b64(o, "key", cmp[i].key, strlen(cmp[i].key));
		json_object_object_add(o, "result", json_object_new_string("EQUAL"));
		if (cmp[i].what == ETCD_CMP_CREATE) {
			json_object_object_add(o, "target", json_object_new_string("CREATE"));
			etcd_add_i64(o, "create_revision", cmp[i].revision);
		} else {
			json_object_object_add(o, "target", json_object_new_string("MOD"));
			etcd_add_i64(o, "mod_revision", cmp[i].revision);
		}
		json_object_array_add(c, o);
	}
	for (i = 0; i < nops; i++) {
		w = json_object_new_object();
		if (ops[i].value) {
			json_object_object_add(w, "request_put",
					       etcd_put_req(ops[i].key, ops[i].value, ops[i].lease));
		} else {
			o = json_object_new_object();
			etcd_add_b64(o, "key", ops[i].key, strlen(ops[i].key));
			json_object_object_add(w, "request_delete_range", o);
		}
		json_object_array_add(s, w);
	}
	json_object_object_add(req, "compare", c);
	json_object_object_add(req, "success", s);
	ret = etcd_post(e, "/v3/kv/txn", req, &rep);
	json_object_put(req);
	if (ret)
		return ret;
	ret = rpc_bool(rep, "succeeded") ? 0 : -ESTALE;
	if (ret)
		snprintf(e->err, sizeof(e->err), "transaction's comparison failed");
	json_object_put(rep);
	return ret;
}
