// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * members.c - this host's membership of the cluster, on etcd.
 *
 * The host is in the cluster while its alive key, /ferry/hosts/NAME, exists:
 * the key is put on a lease of cluster_lease_ttl_s seconds that a thread of
 * its own renews every third of the TTL.  When etcd cannot be reached the
 * thread keeps trying every MEMBER_RETRY_MS until the lease's deadline (the
 * last renewal's TTL later); past it the host knows it is out of the
 * cluster, and says so once.  A lease etcd let expire is never brought
 * back: the host registers again under a new lease, so that another host
 * that saw the key vanish (and may act on it) sees a new key, with a new
 * create_revision, rather than the old one come back.  A lease that outlived
 * its deadline (etcd lost its quorum: a new leader gives every lease its
 * whole TTL again) is renewed as it is: its key never went.
 *
 * A clean stop does not revoke the lease: ferryd stopping is no proof that
 * the host's VMs stopped, so the key lives out its TTL.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/cluster/cluster.h"

#define MEMBER_RETRY_MS 500
#define MEMBER_TICK_MS 50

static struct {
	pthread_mutex_t lock;
	pthread_t thr;
	bool running;
	struct etcd *etcd;      /* the thread's own handle: renewals never wait on others */
	struct member_state st;
} mem = { .lock = PTHREAD_MUTEX_INITIALIZER };

void member_key(const char *host, char *key, size_t len)
{
	snprintf(key, len, "%s%s", MEMBER_PREFIX, host);
}

/* The alive key's value: who this host is, for `ferry hosts` anywhere. */
static char *member_value(void)
{
	struct json_object *o = json_object_new_object();
	char buf[300], *s;

	json_object_object_add(o, "host", json_object_new_string(ferryd->conf.host));
	json_object_object_add(o, "addr", json_object_new_string(net_addr_str(
						  &ferryd->conf.listen, buf, sizeof(buf))));
	json_object_object_add(o, "version", json_object_new_string(FERRY_VERSION));
	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(o, "joined_ms", json_object_new_uint64(wall_ms()));
	json_object_object_add(o, "lease_ttl_s",
			       json_object_new_int(ferryd->conf.cluster_lease_ttl_s));
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

static int member_register(void)
{
	int ttl = ferryd->conf.cluster_lease_ttl_s;
	char key[128], *val = member_value();
	int64_t lease = 0;
	uint64_t sent;
	int ret;

	if (!val)
		return -ENOMEM;
	member_key(ferryd->conf.host, key, sizeof(key));
	sent = now_ms();
	ret = etcd_lease_grant(mem.etcd, ttl, &lease);
	if (!ret)
		ret = etcd_put(mem.etcd, key, val, lease);
	free(val);
	if (ret)
		return ret;
	pthread_mutex_lock(&mem.lock);
	mem.st.lease = lease;
	mem.st.renewed_ms = sent;
	mem.st.deadline_ms = sent + (uint64_t)ttl * 1000;
	mem.st.registrations++;
	mem.st.alive = true;
	mem.st.err[0] = '\0';
	pthread_mutex_unlock(&mem.lock);
	log_info("cluster: host %s is in the cluster: %s on lease %llx (TTL %d s), at %s",
		 ferryd->conf.host, key, (unsigned long long)lease, ttl, etcd_endpoint(mem.etcd));
	return 0;
}

static void member_failed(bool expired)
{
	uint64_t now = now_ms();
	bool was_alive, alive, report;
	char why[sizeof(mem.st.err)];

	pthread_mutex_lock(&mem.lock);
	report = !mem.st.err[0];
	snprintf(mem.st.err, sizeof(mem.st.err), "%s", etcd_error(mem.etcd));
	snprintf(why, sizeof(why), "%s", mem.st.err);
	if (expired)
		mem.st.lease = 0;
	was_alive = mem.st.alive;
	if (expired || (mem.st.deadline_ms && now >= mem.st.deadline_ms))
		mem.st.alive = false;
	alive = mem.st.alive;
	pthread_mutex_unlock(&mem.lock);
	if (was_alive && !alive)
		log_err("cluster: host %s is out of the cluster: its lease %s (%s)",
			ferryd->conf.host, expired ? "expired" : "passed its deadline unrenewed",
			why);
	else if (report)
		log_warn("cluster: cannot %s host %s's lease: %s; retrying every %d ms",
			 mem.st.lease ? "renew" : "get", ferryd->conf.host, why, MEMBER_RETRY_MS);
}

/* Sleep @ms in ticks, so that a stop is seen at once. */
static void member_sleep(uint64_t ms)
{
	uint64_t until = now_ms() + ms;

	while (!ferryd->stopping && mem.running && now_ms() < until)
		usleep(MEMBER_TICK_MS * 1000);
}

static void *member_thread(void *arg)
{
	int ttl = ferryd->conf.cluster_lease_ttl_s, ret;
	uint64_t sent;
	int64_t left;

	(void)arg;
	while (!ferryd->stopping && mem.running) {
		if (!mem.st.lease) {
			ret = member_register();
			if (ret) {
				member_failed(false);
				member_sleep(MEMBER_RETRY_MS);
				continue;
			}
			member_sleep((uint64_t)ttl * 1000 / 3);
			continue;
		}
		/*
		 * The deadline counts from before the request: etcd restarts
		 * the TTL when it handles the renewal, which is after we sent
		 * it, so this deadline is never later than etcd's.
		 */
		sent = now_ms();
		ret = etcd_lease_keepalive(mem.etcd, mem.st.lease, &left);
		if (ret) {
			member_failed(ret == -ENOENT);
			if (ret != -ENOENT)
				member_sleep(MEMBER_RETRY_MS);
			continue;
		}
		pthread_mutex_lock(&mem.lock);
		mem.st.renewed_ms = sent;
		mem.st.deadline_ms = sent + (uint64_t)left * 1000;
		mem.st.renewals++;
		/*
		 * Out by our deadline, yet the lease lived: etcd had no
		 * leader meanwhile, and a new leader gives every lease its
		 * whole TTL again.  The key never went, so no other host could
		 * take this one's place: it is back in.
		 */
		if (mem.st.err[0])
			log_info("cluster: host %s renewed its lease again at %s%s", ferryd->conf.host,
				 etcd_endpoint(mem.etcd),
				 mem.st.alive ? "" : ": it lived through the outage, the host is back in");
		mem.st.alive = true;
		mem.st.err[0] = '\0';
		pthread_mutex_unlock(&mem.lock);
		member_sleep((uint64_t)ttl * 1000 / 3);
	}
	return NULL;
}

int member_start(void)
{
	const struct ferryd_conf *c = &ferryd->conf;
	int ret;

	if (!c->etcd[0])
		return 0;
	ferryd->etcd = etcd_open(c->etcd, c->etcd_timeout_ms);
	mem.etcd = etcd_open(c->etcd, c->etcd_timeout_ms);
	if (!ferryd->etcd || !mem.etcd) {
		ret = -errno;
		log_err("cluster: etcd endpoints '%s': %s", c->etcd, strerror(-ret));
		goto fail;
	}
	/* Not in yet: the deadline to join is one TTL (fence.c acts on it). */
	mem.st.deadline_ms = now_ms() + (uint64_t)c->cluster_lease_ttl_s * 1000;
	mem.running = true;
	ret = -pthread_create(&mem.thr, NULL, member_thread, NULL);
	if (ret) {
		mem.running = false;
		log_err("cluster: membership thread: %s", strerror(-ret));
		goto fail;
	}
	return 0;
fail:
	etcd_close(mem.etcd);
	etcd_close(ferryd->etcd);
	mem.etcd = ferryd->etcd = NULL;
	return ret;
}

void member_stop(void)
{
	if (mem.running) {
		mem.running = false;
		pthread_join(mem.thr, NULL);
	}
	etcd_close(mem.etcd);
	etcd_close(ferryd->etcd);
	mem.etcd = ferryd->etcd = NULL;
}

void member_state_get(struct member_state *st)
{
	pthread_mutex_lock(&mem.lock);
	*st = mem.st;
	st->enabled = mem.etcd != NULL;
	/* Past the deadline with no answer yet: out, whatever was last heard. */
	if (st->alive && st->deadline_ms && now_ms() >= st->deadline_ms)
		st->alive = false;
	pthread_mutex_unlock(&mem.lock);
}

/*
 * The cluster's view of every host: {"host": {"alive", "lease_ttl_left_s",
 * "addr", "version", "joined_ms", ...}} from the alive keys; NULL with
 * *err when etcd cannot say (the caller reports it).
 */
struct json_object *member_list(int *err)
{
	struct json_object *all;
	struct etcd_kv *kv;
	int i, n, ret;

	*err = 0;
	if (!ferryd->etcd) {
		*err = -ENOTCONN;
		return NULL;
	}
	ret = etcd_get(ferryd->etcd, MEMBER_PREFIX, true, &kv, &n, NULL);
	if (ret) {
		*err = ret;
		return NULL;
	}
	all = json_object_new_object();
	for (i = 0; i < n; i++) {
		struct json_object *v = json_tokener_parse(kv[i].value);
		const char *name = kv[i].key + strlen(MEMBER_PREFIX);
		int64_t left = -1;

		if (!v || !json_object_is_type(v, json_type_object)) {
			json_object_put(v);
			v = json_object_new_object();
		}
		if (kv[i].lease && etcd_lease_ttl(ferryd->etcd, kv[i].lease, &left))
			left = -1;
		json_object_object_add(v, "alive", json_object_new_boolean(left >= 0));
		json_object_object_add(v, "lease_ttl_left_s", json_object_new_int64(left));
		json_object_object_add(v, "create_revision",
				       json_object_new_int64(kv[i].create_revision));
		json_object_object_add(all, name, v);
	}
	etcd_kvs_free(kv, n);
	return all;
}
